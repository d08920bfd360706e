"""What the presence engines tell the shell.

Inputs are past-tense facts fed to the engines (responses, timer ticks);
these are their outputs: requests to send and outcomes to report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pua.model import PublishInfo
from pua.sip.message import Request, Response

__all__ = ["OutgoingRequest", "PublishOutcome"]


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
