"""The presence engines, sans-IO: PUBLISH (RFC 3903) and SUBSCRIBE
(RFC 6665).  They hold records as plain data, take ``now`` as an argument
and speak to the shell through requests, responses and events."""

from pua.ua.events import NotifyReceived, OutgoingRequest, PublishOutcome, SubscribeOutcome
from pua.ua.publish import Publication, PublishEngine
from pua.ua.subscribe import DialogStatus, SubscribeEngine, Subscription

__all__ = [
    "DialogStatus",
    "NotifyReceived",
    "OutgoingRequest",
    "Publication",
    "PublishEngine",
    "PublishOutcome",
    "SubscribeEngine",
    "SubscribeOutcome",
    "Subscription",
]
