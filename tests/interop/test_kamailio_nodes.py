"""Several pua nodes sharing one ``pua`` table (db_mode 2), one of them
killed with SIGKILL, against a real presence server: Kamailio 5.6
(tests/peers/kamailio/presence-server.cfg).

Three tests/interop/pua_node.py processes (``--db-mode 2``, distinct
``--node-id`` and UDP ports, one table on PostgreSQL or MariaDB) publish
4 PIDF presentities each "for ever".  Once every presentity has been
refreshed once, one node is killed with SIGKILL: its leases run out
after ``--lease-time`` seconds and the two survivors take its rows over.
What the test shows, from Kamailio's side:

* its log (``WITH_MSGLOG``: one ``RX`` line per request received and one
  ``TX <status>`` line per answer, both with the time): every presentity
  is refreshed on time, by one node at a time (no two PUBLISHes closer
  than a double refresh would put them, none further apart than the
  grant), every refresh carries an entity-tag Kamailio knows (200, never
  412 or 500: a taken-over record refreshes with the stored entity-tag),
  nothing is published anew;
* its ``presentity`` table holds every one of the 12 presentities once,
  unexpired, under the entity-tag the ``pua`` table holds;
* the ``pua`` table: the killed node's rows are owned by the survivors;
  the survivors stop cleanly (SIGTERM) and end their leases.

The test is synchronous (it drives processes and reads a log and tables),
so it runs once per database, not once per event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from pua.store.url import parse_db_url
from tests.interop.conftest import HOST, KamailioPresence, PresenceServer, free_port
from tests.interop.test_kamailio_restart import NodeProcess, of, wait_until

pytestmark = pytest.mark.interop

#: the servers this machine and CI run (as tests/store/conftest.py)
POSTGRES_URL = os.environ.get("PUA_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("PUA_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")

NODES = ("a", "b", "c")
#: the node killed with SIGKILL
VICTIM = "b"
#: presentities each node publishes
COUNT = 4
#: the grant of every publication (``expires=-1``: for ever, in grants of this)
DEFAULT_EXPIRES = 20
#: db_mode 2: a node's hold on its rows, renewed every third of it (1 s);
#: a dead node's rows are claimed by a survivor 3 to 5 s after its death
#: (the lease it renewed last, whole seconds, plus one renewal round)
LEASE_TIME = 3
#: a refresh is sent after 50-60 % of the grant: 10 to 12 s after it, so 8
#: to 10 s before it ends.  A node killed just before a refresh leaves its
#: records 8 to 10 s: the 3 s lease plus a 1 s take-over round fit in
#: there, and the survivor still refreshes in time: a claimed record is
#: refreshed after 50-60 % of what is left of its grant, so at most 0.6 *
#: (20 - 17) s after a claim 17 s after the last refresh, 18.8 s after it.
#: (The default 80-90 % would leave 2 to 4 s: less than the lease.)
REFRESH_LOW = 0.5
REFRESH_HIGH = 0.6
#: consecutive PUBLISHes of one presentity come 10-12 s apart (up to 19 s
#: across a take-over); two nodes refreshing it in one period would put
#: two of them closer than this
MIN_GAP = 5.0
#: how long the survivors are watched after the kill: two refresh periods
#: (10-12 s each) plus the take-over.  This is the one real wait of the
#: test: what it checks is that nothing happens in it that should not (no
#: lapse, no double refresh, no 412), which no event can signal the end of
OBSERVE = 25.0

#: how long a node may take to start (interpreter, SQLAlchemy, alembic)
START_DEADLINE = 30.0
#: how long to wait for a refresh (due 10-12 s after a grant)
REFRESH_DEADLINE = DEFAULT_EXPIRES + 5.0
#: how long to wait for rows to agree, or a node to stop
ROW_DEADLINE = 10.0

BACKENDS = {"postgresql": POSTGRES_URL, "mariadb": MYSQL_URL}


# ------------------------------------------------------------ the peers
class LoggingPresence(KamailioPresence):
    """The presence server, logging every request it gets and every answer
    it gives, with the time (``WITH_MSGLOG``)."""

    def _args(self) -> list[str]:
        return [*super()._args(), "-A", "WITH_MSGLOG"]


@pytest.fixture
def logging_presence_server(tmp_path: Path) -> Iterator[PresenceServer]:
    """A presence server of this test's own (its log holds this test's
    traffic only), stopped at the end of the test."""
    kamailio = LoggingPresence(tmp_path / "presence-server")
    kamailio.create_database()
    kamailio.check_config()
    try:
        yield kamailio.start()
    finally:
        kamailio.stop()


@dataclass
class SharedTable:
    """One table of its own on a shared database, dropped at the end."""

    backend: str
    url: str
    table: str

    async def _execute(self, statement: str, **params: Any) -> list[dict[str, Any]]:
        engine = create_async_engine(parse_db_url(self.url))
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement), params)
                return [dict(row) for row in result.mappings()] if result.returns_rows else []
        finally:
            await engine.dispose()

    def rows(self) -> list[dict[str, Any]]:
        """Every row of the table (read here, not by a node)."""
        return asyncio.run(
            self._execute(
                "SELECT id, pres_uri, etag, watcher_uri, owner, lease_until, expires"
                f" FROM {self.table} ORDER BY id"
            )
        )

    def drop(self) -> None:
        async def drop() -> None:
            await self._execute(f"DROP TABLE IF EXISTS {self.table}")
            await self._execute(f"DROP TABLE IF EXISTS {self.table}_alembic_version")
            engine = create_async_engine(parse_db_url(self.url))
            try:
                async with engine.begin() as conn:
                    has_version = await conn.run_sync(
                        lambda sync: sync.dialect.has_table(sync, "version")
                    )
                    if has_version:
                        await conn.execute(
                            text("DELETE FROM version WHERE table_name = :t"), {"t": self.table}
                        )
            finally:
                await engine.dispose()

        asyncio.run(drop())


@pytest.fixture(params=sorted(BACKENDS))
def shared_table(request: pytest.FixtureRequest) -> Iterator[SharedTable]:
    backend = str(request.param)
    shared = SharedTable(backend, BACKENDS[backend], f"pua_n{secrets.token_hex(6)}")
    try:
        yield shared
    finally:
        shared.drop()


# ------------------------------------------------------------ the nodes
@dataclass
class Node:
    name: str
    node_id: str
    port: int
    label: str
    process: NodeProcess

    @property
    def uris(self) -> list[str]:
        return [f"sip:{self.label}-p{i}@{HOST}" for i in range(COUNT)]


@contextlib.contextmanager
def shared_nodes(
    tmp_path: Path, server: PresenceServer, shared: SharedTable
) -> Iterator[dict[str, Node]]:
    """Start the nodes at once (so that they migrate the new table side by
    side); kill every one still running at the end."""
    prefix = f"mn{secrets.token_hex(3)}"
    ports: list[int] = []
    while len(ports) < len(NODES):
        port = free_port("udp")
        if port not in ports:
            ports.append(port)
    started: dict[str, Node] = {}
    try:
        for name, port in zip(NODES, ports, strict=True):
            label = f"{prefix}{name}"
            argv = [
                "--server", f"{HOST}:{server.udp.port}",
                "--db-url", shared.url,
                "--db-table", shared.table,
                "--db-mode", "2",
                "--node-id", f"{prefix}-node-{name}",
                "--lease-time", str(LEASE_TIME),
                "--port", str(port),
                "--count", str(COUNT),
                "--subscribe", "0",
                "--label", label,
                "--default-expires", str(DEFAULT_EXPIRES),
                "--refresh-low", str(REFRESH_LOW),
                "--refresh-high", str(REFRESH_HIGH),
                "--retry-initial", "0.3",
            ]  # fmt: skip
            process = NodeProcess(argv, tmp_path / f"node-{name}.log")
            started[name] = Node(name, f"{prefix}-node-{name}", port, label, process)
        for node in started.values():
            node.process.wait("STARTED", timeout=START_DEADLINE, what=f"node {node.name} to start")
        yield started
    finally:
        for node in started.values():
            node.process.kill()
            # every line the node wrote, next to its stderr log
            with node.process._lock:
                lines = [f"{k} {json.dumps(e)}\n" for k, e in node.process._events]
            (tmp_path / f"node-{node.name}.out").write_text("".join(lines))


def terminate(node: Node) -> None:
    """SIGTERM to the node (if it still runs), which closes its PuaAPI."""
    if node.process.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            node.process.proc.send_signal(signal.SIGTERM)


# ------------------------------------------------------------ Kamailio's log
#: ``log_prefix`` "{$mt $hdr(CSeq) $ci} ", then the xlog lines of
#: presence-server.cfg (WITH_MSGLOG)
PREFIX = r"\{(?P<mt>\d+) (?P<cseq>\d+ \w+) (?P<call_id>[^}\s]+)\} <script>: "
RX_LINE = re.compile(
    PREFIX + r"RX (?P<method>\w+) (?P<ruri>\S+) from (?P<source>\S+) \((?P<proto>\w+)\)"
    r" Event=(?P<event>\S+) Expires=(?P<expires>\S+) If-Match=(?P<if_match>\S+)"
    r" at=(?P<at>[\d.]+)$"
)
TX_LINE = re.compile(
    PREFIX + r"TX (?P<status>\d+) (?P<method>\w+) (?P<ruri>\S+) to (?P<dest>\S+)"
    r" \((?P<proto>\w+)\) at=(?P<at>[\d.]+)$"
)


@dataclass
class Publish:
    """One PUBLISH transaction as Kamailio logged it."""

    at: float
    source: str
    expires: str
    if_match: str | None
    status: int | None = None

    def show(self, since: float) -> str:
        return (
            f"{self.at - since:+8.3f} s from {self.source} If-Match={self.if_match} "
            f"Expires={self.expires} -> {self.status}"
        )


def kamailio_publishes(server: PresenceServer) -> dict[str, list[Publish]]:
    """Every PUBLISH Kamailio got, per Request-URI, in arrival order, with
    the status it answered (retransmissions are one transaction: the
    first arrival counts)."""
    try:
        text_ = server.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return {}
    # the last line may be half written
    lines = text_.split("\n")[:-1]
    transactions: dict[tuple[str, str], Publish] = {}
    by_uri: dict[str, list[Publish]] = {}
    for line in lines:
        if (rx := RX_LINE.search(line)) is not None and rx["method"] == "PUBLISH":
            key = (rx["call_id"], rx["cseq"])
            if key not in transactions:
                publish = Publish(
                    at=float(rx["at"]),
                    source=rx["source"],
                    expires=rx["expires"],
                    if_match=None if rx["if_match"] == "<null>" else rx["if_match"],
                )
                transactions[key] = publish
                by_uri.setdefault(rx["ruri"], []).append(publish)
        elif (tx := TX_LINE.search(line)) is not None and tx["method"] == "PUBLISH":
            found = transactions.get((tx["call_id"], tx["cseq"]))
            if found is not None and found.status is None:
                found.status = int(tx["status"])
    for publishes in by_uri.values():
        publishes.sort(key=lambda p: p.at)
    return by_uri


def timeline(publishes: dict[str, list[Publish]], since: float) -> str:
    return "\n".join(
        f"{uri}:\n" + "\n".join("  " + p.show(since) for p in found)
        for uri, found in sorted(publishes.items())
    )


# ----------------------------------------------------------------- the test
def test_a_killed_nodes_presentities_are_taken_over(
    tmp_path: Path, logging_presence_server: PresenceServer, shared_table: SharedTable
) -> None:
    """kill -9 one of three nodes sharing a table: within its lease the
    two others take its presentities over and refresh them with their
    stored entity-tags, on time and once per period; Kamailio never sees
    a lapse, a double refresh or an unknown entity-tag."""
    server = logging_presence_server
    with shared_nodes(tmp_path, server, shared_table) as nodes:
        all_uris = [uri for node in nodes.values() for uri in node.uris]
        by_source = {f"{HOST}:{node.port}": node.name for node in nodes.values()}

        # every node: published, its rows written, then refreshed once
        for node in nodes.values():
            ready = node.process.wait(
                "READY", timeout=START_DEADLINE, what=f"node {node.name} to be READY"
            )
            assert sorted(ready["publications"]) == node.uris, ready
        for node in nodes.values():
            for uri in node.uris:
                refresh = node.process.wait(
                    "PUBLISH",
                    of(uri, own=True),
                    timeout=REFRESH_DEADLINE,
                    what=f"node {node.name}'s first refresh of {uri}",
                )
                assert (refresh["ok"], refresh["status"], refresh["op"]) == (
                    True,
                    200,
                    "refresh",
                ), refresh
        rows = shared_table.rows()
        assert sorted(r["pres_uri"] for r in rows) == sorted(all_uris), rows
        for node in nodes.values():
            assert {r["owner"] for r in rows if r["pres_uri"] in node.uris} == {node.node_id}

        # kill -9 one node; the others must take over its presentities.
        # Not before its rows hold the entity-tags of its refreshes: the
        # row is written just after Kamailio's 200, and a node dying in
        # between leaves the previous tag, which gets 412 (and a
        # re-publication) at the survivor: a window this test keeps out of
        victim = nodes[VICTIM]
        survivors = [node for node in nodes.values() if node is not victim]

        def victim_rows_caught_up() -> bool:
            latest = {e["pres_uri"]: e["etag"] for e in victim.process.events("PUBLISH")}
            stored = {
                r["pres_uri"]: r["etag"]
                for r in shared_table.rows()
                if r["owner"] == victim.node_id
            }
            return stored == {uri: latest.get(uri) for uri in victim.uris}

        wait_until(
            victim_rows_caught_up,
            ROW_DEADLINE,
            f"node {victim.name}'s rows to hold its refreshes' entity-tags",
        )
        killed_at = time.time()
        victim.process.kill()
        assert victim.process.proc.returncode == -signal.SIGKILL

        def watched_long_enough() -> bool:
            for node in survivors:
                if node.process.proc.poll() is not None or node.process.events("ERROR"):
                    raise AssertionError(f"node {node.name} failed\n{node.process.report()}")
            if time.time() - killed_at < OBSERVE:
                return False
            # and each taken-over presentity was refreshed twice since
            publishes = kamailio_publishes(server)
            return all(
                len([p for p in publishes.get(uri, []) if p.at > killed_at]) >= 2
                for uri in victim.uris
            )

        wait_until(
            watched_long_enough,
            OBSERVE + DEFAULT_EXPIRES,
            "two refreshes of every taken-over presentity",
        )
        ended_at = time.time()

        # (a) Kamailio's log: on time, once per period, every entity-tag
        # known (read once the PUBLISH on its way, if any, is answered)
        def answered() -> bool:
            return all(
                p.status is not None for found in kamailio_publishes(server).values() for p in found
            )

        wait_until(answered, ROW_DEADLINE, "Kamailio to answer every PUBLISH it got")
        publishes = kamailio_publishes(server)
        story = (
            f"nodes: {by_source}; {victim.name} killed at 0 s\n"
            f"{timeline({u: publishes.get(u, []) for u in all_uris}, killed_at)}"
        )
        print(story)  # the timings, for -s / -rP
        for node in nodes.values():
            for uri in node.uris:
                found = publishes.get(uri, [])
                assert len(found) >= 3, (uri, story)
                # published once, then refreshed only (no re-publication)
                assert found[0].if_match is None, (uri, story)
                assert all(p.if_match for p in found[1:]), (uri, story)
                # every one answered 200: no 412 (an entity-tag Kamailio
                # gave before the last one), nor 500 (one it never gave)
                assert all(p.status == 200 for p in found), (uri, story)
                assert all(p.expires == str(DEFAULT_EXPIRES) for p in found), (uri, story)
                gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(found)]
                assert all(MIN_GAP < gap < DEFAULT_EXPIRES for gap in gaps), (uri, gaps, story)
                # still alive when the watch ended
                assert ended_at - found[-1].at < DEFAULT_EXPIRES, (uri, story)
                # sent by the owner until the kill; the victim's by one
                # survivor after it
                before = {by_source.get(p.source) for p in found if p.at < killed_at}
                after = {by_source.get(p.source) for p in found if p.at > killed_at}
                assert before == {node.name}, (uri, story)
                if node is victim:
                    assert len(after) == 1, (uri, story)
                    assert after < {s.name for s in survivors}, (uri, story)
                else:
                    assert after == {node.name}, (uri, story)

        # (b) Kamailio's presentity table: every presentity once, alive,
        # under the entity-tag the pua table holds (a refresh may be on its
        # way between the two: polled)
        def agree() -> bool:
            stored = {r["pres_uri"]: r["etag"] for r in shared_table.rows()}
            for uri in all_uris:
                rows = server.presentities(uri.removeprefix("sip:").split("@")[0])
                if [r["etag"] for r in rows] != [stored.get(uri)]:
                    return False
            return True

        wait_until(agree, ROW_DEADLINE, "Kamailio and the pua table to agree on every entity-tag")
        now = time.time()
        for uri in all_uris:
            [row] = server.presentities(uri.removeprefix("sip:").split("@")[0])
            assert row["expires"] > now, (uri, row, now)

        # (c) the pua table: the victim's rows belong to the survivors now
        rows = shared_table.rows()
        assert len(rows) == len(all_uris), rows
        owners = {r["pres_uri"]: r["owner"] for r in rows}
        survivor_ids = {node.node_id for node in survivors}
        for uri in victim.uris:
            assert owners[uri] in survivor_ids, (uri, rows)
        for node in survivors:
            assert all(owners[uri] == node.node_id for uri in node.uris), rows

        # the survivors stop cleanly: status 0, the leases ended at once
        for node in survivors:
            terminate(node)
        for node in survivors:
            try:
                node.process.proc.wait(timeout=ROW_DEADLINE)
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"node {node.name} did not stop\n{node.process.report()}"
                ) from None
            assert node.process.proc.returncode == 0, node.process.report()
            # its last lines: read to the end of its output
            node.process._reader.join(timeout=ROW_DEADLINE)
            assert node.process.events("STOPPED"), node.process.report()
            log = node.process.log_path.read_text(errors="replace")
            assert "Traceback" not in log, node.process.report()
        claimed = 0
        for node in survivors:
            [stopped] = node.process.events("STOPPED")
            shared = stopped["shared"]
            assert (shared["handed-over"], shared["fenced"]) == (0, 0), (node.name, stopped)
            claimed += shared["claimed"]
        assert claimed == COUNT, [n.process.events("STOPPED") for n in survivors]
        assert all(r["lease_until"] == 0 for r in shared_table.rows()), shared_table.rows()
