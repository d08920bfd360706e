"""PUBLISH transactions per CPU-second through ``PuaAPI.send_publish``,
against a SIPp UAS on loopback.

Each run publishes N distinct presentities (``sip:user{i}@127.0.0.1``),
each once: an initial PUBLISH with a small PIDF body, answered by SIPp
with 200 OK, a SIP-ETag and the Expires asked for
(``bench/sipp/uas_publish.xml``).  At most ``window`` publications are
outstanding at any time (``window`` coroutines, each awaiting its
``PublishCall`` before the next one), so the figure is throughput, not
queueing.  One transaction is the whole PuaAPI path: the engine's intake
(URI check, PIDF processing, the record), the request it builds, the
endpoint (next hop from the outbound proxy URI, transaction layer, UDP),
the 200 back into the engine (ETag, refresh deadline, outcome) and the
caller's awaitable completed.  After a run the engine holds N publications
(plus the warm-up ones); no refresh is due within the run.

The figure is transactions divided by this process's CPU time (user +
system) over the measured window; SIPp runs in its own process.

The baseline, in the same run against the same SIPp, with the same
presentities, bodies and window: the same PUBLISH transactions sent
through ``SipEndpoint.request`` directly (what bench_transactions.py
measures: build the request, the transaction layer, UDP, the 200).  The
ratio shows what the PUBLISH engine and the API add.

A second PuaAPI figure, ``refresh``, measures the steady state: for
publications made beforehand, a body-less ``send_publish`` each, which goes
out as a PUBLISH with SIP-If-Match and no body.

Rounds are interleaved (baseline, then PuaAPI on uvloop, refreshes, then
PuaAPI on the stock asyncio loop) so that the shared machine's drift hits every case
alike; each figure is the best of the rounds, with the median beside it.

Usage: python bench/bench_publish.py [publications] [window] [rounds]
           [--no-asyncio] [--profile]
``--profile`` runs one PuaAPI round under cProfile instead and prints the
25 functions with the most own time.  Needs ``sipp`` (Debian package
sip-tester).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent
SRC = ROOT.parent / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(ROOT))

from bench_transactions import free_udp_port, start_sipp, stop  # noqa: E402
from pua import PRESENCE_EVENT, UL_PUBLISH, PuaAPI, PuaConfig, PublishInfo  # noqa: E402
from pua.cli.send import make_publish  # noqa: E402
from pua.endpoint import EndpointConfig, SipEndpoint  # noqa: E402
from pua.runtime import loop_factory  # noqa: E402
from pua.sip.address import Address  # noqa: E402

#: what the PuaAPI path should reach, printed beside the figures
TARGET_TX_PER_CPU_S = 25_000
PIDF = "application/pidf+xml"

#: (CPU seconds, wall seconds, failures)
Result = tuple[float, float, int]
_Body = TypeVar("_Body", str, bytes)


def presentity(prefix: str, i: int) -> str:
    return f"sip:{prefix}{i}@127.0.0.1"


def pidf(uri: str, i: int) -> str:
    """A small PIDF document (about 200 bytes), distinct per presentity."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{uri}">'
        f'<tuple id="t{i}"><status><basic>open</basic></status></tuple></presence>\n'
    )


def workload(prefix: str, count: int) -> list[tuple[str, str]]:
    """(presentity, body) for ``count`` presentities, built outside the
    measured window."""
    out = []
    for i in range(count):
        uri = presentity(prefix, i)
        out.append((uri, pidf(uri, i)))
    return out


async def windowed(
    items: list[tuple[str, _Body]], window: int, one: Callable[[str, _Body], Awaitable[bool]]
) -> int:
    """Run ``one`` over ``items`` with at most ``window`` outstanding;
    return how many failed."""
    failures = 0

    async def worker(start: int) -> None:
        nonlocal failures
        for k in range(start, len(items), window):
            uri, body = items[k]
            if not await one(uri, body):
                failures += 1

    await asyncio.gather(*(worker(w) for w in range(min(window, len(items)))))
    return failures


async def run_api(port: int, count: int, window: int) -> Result:
    """``count`` publications through ``PuaAPI.send_publish``."""
    proxy = f"sip:127.0.0.1:{port}"
    warm = workload("warm", 2 * window)
    items = workload("user", count)
    async with PuaAPI(PuaConfig(), endpoint_config=EndpointConfig()) as pua:

        async def one(uri: str, body: str) -> bool:
            outcome = await pua.send_publish(
                PublishInfo(
                    pres_uri=uri,
                    event=PRESENCE_EVENT,
                    source_flag=UL_PUBLISH,
                    body=body,
                    expires=3600,
                    outbound_proxy=proxy,
                )
            )
            return outcome.ok and outcome.status == 200 and outcome.etag is not None

        await windowed(warm, window, one)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        failures = await windowed(items, window, one)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        held = len(pua.engine)
        if held != len(warm) + count - failures:
            raise SystemExit(f"engine holds {held} publications, expected {len(warm) + count}")
    return cpu, wall, failures


async def run_refresh(port: int, count: int, window: int) -> Result:
    """``count`` refreshes through ``PuaAPI.send_publish``: a body-less
    request for each publication made beforehand (unmeasured), so each is
    a PUBLISH with SIP-If-Match and no body (RFC 3903 §4.3), what a
    presence service's steady state is made of."""
    proxy = f"sip:127.0.0.1:{port}"
    items = workload("user", count)
    async with PuaAPI(PuaConfig(), endpoint_config=EndpointConfig()) as pua:

        async def publish(uri: str, body: str) -> bool:
            outcome = await pua.send_publish(
                PublishInfo(
                    pres_uri=uri,
                    event=PRESENCE_EVENT,
                    source_flag=UL_PUBLISH,
                    body=body,
                    expires=3600,
                    outbound_proxy=proxy,
                )
            )
            return outcome.ok

        async def refresh(uri: str, body: str) -> bool:
            outcome = await pua.send_publish(
                PublishInfo(
                    pres_uri=uri, event=PRESENCE_EVENT, source_flag=UL_PUBLISH, expires=3600
                )
            )
            return outcome.ok and outcome.op == "refresh" and outcome.etag is not None

        if await windowed(items, window, publish):
            raise SystemExit("the publications before the refreshes failed")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        failures = await windowed(items, window, refresh)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu, wall, failures


async def run_endpoint(port: int, count: int, window: int) -> Result:
    """The baseline: the same PUBLISH transactions through
    ``SipEndpoint.request``, no PUBLISH engine."""
    destination = Address("udp", "127.0.0.1", port)
    warm = [(uri, body.encode()) for uri, body in workload("warm", 2 * window)]
    items = [(uri, body.encode()) for uri, body in workload("user", count)]
    async with SipEndpoint() as endpoint:
        ids = endpoint.layer.ids

        async def one(uri: str, body: bytes) -> bool:
            request = make_publish(
                ids, uri, event="presence", expires=3600, body=body, content_type=PIDF
            )
            response = await endpoint.request(request, destination)
            return response.status == 200 and response.sip_etag is not None

        await windowed(warm, window, one)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        failures = await windowed(items, window, one)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu, wall, failures


CASES: dict[str, tuple[Callable[[int, int, int], Coroutine[Any, Any, Result]], str]] = {
    "baseline_endpoint": (run_endpoint, "uvloop"),
    "publish": (run_api, "uvloop"),
    "refresh": (run_refresh, "uvloop"),
    "publish_asyncio": (run_api, "asyncio"),
}


def measure(case: str, port: int, count: int, window: int) -> Result:
    runner, loop = CASES[case]
    with asyncio.Runner(loop_factory=loop_factory(loop)) as r:
        return r.run(runner(port, count, window))


def profile(port: int, count: int, window: int) -> None:
    profiler = cProfile.Profile()
    with asyncio.Runner(loop_factory=loop_factory("uvloop")) as r:
        profiler.enable()
        cpu, _, failed = r.run(run_api(port, count, window))
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
        name = str(path.relative_to(SRC)) if path.is_relative_to(SRC) else "(outside pua)"
        by_file[name] = by_file.get(name, 0.0) + row[2]
    for name, own in sorted(by_file.items(), key=lambda item: -item[1])[:15]:
        print(f"own_time_share {name}: {own / total:.1%}")
    print(f"profiled_publish_tx_per_cpu_s: {count / cpu:.0f}  (slowed by the profiler)")
    print(f"profiled_failed: {failed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("publications", nargs="?", type=int, default=20_000)
    parser.add_argument("window", nargs="?", type=int, default=256)
    parser.add_argument("rounds", nargs="?", type=int, default=5)
    parser.add_argument("--no-asyncio", action="store_true", help="skip the stock-loop case")
    parser.add_argument("--profile", action="store_true", help="cProfile one PuaAPI run")
    args = parser.parse_args()
    count, window, rounds = args.publications, args.window, args.rounds

    port = free_udp_port()
    proc = start_sipp(port)
    try:
        if args.profile:
            profile(port, count, window)
            return
        cases = [c for c in CASES if not (args.no_asyncio and c == "publish_asyncio")]
        results: dict[str, list[Result]] = {case: [] for case in cases}
        for _ in range(rounds):
            for case in cases:
                results[case].append(measure(case, port, count, window))
    finally:
        stop(proc)

    print(f"publications_per_run: {count}")
    print(f"window: {window}")
    print(f"rounds: {rounds}")
    print(f"target_publish_tx_per_cpu_s: {TARGET_TX_PER_CPU_S}")
    best: dict[str, float] = {}
    median: dict[str, float] = {}
    for case in cases:
        rates = [count / cpu for cpu, _, _ in results[case]]
        best[case] = max(rates)
        median[case] = statistics.median(rates)
        wall = results[case][rates.index(best[case])][1]
        print(f"{case}_tx_per_cpu_s: {best[case]:.0f}")
        print(f"{case}_tx_per_cpu_s_median: {median[case]:.0f}")
        print(f"{case}_tx_per_wall_s: {count / wall:.0f}")
        print(f"{case}_failed: {sum(failed for _, _, failed in results[case])}")
    base = "baseline_endpoint"
    print(f"publish_vs_baseline: {best['publish'] / best[base]:.2f}")
    print(f"publish_vs_baseline_median: {median['publish'] / median[base]:.2f}")
    print(f"publish_vs_target: {best['publish'] / TARGET_TX_PER_CPU_S:.2f}")
    print(f"refresh_vs_baseline: {best['refresh'] / best[base]:.2f}")
    print(f"refresh_vs_target: {best['refresh'] / TARGET_TX_PER_CPU_S:.2f}")


if __name__ == "__main__":
    main()
