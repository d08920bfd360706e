"""SIP requests and responses (RFC 3261 §7) with typed header accessors.

A message is a start line, a :class:`~pua.sip.headers.Headers` block and a
body of ``bytes``.  Header values stay text until an accessor is used; the
accessor parses, caches the result in the header block, and raises
``SipParseError`` (reason ``bad-<header>`` or ``missing-<header>``) if the
field is malformed or, for mandatory fields, absent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from pua.errors import SipParseError
from pua.sip.fields import (
    Challenge,
    ContentType,
    CSeq,
    EventHeader,
    NameAddr,
    RetryAfter,
    SubscriptionState,
    Via,
    parse_challenge,
    parse_content_type,
    parse_cseq,
    parse_delta_seconds,
    parse_event,
    parse_name_addr,
    parse_name_addrs,
    parse_retry_after,
    parse_subscription_state,
    parse_via,
)
from pua.sip.grammar import is_token, split_list
from pua.sip.headers import Headers
from pua.sip.uri import Uri, parse_uri

__all__ = ["SIP_VERSION", "Message", "Request", "Response", "reason_phrase"]

SIP_VERSION = "SIP/2.0"
_T = TypeVar("_T")

#: Fields that may appear at most once (RFC 3261 §7.3.1: only list headers
#: may repeat).  Checked by :meth:`Message.validate`.
SINGLE_FIELDS = (
    "call-id",
    "cseq",
    "from",
    "to",
    "content-length",
    "content-type",
    "max-forwards",
    "expires",
    "min-expires",
    "event",
    "sip-etag",
    "sip-if-match",
    "subscription-state",
)

#: Reason phrases for the codes pua sends or meets (RFC 3261 §21, RFC 3903
#: §11.2.1 for 412, RFC 6665 §8.3.1 for 489).
_REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    489: "Bad Event",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def reason_phrase(status: int) -> str:
    """The RFC reason phrase for ``status`` (a class default if unknown)."""
    phrase = _REASONS.get(status)
    if phrase is None:
        phrase = _REASONS.get(status // 100 * 100, "Unknown")
    return phrase


class Message:
    """What requests and responses share: headers, body, typed accessors."""

    __slots__ = ("body", "headers")

    headers: Headers
    body: bytes

    def __init__(self, headers: Headers | Iterable[tuple[str, str]], body: bytes) -> None:
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = body

    # -- helpers -----------------------------------------------------------
    # Accessors look the parsed value up in the header block's cache first;
    # the code is written out (no closures) because these run per message.
    def _required(self, key: str) -> str:
        # key: a canonical (lower-case, full-form) name
        value = self.headers._index().get(key)
        if value is None:
            raise SipParseError(f"missing-{key}", 400, key)
        return value

    def _optional(self, name: str, parse: Callable[[str], _T]) -> _T | None:
        cache = self.headers._cache
        if name in cache:
            cached: _T | None = cache[name]
            return cached
        text = self.headers._index().get(name)
        value = None if text is None else parse(text)
        cache[name] = value
        return value

    def _many(self, name: str, parse: Callable[[str], list[_T]]) -> list[_T]:
        cache = self.headers._cache
        if name in cache:
            cached: list[_T] = cache[name]
            return cached
        out: list[_T] = []
        for text in self.headers.get_all(name):
            out.extend(parse(text))
        cache[name] = out
        return out

    # -- mandatory fields (RFC 3261 §8.1.1) --------------------------------
    @property
    def vias(self) -> list[Via]:
        """Every Via, top first."""
        vias = self._many("via", parse_via)
        if not vias:
            raise SipParseError("missing-via", 400, "Via")
        return vias

    @property
    def top_via(self) -> Via:
        """The topmost Via (the one that names the transaction)."""
        cache = self.headers._cache
        via: Via | None = cache.get("@top-via")
        if via is None:
            vias = cache.get("via")
            via = vias[0] if vias else parse_via(self._required("via"))[0]
            cache["@top-via"] = via
        return via

    @property
    def call_id(self) -> str:
        cache = self.headers._cache
        value: str | None = cache.get("call-id")
        if value is None:
            value = self._required("call-id")
            # callid = word [ "@" word ]: never empty, no white space
            if not value or " " in value or "\t" in value:
                raise SipParseError("bad-call-id", 400, value)
            cache["call-id"] = value
        return value

    @property
    def cseq(self) -> CSeq:
        cache = self.headers._cache
        value: CSeq | None = cache.get("cseq")
        if value is None:
            value = cache["cseq"] = parse_cseq(self._required("cseq"))
        return value

    @property
    def from_(self) -> NameAddr:
        cache = self.headers._cache
        value: NameAddr | None = cache.get("from")
        if value is None:
            value = cache["from"] = parse_name_addr(self._required("from"), "from")
        return value

    @property
    def to(self) -> NameAddr:
        cache = self.headers._cache
        value: NameAddr | None = cache.get("to")
        if value is None:
            value = cache["to"] = parse_name_addr(self._required("to"), "to")
        return value

    # -- optional fields ---------------------------------------------------
    @property
    def contacts(self) -> list[NameAddr]:
        """Contact values; empty if there is none or for ``Contact: *``."""
        return self._many("contact", _parse_contact)

    @property
    def record_route(self) -> list[NameAddr]:
        return self._many("record-route", _parse_record_route)

    @property
    def route(self) -> list[NameAddr]:
        return self._many("route", _parse_route)

    @property
    def expires(self) -> int | None:
        """Expires in seconds (RFC 3261 §20.19), or ``None``."""
        return self._optional("expires", _parse_expires)

    @property
    def min_expires(self) -> int | None:
        return self._optional("min-expires", _parse_min_expires)

    @property
    def max_forwards(self) -> int | None:
        return self._optional("max-forwards", _parse_max_forwards)

    @property
    def event(self) -> EventHeader | None:
        """Event (RFC 6665 §8.2.1), or ``None``."""
        return self._optional("event", parse_event)

    @property
    def sip_etag(self) -> str | None:
        """SIP-ETag entity-tag (RFC 3903 §11.3.1), or ``None``."""
        return self._optional("sip-etag", _parse_sip_etag)

    @property
    def sip_if_match(self) -> str | None:
        """SIP-If-Match entity-tag (RFC 3903 §11.3.2), or ``None``."""
        return self._optional("sip-if-match", _parse_sip_if_match)

    @property
    def subscription_state(self) -> SubscriptionState | None:
        return self._optional("subscription-state", parse_subscription_state)

    @property
    def content_type(self) -> ContentType | None:
        return self._optional("content-type", parse_content_type)

    @property
    def content_length(self) -> int | None:
        """Content-Length as written, or ``None`` (the body is authoritative)."""
        return self._optional("content-length", _parse_content_length)

    @property
    def retry_after(self) -> RetryAfter | None:
        return self._optional("retry-after", parse_retry_after)

    @property
    def www_authenticate(self) -> list[Challenge]:
        return self._many("www-authenticate", _parse_www_authenticate)

    @property
    def proxy_authenticate(self) -> list[Challenge]:
        return self._many("proxy-authenticate", _parse_proxy_authenticate)

    @property
    def allow_events(self) -> list[EventHeader]:
        return self._many("allow-events", _parse_event_list)

    # -- whole-message checks ---------------------------------------------
    def validate(self) -> None:
        """Parse every header field pua understands and check the rules that
        span fields; raise ``SipParseError`` on the first problem.

        The parser checks only what framing and transaction matching need;
        this is the full check, for tests and for messages an application
        is about to act on.
        """
        headers = self.headers
        for name in SINGLE_FIELDS:
            if headers.count(name) > 1:
                raise SipParseError(f"duplicate-{name}", 400, name)
        self.vias  # noqa: B018
        self.call_id  # noqa: B018
        self.cseq  # noqa: B018
        self.from_  # noqa: B018
        self.to  # noqa: B018
        self.contacts  # noqa: B018
        self.record_route  # noqa: B018
        self.route  # noqa: B018
        self.expires  # noqa: B018
        self.min_expires  # noqa: B018
        self.max_forwards  # noqa: B018
        self.event  # noqa: B018
        self.sip_etag  # noqa: B018
        self.sip_if_match  # noqa: B018
        self.subscription_state  # noqa: B018
        self.content_type  # noqa: B018
        self.content_length  # noqa: B018
        self.retry_after  # noqa: B018
        self.www_authenticate  # noqa: B018
        self.proxy_authenticate  # noqa: B018
        self.allow_events  # noqa: B018
        for name_addr in (self.from_, self.to, *self.contacts, *self.record_route, *self.route):
            try:
                name_addr.parsed_uri  # noqa: B018
            except SipParseError:
                raise SipParseError("bad-uri", 400, name_addr.uri) from None

    # -- serialisation -----------------------------------------------------
    def start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Serialise (RFC 3261 §7): CRLF line ends, the fields as they were
        read or added, and a Content-Length equal to the body's length: a
        stored one that is right stays where it is (a received message is
        written back as received), a wrong one is dropped, and a missing one
        is added as the last field."""
        headers = self.headers
        fields = headers._fields
        length = str(len(self.body))
        if headers._first is not None:
            stored = headers._first.get("content-length")
        else:
            # a message built and not read yet: no index to ask
            stored = "?" if "content-length" in headers._key_list() else None
        if stored == length:
            head = "\r\n".join([self.start_line(), *map("".join, fields)])
        else:
            if stored is None:
                lines = [self.start_line(), *map("".join, fields)]
            else:
                lines = [self.start_line()]
                lines += [
                    "".join(f)
                    for k, f in zip(headers._key_list(), fields, strict=True)
                    if k != "content-length"
                ]
            lines.append(f"Content-Length: {length}")
            head = "\r\n".join(lines)
        return (head + "\r\n\r\n").encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    def _start(self) -> tuple[object, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        """Same kind, same start line, same body and the same fields
        (Content-Length aside: it is framing, rewritten on serialisation)."""
        if not isinstance(other, Message) or isinstance(other, Request) != isinstance(
            self, Request
        ):
            return NotImplemented
        return (
            self._start() == other._start()
            and self.body == other.body
            and self._comparable_headers() == other._comparable_headers()
        )

    __hash__ = None  # type: ignore[assignment]

    def _comparable_headers(self) -> list[tuple[str, str]]:
        # Content-Length is framing, not content: serialisation rewrites it
        return self.headers._comparable(skip="content-length")


def _parse_max_forwards(value: str) -> int:
    # Max-Forwards = 1*DIGIT, 0-255 (RFC 3261 §20.22); leading zeros are
    # allowed (RFC 4475 §3.1.1.1 sends "0068")
    value = value.strip()
    digits = value.lstrip("0")
    if not value.isdigit() or not value.isascii() or len(digits) > 3 or int(digits or "0") > 255:
        raise SipParseError("bad-max-forwards", 400, value)
    return int(digits or "0")


def _parse_entity_tag(value: str, what: str) -> str:
    value = value.strip()
    if not is_token(value):
        raise SipParseError(f"bad-{what}", 400, value)
    return value


def _parse_sip_etag(value: str) -> str:
    return _parse_entity_tag(value, "sip-etag")


def _parse_sip_if_match(value: str) -> str:
    return _parse_entity_tag(value, "sip-if-match")


def _parse_expires(value: str) -> int:
    return parse_delta_seconds(value, "expires")


def _parse_min_expires(value: str) -> int:
    return parse_delta_seconds(value, "min-expires")


def _parse_content_length(value: str) -> int:
    value = value.strip()
    digits = value.lstrip("0")
    if not value.isdigit() or not value.isascii() or len(digits) > 10:
        raise SipParseError("bad-content-length", 400, value)
    return int(digits or "0")


def _parse_contact(value: str) -> list[NameAddr]:
    return [] if value.strip() == "*" else parse_name_addrs(value, "contact")


def _parse_record_route(value: str) -> list[NameAddr]:
    return parse_name_addrs(value, "record-route")


def _parse_route(value: str) -> list[NameAddr]:
    return parse_name_addrs(value, "route")


def _parse_www_authenticate(value: str) -> list[Challenge]:
    return [parse_challenge(value, "www-authenticate")]


def _parse_proxy_authenticate(value: str) -> list[Challenge]:
    return [parse_challenge(value, "proxy-authenticate")]


def _parse_event_list(value: str) -> list[EventHeader]:
    return [parse_event(v) for v in split_list(value)]


class Request(Message):
    """A SIP request.  ``uri`` is the Request-URI text."""

    __slots__ = ("method", "uri", "version")

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Headers | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        version: str = SIP_VERSION,
    ) -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri
        self.version = version

    @property
    def parsed_uri(self) -> Uri:
        """The Request-URI parsed (not cached: ``uri`` is a plain attribute)."""
        return parse_uri(self.uri)

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def validate(self) -> None:
        super().validate()
        self.parsed_uri  # noqa: B018
        if self.cseq.method != self.method:
            # RFC 3261 §8.1.1.5 / RFC 4475 §3.1.2.17
            raise SipParseError("cseq-method-mismatch", 400, f"{self.method} vs {self.cseq}")

    def _start(self) -> tuple[object, ...]:
        return (self.method, self.uri, self.version.upper())

    def __repr__(self) -> str:
        return (
            f"<Request {self.method} {self.uri} headers={len(self.headers)} body={len(self.body)}B>"
        )


class Response(Message):
    """A SIP response."""

    __slots__ = ("reason", "status", "version")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        version: str = SIP_VERSION,
    ) -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason_phrase(status) if reason is None else reason
        self.version = version

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    @property
    def is_provisional(self) -> bool:
        return self.status < 200

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def _start(self) -> tuple[object, ...]:
        return (self.status, self.reason, self.version.upper())

    def __repr__(self) -> str:
        return (
            f"<Response {self.status} {self.reason}"
            f" headers={len(self.headers)} body={len(self.body)}B>"
        )


def allow_list(message: Message) -> list[str]:
    """The methods of an Allow header (RFC 3261 §20.5)."""
    return [m for value in message.headers.get_all("allow") for m in split_list(value)]
