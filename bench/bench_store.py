"""Storage: restoring 100k records from the ``pua`` table at start-up, and
writing 10k changed ones back, on SQLite, PostgreSQL and MariaDB.

The records: 90 % publications (presentity ``sip:user{i}@127.0.0.1``, a
PIDF body of about 250 bytes, 236 as stored (``row_body_bytes``),
confirmed by a 200 with ``SIP-ETag: e{i}`` and ``Expires: 3600``) and
10 % subscription dialogs (watcher
``sip:watcher-user{i}@127.0.0.1``, established by a 200 with a To tag, a
Contact and two Record-Route entries, then a NOTIFY), every tenth row a
dialog.  They are made once, through the sans-IO engines, before anything
is measured; their rows (``pua.persist.publication_row`` /
``subscription_row``) are then inserted into a fresh table of each
database, also outside the measurement:

* SQLite: a file in a temporary directory;
* PostgreSQL (127.0.0.1:5432, db ``test``) and MariaDB (127.0.0.1:3306, db
  ``test``): a table ``pua_bench_<hex>``, dropped at the end with its
  alembic table and its ``version`` row.  A server that cannot be reached
  is skipped (a ``#`` line says so).

The figures, per database, in seconds (wall clock; CPU seconds of this
process beside them, the database server's work is not in those):

* ``{db}_restore_s``: ``WriteBack.restore()`` of every row into fresh
  engines, pages of ``fetch_rows`` (500, pua's default); no request goes
  out (every record is confirmed and not due), which is checked;
  baseline: ``{db}_load_s``, the bare ``store.load()`` of the same rows
  (no engines), so ``{db}_restore_engine_s`` (the difference) is the
  engines' share, including the garbage collector's passes over the
  records they keep;
* ``{db}_flush_s``: ``WriteBack.flush()`` after 10k of the restored
  publications (spread over the table) were refreshed (a body-less
  ``publish`` each, answered by a 200 with a new entity-tag: unmeasured);
  baseline: ``{db}_upsert_s``, ``store.upsert`` of those 10k rows,
  prepared beforehand.

Rounds are interleaved (per round and database: load, restore, flush,
upsert) so that the shared machine's drift hits every case alike; each
figure is the best of the rounds, with the median beside it.

Usage: python bench/bench_store.py [records] [rounds] [--dirty N]
           [--fetch-rows N] [--backends sqlite,postgresql,mariadb]
           [--profile DB]
``--profile`` restores once from that database under cProfile instead and
prints the functions with the most own time and the own-time share per
source file (pua's files one by one, the rest by package).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import common  # noqa: E402
from bench_memory import pidf  # noqa: E402
from bench_memory_subscribe import CONTACT, NOTIFIER, notify_for, presentity, watcher  # noqa: E402
from pua import PRESENCE_EVENT, UL_PUBLISH, PuaConfig, PublishInfo, SubscribeInfo  # noqa: E402
from pua.evpkg.registry import EventRegistry  # noqa: E402
from pua.persist import WriteBack, publication_row, subscription_row  # noqa: E402
from pua.runtime import loop_factory  # noqa: E402
from pua.sip import make_response  # noqa: E402
from pua.store.base import StoreError  # noqa: E402
from pua.store.records import StoredRecord  # noqa: E402
from pua.store.sql import SqlStore  # noqa: E402
from pua.ua.events import NotifyReceived, SubscribeOutcome  # noqa: E402
from pua.ua.publish import Publication, PublishEngine  # noqa: E402
from pua.ua.subscribe import SubscribeEngine  # noqa: E402

#: the restore should take at most this many seconds at 100k records
TARGET_RESTORE_S = 3.0
#: the engines' clock: one instant (rows hold epoch seconds, converted by
#: ``WriteBack`` against the wall clock, which moves)
NOW = common.NOW
URLS = {
    "postgresql": "postgres://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql://root@127.0.0.1:3306/test",
}
BACKENDS = ("sqlite", "postgresql", "mariadb")
#: the proxies a dialog's 200 records (its route set, reversed)
RECORD_ROUTE = "<sip:p1.example.net;lr>, <sip:p2.example.net;lr>"
#: rows per ``store.insert`` while filling a table
INSERT_BATCH = 10_000

#: (wall seconds, CPU seconds) of one measured run
Timing = tuple[float, float]
_T = TypeVar("_T")


def clock() -> float:
    return NOW


def to_epoch(when: float) -> int:
    """The engines' clock -> epoch seconds, as ``WriteBack`` converts."""
    return int(when - NOW + time.time()) if when else 0


def new_engines() -> tuple[PublishEngine, SubscribeEngine]:
    registry = EventRegistry()
    return (
        PublishEngine(PuaConfig(), registry, random.Random(1)),
        SubscribeEngine(PuaConfig(), registry, random.Random(2)),
    )


# ------------------------------------------------------------- the records
def publish(engine: PublishEngine, i: int, etag: str, body: str | None) -> None:
    """Publish presentity ``i`` (``body`` None: a refresh), answer the
    PUBLISH with a 200 carrying ``etag``, drain."""
    uri = presentity(i)
    engine.publish(
        PublishInfo(
            pres_uri=uri, event=PRESENCE_EVENT, source_flag=UL_PUBLISH, body=body, expires=3600
        ),
        NOW,
    )
    for out in engine.requests_to_send():
        response = make_response(
            out.request, 200, to_tag="x", headers=[("SIP-ETag", etag), ("Expires", "3600")]
        )
        engine.handle_response(out.token, response, NOW, local=False)
    for outcome in engine.events():
        if not outcome.ok or outcome.etag != etag:
            raise SystemExit(f"publication {i} failed: {outcome}")


def subscribe(engine: SubscribeEngine, i: int) -> None:
    """Subscribe to presentity ``i``, answer with a 200 (To tag, Contact,
    Record-Route), hand in the first NOTIFY, drain."""
    engine.subscribe(
        SubscribeInfo(
            pres_uri=presentity(i),
            watcher_uri=watcher(i),
            contact=CONTACT,
            event=PRESENCE_EVENT,
            expires=3600,
            source_flag=UL_PUBLISH,
        ),
        NOW,
    )
    remote_tag = f"n{i}"
    for out in engine.requests_to_send():
        response = make_response(
            out.request,
            200,
            to_tag=remote_tag,
            headers=[
                ("Contact", f"<{NOTIFIER}>"),
                ("Record-Route", RECORD_ROUTE),
                ("Expires", "3600"),
            ],
        )
        engine.handle_response(out.token, response, NOW, local=False)
        answer = engine.handle_notify(notify_for(out.request, remote_tag, i), NOW)
        if answer.status != 200:
            raise SystemExit(f"dialog {i}: NOTIFY answered {answer.status}")
    done = [e for e in engine.events() if isinstance(e, SubscribeOutcome | NotifyReceived)]
    if len(done) != 2 or not all(getattr(e, "ok", True) for e in done):
        raise SystemExit(f"dialog {i} failed: {done}")


def make_rows(records: int) -> list[StoredRecord]:
    """The rows of ``records`` records made through the engines, every
    tenth a dialog, in that order."""
    publications, subscriptions = new_engines()
    for i in range(records):
        if i % 10 == 9:
            subscribe(subscriptions, i)
        else:
            publish(publications, i, f"e{i}", pidf(presentity(i), i))
    by_uri: dict[str, StoredRecord] = {}
    for p in publications.publications():
        by_uri[p.pres_uri] = publication_row(p, to_epoch, None)
    for s in subscriptions.subscriptions():
        by_uri[s.pres_uri] = subscription_row(s, to_epoch, None)
    rows = [by_uri[presentity(i)] for i in range(records)]
    if len(rows) != records or len(by_uri) != records:
        raise SystemExit(f"made {len(by_uri)} records, expected {records}")
    return rows


# ----------------------------------------------------------------- the cases
@dataclass
class Database:
    """One database under test: its store, on a fresh table, and the
    timings of its cases, in round order."""

    name: str
    store: SqlStore
    cleanup: Callable[[], Awaitable[None]]
    timings: dict[str, list[Timing]] = field(default_factory=dict)

    def add(self, case: str, timing: Timing) -> None:
        self.timings.setdefault(case, []).append(timing)


async def timed(run: Awaitable[_T]) -> tuple[Timing, _T]:
    """Await ``run`` after a ``gc.collect()``: (wall, CPU) seconds and
    its result."""
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = await run
    return (time.perf_counter() - wall0, time.process_time() - cpu0), result


async def load_all(db: Database, page_size: int) -> int:
    """The baseline: every row through ``store.load()``, no engines."""
    count = 0
    async for page in db.store.load(owner=None, page_size=page_size):
        count += len(page)
    return count


def write_back(db: Database, page_size: int) -> WriteBack:
    publications, subscriptions = new_engines()
    return WriteBack(
        db.store,
        publications,
        subscriptions,
        period=0,
        fetch_rows=page_size,
        node=None,
        clock=clock,
    )


def dirty(wb: WriteBack, count: int, tag: str) -> list[Publication]:
    """Refresh ``count`` restored publications spread over the table,
    each answered with a 200 carrying a new entity-tag (``tag``)."""
    engine = wb.publications
    every = max(1, len(engine) // count)
    chosen: list[Publication] = []
    for n, record in enumerate(sorted(engine.publications(), key=lambda r: r.row_id or 0)):
        if n % every == 0 and len(chosen) < count:
            chosen.append(record)
    for record in chosen:
        i = int(record.pres_uri[len("sip:user") :].partition("@")[0])
        publish(engine, i, f"{tag}-{i}", None)
    return chosen


async def one_round(db: Database, records: int, args: argparse.Namespace, tag: str) -> None:
    """One round on ``db``: load, restore, flush, upsert."""
    timing, loaded = await timed(load_all(db, args.fetch_rows))
    if loaded != records:
        raise SystemExit(f"{db.name}: load gave {loaded} rows, expected {records}")
    db.add("load", timing)

    wb = write_back(db, args.fetch_rows)
    timing, restored = await timed(wb.restore())
    sent = wb.publications.requests_to_send() + wb.subscriptions.requests_to_send()
    if restored != records or sent:
        raise SystemExit(f"{db.name}: restored {restored} of {records}, {len(sent)} requests")
    db.add("restore", timing)

    changed = dirty(wb, args.dirty, tag)
    timing, (written, deleted) = await timed(wb.flush())
    if (written, deleted) != (len(changed), 0):
        raise SystemExit(f"{db.name}: flush wrote {written}, deleted {deleted}")
    db.add("flush", timing)

    rows = [publication_row(record, to_epoch, None) for record in changed]
    timing, ids = await timed(db.store.upsert(rows))
    if ids != [record.row_id for record in changed]:
        raise SystemExit(f"{db.name}: upsert wrote other rows")
    db.add("upsert", timing)


# ------------------------------------------------------------ the databases
async def open_database(name: str, table: str, tmp: Path, fetch_rows: int) -> Database | None:
    """A store on a fresh table of ``name``, open; ``None`` (and a ``#``
    line) when the server cannot be reached."""
    url = f"sqlite:///{tmp}/pua.sqlite" if name == "sqlite" else URLS[name]
    store = SqlStore(url, table, fetch_rows=fetch_rows)

    async def cleanup() -> None:
        await store.close()
        if name != "sqlite":
            await drop_table(url, table)

    try:
        await store.open()
    except StoreError as exc:
        print(f"# {name} skipped: {exc}")
        await store.close()
        return None
    return Database(name, store, cleanup)


async def drop_table(url: str, table: str) -> None:
    """Drop ``table``, its alembic table and its ``version`` row."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from pua.store.url import parse_db_url

    engine = create_async_engine(parse_db_url(url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
            await conn.execute(text(f"DROP TABLE IF EXISTS {table}_alembic_version"))
            has_version = await conn.run_sync(lambda sync: sync.dialect.has_table(sync, "version"))
            if has_version:
                await conn.execute(text("DELETE FROM version WHERE table_name = :t"), {"t": table})
    finally:
        await engine.dispose()


async def fill(db: Database, rows: list[StoredRecord]) -> float:
    """Insert copies of ``rows`` (unmeasured): the wall seconds it took."""
    start = time.perf_counter()
    for k in range(0, len(rows), INSERT_BATCH):
        await db.store.insert([row.copy() for row in rows[k : k + INSERT_BATCH]])
    held = await db.store.count()
    if held != len(rows):
        raise SystemExit(f"{db.name}: table holds {held} rows, expected {len(rows)}")
    return time.perf_counter() - start


# ---------------------------------------------------------------- reporting
def report(db: Database, records: int) -> None:
    """Per case: the best wall seconds (``{db}_{case}_s``), the median,
    the CPU seconds of the best round; then the engines' share of the
    restore, the restore against the target and the flush against the
    upsert."""
    best: dict[str, float] = {}
    median: dict[str, float] = {}
    for case, runs in db.timings.items():
        walls = [wall for wall, _ in runs]
        best[case] = min(walls)
        median[case] = statistics.median(walls)
        name = f"{db.name}_{case}"
        print(f"{name}_s: {best[case]:.3f}")
        print(f"{name}_s_median: {median[case]:.3f}")
        print(f"{name}_cpu_s: {runs[walls.index(best[case])][1]:.3f}")
    name = db.name
    print(f"{name}_restore_records_per_s: {records / best['restore']:.0f}")
    print(f"{name}_restore_engine_s: {best['restore'] - best['load']:.3f}")
    print(f"{name}_restore_vs_load: {best['restore'] / best['load']:.2f}")
    print(f"{name}_restore_vs_load_median: {median['restore'] / median['load']:.2f}")
    print(f"{name}_restore_vs_target: {best['restore'] / TARGET_RESTORE_S:.2f}")
    print(f"{name}_flush_vs_upsert: {best['flush'] / best['upsert']:.2f}")
    print(f"{name}_flush_vs_upsert_median: {median['flush'] / median['upsert']:.2f}")


def print_profile(profiler: cProfile.Profile, top: int = 30) -> None:
    """The ``top`` functions with the most own time, pua's 15 with the
    most time in them and below, then the own-time share per source file
    (``own_time_share {file}``, the 20 largest): pua's files one by one,
    the others by package (``site-packages``) or standard-library file."""
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    # pua's own functions by time spent in them and below: where the
    # restore's time goes, from the top down
    stats.sort_stats("cumulative").print_stats(str(common.SRC), 15)
    print(out.getvalue())
    rows = stats.stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in rows.values())
    by_file: dict[str, float] = {}
    for (filename, _, _), row in rows.items():
        by_file[source(filename)] = by_file.get(source(filename), 0.0) + row[2]
    for name, own in sorted(by_file.items(), key=lambda item: -item[1])[:20]:
        print(f"own_time_share {name}: {own / total:.1%}")


def source(filename: str) -> str:
    """Where a profiled function lives, for ``print_profile``."""
    path = Path(filename)
    if path.is_relative_to(common.SRC):
        return str(path.relative_to(common.SRC))
    if filename.startswith(("~", "<")):
        return "(built-in)"
    if path.is_relative_to(ROOT):
        return f"bench/{path.name}"
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    return f"(stdlib) {path.parent.name}/{path.name}"


# ---------------------------------------------------------------------- main
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", nargs="?", type=int, default=100_000)
    parser.add_argument("rounds", nargs="?", type=int, default=3)
    parser.add_argument("--dirty", type=int, default=10_000, help="publications to write back")
    parser.add_argument("--fetch-rows", type=int, default=PuaConfig().fetch_rows)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--profile", metavar="DB", help="cProfile one restore from DB")
    args = parser.parse_args()
    chosen = [args.profile] if args.profile else args.backends.split(",")
    unknown = set(chosen) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown database(s): {', '.join(sorted(unknown))}")
    args.chosen = chosen
    return args


async def bench(args: argparse.Namespace, tmp: Path) -> None:
    records = args.records
    start = time.perf_counter()
    rows = make_rows(records)
    made = time.perf_counter() - start
    publications = sum(row.is_publication for row in rows)
    dirty_count = min(args.dirty, publications)
    args.dirty = dirty_count
    table = f"pua_bench_{secrets.token_hex(4)}"
    databases: list[Database] = []
    try:
        inserted: dict[str, float] = {}
        for name in args.chosen:
            db = await open_database(name, table, tmp, args.fetch_rows)
            if db is not None:
                databases.append(db)
                inserted[name] = await fill(db, rows)
        if args.profile:
            if databases:
                await profile(databases[0], records, args)
            return
        for r in range(args.rounds):
            for db in databases:
                await one_round(db, records, args, f"r{r}")
        print(f"records: {records}")
        print(f"publications: {publications}")
        print(f"subscriptions: {records - publications}")
        print(f"dirty: {dirty_count}")
        print(f"fetch_rows: {args.fetch_rows}")
        print(f"rounds: {args.rounds}")
        print(f"row_body_bytes: {len(rows[0].body or b'')}")
        print(f"setup_engines_s: {made:.2f}")
        print(f"target_restore_s: {TARGET_RESTORE_S:.1f}")
        for db in databases:
            print(f"{db.name}_setup_insert_s: {inserted[db.name]:.2f}")
            report(db, records)
    finally:
        for db in databases:
            await db.cleanup()


async def profile(db: Database, records: int, args: argparse.Namespace) -> None:
    """One load (warming up), then one restore under cProfile."""
    await load_all(db, args.fetch_rows)
    wb = write_back(db, args.fetch_rows)
    gc.collect()
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    restored = await wb.restore()
    profiler.disable()
    wall = time.perf_counter() - start
    if restored != records:
        raise SystemExit(f"{db.name}: restored {restored} of {records}")
    print_profile(profiler)
    print(f"profiled_{db.name}_restore_s: {wall:.3f}  (slowed by the profiler)")


def main() -> None:
    args = parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="pua-bench-") as tmp,
        asyncio.Runner(loop_factory=loop_factory("auto")) as runner,
    ):
        runner.run(bench(args, Path(tmp)))


if __name__ == "__main__":
    main()
