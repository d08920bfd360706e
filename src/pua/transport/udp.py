"""UDP transport: one socket, datagrams in and out (RFC 3261 §18)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import cast

from pua.sip.address import Address

__all__ = ["UdpTransport", "open_udp"]

log = logging.getLogger("pua.transport.udp")

#: Socket buffer sizes asked for: a burst of a few thousand PUBLISH replies
#: must not overflow the default ~200 KiB (the Kamailio survey lost
#: replies to exactly that).  The kernel may grant less.
SOCKET_BUFFER = 4 * 1024 * 1024


class UdpTransport(asyncio.DatagramProtocol):
    """Hands every datagram to ``on_datagram(data, source)``."""

    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self._on_datagram = on_datagram
        self._transport: asyncio.DatagramTransport | None = None
        self.local: Address | None = None
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the selector loop's datagram transport does not subclass
        # DatagramTransport (CPython 3.11), so no isinstance check here
        self._transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):  # the kernel may cap it
                    sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
        host, port = transport.get_extra_info("sockname")[:2]
        self.local = Address("udp", host, port)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self._on_datagram(data, Address("udp", str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable...) arrive here without the
        # datagram they belong to; the transaction's timer handles the loss.
        self.errors += 1
        log.debug("udp error: %s", exc)

    def send(self, data: bytes, destination: Address) -> None:
        if self._transport is None:
            raise ConnectionError("udp transport is closed")
        self._transport.sendto(data, (destination.host, destination.port))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


async def open_udp(
    host: str, port: int, on_datagram: Callable[[bytes, Address], None]
) -> UdpTransport:
    """Bind a UDP socket on (host, port); port 0 picks a free one."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    _, protocol = await loop.create_datagram_endpoint(
        lambda: UdpTransport(on_datagram), local_addr=(host, port), family=family
    )
    return protocol
