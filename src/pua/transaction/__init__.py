"""Sans-IO non-INVITE transactions (RFC 3261 §17.1.2, §17.2.2).

:class:`TransactionLayer` takes datagrams, requests to send and the time,
and gives back events, datagrams to send and one timer deadline.  It never
reads a clock, opens a socket or sleeps.
"""

from pua.transaction.events import (
    Event,
    MessageDropped,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    TransportFailed,
)
from pua.transaction.layer import Outgoing, TransactionLayer
from pua.transaction.timers import TimerSettings

__all__ = [
    "Event",
    "MessageDropped",
    "Outgoing",
    "RequestReceived",
    "ResponseReceived",
    "TimerSettings",
    "TransactionLayer",
    "TransactionTimedOut",
    "TransportFailed",
]
