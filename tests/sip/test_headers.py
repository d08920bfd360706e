"""Headers: ordered fields with case- and compact-form-insensitive lookup
(RFC 3261 §7.3), and the typed views cached on them."""

from __future__ import annotations

import pytest

from pua.sip import Headers, Request, header_key, parse_message
from pua.sip.headers import COMPACT_FORMS

FIELDS = [
    ("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1"),
    ("v", "SIP/2.0/UDP b.example.com;branch=z9hG4bK2, SIP/2.0/UDP c.example.com"),
    ("From", "<sip:alice@example.com>;tag=1"),
    ("To", "<sip:bob@example.com>"),
    ("Call-ID", "abc@example.com"),
    ("CSeq", "1 SUBSCRIBE"),
    ("Contact", "<sip:alice@192.0.2.1>"),
]


def headers() -> Headers:
    return Headers(FIELDS)


# ------------------------------------------------------------------- keys
@pytest.mark.parametrize(("compact", "full"), sorted(COMPACT_FORMS.items()))
def test_compact_form_keys_to_the_full_name(compact: str, full: str) -> None:
    assert header_key(compact) == full
    assert header_key(compact.upper()) == full


def test_key_is_the_lower_case_full_name() -> None:
    assert header_key("Call-ID") == "call-id"
    assert header_key("WWW-Authenticate") == "www-authenticate"


# ---------------------------------------------------------------- reading
def test_get_returns_the_first_field() -> None:
    assert headers().get("via") == "SIP/2.0/UDP a.example.com;branch=z9hG4bK1"


def test_get_finds_compact_and_full_names_alike() -> None:
    h = headers()
    assert h.get("i") == h.get("CALL-ID") == "abc@example.com"


def test_get_default_when_absent() -> None:
    assert headers().get("Expires") is None
    assert headers().get("Expires", "3600") == "3600"


def test_get_all_returns_one_value_per_field() -> None:
    assert headers().get_all("Via") == [FIELDS[0][1], FIELDS[1][1]]


def test_get_all_of_absent_name_is_empty() -> None:
    assert headers().get_all("Route") == []


def test_get_list_splits_every_field_on_commas() -> None:
    assert headers().get_list("V") == [
        "SIP/2.0/UDP a.example.com;branch=z9hG4bK1",
        "SIP/2.0/UDP b.example.com;branch=z9hG4bK2",
        "SIP/2.0/UDP c.example.com",
    ]


def test_get_list_keeps_quoted_and_bracketed_commas() -> None:
    h = Headers([("Contact", '"a, b" <sip:x@y;p=1,2>, <sip:z@w>')])
    assert h.get_list("m") == ['"a, b" <sip:x@y;p=1,2>', "<sip:z@w>"]


def test_get_list_drops_empty_elements() -> None:
    # RFC 2616 #rule (used by RFC 3261 §7.3.1): empty elements don't count
    assert Headers([("Allow", "INVITE,, ACK ,")]).get_list("allow") == ["INVITE", "ACK"]


def test_count_contains_len_and_iteration() -> None:
    h = headers()
    assert h.count("VIA") == 2
    assert "t" in h
    assert "Route" not in h
    assert 42 not in h
    assert len(h) == len(FIELDS)
    assert list(h) == FIELDS
    assert h.items() == FIELDS


def test_keys_are_canonical_and_repeat() -> None:
    assert headers().keys()[:3] == ["via", "via", "from"]


def test_names_keep_their_spelling() -> None:
    h = Headers([("cAlL-iD", "x")])
    assert h.items() == [("cAlL-iD", "x")]


def test_equality_ignores_name_spelling_but_not_order() -> None:
    assert Headers([("i", "x"), ("To", "y")]) == Headers([("Call-ID", "x"), ("t", "y")])
    assert Headers([("i", "x"), ("To", "y")]) != Headers([("To", "y"), ("i", "x")])


def test_copy_is_independent() -> None:
    h = headers()
    c = h.copy()
    c.add("Expires", "60")
    assert "Expires" not in h
    assert c != h


# ---------------------------------------------------------------- writing
def test_add_appends() -> None:
    h = headers()
    h.add("Route", "<sip:p1;lr>")
    h.add("route", "<sip:p2;lr>")
    assert h.get_all("Route") == ["<sip:p1;lr>", "<sip:p2;lr>"]
    assert h.items()[-1] == ("route", "<sip:p2;lr>")


def test_prepend_inserts_before_all_others() -> None:
    h = headers()
    h.prepend("Via", "SIP/2.0/TCP new.example.com;branch=z9hG4bK0")
    assert h.items()[0] == ("Via", "SIP/2.0/TCP new.example.com;branch=z9hG4bK0")
    assert h.get("v") == "SIP/2.0/TCP new.example.com;branch=z9hG4bK0"


def test_set_replaces_the_first_in_place_and_drops_the_others() -> None:
    h = headers()
    h.set("VIA", "SIP/2.0/UDP only.example.com")
    assert h.get_all("via") == ["SIP/2.0/UDP only.example.com"]
    assert h.items()[0] == ("Via", "SIP/2.0/UDP only.example.com")


def test_set_appends_when_absent() -> None:
    h = headers()
    h.set("Expires", "60")
    assert h.items()[-1] == ("Expires", "60")


def test_replace_first_keeps_the_others() -> None:
    h = headers()
    h.replace_first("v", "SIP/2.0/UDP z.example.com")
    assert h.get_all("Via") == ["SIP/2.0/UDP z.example.com", FIELDS[1][1]]
    assert h.items()[0] == ("Via", "SIP/2.0/UDP z.example.com")


def test_replace_first_of_absent_name_raises_key_error() -> None:
    with pytest.raises(KeyError):
        headers().replace_first("Route", "x")


def test_remove_drops_every_field_and_counts_them() -> None:
    h = headers()
    assert h.remove("V") == 2
    assert "Via" not in h
    assert h.remove("Via") == 0


def test_remove_first_pops_one_field() -> None:
    h = headers()
    h.remove_first("via")
    assert h.get_all("Via") == [FIELDS[1][1]]


def test_remove_first_of_absent_name_raises_key_error() -> None:
    with pytest.raises(KeyError):
        headers().remove_first("Route")


# ---------------------------------------------------- cached typed views
def message() -> Request:
    return Request("SUBSCRIBE", "sip:bob@example.com", headers())


def test_prepend_invalidates_the_top_via() -> None:
    m = message()
    assert m.top_via.host == "a.example.com"
    m.headers.prepend("Via", "SIP/2.0/TCP new.example.com;branch=z9hG4bK0")
    assert m.top_via.host == "new.example.com"
    assert len(m.vias) == 4


def test_remove_first_invalidates_the_vias() -> None:
    m = message()
    assert len(m.vias) == 3
    m.headers.remove_first("Via")
    assert [v.host for v in m.vias] == ["b.example.com", "c.example.com"]
    assert m.top_via.host == "b.example.com"


def test_set_invalidates_the_cseq() -> None:
    m = message()
    assert m.cseq.seq == 1
    m.headers.set("CSeq", "2 SUBSCRIBE")
    assert m.cseq.seq == 2


def test_replace_first_invalidates_the_call_id() -> None:
    m = message()
    assert m.call_id == "abc@example.com"
    m.headers.replace_first("i", "def@example.com")
    assert m.call_id == "def@example.com"


def test_add_invalidates_the_contacts() -> None:
    m = message()
    assert len(m.contacts) == 1
    m.headers.add("m", "<sip:alice@192.0.2.2>")
    assert [c.uri for c in m.contacts] == ["sip:alice@192.0.2.1", "sip:alice@192.0.2.2"]


def test_remove_invalidates_optional_fields() -> None:
    m = message()
    m.headers.add("Expires", "60")
    assert m.expires == 60
    m.headers.remove("Expires")
    assert m.expires is None


def test_mutating_a_parsed_message_invalidates_the_parser_cache() -> None:
    # the parser seeds the cache with CSeq, Call-ID and the top Via
    m = parse_message(message().to_bytes())
    assert m.top_via.host == "a.example.com"
    m.headers.set("Via", "SIP/2.0/UDP d.example.com;branch=z9hG4bK9")
    m.headers.set("CSeq", "5 SUBSCRIBE")
    m.headers.set("Call-ID", "new")
    assert (m.top_via.host, m.cseq.seq, m.call_id) == ("d.example.com", 5, "new")


def test_serialised_message_reflects_mutations() -> None:
    m = message()
    m.headers.set("To", "<sip:bob@example.com>;tag=t1")
    assert parse_message(m.to_bytes()).to.tag == "t1"
