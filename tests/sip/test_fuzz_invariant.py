"""The codec's one promise about hostile input (RFC 3261 §18.3, and the
parser module's contract): whatever bytes arrive, parsing, validating and
reading any typed field either works or raises ``SipParseError``.  Nothing
else may escape, so that a transport can answer 400 or drop the datagram
without a catch-all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from pua.errors import SipParseError
from pua.sip import Request, StreamFramer, parse_message, salvage_request
from pua.sip.message import Message, allow_list
from pua.sip.uri import SipUri, parse_uri
from tests.sip.test_torture import ACCEPTED, load

CORPUS = [load(name) for name in ACCEPTED]


def _attempt(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``; a ``SipParseError`` is an acceptable outcome."""
    try:
        return fn(*args, **kwargs)
    except SipParseError:
        return None


def _read(obj: object, *names: str) -> list[Any]:
    """Read each attribute of ``obj``; ``None`` for those that fail to parse."""
    return [_attempt(getattr, obj, name) for name in names]


def _exercise_uri(text: str) -> None:
    uri = _attempt(parse_uri, text)
    if uri is None:
        return
    str(uri)
    if isinstance(uri, SipUri):
        assert uri.equivalent(uri)
        _read(uri, "transport", "lr", "maddr", "secure", "host_is_ip", "bare_host")
        str(uri.with_params(lr=None))
        str(uri.without_params("lr").without_headers())


def _exercise(message: Message) -> None:
    """Every accessor, every derived view: only SipParseError may leave."""
    _attempt(message.validate)
    (via,) = _read(message, "top_via")
    if via is not None:
        _read(via, "branch", "received", "maddr", "rport", "params", "sent_by")
        str(via)
    for via in _attempt(getattr, message, "vias") or []:
        _attempt(via.with_params, received="192.0.2.1")
    _read(message, "call_id", "cseq")
    name_addrs = [value for value in _read(message, "from_", "to") if value is not None]
    for many in _read(message, "contacts", "record_route", "route"):
        name_addrs.extend(many or [])
    for name_addr in name_addrs:
        _read(name_addr, "tag", "params", "expires", "sip_uri")
        str(name_addr)
        _exercise_uri(name_addr.uri)
    _read(
        message,
        "expires",
        "min_expires",
        "max_forwards",
        "sip_etag",
        "sip_if_match",
        "content_length",
    )
    event, state, content_type, retry = _read(
        message, "event", "subscription_state", "content_type", "retry_after"
    )
    for value in (event, *(_attempt(getattr, message, "allow_events") or [])):
        if value is not None:
            _read(value, "id")
            str(value)
    if state is not None:
        _read(state, "expires", "retry_after", "reason")
        str(state)
    if content_type is not None:
        str(content_type)
    if retry is not None:
        _read(retry, "duration")
    for challenges in _read(message, "www_authenticate", "proxy_authenticate"):
        for challenge in challenges or []:
            _read(challenge, "realm", "nonce")
    for name in ("via", "contact", "route", "allow", "supported", "accept"):
        _attempt(message.headers.get_list, name)
    _attempt(allow_list, message)
    if isinstance(message, Request):
        _exercise_uri(message.uri)
    # serialising never fails for a parsed message, and reads back
    _attempt(parse_message, message.to_bytes())


def _parse_and_exercise(data: bytes, *, stream: bool = False) -> None:
    message = _attempt(parse_message, data, stream=stream)
    if message is not None:
        _exercise(message)
    salvaged = salvage_request(data)
    if salvaged is not None:
        _exercise(salvaged)


# --------------------------------------------------------------- raw bytes
@given(st.binary(max_size=2048))
@example(b"INVITE sip:" + b"a" * 9000 + b" SIP/2.0\r\n\r\n")
@example(b"SIP/2.0 200 OK\r\nContent-Length: " + b"1" * 5000 + b"\r\n\r\n")
def test_arbitrary_bytes_raise_only_sip_parse_error(data: bytes) -> None:
    _parse_and_exercise(data)


# ------------------------------------------------ SIP-shaped random messages
_TRICKY = st.sampled_from(
    [
        "<",
        ">",
        '"',
        "\\",
        ";",
        ",",
        "=",
        ":",
        "@",
        "?",
        "&",
        "%",
        "%4",
        "%41",
        "[",
        "]",
        " ",
        "\t",
        "\r\n ",
        "(",
        ")",
        "*",
        "sip:",
        "sips:",
        "tel:",
        "SIP/2.0/UDP ",
        "tag=",
        "branch=z9hG4bK",
        "rport",
        "expires=",
        "received=",
        "[::1]",
        "192.0.2.1",
        "example.com",
        "5060",
        "99999",
        "0" * 12,
        "9" * 12,
        "1" * 4400,
        "\u00b2",
        "\u0661",
        "\u00e9",
        "\x00",
        "\x7f",
        "INVITE",
        "a",
        "Z",
        "-",
        ".",
    ]
)
_PIECES = st.one_of(_TRICKY, st.lists(_TRICKY, max_size=12).map("".join))
_NAME_ADDR = (
    "<sip:{}@example.com>;tag={}",
    "<sip:a@{}>",
    "<sip:a@b:{}>",
    "<sip:a@b;{}>",
    "<sip:a@b?{}>",
    "<sips:{}:{}@[{}]>",
    "sip:a@b;{}",
    '"{}" <sip:a@b>;{}',
    "{} <sip:a@b>",
    "<sip:a@b>;expires={}",
    "<{}>",
    "{}",
)
_VIA = (
    "SIP/2.0/UDP {}",
    "SIP/2.0/UDP host:{}",
    "SIP/2.0/UDP [{}]:5060",
    "SIP/2.0/TCP host;rport={};branch=z9hG4bK{}",
    "SIP/2.0/UDP host;received={}",
    "SIP / 2.0 / UDP host ; branch = {}, SIP/2.0/TCP {}",
    "{}",
)
#: (field name, value template): values in the grammars the codec parses,
#: with holes ("{}") filled with tricky text, so that every sub-parser meets
#: hostile input
_FIELDS = st.sampled_from(
    [
        *[(name, template) for name in ("Via", "v") for template in _VIA],
        *[
            (name, template)
            for name in ("From", "To", "Contact", "Route", "Record-Route", "m")
            for template in _NAME_ADDR
        ],
        ("Contact", "*"),
        ("CSeq", "{} SUBSCRIBE"),
        ("CSeq", "1 {}"),
        ("CSeq", "{}\t{}"),
        ("Call-ID", "{}"),
        ("Expires", "{}"),
        ("Min-Expires", "{}"),
        ("Max-Forwards", "{}"),
        ("Content-Length", "{}"),
        ("l", "{}"),
        ("Event", "presence;id={}"),
        ("o", "{};{}={}"),
        ("Allow-Events", "{}, {}"),
        ("SIP-ETag", "{}"),
        ("SIP-If-Match", "{}"),
        ("Subscription-State", "active;expires={}"),
        ("Subscription-State", "terminated;reason={};retry-after={}"),
        ("Subscription-State", "{}"),
        ("Content-Type", "application/{};charset={}"),
        ("c", "{}"),
        ("Retry-After", "{} ({});duration={}"),
        ("Retry-After", "120 ({});duration={}"),
        ("WWW-Authenticate", 'Digest realm="{}", nonce={}'),
        ("Proxy-Authenticate", "Digest {}={}, {}"),
        ("Allow", "{}"),
        ("X-Other", "{}"),
    ]
)


@st.composite
def _field(draw: st.DrawFn) -> tuple[str, str]:
    name, template = draw(_FIELDS)
    while "{}" in template:
        template = template.replace("{}", draw(_PIECES), 1)
    return name, template


_START = st.sampled_from(
    [
        "SUBSCRIBE sip:bob@example.com SIP/2.0",
        "PUBLISH sips:[2001:db8::1]:5061;transport=tls SIP/2.0",
        "NOTIFY tel:+1555 SIP/2.0",
        "SIP/2.0 200 OK",
        "SIP/2.0 489 Bad Event",
    ]
)
_BASE = [
    ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"),
    ("From", "<sip:a@example.com>;tag=1"),
    ("To", "<sip:b@example.com>"),
    ("Call-ID", "c1"),
    ("CSeq", "1 SUBSCRIBE"),
]


@st.composite
def _sip_shaped(draw: st.DrawFn) -> bytes:
    start = draw(_START)
    fields = list(_BASE)
    for _ in range(draw(st.integers(1, 6))):
        name, value = draw(_field())
        if draw(st.booleans()):
            # replace the fields of that name, so that this one is read
            fields = [f for f in fields if f[0].lower() != name.lower()]
        fields.insert(draw(st.integers(0, len(fields))), (name, value))
    head = start + "".join(f"\r\n{name}: {value}" for name, value in fields)
    body = draw(st.binary(max_size=16))
    return head.encode("utf-8", "surrogatepass") + b"\r\n\r\n" + body


@given(_sip_shaped())
def test_sip_shaped_messages_raise_only_sip_parse_error(data: bytes) -> None:
    _parse_and_exercise(data)


# --------------------------------------------- mutations of the valid corpus
def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = draw(st.sampled_from(CORPUS))
    lines = _lines(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["drop", "duplicate", "garble", "fold", "truncate"]))
        index = draw(st.integers(0, len(lines) - 1))
        line = lines[index]
        if kind == "drop":
            del lines[index]
        elif kind == "duplicate":
            lines.insert(index, line)
        elif kind == "garble":
            position = draw(st.integers(0, len(line)))
            garbage = draw(st.binary(min_size=1, max_size=4))
            lines[index] = line[:position] + garbage + line[position + 1 :]
        elif kind == "fold":
            position = draw(st.integers(0, len(line)))
            fold = draw(st.sampled_from([b"\r\n ", b"\r\n\t", b"\r\n   "]))
            lines[index] = line[:position] + fold + line[position:]
        else:
            lines[index] = line[: draw(st.integers(0, len(line)))]
        if not lines:
            lines = [b""]
    return b"\r\n".join(lines)


@given(_mutated())
def test_mutated_corpus_messages_raise_only_sip_parse_error(data: bytes) -> None:
    _parse_and_exercise(data)


# ------------------------------------------------------------------ streams
def _feed_all(chunks: list[bytes]) -> None:
    framer = StreamFramer()
    for chunk in chunks:
        try:
            messages = framer.feed(chunk)
        except SipParseError:
            assert framer.broken
            return
        for data in messages:
            message = _attempt(parse_message, data, stream=True)
            if message is not None:
                _exercise(message)


@given(st.lists(st.binary(max_size=512), max_size=8))
def test_stream_of_arbitrary_bytes_raises_only_sip_parse_error(chunks: list[bytes]) -> None:
    _feed_all(chunks)


@given(st.lists(_mutated(), min_size=1, max_size=3), st.integers(1, 64))
def test_stream_of_mutated_messages_raises_only_sip_parse_error(
    messages: list[bytes], chunk_size: int
) -> None:
    stream = b"".join(messages)
    _feed_all([stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size)])


@given(st.lists(_sip_shaped(), min_size=1, max_size=3))
def test_stream_of_sip_shaped_messages_raises_only_sip_parse_error(
    messages: list[bytes],
) -> None:
    _feed_all(messages)
