"""The hardened XML parser and writer every event body goes through."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from pua.errors import PuaError
from pua.evpkg.xml import (
    XML_DECLARATION,
    XmlBodyError,
    check_xml_text,
    find_attribute,
    find_first,
    parse_xml,
    serialize_xml,
)

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@example.com">&lol9;</presence>"""


def reason_of(body: str | bytes) -> str:
    with pytest.raises(XmlBodyError) as info:
        parse_xml(body)
    return info.value.reason


def secret_file(tmp_path: Path) -> tuple[Path, str]:
    marker = "SECRET-7f3a9c-NEVER-LEAK"
    path = tmp_path / "secret.txt"
    path.write_text(marker)
    return path, marker


# ------------------------------------------------------------- DOCTYPE refused
@pytest.mark.parametrize("body", [BILLION_LAUGHS, BILLION_LAUGHS.encode()])
def test_billion_laughs_refused(body: str | bytes) -> None:
    assert reason_of(body) == "doctype-forbidden"


def test_external_entity_etc_passwd_refused_and_never_read() -> None:
    body = (
        '<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><p>&xxe;</p>'
    )
    with pytest.raises(XmlBodyError) as info:
        parse_xml(body)
    assert info.value.reason == "doctype-forbidden"
    assert "root:" not in str(info.value)
    assert "root:" not in info.value.detail


def test_external_entity_file_content_never_appears(tmp_path: Path) -> None:
    path, marker = secret_file(tmp_path)
    body = f'<!DOCTYPE p [<!ENTITY xxe SYSTEM "{path.as_uri()}">]><p>&xxe;</p>'
    with pytest.raises(XmlBodyError) as info:
        parse_xml(body)
    assert info.value.reason == "doctype-forbidden"
    assert marker not in str(info.value)


def test_external_parameter_entity_refused(tmp_path: Path) -> None:
    path, marker = secret_file(tmp_path)
    dtd = tmp_path / "evil.dtd"
    dtd.write_text(f'<!ENTITY leak SYSTEM "{path.as_uri()}">')
    body = f'<!DOCTYPE p [<!ENTITY % ext SYSTEM "{dtd.as_uri()}"> %ext;]><p>&leak;</p>'
    with pytest.raises(XmlBodyError) as info:
        parse_xml(body)
    assert info.value.reason == "doctype-forbidden"
    assert marker not in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        '<!DOCTYPE p SYSTEM "http://example.com/p.dtd"><p/>',
        "<!DOCTYPE p><p/>",
        '<?xml version="1.0"?>\n<!-- a comment --> <?pi data?>\n<!DOCTYPE p><p/>',
        # not well-formed after the DOCTYPE: still named for the DOCTYPE
        '<!DOCTYPE p [<!ENTITY e "x">]><p>&e;',
    ],
)
def test_any_doctype_refused(body: str) -> None:
    assert reason_of(body) == "doctype-forbidden"


def test_doctype_in_utf16_caught_after_parsing() -> None:
    # The prolog scan reads ASCII-compatible bytes only; the parsed
    # document's DOCTYPE is what catches this one.
    body = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE p><p/>'.encode("utf-16")
    assert reason_of(body) == "doctype-forbidden"


def test_doctype_text_inside_the_document_is_not_a_doctype() -> None:
    root = parse_xml("<p><![CDATA[<!DOCTYPE y>]]><!-- <!DOCTYPE x> --></p>")
    assert root.text == "<!DOCTYPE y>"
    assert root[0].text == " <!DOCTYPE x> "


# ----------------------------------------------------------- not well-formed
@pytest.mark.parametrize(
    "body",
    [b"", "", "   ", "not xml at all", "<a>", "<a></b>", "<a><b></a></b>", "<a>&undefined;</a>"],
)
def test_not_well_formed_refused(body: str | bytes) -> None:
    assert reason_of(body) == "not-xml"


def test_excessive_depth_refused() -> None:
    # huge_tree=False keeps libxml2's nesting limit (256 levels).
    depth = 10_000
    assert reason_of("<a>" * depth + "</a>" * depth) == "not-xml"
    assert parse_xml("<a>" * 100 + "</a>" * 100).tag == "a"


def test_lone_surrogate_refused() -> None:
    assert reason_of("<a>\ud800</a>") == "not-xml"


def test_error_is_a_pua_error_with_reason_and_detail() -> None:
    with pytest.raises(PuaError) as info:
        parse_xml("<a>")
    assert isinstance(info.value, XmlBodyError)
    assert info.value.reason == "not-xml"
    assert info.value.detail
    assert str(info.value).startswith("not-xml: ")


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_any_input_parses_or_raises_xml_body_error(body: str | bytes) -> None:
    reason: str | None = None
    try:
        root = parse_xml(body)
    except XmlBodyError as exc:
        reason = exc.reason
    else:
        assert isinstance(root.tag, str)
    assert reason in {None, "not-xml", "doctype-forbidden"}


# ------------------------------------------------------------------ encodings
def test_str_with_foreign_encoding_declaration_is_read_as_text() -> None:
    body = '<?xml version="1.0" encoding="ISO-8859-1"?><note>caf\u00e9</note>'
    assert parse_xml(body).text == "caf\u00e9"


def test_str_with_utf8_declaration_and_bom() -> None:
    body = "\ufeff<?xml version='1.0' encoding='UTF-8' standalone='yes'?><n>\u00e9</n>"
    assert parse_xml(body).text == "\u00e9"


def test_bytes_follow_their_declared_encoding() -> None:
    body = '<?xml version="1.0" encoding="ISO-8859-1"?><n>caf\u00e9</n>'.encode("latin-1")
    assert parse_xml(body).text == "caf\u00e9"


# -------------------------------------------------------------- serialization
def test_serialize_keeps_the_document_as_written() -> None:
    doc = (
        '<!-- before --><p:presence xmlns:p="urn:ietf:params:xml:ns:pidf" entity="sip:a@b">\n'
        '    <p:tuple id="t1">  <p:status><p:basic>open</p:basic></p:status></p:tuple>\n'
        "  <!-- inside --></p:presence>"
    )
    assert serialize_xml(parse_xml(doc)) == f"{XML_DECLARATION}\n{doc}"


def test_serialize_starts_with_the_utf8_declaration() -> None:
    text = serialize_xml(parse_xml("<?xml version='1.0' encoding='ISO-8859-1'?><a>\u00e9</a>"))
    first, _, rest = text.partition("\n")
    assert first == '<?xml version="1.0" encoding="UTF-8"?>'
    assert rest == "<a>\u00e9</a>"
    assert parse_xml(text.encode("utf-8")).text == "\u00e9"


def test_namespace_prefixes_preserved() -> None:
    doc = (
        '<pidf:presence xmlns:pidf="urn:ietf:params:xml:ns:pidf" '
        'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:a@b">'
        '<pidf:tuple id="x"/><dm:person id="p"/></pidf:presence>'
    )
    out = serialize_xml(parse_xml(doc))
    assert "<pidf:tuple " in out
    assert "<dm:person " in out
    assert "xmlns=" not in out


def test_serialize_an_inner_element_alone() -> None:
    root = parse_xml("<a><b>x</b>tail</a>")
    assert serialize_xml(root[0]) == f"{XML_DECLARATION}\n<b>x</b>"


# ------------------------------------------------------------------ find_first
DOC = (
    '<r xmlns="urn:x" xmlns:o="urn:other">'
    "<!-- tuple -->"
    "<?tuple pi?>"
    '<a><o:TUPLE n="1"><tuple n="2"/></o:TUPLE></a>'
    '<tuple n="3"/>'
    "</r>"
)


def test_find_first_is_preorder_case_insensitive_any_namespace() -> None:
    found = find_first(parse_xml(DOC), "tuple")
    assert found is not None
    assert found.get("n") == "1"
    assert etree.QName(found).namespace == "urn:other"


def test_find_first_matches_the_root_and_reports_absence() -> None:
    root = parse_xml(DOC)
    assert find_first(root, "R") is root
    assert find_first(root, "person") is None


def test_find_first_no_namespace() -> None:
    found = find_first(parse_xml("<a><Tuple/></a>"), "tuple")
    assert found is not None
    assert found.tag == "Tuple"


def test_find_attribute_ignores_case_but_not_namespace() -> None:
    root = parse_xml('<t xmlns:x="urn:x" x:id="ns" ID="plain"/>')
    assert find_attribute(root, "id") == "ID"
    assert find_attribute(parse_xml('<t xmlns:x="urn:x" x:id="ns"/>'), "id") is None


# ------------------------------------------------------------- check_xml_text
def test_check_xml_text_names_the_field() -> None:
    assert check_xml_text("note", "ok <&> \t\n") == "ok <&> \t\n"
    with pytest.raises(ValueError, match=r"^note: character U\+0001"):
        check_xml_text("note", "bad \x01")
    with pytest.raises(ValueError, match=r"^display: character U\+FFFE"):
        check_xml_text("display", "\ufffe")
