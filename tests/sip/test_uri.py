"""SIP and SIPS URIs: RFC 3261 §19.1 syntax and §19.1.4 comparison."""

from __future__ import annotations

import pytest

from pua.errors import SipParseError
from pua.sip import AbsoluteUri, SipUri, parse_sip_uri, parse_uri


# ------------------------------------------------------------------- parsing
def test_user_and_host() -> None:
    uri = parse_sip_uri("sip:alice@atlanta.com")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sip",
        "alice",
        None,
        "atlanta.com",
        None,
    )


def test_user_password_and_port() -> None:
    # RFC 3261 §19.1.1: userinfo = user [ ":" password ] "@"
    uri = parse_sip_uri("sip:alice:secretword@atlanta.com:5070")
    assert (uri.user, uri.password, uri.port) == ("alice", "secretword", 5070)


def test_sips_scheme_is_secure() -> None:
    uri = parse_sip_uri("sips:alice@atlanta.com")
    assert uri.scheme == "sips"
    assert uri.secure


def test_scheme_is_case_insensitive() -> None:
    assert parse_sip_uri("SIP:alice@atlanta.com").scheme == "sip"


def test_host_only() -> None:
    uri = parse_sip_uri("sip:registrar.biloxi.com")
    assert (uri.user, uri.host) == (None, "registrar.biloxi.com")


def test_ipv4_host() -> None:
    uri = parse_sip_uri("sip:alice@192.0.2.4:5060")
    assert (uri.host, uri.port, uri.host_is_ip) == ("192.0.2.4", 5060, True)


def test_ipv6_reference_with_port() -> None:
    # RFC 3261 §19.1.1: IPv6reference = "[" IPv6address "]"
    uri = parse_sip_uri("sip:alice@[2001:db8::10]:5070")
    assert (uri.host, uri.bare_host, uri.port) == ("[2001:db8::10]", "2001:db8::10", 5070)
    assert uri.host_is_ip


def test_ipv6_reference_without_port() -> None:
    uri = parse_sip_uri("sips:[2001:db8::10];transport=tls")
    assert (uri.host, uri.port, uri.transport) == ("[2001:db8::10]", None, "tls")


def test_hostname_is_not_an_ip() -> None:
    assert not parse_sip_uri("sip:atlanta.com").host_is_ip


def test_uri_parameters_in_order_with_lower_case_names() -> None:
    uri = parse_sip_uri("sip:alice@atlanta.com;Transport=TCP;lr;maddr=239.255.255.1")
    assert uri.params == (("transport", "TCP"), ("lr", None), ("maddr", "239.255.255.1"))
    assert uri.transport == "tcp"
    assert uri.lr
    assert uri.maddr == "239.255.255.1"
    assert uri.param("TRANSPORT") == "TCP"
    assert uri.has_param("lr")


def test_uri_headers() -> None:
    # RFC 3261 §19.1.1: headers = "?" header *( "&" header )
    uri = parse_sip_uri("sip:alice@atlanta.com?subject=project%20x&priority=urgent")
    assert uri.headers == (("subject", "project%20x"), ("priority", "urgent"))


def test_user_part_may_hold_user_unreserved_characters() -> None:
    # RFC 3261 §25.1: user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
    uri = parse_sip_uri("sip:+1-212-555-1212;phone-context=x&y=z?,/@gw.example.com")
    assert uri.user == "+1-212-555-1212;phone-context=x&y=z?,/"
    assert uri.params == ()


def test_str_gives_back_the_parsed_text() -> None:
    text = "sip:Alice@AtLanTa.com;Transport=TCP?Subject=x"
    assert str(parse_sip_uri(text)) == text


def test_built_uri_serialises_every_part() -> None:
    uri = SipUri(
        "sips", "bob", "pw", "[2001:db8::1]", 5061, (("lr", None), ("x", "1")), (("h", "v"),)
    )
    assert str(uri) == "sips:bob:pw@[2001:db8::1]:5061;lr;x=1?h=v"
    assert parse_sip_uri(str(uri)) == uri


def test_with_params_replaces_and_appends() -> None:
    uri = parse_sip_uri("sip:alice@atlanta.com;transport=udp;lr")
    assert str(uri.with_params(transport="tcp", ob=None)) == (
        "sip:alice@atlanta.com;lr;transport=tcp;ob"
    )


def test_without_params_and_headers() -> None:
    uri = parse_sip_uri("sip:alice@atlanta.com;lr;ttl=1?subject=x")
    assert str(uri.without_params("LR").without_headers()) == "sip:alice@atlanta.com;ttl=1"


def test_parse_uri_gives_sip_uris_for_sip_and_sips() -> None:
    assert isinstance(parse_uri("sips:alice@atlanta.com"), SipUri)


@pytest.mark.parametrize("text", ["tel:+1-201-555-0123", "http://example.com/x", "urn:a:b"])
def test_other_schemes_are_kept_as_text(text: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, AbsoluteUri)
    assert str(uri) == text
    assert uri.scheme == text.partition(":")[0]


def test_absolute_uri_scheme_compares_case_insensitively() -> None:
    upper, lower, other = (parse_uri(t) for t in ("TEL:+1555", "tel:+1555", "tel:+1556"))
    assert isinstance(upper, AbsoluteUri)
    assert upper.equivalent(lower)
    assert not upper.equivalent(other)


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@atlanta.com",
        "sip:alice@",
        "sip:alice@atlanta.com:",
        "sip:alice@atlanta.com:port",
        "sip:alice@atlanta.com:65536",
        "sip:alice@atlanta.com:\u0665",
        "sip:alice@[2001:db8::1",
        "sip:alice@[2001:db8::zz]",
        "sip:alice@[2001:db8::1]x",
        "sip:alice@256.1.1.1",
        "sip:alice@-atlanta.com",
        "sip:alice@atl anta.com",
        "sip:al ice@atlanta.com",
        "sip:alice@atlanta.com;",
        "sip:alice@atlanta.com;;lr",
        "sip:alice@atlanta.com;=x",
        "sip:alice@atlanta.com;a=b c",
        "sip:alice@atlanta.com?",
        "sip:alice@atlanta.com?novalue",
        "sip:alice@atlanta.com?a=<b>",
        "sip:a@b@atlanta.com",
        "sip:alice:pa@ss@atlanta.com",
        "sip:alice%zz@atlanta.com",
        "sip:\u00e9@atlanta.com",
        "http://example.com",
    ],
)
def test_malformed_sip_uri_is_rejected(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_sip_uri(text)
    assert (info.value.reason, info.value.status) == ("bad-uri", 400)


@pytest.mark.parametrize("text", ["", "alice", ":x", "1sip:x", "tel:", "tel:a b", "x:<y>"])
def test_malformed_absolute_uri_is_rejected(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.reason == "bad-uri"


# ------------------------------------------------------- §19.1.4 comparison
#: RFC 3261 §19.1.4: "The URIs within each of the following sets are
#: equivalent"
EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
]

#: RFC 3261 §19.1.4: "The URIs within each of the following sets are not
#: equivalent"
NOT_EQUIVALENT = [
    # different usernames
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    # can resolve to different ports
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    # can resolve to different transports
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    # can resolve to different port and transports
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    # different header component
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    # even though that's what phone21.boxesbybob.com resolves to
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    # "equality is not transitive"
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_rfc3261_equivalent_uris_compare_equal_both_ways(a: str, b: str) -> None:
    first, second = parse_sip_uri(a), parse_sip_uri(b)
    assert first.equivalent(second)
    assert second.equivalent(first)


@pytest.mark.parametrize(("a", "b"), NOT_EQUIVALENT)
def test_rfc3261_non_equivalent_uris_differ_both_ways(a: str, b: str) -> None:
    first, second = parse_sip_uri(a), parse_sip_uri(b)
    assert not first.equivalent(second)
    assert not second.equivalent(first)


def test_sip_and_sips_are_never_equivalent() -> None:
    # RFC 3261 §19.1.4: "A SIP and SIPS URI are never equivalent"
    assert not parse_sip_uri("sip:a@b").equivalent(parse_sip_uri("sips:a@b"))


def test_password_is_compared() -> None:
    assert not parse_sip_uri("sip:a:x@b").equivalent(parse_sip_uri("sip:a:y@b"))
    assert not parse_sip_uri("sip:a:x@b").equivalent(parse_sip_uri("sip:a@b"))


@pytest.mark.parametrize("name", ["user", "ttl", "method", "maddr", "transport"])
def test_parameter_present_in_only_one_uri_matters_for_some_names(name: str) -> None:
    # RFC 3261 §19.1.4: user, ttl, method, maddr and transport
    assert not parse_sip_uri("sip:a@b").equivalent(parse_sip_uri(f"sip:a@b;{name}=x"))


def test_escaped_parameter_names_compare_unescaped() -> None:
    # "%6C%72" is "lr": characters outside the reserved set equal their escapes
    assert parse_sip_uri("sip:a@b;%6C%72;maddr=x").equivalent(parse_sip_uri("sip:a@b;lr;maddr=x"))


def test_reserved_characters_do_not_equal_their_escapes() -> None:
    # RFC 3261 §19.1.4: only characters outside "reserved" are equivalent
    assert not parse_sip_uri("sip:a%3Bb@c").equivalent(parse_sip_uri("sip:a;b@c"))


def test_escapes_compare_case_insensitively() -> None:
    assert parse_sip_uri("sip:a%3bb@c").equivalent(parse_sip_uri("sip:a%3Bb@c"))


def test_structural_equality_is_not_equivalence() -> None:
    # == compares the parsed parts as written; equivalent() applies §19.1.4
    first, second = EQUIVALENT[0]
    assert parse_sip_uri(first) != parse_sip_uri(second)
