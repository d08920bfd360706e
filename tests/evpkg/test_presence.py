"""PIDF bodies (RFC 3863, RFC 4479): tuple and person ids, and the builder."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from pua.evpkg import BodyContext, ProcessedBody, XmlBodyError, parse_xml
from pua.evpkg.presence import DATA_MODEL_NS, PIDF_NS, pidf_document, process_pidf

PIDF = f"{{{PIDF_NS}}}"
DM = f"{{{DATA_MODEL_NS}}}"


def doc(tuple_attrs: str = "", person: str = "") -> str:
    return (
        f'<presence xmlns="{PIDF_NS}" xmlns:dm="{DATA_MODEL_NS}" entity="sip:alice@example.com">'
        f"<tuple{tuple_attrs}><status><basic>open</basic></status></tuple>{person}</presence>"
    )


class Ids:
    """A new_id that counts its calls."""

    def __init__(self, *values: str) -> None:
        self.values = list(values)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self.values.pop(0)


def never() -> str:
    raise AssertionError("new_id must not be called")


def run(body: str, tuple_id: str | None, new_id: Callable[[], str] = never) -> ProcessedBody:
    return process_pidf(BodyContext(body=body, version=1, tuple_id=tuple_id, new_id=new_id))


def tuple_id_in(body: str) -> str | None:
    found = parse_xml(body).find(f"{PIDF}tuple")
    assert found is not None
    value: str | None = found.get("id")
    return value


def person_id_in(body: str) -> str | None:
    found = parse_xml(body).find(f"{DM}person")
    assert found is not None
    value: str | None = found.get("id")
    return value


# ------------------------------------------------------------------ tuple ids
def test_new_publication_without_id_gets_a_generated_one() -> None:
    ids = Ids("gen-1")
    result = run(doc(), None, ids)
    assert ids.calls == 1
    assert result.tuple_id == "gen-1"
    assert tuple_id_in(result.body) == "gen-1"


def test_body_without_id_gets_the_stored_one() -> None:
    result = run(doc(), "stored-9")
    assert result.tuple_id == "stored-9"
    assert tuple_id_in(result.body) == "stored-9"


def test_empty_stored_id_counts_as_none() -> None:
    assert run(doc(), "", Ids("gen-2")).tuple_id == "gen-2"
    assert run(doc(' id="body-id"'), "").tuple_id == "body-id"


def test_body_id_adopted_when_nothing_stored() -> None:
    result = run(doc(' id="body-id"'), None)
    assert result.tuple_id == "body-id"
    assert tuple_id_in(result.body) == "body-id"


def test_stored_id_never_replaced_and_body_id_kept() -> None:
    result = run(doc(' id="body-id"'), "stored-9")
    assert result.tuple_id == "stored-9"
    assert tuple_id_in(result.body) == "body-id"


def test_id_of_49_characters_adopted() -> None:
    assert run(doc(f' id="{"a" * 49}"'), None).tuple_id == "a" * 49


@pytest.mark.parametrize("value", ["a" * 50, "b" * 200, ""])
def test_unusable_body_id_refused(value: str) -> None:
    with pytest.raises(XmlBodyError) as info:
        run(doc(f' id="{value}"'), None)
    assert info.value.reason == "bad-attribute"


def test_case_insensitive_tuple_and_id() -> None:
    body = f'<presence xmlns="{PIDF_NS}" entity="sip:a@b"><TUPLE ID="upper"/></presence>'
    result = run(body, None)
    assert result.tuple_id == "upper"
    tuple_el = parse_xml(result.body)[0]
    assert dict(tuple_el.attrib) == {"ID": "upper"}


def test_namespaced_id_attribute_is_not_the_id() -> None:
    body = f'<presence xmlns="{PIDF_NS}" xmlns:x="urn:x" entity="e"><tuple x:id="ns"/></presence>'
    result = run(body, None, Ids("gen-3"))
    assert result.tuple_id == "gen-3"
    tuple_el = parse_xml(result.body)[0]
    assert tuple_el.get("id") == "gen-3"
    assert tuple_el.get("{urn:x}id") == "ns"


def test_only_the_first_tuple_is_touched() -> None:
    body = f'<presence xmlns="{PIDF_NS}" entity="e"><tuple id="one"/><tuple/></presence>'
    result = run(body, None)
    second = parse_xml(result.body)[1]
    assert second.get("id") is None


def test_missing_tuple_refused() -> None:
    body = f'<presence xmlns="{PIDF_NS}" entity="sip:a@b"><note>hi</note></presence>'
    with pytest.raises(XmlBodyError) as info:
        run(body, None)
    assert info.value.reason == "missing-element"
    assert "<tuple>" in info.value.detail


def test_doctype_refused() -> None:
    with pytest.raises(XmlBodyError) as info:
        run("<!DOCTYPE presence>" + doc(), None)
    assert info.value.reason == "doctype-forbidden"


def test_prefixes_and_layout_preserved() -> None:
    body = (
        f'<p:presence xmlns:p="{PIDF_NS}" entity="sip:a@b">\n'
        "  <p:tuple>\n    <p:status><p:basic>closed</p:basic></p:status>\n  </p:tuple>\n"
        "</p:presence>"
    )
    result = run(body, "t")
    expected = body.replace("<p:tuple>", '<p:tuple id="t">')
    assert result.body == f'<?xml version="1.0" encoding="UTF-8"?>\n{expected}'


# ------------------------------------------------------------------- person id
def test_person_without_id_gets_the_generated_tuple_id() -> None:
    result = run(doc(person="<dm:person/>"), None, Ids("gen-4"))
    assert person_id_in(result.body) == "gen-4"


def test_person_without_id_gets_the_body_tuple_id_not_the_stored_one() -> None:
    result = run(doc(' id="body-id"', person="<dm:person/>"), "stored")
    assert person_id_in(result.body) == "body-id"
    assert result.tuple_id == "stored"


def test_person_with_id_untouched() -> None:
    result = run(doc(person='<dm:person id="p1"/>'), None, Ids("gen-5"))
    assert person_id_in(result.body) == "p1"


# --------------------------------------------------------------------- builder
def test_builder_values_and_order() -> None:
    text = pidf_document(
        "sip:alice@example.com",
        "closed",
        note="Away",
        tuple_id="t1",
        contact="sip:alice@192.0.2.1",
    )
    root = parse_xml(text)
    assert root.tag == f"{PIDF}presence"
    assert root.get("entity") == "sip:alice@example.com"
    (tuple_el,) = root
    assert tuple_el.get("id") == "t1"
    assert [child.tag for child in tuple_el] == [f"{PIDF}status", f"{PIDF}contact", f"{PIDF}note"]
    assert tuple_el.findtext(f"{PIDF}status/{PIDF}basic") == "closed"
    assert tuple_el.findtext(f"{PIDF}contact") == "sip:alice@192.0.2.1"
    assert tuple_el.findtext(f"{PIDF}note") == "Away"
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="')


def test_builder_minimal_has_no_id_and_the_processor_adds_it() -> None:
    text = pidf_document("sip:alice@example.com")
    assert tuple_id_in(text) is None
    assert parse_xml(text).findtext(f"{PIDF}tuple/{PIDF}status/{PIDF}basic") == "open"
    assert parse_xml(text).find(f"{PIDF}tuple/{PIDF}note") is None
    result = run(text, "kept")
    assert tuple_id_in(result.body) == "kept"


def test_builder_person() -> None:
    text = pidf_document("sip:a@example.com", person_id="p7")
    root = parse_xml(text)
    assert [child.tag for child in root] == [f"{PIDF}tuple", f"{DM}person"]
    assert root[1].get("id") == "p7"
    assert etree.QName(root[1]).namespace == DATA_MODEL_NS


def test_builder_escapes_special_characters() -> None:
    text = pidf_document('sip:a@example.com;x="<&>"', note="<&> ]]> \"'")
    assert "&lt;&amp;&gt;" in text
    root = parse_xml(text)
    assert root.get("entity") == 'sip:a@example.com;x="<&>"'
    assert root.findtext(f"{PIDF}tuple/{PIDF}note") == "<&> ]]> \"'"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"entity": ""}, "entity"),
        ({"entity": "sip:a@b", "basic": "busy"}, "basic"),
        ({"entity": "sip:a@b", "basic": "Open"}, "basic"),
        ({"entity": "sip:a@b", "note": "bell \x07"}, "note"),
        ({"entity": "sip:a@b", "tuple_id": ""}, "tuple_id"),
        ({"entity": "sip:a@b", "tuple_id": "x" * 50}, "tuple_id"),
        ({"entity": "sip:a@b", "tuple_id": "a b"}, "tuple_id"),
        ({"entity": "sip:a@b", "contact": ""}, "contact"),
        ({"entity": "sip:a@b", "person_id": ""}, "person_id"),
    ],
)
def test_builder_refuses(kwargs: dict[str, str], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        pidf_document(**kwargs)


XML_TEXT = st.text(
    alphabet=st.characters(
        codec="utf-8",
        exclude_characters="\ufffe\uffff",
        min_codepoint=0x20,
    )
    | st.sampled_from("\t\n\r")
)


@given(note=XML_TEXT)
def test_any_note_round_trips(note: str) -> None:
    text = pidf_document("sip:alice@example.com", note=note)
    assert (parse_xml(text).findtext(f"{PIDF}tuple/{PIDF}note") or "") == note
    assert (parse_xml(text.encode("utf-8")).findtext(f"{PIDF}tuple/{PIDF}note") or "") == note


def test_body_needing_no_change_goes_out_as_it_came() -> None:
    body = (
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b">\n'
        '  <tuple id="x1"/>\n</presence>'
    )
    assert run(body, None).body is body


def test_body_declaring_another_encoding_is_rewritten_as_utf8() -> None:
    body = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b">'
        '<tuple id="x1"><note>caf\u00e9</note></tuple></presence>'
    )
    out = run(body, None).body
    assert "ISO-8859-1" not in out
    assert out.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert parse_xml(out.encode()).findtext(f".//{{{PIDF_NS}}}note") == "caf\u00e9"


def test_person_before_tuple_is_found_too() -> None:
    body = (
        f'<presence xmlns="{PIDF_NS}" xmlns:dm="{DATA_MODEL_NS}" entity="sip:a@b">'
        '<dm:person/><tuple id="x1"/></presence>'
    )
    out = run(body, None)
    assert out.tuple_id == "x1"
    assert person_id_in(out.body) == "x1"
