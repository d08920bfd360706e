"""Bytes → messages: :func:`parse_message` for one datagram and
:class:`StreamFramer` for TCP/TLS byte streams (RFC 3261 §7, §18.3).

The parser checks what framing and transaction matching need (start line,
the mandatory fields, Content-Length, CSeq, the top Via) and leaves every
other field as text for the typed accessors.  Whatever the input, the only
exception that leaves this module is ``SipParseError``.
"""

from __future__ import annotations

import operator
import re

from pua.errors import SipParseError
from pua.sip.fields import parse_cseq, parse_via
from pua.sip.grammar import is_token
from pua.sip.headers import Headers, header_key
from pua.sip.limits import (
    MAX_BODY_SIZE,
    MAX_FIELD_LENGTH,
    MAX_HEAD_SIZE,
    MAX_HEADER_FIELDS,
    MAX_MESSAGE_SIZE,
)
from pua.sip.message import Request, Response

__all__ = ["StreamFramer", "parse_message", "salvage_request"]

#: raw name as written (possibly with white space before the colon) ->
#: canonical key.  Bounded: names come from the network.
_NAMES: dict[str, str] = {}
_MANDATORY = ("via", "call-id", "cseq", "from", "to")
_MANDATORY_SET = frozenset(_MANDATORY)
_SECOND = operator.itemgetter(1)
#: Status-Code = 3DIGIT, and the first digit is the class 1-6 (RFC 3261 §7.2)
_STATUS_CODES = frozenset(str(code) for code in range(100, 700))


def _name_key(raw: str) -> str:
    name = raw.rstrip(" \t")
    if not is_token(name):
        raise SipParseError("bad-header-name", 400, raw[:80])
    key = header_key(name)
    if len(_NAMES) < 4096:
        _NAMES[raw] = key
    return key


def _unfold(head: str) -> str:
    # RFC 3261 §7.3.1: a line starting with white space continues the
    # previous field; the CRLF and leading white space become one SP.
    return re.sub(r"\r\n[ \t]+", " ", head)


def parse_message(data: bytes, *, stream: bool = False) -> Request | Response:
    """Parse one whole SIP message.

    ``stream`` says the bytes were framed by :class:`StreamFramer`, whose
    Content-Length is already known to fit.  For datagrams, a Content-Length
    larger than the bytes received is an error and a smaller one truncates
    the body (RFC 3261 §18.3).
    """
    start = 0
    # RFC 3261 §7.5: CRLFs before the start line are ignored
    while data.startswith(b"\r\n", start):
        start += 2
    # a response is never answered, so its errors carry no status
    is_response = data[start : start + 4].upper() == b"SIP/"
    if len(data) > MAX_MESSAGE_SIZE:
        raise SipParseError("message-too-large", None if is_response else 513, f"{len(data)} bytes")
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        if not data[start:]:
            raise SipParseError("empty", None)
        raise SipParseError("no-end-of-headers", None if is_response else 400)
    if end - start > MAX_HEAD_SIZE:
        raise SipParseError("head-too-large", None if is_response else 513, f"{end - start} bytes")
    head = data[start:end].decode("utf-8", "surrogateescape")
    if "\r\n " in head or "\r\n\t" in head:
        head = _unfold(head)
    lines = head.split("\r\n")
    first = lines[0]
    status = None if is_response else 400
    del lines[0]
    if len(lines) > MAX_HEADER_FIELDS:
        raise SipParseError(
            "too-many-headers", None if is_response else 513, f"{len(lines)} fields"
        )
    if len(head) > MAX_FIELD_LENGTH and max(map(len, lines), default=0) > MAX_FIELD_LENGTH:
        raise SipParseError("header-too-long", None if is_response else 513)
    names = _NAMES
    parts = [line.partition(":") for line in lines]
    if "" in map(_SECOND, parts):
        bad = next(line for line, (_, colon, _) in zip(lines, parts, strict=True) if not colon)
        raise SipParseError("bad-header-line", status, bad[:80])
    if head.count("\n") != len(lines) or head.count("\r") != len(lines):
        # a CR or LF that is not part of a CRLF line end (RFC 3261 §7)
        raise SipParseError("bare-line-break", status)
    # key -> value of the first field of that name (hence reversed); the
    # fields themselves stay the (name, ":", value) triples partition made
    try:
        index = {
            names.get(raw) or _name_key(raw): value.strip(" \t")
            for raw, _, value in reversed(parts)
        }
    except SipParseError as exc:
        exc.status = status
        raise
    body = data[end + 4 :]
    content_length = index.get("content-length")
    if content_length is not None:
        if not content_length.isdigit() or not content_length.isascii():
            raise SipParseError("bad-content-length", status, content_length)
        if len(content_length) > 9:
            # leading zeros are allowed; more than 9 significant digits is
            # more than any datagram holds (and int() refuses 4300+ digits)
            content_length = content_length.lstrip("0") or "0"
            if len(content_length) > 9:
                raise SipParseError("content-length-too-large", status, content_length[:20])
        length = int(content_length)
        if length > len(body):
            raise SipParseError(
                "content-length-too-large", status, f"{length} declared, {len(body)} received"
            )
        if length < len(body):
            body = body[:length]
    elif stream:
        raise SipParseError("missing-content-length", status)
    # RFC 3261 §8.1.1: To, From, CSeq, Call-ID and Via are mandatory (so is
    # Max-Forwards in requests, but many UAs omit it and only proxies need
    # it).  CSeq, Call-ID and the top Via name the transaction (§17.1.3,
    # §17.2.3), so they are parsed now; repeated scalars and every other
    # field are left to the accessors and Message.validate().
    if not index.keys() >= _MANDATORY_SET:
        missing = next(key for key in _MANDATORY if key not in index)
        raise SipParseError(f"missing-{missing}", status, missing)
    try:
        cseq = parse_cseq(index["cseq"])
        top_via = parse_via(index["via"])[0]
    except SipParseError as exc:
        exc.status = status
        raise
    call_id = index["call-id"]
    if not call_id or " " in call_id or "\t" in call_id:
        # callid = word [ "@" word ]
        raise SipParseError("bad-call-id", status, call_id)
    headers = Headers._parsed(parts, index, {"cseq": cseq, "@top-via": top_via, "call-id": call_id})
    if is_response:
        return _response(first, headers, body)
    request = _request(first, headers, body)
    if cseq.method != request.method:
        # RFC 3261 §8.1.1.5, RFC 4475 §3.1.2.17
        raise SipParseError("cseq-method-mismatch", 400, f"{request.method} vs {cseq}")
    return request


def _response(first: str, headers: Headers, body: bytes) -> Response:
    parts = first.split(" ", 2)
    version = parts[0]
    if version != "SIP/2.0" and version.upper() != "SIP/2.0":
        raise SipParseError("unsupported-version", None, version)
    if len(parts) < 2:
        raise SipParseError("bad-status-line", None, first)
    code = parts[1]
    if code not in _STATUS_CODES:
        raise SipParseError("bad-status-code", None, code)
    response = Response.__new__(Response)
    response.status = int(code)
    response.reason = parts[2] if len(parts) > 2 else ""
    response.version = version
    response.headers = headers
    response.body = body
    return response


#: The common request line, checked in one match: token SP URI SP SIP/2.0
#: (the URI starts with a scheme and holds no white space or "<").
_REQUEST_LINE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+) ([A-Za-z][^ \t<]*:[^ \t]*) (SIP/2\.0)")


def _request(first: str, headers: Headers, body: bytes) -> Request:
    m = _REQUEST_LINE.fullmatch(first)
    if m is not None:
        request = Request.__new__(Request)
        request.method, request.uri, request.version = m.groups()
        request.headers = headers
        request.body = body
        return request
    # the slow path finds out what is wrong, or accepts the unusual
    parts = first.split(" ")
    if len(parts) != 3 or not all(parts):
        # RFC 4475 §3.1.2.9/§3.1.2.10: exactly one SP between the elements
        raise SipParseError("bad-request-line", 400, first)
    method, uri, version = parts
    if not is_token(method):
        raise SipParseError("bad-method", 400, method)
    if version.upper() != "SIP/2.0":
        if version[:4].upper() == "SIP/":
            raise SipParseError("unsupported-version", 505, version)
        raise SipParseError("bad-request-line", 400, first)
    colon = uri.find(":")
    if colon <= 0 or uri[0] == "<" or "\t" in uri:
        raise SipParseError("bad-request-uri", 400, uri)
    request = Request.__new__(Request)
    request.method = method
    request.uri = uri
    request.version = version
    request.headers = headers
    request.body = body
    return request


def salvage_request(data: bytes) -> Request | None:
    """Best effort for a request that failed to parse: recover just enough
    (Via, From, To, Call-ID, CSeq) to answer it with an error status.

    Returns ``None`` when even that is impossible; the caller then drops
    the datagram.  Never raises.
    """
    try:
        end = data.find(b"\r\n\r\n")
        head = (data if end < 0 else data[:end])[:MAX_HEAD_SIZE].decode("utf-8", "replace")
        lines = _unfold(head.lstrip("\r\n")).split("\r\n")
        # the start line may be what failed: take any white space as SP
        first = lines[0].split()
        if len(first) < 3 or first[0][:4].upper() == "SIP/" or not is_token(first[0]):
            return None
        fields: list[tuple[str, str]] = []
        for line in lines[1 : MAX_HEADER_FIELDS + 1]:
            name, colon, value = line.partition(":")
            name = name.strip()
            if colon and name and is_token(name):
                key = header_key(name)
                if key in _MANDATORY:
                    fields.append((name, value.strip()))
        request = Request(first[0], first[1], fields)
        request.top_via  # noqa: B018
        for key in _MANDATORY[1:]:
            if key not in request.headers:
                return None
        return request
    except SipParseError:
        return None


#: a Content-Length field (long or compact name) and its value, including
#: continuation lines (RFC 3261 §7.3.1 allows folding anywhere LWS is)
_CONTENT_LENGTH = re.compile(
    rb"\r\n(?:content-length|l)[ \t]*:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", re.IGNORECASE
)


class StreamFramer:
    """Cut a TCP/TLS byte stream into whole messages by Content-Length
    (RFC 3261 §18.3: "the Content-Length header field MUST be used").

    :meth:`feed` returns the complete messages received so far as bytes, to
    be handed to :func:`parse_message` with ``stream=True``.  A stream that
    breaks the framing rules raises ``SipParseError``; the framer is then
    ``broken`` and the connection must be closed, since message boundaries
    are lost.  The buffer never holds more than one head limit plus one body
    limit.
    """

    __slots__ = ("_buf", "broken", "keepalives")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.broken = False
        #: CRLF keep-alives seen between messages (RFC 5626 §3.5.1)
        self.keepalives = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        if self.broken:
            raise SipParseError("stream-broken", None)
        buf = self._buf
        buf += data
        out: list[bytes] = []
        while buf:
            skip = 0
            while buf.startswith(b"\r\n", skip):
                skip += 2
            if skip:
                self.keepalives += 1
                del buf[:skip]
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD_SIZE:
                    self._fail()
                    raise SipParseError("head-too-large", 513, f">{MAX_HEAD_SIZE} bytes")
                break
            if end > MAX_HEAD_SIZE:
                self._fail()
                raise SipParseError("head-too-large", 513, f"{end} bytes")
            length = self._content_length(bytes(buf[:end]))
            total = end + 4 + length
            if len(buf) < total:
                break
            out.append(bytes(buf[:total]))
            del buf[:total]
        return out

    def _content_length(self, head: bytes) -> int:
        values = set()
        for m in _CONTENT_LENGTH.finditer(head):
            value = m.group(1).replace(b"\r\n", b" ").strip(b" \t")
            if not value.isdigit():  # bytes.isdigit() is ASCII-only
                self._fail()
                raise SipParseError("bad-content-length", 400, value[:20].decode("latin-1"))
            # "05" and "5" are one length; leading zeros are allowed
            values.add(value.lstrip(b"0") or b"0")
        if not values:
            self._fail()
            raise SipParseError("missing-content-length", 400)
        if len(values) > 1:
            self._fail()
            raise SipParseError("duplicate-content-length", 400)
        value = values.pop()
        # the length test comes first: int() refuses strings of 4300+ digits
        if len(value) > len(str(MAX_BODY_SIZE)) or int(value) > MAX_BODY_SIZE:
            self._fail()
            raise SipParseError("body-too-large", 413, f"{value[:20].decode()} bytes")
        return int(value)

    def _fail(self) -> None:
        self.broken = True
        self._buf.clear()
