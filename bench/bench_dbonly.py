"""PUBLISH transactions per wall-clock second in db_mode 2 (DB only) on
PostgreSQL, with one node and with two nodes sharing one table, against a
SIPp UAS on loopback.

A node is a process of its own (``multiprocessing``, spawn), so that two
nodes really run on two cores: one ``PuaAPI(PuaConfig(db_mode=2,
db_url=..., db_table=..., node_id=benchN, outbound_proxy=...))`` on uvloop
with its own UDP port.  Every node publishes its own N presentities
(``sip:n{k}-user{i}@127.0.0.1``), at most ``window`` outstanding at any
time (``window`` coroutines, each awaiting its ``PublishCall`` before the
next one, as in bench_publish.py).  SIPp answers every PUBLISH 200 OK
with a new SIP-ETag and the Expires asked for (``bench/sipp/
uas_publish.xml``).  Two phases, each a figure of its own:

* ``initial``: one PUBLISH per presentity, a small PIDF body (about 200
  bytes).  In db_mode 2 a call about a record the node does not hold looks
  for it in the database first (``DbOnly.adopt``: the calls waiting in the
  node's call queue share one query and one take-over), then the PUBLISH
  goes out; once answered, the
  new record is inserted (write-at-once, batched while a write runs);
* ``modify``: ``send_publish`` again for every presentity with a new body,
  a PUBLISH with SIP-If-Match.  The record is held, so no lookup; its
  request waits for the one query per batch that confirms this node still
  owns the row (``PuaAPI._open_gate``), and the new entity-tag is written
  by compare-and-set on the owner.

One run: a fresh table (``pua_bench_<hex>``, created beforehand, dropped
afterwards with its alembic table and its ``version`` row); each node
starts, warms up (``2 * window`` presentities of its own, initial and
modify, unmeasured) and waits on a barrier; then all nodes start a phase
together.  A node's clock stops only once its last change is committed
(``await pua.shared.flush()`` after the last outcome): an unwritten tail
does not count as done.  The figure of a phase is the transactions of all
nodes divided by the wall-clock seconds from the first node's start to the
last node's end (the slowest node).  After the run (unmeasured) every node
reads its rows back and checks that each of its presentities has a row it
owns holding the entity-tag of its last 200, and the table holds exactly
N + warm-up rows per node, each with its owner; a run that fails this
check ends the script.

The baseline, in the same run against the same SIPp, with the same
workload: one node in db_mode 0 with no database (memory only), so the
cost of the database shows (``dbonly-1-node-vs-baseline``).  Beside each
figure: the transactions per CPU-second of the node processes (SIPp and
PostgreSQL not included), which drift less than wall time on a shared
machine.

Rounds are interleaved (baseline, 1 node, 2 nodes) so that the shared
machine's drift hits every case alike; each figure is the best of the
rounds, with the median beside it.  The targets: at least 2,000 tx/s for
one node, and two nodes at least 1.7 times one node (``ratio-2-to-1``).

Usage: python bench/bench_dbonly.py [publications] [window] [rounds]
           [--db-url URL] [--profile]
``publications`` is per node (5,000, window 256, 3 rounds by default).
``--profile`` runs one 1-node db_mode 2 run with the node under cProfile
instead and prints, per phase, the functions with the most own time and
the own-time share per source file (pua's files one by one, the rest by
package).  Needs ``sipp`` (Debian package sip-tester) and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import multiprocessing
import multiprocessing.synchronize
import queue
import secrets
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import common  # noqa: E402
from bench_publish import initial, workload  # noqa: E402
from bench_store import URLS, drop_table, print_profile  # noqa: E402
from bench_transactions import publish_uas  # noqa: E402
from pua import PuaAPI, PuaConfig  # noqa: E402
from pua.endpoint import EndpointConfig  # noqa: E402
from pua.runtime import run  # noqa: E402

TARGET_1_NODE_TX_S = 2_000
TARGET_RATIO_2_TO_1 = 1.7
PHASES = ("initial", "modify")
#: seconds a node may wait on the barrier, or for its results to come back
TIMEOUT = 300.0


@dataclass(frozen=True)
class Case:
    """One case of a round: how many nodes, and whether on the database."""

    name: str
    nodes: int
    db: bool


CASES = (
    Case("baseline-memory-1-node", 1, db=False),
    Case("dbonly-1-node", 1, db=True),
    Case("dbonly-2-nodes", 2, db=True),
)


@dataclass(frozen=True)
class NodeSpec:
    """What one node process does (pickled to it)."""

    index: int
    port: int
    count: int
    window: int
    #: empty: db_mode 0, memory only
    db_url: str
    table: str
    profile: bool = False

    @property
    def node_id(self) -> str:
        return f"bench{self.index}"


@dataclass
class PhaseResult:
    """One node's phase: perf_counter at start and end (CLOCK_MONOTONIC,
    comparable between processes), CPU seconds, failed transactions."""

    start: float
    end: float
    cpu: float
    failed: int


@dataclass
class NodeResult:
    phases: dict[str, PhaseResult] = field(default_factory=dict)
    #: presentities whose row was read back and found right
    rows_checked: int = 0


# ------------------------------------------------------------------ a node
def modified(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The same presentities, each with a new body (basic status closed)."""
    return [(uri, body.replace(">open<", ">closed<")) for uri, body in items]


async def wait_barrier(barrier: multiprocessing.synchronize.Barrier) -> None:
    # in a thread: the loop keeps serving the node while it waits
    await asyncio.to_thread(barrier.wait, TIMEOUT)


async def node(spec: NodeSpec, barrier: multiprocessing.synchronize.Barrier) -> NodeResult:
    """One node: start, warm up, then each phase after the barrier; for
    db_mode 2, read the rows back at the end."""
    proxy = f"sip:127.0.0.1:{spec.port}"
    prefix = f"n{spec.index}-"
    warm = workload(prefix + "warm", 2 * spec.window)
    items = workload(prefix + "user", spec.count)
    work = {"initial": (warm, items), "modify": (modified(warm), modified(items))}
    config = (
        PuaConfig(db_mode=2, db_url=spec.db_url, db_table=spec.table, node_id=spec.node_id)
        if spec.db_url
        else PuaConfig()
    )
    #: the entity-tag of each presentity's last 200
    etags: dict[str, str] = {}
    result = NodeResult()
    async with PuaAPI(config, endpoint_config=EndpointConfig()) as pua:

        async def settle() -> None:
            if pua.shared is not None:
                await pua.shared.flush()

        def sender(op: str) -> Callable[[tuple[str, str]], Any]:
            async def one(item: tuple[str, str]) -> bool:
                outcome = await pua.send_publish(initial(*item, proxy))
                if outcome.etag is not None:
                    etags[item[0]] = outcome.etag
                return outcome.ok and outcome.status == 200 and outcome.op == op

            return one

        for phase in PHASES:
            if await common.windowed(work[phase][0], spec.window, sender(phase)):
                raise SystemExit(f"node {spec.index}: the warm-up ({phase}) failed")
        await settle()
        for phase in PHASES:
            one = sender(phase)
            await wait_barrier(barrier)
            profiler = cProfile.Profile() if spec.profile else None
            if profiler is not None:
                profiler.enable()
            cpu0, start = time.process_time(), time.perf_counter()
            failed = await common.windowed(work[phase][1], spec.window, one)
            await settle()
            end, cpu = time.perf_counter(), time.process_time() - cpu0
            if profiler is not None:
                profiler.disable()
                print(f"# ---- profile of the {phase} phase ({spec.count} publications)")
                print_profile(profiler)
                print(f"profiled-{phase}: {spec.count / (end - start):.0f} tx/s (profiler on)")
            result.phases[phase] = PhaseResult(start, end, cpu, failed)
        if pua.shared is not None:
            result.rows_checked = await check_rows(pua, spec, etags)
    return result


async def check_rows(pua: PuaAPI, spec: NodeSpec, etags: dict[str, str]) -> int:
    """Every presentity of this node has a row this node owns holding the
    entity-tag of its last 200; how many were checked."""
    assert pua.store is not None
    stored: dict[str, tuple[str | None, str]] = {}
    async for page in pua.store.load(owner=spec.node_id):
        for row in page:
            stored[row.pres_uri] = (row.owner, row.etag)
    wrong = [uri for uri, etag in etags.items() if stored.get(uri) != (spec.node_id, etag)]
    if wrong or len(etags) != spec.count + 2 * spec.window:
        uri = wrong[0] if wrong else "-"
        raise SystemExit(
            f"node {spec.index}: {len(wrong)} of {len(etags)} rows not written as answered "
            f"(e.g. {uri}: {stored.get(uri)}, expected ({spec.node_id!r}, {etags.get(uri)!r}))"
        )
    return len(etags)


def node_process(
    spec: NodeSpec, barrier: multiprocessing.synchronize.Barrier, results: Any
) -> None:
    """The node process's entry: its result, or its error as text, on
    ``results``."""
    try:
        results.put((spec.index, run(node(spec, barrier), "uvloop")))
    except BaseException:
        barrier.abort()  # the other nodes must not wait for this one
        results.put((spec.index, traceback.format_exc()))


# ------------------------------------------------------------ one run
def run_case(
    case: Case, port: int, args: argparse.Namespace, *, profile: bool = False
) -> dict[str, tuple[float, float, int]]:
    """One run of ``case`` on a fresh table: per phase, (wall seconds from
    the first node's start to the last node's end, CPU seconds of all
    nodes, failures)."""
    table = f"pua_bench_{secrets.token_hex(4)}" if case.db else ""
    url = args.db_url if case.db else ""
    if case.db:
        run(create_table(url, table))
    try:
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(case.nodes)
        results = ctx.Queue()
        specs = [
            NodeSpec(k, port, args.publications, args.window, url, table, profile)
            for k in range(case.nodes)
        ]
        procs = [ctx.Process(target=node_process, args=(s, barrier, results)) for s in specs]
        for proc in procs:
            proc.start()
        got: dict[int, NodeResult] = {}
        errors: list[str] = []
        deadline = time.monotonic() + 3 * TIMEOUT
        while len(got) + len(errors) < case.nodes:
            try:
                index, outcome = results.get(timeout=1.0)
            except queue.Empty:
                if time.monotonic() > deadline or not any(p.is_alive() for p in procs):
                    errors.append("a node died or hung without a result")
                    break
                continue
            if isinstance(outcome, NodeResult):
                got[index] = outcome
            else:
                errors.append(f"node {index}:\n{outcome}")
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        if errors:
            raise SystemExit(f"{case.name} failed:\n" + "\n".join(errors))
        if case.db:
            expected = {s.node_id: args.publications + 2 * args.window for s in specs}
            owners = run(table_owners(url, table))
            if owners != expected:
                raise SystemExit(f"{case.name}: rows per owner {owners}, expected {expected}")
    finally:
        if case.db:
            run(drop_table(url, table))
    out: dict[str, tuple[float, float, int]] = {}
    for phase in PHASES:
        ends = [r.phases[phase] for r in got.values()]
        wall = max(p.end for p in ends) - min(p.start for p in ends)
        out[phase] = (wall, sum(p.cpu for p in ends), sum(p.failed for p in ends))
    return out


async def create_table(url: str, table: str) -> None:
    """``table`` at the current schema (the nodes then find it ready)."""
    from pua.store.sql import SqlStore

    store = SqlStore(url, table)
    try:
        await store.open()
    finally:
        await store.close()


async def table_owners(url: str, table: str) -> dict[str | None, int]:
    """Rows per ``owner`` in ``table``."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from pua.store.url import parse_db_url

    engine = create_async_engine(parse_db_url(url))
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text(f"SELECT owner, COUNT(*) FROM {table} GROUP BY owner"))
            return {owner: int(n) for owner, n in rows}
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- report
#: per case and phase: (wall, CPU, failed) of each round, in round order
Runs = dict[tuple[str, str], list[tuple[float, float, int]]]


def report(runs: Runs, nodes: dict[str, int], count: int) -> dict[tuple[str, str], list[float]]:
    """Per case and phase: the best rate over the rounds and the median,
    the rate per CPU-second of the nodes in that round, the failures over
    all rounds; return the rates per case and phase, in round order."""
    rates: dict[tuple[str, str], list[float]] = {}
    for (name, phase), results in runs.items():
        total = nodes[name] * count
        done = [total - failed for _, _, failed in results]
        rate = [n / wall for n, (wall, _, _) in zip(done, results, strict=True)]
        rates[(name, phase)] = rate
        best = rate.index(max(rate))
        print(f"{name}-{phase}: {rate[best]:.0f} tx/s (median {statistics.median(rate):.0f})")
        cpu = done[best] / results[best][1]
        print(f"{name}-{phase}-per-node-cpu-s: {cpu:.0f} tx (best round)")
        print(f"{name}-{phase}-failed: {sum(failed for _, _, failed in results)}")
    return rates


def ratio_line(name: str, top: list[float], bottom: list[float]) -> str:
    best = max(top) / max(bottom)
    median = statistics.median(top) / statistics.median(bottom)
    return f"{name}: {best:.2f} (median {median:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("publications", nargs="?", type=int, default=5_000, help="per node")
    parser.add_argument("window", nargs="?", type=int, default=256)
    parser.add_argument("rounds", nargs="?", type=int, default=3)
    parser.add_argument("--db-url", default=URLS["postgresql"])
    parser.add_argument("--profile", action="store_true", help="cProfile one 1-node run")
    args = parser.parse_args()
    port = common.free_udp_port()
    runs: Runs = {(case.name, phase): [] for case in CASES for phase in PHASES}
    with publish_uas(port):
        if args.profile:
            run_case(CASES[1], port, args, profile=True)
            return
        for _ in range(args.rounds):
            for case in CASES:
                for phase, result in run_case(case, port, args).items():
                    runs[(case.name, phase)].append(result)
    print(f"publications-per-node: {args.publications}")
    print(f"warm-up-per-node: {2 * args.window}")
    print(f"window: {args.window}")
    print(f"rounds: {args.rounds}")
    print(f"target-1-node: {TARGET_1_NODE_TX_S} tx/s")
    print(f"target-ratio-2-to-1: {TARGET_RATIO_2_TO_1}")
    rates = report(runs, {case.name: case.nodes for case in CASES}, args.publications)
    for phase in PHASES:
        one, two = rates[("dbonly-1-node", phase)], rates[("dbonly-2-nodes", phase)]
        base = rates[("baseline-memory-1-node", phase)]
        print(ratio_line(f"ratio-2-to-1-{phase}", two, one))
        print(ratio_line(f"dbonly-1-node-vs-baseline-{phase}", one, base))
        print(f"dbonly-1-node-{phase}-vs-target: {max(one) / TARGET_1_NODE_TX_S:.2f}")
    print(
        "rows-written: checked after every db_mode 2 run: each node's "
        f"{args.publications + 2 * args.window} rows owned by it, holding its last entity-tags"
    )


if __name__ == "__main__":
    main()
