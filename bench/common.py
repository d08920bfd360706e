"""What the benchmark scripts share.

* SIPp on loopback: a free UDP port, a UAS started from a scenario and
  ready once a probe gets through, stopped with its process group;
* throughput against SIPp: the command line, items driven with at most
  ``window`` outstanding, interleaved rounds of the cases, the best/median
  report, one run under cProfile with the own-time share per source file;
* memory: one measurement per fresh child process (resident size or
  tracemalloc), the interleaved rounds over (raw|engine) x
  (rss|tracemalloc), their report, and the ``sys.getsizeof`` breakdown.

The scripts import it as ``common`` once they have put this directory on
``sys.path``; importing it puts ``src`` there too, ahead of an installed
``pua``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence, Sized
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))

from pua.runtime import loop_factory  # noqa: E402

#: (CPU seconds, wall seconds, failures) of one measured run
Result = tuple[float, float, int]
#: sends one probe from the socket to SIPp's port (the probe's number
#: given) and tells whether SIPp answered it; a receive timeout counts as no
Probe = Callable[[socket.socket, int, int], bool]
#: starts a SIPp UAS on the given port for a ``with`` block
Uas = Callable[[int], AbstractContextManager[None]]

_T = TypeVar("_T")
_Engine = TypeVar("_Engine", bound=Sized)


# ------------------------------------------------------------------ SIPp
def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sipp(port: int, scenario: Path, probe: Probe) -> subprocess.Popen[bytes]:
    """SIPp running ``scenario`` on 127.0.0.1:``port`` in its own session,
    returned once ``probe`` succeeds (tried again every 0.2 s or so);
    stopped, and the script ended, if that takes more than 10 s."""
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp not found: apt-get install sip-tester")
    proc = subprocess.Popen(
        [
            sipp,
            "-sf",
            str(scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-nostdin",
            "-max_recv_loops",
            "10000",
            "-max_sched_loops",
            "10000",
            "-buff_size",
            str(8 * 1024 * 1024),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd="/tmp",
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
        deadline = time.monotonic() + 10
        n = 0
        while time.monotonic() < deadline:
            n += 1
            try:
                if probe(sock, port, n):
                    return proc
            except TimeoutError:
                continue
    stop(proc)
    raise SystemExit("sipp did not answer within 10 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End SIPp's process group: SIGTERM, then SIGKILL after 5 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def sipp_uas(port: int, scenario: Path, probe: Probe) -> Iterator[None]:
    """SIPp running ``scenario`` on ``port`` (see ``start_sipp``) for the
    ``with`` block, stopped however the block ends."""
    proc = start_sipp(port, scenario, probe)
    try:
        yield
    finally:
        stop(proc)


# -------------------------------------------------- throughput against SIPp
def throughput_parser(description: str, items: str) -> argparse.ArgumentParser:
    """The command line ``[items] [window] [rounds] [--no-asyncio]
    [--profile]`` (20,000, 256 and 5 by default); ``items`` names the
    first argument."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(items, nargs="?", type=int, default=20_000)
    parser.add_argument("window", nargs="?", type=int, default=256)
    parser.add_argument("rounds", nargs="?", type=int, default=5)
    parser.add_argument("--no-asyncio", action="store_true", help="skip the stock-loop case")
    parser.add_argument("--profile", action="store_true", help="cProfile one PuaAPI run")
    return parser


def run_against_sipp(
    args: argparse.Namespace,
    uas: Uas,
    cases: Iterable[str],
    measure: Callable[[str, int, argparse.Namespace], Result],
    profile: Callable[[int, argparse.Namespace], None],
) -> dict[str, list[Result]] | None:
    """With SIPp started by ``uas`` on a free port: under ``--profile``,
    ``profile(port, args)`` and ``None``; otherwise ``args.rounds`` rounds
    of ``cases`` in turn (those ending ``_asyncio`` left out under
    ``--no-asyncio``), so that the shared machine's drift hits every case
    alike, each run ``measure(case, port, args)``: the results per case,
    in round order."""
    port = free_udp_port()
    with uas(port):
        if args.profile:
            profile(port, args)
            return None
        chosen = [case for case in cases if not (args.no_asyncio and case.endswith("_asyncio"))]
        results: dict[str, list[Result]] = {case: [] for case in chosen}
        for _ in range(args.rounds):
            for case in chosen:
                results[case].append(measure(case, port, args))
    return results


async def windowed(
    items: Sequence[_T],
    window: int,
    one: Callable[[_T], Awaitable[bool]],
    timeout: float | None = None,
) -> int:
    """Run ``one`` over ``items`` with at most ``window`` outstanding;
    return how many failed (``one`` returned false).  With ``timeout``, the
    run is cut after that many seconds (a ``#`` line says so) and every
    item not done by then counts as failed."""
    done = 0

    async def worker(start: int) -> None:
        nonlocal done
        for k in range(start, len(items), window):
            if await one(items[k]):
                done += 1

    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(worker(w) for w in range(min(window, len(items)))))
    except TimeoutError:
        print(f"# run cut after {timeout:.0f} s: {done} of {len(items)} established")
    return len(items) - done


async def measured(run: Awaitable[int]) -> Result:
    """Await ``run`` (a ``windowed`` run, which returns its failures):
    this process's CPU time and the wall time it took, and the failures."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    failures = await run
    return time.process_time() - cpu0, time.perf_counter() - wall0, failures


def print_setup(items: str, count: int, args: argparse.Namespace) -> None:
    """The lines ``{items}_per_run``, ``window`` and ``rounds``."""
    print(f"{items}_per_run: {count}")
    print(f"window: {args.window}")
    print(f"rounds: {args.rounds}")


def report(
    results: dict[str, list[Result]], count: int, unit: str, *, failed_undone: bool = False
) -> tuple[dict[str, float], dict[str, float]]:
    """Print, per case, the best rate per CPU-second over the rounds
    (``{case}_{unit}_per_cpu_s``), the median (``..._median``), the rate per
    wall-second of the best round (``{case}_{unit}_per_wall_s``) and the
    failures over all rounds (``{case}_failed``); return the best and the
    median rates per case.  A run is ``count`` items; with
    ``failed_undone``, its failed items are left out of its rates."""
    best: dict[str, float] = {}
    median: dict[str, float] = {}
    for case, runs in results.items():
        done = [count - failed if failed_undone else count for _, _, failed in runs]
        rates = [n / cpu for n, (cpu, _, _) in zip(done, runs, strict=True)]
        best[case] = max(rates)
        median[case] = statistics.median(rates)
        i = rates.index(best[case])
        print(f"{case}_{unit}_per_cpu_s: {best[case]:.0f}")
        print(f"{case}_{unit}_per_cpu_s_median: {median[case]:.0f}")
        print(f"{case}_{unit}_per_wall_s: {done[i] / runs[i][1]:.0f}")
        print(f"{case}_failed: {sum(failed for _, _, failed in runs)}")
    return best, median


def profile_run(
    main: Coroutine[Any, Any, Result], name: str, count: int, *, failed_undone: bool = False
) -> None:
    """Run ``main`` (``count`` items) on uvloop under cProfile; print the
    25 functions with the most own time, the own-time share per source file
    under ``src`` (``own_time_share {file}``, the 15 largest), the rate per
    CPU-second (``{name}``, ``failed_undone`` as in ``report``) and
    ``profiled_failed``."""
    profiler = cProfile.Profile()
    with asyncio.Runner(loop_factory=loop_factory("uvloop")) as r:
        profiler.enable()
        cpu, _, failed = r.run(main)
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    print(out.getvalue())
    # own time per source file: which module to look at first
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    by_file: dict[str, float] = {}
    for (filename, _, _), row in stats.stats.items():  # type: ignore[attr-defined]
        path = Path(filename)
        file = str(path.relative_to(SRC)) if path.is_relative_to(SRC) else "(outside pua)"
        by_file[file] = by_file.get(file, 0.0) + row[2]
    for file, own in sorted(by_file.items(), key=lambda item: -item[1])[:15]:
        print(f"own_time_share {file}: {own / total:.1%}")
    done = count - failed if failed_undone else count
    print(f"{name}: {done / cpu:.0f}  (slowed by the profiler)")
    print(f"profiled_failed: {failed}")


# ---------------------------------------------------------------- memory
#: the memory cases, in the order each round runs them: (kind, method)
MEMORY_CASES = [(kind, method) for kind in ("raw", "engine") for method in ("rss", "tracemalloc")]
#: items the engine and the raw data are warmed up with in each child
WARM_UP = 1000
#: the clock the memory scripts drive their sans-IO engines with: one
#: instant, at which nothing falls due
NOW = 1000.0
PAGE = os.sysconf("SC_PAGE_SIZE")

#: bytes per item of each memory case, in round order
PerCase = dict[tuple[str, str], list[float]]


@dataclass(frozen=True)
class MemoryBench(Generic[_Engine]):
    """What a memory script measures, for ``memory_main``."""

    #: what the engine holds, plural: the first argument's and line's name
    items: str
    #: singular, in the figures' names (``..._bytes_per_{item}``)
    item: str
    #: the most bytes one item should cost, printed beside the figures
    target: int
    #: the raw data of ``n`` items alone, the baseline
    fill_raw: Callable[[int], object]
    #: a fresh, empty engine
    new_engine: Callable[[], _Engine]
    #: puts item ``i`` in the engine and completes its exchange, its URIs
    #: made with the prefix
    add: Callable[[_Engine, int, str], None]
    #: the ``sys.getsizeof`` breakdown of one record in the engine
    breakdown: Callable[[_Engine], dict[str, float]]


def memory_main(
    doc: str,
    script: str,
    bench: MemoryBench[Any],
    notes: Callable[[int], Iterable[str]] | None = None,
) -> None:
    """The memory script ``script`` (module docstring ``doc``): the command
    line ``[items] [rounds]`` (100,000 and 3 by default), the rounds of
    ``MEMORY_CASES`` each in its own child process, then the report: the
    ``{items}`` and ``rounds`` lines, the lines ``notes(count)``, the
    ``target_bytes_per_{item}`` line and ``memory_report``.  In a child
    (``--child KIND METHOD``, from ``run_child``): that case's
    ``measure_in_child``, printed as JSON."""
    parser = argparse.ArgumentParser(description=doc.partition("\n\n")[0])
    parser.add_argument(bench.items, nargs="?", type=int, default=100_000)
    parser.add_argument("rounds", nargs="?", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    count: int = getattr(args, bench.items)
    if args.child:
        kind, method = args.child
        print(json.dumps(measure_in_child(bench, kind, method, count)))
        return
    per, sizes = memory_rounds(script, count, args.rounds)
    print(f"{bench.items}: {count}")
    print(f"rounds: {args.rounds}")
    for line in notes(count) if notes else ():
        print(line)
    print(f"target_bytes_per_{bench.item}: {bench.target}")
    memory_report(per, sizes, bench.item, bench.target)


def rss() -> int:
    """This process's resident set size in bytes (``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _in_use(method: str) -> int:
    return tracemalloc.get_traced_memory()[0] if method == "tracemalloc" else rss()


def _grown(method: str, fill: Callable[[], _T]) -> tuple[int, _T]:
    """The bytes that ``fill``'s result holds by ``method`` (``rss``, or
    ``tracemalloc`` started just before ``fill``), after ``gc.collect()``;
    and that result."""
    gc.collect()
    if method == "tracemalloc":
        tracemalloc.start()
    before = _in_use(method)
    held = fill()
    gc.collect()
    return _in_use(method) - before, held


def fill_engine(bench: MemoryBench[_Engine], count: int, prefix: str) -> _Engine:
    """A fresh engine holding items 0 to ``count`` - 1 (URIs with ``prefix``)."""
    engine, add = bench.new_engine(), bench.add
    for i in range(count):
        add(engine, i, prefix)
    return engine


def measure_in_child(
    bench: MemoryBench[_Engine], kind: str, method: str, count: int
) -> dict[str, Any]:
    """One measurement in this (fresh) process: ``{"bytes": ...}``, what
    ``count`` items take held by a fresh engine (which must hold them all)
    or as raw data (``kind``), by ``method`` (``rss`` or ``tracemalloc``);
    for the engine by ``rss``, its ``breakdown`` too.  Beforehand, an
    engine with ``WARM_UP`` items (prefix ``warm``, kept) and the raw data
    of as many (dropped) page in the caches and the code paths."""
    _warm = fill_engine(bench, WARM_UP, "warm")  # held until the end
    bench.fill_raw(WARM_UP)
    if kind == "raw":
        grown, _ = _grown(method, lambda: bench.fill_raw(count))
        return {"bytes": grown}
    grown, engine = _grown(method, lambda: fill_engine(bench, count, "user"))
    if len(engine) != count:
        raise SystemExit(f"engine holds {len(engine)} {bench.items}, expected {count}")
    result: dict[str, Any] = {"bytes": grown}
    if method == "rss":
        result["breakdown"] = bench.breakdown(engine)
    return result


def run_child(script: str, count: int, kind: str, method: str) -> dict[str, Any]:
    """Run ``script`` in a fresh child process measuring one case
    (tracemalloc's own bookkeeping would inflate the resident size of any
    later measurement); the JSON object it prints."""
    out = subprocess.run(
        [sys.executable, script, str(count), "--child", kind, method],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def memory_rounds(script: str, count: int, rounds: int) -> tuple[PerCase, dict[str, float]]:
    """``rounds`` rounds of ``MEMORY_CASES`` in turn, each case in its own
    child of ``script``: the bytes per item of each case, in round order,
    and the last breakdown a child sent."""
    per: PerCase = {case: [] for case in MEMORY_CASES}
    sizes: dict[str, float] = {}
    for _ in range(rounds):
        for kind, method in MEMORY_CASES:
            result = run_child(script, count, kind, method)
            per[(kind, method)].append(result["bytes"] / count)
            sizes = result.get("breakdown", sizes)
    return per, sizes


def memory_report(per: PerCase, sizes: dict[str, float], item: str, target: int) -> None:
    """Print, per case, the smallest bytes per ``item`` over the rounds and
    the median, the engine's overhead over the raw data, the engine's
    resident size against ``target`` and the breakdown (``getsizeof_*``)."""
    names = {"engine": "", "raw": "baseline_raw_"}
    for (kind, method), values in per.items():
        name = f"{names[kind]}{method}_bytes_per_{item}"
        print(f"{name}: {min(values):.0f}")
        print(f"{name}_median: {statistics.median(values):.0f}")
    for method in ("rss", "tracemalloc"):
        overhead = min(per[("engine", method)]) - min(per[("raw", method)])
        print(f"engine_overhead_{method}_bytes_per_{item}: {overhead:.0f}")
    print(f"rss_vs_target: {min(per[('engine', 'rss')]) / target:.2f}")
    for name, size in sizes.items():
        print(f"getsizeof_{name}: {size:.0f}")


def record_sizes(one: object, other: object, slots: Iterable[str]) -> dict[str, float]:
    """``sys.getsizeof`` of record ``one`` (``record``) and of the value of
    each of its ``slots`` (``field_{slot}``), values that are also
    ``other``'s (shared: the event package, ``None``, small ints...) or
    counted under another slot left out."""
    sizes: dict[str, float] = {"record": sys.getsizeof(one)}
    seen = {id(one)}
    for name in slots:
        value = getattr(one, name)
        if value is getattr(other, name, None) or id(value) in seen:
            continue  # shared, or counted under another name
        seen.add(id(value))
        sizes[f"field_{name}"] = sys.getsizeof(value)
    return sizes


def finish_breakdown(sizes: dict[str, float], heap: list[Any]) -> dict[str, float]:
    """``sizes`` with one refresh-heap entry (``heap_entry_tuple``), each
    record's share of the heap's list (``heap_list_share``) and the
    ``total`` added."""
    sizes["heap_entry_tuple"] = sys.getsizeof(heap[0])
    sizes["heap_list_share"] = sys.getsizeof(heap) / len(heap)
    sizes["total"] = sum(sizes.values())
    return sizes
