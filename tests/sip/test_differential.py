"""Differential tests against an independent parser: the ``sipmessage``
package (test-only oracle) must read the same transaction-identifying facts
from the same bytes: method or status, Call-ID, CSeq, From and To tags and
the top Via branch (RFC 3261 §17.1.3, §17.2.3, §12.1)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
import sipmessage
from hypothesis import given
from hypothesis import strategies as st

from pua.sip import Request, Response, parse_message
from tests.sip.test_torture import ACCEPTED, load

#: Corpus messages sipmessage cannot read, and why: it does not unfold
#: continuation lines (RFC 3261 §7.3.1) and accepts only sip, sips and tel
#: URIs without URI headers.  For these the test asserts that the oracle
#: indeed fails (so the list stays true) and that pua reads them.
ORACLE_CANNOT_PARSE = {
    "wsinv": "folded header lines",
    "semiuri": "folded header lines",
    "escruri": "headers in the Request-URI",
    "unkscm": "unknown Request-URI scheme",
    "novelsc": "unknown Request-URI scheme",
    "unksm2": "unknown URI schemes in To and From",
}

Facts = tuple[Any, ...]


def _as_oracle_reads(param: str | None) -> str | None:
    # sipmessage percent-decodes every parameter value; RFC 3261 never does
    # for tokens (RFC 4475 §3.1.1.2: in "z9hG4bK-.!%66*_+`'~" % is not an
    # escape).  Decoding ours the same way compares the rest of the reading.
    return None if param is None else unquote(param)


def ours(data: bytes) -> Facts:
    m = parse_message(data)
    start: str | int = m.method if isinstance(m, Request) else m.status
    return (
        start,
        m.call_id,
        (m.cseq.seq, m.cseq.method),
        _as_oracle_reads(m.from_.tag),
        _as_oracle_reads(m.to.tag),
        _as_oracle_reads(m.top_via.branch),
    )


def oracle(data: bytes) -> Facts | None:
    """The same facts read by sipmessage, or None where it cannot read them."""
    try:
        m = sipmessage.Message.parse(data)
        start: str | int = m.method if isinstance(m, sipmessage.Request) else m.code
        return (
            start,
            m.call_id,
            (m.cseq.sequence, m.cseq.method),
            m.from_address.parameters.get("tag"),
            m.to_address.parameters.get("tag"),
            m.via[0].parameters.get("branch"),
        )
    except (ValueError, KeyError):
        return None


# ------------------------------------------------------------------ corpus
@pytest.mark.parametrize("name", [n for n in ACCEPTED if n not in ORACLE_CANNOT_PARSE])
def test_corpus_message_reads_as_the_oracle_reads_it(name: str) -> None:
    data = load(name)
    assert ours(data) == oracle(data)


@pytest.mark.parametrize("name", sorted(ORACLE_CANNOT_PARSE))
def test_corpus_message_beyond_the_oracle_is_read_by_pua(name: str) -> None:
    data = load(name)
    assert oracle(data) is None
    parse_message(data).validate()


def test_most_of_the_corpus_is_compared() -> None:
    compared = [name for name in ACCEPTED if oracle(load(name)) is not None]
    skipped = sorted(set(ACCEPTED) - set(compared))
    assert set(skipped) <= set(ORACLE_CANNOT_PARSE)
    assert len(compared) >= 0.75 * len(ACCEPTED)


# --------------------------------------------------------------- generated
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_TOKEN = _ALNUM + "-.!%*_+`'~"
token = st.text(_TOKEN, min_size=1, max_size=16)
label = st.text(_ALNUM, min_size=1, max_size=8)
# RFC 3261 §25.1: toplabel = ALPHA / ALPHA *( alphanum / "-" ) alphanum;
# sipmessage reads only letters there ("a0" fails), so letters it is
toplabel = st.text(_ALNUM[:52], min_size=1, max_size=6)
host = st.one_of(
    st.tuples(st.lists(label, max_size=2), toplabel).map(lambda t: ".".join([*t[0], t[1]])),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
)
lws = st.sampled_from(["", " ", "  "])


@st.composite
def name_addr(draw: st.DrawFn, tag: str | None) -> str:
    display = draw(st.sampled_from(["", '"Alice" ', "Bob ", '"a, b" ']))
    if draw(st.booleans()) or display:
        text = f"{display}<sip:{draw(label)}@{draw(host)}>"
    else:
        text = f"sip:{draw(label)}@{draw(host)}"
    if tag is not None:
        text += f"{draw(lws)};{draw(lws)}tag={tag}"
    return text


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(["SUBSCRIBE", "NOTIFY", "PUBLISH"]) | token)
    if draw(st.booleans()):
        start = f"{method} sip:{draw(label)}@{draw(host)} SIP/2.0"
    else:
        start = f"SIP/2.0 {draw(st.integers(100, 699))} {draw(st.sampled_from(['OK', 'x y']))}"
    branch = "z9hG4bK" + draw(token)
    port = draw(st.sampled_from(["", ":5060", ":65535"]))
    via = f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP']))} {draw(host)}{port};branch={branch}"
    fields = [
        (draw(st.sampled_from(["Via", "v"])), via),
        (draw(st.sampled_from(["From", "f"])), draw(name_addr(draw(token)))),
        (draw(st.sampled_from(["To", "t"])), draw(name_addr(draw(st.none() | token)))),
        (draw(st.sampled_from(["Call-ID", "i"])), draw(token) + "@" + draw(host)),
        ("CSeq", f"{draw(st.integers(0, 2**31 - 1))}{draw(lws)} {method}"),
    ]
    fields = draw(st.permutations(fields))
    head = start + "".join(f"\r\n{name}:{draw(lws)}{value}" for name, value in fields)
    return head.encode() + b"\r\nContent-Length: 0\r\n\r\n"


@given(messages())
def test_generated_message_reads_as_the_oracle_reads_it(data: bytes) -> None:
    expected = oracle(data)
    assert expected is not None, "the generator stays inside what sipmessage reads"
    assert ours(data) == expected


def test_response_facts_include_the_status() -> None:
    data = load("noreason")
    m = parse_message(data)
    assert isinstance(m, Response)
    expected = oracle(data)
    assert expected is not None
    assert ours(data)[0] == expected[0] == 100
