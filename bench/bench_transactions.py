"""Client transactions per CPU-second: pua's SipEndpoint sends PUBLISH
requests to a SIPp UAS on loopback and awaits each 200 OK.

Each transaction is the whole client path: build the PUBLISH (headers,
Call-ID, tag; the presentity URI is checked once beforehand, as a PUBLISH
engine checks a publication once, not at every refresh), the transaction
layer (Via, branch, timers E/F/K), UDP send, parse of the 200, matching,
and the awaiting coroutine resumed.  The
figure is transactions divided by this process's CPU time (user + system)
over the measured window; SIPp runs in its own process.

The baseline, in the same run against the same SIPp: a bare client with no
transaction layer that sends pre-formatted PUBLISH bytes and counts replies
by Call-ID (what "88k per CPU-second without transactions" meant).

Figures are the best of the rounds (and the median), interleaved so that
the shared machine's drift hits every case alike.

Usage: python bench/bench_transactions.py [transactions] [window] [rounds]
Needs `sipp` (Debian package sip-tester).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import common  # noqa: E402
from pua.cli.send import build_publish, make_publish  # noqa: E402
from pua.endpoint import SipEndpoint  # noqa: E402
from pua.runtime import run  # noqa: E402
from pua.sip.address import Address  # noqa: E402

BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" '
    b'entity="sip:alice@127.0.0.1"><tuple id="t1"><status><basic>open</basic></status>'
    b"</tuple></presence>\n"
)


PRES = "sip:alice@127.0.0.1"
PIDF = "application/pidf+xml"


def publish_uas(port: int) -> contextlib.AbstractContextManager[None]:
    """SIPp answering every PUBLISH 200 (``sipp/uas_publish.xml``) on
    ``port`` for a ``with`` block, ready once a PUBLISH gets its 200."""
    return common.sipp_uas(port, ROOT / "sipp" / "uas_publish.xml", publish_answered)


def publish_answered(probe: socket.socket, port: int, n: int) -> bool:
    """A probe PUBLISH got its 200."""
    probe.sendto(bare_publish(probe.getsockname()[1], f"probe{n}"), ("127.0.0.1", port))
    return probe.recv(4096).startswith(b"SIP/2.0 200")


def bare_publish(local_port: int, call_id: str) -> bytes:
    return (
        f"PUBLISH sip:alice@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{call_id};rport\r\n"
        "Max-Forwards: 70\r\nTo: <sip:alice@127.0.0.1>\r\n"
        f"From: <sip:alice@127.0.0.1>;tag={call_id}\r\nCall-ID: {call_id}\r\n"
        "CSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 3600\r\n"
        f"Content-Type: application/pidf+xml\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY


async def run_pua(port: int, count: int, window: int) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, failures) for ``count`` PUBLISH transactions."""
    destination = Address("udp", "127.0.0.1", port)
    failures = 0
    async with SipEndpoint() as endpoint:
        ids = endpoint.layer.ids

        # checked once, as a PUBLISH engine checks a publication once
        build_publish(ids, PRES, event="presence", expires=3600, body=BODY)

        async def worker(n: int) -> None:
            nonlocal failures
            for _ in range(n):
                request = make_publish(
                    ids, PRES, event="presence", expires=3600, body=BODY, content_type=PIDF
                )
                response = await endpoint.request(request, destination)
                if response.status != 200 or response.sip_etag is None:
                    failures += 1

        await asyncio.gather(*(worker(10) for _ in range(window)))  # warm-up
        per = count // window
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(per) for _ in range(window)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu, wall, failures


_RUNS = iter(range(1, 1 << 30))


class _Bare(asyncio.DatagramProtocol):
    def __init__(self, count: int, window: int, port: int) -> None:
        self.count, self.window, self.port = count, window, port
        # SIPp ignores a Call-ID it has seen in the last 33 s (dead calls)
        self.prefix = f"r{next(_RUNS)}-{os.getpid()}-"
        self.sent = self.done = 0
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.DatagramTransport | None = None
        self.local = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.local = transport.get_extra_info("sockname")[1]

    def send_one(self) -> None:
        self.sent += 1
        assert self.transport is not None
        self.transport.sendto(
            bare_publish(self.local, f"{self.prefix}{self.sent}"), ("127.0.0.1", self.port)
        )

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        i = data.find(b"\r\nCall-ID: ")
        if i < 0 or not data.startswith(b"SIP/2.0 200"):
            return
        self.done += 1
        if self.sent < self.count:
            self.send_one()
        elif self.done >= self.count and not self.finished.done():
            self.finished.set_result(None)


async def run_bare(port: int, count: int, window: int) -> tuple[float, float, int]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Bare(count, window, port), local_addr=("127.0.0.1", 0)
    )
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(window):
        proto.send_one()
    with contextlib.suppress(TimeoutError):  # counted as failures below
        await asyncio.wait_for(proto.finished, 120)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    transport.close()
    return cpu, wall, count - proto.done


def measure(kind: str, loop: str, port: int, count: int, window: int) -> tuple[float, float, int]:
    runner = run_pua if kind == "pua" else run_bare
    return run(runner(port, count, window), loop)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    window = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    port = common.free_udp_port()
    cases = [("pua", "uvloop"), ("pua", "asyncio"), ("bare", "uvloop")]
    best: dict[tuple[str, str], tuple[float, float, int]] = {}
    rates: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
    with publish_uas(port):
        for _ in range(rounds):
            for kind, loop in cases:
                cpu, wall, failed = measure(kind, loop, port, count, window)
                rate = count / cpu
                rates[(kind, loop)].append(rate)
                if (kind, loop) not in best or rate > count / best[(kind, loop)][0]:
                    best[(kind, loop)] = (cpu, wall, failed)
    print(f"transactions_per_run: {count}")
    print(f"window: {window}")
    for (kind, loop), (cpu, wall, failed) in best.items():
        name = f"{kind}_{loop}" if kind == "pua" else f"baseline_bare_{loop}"
        print(f"{name}_tx_per_cpu_second: {count / cpu:.0f}")
        print(f"{name}_tx_per_cpu_second_median: {statistics.median(rates[(kind, loop)]):.0f}")
        print(f"{name}_tx_per_wall_second: {count / wall:.0f}")
        print(f"{name}_failed: {failed}")
    pua = count / best[("pua", "uvloop")][0]
    bare = count / best[("bare", "uvloop")][0]
    print(f"pua_uvloop_vs_baseline: {pua / bare:.2f}")


if __name__ == "__main__":
    main()
