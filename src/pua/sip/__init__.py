"""Sans-IO SIP wire codec: bytes in, messages out, and back.

No sockets, no clock, no event loop: everything here is a pure function of
its arguments (randomness comes from an injected ``random.Random``).
"""

from pua.errors import SipParseError
from pua.sip.build import make_response
from pua.sip.fields import (
    Challenge,
    ContentType,
    CSeq,
    EventHeader,
    NameAddr,
    RetryAfter,
    SubscriptionState,
    Via,
)
from pua.sip.headers import Headers, header_key
from pua.sip.message import Message, Request, Response, reason_phrase
from pua.sip.parser import StreamFramer, parse_message, salvage_request
from pua.sip.uri import AbsoluteUri, SipUri, parse_sip_uri, parse_uri

__all__ = [
    "AbsoluteUri",
    "CSeq",
    "Challenge",
    "ContentType",
    "EventHeader",
    "Headers",
    "Message",
    "NameAddr",
    "Request",
    "Response",
    "RetryAfter",
    "SipParseError",
    "SipUri",
    "StreamFramer",
    "SubscriptionState",
    "Via",
    "header_key",
    "make_response",
    "parse_message",
    "parse_sip_uri",
    "parse_uri",
    "reason_phrase",
    "salvage_request",
]
