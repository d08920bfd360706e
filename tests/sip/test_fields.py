"""Typed header accessors of Message (RFC 3261 §20, RFC 3581, RFC 3903 §11,
RFC 6665 §8) and the reasons they fail with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pua.errors import SipParseError
from pua.sip import NameAddr, Request, Response, Via, parse_message
from pua.sip.fields import EventHeader

MANDATORY = [
    ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK74bf9"),
    ("From", "<sip:alice@example.com>;tag=9fxced76sl"),
    ("To", "<sip:bob@example.com>"),
    ("Call-ID", "3848276298220188511@example.com"),
    ("CSeq", "1 SUBSCRIBE"),
]


def request(*fields: tuple[str, str], mandatory: bool = True) -> Request:
    """A SUBSCRIBE with the given fields (after the mandatory ones)."""
    own = {name.lower() for name, _ in fields}
    base = [f for f in MANDATORY if f[0].lower() not in own] if mandatory else []
    return Request("SUBSCRIBE", "sip:bob@example.com", [*base, *fields])


def reason_of(fn: Callable[[], Any]) -> str:
    with pytest.raises(SipParseError) as info:
        fn()
    return info.value.reason


# ---------------------------------------------------------------------- Via
def test_top_via_sent_by_and_branch() -> None:
    via = request().top_via
    assert (via.protocol, via.transport, via.host, via.port) == (
        "SIP/2.0",
        "UDP",
        "192.0.2.1",
        5060,
    )
    assert via.branch == "z9hG4bK74bf9"


def test_vias_top_first_across_fields_and_commas() -> None:
    m = request(
        ("Via", "SIP/2.0/TCP a.example.com, SIP/2.0/UDP b.example.com"),
        ("v", "SIP/2.0/TLS c"),
    )
    assert [(v.transport, v.host) for v in m.vias] == [
        ("TCP", "a.example.com"),
        ("UDP", "b.example.com"),
        ("TLS", "c"),
    ]
    assert m.top_via.host == "a.example.com"


def test_via_transport_is_upper_cased() -> None:
    assert request(("Via", "SIP/2.0/udp h")).top_via.transport == "UDP"


def test_via_with_lws_inside_the_protocol() -> None:
    # RFC 3261 §25.1: SLASH = SWS "/" SWS
    via = request(("Via", "SIP / 2.0 / UDP  h.example.com ; branch = z9hG4bKx")).top_via
    assert (via.transport, via.host, via.branch) == ("UDP", "h.example.com", "z9hG4bKx")


def test_via_ipv6_sent_by() -> None:
    via = request(("Via", "SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bKy")).top_via
    assert (via.host, via.port) == ("[2001:db8::9]", 5070)


def test_via_branch_absent() -> None:
    assert request(("Via", "SIP/2.0/UDP h")).top_via.branch is None


def test_via_parameter_names_are_case_insensitive() -> None:
    via = request(("Via", "SIP/2.0/UDP h;BRANCH=z9hG4bKq;Received=192.0.2.9")).top_via
    assert via.branch == "z9hG4bKq"
    assert via.received == "192.0.2.9"


def test_via_received() -> None:
    via = request(("Via", "SIP/2.0/UDP h;branch=z9hG4bK1;received=192.0.2.77")).top_via
    assert via.received == "192.0.2.77"


def test_via_without_rport_is_none() -> None:
    assert request().top_via.rport is None


def test_via_rport_without_value_asks_for_it() -> None:
    # RFC 3581 §3: "rport" with no value in a request
    assert request(("Via", "SIP/2.0/UDP h;rport;branch=z9hG4bK1")).top_via.rport is True


def test_via_rport_with_value_is_the_port() -> None:
    # RFC 3581 §4: the server fills in the source port
    via = request(("Via", "SIP/2.0/UDP h;rport=61234;received=192.0.2.3")).top_via
    assert via.rport == 61234


@pytest.mark.parametrize("value", ["x", "-1", "65536", "\u0665", "1" * 5000])
def test_via_bad_rport(value: str) -> None:
    via = request(("Via", f"SIP/2.0/UDP h;rport={value}")).top_via
    assert reason_of(lambda: via.rport) == "bad-via"


def test_via_sent_by_lower_cases_the_host() -> None:
    assert request(("Via", "SIP/2.0/UDP Host.Example.COM")).top_via.sent_by == (
        "host.example.com",
        None,
    )


def test_via_build_serialises() -> None:
    via = Via.build("TCP", "192.0.2.1", 5060, {"branch": "z9hG4bKa", "rport": None})
    assert str(via) == "SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKa;rport"


def test_via_with_params_sets_in_place() -> None:
    via = request(("Via", "SIP/2.0/UDP h;rport;branch=z9hG4bK1")).top_via
    assert str(via.with_params(rport="5062", received="192.0.2.3")) == (
        "SIP/2.0/UDP h;rport=5062;branch=z9hG4bK1;received=192.0.2.3"
    )


@pytest.mark.parametrize(
    "value",
    [
        "SIP/2.0/UDP",
        "SIP/2.0/UDP ",
        "SIP/2.0 UDP h",
        "SIP/2.0/UDP h:99999",
        "SIP/2.0/UDP h:\u0665",
        "SIP/2.0/UDP h:x",
        "SIP/2.0/UDP [::1",
        "SIP/2.0/UDP h;;branch=x",
        "SIP/2.0/UDP h;branch=a b",
        "SIP/2.0/UDP 192.0.2.15;;,;,,",  # RFC 4475 §3.1.2.1
    ],
)
def test_malformed_via(value: str) -> None:
    assert reason_of(lambda: request(("Via", value)).vias) == "bad-via"


def test_missing_via() -> None:
    m = request(("From", "<sip:a@b>"), mandatory=False)
    assert reason_of(lambda: m.vias) == "missing-via"
    assert reason_of(lambda: m.top_via) == "missing-via"


# ------------------------------------------------------------------ From/To
def test_from_tag() -> None:
    assert request().from_.tag == "9fxced76sl"


def test_to_without_tag() -> None:
    assert request().to.tag is None


def test_to_with_tag_and_uri() -> None:
    to = request(("To", "<sip:bob@example.com>;tag=8321234356")).to
    assert (to.uri, to.tag, to.display_name, to.bracketed) == (
        "sip:bob@example.com",
        "8321234356",
        None,
        True,
    )


def test_display_name_of_tokens() -> None:
    from_ = request(("From", "Alice Liddell <sip:alice@example.com>;tag=1")).from_
    assert from_.display_name == "Alice Liddell"


def test_display_name_without_space_before_angle_bracket() -> None:
    # RFC 4475 §3.1.1.6
    assert request(("From", "caller<sip:c@example.com>;tag=3")).from_.display_name == "caller"


def test_quoted_display_name_keeps_its_quotes_and_escapes() -> None:
    from_ = request(("From", '"Doe, \\"JD\\" <J>" <sip:j@example.com>;tag=1')).from_
    assert from_.display_name == '"Doe, \\"JD\\" <J>"'
    assert from_.uri == "sip:j@example.com"
    assert from_.tag == "1"


def test_addr_spec_parameters_are_header_parameters() -> None:
    # RFC 3261 §20.10: without <>, ";tag=" belongs to the field
    to = request(("To", "sip:bob@example.com;tag=x;user=phone")).to
    assert (to.uri, to.bracketed) == ("sip:bob@example.com", False)
    assert to.params == {"tag": "x", "user": "phone"}


def test_name_addr_uri_parameters_stay_in_the_uri() -> None:
    to = request(("To", "<sip:bob@example.com;user=phone>;tag=x")).to
    assert to.sip_uri.params == (("user", "phone"),)
    assert to.params == {"tag": "x"}


def test_header_parameters_across_lws() -> None:
    # RFC 4475 §3.1.1.1: "sip:vivekg@... ;   tag    = 1918181833n"
    assert request(("To", "sip:v@example.com ;   tag    = 1918181833n")).to.tag == "1918181833n"


def test_tag_parameter_name_is_case_insensitive() -> None:
    assert request(("From", "<sip:a@b>;TAG=abc")).from_.tag == "abc"


def test_name_addr_serialises() -> None:
    name_addr = NameAddr.build("sip:alice@example.com", '"Alice"', {"tag": "a1"})
    assert str(name_addr) == '"Alice" <sip:alice@example.com>;tag=a1'
    assert str(name_addr.with_params(tag="a2")) == '"Alice" <sip:alice@example.com>;tag=a2'


def test_non_sip_uri_is_not_a_sip_uri() -> None:
    to = request(("To", "<tel:+15551234>")).to
    assert reason_of(lambda: to.sip_uri) == "bad-uri"


def test_unterminated_quoted_display_name() -> None:
    # RFC 4475 §3.1.2.6
    m = request(("To", '"Mr. J. User <sip:j.user@example.com>'))
    assert reason_of(lambda: m.to) == "unterminated-quote"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "< sip:t.watson@example.org >",  # RFC 4475 §3.1.2.14
        "Watson, Thomas <sip:t@example.org>",  # RFC 4475 §3.1.2.15
        "<sip:a@b",
        '"x" sip:a@b',
        "<>",
        "sip:a@b?x=y",  # RFC 4475 §3.1.2.13
        "<sip:a@b>;;tag=1",
        "<sip:a@b> tag=1",
    ],
)
def test_malformed_to(value: str) -> None:
    assert reason_of(lambda: request(("To", value)).to) == "bad-to"


def test_malformed_from() -> None:
    assert reason_of(lambda: request(("From", "Bell, A <sip:a@b>")).from_) == "bad-from"


def test_missing_from_and_to() -> None:
    m = request(mandatory=False)
    assert reason_of(lambda: m.from_) == "missing-from"
    assert reason_of(lambda: m.to) == "missing-to"


def test_bad_uri_in_a_well_formed_name_addr_fails_validation() -> None:
    m = parse_message(request(("To", "<sip:bob@example.com:99999>")).to_bytes())
    assert reason_of(m.validate) == "bad-uri"


# ------------------------------------------------------------ Call-ID, CSeq
def test_call_id() -> None:
    assert request().call_id == "3848276298220188511@example.com"


def test_call_id_with_white_space_is_bad() -> None:
    assert reason_of(lambda: request(("Call-ID", "a b")).call_id) == "bad-call-id"


def test_missing_call_id() -> None:
    assert reason_of(lambda: request(mandatory=False).call_id) == "missing-call-id"


def test_cseq_number_and_method() -> None:
    cseq = request(("CSeq", "4711 SUBSCRIBE")).cseq
    assert (cseq.seq, cseq.method, str(cseq)) == (4711, "SUBSCRIBE", "4711 SUBSCRIBE")


def test_cseq_with_leading_zeros_and_lws() -> None:
    # RFC 4475 §3.1.1.1: "0009\r\n  INVITE" unfolds to "0009 INVITE"
    assert request(("CSeq", "0000000000009 \t INVITE")).cseq == (9, "INVITE")


def test_cseq_fits_32_bits() -> None:
    assert request(("CSeq", "4294967295 X")).cseq.seq == 2**32 - 1


@pytest.mark.parametrize(
    "value", ["4294967296 X", "1", "X 1", "1 2 3", "-1 X", "\u0665 X", "1 X@", "9" * 5000 + " X"]
)
def test_malformed_cseq(value: str) -> None:
    # RFC 3261 §8.1.1.5, RFC 4475 §3.1.2.4
    assert reason_of(lambda: request(("CSeq", value)).cseq) == "bad-cseq"


def test_missing_cseq() -> None:
    assert reason_of(lambda: request(mandatory=False).cseq) == "missing-cseq"


# ------------------------------------------------------------------ Contact
def test_contacts_across_commas_and_fields() -> None:
    m = request(
        ("Contact", "<sip:a@192.0.2.1>;expires=60, sip:b@192.0.2.2"),
        ("m", '"C" <sip:c@192.0.2.3>;q=0.5'),
    )
    assert [(c.uri, c.expires) for c in m.contacts] == [
        ("sip:a@192.0.2.1", 60),
        ("sip:b@192.0.2.2", None),
        ("sip:c@192.0.2.3", None),
    ]


def test_contact_star_has_no_values() -> None:
    # RFC 3261 §10.2.2: "Contact: *" removes all bindings
    assert request(("Contact", "*")).contacts == []


def test_no_contact_is_an_empty_list() -> None:
    assert request().contacts == []


def test_contact_expires_over_32_bits_is_capped() -> None:
    # RFC 3261 §20.19 / RFC 4475 §3.1.2.4
    assert request(("Contact", "<sip:a@b>;expires=280297596632815")).contacts[0].expires == (
        2**32 - 1
    )


def test_contact_bad_expires() -> None:
    (contact,) = request(("Contact", "<sip:a@b>;expires=soon")).contacts
    assert reason_of(lambda: contact.expires) == "bad-contact"


def test_malformed_contact() -> None:
    assert reason_of(lambda: request(("Contact", "<sip:a@b>;;;;")).contacts) == "bad-contact"


# ---------------------------------------------------------- Route, Record-Route
def test_record_route_in_order_across_fields() -> None:
    m = request(
        ("Record-Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"),
        ("Record-Route", "<sip:p3.example.com;lr>"),
    )
    assert [r.uri for r in m.record_route] == [
        "sip:p1.example.com;lr",
        "sip:p2.example.com;lr",
        "sip:p3.example.com;lr",
    ]
    assert all(r.sip_uri.lr for r in m.record_route)


def test_route() -> None:
    assert [r.uri for r in request(("Route", "<sip:p1.example.com;lr>")).route] == [
        "sip:p1.example.com;lr"
    ]


def test_malformed_route() -> None:
    assert reason_of(lambda: request(("Route", "<sip:p1")).route) == "bad-route"
    assert reason_of(lambda: request(("Record-Route", "<sip:p1")).record_route) == (
        "bad-record-route"
    )


# ---------------------------------------------------- Expires, Min-Expires, MF
def test_expires() -> None:
    assert request(("Expires", "3600")).expires == 3600


def test_expires_absent() -> None:
    assert request().expires is None


def test_expires_over_32_bits_reads_as_the_cap() -> None:
    # RFC 3261 §20.19: "interpreted as 2**32-1"
    assert request(("Expires", "1" + "0" * 100)).expires == 2**32 - 1
    assert request(("Expires", "9" * 5000)).expires == 2**32 - 1


def test_expires_with_leading_zeros() -> None:
    assert request(("Expires", "0" * 20 + "60")).expires == 60


@pytest.mark.parametrize("value", ["", "-1", "1.5", "soon", "\u0665"])
def test_malformed_expires(value: str) -> None:
    assert reason_of(lambda: request(("Expires", value)).expires) == "bad-expires"


def test_min_expires() -> None:
    # RFC 3261 §20.23, sent with 423 (RFC 3903 §4.1)
    assert request(("Min-Expires", "60")).min_expires == 60
    assert reason_of(lambda: request(("Min-Expires", "x")).min_expires) == "bad-min-expires"


def test_max_forwards_with_leading_zeros() -> None:
    # RFC 4475 §3.1.1.1: "0068"
    assert request(("Max-Forwards", "0068")).max_forwards == 68


@pytest.mark.parametrize("value", ["256", "300", "-1", "x", "\u0665"])
def test_malformed_max_forwards(value: str) -> None:
    # RFC 3261 §20.22: 0-255
    assert reason_of(lambda: request(("Max-Forwards", value)).max_forwards) == "bad-max-forwards"


# -------------------------------------------------------------------- Event
def test_event_package_and_id() -> None:
    # RFC 6665 §8.2.1
    event = request(("Event", "presence;id=1234;Other=x")).event
    assert event == EventHeader("presence", (("id", "1234"), ("other", "x")))
    assert event is not None
    assert event.id == "1234"
    assert str(event) == "presence;id=1234;other=x"


def test_event_compact_form_and_template() -> None:
    event = request(("o", "presence.winfo")).event
    assert event is not None
    assert (event.package, event.id) == ("presence.winfo", None)


def test_events_match_on_package_and_id() -> None:
    # RFC 6665 §8.2.1
    a = EventHeader("presence", (("id", "1"),))
    assert a.matches(EventHeader("presence", (("id", "1"), ("x", None))))
    assert not a.matches(EventHeader("presence"))
    assert not a.matches(EventHeader("dialog", (("id", "1"),)))


@pytest.mark.parametrize("value", ["", "pres ence", "presence;", "presence;id=a b", "<x>"])
def test_malformed_event(value: str) -> None:
    assert reason_of(lambda: request(("Event", value)).event) == "bad-event"


def test_allow_events_list() -> None:
    m = request(("Allow-Events", "presence, dialog"), ("u", "message-summary"))
    assert [e.package for e in m.allow_events] == ["presence", "dialog", "message-summary"]


# ----------------------------------------------------- SIP-ETag, SIP-If-Match
def test_sip_etag() -> None:
    # RFC 3903 §11.3.1: entity-tag = token
    assert request(("SIP-ETag", "dx200xyz")).sip_etag == "dx200xyz"


def test_sip_if_match() -> None:
    assert request(("SIP-If-Match", "dx200xyz")).sip_if_match == "dx200xyz"


def test_malformed_entity_tags() -> None:
    assert reason_of(lambda: request(("SIP-ETag", "a b")).sip_etag) == "bad-sip-etag"
    assert reason_of(lambda: request(("SIP-If-Match", '"a"')).sip_if_match) == ("bad-sip-if-match")


# ------------------------------------------------------- Subscription-State
def test_subscription_state_active_with_expires() -> None:
    # RFC 6665 §8.2.3
    state = request(("Subscription-State", "Active;expires=599")).subscription_state
    assert state is not None
    assert (state.state, state.expires, state.reason) == ("active", 599, None)


def test_subscription_state_terminated_with_reason_and_retry_after() -> None:
    state = request(
        ("Subscription-State", "terminated;reason=Probation;retry-after=30")
    ).subscription_state
    assert state is not None
    assert (state.state, state.reason, state.retry_after) == ("terminated", "probation", 30)


def test_unknown_subscription_state_is_kept() -> None:
    # RFC 6665 §4.1.3: the application treats unknown states as terminated
    state = request(("Subscription-State", "dormant")).subscription_state
    assert state is not None
    assert state.state == "dormant"


@pytest.mark.parametrize(
    "value", ["", "active;expires=soon", "terminated;retry-after=-1", "a b", "active;"]
)
def test_malformed_subscription_state(value: str) -> None:
    m = request(("Subscription-State", value))
    assert reason_of(lambda: m.subscription_state) == "bad-subscription-state"


# ------------------------------------------------ Content-Type, Content-Length
def test_content_type_is_lower_cased_with_params() -> None:
    content_type = request(("c", 'Application/PIDF+XML;charset="UTF-8"')).content_type
    assert content_type is not None
    assert content_type.mime == "application/pidf+xml"
    assert content_type.params == (("charset", "UTF-8"),)


@pytest.mark.parametrize("value", ["", "text", "text/", "/plain", "text/plain;", "te xt/plain"])
def test_malformed_content_type(value: str) -> None:
    assert reason_of(lambda: request(("Content-Type", value)).content_type) == ("bad-content-type")


def test_content_length_as_written() -> None:
    assert request(("Content-Length", "42")).content_length == 42
    assert request().content_length is None


def test_malformed_content_length() -> None:
    assert reason_of(lambda: request(("l", "4 2")).content_length) == "bad-content-length"


# --------------------------------------------------------------- Retry-After
def test_retry_after_with_comment_and_duration() -> None:
    # RFC 3261 §20.33: "Retry-After: 18000;duration=3600" and comments
    m = Response(503, headers=[("Retry-After", "120 (I'm in a meeting);duration=3600")])
    retry = m.retry_after
    assert retry is not None
    assert (retry.seconds, retry.comment, retry.duration) == (120, "I'm in a meeting", 3600)


def test_retry_after_seconds_only() -> None:
    retry = Response(503, headers=[("Retry-After", "5")]).retry_after
    assert retry is not None
    assert (retry.seconds, retry.comment, retry.duration) == (5, None, None)


@pytest.mark.parametrize("value", ["", "soon", "5 ) (", "5;duration=x"])
def test_malformed_retry_after(value: str) -> None:
    m = Response(503, headers=[("Retry-After", value)])

    def read() -> object:
        retry = m.retry_after
        return retry.duration if retry is not None else None

    assert reason_of(read) == "bad-retry-after"


# -------------------------------------------- WWW- and Proxy-Authenticate
def test_www_authenticate_with_quoted_commas() -> None:
    # RFC 3261 §20.44: the commas separate auth-params, not field values
    m = Response(
        401,
        headers=[
            (
                "WWW-Authenticate",
                'Digest realm="atlanta.com, inc", domain="sip:boxesbybob.com", '
                'qop="auth,auth-int", nonce="f84f1cec41e6cbe5aea9c8e88d359", '
                'opaque="", stale=FALSE, algorithm=MD5',
            )
        ],
    )
    (challenge,) = m.www_authenticate
    assert challenge.scheme == "Digest"
    assert challenge.realm == "atlanta.com, inc"
    assert challenge.get("QOP") == "auth,auth-int"
    assert challenge.nonce == "f84f1cec41e6cbe5aea9c8e88d359"
    assert challenge.get("opaque") == ""
    assert challenge.get("stale") == "FALSE"


def test_one_challenge_per_field() -> None:
    m = Response(
        407,
        headers=[
            ("Proxy-Authenticate", 'Digest realm="a", nonce="1"'),
            ("Proxy-Authenticate", 'Digest realm="b", nonce="2"'),
        ],
    )
    assert [c.realm for c in m.proxy_authenticate] == ["a", "b"]


def test_malformed_challenges() -> None:
    empty = Response(401, headers=[("WWW-Authenticate", "")])
    assert reason_of(lambda: empty.www_authenticate) == "bad-www-authenticate"
    bad = Response(407, headers=[("Proxy-Authenticate", "Digest realm")])
    assert reason_of(lambda: bad.proxy_authenticate) == "bad-proxy-authenticate"


def test_challenge_with_unterminated_quote() -> None:
    m = Response(401, headers=[("WWW-Authenticate", 'Digest realm="a, nonce=1')])
    assert reason_of(lambda: m.www_authenticate) == "unterminated-quote"


# ------------------------------------------------------------------ validate
@pytest.mark.parametrize(
    "name", ["Call-ID", "CSeq", "From", "To", "Expires", "Event", "SIP-If-Match"]
)
def test_single_value_fields_may_not_repeat(name: str) -> None:
    # RFC 3261 §7.3.1: only list fields may repeat; RFC 4475 §3.3.8
    value = dict(MANDATORY).get(name, "1" if name == "Expires" else "x")
    m = request((name, value), (name, value))
    assert reason_of(m.validate) == f"duplicate-{name.lower()}"


def test_validate_checks_the_request_uri() -> None:
    m = Request("SUBSCRIBE", "sip:bob@example.com:99999", MANDATORY)
    assert reason_of(m.validate) == "bad-uri"


def test_validate_checks_the_cseq_method() -> None:
    m = Request("NOTIFY", "sip:bob@example.com", MANDATORY)
    assert reason_of(m.validate) == "cseq-method-mismatch"


def test_accessors_cache_their_parse() -> None:
    m = request()
    assert m.from_ is m.from_
    assert m.vias is m.vias
