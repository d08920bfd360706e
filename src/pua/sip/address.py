"""Where a message goes or came from: transport plus IP address and port."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["RELIABLE_TRANSPORTS", "TRANSPORTS", "Address"]

#: Transport names as pua writes them (lower case; Via uses upper case).
TRANSPORTS = ("udp", "tcp", "tls")
#: RFC 3261 §17.1.2.2 / §17.2.2: timers K and J are zero on these.
RELIABLE_TRANSPORTS = frozenset({"tcp", "tls"})


class Address(NamedTuple):
    """A transport-level peer: ``transport`` is ``udp``, ``tcp`` or ``tls``;
    ``host`` is a numeric IPv4 or IPv6 address (no brackets); ``port`` an int.

    For TCP and TLS the address of a peer that connected to us is its
    ephemeral source port, which names the connection (RFC 3261 §18.2.2
    sends responses back over it)."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE_TRANSPORTS

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"
