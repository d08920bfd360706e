"""A pua process killed with SIGKILL and started again on its database,
against a real presence server: Kamailio 5.6
(tests/peers/kamailio/presence-server.cfg).

Each test runs tests/interop/pua_node.py as a process of its own (its own
session), on a fixed UDP port of 127.0.0.1 and an SQLite ``pua`` table in
the test's directory: it publishes 5 PIDF presentities "for ever" (a
10 s grant, refreshed 5 s after each grant) and watches the presence of 2
of them.  Once the ``pua`` table holds every record, the process is
killed with SIGKILL and a second one starts on the same table and the
same port, publishing and subscribing nothing itself.  What the tests
show at Kamailio:

* Kamailio kept its state (write-through, and write-back after one
  ``update_period``): every presentity is still there, refreshed with
  the stored entity-tag (the row moves to a new tag; never a second row),
  every watcher is still one row of ``active_watchers`` with the stored
  dialog, which the new process refreshes and gets its NOTIFYs in;
* Kamailio lost its state too (restarted with an empty database): every
  refresh gets 412 and the stored body is published again, every dialog
  refresh gets 481 and a new dialog is made; NOTIFYs flow in the new
  dialogs;
* write-back, killed between a dialog refresh and the next write-back:
  the stored CSeq lags behind the last one sent; the restored dialog
  jumps its CSeq ahead, so Kamailio takes the refresh and the
  subscription lives on.

What Kamailio 5.6 does, and the tests rely on: every PUBLISH with
SIP-If-Match moves the presentity row to a new entity-tag; every PUBLISH
of a watched presentity (refresh included) and every SUBSCRIBE refresh
bring a NOTIFY; ``subs_db_mode 1`` writes ``active_watchers`` at once.

The tests are synchronous (they drive processes and read SQLite files),
so they run once, not once per event loop; the nodes run on uvloop, but
the write-back one on the stock asyncio loop.  Waiting is a poll with a
deadline; the only real waits are the nodes' own timers.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import (
    HOST,
    PresenceServer,
    RestartablePresenceServer,
    free_port,
)

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
PIDF_NS = "urn:ietf:params:xml:ns:pidf"

#: presentities each node publishes, and how many of them it watches
COUNT = 5
WATCHED = 2
#: the grant of every publication and subscription: refreshed after 5 s
DEFAULT_EXPIRES = 10
#: the write-back period of the write-back test (the smallest allowed, 6)
UPDATE_PERIOD = 6

#: how long a node may take to start (interpreter, SQLAlchemy, alembic)
START_DEADLINE = 20.0
#: how long to wait for a node's own refresh (due 5 s after a grant)
REFRESH_DEADLINE = DEFAULT_EXPIRES + 5.0
#: how long to wait for a row to change or a NOTIFY to come
ROW_DEADLINE = 5.0

Event = dict[str, Any]


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``condition()`` every 20 ms until it holds; fail after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.02)


def pidf_basic(body: bytes) -> str:
    basic = ET.fromstring(body).find(f"{{{PIDF_NS}}}tuple/{{{PIDF_NS}}}status/{{{PIDF_NS}}}basic")
    assert basic is not None, body
    return basic.text or ""


# ------------------------------------------------------------ the node
class NodeProcess:
    """One tests/interop/pua_node.py process in a session of its own; its
    stdout lines (``KIND {json}``) are collected as they come."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.interop.pua_node", *argv],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        self._events: list[tuple[str, Event]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            kind, _, payload = raw.decode(errors="replace").strip().partition(" ")
            try:
                event = json.loads(payload) if payload else {}
            except json.JSONDecodeError:
                event = {"text": payload}
            with self._lock:
                self._events.append((kind, event))

    def events(self, kind: str, after: int = 0) -> list[Event]:
        with self._lock:
            return [e for k, e in self._events[after:] if k == kind]

    def mark(self) -> int:
        """A position in the output: ``wait(..., after=mark)`` looks later."""
        with self._lock:
            return len(self._events)

    def wait(
        self,
        kind: str,
        check: Callable[[Event], bool] = lambda e: True,
        *,
        timeout: float,
        what: str,
        after: int = 0,
    ) -> Event:
        """The first ``kind`` line, from position ``after`` on, for which
        ``check`` holds (polled); fails early if the node exits or
        reports an error."""

        def found() -> Event | None:
            return next((e for e in self.events(kind, after) if check(e)), None)

        def done() -> bool:
            return found() is not None or self.proc.poll() is not None or bool(self.events("ERROR"))

        try:
            wait_until(done, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.report()}") from None
        event = found()
        assert event is not None, f"{what}: the node stopped or failed\n{self.report()}"
        return event

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{command}\n".encode())
        self.proc.stdin.flush()

    def stats(self) -> Event:
        mark = self.mark()
        self.send("STATS")
        return self.wait("STATS", timeout=ROW_DEADLINE, what="the node's STATS", after=mark)

    def kill(self) -> None:
        """SIGKILL to the node's process group (if the node still runs:
        a reaped pid may be someone else's by now)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._reader.join(timeout=5)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def report(self) -> str:
        with self._lock:
            lines = [f"{k} {json.dumps(e)}" for k, e in self._events[-30:]]
        try:
            log = self.log_path.read_text(errors="replace").splitlines()[-30:]
        except FileNotFoundError:
            log = []
        return (
            f"node exit status {self.proc.poll()}\n--- stdout (end)\n"
            + "\n".join(lines)
            + "\n--- stderr (end)\n"
            + "\n".join(log)
        )


@dataclass
class Nodes:
    """Starts the nodes of one test on one port and one database, and
    kills every one still running at the end."""

    workdir: Path
    server: PresenceServer
    label: str
    write_through: bool
    loop: str
    count: int = COUNT
    watched_count: int = WATCHED

    def __post_init__(self) -> None:
        self.port = free_port("udp")
        self.db_path = self.workdir / "pua.sqlite"
        self.started: list[NodeProcess] = []

    @property
    def uris(self) -> list[str]:
        return [f"sip:{self.label}-p{i}@{HOST}" for i in range(self.count)]

    @property
    def watched(self) -> list[str]:
        return self.uris[: self.watched_count]

    @property
    def watcher_user(self) -> str:
        return f"{self.label}-watcher"

    def start(self, mode: str) -> NodeProcess:
        argv = [
            "--server", f"{HOST}:{self.server.udp.port}",
            "--db-url", f"sqlite:///{self.db_path}",
            "--port", str(self.port),
            "--mode", mode,
            "--count", str(self.count),
            "--subscribe", str(self.watched_count),
            "--label", self.label,
            "--default-expires", str(DEFAULT_EXPIRES),
            "--update-period", str(UPDATE_PERIOD),
            "--retry-initial", "0.3",
            "--loop", self.loop,
        ]  # fmt: skip
        if self.write_through:
            argv.append("--write-through")
        node = NodeProcess(argv, self.workdir / f"node-{len(self.started) + 1}.log")
        self.started.append(node)
        node.wait("STARTED", timeout=START_DEADLINE, what=f"node {mode} to start")
        return node

    def close(self) -> None:
        for node in self.started:
            node.kill()

    # ------------------------------------------------ what is stored where
    def pua_rows(self) -> list[dict[str, Any]]:
        """The node's ``pua`` table (read here, not by the node)."""
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=5)) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT id, pres_uri, etag, watcher_uri, call_id, from_tag, to_tag, cseq, body"
                " FROM pua ORDER BY id"
            ).fetchall()
        return [dict(row) for row in rows]

    def stored(self) -> Stored:
        rows = self.pua_rows()
        return Stored(
            row_ids=sorted(r["id"] for r in rows),
            publications={r["pres_uri"]: r["etag"] for r in rows if not r["watcher_uri"]},
            subscriptions={
                r["pres_uri"]: (r["call_id"], r["from_tag"], r["to_tag"])
                for r in rows
                if r["watcher_uri"]
            },
            rows=len(rows),
        )

    def presentity(self, uri: str) -> list[dict[str, Any]]:
        """Kamailio's ``presentity`` rows of ``uri``."""
        return self.server.presentities(uri.removeprefix("sip:").split("@")[0])

    def watchers(self) -> list[dict[str, Any]]:
        """Kamailio's ``active_watchers`` rows of our watcher."""
        with contextlib.closing(sqlite3.connect(self.server.db_path, timeout=5)) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT presentity_uri, callid, from_tag, to_tag, contact, expires"
                " FROM active_watchers WHERE watcher_username = ? AND watcher_domain = ?"
                " ORDER BY id",
                (self.watcher_user, HOST),
            ).fetchall()
        return [dict(row) for row in rows]


@dataclass(frozen=True)
class Stored:
    """The node's ``pua`` table: publications (presentity -> entity-tag)
    and subscriptions (presentity -> Call-ID, our tag, Kamailio's tag)."""

    row_ids: list[int]
    publications: dict[str, str]
    subscriptions: dict[str, tuple[str, str, str]]
    rows: int


@contextlib.contextmanager
def nodes(
    tmp_path: Path,
    server: PresenceServer,
    *,
    write_through: bool,
    loop: str = "auto",
    count: int = COUNT,
    watched: int = WATCHED,
) -> Iterator[Nodes]:
    label = f"rs{secrets.token_hex(3)}"
    started = Nodes(tmp_path, server, label, write_through, loop, count, watched)
    try:
        yield started
    finally:
        started.close()


# ------------------------------------------------------------ the steps
def run_until_stored_then_kill(n: Nodes) -> Stored:
    """Start a node that publishes and subscribes; once it says READY
    (every outcome ok, the ``pua`` table holding every record), SIGKILL
    it.  Check that the table and Kamailio agree; return the table."""
    first = n.start("start")
    ready_deadline = 10.0 if n.write_through else 2 * UPDATE_PERIOD + 10.0
    ready = first.wait("READY", timeout=ready_deadline, what="the node to be READY")
    first.kill()
    assert first.proc.returncode == -signal.SIGKILL

    stored = n.stored()
    assert stored.rows == n.count + n.watched_count, n.pua_rows()
    assert stored.publications == ready["publications"]
    assert sorted(stored.publications) == n.uris
    assert {uri: list(dialog) for uri, dialog in stored.subscriptions.items()} == (
        ready["subscriptions"]
    )
    assert sorted(stored.subscriptions) == n.watched
    if not n.write_through:
        # the first write-back came after the first refreshes (5 s < 6 s):
        # the table holds the refreshes' entity-tags, not the first ones
        refreshed = {e["pres_uri"]: e["etag"] for e in first.events("PUBLISH") if e["own"]}
        assert refreshed == stored.publications, first.report()

    # Kamailio holds exactly the stored state: one row per presentity,
    # under the stored entity-tag, and one watcher row per stored dialog
    for uri, etag in stored.publications.items():
        wait_until(
            one_row_under(n, uri, etag),
            ROW_DEADLINE,
            f"the presentity row of {uri} under {etag}",
        )
    assert {
        w["presentity_uri"]: (w["callid"], w["from_tag"], w["to_tag"]) for w in n.watchers()
    } == stored.subscriptions
    assert len(n.watchers()) == n.watched_count
    return stored


def notify_of_a_new_state(node: NodeProcess, uri: str, call_id: str) -> None:
    """Have the node modify its publication of ``uri`` (``closed``) and
    wait for the NOTIFY carrying it in dialog ``call_id``."""
    mark = node.mark()
    node.send(f"SET {uri} closed")
    modified = node.wait(
        "PUBLISH",
        lambda e: e["pres_uri"] == uri and not e["own"],
        timeout=ROW_DEADLINE,
        what=f"the modification of {uri}",
        after=mark,
    )
    assert (modified["ok"], modified["status"], modified["op"]) == (True, 200, "modify"), modified
    node.wait(
        "NOTIFY",
        lambda e: e["pres_uri"] == uri and e["call_id"] == call_id and e["basic"] == "closed",
        timeout=ROW_DEADLINE,
        what=f"the NOTIFY of {uri}'s new state in dialog {call_id}",
        after=mark,
    )


def of(uri: str, **fields: object) -> Callable[[Event], bool]:
    """Matches the events of presentity ``uri`` with these ``fields``."""
    return lambda e: e["pres_uri"] == uri and all(e[k] == v for k, v in fields.items())


def one_row_under(n: Nodes, uri: str, etag: str) -> Callable[[], bool]:
    """Whether Kamailio holds exactly one row of ``uri``, under ``etag``."""
    return lambda: [r["etag"] for r in n.presentity(uri)] == [etag]


def one_row_under_latest(n: Nodes, uri: str, node: NodeProcess) -> Callable[[], bool]:
    """Whether Kamailio holds exactly one row of ``uri``, under the last
    entity-tag ``node`` got for it."""
    return lambda: [r["etag"] for r in n.presentity(uri)] == [latest_etags(node).get(uri)]


def no_row(n: Nodes, uri: str) -> Callable[[], bool]:
    """Whether Kamailio holds no row of ``uri``."""
    return lambda: n.presentity(uri) == []


def latest_etags(node: NodeProcess) -> dict[str, str]:
    return {e["pres_uri"]: e["etag"] for e in node.events("PUBLISH") if e["etag"]}


def table_holds_new_etags(n: Nodes, node: NodeProcess) -> bool:
    """Whether the ``pua`` table holds, for every presentity, an
    entity-tag that ``node`` got (not one from before it started).  Not
    "the latest": a refresh may come between a write-back and the read."""
    got = {e["etag"] for e in node.events("PUBLISH") if e["etag"]}
    stored = n.stored().publications
    return sorted(stored) == n.uris and all(etag in got for etag in stored.values())


def restored_state_goes_on(n: Nodes, stored: Stored) -> None:
    """Kamailio kept everything: a node started on the table refreshes
    every publication with its stored entity-tag and every subscription
    in its stored dialog, and gets the NOTIFYs there."""
    node = n.start("restore")
    [started] = node.events("STARTED")
    assert (started["publications"], started["subscriptions"]) == (n.count, n.watched_count)
    # nothing was lost meanwhile: every presentity is there, once (under
    # the stored entity-tag, or a new one if its refresh was due already)
    for uri, etag in stored.publications.items():
        [row] = n.presentity(uri)
        assert row["etag"] in {etag, *latest_etags(node).values()}, (uri, row)

    # publications: refreshed with the stored tag; the row moves to the new one
    for uri, etag in stored.publications.items():
        refresh = node.wait(
            "PUBLISH",
            of(uri, own=True),
            timeout=REFRESH_DEADLINE,
            what=f"the restored refresh of {uri}",
        )
        assert (refresh["ok"], refresh["status"], refresh["op"]) == (True, 200, "refresh"), refresh
        assert refresh["sent_etag"] == etag
        assert refresh["etag"] not in (None, etag)
        wait_until(
            one_row_under_latest(n, uri, node),
            ROW_DEADLINE,
            f"the one row of {uri} to move to the refresh's entity-tag",
        )

    # subscriptions: refreshed in the stored dialog, NOTIFYs come in it
    for uri, (call_id, local_tag, remote_tag) in stored.subscriptions.items():
        refresh = node.wait(
            "SUBSCRIBE",
            of(uri, own=True),
            timeout=REFRESH_DEADLINE,
            what=f"the restored refresh of the subscription to {uri}",
        )
        assert (refresh["ok"], refresh["status"], refresh["op"]) == (True, 200, "refresh"), refresh
        assert (refresh["call_id"], refresh["local_tag"], refresh["remote_tag"]) == (
            call_id,
            local_tag,
            remote_tag,
        )
        notify = node.wait(
            "NOTIFY",
            of(uri),
            timeout=ROW_DEADLINE,
            what=f"a NOTIFY of {uri} in the restored node",
        )
        assert (notify["call_id"], notify["state"], notify["basic"]) == (call_id, "active", "open")
        notify_of_a_new_state(node, uri, call_id)

    # no second watcher, no second presentity row anywhere
    assert {
        w["presentity_uri"]: (w["callid"], w["from_tag"], w["to_tag"]) for w in n.watchers()
    } == stored.subscriptions
    for uri in n.uris:
        assert len(n.presentity(uri)) == 1, (uri, n.presentity(uri))
    stats = node.stats()
    assert stats["publish"].get("sent-initial", 0) == 0, stats
    assert stats["publish"].get("reply-412", 0) == 0, stats
    assert stats["subscribe"].get("sent-initial", 0) == 0, stats
    assert stats["subscribe"].get("reply-481", 0) == 0, stats
    assert stats["subscribe"].get("notify-481", 0) == 0, stats

    # the table follows (the same rows, the new entity-tags); with
    # write-back after the next period
    deadline = ROW_DEADLINE if n.write_through else UPDATE_PERIOD + ROW_DEADLINE
    wait_until(
        lambda: table_holds_new_etags(n, node),
        deadline,
        "the pua table to hold the new entity-tags",
    )
    assert n.stored().row_ids == stored.row_ids
    assert n.stored().subscriptions == stored.subscriptions

    # leave the shared server clean: remove and unsubscribe everything
    mark = node.mark()
    node.send("CLEANUP")
    cleaned = node.wait("CLEANED", timeout=ROW_DEADLINE * 2, what="the clean-up", after=mark)
    assert cleaned == {"publications": {}, "subscriptions": {}}
    for uri in n.uris:
        wait_until(no_row(n, uri), ROW_DEADLINE, f"{uri} to go")


# ----------------------------------------------------------------- tests
def test_write_through_survives_kill_9(tmp_path: Path, presence_server: PresenceServer) -> None:
    """write_through: the table is complete as soon as the outcomes are
    in; after kill -9, a new process carries on with Kamailio's state (no
    new publication, no new dialog, no duplicate)."""
    with nodes(tmp_path, presence_server, write_through=True) as n:
        stored = run_until_stored_then_kill(n)
        restored_state_goes_on(n, stored)


def test_write_back_survives_kill_9_after_one_period(
    tmp_path: Path, presence_server: PresenceServer
) -> None:
    """write-back every 6 s: once one period has passed the table is
    complete (and holds the first refreshes' entity-tags); after kill -9
    a new process carries on as with write-through."""
    with nodes(tmp_path, presence_server, write_through=False, loop="asyncio") as n:
        stored = run_until_stored_then_kill(n)
        restored_state_goes_on(n, stored)


def test_both_restart_republishes_and_resubscribes(
    tmp_path: Path, restartable_presence_server: RestartablePresenceServer
) -> None:
    """kill -9 the node, restart Kamailio with an empty database, start
    the node again: every refresh gets 412 and the stored body is
    published anew; every dialog refresh gets 481 and a new dialog is
    made; NOTIFYs flow in the new dialogs, and the table follows."""
    server = restartable_presence_server
    with nodes(tmp_path, server.server, write_through=True) as n:
        stored = run_until_stored_then_kill(n)
        bodies = {r["pres_uri"]: r["body"] for r in n.pua_rows() if not r["watcher_uri"]}

        server.kamailio.restart(empty_db=True)
        assert server.starts == 2
        for uri in n.uris:
            assert n.presentity(uri) == []
        assert n.watchers() == []

        node = n.start("restore")
        [started] = node.events("STARTED")
        assert (started["publications"], started["subscriptions"]) == (n.count, n.watched_count)

        # publications: the refresh gets 412, the stored body goes out anew
        for uri, etag in stored.publications.items():
            republished = node.wait(
                "PUBLISH",
                of(uri, own=True),
                timeout=REFRESH_DEADLINE,
                what=f"the re-publication of {uri}",
            )
            assert (republished["ok"], republished["status"], republished["op"]) == (
                True,
                200,
                "initial",
            ), republished
            assert republished["sent_etag"] is None
            assert republished["etag"] not in (None, etag)
            wait_until(
                one_row_under_latest(n, uri, node),
                ROW_DEADLINE,
                f"{uri} back at Kamailio under the new entity-tag",
            )
            [row] = n.presentity(uri)
            assert row["body"] == bodies[uri]
            assert pidf_basic(row["body"]) == "open"

        # subscriptions: the refresh gets 481, a new dialog is made
        new_dialogs: dict[str, str] = {}
        for uri, (call_id, _, _) in stored.subscriptions.items():
            made = node.wait(
                "SUBSCRIBE",
                of(uri, op="initial", ok=True),
                timeout=REFRESH_DEADLINE,
                what=f"the new subscription to {uri}",
            )
            own = [e for e in node.events("SUBSCRIBE") if e["pres_uri"] == uri and e["own"]]
            failed = own[0]
            assert (failed["op"], failed["status"], failed["ok"], failed["retrying"]) == (
                "refresh",
                481,
                False,
                True,
            ), own
            assert failed["call_id"] in (None, call_id)
            assert made["call_id"] not in (None, call_id)
            new_dialogs[uri] = made["call_id"]
            node.wait(
                "NOTIFY",
                of(uri, call_id=new_dialogs[uri]),
                timeout=ROW_DEADLINE,
                what=f"the first NOTIFY of the new dialog for {uri}",
            )
            notify_of_a_new_state(node, uri, made["call_id"])
        assert not [
            e
            for e in node.events("NOTIFY")
            if e["call_id"] in {d[0] for d in stored.subscriptions.values()}
        ]

        # Kamailio: one row per presentity, one watcher per new dialog
        for uri in n.uris:
            assert len(n.presentity(uri)) == 1, (uri, n.presentity(uri))
        assert {w["presentity_uri"]: w["callid"] for w in n.watchers()} == new_dialogs
        stats = node.stats()
        assert stats["publish"]["reply-412"] == n.count, stats
        assert stats["publish"]["412-recoveries"] == n.count, stats
        assert stats["subscribe"]["reply-481"] == n.watched_count, stats
        assert stats["subscribe"].get("notify-481", 0) == 0, stats

        # the table follows: the same rows, the new tags and dialogs
        def table_follows() -> bool:
            now = n.stored()
            return (
                table_holds_new_etags(n, node)
                and {uri: dialog[0] for uri, dialog in now.subscriptions.items()} == new_dialogs
            )

        wait_until(table_follows, ROW_DEADLINE, "the pua table to hold the new tags and dialogs")
        assert n.stored().row_ids == stored.row_ids


def test_write_back_kill_before_the_next_period_keeps_the_subscription(
    tmp_path: Path, restartable_presence_server: RestartablePresenceServer
) -> None:
    """write-back loses at most one period of changes: killed after a
    dialog refresh and before the next write-back, the table holds the
    CSeq of the refresh before.  The restored subscription lives on."""
    server = restartable_presence_server.server
    with nodes(tmp_path, server, write_through=False, count=1, watched=1) as n:
        first = n.start("start")
        first.wait("READY", timeout=2 * UPDATE_PERIOD + 10.0, what="the node to be READY")
        mark = first.mark()
        # the dialog's second refresh (5 s after the first, which came
        # before the first write-back at 6 s); the next write-back is at 12 s
        refresh = first.wait(
            "SUBSCRIBE",
            lambda e: e["own"],
            timeout=REFRESH_DEADLINE,
            what="the dialog's refresh after the write-back",
            after=mark,
        )
        first.kill()
        assert (refresh["ok"], refresh["op"]) == (True, "refresh"), refresh
        [row] = [r for r in n.pua_rows() if r["watcher_uri"]]
        if row["cseq"] >= refresh["cseq"]:
            pytest.skip("the kill came after the next write-back: nothing to show")

        node = n.start("restore")
        outcome = node.wait(
            "SUBSCRIBE",
            lambda e: e["own"],
            timeout=REFRESH_DEADLINE,
            what="the restored subscription's first refresh",
        )
        # today: 400 Bad request, ended=True, retrying=False
        assert not outcome["ended"], outcome
        mark = node.mark()
        node.wait(
            "NOTIFY",
            lambda e: e["state"] == "active",
            timeout=REFRESH_DEADLINE,
            what="a NOTIFY after the restart",
            after=mark,
        )
