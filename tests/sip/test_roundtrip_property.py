"""Serialising and parsing are inverses (RFC 3261 §7): for any message the
codec can build, parse_message(m.to_bytes()) == m; and for every message of
the RFC 4475 corpus the codec accepts, parse(serialise(parse(x))) is stable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pua.sip import Request, Response, parse_message
from tests.sip.test_torture import ACCEPTED, load

# ---------------------------------------------------------------- alphabets
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_TOKEN = _ALNUM + "-.!%*_+`'~"
_UNRESERVED = _ALNUM + "-_.!~*'()"

token = st.text(_TOKEN, min_size=1, max_size=12)
label = st.text(_ALNUM, min_size=1, max_size=8)
hostname = st.lists(label, min_size=1, max_size=3).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
host = st.one_of(hostname, ipv4, st.just("[2001:db8::1]"))
port = st.none() | st.integers(1, 65535)
user = st.text(_UNRESERVED + "&=+$,;?/", min_size=1, max_size=10)
uri_param = st.tuples(st.text(_UNRESERVED, min_size=1, max_size=6), st.none() | label)


@st.composite
def sip_uri(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["sip", "sips"]))
    userinfo = draw(st.none() | user)
    text = f"{scheme}:" + (f"{userinfo}@" if userinfo else "") + draw(host)
    number = draw(port)
    if number is not None:
        text += f":{number}"
    for name, value in draw(st.lists(uri_param, max_size=3)):
        text += f";{name}" if value is None else f";{name}={value}"
    return text


# field values: any text but CR/LF and with no white space at either end
# (the parser strips it, RFC 3261 §7.3.1)
_VALUE_CHARS = st.characters(
    blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\n"
) | st.sampled_from(" \t")
value = st.text(_VALUE_CHARS, max_size=30).map(lambda v: v.strip(" \t"))
reason = st.text(_VALUE_CHARS, max_size=30)


@st.composite
def name_addr(draw: st.DrawFn, tag: bool) -> str:
    display = draw(st.sampled_from(["", '"Alice Doe" ', "Bob ", '"a\\"b, c" ']))
    text = f"{display}<{draw(sip_uri())}>"
    if tag:
        text += f";tag={draw(token)}"
    return text


@st.composite
def mandatory_fields(draw: st.DrawFn, method: str) -> list[tuple[str, str]]:
    via_port = draw(port)
    sent_by = draw(host) + ("" if via_port is None else f":{via_port}")
    transport = draw(st.sampled_from(["UDP", "TCP", "TLS"]))
    return [
        ("Via", f"SIP/2.0/{transport} {sent_by};branch=z9hG4bK{draw(token)}"),
        (draw(st.sampled_from(["From", "f"])), draw(name_addr(tag=True))),
        (draw(st.sampled_from(["To", "t"])), draw(name_addr(tag=draw(st.booleans())))),
        (draw(st.sampled_from(["Call-ID", "i"])), draw(token) + "@" + draw(hostname)),
        ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
    ]


extension_field = st.tuples(token.map(lambda n: "X-" + n), value)


@st.composite
def fields(draw: st.DrawFn, method: str) -> list[tuple[str, str]]:
    out = draw(mandatory_fields(method))
    for field in draw(st.lists(extension_field, max_size=6)):
        out.insert(draw(st.integers(0, len(out))), field)
    return out


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(st.sampled_from(["SUBSCRIBE", "NOTIFY", "PUBLISH", "OPTIONS"]) | token)
    return Request(
        method,
        draw(sip_uri()),
        draw(fields(method)),
        draw(st.binary(max_size=64)),
    )


@st.composite
def responses(draw: st.DrawFn) -> Response:
    method = draw(st.sampled_from(["SUBSCRIBE", "NOTIFY", "PUBLISH"]) | token)
    return Response(
        draw(st.integers(100, 699)),
        draw(reason),
        draw(fields(method)),
        draw(st.binary(max_size=64)),
    )


# ------------------------------------------------------------- properties
@given(requests())
def test_request_survives_serialise_and_parse(message: Request) -> None:
    assert parse_message(message.to_bytes()) == message


@given(responses())
def test_response_survives_serialise_and_parse(message: Response) -> None:
    assert parse_message(message.to_bytes()) == message


@given(requests())
def test_request_survives_a_stream(message: Request) -> None:
    assert parse_message(message.to_bytes(), stream=True) == message


@given(st.one_of(requests(), responses()))
def test_generated_messages_validate(message: Request | Response) -> None:
    parse_message(message.to_bytes()).validate()


@pytest.mark.parametrize("name", ACCEPTED)
def test_corpus_message_is_stable_through_serialise_and_parse(name: str) -> None:
    first = parse_message(load(name))
    second = parse_message(first.to_bytes())
    assert second == first
    assert second.to_bytes() == first.to_bytes()
    second.validate()
