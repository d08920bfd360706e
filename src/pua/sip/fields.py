"""Typed views of the header fields pua reads and writes.

Each class parses one header field value (RFC 3261 §20, RFC 3903 §11,
RFC 6665 §8.2) and serialises back with ``str()``.  Parsing failures raise
``SipParseError`` with a ``bad-<header>`` reason.  The message keeps the
header text; these objects are built on demand (see ``Message``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from pua.errors import SipParseError
from pua.sip.grammar import (
    Params,
    find_unquoted,
    format_params,
    is_token,
    parse_params,
    quote,
    split_list,
    unquote,
)
from pua.sip.uri import SipUri, Uri, parse_uri

__all__ = [
    "CSeq",
    "Challenge",
    "ContentType",
    "EventHeader",
    "NameAddr",
    "RetryAfter",
    "SubscriptionState",
    "Via",
    "parse_challenge",
    "parse_cseq",
    "parse_delta_seconds",
    "parse_event",
    "parse_name_addr",
    "parse_name_addrs",
    "parse_subscription_state",
    "parse_via",
]

_WS = " \t"
_DIGITS = re.compile(r"[0-9]+")
#: RFC 3261 §20.19 / §25: delta-seconds values above 2**32-1 are taken as that.
MAX_DELTA_SECONDS = 2**32 - 1


def parse_delta_seconds(value: str, what: str) -> int:
    """Parse ``delta-seconds`` (Expires, Min-Expires, expires=...).

    RFC 3261 §20.19: "If a value exceeding 2**32-1 is received, it is
    interpreted as 2**32-1"; anything that is not digits is an error.
    """
    value = value.strip(_WS)
    if _DIGITS.fullmatch(value) is None:
        raise SipParseError(f"bad-{what}", 400, value)
    if len(value) > 10:
        # any number of digits may arrive; past ten significant ones the
        # value is over the cap, and int() refuses strings of 4300+ digits
        value = value.lstrip("0")
        if len(value) > 10:
            return MAX_DELTA_SECONDS
    return min(int(value or "0"), MAX_DELTA_SECONDS)


# --------------------------------------------------------------------- Via
_VIA_PROTOCOL = re.compile(
    r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*([0-9.]+)[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)"
)


def _find_param(ptext: str, name: str) -> str | None:
    """Value of parameter ``name`` (lower-case) in raw ``;a=b;c`` text.

    The common spelling (``;branch=``) is found with one ``str.find``; any
    other (upper case, no value) falls back to parsing all parameters.
    """
    i = ptext.find(f";{name}=")
    if i >= 0:
        i += len(name) + 2
        j = ptext.find(";", i)
        return ptext[i:] if j < 0 else ptext[i:j]
    if name not in ptext.lower():
        return None
    return parse_params(ptext).get(name)


_tuple_new = tuple.__new__


class Via(NamedTuple):
    """One Via value (RFC 3261 §20.42, RFC 3581 rport); immutable.

    ``ptext`` is the parameter text as written (``;branch=z9hG4bK..;rport``);
    :attr:`params` parses it.  ``rport`` is ``None`` when absent, ``True``
    when present without a value (a request asking for it) and an ``int``
    once filled in.  Build new ones with :meth:`build` and :meth:`with_params`.
    """

    transport: str
    host: str
    port: int | None = None
    ptext: str = ""
    protocol: str = "SIP/2.0"

    @classmethod
    def build(
        cls,
        transport: str,
        host: str,
        port: int | None = None,
        params: Params | None = None,
        protocol: str = "SIP/2.0",
    ) -> Via:
        return cls(transport, host, port, format_params(params or {}), protocol)

    @property
    def params(self) -> Params:
        """Parameters by lower-cased name (``None`` value: no ``=value``)."""
        return parse_params(self.ptext, "via")

    def with_params(self, **params: str | None) -> Via:
        """A copy with these parameters set (in place if present, else appended)."""
        merged = self.params
        merged.update(params)
        return self._replace(ptext=format_params(merged))

    @property
    def branch(self) -> str | None:
        return _find_param(self.ptext, "branch")

    @property
    def received(self) -> str | None:
        return _find_param(self.ptext, "received")

    @property
    def maddr(self) -> str | None:
        return _find_param(self.ptext, "maddr")

    @property
    def rport(self) -> int | bool | None:
        params = self.params
        if "rport" not in params:
            return None
        value = params["rport"]
        if value is None:
            return True
        # port = 1*DIGIT (ASCII: str.isdigit() also accepts other scripts)
        if _DIGITS.fullmatch(value) is None or len(value) > 5 or int(value) > 65535:
            raise SipParseError("bad-via", 400, f"rport={value}")
        return int(value)

    @property
    def sent_by(self) -> tuple[str, int | None]:
        """(host, port) as written, host lower-cased; port ``None`` if omitted."""
        return (self.host.lower(), self.port)

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{self.ptext}"


def _split_host_port(text: str, what: str) -> tuple[str, int | None]:
    text = text.strip(_WS)
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise SipParseError(f"bad-{what}", 400, text)
        host, rest = text[: close + 1], text[close + 1 :].strip(_WS)
    else:
        host, colon, port_text = text.partition(":")
        host = host.strip(_WS)
        rest = ":" + port_text if colon else ""
    port = None
    if rest:
        port_text = rest[1:].strip(_WS)
        if not rest.startswith(":") or _DIGITS.fullmatch(port_text) is None or len(port_text) > 5:
            raise SipParseError(f"bad-{what}", 400, text)
        port = int(port_text)
        if port > 65535:
            raise SipParseError(f"bad-{what}", 400, text)
    if not host or any(c in host for c in ' \t,;"<>'):
        raise SipParseError(f"bad-{what}", 400, text)
    return host, port


_TOKEN_RE = r"[A-Za-z0-9\-.!%*_+`'~]+"
#: ";name" or ";name=value" with token/host values and no white space: the
#: shape of nearly every parameter list on the wire.
_SIMPLE_PARAMS = rf"((?:;{_TOKEN_RE}(?:=[A-Za-z0-9\-.!%*_+`'~:\[\]]+)?)*)"
_VIA_FAST = re.compile(
    r"SIP/2\.0/([A-Za-z]+) ([A-Za-z0-9][A-Za-z0-9\-_.]*|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?"
    + _SIMPLE_PARAMS
)


def parse_via(value: str) -> list[Via]:
    """Parse a Via header field value, which may hold several comma-joined vias."""
    m = _VIA_FAST.fullmatch(value)
    if m is not None:
        transport, host, port, params = m.groups()
        port_num = None if port is None else int(port)
        if port_num is None or port_num <= 65535:
            return [_tuple_new(Via, (transport.upper(), host, port_num, params, "SIP/2.0"))]
    vias = []
    for part in split_list(value):
        m = _VIA_PROTOCOL.match(part)
        if m is None:
            raise SipParseError("bad-via", 400, part)
        rest = part[m.end() :]
        if not rest or rest[0] not in _WS:
            raise SipParseError("bad-via", 400, part)
        semi = find_unquoted(rest, ";")
        hostport = rest if semi < 0 else rest[:semi]
        host, port = _split_host_port(hostport, "via")
        params = parse_params(rest[semi:] if semi >= 0 else "", "via")
        name, version, transport = m.groups()
        vias.append(
            Via(transport.upper(), host, port, format_params(params), f"{name.upper()}/{version}")
        )
    if not vias:
        raise SipParseError("bad-via", 400, value)
    return vias


# -------------------------------------------------------------- name-addr
class NameAddr(NamedTuple):
    """A name-addr or addr-spec with header parameters (From, To, Contact,
    Route, Record-Route; RFC 3261 §20.10, §20.20, §20.39); immutable.

    ``uri`` is the URI text (:attr:`parsed_uri` parses it); ``ptext`` the
    header parameters as written (``;tag=a6c85cf``); ``bracketed`` whether
    the URI was inside ``<>``.
    """

    uri: str
    display_name: str | None = None
    ptext: str = ""
    bracketed: bool = True

    @classmethod
    def build(
        cls, uri: str, display_name: str | None = None, params: Params | None = None
    ) -> NameAddr:
        return cls(uri, display_name, format_params(params or {}), True)

    @property
    def params(self) -> Params:
        """Header parameters by lower-cased name."""
        return parse_params(self.ptext)

    def with_params(self, **params: str | None) -> NameAddr:
        merged = self.params
        merged.update(params)
        return self._replace(ptext=format_params(merged))

    @property
    def tag(self) -> str | None:
        return _find_param(self.ptext, "tag")

    @property
    def parsed_uri(self) -> Uri:
        return parse_uri(self.uri)

    @property
    def sip_uri(self) -> SipUri:
        """The URI as a SIP URI; ``SipParseError("bad-uri")`` if it is another scheme."""
        uri = parse_uri(self.uri)
        if not isinstance(uri, SipUri):
            raise SipParseError("bad-uri", 400, self.uri)
        return uri

    @property
    def expires(self) -> int | None:
        """The Contact ``expires`` parameter, if any."""
        value = _find_param(self.ptext, "expires")
        return None if value is None else parse_delta_seconds(value, "contact")

    def __str__(self) -> str:
        if self.display_name is not None:
            text = f"{self.display_name} <{self.uri}>"
        elif self.bracketed or any(c in self.uri for c in ",;?"):
            text = f"<{self.uri}>"
        else:
            text = self.uri
        return text + self.ptext


_NAME_ADDR_FAST = re.compile(r"<([A-Za-z][A-Za-z0-9+\-.]*:[^<>\s\"]+)>" + _SIMPLE_PARAMS)


def parse_name_addr(value: str, what: str = "name-addr") -> NameAddr:
    """Parse one name-addr / addr-spec followed by header parameters.

    The URI is checked for shape only (scheme, no white space or brackets);
    :attr:`NameAddr.parsed_uri` and ``Message.validate()`` parse it fully.
    """
    m = _NAME_ADDR_FAST.fullmatch(value)
    if m is not None:
        return _tuple_new(NameAddr, (m.group(1), None, m.group(2), True))
    text = value.strip(_WS)
    if not text:
        raise SipParseError(f"bad-{what}", 400, value)
    if text[0] == '"' or "<" in text:
        display: str | None = None
        if text[0] == '"':
            end = _quoted_end(text, what)
            display = text[:end]
            rest = text[end:].lstrip(_WS)
            if not rest.startswith("<"):
                raise SipParseError(f"bad-{what}", 400, value)
        else:
            lt = text.find("<")
            display_text = text[:lt].strip(_WS)
            if display_text:
                # display-name = *(token LWS): each word must be a token
                for word in display_text.split():
                    if not is_token(word):
                        raise SipParseError(f"bad-{what}", 400, value)
                display = display_text
            rest = text[lt:]
        gt = rest.find(">")
        if gt < 0:
            raise SipParseError(f"bad-{what}", 400, value)
        uri = rest[1:gt]
        if not uri or any(c in uri for c in " \t<"):
            raise SipParseError(f"bad-{what}", 400, value)
        params = parse_params(rest[gt + 1 :].strip(_WS), what)
        return NameAddr(uri, display, format_params(params), True)
    # addr-spec without <>: parameters after ";" are header parameters, and
    # the URI may not hold ",", ";" or "?" (RFC 3261 §20.10; RFC 4475 §3.1.2.13)
    semi = text.find(";")
    uri = text if semi < 0 else text[:semi]
    uri = uri.rstrip(_WS)
    if not uri or any(c in uri for c in ' \t,?"<>'):
        raise SipParseError(f"bad-{what}", 400, value)
    params = parse_params(text[semi:] if semi >= 0 else "", what)
    return NameAddr(uri, None, format_params(params), False)


def _quoted_end(text: str, what: str) -> int:
    i = 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    raise SipParseError("unterminated-quote", 400, text)


def parse_name_addrs(value: str, what: str) -> list[NameAddr]:
    """Parse a comma-separated list of name-addrs (Contact, Route, ...)."""
    return [parse_name_addr(part, what) for part in split_list(value)]


# -------------------------------------------------------------------- CSeq
class CSeq(NamedTuple):
    """CSeq: sequence number and method (RFC 3261 §20.16)."""

    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


_CSEQ_FAST = re.compile(r"([0-9]{1,10}) (" + _TOKEN_RE + ")")
_CSEQ_SLOW = re.compile(r"[ \t]*([0-9]+)[ \t]+(" + _TOKEN_RE + r")[ \t]*")


def parse_cseq(value: str) -> CSeq:
    """Parse a CSeq value; the number must fit 32 bits (RFC 3261 §8.1.1.5)."""
    m = _CSEQ_FAST.fullmatch(value)
    if m is not None:
        seq = int(m.group(1))
        if seq <= MAX_DELTA_SECONDS:
            return _tuple_new(CSeq, (seq, m.group(2)))
    # CSeq = 1*DIGIT LWS Method: any SP/HT run separates, and leading zeros
    # count for nothing (RFC 4475 §3.1.1.1 has "0009")
    m = _CSEQ_SLOW.fullmatch(value)
    if m is None:
        raise SipParseError("bad-cseq", 400, value)
    num, method = m.groups()
    num = num.lstrip("0") or "0"
    if len(num) > 10:
        raise SipParseError("bad-cseq", 400, value)
    seq = int(num)
    if seq > MAX_DELTA_SECONDS:
        raise SipParseError("bad-cseq", 400, value)
    return CSeq(seq, method)


# ------------------------------------------------------------------- Event
@dataclass(frozen=True, slots=True)
class EventHeader:
    """Event / Allow-Events element (RFC 6665 §8.2.1): package plus params."""

    package: str
    params: tuple[tuple[str, str | None], ...] = ()

    @property
    def id(self) -> str | None:
        for name, value in self.params:
            if name == "id":
                return value
        return None

    def matches(self, other: EventHeader) -> bool:
        """RFC 6665 §8.2.1: same package (case-sensitive token compare as in
        RFC 6665 §7.2.1 "event-type") and the same ``id`` parameter."""
        return self.package == other.package and self.id == other.id

    def __str__(self) -> str:
        return self.package + format_params(dict(self.params))


def parse_event(value: str) -> EventHeader:
    text = value.strip(_WS)
    semi = text.find(";")
    package = (text if semi < 0 else text[:semi]).strip(_WS)
    # event-type = event-package *( "." event-template ); both are token-nodot
    if not package or not is_token(package):
        raise SipParseError("bad-event", 400, value)
    params = parse_params(text[semi:] if semi >= 0 else "", "event")
    return EventHeader(package, tuple(params.items()))


# ------------------------------------------------------ Subscription-State
@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """Subscription-State (RFC 6665 §8.2.3).  Unknown states and reasons
    are kept as written, not rejected (§4.1.3: treat unknown as terminated)."""

    state: str
    params: tuple[tuple[str, str | None], ...] = ()

    def _param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None

    @property
    def expires(self) -> int | None:
        value = self._param("expires")
        return None if value is None else parse_delta_seconds(value, "subscription-state")

    @property
    def retry_after(self) -> int | None:
        value = self._param("retry-after")
        return None if value is None else parse_delta_seconds(value, "subscription-state")

    @property
    def reason(self) -> str | None:
        value = self._param("reason")
        return value.lower() if value else None

    def __str__(self) -> str:
        return self.state + format_params(dict(self.params))


def parse_subscription_state(value: str) -> SubscriptionState:
    text = value.strip(_WS)
    semi = text.find(";")
    state = (text if semi < 0 else text[:semi]).strip(_WS).lower()
    if not is_token(state):
        raise SipParseError("bad-subscription-state", 400, value)
    params = parse_params(text[semi:] if semi >= 0 else "", "subscription-state")
    result = SubscriptionState(state, tuple(params.items()))
    # validate numeric parameters now, so a bad NOTIFY is refused up front
    result.expires  # noqa: B018
    result.retry_after  # noqa: B018
    return result


# ------------------------------------------------------------ Content-Type
@dataclass(frozen=True, slots=True)
class ContentType:
    """Content-Type (RFC 3261 §20.15): type/subtype, lower-cased, plus params."""

    type: str
    subtype: str
    params: tuple[tuple[str, str | None], ...] = ()

    @property
    def mime(self) -> str:
        return f"{self.type}/{self.subtype}"

    def __str__(self) -> str:
        return self.mime + format_params(dict(self.params))


def parse_content_type(value: str) -> ContentType:
    text = value.strip(_WS)
    semi = text.find(";")
    mime = (text if semi < 0 else text[:semi]).strip(_WS)
    mtype, slash, subtype = mime.partition("/")
    mtype, subtype = mtype.strip(_WS), subtype.strip(_WS)
    if not slash or not is_token(mtype) or not is_token(subtype):
        raise SipParseError("bad-content-type", 400, value)
    params = parse_params(text[semi:] if semi >= 0 else "", "content-type")
    return ContentType(mtype.lower(), subtype.lower(), tuple(params.items()))


# ------------------------------------------------------------- Retry-After
@dataclass(frozen=True, slots=True)
class RetryAfter:
    """Retry-After (RFC 3261 §20.33): seconds, optional comment, params."""

    seconds: int
    comment: str | None = None
    params: tuple[tuple[str, str | None], ...] = ()

    @property
    def duration(self) -> int | None:
        for key, value in self.params:
            if key == "duration" and value is not None:
                return parse_delta_seconds(value, "retry-after")
        return None


def parse_retry_after(value: str) -> RetryAfter:
    text = value.strip(_WS)
    comment = None
    if "(" in text:
        start = text.index("(")
        end = text.rfind(")")
        if end < start:
            raise SipParseError("bad-retry-after", 400, value)
        comment = text[start + 1 : end]
        text = (text[:start] + text[end + 1 :]).strip(_WS)
    semi = text.find(";")
    seconds = parse_delta_seconds(text if semi < 0 else text[:semi], "retry-after")
    params = parse_params(text[semi:].strip(_WS) if semi >= 0 else "", "retry-after")
    return RetryAfter(seconds, comment, tuple(params.items()))


# ----------------------------------------------------- WWW-/Proxy-Authenticate
@dataclass(frozen=True, slots=True)
class Challenge:
    """One authentication challenge or credentials value (RFC 3261 §20.27,
    §20.44; RFC 7616 §3.3).  Parameter names are lower-cased and quoted
    values unquoted.  For Authorization, see :mod:`pua.sip.digest`."""

    scheme: str
    params: tuple[tuple[str, str], ...] = ()

    def get(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.params:
            if key == name:
                return value
        return None

    @property
    def realm(self) -> str | None:
        return self.get("realm")

    @property
    def nonce(self) -> str | None:
        return self.get("nonce")


def parse_challenge(value: str, what: str = "www-authenticate") -> Challenge:
    """Parse ``scheme param=value, param=value``: commas separate auth-params
    here, not header values, so these fields are never list-split."""
    text = value.strip(_WS)
    sp = 0
    while sp < len(text) and text[sp] not in _WS:
        sp += 1
    scheme = text[:sp]
    if not is_token(scheme):
        raise SipParseError(f"bad-{what}", 400, value)
    params = []
    rest = text[sp:]
    start = 0
    while start < len(rest):
        comma = find_unquoted(rest, ",", start)
        part = rest[start:] if comma < 0 else rest[start:comma]
        part = part.strip(_WS)
        if part:
            name, eq, pvalue = part.partition("=")
            name = name.strip(_WS)
            if not eq or not is_token(name):
                raise SipParseError(f"bad-{what}", 400, value)
            pvalue = pvalue.strip(_WS)
            if pvalue.startswith('"') and (len(pvalue) < 2 or not pvalue.endswith('"')):
                raise SipParseError("unterminated-quote", 400, value)
            params.append((name.lower(), unquote(pvalue)))
        if comma < 0:
            break
        start = comma + 1
    return Challenge(scheme, tuple(params))


def format_challenge(scheme: str, params: list[tuple[str, str, bool]]) -> str:
    """Serialise ``scheme name=value, ...``; the bool says whether to quote."""
    return scheme + " " + ", ".join(f"{n}={quote(v) if q else v}" for n, v, q in params)
