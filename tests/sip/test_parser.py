"""parse_message and salvage_request: RFC 3261 §7 (message format), §18.3
(framing) and the limits of pua.sip.limits."""

from __future__ import annotations

import pytest

from pua.errors import SipParseError
from pua.sip import Request, Response, make_response, parse_message, salvage_request
from pua.sip.limits import MAX_FIELD_LENGTH, MAX_HEAD_SIZE, MAX_HEADER_FIELDS, MAX_MESSAGE_SIZE

REQUEST_LINE = "SUBSCRIBE sip:bob@example.com SIP/2.0"
STATUS_LINE = "SIP/2.0 200 OK"
BASE = (
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9",
    "From: <sip:alice@example.com>;tag=9fxced76sl",
    "To: <sip:bob@example.com>",
    "Call-ID: 3848276298220188511@example.com",
    "CSeq: 1 SUBSCRIBE",
)


def build(
    start: str = REQUEST_LINE,
    fields: tuple[str, ...] | list[str] = BASE,
    body: bytes = b"",
    *,
    length: bool = True,
) -> bytes:
    """A message as bytes; ``length`` adds a correct Content-Length."""
    lines = [start, *fields]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def error_of(data: bytes, *, stream: bool = False) -> SipParseError:
    with pytest.raises(SipParseError) as info:
        parse_message(data, stream=stream)
    return info.value


# ---------------------------------------------------------------- start line
def test_request_line_gives_method_uri_and_version() -> None:
    # RFC 3261 §7.1: Method SP Request-URI SP SIP-Version CRLF
    m = parse_message(build())
    assert isinstance(m, Request)
    assert (m.method, m.uri, m.version) == ("SUBSCRIBE", "sip:bob@example.com", "SIP/2.0")


def test_status_line_gives_code_and_reason() -> None:
    # RFC 3261 §7.2: SIP-Version SP Status-Code SP Reason-Phrase CRLF
    m = parse_message(build("SIP/2.0 489 Bad Event", [*BASE[:4], "CSeq: 1 SUBSCRIBE"]))
    assert isinstance(m, Response)
    assert (m.status, m.reason) == (489, "Bad Event")


def test_reason_phrase_may_hold_spaces() -> None:
    m = parse_message(build("SIP/2.0 480 Temporarily  Unavailable now"))
    assert isinstance(m, Response)
    assert m.reason == "Temporarily  Unavailable now"


def test_sip_version_is_case_insensitive() -> None:
    # RFC 3261 §7.1: "The SIP-Version string is case-insensitive"
    m = parse_message(build("SUBSCRIBE sip:bob@example.com sip/2.0"))
    assert isinstance(m, Request)
    assert m.version == "sip/2.0"


@pytest.mark.parametrize("code", ["099", "700", "20", "2000", "2OO", "-200"])
def test_status_code_must_be_three_digits_from_100_to_699(code: str) -> None:
    # RFC 3261 §7.2, §21
    error = error_of(build(f"SIP/2.0 {code} Odd"))
    assert (error.reason, error.status) == ("bad-status-code", None)


def test_status_line_without_code_is_rejected() -> None:
    error = error_of(build("SIP/2.0"))
    assert (error.reason, error.status) == ("bad-status-line", None)


def test_response_of_unknown_version_is_dropped() -> None:
    error = error_of(build("SIP/3.0 200 OK"))
    assert (error.reason, error.status) == ("unsupported-version", None)


def test_request_of_unknown_version_answers_505() -> None:
    # RFC 3261 §8.2.2 / RFC 4475 §3.1.2.16
    error = error_of(build("SUBSCRIBE sip:bob@example.com SIP/3.0"))
    assert (error.reason, error.status) == ("unsupported-version", 505)


def test_request_of_another_protocol_is_a_bad_request_line() -> None:
    error = error_of(build("GET sip:bob@example.com HTTP/1.1"))
    assert (error.reason, error.status) == ("bad-request-line", 400)


@pytest.mark.parametrize(
    "line",
    [
        "SUBSCRIBE  sip:bob@example.com SIP/2.0",  # RFC 4475 §3.1.2.9
        "SUBSCRIBE sip:bob@example.com SIP/2.0 ",  # RFC 4475 §3.1.2.10
        "SUBSCRIBE sip:bob@example.com",
        "SUBSCRIBE\tsip:bob@example.com\tSIP/2.0",
    ],
)
def test_request_line_elements_are_separated_by_exactly_one_sp(line: str) -> None:
    error = error_of(build(line))
    assert (error.reason, error.status) == ("bad-request-line", 400)


def test_method_must_be_a_token() -> None:
    # RFC 3261 §25.1: Method = ... / extension-method (token)
    error = error_of(build("SUB@SCRIBE sip:bob@example.com SIP/2.0", [*BASE[:4], "CSeq: 1 X"]))
    assert (error.reason, error.status) == ("bad-method", 400)


@pytest.mark.parametrize("uri", ["bob@example.com", "<sip:bob@example.com>", ":bob"])
def test_request_uri_must_be_an_absolute_uri(uri: str) -> None:
    # RFC 3261 §7.1, RFC 4475 §3.1.2.7
    error = error_of(build(f"SUBSCRIBE {uri} SIP/2.0"))
    assert (error.reason, error.status) == ("bad-request-uri", 400)


def test_cseq_method_must_match_the_request_method() -> None:
    # RFC 3261 §8.1.1.5, RFC 4475 §3.1.2.17
    error = error_of(build("NOTIFY sip:bob@example.com SIP/2.0"))
    assert (error.reason, error.status) == ("cseq-method-mismatch", 400)


def test_leading_crlfs_before_the_start_line_are_ignored() -> None:
    # RFC 3261 §7.5
    m = parse_message(b"\r\n\r\n\r\n" + build())
    assert isinstance(m, Request)
    assert m.method == "SUBSCRIBE"


def test_nothing_but_crlfs_is_empty() -> None:
    error = error_of(b"\r\n\r\n")
    assert (error.reason, error.status) == ("empty", None)


def test_head_without_blank_line_is_rejected() -> None:
    error = error_of(build()[:-4])
    assert (error.reason, error.status) == ("no-end-of-headers", 400)


# --------------------------------------------------------------- header names
@pytest.mark.parametrize(
    ("compact", "full", "value"),
    [
        ("i", "Call-ID", "3848276298220188511@example.com"),
        ("f", "From", "<sip:alice@example.com>;tag=9fxced76sl"),
        ("t", "To", "<sip:bob@example.com>"),
        ("v", "Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9"),
        ("m", "Contact", "<sip:alice@192.0.2.1>"),
        ("l", "Content-Length", "0"),
        ("c", "Content-Type", "application/pidf+xml"),
        ("k", "Supported", "eventlist"),
        ("o", "Event", "presence"),
        ("u", "Allow-Events", "presence"),
        ("e", "Content-Encoding", "gzip"),
        ("s", "Subject", "lunch"),
    ],
)
def test_compact_form_is_the_same_field(compact: str, full: str, value: str) -> None:
    # RFC 3261 §7.3.3 (i f t v m l c k e s), RFC 6665 §8.4 (o u)
    fields = [f for f in BASE if not f.lower().startswith(full.lower() + ":")]
    m = parse_message(build(fields=[*fields, f"{compact}: {value}"], length=compact != "l"))
    assert m.headers.get(full) == value
    assert m.headers.get(compact) == value


def test_header_names_are_case_insensitive() -> None:
    # RFC 3261 §7.3.1
    fields = ["vIA: SIP/2.0/UDP 192.0.2.1", "FROM: <sip:a@b>;tag=1", "tO: <sip:c@d>"]
    m = parse_message(build(fields=[*fields, "cAlL-iD: x", "cseq: 1 SUBSCRIBE"]))
    assert m.call_id == "x"
    assert m.headers.get("CALL-ID") == "x"


def test_white_space_before_the_colon_is_allowed() -> None:
    # RFC 3261 §7.3.1: field-name HCOLON, HCOLON = *( SP / HTAB ) ":" SWS
    m = parse_message(build(fields=[*BASE, "Subject \t: lunch"]))
    assert m.headers.get("subject") == "lunch"


def test_header_name_must_be_a_token() -> None:
    error = error_of(build(fields=[*BASE, "Sub ject: lunch"]))
    assert (error.reason, error.status) == ("bad-header-name", 400)


def test_bad_header_name_in_a_response_has_no_status() -> None:
    error = error_of(build(STATUS_LINE, [*BASE, "Sub ject: lunch"]))
    assert (error.reason, error.status) == ("bad-header-name", None)


def test_header_line_without_colon_is_rejected() -> None:
    error = error_of(build(fields=[*BASE, "Subject lunch"]))
    assert (error.reason, error.status) == ("bad-header-line", 400)


# ------------------------------------------------------------ header values
def test_folded_value_is_unfolded_into_one_space() -> None:
    # RFC 3261 §7.3.1: a continuation line's CRLF and leading LWS become SP
    m = parse_message(build(fields=[*BASE, "Subject: lunch\r\n   at\r\n\tnoon"]))
    assert m.headers.get("subject") == "lunch at noon"


def test_folding_inside_a_via() -> None:
    m = parse_message(build(fields=["Via: SIP/2.0/UDP\r\n 192.0.2.1;branch=z9hG4bKx", *BASE[1:]]))
    assert m.top_via.host == "192.0.2.1"
    assert m.top_via.branch == "z9hG4bKx"


def test_white_space_around_values_is_stripped() -> None:
    m = parse_message(build(fields=[*BASE, "Subject: \t lunch \t"]))
    assert m.headers.get("subject") == "lunch"


def test_empty_value_is_allowed() -> None:
    # RFC 4475 §3.1.1.1: "s :" is an empty Subject
    m = parse_message(build(fields=[*BASE, "s :"]))
    assert m.headers.get("subject") == ""


def test_comma_separated_vias_are_separate_values() -> None:
    # RFC 3261 §7.3.1: a list field may be split across values and fields
    fields = [
        "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com",
        "v: SIP/2.0/TLS c.example.com:5061",
        *BASE[1:],
    ]
    m = parse_message(build(fields=fields))
    assert [v.host for v in m.vias] == ["a.example.com", "b.example.com", "c.example.com"]
    assert m.headers.get_list("via") == [
        "SIP/2.0/UDP a.example.com;branch=z9hG4bK1",
        "SIP/2.0/TCP b.example.com",
        "SIP/2.0/TLS c.example.com:5061",
    ]


def test_commas_in_quotes_and_angle_brackets_do_not_split() -> None:
    contact = '"Doe, John" <sip:j@example.com;x=a,b>, <sip:k@example.com>'
    m = parse_message(build(fields=[*BASE, f"Contact: {contact}"]))
    assert [c.uri for c in m.contacts] == ["sip:j@example.com;x=a,b", "sip:k@example.com"]


def test_bare_lf_is_rejected() -> None:
    # RFC 3261 §7: lines end in CRLF
    data = build(fields=[*BASE, "Subject: a\nb"])
    error = error_of(data)
    assert (error.reason, error.status) == ("bare-line-break", 400)


def test_bare_cr_is_rejected() -> None:
    error = error_of(build(fields=[*BASE, "Subject: a\rb"]))
    assert (error.reason, error.status) == ("bare-line-break", 400)


def test_bare_line_break_in_a_response_has_no_status() -> None:
    error = error_of(build(STATUS_LINE, [*BASE, "Subject: a\rb"]))
    assert (error.reason, error.status) == ("bare-line-break", None)


def test_non_utf8_octets_survive_a_round_trip() -> None:
    data = build(fields=[*BASE, "Subject: caf\xe9"]).replace(b"caf\xc3\xa9", b"caf\xe9")
    m = parse_message(data)
    assert m.to_bytes() == data


# ----------------------------------------------------------- mandatory fields
@pytest.mark.parametrize(
    ("dropped", "reason"),
    [
        ("Via", "missing-via"),
        ("Call-ID", "missing-call-id"),
        ("CSeq", "missing-cseq"),
        ("From", "missing-from"),
        ("To", "missing-to"),
    ],
)
def test_mandatory_field_is_required(dropped: str, reason: str) -> None:
    # RFC 3261 §8.1.1: To, From, CSeq, Call-ID and Via
    fields = [f for f in BASE if not f.startswith(dropped + ":")]
    error = error_of(build(fields=fields))
    assert (error.reason, error.status) == (reason, 400)


def test_missing_field_in_a_response_has_no_status() -> None:
    error = error_of(build(STATUS_LINE, BASE[1:]))
    assert (error.reason, error.status) == ("missing-via", None)


def test_max_forwards_is_not_required() -> None:
    # RFC 3261 §8.1.1 requires it, but UAs omit it and only proxies need it
    parse_message(build()).validate()


@pytest.mark.parametrize("call_id", ["a b", "a\tb"])
def test_call_id_holds_no_white_space(call_id: str) -> None:
    # RFC 3261 §25.1: callid = word [ "@" word ]
    fields = [*BASE[:3], f"Call-ID: {call_id}", BASE[4]]
    error = error_of(build(fields=fields))
    assert (error.reason, error.status) == ("bad-call-id", 400)


def test_bad_cseq_is_rejected_at_parse_time() -> None:
    error = error_of(build(fields=[*BASE[:4], "CSeq: one SUBSCRIBE"]))
    assert (error.reason, error.status) == ("bad-cseq", 400)


def test_bad_top_via_is_rejected_at_parse_time() -> None:
    error = error_of(build(fields=["Via: SIP/2.0/UDP", *BASE[1:]]))
    assert (error.reason, error.status) == ("bad-via", 400)


# ------------------------------------------------------------ Content-Length
def test_body_is_content_length_octets() -> None:
    m = parse_message(build(body=b"hello"))
    assert m.body == b"hello"


def test_shorter_content_length_truncates_a_datagram_body() -> None:
    # RFC 3261 §18.3: octets past Content-Length are discarded
    data = build(fields=[*BASE, "Content-Length: 3"], body=b"hello", length=False)
    assert parse_message(data).body == b"hel"


def test_larger_content_length_than_the_datagram_is_rejected() -> None:
    # RFC 3261 §18.3, RFC 4475 §3.1.2.2
    data = build(fields=[*BASE, "Content-Length: 6"], body=b"hello", length=False)
    error = error_of(data)
    assert (error.reason, error.status) == ("content-length-too-large", 400)


def test_larger_content_length_in_a_response_has_no_status() -> None:
    data = build(STATUS_LINE, [*BASE, "Content-Length: 6"], b"hello", length=False)
    error = error_of(data)
    assert (error.reason, error.status) == ("content-length-too-large", None)


@pytest.mark.parametrize("value", ["-5", "+5", "5 5", "five", "0x5", "\u0665"])
def test_content_length_must_be_digits(value: str) -> None:
    # RFC 3261 §20.14: Content-Length = 1*DIGIT; RFC 4475 §3.1.2.3
    data = build(fields=[*BASE, f"Content-Length: {value}"], body=b"hello", length=False)
    error = error_of(data)
    assert (error.reason, error.status) == ("bad-content-length", 400)


def test_content_length_may_have_leading_zeros() -> None:
    data = build(fields=[*BASE, "Content-Length: 0005"], body=b"hello", length=False)
    assert parse_message(data).body == b"hello"


def test_content_length_of_thousands_of_digits_is_too_large() -> None:
    data = build(fields=[*BASE, "Content-Length: " + "9" * 5000], body=b"x", length=False)
    error = error_of(data)
    assert (error.reason, error.status) == ("content-length-too-large", 400)


def test_missing_content_length_over_a_datagram_takes_the_rest() -> None:
    # RFC 3261 §18.3 / RFC 4475 §3.4.1: the body is the rest of the datagram
    m = parse_message(build(body=b"hello", length=False))
    assert m.body == b"hello"
    assert m.content_length is None


def test_missing_content_length_over_a_stream_is_rejected() -> None:
    # RFC 3261 §18.3: "MUST be used with stream oriented transports"
    error = error_of(build(body=b"hello", length=False), stream=True)
    assert (error.reason, error.status) == ("missing-content-length", 400)


def test_stream_message_keeps_its_content_length() -> None:
    m = parse_message(build(body=b"hello"), stream=True)
    assert m.body == b"hello"


# --------------------------------------------------------------------- limits
def test_message_over_the_size_limit_answers_513() -> None:
    data = build(body=b"x" * (MAX_MESSAGE_SIZE - len(build()) + 2))
    assert len(data) > MAX_MESSAGE_SIZE
    error = error_of(data)
    assert (error.reason, error.status) == ("message-too-large", 513)


def test_head_over_the_size_limit_answers_513() -> None:
    pad = [f"X-Pad-{i}: " + "a" * 6000 for i in range(MAX_HEAD_SIZE // 6000 + 1)]
    error = error_of(build(fields=[*BASE, *pad]))
    assert (error.reason, error.status) == ("head-too-large", 513)


def test_too_many_header_fields_answer_513() -> None:
    pad = [f"X-{i}: {i}" for i in range(MAX_HEADER_FIELDS)]
    error = error_of(build(fields=[*BASE, *pad]))
    assert (error.reason, error.status) == ("too-many-headers", 513)


def test_header_field_over_the_length_limit_answers_513() -> None:
    error = error_of(build(fields=[*BASE, "Subject: " + "a" * MAX_FIELD_LENGTH]))
    assert (error.reason, error.status) == ("header-too-long", 513)


def test_limits_on_a_response_have_no_status() -> None:
    error = error_of(build(STATUS_LINE, [*BASE, "Subject: " + "a" * MAX_FIELD_LENGTH]))
    assert (error.reason, error.status) == ("header-too-long", None)


def test_long_start_line_without_fields_is_not_a_crash() -> None:
    # a start line longer than the field limit, and no header field at all
    error = error_of(b"SUBSCRIBE sip:" + b"a" * MAX_FIELD_LENGTH + b" SIP/2.0\r\n\r\n")
    assert error.reason == "missing-via"


def test_fields_at_the_limits_are_accepted() -> None:
    pad = [f"X-{i}: {i}" for i in range(MAX_HEADER_FIELDS - len(BASE) - 2)]
    subject = "Subject: " + "a" * (MAX_FIELD_LENGTH - len("Subject: "))
    m = parse_message(build(fields=[*BASE, *pad, subject]))
    assert len(m.headers) == MAX_HEADER_FIELDS


# ------------------------------------------------------------- salvage_request
def test_salvage_recovers_the_fields_a_response_needs() -> None:
    # RFC 3261 §8.2.6.2: a response copies Via, From, To, Call-ID and CSeq
    data = build(fields=[*BASE, "Content-Length: -1"], length=False)
    error_of(data)
    request = salvage_request(data)
    assert request is not None
    assert request.method == "SUBSCRIBE"
    assert request.call_id == "3848276298220188511@example.com"
    assert request.top_via.branch == "z9hG4bK74bf9"
    assert request.headers.keys() == ["via", "from", "to", "call-id", "cseq"]


def test_salvaged_request_can_be_answered() -> None:
    # RFC 4475 §3.1.2.9: extra SP in the request line, answered with 400
    request = salvage_request(build("SUBSCRIBE  sip:bob@example.com  SIP/2.0"))
    assert request is not None
    assert request.uri == "sip:bob@example.com"
    response = make_response(request, 400, to_tag="x1")
    assert parse_message(response.to_bytes()).to.tag == "x1"


def test_salvage_unfolds_fields() -> None:
    fields = ["Via: SIP/2.0/UDP\r\n 192.0.2.1;branch=z9hG4bKf", *BASE[1:]]
    request = salvage_request(build("SUBSCRIBE sip:bob SIP/9.9", fields))
    assert request is not None
    assert request.top_via.branch == "z9hG4bKf"


def test_salvage_gives_up_on_a_response() -> None:
    assert salvage_request(build(STATUS_LINE)) is None


def test_salvage_gives_up_without_a_call_id() -> None:
    assert salvage_request(build(fields=[f for f in BASE if "Call-ID" not in f])) is None


def test_salvage_gives_up_on_a_bad_via() -> None:
    assert salvage_request(build(fields=["Via: nonsense", *BASE[1:]])) is None


@pytest.mark.parametrize("data", [b"", b"\r\n", b"\xff\xfe", b"INVITE", b"A B C\r\n\r\n"])
def test_salvage_never_raises(data: bytes) -> None:
    assert salvage_request(data) is None
