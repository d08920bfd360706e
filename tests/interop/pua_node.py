"""A PuaAPI process for the restart and multi-node tests
(tests/interop/test_kamailio_restart.py, tests/interop/test_kamailio_nodes.py).

Run it as ``python -m tests.interop.pua_node ...`` from the repository root,
or by path (``python tests/interop/pua_node.py ...``): it imports nothing
but ``pua`` and the standard library.

It binds UDP on 127.0.0.1:``--port`` (a fixed port, so that the Contact
of its subscriptions still reaches it after a restart), sends everything
to the presence server ``--server`` and keeps its records in ``--db-url``
(table ``--db-table``).  ``--db-mode 0`` (the default) writes them back
(``--write-through`` or every ``--update-period``); ``--db-mode 2`` shares
the table with other nodes: this one is ``--node-id``, it holds its rows
on a lease of ``--lease-time`` seconds and takes over the rows of nodes
whose lease ran out (``pua.dbonly``).

Modes:

* ``start``: publish ``--count`` PIDF presentities (``expires=-1``, so pua
  refreshes them every ``--default-expires`` grant) and subscribe to the
  presence of the first ``--subscribe`` of them (Contact: this endpoint);
* ``restore``: publish and subscribe nothing: run with what ``start()``
  took back from the database.

Both then run (refreshing) until killed, or until SIGTERM or the ``STOP``
command, which close the PuaAPI gracefully (a final write; in db_mode 2
the leases end at once) and exit with status 0.  Every line on stdout is
``KIND {json}``:

* ``STARTED``: the endpoint is up, with the records restored (``node``:
  the node's name in db_mode 2);
* ``PUBLISH`` / ``SUBSCRIBE``: one outcome (``own`` is true for pua's own
  refreshes and re-subscriptions);
* ``NOTIFY``: one NOTIFY received (``basic`` is the PIDF's first
  ``<basic>``, ``null`` without a body);
* ``READY`` (``start`` only): every outcome was ok and the ``pua`` table
  holds every record as it is in memory (with write-through at once, else
  after the first write-back; in db_mode 2 as rows this node owns, read
  through ``pua.store``);
* ``STATS``, ``CLEANED``: answers to the commands below;
* ``STOPPED``: the PuaAPI is closed (``shared``: db_mode 2's counters);
* ``ERROR``: something failed; the process exits with status 1.

Commands, one per line on stdin:

* ``SET <pres_uri> <basic>``: modify that publication (``open``/``closed``);
* ``STATS``: the engines' counters (and db_mode 2's, as ``shared``);
* ``CLEANUP``: remove every publication and unsubscribe every
  subscription, then answer ``CLEANED``;
* ``STOP``: as SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sqlite3
import sys
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from typing import Any

from pua import (
    PRESENCE_EVENT,
    RPC_SUBSCRIBE,
    UL_PUBLISH,
    NotifyReceived,
    PuaAPI,
    PuaConfig,
    PublishInfo,
    PublishOutcome,
    SubscribeInfo,
    SubscribeOutcome,
)
from pua.endpoint import EndpointConfig
from pua.evpkg.presence import pidf_document
from pua.runtime import LOOPS
from pua.runtime import run as run_loop
from pua.store.base import LeaseStore
from pua.store.url import parse_db_url

HOST = "127.0.0.1"
PIDF_NS = "urn:ietf:params:xml:ns:pidf"
#: every source flag pua knows (callback masks)
ALL_FLAGS = 0xFFFFFFF


def emit(kind: str, **fields: Any) -> None:
    """One line on stdout: ``KIND {json}``."""
    sys.stdout.write(f"{kind} {json.dumps(fields, sort_keys=True)}\n")
    sys.stdout.flush()


def pidf_basic(body: bytes) -> str | None:
    if not body:
        return None
    try:
        found = ET.fromstring(body).find(
            f"{{{PIDF_NS}}}tuple/{{{PIDF_NS}}}status/{{{PIDF_NS}}}basic"
        )
    except ET.ParseError:
        return "unparsable"
    return None if found is None else (found.text or "")


def presentity(label: str, index: int) -> str:
    return f"sip:{label}-p{index}@{HOST}"


def watcher(label: str) -> str:
    return f"sip:{label}-watcher@{HOST}"


class Node:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.proxy = f"sip:{args.server};transport=udp"
        config = PuaConfig(
            db_url=args.db_url,
            db_table=args.db_table,
            db_mode=args.db_mode,
            node_id=args.node_id,
            lease_time=args.lease_time,
            update_period=0 if args.write_through else args.update_period,
            write_through=args.write_through,
            default_expires=args.default_expires,
            refresh_low=args.refresh_low,
            refresh_high=args.refresh_high,
            outbound_proxy=self.proxy,
            callbacks_on_refresh=True,
            retry_initial=args.retry_initial,
        )
        endpoint = EndpointConfig(host=HOST, udp_port=args.port, tcp_port=None)
        self.pua = PuaAPI(config, endpoint_config=endpoint)
        self.pua.register_puacb(ALL_FLAGS, self._on_outcome)
        self.pua.register_notify_cb(ALL_FLAGS, self._on_notify)
        #: set by SIGTERM and ``STOP``, which cancel the work: close, exit
        self.stopping = asyncio.Event()
        self.stop: Callable[[], None] = self.stopping.set
        #: the SQLite file of ``--db-url`` (READY waits for its rows in
        #: db_mode 0); None for other databases
        self.db_path: str | None = None
        if args.db_url and args.db_mode == 0:
            url = parse_db_url(args.db_url)
            if url.drivername.startswith("sqlite"):
                self.db_path = url.database

    # ------------------------------------------------------------ reports
    def _on_outcome(self, outcome: PublishOutcome | SubscribeOutcome, param: object) -> None:
        common = {
            "pres_uri": outcome.pres_uri,
            "op": outcome.op,
            "status": outcome.status,
            "reason": outcome.reason,
            "ok": outcome.ok,
            "own": outcome.ticket is None,
            "local": outcome.local,
            "ended": outcome.ended,
            "retrying": outcome.retrying,
            "expires": outcome.expires,
        }
        if isinstance(outcome, PublishOutcome):
            emit("PUBLISH", etag=outcome.etag, sent_etag=outcome.sent_etag, **common)
        else:
            emit(
                "SUBSCRIBE",
                watcher_uri=outcome.watcher_uri,
                call_id=outcome.call_id,
                local_tag=outcome.local_tag,
                remote_tag=outcome.remote_tag,
                cseq=None if outcome.response is None else outcome.response.cseq.seq,
                **common,
            )

    def _on_notify(self, notify: NotifyReceived, param: object) -> None:
        request = notify.request
        emit(
            "NOTIFY",
            pres_uri=notify.pres_uri,
            watcher_uri=notify.watcher_uri,
            basic=pidf_basic(notify.body),
            state=notify.state,
            reason=notify.reason,
            call_id=request.call_id,
            cseq=request.cseq.seq,
        )

    def stats(self) -> dict[str, dict[str, int]]:
        stats = {
            "publish": dict(self.pua.engine.stats),
            "subscribe": dict(self.pua.subscriptions_engine.stats),
        }
        if self.pua.shared is not None:
            stats["shared"] = dict(self.pua.shared.stats)
        return stats

    # ------------------------------------------------------------ the work
    async def run(self) -> None:
        main = asyncio.current_task()
        assert main is not None

        def stop() -> None:
            if not self.stopping.is_set():
                self.stopping.set()
                main.cancel()

        self.stop = stop
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop)
        await self.pua.start()
        try:
            emit(
                "STARTED",
                port=self.args.port,
                node=None if self.pua.shared is None else self.pua.shared.node_name,
                publications=len(self.pua.publications()),
                subscriptions=len(self.pua.subscriptions()),
            )
            if self.args.mode == "start":
                await self.populate()
            await self.serve_commands()
        except asyncio.CancelledError:
            if not self.stopping.is_set():
                raise
            main.uncancel()
        finally:
            await self.pua.close()
        shared = None if self.pua.shared is None else dict(self.pua.shared.stats)
        emit("STOPPED", shared=shared)

    async def populate(self) -> None:
        args = self.args
        uris = [presentity(args.label, i) for i in range(args.count)]
        published = [
            self.pua.send_publish(
                PublishInfo(
                    pres_uri=uri,
                    event=PRESENCE_EVENT,
                    source_flag=UL_PUBLISH,
                    id=f"node.{i}",
                    body=pidf_document(uri, "open", note=f"node {args.label}"),
                    expires=-1,
                )
            )
            for i, uri in enumerate(uris)
        ]
        await self._all_ok("publish", published)
        contact = self.pua.endpoint.contact_uri(transport="udp")
        subscribed = [
            self.pua.send_subscribe(
                SubscribeInfo(
                    pres_uri=uri,
                    watcher_uri=watcher(args.label),
                    contact=contact,
                    event=PRESENCE_EVENT,
                    source_flag=RPC_SUBSCRIBE,
                    id=f"node.sub.{i}",
                    expires=-1,
                )
            )
            for i, uri in enumerate(uris[: args.subscribe])
        ]
        await self._all_ok("subscribe", subscribed)
        await self._stored()
        emit("READY", **self.memory())

    async def _all_ok(self, what: str, calls: list[Any]) -> None:
        outcomes = await asyncio.wait_for(asyncio.gather(*calls), timeout=20)
        failed = [o for o in outcomes if not o.ok]
        if failed:
            emit("ERROR", what=what, failed=[repr(o) for o in failed])
            raise SystemExit(1)

    def memory(self) -> dict[str, Any]:
        """What the engines hold: presentity -> entity-tag, and presentity
        -> [Call-ID, our tag, the notifier's tag]."""
        return {
            "publications": {p["pres_uri"]: p["etag"] for p in self.pua.publications()},
            "subscriptions": {
                s["pres_uri"]: [s["call_id"], s["local_tag"], s["remote_tag"]]
                for s in self.pua.subscriptions()
            },
        }

    def stored(self) -> dict[str, Any]:
        """The same, as the ``pua`` table holds it."""
        assert self.db_path is not None
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=5)) as db:
            rows = db.execute(
                "SELECT pres_uri, etag, watcher_uri, call_id, from_tag, to_tag"
                f" FROM {self.args.db_table}"
            ).fetchall()
        return {
            "publications": {r[0]: r[1] for r in rows if not r[2]},
            "subscriptions": {r[0]: [r[3], r[4], r[5]] for r in rows if r[2]},
        }

    async def owned(self) -> dict[str, Any]:
        """db_mode 2: what the engines hold, as the table holds it in rows
        this node owns (read through the node's own store)."""
        store, shared = self.pua.store, self.pua.shared
        assert isinstance(store, LeaseStore)
        assert shared is not None
        memory = self.memory()
        publications: dict[str, str] = {}
        for uri in memory["publications"]:
            for row in await store.find(pres_uri=uri, watcher_uri=""):
                if row.owner == shared.node_name:
                    publications[uri] = row.etag
        subscriptions: dict[str, list[str]] = {}
        for s in self.pua.subscriptions():
            rows = await store.find(pres_uri=s["pres_uri"], watcher_uri=s["watcher_uri"])
            for row in rows:
                if row.owner == shared.node_name:
                    subscriptions[row.pres_uri] = [row.call_id, row.from_tag, row.to_tag]
        return {"publications": publications, "subscriptions": subscriptions}

    async def _stored(self) -> None:
        """Wait until the table holds what the engines hold (at once with
        write-through and in db_mode 2, after a write-back otherwise)."""
        if self.pua.shared is None and self.db_path is None:
            return

        async def read() -> dict[str, Any]:
            return self.stored() if self.pua.shared is None else await self.owned()

        deadline = asyncio.get_running_loop().time() + 3 * max(self.args.update_period, 5)
        while (stored := await read()) != self.memory():
            if asyncio.get_running_loop().time() > deadline:
                emit("ERROR", what="store", stored=stored, memory=self.memory())
                raise SystemExit(1)
            await asyncio.sleep(0.05)

    async def serve_commands(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
        tasks: set[asyncio.Task[None]] = set()
        while line := await reader.readline():
            words = line.decode().split()
            if not words:
                continue
            task = loop.create_task(self.command(words))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        # stdin closed: keep running until killed or stopped
        await asyncio.Event().wait()

    async def command(self, words: list[str]) -> None:
        match words:
            case ["SET", pres_uri, basic]:
                await self.pua.send_publish(
                    PublishInfo(
                        pres_uri=pres_uri,
                        event=PRESENCE_EVENT,
                        source_flag=UL_PUBLISH,
                        body=pidf_document(pres_uri, basic),
                        expires=-1,
                    )
                )
            case ["STATS"]:
                emit("STATS", **self.stats())
            case ["CLEANUP"]:
                await self.cleanup()
            case ["STOP"]:
                self.stop()
            case _:
                emit("ERROR", what="command", command=words)

    async def cleanup(self) -> None:
        calls: list[Awaitable[Any]] = []
        for s in self.pua.subscriptions():
            calls.append(
                self.pua.send_subscribe(
                    SubscribeInfo(
                        pres_uri=s["pres_uri"],
                        watcher_uri=s["watcher_uri"],
                        contact=self.pua.endpoint.contact_uri(transport="udp"),
                        event=PRESENCE_EVENT,
                        source_flag=s["source_flag"],
                        id=s["id"],
                        expires=0,
                    )
                )
            )
        for p in self.pua.publications():
            calls.append(
                self.pua.send_publish(
                    PublishInfo(
                        pres_uri=p["pres_uri"],
                        event=PRESENCE_EVENT,
                        source_flag=p["source_flag"],
                        id=p["id"],
                        expires=0,
                    )
                )
            )
        await asyncio.wait_for(asyncio.gather(*calls), timeout=20)
        emit("CLEANED", **self.memory())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pua_node", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="the presence server, HOST:PORT (UDP)")
    parser.add_argument("--db-url", default="", help="pua's database (Kamailio's db_url forms)")
    parser.add_argument("--db-table", default="pua", help="pua's table in it")
    parser.add_argument(
        "--db-mode", type=int, choices=(0, 2), default=0, help="0: write-back, 2: shared table"
    )
    parser.add_argument("--node-id", default="", help="db_mode 2: this node's name")
    parser.add_argument("--lease-time", type=int, default=30, help="db_mode 2: lease, seconds")
    parser.add_argument("--port", type=int, required=True, help="our UDP port on 127.0.0.1")
    parser.add_argument("--mode", choices=("start", "restore"), default="start")
    parser.add_argument("--count", type=int, default=5, help="presentities to publish")
    parser.add_argument("--subscribe", type=int, default=2, help="of them, how many to watch")
    parser.add_argument("--label", default="node", help="user part prefix of every URI")
    parser.add_argument("--write-through", action="store_true")
    parser.add_argument("--update-period", type=int, default=6)
    parser.add_argument("--default-expires", type=int, default=20)
    parser.add_argument("--refresh-low", type=float, default=0.8)
    parser.add_argument("--refresh-high", type=float, default=0.9)
    parser.add_argument("--retry-initial", type=float, default=0.5)
    parser.add_argument("--loop", choices=LOOPS, default="auto")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.subscribe > args.count:
        parser.error("--subscribe must not exceed --count")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        run_loop(Node(args).run(), loop=args.loop)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
