"""The shared vocabulary: Kamailio's constants and the caller's requests.

Every numeric value here is the one of Kamailio's ``pua`` module (``hash.h``,
``send_publish.h``, ``pua_db.h``), so a configuration, a database row or a
log line written for Kamailio means the same thing here.  The members keep
Kamailio's names (``EventFlag.PRESENCE_EVENT``, ``SourceFlag.UL_PUBLISH``) and
are re-exported at module level (``PRESENCE_EVENT``, ``UL_PUBLISH``).

:class:`PublishInfo` is ``publ_info_t``: what an application asks
:meth:`pua.PuaAPI.send_publish` to do.  It is frozen: pua never changes the
caller's object (Kamailio writes ``flag`` back into it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Any

__all__ = [
    "BLA_EVENT",
    "BLA_PUBLISH",
    "BLA_SUBSCRIBE",
    "CONFERENCE_EVENT",
    "DFKS_EVENT",
    "DFKS_PUBLISH",
    "DFKS_SUBSCRIBE",
    "DIALOG_EVENT",
    "DIALOG_PUBLISH",
    "ERR_PUBLISH_NO_BODY",
    "INSERT_TYPE",
    "INTERNAL_UPDATE_TRUE",
    "MSGSUM_EVENT",
    "PRESENCE_EVENT",
    "PURPLE_PUBLISH",
    "PWINFO_EVENT",
    "REGINFO_EVENT",
    "REGINFO_PUBLISH",
    "REGINFO_SUBSCRIBE",
    "REQ_ME",
    "REQ_OTHER",
    "RLS_SUBSCRIBE",
    "RPC_ASYN_PUBLISH",
    "RPC_PUBLISH",
    "RPC_SUBSCRIBE",
    "UL_PUBLISH",
    "UPDATE_TYPE",
    "XCAPDIFF_EVENT",
    "XCAPDIFF_PUBLISH",
    "XCAPDIFF_SUBSCRIBE",
    "XMPP_INITIAL_SUBS",
    "XMPP_PUBLISH",
    "XMPP_SUBSCRIBE",
    "EventFlag",
    "PublishInfo",
    "RequestOrigin",
    "SourceFlag",
    "SubscribeInfo",
    "UpdateType",
]


class EventFlag(IntFlag):
    """Event packages (``record.event``; Kamailio ``hash.h``)."""

    PRESENCE_EVENT = 1
    PWINFO_EVENT = 2
    BLA_EVENT = 4
    MSGSUM_EVENT = 8
    CONFERENCE_EVENT = 16
    DIALOG_EVENT = 32
    REGINFO_EVENT = 64
    XCAPDIFF_EVENT = 128
    DFKS_EVENT = 256


class SourceFlag(IntFlag):
    """Who asked for a publication or subscription (``record.flag``).

    Callbacks are registered for a mask of these (any mask: Kamailio
    refuses masks above 512)."""

    UL_PUBLISH = 1
    BLA_PUBLISH = 2
    BLA_SUBSCRIBE = 4
    XMPP_PUBLISH = 8
    XMPP_SUBSCRIBE = 16
    XMPP_INITIAL_SUBS = 32
    RPC_PUBLISH = 64
    RPC_ASYN_PUBLISH = 128
    RPC_SUBSCRIBE = 256
    RLS_SUBSCRIBE = 512
    DIALOG_PUBLISH = 1024
    PURPLE_PUBLISH = 2048
    REGINFO_PUBLISH = 4096
    REGINFO_SUBSCRIBE = 8192
    XCAPDIFF_PUBLISH = 16384
    XCAPDIFF_SUBSCRIBE = 32768
    DFKS_PUBLISH = 65536
    DFKS_SUBSCRIBE = 131072


class UpdateType(IntFlag):
    """``publ_info.flag``: force a new publication, or update one if it
    exists (falling back to a new one)."""

    NONE = 0
    INSERT_TYPE = 2
    UPDATE_TYPE = 4


class RequestOrigin(IntEnum):
    """Kamailio's cb-param ``ua_flag``: an application asked (callbacks
    run) or pua's own refresh timer did (they do not, by default)."""

    REQ_OTHER = 0
    REQ_ME = 1


PRESENCE_EVENT = EventFlag.PRESENCE_EVENT
PWINFO_EVENT = EventFlag.PWINFO_EVENT
BLA_EVENT = EventFlag.BLA_EVENT
MSGSUM_EVENT = EventFlag.MSGSUM_EVENT
CONFERENCE_EVENT = EventFlag.CONFERENCE_EVENT
DIALOG_EVENT = EventFlag.DIALOG_EVENT
REGINFO_EVENT = EventFlag.REGINFO_EVENT
XCAPDIFF_EVENT = EventFlag.XCAPDIFF_EVENT
DFKS_EVENT = EventFlag.DFKS_EVENT

UL_PUBLISH = SourceFlag.UL_PUBLISH
BLA_PUBLISH = SourceFlag.BLA_PUBLISH
BLA_SUBSCRIBE = SourceFlag.BLA_SUBSCRIBE
XMPP_PUBLISH = SourceFlag.XMPP_PUBLISH
XMPP_SUBSCRIBE = SourceFlag.XMPP_SUBSCRIBE
XMPP_INITIAL_SUBS = SourceFlag.XMPP_INITIAL_SUBS
RPC_PUBLISH = SourceFlag.RPC_PUBLISH
RPC_ASYN_PUBLISH = SourceFlag.RPC_ASYN_PUBLISH
RPC_SUBSCRIBE = SourceFlag.RPC_SUBSCRIBE
RLS_SUBSCRIBE = SourceFlag.RLS_SUBSCRIBE
DIALOG_PUBLISH = SourceFlag.DIALOG_PUBLISH
PURPLE_PUBLISH = SourceFlag.PURPLE_PUBLISH
REGINFO_PUBLISH = SourceFlag.REGINFO_PUBLISH
REGINFO_SUBSCRIBE = SourceFlag.REGINFO_SUBSCRIBE
XCAPDIFF_PUBLISH = SourceFlag.XCAPDIFF_PUBLISH
XCAPDIFF_SUBSCRIBE = SourceFlag.XCAPDIFF_SUBSCRIBE
DFKS_PUBLISH = SourceFlag.DFKS_PUBLISH
DFKS_SUBSCRIBE = SourceFlag.DFKS_SUBSCRIBE

INSERT_TYPE = UpdateType.INSERT_TYPE
UPDATE_TYPE = UpdateType.UPDATE_TYPE

REQ_OTHER = RequestOrigin.REQ_OTHER
REQ_ME = RequestOrigin.REQ_ME

#: Kamailio's ``send_publish`` return for a new publication without a body.
ERR_PUBLISH_NO_BODY = -10


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishInfo:
    """One request to publish, modify, refresh or remove (``publ_info_t``).

    ``expires``: ``< 0`` uses ``default_expires`` and keeps refreshing for
    ever; ``0`` removes the publication; ``> 0`` keeps it for that many
    seconds (refreshing as needed), then removes it.

    ``body`` ``None`` means "refresh" (or "remove" with ``expires == 0``) of
    an existing publication.  ``etag``, when given, restricts the request to
    the publication that holds that entity-tag.  ``extra_headers`` is raw
    header text, each line ending in CRLF (as in Kamailio).  ``cb_param`` is
    handed back untouched in the outcome and to callbacks.
    """

    pres_uri: str
    event: int = EventFlag.PRESENCE_EVENT
    body: str | bytes | None = None
    expires: int = -1
    id: str = ""
    flag: int = UpdateType.NONE
    source_flag: int = 0
    content_type: str | None = None
    etag: str | None = None
    outbound_proxy: str | None = None
    extra_headers: str | None = None
    cb_param: Any = field(default=None, compare=False)


#: ``SubscribeInfo.internal_update_flag``: do not re-SUBSCRIBE an existing
#: dialog (Kamailio's INTERNAL_UPDATE_TRUE, used by RLS)
INTERNAL_UPDATE_TRUE = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeInfo:
    """One request to subscribe, refresh or unsubscribe (``subs_info_t``).

    ``pres_uri`` is the To URI (and the Request-URI unless
    ``remote_target`` is given); ``watcher_uri`` the From URI; ``contact``
    the local Contact URI (required, without angle brackets).
    ``expires``: ``< 0`` uses ``default_expires`` and keeps the
    subscription for ever; ``0`` unsubscribes; ``> 0`` keeps it that many
    seconds.  ``cb_param`` comes back with every outcome and every NOTIFY
    of the subscription.
    """

    pres_uri: str
    watcher_uri: str
    contact: str
    event: int = EventFlag.PRESENCE_EVENT
    expires: int = -1
    id: str = ""
    remote_target: str | None = None
    outbound_proxy: str | None = None
    flag: int = UpdateType.NONE
    source_flag: int = 0
    extra_headers: str | None = None
    internal_update_flag: int = 0
    cb_param: Any = field(default=None, compare=False)
