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

from pua import model as _model
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
from pua.model import *  # noqa: F403  (Kamailio's flags, constants, the Infos: model.__all__)
from pua.ua.events import NotifyReceived, PublishOutcome, SubscribeOutcome
from pua.ua.subscribe import DialogStatus

__version__ = "0.3.0.dev0"

__all__ = [
    "ConfigError",
    "DialogStatus",
    "NoBodyError",
    "NotifyReceived",
    "PuaAPI",
    "PuaCall",
    "PuaConfig",
    "PuaError",
    "PublishCall",
    "PublishError",
    "PublishOutcome",
    "SubscribeCall",
    "SubscribeError",
    "SubscribeOutcome",
    "UnknownETagError",
    "UnknownEventError",
    "__version__",
]
__all__ += _model.__all__
