"""Builders shared by the tests: requests the way a TU makes them, and a
peer's answers built from the bytes the layer put on the wire."""

from __future__ import annotations

import random

from pua.sip import Headers, Request, Response, make_response, parse_message
from pua.sip.address import Address
from pua.transaction import MessageDropped, TransactionLayer

LOCAL_UDP = ("127.0.0.1", 5060)
PEER_UDP = Address("udp", "127.0.0.1", 5070)
PEER_TCP = Address("tcp", "127.0.0.1", 5070)


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def make_request(
    method: str = "PUBLISH",
    uri: str = "sip:alice@example.com",
    *,
    call_id: str = "cid-1@example.com",
    cseq: int = 10,
    body: bytes = b"",
    extra: list[tuple[str, str]] | None = None,
) -> Request:
    """A request as a TU hands it to the transaction layer (no Via)."""
    headers = Headers(
        [
            ("Max-Forwards", "70"),
            ("To", f"<{uri}>"),
            ("From", f"<{uri}>;tag=fromtag1"),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
            *(extra or []),
        ]
    )
    return Request(method, uri, headers, body)


def reply(data: bytes, status: int, *, headers: list[tuple[str, str]] | None = None) -> bytes:
    """The bytes of a response a peer would send to the request in ``data``."""
    request = parse_message(data)
    assert isinstance(request, Request)
    return make_response(request, status, to_tag="peertag", headers=headers).to_bytes()


def incoming(
    method: str = "NOTIFY",
    *,
    branch: str = "z9hG4bK-peer-1",
    via_host: str = "127.0.0.1",
    via_port: int = 5070,
    rport: bool = True,
    call_id: str = "notify-1@example.com",
    cseq: int = 1,
    cseq_method: str | None = None,
    extra: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> bytes:
    """The bytes of a request a peer sends us."""
    via = f"SIP/2.0/UDP {via_host}:{via_port};branch={branch}" + (";rport" if rport else "")
    headers = Headers(
        [
            ("Via", via),
            ("Max-Forwards", "70"),
            ("To", "<sip:watcher@127.0.0.1>;tag=ourtag"),
            ("From", "<sip:alice@example.com>;tag=peerfrom"),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {cseq_method or method}"),
            *(extra or []),
        ]
    )
    return Request(method, "sip:watcher@127.0.0.1:5060", headers, body).to_bytes()


def dropped(layer: TransactionLayer) -> list[str]:
    """Drain the layer's events and return the reasons of the drops."""
    return [e.reason for e in layer.events() if isinstance(e, MessageDropped)]


def seeded() -> random.Random:
    return random.Random(1234)


def parse_response(data: bytes) -> Response:
    message = parse_message(data)
    assert isinstance(message, Response)
    return message
