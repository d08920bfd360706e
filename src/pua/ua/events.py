"""What the presence engines tell the shell.

Inputs are past-tense facts fed to the engines (responses, timer ticks);
these are their outputs: requests to send and outcomes to report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pua.model import PublishInfo, SubscribeInfo
from pua.sip.message import Request, Response

__all__ = ["NotifyReceived", "Outcome", "OutgoingRequest", "PublishOutcome", "SubscribeOutcome"]


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """A request the shell must send, then feed its final response back
    with the same ``token``."""

    #: engine's name for this request; unique for the engine's lifetime
    token: int
    request: Request
    #: next hop (outbound proxy URI), or ``None`` for the Request-URI
    destination: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What the outcomes of PUBLISH and SUBSCRIBE requests share.

    Every call of ``publish``/``subscribe`` yields exactly one outcome
    (``ticket`` set, ``info`` the caller's request); requests pua sends by
    itself (refreshes, re-subscriptions) yield outcomes with ``ticket is
    None``.  ``status`` is the final SIP status (after any 412
    re-publication, 423 retry or 3xx redirection), or ``None`` when nothing
    had to be sent.  ``local`` is true when no response came from the
    network and the status was made up locally (408 after a timeout, 503
    when no target could be reached): Kamailio's "faked reply".
    """

    ticket: int | None
    pres_uri: str
    event: int
    source_flag: int
    id: str
    #: the last request sent: "initial", "modify", "refresh", "remove"
    #: (PUBLISH) or "initial", "refresh", "unsubscribe" (SUBSCRIBE)
    op: str | None
    status: int | None
    reason: str
    response: Response | None = None
    local: bool = False
    #: the expiry the server granted, in seconds
    expires: int | None = None
    #: the record no longer exists (removed, lapsed or given up)
    ended: bool = False
    #: pua keeps retrying in the background after this failure
    retrying: bool = False
    #: the request did what it was asked (a usable 2xx, or nothing to do)
    ok: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishOutcome(Outcome):
    """How one request to publish ended (see :class:`Outcome`)."""

    info: PublishInfo | None
    #: the entity-tag the publication holds now (``None`` when it holds none)
    etag: str | None = None
    #: the entity-tag the last request carried in SIP-If-Match
    sent_etag: str | None = None

    @property
    def cb_param(self) -> Any:
        """The caller's opaque value (``PublishInfo.cb_param``)."""
        return None if self.info is None else self.info.cb_param


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeOutcome(Outcome):
    """How one request to subscribe, refresh or unsubscribe ended (see
    :class:`Outcome`)."""

    info: SubscribeInfo | None
    watcher_uri: str
    #: the dialog: Call-ID, our tag, the notifier's tag (None until known)
    call_id: str | None = None
    local_tag: str | None = None
    remote_tag: str | None = None

    @property
    def cb_param(self) -> Any:
        """The caller's opaque value (``SubscribeInfo.cb_param``)."""
        return None if self.info is None else self.info.cb_param


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyReceived:
    """A NOTIFY of one of our subscriptions (RFC 6665 §4.1.3), answered 200."""

    pres_uri: str
    watcher_uri: str
    event: int
    source_flag: int
    id: str
    #: the subscription's ``SubscribeInfo.cb_param``
    cb_param: Any
    #: Subscription-State: "active", "pending" or "terminated" (or an
    #: extension value)
    state: str
    expires: int | None
    reason: str | None
    retry_after: int | None
    body: bytes
    content_type: str | None
    request: Request
    #: what pua does next: "" (nothing), "resubscribe" or "ended"
    action: str = ""
