"""The error types that leave pua's packages.

Two directions, as in h11: a peer sent something we cannot accept
(:class:`SipParseError`, carrying the status to answer) or a caller asked for
something impossible (:class:`LocalProtocolError`).  Anything else escaping a
sans-IO room is a bug.
"""

from __future__ import annotations

__all__ = [
    "LocalProtocolError",
    "NoBodyError",
    "PuaError",
    "PublishError",
    "SipParseError",
    "SubscribeError",
    "UnknownETagError",
    "UnknownEventError",
]


class PuaError(Exception):
    """Base of every error pua raises on purpose."""


class SipParseError(PuaError):
    """Bytes from the network are not a SIP message we accept.

    ``reason`` is a stable, machine-readable token (``"bad-start-line"``,
    ``"missing-call-id"``, ...): tests and metrics key on it and it never
    changes between releases.  ``status`` is the response code a server
    should answer a *request* with (400, 413, 505, ...); it is ``None`` where
    no answer is possible (the input is a response, or the message is too
    broken to build one).  ``detail`` is free text for humans.
    """

    def __init__(self, reason: str, status: int | None = 400, detail: str = "") -> None:
        self.reason = reason
        self.status = status
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class LocalProtocolError(PuaError):
    """The caller asked for something SIP does not allow (a programming error)."""


class PublishError(PuaError):
    """``send_publish`` refused a request before sending anything; stored
    state is unchanged.  ``code`` is what Kamailio's ``send_publish`` would
    have returned (-1, -10 or 418)."""

    code = -1


class UnknownEventError(PublishError):
    """The event flag names no registered event package (Kamailio: -1)."""


class NoBodyError(PublishError):
    """A new publication needs a body (RFC 3903 §4.1; Kamailio:
    ``ERR_PUBLISH_NO_BODY``, -10)."""

    code = -10


class UnknownETagError(PublishError):
    """The caller named an entity-tag that no publication holds
    (Kamailio returns 418)."""

    code = 418


class SubscribeError(PuaError):
    """``send_subscribe`` refused a request before sending anything; stored
    state is unchanged (Kamailio: -1)."""

    code = -1
