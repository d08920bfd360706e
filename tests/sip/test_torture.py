"""RFC 4475 torture test messages against the codec.

The corpus in ``tests/data/sip/rfc4475`` holds each message of RFC 4475 §3
as exact bytes, named as in the RFC's archive: CRLF line ends, <hex/> runs
as the octets they stand for, <allOneLine/> and <repeat/> expanded as §2.1
and §2.3 say.  §3.1.1 messages must parse and validate; §3.1.2 ones must be
refused with a stable reason; §3.2-§3.4 are about what an application does
with well-formed messages, so the codec accepts the ones that are well
formed and refuses the rest.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pua.errors import SipParseError
from pua.sip import Request, Response, SipUri, StreamFramer, parse_message, parse_sip_uri
from pua.sip.uri import AbsoluteUri

DATA = Path(__file__).resolve().parent.parent / "data" / "sip" / "rfc4475"

#: §3.1.1: valid messages
VALID = (
    "wsinv",
    "intmeth",
    "esc01",
    "escnull",
    "esc02",
    "lwsdisp",
    "longreq",
    "dblreq",
    "semiuri",
    "transports",
    "mpart01",
    "unreason",
    "noreason",
)

#: Messages of §3.1.2-§3.4 that are well formed as far as the codec reads
#: them (their problems are for the transaction layer or the application).
ACCEPTED_ELSEWHERE = (
    "escruri",  # §3.1.2.11: may be accepted, ignoring the escaped headers
    "baddate",  # §3.1.2.12: a bad Date a UA never reads
    "badbranch",  # §3.2.1
    "unkscm",  # §3.3.2
    "novelsc",  # §3.3.3
    "unksm2",  # §3.3.4
    "bext01",  # §3.3.5
    "invut",  # §3.3.6
    "regaut01",  # §3.3.7
    "bcast",  # §3.3.10
    "zeromf",  # §3.3.11
    "cparam01",  # §3.3.12
    "cparam02",  # §3.3.13
    "regescrt",  # §3.3.14
    "sdp01",  # §3.3.15
    "inv2543",  # §3.4.1
)

#: Every corpus message the codec accepts (parse_message + validate()).
ACCEPTED = VALID + ACCEPTED_ELSEWHERE


def load(name: str) -> bytes:
    return (DATA / f"{name}.dat").read_bytes()


def parse(name: str) -> Request | Response:
    return parse_message(load(name))


def refusal(name: str) -> SipParseError:
    """The error parse_message() or validate() raises for a corpus message."""
    with pytest.raises(SipParseError) as info:
        parse(name).validate()
    return info.value


# ------------------------------------------------------- the corpus itself
def test_corpus_holds_every_message_of_the_rfc() -> None:
    # RFC 4475 §3: 13 valid, 19 invalid, 1 transaction-layer,
    # 15 application-layer and 1 backward-compatibility message
    assert len(list(DATA.glob("*.dat"))) == 49


@pytest.mark.parametrize("path", sorted(DATA.glob("*.dat")), ids=lambda p: p.stem)
def test_corpus_lines_end_in_crlf(path: Path) -> None:
    # RFC 4475 §2: the archive's messages use CRLF; a bare LF in the head
    # would be a transcription error, not a test
    head = path.read_bytes().partition(b"\r\n\r\n")[0]
    assert b"\n" not in head.replace(b"\r\n", b"")


@pytest.mark.parametrize("name", [n for n in VALID if n not in ("dblreq",)])
def test_valid_corpus_bodies_match_their_content_length(name: str) -> None:
    # §3.1.1 messages are framed correctly (dblreq has trailing octets)
    message = parse(name)
    assert message.content_length == len(message.body)
    assert load(name).endswith(message.body)


# ------------------------------------------------------ §3.1.1 valid messages
@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted_message_parses_and_validates(name: str) -> None:
    parse(name).validate()


#: datagram-only messages: dblreq's trailing octets are UDP noise
#: (§3.1.1.8) and inv2543 has no Content-Length (§3.4.1)
DATAGRAM_ONLY = ("dblreq", "inv2543")


@pytest.mark.parametrize("name", [n for n in ACCEPTED if n not in DATAGRAM_ONLY])
def test_accepted_message_frames_on_a_stream(name: str) -> None:
    # RFC 3261 §18.3: over TCP the same bytes frame by Content-Length
    framer = StreamFramer()
    (data,) = framer.feed(load(name))
    assert parse_message(data, stream=True) == parse(name)


def test_short_tortuous_invite_unfolds_every_field() -> None:
    # §3.1.1.1 wsinv: folding, LWS around colons, mixed compact forms
    m = parse("wsinv")
    assert isinstance(m, Request)
    assert m.method == "INVITE"
    assert m.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert (m.cseq.seq, m.cseq.method) == (9, "INVITE")
    assert m.max_forwards == 68


def test_short_tortuous_invite_has_three_vias_across_two_fields() -> None:
    m = parse("wsinv")
    assert [(v.transport, v.host, v.branch) for v in m.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]


def test_short_tortuous_invite_reads_tags_across_lws() -> None:
    m = parse("wsinv")
    assert m.to.tag == "1918181833n"
    assert m.from_.tag == "98asjd8"
    assert m.from_.display_name == '"J Rosenberg \\\\\\""'
    assert m.from_.uri == "sip:jdrosen@example.com"


def test_short_tortuous_invite_keeps_unknown_fields_as_text() -> None:
    m = parse("wsinv")
    assert m.headers.get("Subject") == ""
    assert m.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"


def test_short_tortuous_invite_contact_params_across_folds() -> None:
    (contact,) = parse("wsinv").contacts
    assert contact.display_name == '"Quoted string \\"\\""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}


def test_wide_range_of_valid_characters_in_method_and_tokens() -> None:
    # §3.1.1.2 intmeth
    m = parse("intmeth")
    assert isinstance(m, Request)
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.cseq.method == m.method
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert m.from_.tag == "_token~1'+`*%!-."
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"


def test_wide_range_of_valid_characters_in_request_uri_userinfo() -> None:
    m = parse("intmeth")
    assert isinstance(m, Request)
    uri = m.parsed_uri
    assert isinstance(uri, SipUri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.com"


def test_wide_range_of_valid_characters_in_quoted_pairs_and_utf8() -> None:
    m = parse("intmeth")
    assert m.to.display_name == '"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f"'
    assert m.from_.params["fromparam''~+*_!.-%"] == "работающий"
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_percent_escapes_in_uris_compare_decoded() -> None:
    # §3.1.1.3 esc01: %HEX HEX equals the character in SIP URIs
    m = parse("esc01")
    assert isinstance(m, Request)
    assert m.parsed_uri == parse_sip_uri("sip:sips%3Auser%40example.com@example.net")
    assert m.to.sip_uri.equivalent(parse_sip_uri("sip:user@example.com"))
    assert m.call_id == "esc01.239409asdfakjkn23onasd0-3234"


def test_percent_escapes_are_not_unescaped_twice() -> None:
    # §3.1.1.3: "value%41" (here v%61lue%25%34%31) is NOT "valueA"
    (contact,) = parse("esc01").contacts
    uri = contact.sip_uri
    assert uri.equivalent(parse_sip_uri("sip:caller@host5.example.net;lr;name=value%2541"))
    assert not uri.equivalent(parse_sip_uri("sip:caller@host5.example.net;lr;name=valueA"))


def test_escaped_nulls_keep_two_distinct_contacts() -> None:
    # §3.1.1.4 escnull: %00 and %00%00 are different users
    first, second = parse("escnull").contacts
    assert first.sip_uri.user == "%00"
    assert second.sip_uri.user == "%00%00"
    assert not first.sip_uri.equivalent(second.sip_uri)


def test_percent_is_not_an_escape_outside_uris() -> None:
    # §3.1.1.5 esc02: RE%47IST%45R is an unknown method, C%6Fntact an
    # unknown header, so there are two Contact values, not three
    m = parse("esc02")
    assert isinstance(m, Request)
    assert m.method == "RE%47IST%45R"
    assert [c.uri for c in m.contacts] == [
        "sip:alias1@host1.example.com",
        "sip:alias3@host3.example.com",
    ]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert m.to.display_name == '"%Z%45"'
    assert m.top_via.branch == "z9hG4bK209%fzsnel234"


def test_no_lws_between_display_name_and_angle_bracket() -> None:
    # §3.1.1.6 lwsdisp
    m = parse("lwsdisp")
    assert m.from_.display_name == "caller"
    assert m.from_.tag == "323"


def test_long_values_in_header_fields() -> None:
    # §3.1.1.7 longreq: 34 Vias under every spelling of the name
    m = parse("longreq")
    vias = m.vias
    assert len(vias) == 34
    assert m.top_via.host == "sip33.example.com"
    assert vias[-1].received == "192.0.2.5"
    assert vias[-1].branch == "very" + "long" * 50 + "branchvalue"
    assert m.from_.tag == "12" + "982" * 50 + "424"
    assert m.call_id == "longreq.one" + "really" * 20 + "longcallid"
    assert m.to.sip_uri.port == 6000


def test_extra_octets_after_a_datagram_body_are_ignored() -> None:
    # §3.1.1.8 dblreq: RFC 3261 §18.3, the INVITE after Content-Length: 0
    # is noise
    m = parse("dblreq")
    assert isinstance(m, Request)
    assert m.method == "REGISTER"
    assert m.body == b""
    assert m.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert b"INVITE" not in m.to_bytes()


def test_semicolon_in_uri_user_part() -> None:
    # §3.1.1.9 semiuri
    m = parse("semiuri")
    assert isinstance(m, Request)
    uri = m.parsed_uri
    assert isinstance(uri, SipUri)
    assert uri.user == "user;par=u%40example.net"
    assert uri.host == "example.com"
    assert uri.params == ()
    assert len(m.headers.get_list("Accept")) == 6


def test_varied_and_unknown_transports() -> None:
    # §3.1.1.10 transports
    m = parse("transports")
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert m.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def test_multipart_mime_body_is_kept_as_bytes() -> None:
    # §3.1.1.11 mpart01: a binary S/MIME part, 553 octets
    m = parse("mpart01")
    assert len(m.body) == 553
    assert m.body.endswith(b"\r\n--7a9cbec02ceef655--\r\n")
    content_type = m.content_type
    assert content_type is not None
    assert content_type.mime == "multipart/mixed"
    assert dict(content_type.params) == {"boundary": "7a9cbec02ceef655"}
    assert m.top_via.rport is True


def test_unusual_reason_phrase_in_utf8() -> None:
    # §3.1.1.12 unreason
    m = parse("unreason")
    assert isinstance(m, Response)
    assert m.status == 200
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"


def test_empty_reason_phrase() -> None:
    # §3.1.1.13 noreason: "SIP/2.0 100 " with nothing after the SP
    m = parse("noreason")
    assert isinstance(m, Response)
    assert (m.status, m.reason) == (100, "")


# ---------------------------------------------------- §3.1.2 invalid messages
def test_extraneous_header_field_separators_are_rejected() -> None:
    # §3.1.2.1 badinv01: "Via: SIP/2.0/UDP 192.0.2.15;;,;,,"
    error = refusal("badinv01")
    assert (error.reason, error.status) == ("bad-via", 400)


def test_content_length_larger_than_datagram_is_rejected() -> None:
    # §3.1.2.2 clerr: over UDP, 400 (RFC 3261 §18.3)
    error = refusal("clerr")
    assert (error.reason, error.status) == ("content-length-too-large", 400)


def test_content_length_larger_than_stream_waits_for_more() -> None:
    # §3.1.2.2: over a stream the framer waits for the rest of the body
    framer = StreamFramer()
    assert framer.feed(load("clerr")) == []
    assert not framer.broken


def test_negative_content_length_is_rejected() -> None:
    # §3.1.2.3 ncl
    error = refusal("ncl")
    assert (error.reason, error.status) == ("bad-content-length", 400)


def test_negative_content_length_breaks_a_stream() -> None:
    framer = StreamFramer()
    with pytest.raises(SipParseError) as info:
        framer.feed(load("ncl"))
    assert (info.value.reason, info.value.status) == ("bad-content-length", 400)
    assert framer.broken


def test_overlarge_request_cseq_is_rejected() -> None:
    # §3.1.2.4 scalar02: CSeq > 2**32-1 answers 400
    error = refusal("scalar02")
    assert (error.reason, error.status) == ("bad-cseq", 400)


def test_overlarge_expires_values_read_as_the_cap() -> None:
    # §3.1.2.4: "If only the expiry values were in error, the element could
    # treat them as if they contained the default values ... or reject".
    # pua follows RFC 3261 §20.19: above 2**32-1 is taken as 2**32-1.
    data = load("scalar02").replace(b"CSeq: 36893488147419103232", b"CSeq: 3")
    m = parse_message(data.replace(b"Max-Forwards: 300", b"Max-Forwards: 70"))
    m.validate()
    assert m.expires == 2**32 - 1
    assert m.contacts[0].expires == 2**32 - 1


def test_overlarge_max_forwards_is_rejected() -> None:
    # §3.1.2.4: Max-Forwards is 0-255 (RFC 3261 §20.22)
    data = load("scalar02").replace(b"CSeq: 36893488147419103232", b"CSeq: 3")
    m = parse_message(data)
    with pytest.raises(SipParseError) as info:
        m.validate()
    assert info.value.reason == "bad-max-forwards"


def test_overlarge_response_cseq_is_dropped() -> None:
    # §3.1.2.5 scalarlg: a response is discarded, never answered
    error = refusal("scalarlg")
    assert (error.reason, error.status) == ("bad-cseq", None)


def test_unterminated_quoted_display_name_is_rejected() -> None:
    # §3.1.2.6 quotbal
    error = refusal("quotbal")
    assert (error.reason, error.status) == ("unterminated-quote", 400)


def test_angle_brackets_around_request_uri_are_rejected() -> None:
    # §3.1.2.7 ltgtruri
    error = refusal("ltgtruri")
    assert (error.reason, error.status) == ("bad-request-uri", 400)


def test_lws_inside_request_uri_is_rejected() -> None:
    # §3.1.2.8 lwsruri
    error = refusal("lwsruri")
    assert (error.reason, error.status) == ("bad-request-line", 400)


def test_multiple_sp_between_request_line_elements_are_rejected() -> None:
    # §3.1.2.9 lwsstart
    error = refusal("lwsstart")
    assert (error.reason, error.status) == ("bad-request-line", 400)


def test_sp_at_end_of_request_line_is_rejected() -> None:
    # §3.1.2.10 trws: rejecting is "reasonable"; pua does not strip
    error = refusal("trws")
    assert (error.reason, error.status) == ("bad-request-line", 400)


def test_escaped_headers_in_request_uri_are_ignored() -> None:
    # §3.1.2.11 escruri: "an element could choose to be liberal in what it
    # accepts and ignore the escaped headers".  pua parses them into the URI
    # and never acts on them.
    m = parse("escruri")
    m.validate()
    assert isinstance(m, Request)
    uri = m.parsed_uri
    assert isinstance(uri, SipUri)
    assert uri.headers == (("Route", "%3Csip:example.com%3E"),)


def test_invalid_date_time_zone_is_ignored() -> None:
    # §3.1.2.12 baddate: a UA may ignore a Date it does not use; pua never
    # reads Date, so the field stays text
    m = parse("baddate")
    m.validate()
    assert m.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


def test_addr_spec_with_uri_headers_outside_angle_brackets_is_rejected() -> None:
    # §3.1.2.13 regbadct: "?" in an addr-spec needs name-addr form
    error = refusal("regbadct")
    assert (error.reason, error.status) == ("bad-contact", 400)


def test_spaces_inside_addr_spec_are_rejected() -> None:
    # §3.1.2.14 badaspec: "< sip:t.watson@example.org >"
    error = refusal("badaspec")
    assert (error.reason, error.status) == ("bad-to", 400)


def test_non_token_characters_in_unquoted_display_name_are_rejected() -> None:
    # §3.1.2.15 baddn: "Bell, Alexander" unquoted.  The RFC's archive copy
    # ends after "l: 0" CRLF, so the empty line is added to reach the fields.
    m = parse_message(load("baddn") + b"\r\n")
    with pytest.raises(SipParseError) as info:
        m.validate()
    assert (info.value.reason, info.value.status) == ("bad-from", 400)


def test_header_block_without_its_empty_line_is_rejected() -> None:
    # §3.1.2.15 baddn as archived: RFC 3261 §7 "the empty line MUST be
    # present even if the message-body is not"
    error = refusal("baddn")
    assert (error.reason, error.status) == ("no-end-of-headers", 400)


def test_unknown_protocol_version_answers_505() -> None:
    # §3.1.2.16 badvers: SIP/7.0
    error = refusal("badvers")
    assert (error.reason, error.status) == ("unsupported-version", 505)


def test_start_line_and_cseq_method_mismatch_is_rejected() -> None:
    # §3.1.2.17 mismatch01
    error = refusal("mismatch01")
    assert (error.reason, error.status) == ("cseq-method-mismatch", 400)


def test_unknown_method_with_cseq_mismatch_is_rejected() -> None:
    # §3.1.2.18 mismatch02: the RFC prefers 501 but allows 400; the codec
    # sees only the mismatch (a UA's method check comes later)
    error = refusal("mismatch02")
    assert (error.reason, error.status) == ("cseq-method-mismatch", 400)


def test_overlarge_response_code_is_dropped() -> None:
    # §3.1.2.19 bigcode: 4294967301 is not a 3-digit Status-Code
    error = refusal("bigcode")
    assert (error.reason, error.status) == ("bad-status-code", None)


# ------------------------------------------------- §3.2 transaction layer
def test_branch_of_only_the_magic_cookie_is_kept() -> None:
    # §3.2.1 badbranch: syntactically fine; the transaction layer decides
    assert parse("badbranch").top_via.branch == "z9hG4bK"


# ------------------------------------------------- §3.3 application layer
def test_missing_required_header_fields_are_rejected() -> None:
    # §3.3.1 insuf: no Call-ID, From or To (RFC 3261 §8.1.1)
    error = refusal("insuf")
    assert (error.reason, error.status) == ("missing-call-id", 400)


def test_request_uri_of_unknown_scheme_parses_as_absolute_uri() -> None:
    # §3.3.2 unkscm: answering 416 is the application's business
    m = parse("unkscm")
    assert isinstance(m, Request)
    assert m.parsed_uri == AbsoluteUri(
        "nobodyknowsthisscheme", "nobodyKnowsThisScheme:totallyopaquecontent"
    )


def test_request_uri_of_atypical_scheme_parses_as_absolute_uri() -> None:
    # §3.3.3 novelsc
    m = parse("novelsc")
    assert isinstance(m, Request)
    uri = m.parsed_uri
    assert isinstance(uri, AbsoluteUri)
    assert uri.scheme == "soap.beep"


def test_unknown_uri_schemes_in_header_fields() -> None:
    # §3.3.4 unksm2
    m = parse("unksm2")
    assert m.to.uri == "isbn:2983792873"
    assert m.from_.uri == "http://www.example.com"
    assert m.contacts[0].uri == "name:John_Smith"
    assert isinstance(m.to.parsed_uri, AbsoluteUri)


def test_require_and_proxy_require_are_list_fields() -> None:
    # §3.3.5 bext01
    m = parse("bext01")
    assert m.headers.get_list("Require") == ["nothingSupportsThis", "nothingSupportsThisEither"]
    assert m.top_via.transport == "TLS"


def test_unknown_content_type_is_read() -> None:
    # §3.3.6 invut
    m = parse("invut")
    content_type = m.content_type
    assert content_type is not None
    assert content_type.mime == "application/unknownformat"
    assert len(m.body) == 40


def test_unknown_authorization_scheme_stays_text() -> None:
    # §3.3.7 regaut01
    m = parse("regaut01")
    assert m.headers.get("Authorization") == "NoOneKnowsThisScheme opaque-data=here"
    assert m.content_length == 0


def test_multiple_values_in_single_value_fields_are_rejected() -> None:
    # §3.3.8 multi01: two Call-IDs, CSeqs, Froms and Tos
    error = refusal("multi01")
    assert (error.reason, error.status) == ("duplicate-call-id", 400)


def test_multiple_content_length_values_are_rejected() -> None:
    # §3.3.9 mcl01
    error = refusal("mcl01")
    assert (error.reason, error.status) == ("duplicate-content-length", 400)


def test_multiple_content_length_values_break_a_stream() -> None:
    # §3.3.9: over TCP "the framing error is not recoverable"
    framer = StreamFramer()
    with pytest.raises(SipParseError) as info:
        framer.feed(load("mcl01"))
    assert info.value.reason == "duplicate-content-length"
    assert framer.broken


def test_broadcast_via_in_a_response_is_parsed() -> None:
    # §3.3.10 bcast: ignoring the second Via is the transport's business
    m = parse("bcast")
    assert [v.host for v in m.vias] == ["192.0.2.198", "255.255.255.255"]


def test_max_forwards_of_zero() -> None:
    # §3.3.11 zeromf
    assert parse("zeromf").max_forwards == 0


def test_contact_addr_spec_parameter_is_a_header_parameter() -> None:
    # §3.3.12 cparam01: without <>, ";unknownparam" belongs to the field
    (contact,) = parse("cparam01").contacts
    assert contact.params == {"unknownparam": None}
    assert contact.sip_uri.params == ()


def test_contact_name_addr_parameter_is_a_uri_parameter() -> None:
    # §3.3.13 cparam02
    (contact,) = parse("cparam02").contacts
    assert contact.params == {}
    assert contact.sip_uri.params == (("unknownparam", None),)


def test_contact_with_escaped_uri_header() -> None:
    # §3.3.14 regescrt
    (contact,) = parse("regescrt").contacts
    assert contact.sip_uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)


def test_unacceptable_accept_offering_is_parsed() -> None:
    # §3.3.15 sdp01
    assert parse("sdp01").headers.get_list("Accept") == ["text/nobodyKnowsThis"]


# --------------------------------------------- §3.4 backward compatibility
def test_rfc2543_invite_without_content_length_takes_the_datagram_rest() -> None:
    # §3.4.1 inv2543: no Content-Length over UDP: the body is the rest of
    # the datagram (RFC 3261 §18.3)
    m = parse("inv2543")
    assert m.content_length is None
    assert m.body.startswith(b"v=0\r\n")
    assert m.body.endswith(b"RTP/AVP 0\r\n")


def test_rfc2543_invite_has_no_branch_and_no_from_tag() -> None:
    # §3.4.1: "no branch parameter at all", "no From tag"
    m = parse("inv2543")
    assert m.top_via.branch is None
    assert m.from_.tag is None
