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
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import common  # noqa: E402
from bench_transactions import publish_uas  # noqa: E402
from pua import PRESENCE_EVENT, UL_PUBLISH, PuaAPI, PuaConfig, PublishInfo  # noqa: E402
from pua.cli.send import make_publish  # noqa: E402
from pua.endpoint import EndpointConfig, SipEndpoint  # noqa: E402
from pua.runtime import run  # noqa: E402
from pua.sip.address import Address  # noqa: E402

#: what the PuaAPI path should reach, printed beside the figures
TARGET_TX_PER_CPU_S = 25_000
PIDF = "application/pidf+xml"


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


def initial(uri: str, body: str, proxy: str) -> PublishInfo:
    """The initial publication of ``body`` for ``uri``, for an hour, sent
    through ``proxy``."""
    return PublishInfo(
        pres_uri=uri,
        event=PRESENCE_EVENT,
        source_flag=UL_PUBLISH,
        body=body,
        expires=3600,
        outbound_proxy=proxy,
    )


async def run_api(port: int, count: int, window: int) -> common.Result:
    """``count`` publications through ``PuaAPI.send_publish``."""
    proxy = f"sip:127.0.0.1:{port}"
    warm = workload("warm", 2 * window)
    items = workload("user", count)
    async with PuaAPI(PuaConfig(), endpoint_config=EndpointConfig()) as pua:

        async def one(item: tuple[str, str]) -> bool:
            outcome = await pua.send_publish(initial(*item, proxy))
            return outcome.ok and outcome.status == 200 and outcome.etag is not None

        await common.windowed(warm, window, one)
        cpu, wall, failures = await common.measured(common.windowed(items, window, one))
        held = len(pua.engine)
        if held != len(warm) + count - failures:
            raise SystemExit(f"engine holds {held} publications, expected {len(warm) + count}")
    return cpu, wall, failures


async def run_refresh(port: int, count: int, window: int) -> common.Result:
    """``count`` refreshes through ``PuaAPI.send_publish``: a body-less
    request for each publication made beforehand (unmeasured), so each is
    a PUBLISH with SIP-If-Match and no body (RFC 3903 §4.3), what a
    presence service's steady state is made of."""
    proxy = f"sip:127.0.0.1:{port}"
    items = workload("user", count)
    async with PuaAPI(PuaConfig(), endpoint_config=EndpointConfig()) as pua:

        async def publish(item: tuple[str, str]) -> bool:
            return (await pua.send_publish(initial(*item, proxy))).ok

        async def refresh(item: tuple[str, str]) -> bool:
            outcome = await pua.send_publish(
                PublishInfo(
                    pres_uri=item[0], event=PRESENCE_EVENT, source_flag=UL_PUBLISH, expires=3600
                )
            )
            return outcome.ok and outcome.op == "refresh" and outcome.etag is not None

        if await common.windowed(items, window, publish):
            raise SystemExit("the publications before the refreshes failed")
        return await common.measured(common.windowed(items, window, refresh))


async def run_endpoint(port: int, count: int, window: int) -> common.Result:
    """The baseline: the same PUBLISH transactions through
    ``SipEndpoint.request``, no PUBLISH engine."""
    destination = Address("udp", "127.0.0.1", port)
    warm = [(uri, body.encode()) for uri, body in workload("warm", 2 * window)]
    items = [(uri, body.encode()) for uri, body in workload("user", count)]
    async with SipEndpoint() as endpoint:
        ids = endpoint.layer.ids

        async def one(item: tuple[str, bytes]) -> bool:
            uri, body = item
            request = make_publish(
                ids, uri, event="presence", expires=3600, body=body, content_type=PIDF
            )
            response = await endpoint.request(request, destination)
            return response.status == 200 and response.sip_etag is not None

        await common.windowed(warm, window, one)
        return await common.measured(common.windowed(items, window, one))


CASES: dict[str, tuple[Callable[[int, int, int], Coroutine[Any, Any, common.Result]], str]] = {
    "baseline_endpoint": (run_endpoint, "uvloop"),
    "publish": (run_api, "uvloop"),
    "refresh": (run_refresh, "uvloop"),
    "publish_asyncio": (run_api, "asyncio"),
}


def measure(case: str, port: int, args: argparse.Namespace) -> common.Result:
    runner, loop = CASES[case]
    return run(runner(port, args.publications, args.window), loop)


def profile(port: int, args: argparse.Namespace) -> None:
    name = "profiled_publish_tx_per_cpu_s"
    common.profile_run(run_api(port, args.publications, args.window), name, args.publications)


def main() -> None:
    args = common.throughput_parser(__doc__.split("\n\n")[0], "publications").parse_args()
    results = common.run_against_sipp(args, publish_uas, CASES, measure, profile)
    if results is None:
        return
    count = args.publications
    common.print_setup("publications", count, args)
    print(f"target_publish_tx_per_cpu_s: {TARGET_TX_PER_CPU_S}")
    best, median = common.report(results, count, "tx")
    base = "baseline_endpoint"
    print(f"publish_vs_baseline: {best['publish'] / best[base]:.2f}")
    print(f"publish_vs_baseline_median: {median['publish'] / median[base]:.2f}")
    print(f"publish_vs_target: {best['publish'] / TARGET_TX_PER_CPU_S:.2f}")
    print(f"refresh_vs_baseline: {best['refresh'] / best[base]:.2f}")
    print(f"refresh_vs_target: {best['refresh'] / TARGET_TX_PER_CPU_S:.2f}")


if __name__ == "__main__":
    main()
