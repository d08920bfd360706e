"""SUBSCRIBE dialogs established per CPU-second through
``PuaAPI.send_subscribe``, against a SIPp notifier on loopback.

Each run subscribes one watcher to N distinct presentities
(``sip:user{i}@127.0.0.1``), each once, for 3600 s.  SIPp
(``bench/sipp/uas_subscribe.xml``) answers every SUBSCRIBE with 200 OK (To
tag, Contact, Expires: 3600), then sends one NOTIFY in the dialog
(``Subscription-State: active;expires=3600``, a small PIDF body) and waits
for its 200.  A dialog counts as established when both have happened: the
``SubscribeCall`` completed with an ok 200 outcome that names the
notifier's tag, and the NOTIFY reached a ``register_notify_cb`` callback
(state ``active``).  At most ``window`` dialogs are being set up at any
time (``window`` coroutines, each awaiting both before the next one), so
the figure is throughput, not queueing.

One dialog is the whole PuaAPI path: the engine's intake (URI checks, the
record, Call-ID and tag), the SUBSCRIBE it builds, the endpoint (next hop
from the outbound proxy URI, client transaction, UDP), the 200 back into
the engine (remote tag and target, refresh deadline, outcome, the caller's
awaitable), then the NOTIFY: server transaction, the engine's dialog match
and checks, the 200 it answers with, and the callback.  After a run the
engine holds N subscriptions (plus the warm-up ones); no refresh is due
within the run.

The figure is established dialogs divided by this process's CPU time
(user + system) over the measured window; SIPp runs in its own process.
A run that does not finish within ``--timeout`` is cut: its dialogs not
established by then count as failed (``*_failed``), not as done.

The baseline, in the same run against the same SIPp, with the same
presentities and window: the same SUBSCRIBE + NOTIFY exchange with no
SUBSCRIBE engine: a SUBSCRIBE built by hand sent with
``SipEndpoint.request``, and a request handler that finds the waiting
dialog by Call-ID and answers the NOTIFY 200.  The ratio shows what the
SUBSCRIBE engine and the API add.

Rounds are interleaved (baseline, PuaAPI on uvloop, then PuaAPI on the
stock asyncio loop) so that the shared machine's drift hits every case
alike; each figure is the best of the rounds, with the median beside it.

Usage: python bench/bench_subscribe.py [dialogs] [window] [rounds]
           [--no-asyncio] [--profile] [--timeout SECONDS]
``--profile`` runs one PuaAPI round under cProfile instead and prints the
25 functions with the most own time and the own-time share per source
file.  Needs ``sipp`` (Debian package sip-tester).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import common  # noqa: E402
from pua import (  # noqa: E402
    PRESENCE_EVENT,
    UL_PUBLISH,
    NotifyReceived,
    PuaAPI,
    PuaConfig,
    SubscribeInfo,
)
from pua.endpoint import EndpointConfig, SipEndpoint  # noqa: E402
from pua.runtime import run  # noqa: E402
from pua.sip import Headers, Request, Response, make_response  # noqa: E402
from pua.sip.address import Address  # noqa: E402

SCENARIO = ROOT / "sipp" / "uas_subscribe.xml"
WATCHER = "sip:watcher@127.0.0.1"
EXPIRES = 3600


def presentity(prefix: str, i: int) -> str:
    return f"sip:{prefix}{i}@127.0.0.1"


def workload(prefix: str, count: int) -> list[str]:
    """The presentities, made outside the measured window."""
    return [presentity(prefix, i) for i in range(count)]


# ------------------------------------------------------------------ SIPp
def subscribe_uas(port: int) -> contextlib.AbstractContextManager[None]:
    """SIPp with the SUBSCRIBE + NOTIFY scenario on ``port`` for a ``with``
    block, ready once a probe SUBSCRIBE gets its 200 and its NOTIFY."""
    return common.sipp_uas(port, SCENARIO, subscribe_answered)


def subscribe_answered(probe: socket.socket, port: int, n: int) -> bool:
    """A probe SUBSCRIBE got its 200 and its NOTIFY (which the probe
    answers, so that SIPp's call ends cleanly)."""
    local = probe.getsockname()[1]
    probe.sendto(bare_subscribe(local, f"probe{n}-{os.getpid()}"), ("127.0.0.1", port))
    ok = False
    while True:
        data, addr = probe.recvfrom(65536)
        if data.startswith(b"SIP/2.0 200"):
            ok = True
        elif data.startswith(b"NOTIFY "):
            probe.sendto(bare_ok(data), addr)
            if ok:
                return True


def bare_subscribe(local_port: int, call_id: str) -> bytes:
    return (
        "SUBSCRIBE sip:probe@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{call_id};rport\r\n"
        "Max-Forwards: 70\r\nTo: <sip:probe@127.0.0.1>\r\n"
        f"From: <{WATCHER}>;tag={call_id}\r\nCall-ID: {call_id}\r\n"
        f"CSeq: 1 SUBSCRIBE\r\nContact: <sip:127.0.0.1:{local_port}>\r\n"
        "Event: presence\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def bare_ok(request: bytes) -> bytes:
    """200 to a NOTIFY, copying Via, From, To, Call-ID and CSeq."""
    head = request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    keep = (b"via:", b"from:", b"to:", b"call-id:", b"cseq:")
    lines = [line for line in head if line.lower().startswith(keep)]
    return b"\r\n".join([b"SIP/2.0 200 OK", *lines, b"Content-Length: 0", b"", b""])


# ------------------------------------------------------------- the runs
async def run_api(port: int, count: int, window: int, timeout: float) -> common.Result:
    """``count`` dialogs through ``PuaAPI.send_subscribe``."""
    proxy = f"sip:127.0.0.1:{port}"
    warm = workload("warm", 2 * window)
    items = workload("user", count)
    async with PuaAPI(PuaConfig(), endpoint_config=EndpointConfig()) as pua:
        loop = asyncio.get_running_loop()
        contact = pua.endpoint.contact_uri()

        def on_notify(notify: NotifyReceived, _: Any) -> None:
            # cb_param is the dialog's future: no lookup needed
            waiter: asyncio.Future[NotifyReceived] = notify.cb_param
            if not waiter.done():
                waiter.set_result(notify)

        pua.register_notify_cb(UL_PUBLISH, on_notify)

        async def one(uri: str) -> bool:
            notified: asyncio.Future[NotifyReceived] = loop.create_future()
            outcome = await pua.send_subscribe(
                SubscribeInfo(
                    pres_uri=uri,
                    watcher_uri=WATCHER,
                    contact=contact,
                    event=PRESENCE_EVENT,
                    expires=EXPIRES,
                    source_flag=UL_PUBLISH,
                    outbound_proxy=proxy,
                    cb_param=notified,
                )
            )
            if not (outcome.ok and outcome.status == 200 and outcome.remote_tag):
                return False
            notify = await notified
            return notify.state == "active"

        if (failed := await common.windowed(warm, window, one, timeout)) != 0:
            raise SystemExit(f"warm-up: {failed} dialogs failed; {engine_report(pua)}")
        cpu, wall, failures = await common.measured(common.windowed(items, window, one, timeout))
        held = len(pua.subscriptions_engine)
        if failures:
            print(f"# api run: {failures} failed; {engine_report(pua)}")
        elif held != len(warm) + count:
            raise SystemExit(f"engine holds {held} subscriptions, expected {len(warm) + count}")
    return cpu, wall, failures


def engine_report(pua: PuaAPI) -> str:
    engine = pua.subscriptions_engine
    stats = ", ".join(f"{key}={value}" for key, value in sorted(engine.stats.items()))
    return f"engine holds {len(engine)}, {engine.in_flight} in flight; stats: {stats}"


async def run_endpoint(port: int, count: int, window: int, timeout: float) -> common.Result:
    """The baseline: the same exchange with ``SipEndpoint.request`` and a
    handler that answers the NOTIFY, no SUBSCRIBE engine."""
    destination = Address("udp", "127.0.0.1", port)
    warm = workload("warm", 2 * window)
    items = workload("user", count)
    waiting: dict[str, asyncio.Future[Request]] = {}

    def handler(request: Request, source: Address) -> Response | None:
        if request.method != "NOTIFY":
            return None
        waiter = waiting.pop(request.call_id, None)
        if waiter is None:
            return make_response(request, 481)
        waiter.set_result(request)
        return make_response(request, 200)

    async with SipEndpoint(handler=handler) as endpoint:
        loop = asyncio.get_running_loop()
        ids = endpoint.layer.ids
        contact = f"<{endpoint.contact_uri()}>"

        async def one(uri: str) -> bool:
            call_id = ids.call_id("127.0.0.1")
            notified: asyncio.Future[Request] = loop.create_future()
            waiting[call_id] = notified
            request = Request(
                "SUBSCRIBE",
                uri,
                Headers(
                    [
                        ("Max-Forwards", "70"),
                        ("To", f"<{uri}>"),
                        ("From", f"<{WATCHER}>;tag={ids.tag()}"),
                        ("Call-ID", call_id),
                        ("CSeq", "1 SUBSCRIBE"),
                        ("Event", "presence"),
                        ("Contact", contact),
                        ("Expires", str(EXPIRES)),
                    ]
                ),
            )
            response = await endpoint.request(request, destination)
            if response.status != 200 or not response.to.tag:
                waiting.pop(call_id, None)
                return False
            notify = await notified
            state = notify.subscription_state
            return state is not None and state.state == "active"

        if (failed := await common.windowed(warm, window, one, timeout)) != 0:
            raise SystemExit(f"baseline warm-up: {failed} dialogs failed")
        return await common.measured(common.windowed(items, window, one, timeout))


Runner = Callable[[int, int, int, float], Coroutine[Any, Any, common.Result]]
CASES: dict[str, tuple[Runner, str]] = {
    "baseline_endpoint": (run_endpoint, "uvloop"),
    "subscribe": (run_api, "uvloop"),
    "subscribe_asyncio": (run_api, "asyncio"),
}


def measure(case: str, port: int, args: argparse.Namespace) -> common.Result:
    runner, loop = CASES[case]
    return run(runner(port, args.dialogs, args.window, args.timeout), loop)


def profile(port: int, args: argparse.Namespace) -> None:
    api_run = run_api(port, args.dialogs, args.window, args.timeout)
    common.profile_run(api_run, "profiled_dialogs_per_cpu_s", args.dialogs, failed_undone=True)


def main() -> None:
    parser = common.throughput_parser(__doc__.split("\n\n")[0], "dialogs")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="cut a run after this many seconds"
    )
    args = parser.parse_args()
    results = common.run_against_sipp(args, subscribe_uas, CASES, measure, profile)
    if results is None:
        return
    count = args.dialogs
    common.print_setup("dialogs", count, args)
    # established dialogs only: a run cut by the timeout counts what it did
    best, median = common.report(results, count, "dialogs", failed_undone=True)
    base = "baseline_endpoint"
    print(f"subscribe_vs_baseline: {best['subscribe'] / best[base]:.2f}")
    print(f"subscribe_vs_baseline_median: {median['subscribe'] / median[base]:.2f}")
    if "subscribe_asyncio" in best:
        print(f"uvloop_vs_asyncio: {best['subscribe'] / best['subscribe_asyncio']:.2f}")


if __name__ == "__main__":
    main()
