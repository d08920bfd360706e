"""The presence engines, sans-IO: PUBLISH (RFC 3903) and, next, SUBSCRIBE
(RFC 6665).  They hold records as plain data, take ``now`` as an argument
and speak to the shell through requests, responses and outcome events."""

from pua.ua.events import OutgoingRequest, PublishOutcome
from pua.ua.publish import Publication, PublishEngine

__all__ = ["OutgoingRequest", "Publication", "PublishEngine", "PublishOutcome"]
