"""What the presence engines tell the shell.

Inputs are past-tense facts fed to the engines (responses, timer ticks);
these are their outputs: requests to send and outcomes to report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pua.model import PublishInfo, SubscribeInfo
from pua.sip.message import Request, Response

__all__ = ["NotifyReceived", "OutgoingRequest", "PublishOutcome", "SubscribeOutcome"]


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
class PublishOutcome:
    """How one request to publish ended.

    Every call of ``publish`` yields exactly one outcome (``ticket`` set,
    ``info`` the caller's request); refreshes pua sends by itself yield
    outcomes with ``ticket is None``.  ``status`` is the final SIP status
    (after any 412 re-publication, 423 retry or 3xx redirection), or
    ``None`` when nothing had to be sent (removing a publication that does
    not exist).  ``local`` is true when no response came from the network
    and the status was made up locally (408 after a timeout, 503 when no
    target could be reached): Kamailio's "faked reply".
    """

    ticket: int | None
    info: PublishInfo | None
    pres_uri: str
    event: int
    source_flag: int
    id: str
    #: "initial", "modify", "refresh" or "remove": the last request sent
    op: str | None
    status: int | None
    reason: str
    response: Response | None = None
    local: bool = False
    #: the entity-tag the publication holds now (``None`` when it holds none)
    etag: str | None = None
    #: the entity-tag the last request carried in SIP-If-Match
    sent_etag: str | None = None
    #: the expiry the server granted, in seconds
    expires: int | None = None
    #: the publication no longer exists (removed, lapsed or given up)
    ended: bool = False
    #: pua keeps retrying in the background after this failure
    retrying: bool = False
    #: the request did what it was asked (a usable 2xx, or nothing to do)
    ok: bool = True

    @property
    def cb_param(self) -> Any:
        """The caller's opaque value (``PublishInfo.cb_param``)."""
        return None if self.info is None else self.info.cb_param


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeOutcome:
    """How one request to subscribe, refresh or unsubscribe ended.

    As for PUBLISH: one outcome per ``subscribe`` call (``ticket`` set),
    and outcomes without a ticket for pua's own refreshes and
    re-subscriptions.  ``status`` is the final status of the SUBSCRIBE,
    ``None`` when nothing had to be sent.
    """

    ticket: int | None
    info: SubscribeInfo | None
    pres_uri: str
    watcher_uri: str
    event: int
    source_flag: int
    id: str
    #: "initial", "refresh" or "unsubscribe": the last request sent
    op: str | None
    status: int | None
    reason: str
    response: Response | None = None
    local: bool = False
    #: the dialog: Call-ID, our tag, the notifier's tag (None until known)
    call_id: str | None = None
    local_tag: str | None = None
    remote_tag: str | None = None
    #: the expiry the notifier granted, in seconds
    expires: int | None = None
    ended: bool = False
    retrying: bool = False
    ok: bool = True

    @property
    def cb_param(self) -> Any:
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
