"""pua: a Presence User Agent for SIP.

It sends PUBLISH (RFC 3903) and SUBSCRIBE (RFC 6665) on behalf of
applications.  :class:`PuaAPI` is the entry point (Kamailio's ``bind_pua``);
:class:`PublishInfo` and :class:`SubscribeInfo` describe one request; the
flag constants keep Kamailio's names and values.

Underneath: the sans-IO wire codec (:mod:`pua.sip`), the non-INVITE
transaction layer (:mod:`pua.transaction`), the PUBLISH engine
(:mod:`pua.ua`), the event packages (:mod:`pua.evpkg`), and the asyncio
transports and endpoint (:mod:`pua.transport`, :mod:`pua.endpoint`).
"""

from pua.api import PuaAPI, PuaCall, PublishCall, SubscribeCall
from pua.config import ConfigError, PuaConfig
from pua.errors import (
    NoBodyError,
    PuaError,
    PublishError,
    SubscribeError,
    UnknownETagError,
    UnknownEventError,
)
from pua.model import (
    BLA_EVENT,
    BLA_PUBLISH,
    BLA_SUBSCRIBE,
    CONFERENCE_EVENT,
    DFKS_EVENT,
    DFKS_PUBLISH,
    DFKS_SUBSCRIBE,
    DIALOG_EVENT,
    DIALOG_PUBLISH,
    ERR_PUBLISH_NO_BODY,
    INSERT_TYPE,
    INTERNAL_UPDATE_TRUE,
    MSGSUM_EVENT,
    PRESENCE_EVENT,
    PURPLE_PUBLISH,
    PWINFO_EVENT,
    REGINFO_EVENT,
    REGINFO_PUBLISH,
    REGINFO_SUBSCRIBE,
    REQ_ME,
    REQ_OTHER,
    RLS_SUBSCRIBE,
    RPC_ASYN_PUBLISH,
    RPC_PUBLISH,
    RPC_SUBSCRIBE,
    UL_PUBLISH,
    UPDATE_TYPE,
    XCAPDIFF_EVENT,
    XCAPDIFF_PUBLISH,
    XCAPDIFF_SUBSCRIBE,
    XMPP_INITIAL_SUBS,
    XMPP_PUBLISH,
    XMPP_SUBSCRIBE,
    EventFlag,
    PublishInfo,
    RequestOrigin,
    SourceFlag,
    SubscribeInfo,
    UpdateType,
)
from pua.ua.events import NotifyReceived, PublishOutcome, SubscribeOutcome
from pua.ua.subscribe import DialogStatus

__version__ = "0.3.0.dev0"

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
    "ConfigError",
    "DialogStatus",
    "EventFlag",
    "NoBodyError",
    "NotifyReceived",
    "PuaAPI",
    "PuaCall",
    "PuaConfig",
    "PuaError",
    "PublishCall",
    "PublishError",
    "PublishInfo",
    "PublishOutcome",
    "RequestOrigin",
    "SourceFlag",
    "SubscribeCall",
    "SubscribeError",
    "SubscribeInfo",
    "SubscribeOutcome",
    "UnknownETagError",
    "UnknownEventError",
    "UpdateType",
    "__version__",
]
