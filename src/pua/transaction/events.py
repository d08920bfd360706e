"""What the transaction layer tells its user (the transaction user, TU).

Every event is a frozen, keyword-only record of something that happened.
``ClientKey`` names a client transaction (the branch we generated);
``ServerKey`` a server transaction (§17.2.3 matching key).
"""

from __future__ import annotations

from dataclasses import dataclass

from pua.sip.address import Address
from pua.sip.message import Request, Response

__all__ = [
    "ClientKey",
    "Event",
    "MessageDropped",
    "RequestReceived",
    "ResponseReceived",
    "ServerKey",
    "TransactionTimedOut",
    "TransportFailed",
]

ClientKey = str
ServerKey = tuple[str, str, str]


class Event:
    """Base class of the layer's events."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived(Event):
    """A response matched a client transaction and is passed up (a
    provisional one, or the first final one; retransmissions are absorbed)."""

    key: ClientKey
    #: the request of the transaction, as sent (with our Via)
    request: Request
    response: Response
    source: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTimedOut(Event):
    """Timer F fired before a final response: the TU must treat it as a
    408 (RFC 3261 §8.1.3.1); tm's "faked reply"."""

    key: ClientKey
    request: Request


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportFailed(Event):
    """The transport could not deliver a message of this transaction
    (connection refused, ICMP error...): RFC 3261 §8.1.3.1 says to treat it
    like a 503 for a client transaction.  A server transaction reports the
    request it was answering, or ``None`` once it had sent its final
    response (a completed transaction no longer holds the request)."""

    key: ClientKey | ServerKey
    request: Request | None
    destination: Address
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReceived(Event):
    """A new request created a server transaction; the TU must answer it
    with :meth:`TransactionLayer.send_response`."""

    key: ServerKey
    request: Request
    source: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDropped(Event):
    """A message was discarded.  ``reason`` is a stable token: a codec
    reason (``bad-cseq``, ``no-end-of-headers``...) or a layer one
    (``no-matching-transaction``, ``sent-by-mismatch``, ``stray-ack``...)."""

    reason: str
    source: Address
    detail: str = ""
