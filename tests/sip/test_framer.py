"""StreamFramer: cutting a TCP/TLS byte stream into messages by
Content-Length (RFC 3261 §18.3), with CRLF keep-alives (RFC 5626 §3.5.1)."""

from __future__ import annotations

import pytest

from pua.errors import SipParseError
from pua.sip import StreamFramer, parse_message
from pua.sip.limits import MAX_BODY_SIZE, MAX_HEAD_SIZE

BASE = (
    b"Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK74bf9\r\n"
    b"From: <sip:alice@example.com>;tag=9fxced76sl\r\n"
    b"To: <sip:bob@example.com>\r\n"
    b"Call-ID: 3848276298220188511@example.com\r\n"
)


def publish(seq: int = 1, body: bytes = b"<presence/>") -> bytes:
    return (
        b"PUBLISH sip:alice@example.com SIP/2.0\r\n"
        + BASE
        + f"CSeq: {seq} PUBLISH\r\n".encode()
        + b"Content-Type: application/pidf+xml\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def head_with(*fields: bytes) -> bytes:
    return b"PUBLISH sip:alice@example.com SIP/2.0\r\n" + BASE + b"".join(fields) + b"\r\n"


def failure(framer: StreamFramer, data: bytes) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        framer.feed(data)
    return info.value


# ------------------------------------------------------------------ framing
def test_whole_message_in_one_chunk() -> None:
    framer = StreamFramer()
    assert framer.feed(publish()) == [publish()]
    assert framer.buffered == 0


@pytest.mark.parametrize("cut", range(len(publish())))
def test_message_split_at_any_byte_is_framed_once(cut: int) -> None:
    data = publish()
    framer = StreamFramer()
    assert framer.feed(data[:cut]) + framer.feed(data[cut:]) == [data]


def test_message_fed_one_byte_at_a_time() -> None:
    data = publish()
    framer = StreamFramer()
    out = []
    for i in range(len(data)):
        out += framer.feed(data[i : i + 1])
    assert out == [data]


def test_several_messages_in_one_chunk() -> None:
    data = [publish(1), publish(2, b""), publish(3, b"x" * 100)]
    framer = StreamFramer()
    assert framer.feed(b"".join(data)) == data


def test_framed_messages_parse_as_stream_messages() -> None:
    framer = StreamFramer()
    (data,) = framer.feed(publish(7))
    assert parse_message(data, stream=True).cseq.seq == 7


def test_incomplete_body_waits_for_more() -> None:
    data = publish()
    framer = StreamFramer()
    assert framer.feed(data[:-1]) == []
    assert framer.buffered == len(data) - 1
    assert framer.feed(data[-1:]) == [data]


def test_body_holding_a_blank_line_is_not_cut() -> None:
    data = publish(body=b"a\r\n\r\nb")
    assert StreamFramer().feed(data) == [data]


def test_compact_content_length_frames() -> None:
    data = head_with(b"l: 3\r\n") + b"abc"
    assert StreamFramer().feed(data) == [data]


def test_content_length_name_is_case_insensitive_and_may_precede_the_colon() -> None:
    data = head_with(b"CONTENT-length \t: 3\r\n") + b"abc"
    assert StreamFramer().feed(data) == [data]


def test_folded_content_length_frames() -> None:
    # RFC 3261 §7.3.1: a value may continue on the next line
    data = head_with(b"Content-Length:\r\n 3\r\n") + b"abc"
    assert StreamFramer().feed(data) == [data]


def test_content_length_with_leading_zeros_frames() -> None:
    data = head_with(b"Content-Length: 003\r\n") + b"abc"
    assert StreamFramer().feed(data) == [data]


def test_same_content_length_twice_frames() -> None:
    # one length, written twice: framing is unambiguous (validate() still
    # refuses the duplicate field)
    data = head_with(b"Content-Length: 3\r\nl: 03\r\n") + b"abc"
    assert StreamFramer().feed(data) == [data]


# --------------------------------------------------------------- keep-alives
def test_crlf_keepalives_between_messages_are_skipped_and_counted() -> None:
    # RFC 5626 §3.5.1: CRLF "pong" and CRLFCRLF "ping"
    framer = StreamFramer()
    out = framer.feed(b"\r\n\r\n" + publish(1) + b"\r\n" + publish(2))
    assert out == [publish(1), publish(2)]
    assert framer.keepalives == 2


def test_keepalive_alone_yields_nothing() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n") == []
    assert framer.keepalives == 1
    assert framer.buffered == 0


def test_keepalive_split_across_chunks() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r") == []
    assert framer.feed(b"\n" + publish()) == [publish()]
    assert framer.keepalives == 1


# ------------------------------------------------------------------- errors
def test_missing_content_length_breaks_the_stream() -> None:
    # RFC 3261 §18.3: Content-Length MUST be used on streams
    framer = StreamFramer()
    error = failure(framer, head_with())
    assert (error.reason, error.status) == ("missing-content-length", 400)
    assert framer.broken


def test_conflicting_content_lengths_break_the_stream() -> None:
    # RFC 4475 §3.3.9: the framing is lost
    framer = StreamFramer()
    error = failure(framer, head_with(b"Content-Length: 3\r\nContent-Length: 4\r\n"))
    assert (error.reason, error.status) == ("duplicate-content-length", 400)


@pytest.mark.parametrize("value", [b"-3", b"3a", b"three", b"", b"3 3"])
def test_bad_content_length_breaks_the_stream(value: bytes) -> None:
    framer = StreamFramer()
    error = failure(framer, head_with(b"Content-Length: " + value + b"\r\n"))
    assert (error.reason, error.status) == ("bad-content-length", 400)


def test_content_length_over_the_body_limit_answers_413() -> None:
    framer = StreamFramer()
    error = failure(framer, head_with(f"Content-Length: {MAX_BODY_SIZE + 1}\r\n".encode()))
    assert (error.reason, error.status) == ("body-too-large", 413)


def test_content_length_of_thousands_of_digits_answers_413() -> None:
    framer = StreamFramer()
    error = failure(framer, head_with(b"Content-Length: " + b"9" * 5000 + b"\r\n"))
    assert (error.reason, error.status) == ("body-too-large", 413)


def test_head_that_never_ends_breaks_the_stream() -> None:
    framer = StreamFramer()
    assert framer.feed(head_with()[:-2]) == []
    error = failure(framer, b"X-Pad: " + b"a" * MAX_HEAD_SIZE)
    assert (error.reason, error.status) == ("head-too-large", 513)
    assert framer.buffered == 0


def test_head_that_ends_past_the_limit_breaks_the_stream() -> None:
    framer = StreamFramer()
    data = head_with(b"X-Pad: " + b"a" * MAX_HEAD_SIZE + b"\r\nContent-Length: 0\r\n")
    error = failure(framer, data)
    assert (error.reason, error.status) == ("head-too-large", 513)


def test_broken_stream_refuses_further_bytes() -> None:
    framer = StreamFramer()
    failure(framer, head_with())
    error = failure(framer, publish())
    assert (error.reason, error.status) == ("stream-broken", None)
    assert framer.buffered == 0
