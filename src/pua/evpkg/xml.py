"""Hardened XML parsing and serialization for event bodies.

Every XML body pua reads (a caller's PIDF, dialog-info or reginfo document)
goes through the one parser here.  The bodies come from applications that
may relay them from the network, so the parser never resolves entities,
never loads a DTD and never touches the network, and a document that has a
DOCTYPE at all is refused: none of the event packages pua publishes (RFC
3863, RFC 4235, RFC 3680) uses one, and refusing it outright closes the
entity-expansion ("billion laughs") and external-entity (XXE) attacks
without relying on any parser flag.

Serialization keeps the caller's document as it is (namespace prefixes,
comments, white space): unlike Kamailio, which re-indents every body it
touches, pua only changes the attributes it has to.
"""

from __future__ import annotations

import re
from typing import Final

from lxml import etree

from pua.errors import PuaError

__all__ = [
    "XML_DECLARATION",
    "XmlBodyError",
    "check_xml_text",
    "find_attribute",
    "find_first",
    "is_utf8_text",
    "local_name_of",
    "parse_xml",
    "serialize_xml",
]

#: The declaration :func:`serialize_xml` writes before every document.
XML_DECLARATION: Final = '<?xml version="1.0" encoding="UTF-8"?>'


class XmlBodyError(PuaError):
    """A body is not an XML document pua accepts.

    ``reason`` is a stable, machine-readable token that never changes
    between releases: ``"not-xml"`` (not well-formed, or not encodable),
    ``"doctype-forbidden"`` (the document has a DOCTYPE),
    ``"missing-element"`` (an element the event package needs is absent),
    ``"bad-attribute"`` (an attribute has a value pua cannot use).
    ``detail`` is free text for humans.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


# One parser for every body.  resolve_entities=False keeps entity references
# as references (lxml's default, "internal", would expand internal ones);
# load_dtd/no_network keep libxml2 from reading any external subset;
# huge_tree=False keeps libxml2's depth and text-size limits.  Blank text is
# kept: the caller's document is re-serialized as it came.  lxml documents a
# parser as safe (if not optimal) to share between threads.
_PARSER: Final = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    attribute_defaults=False,
    huge_tree=False,
    remove_blank_text=False,
    decompress=False,
)

# XML 1.0 §2.8: the declaration of a document given as ``str``.  Its
# encoding pseudo-attribute describes bytes that no longer exist (the text
# was decoded already), so it is dropped before the text is encoded as
# UTF-8; otherwise libxml2 would decode the UTF-8 as the declared encoding.
_STR_DECLARATION: Final = re.compile(
    r"""\A<\?xml(?P<version>\s+version\s*=\s*(?:"[^"<>]*"|'[^'<>]*'))"""
    r"""(?P<encoding>\s+encoding\s*=\s*(?:"[^"<>]*"|'[^'<>]*'))?"""
    r"""(?P<rest>(?:\s+standalone\s*=\s*(?:"[^"<>]*"|'[^'<>]*'))?\s*\?>)"""
)

# XML 1.0 §2.2 Char: what a text node or attribute value may hold.
_NOT_XML_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_UTF8_BOM: Final = b"\xef\xbb\xbf"
_SPACE: Final = b" \t\r\n"


def _str_to_bytes(body: str) -> bytes:
    text = body.removeprefix("\ufeff")
    match = _STR_DECLARATION.match(text)
    if match is not None and match.group("encoding"):
        text = f"<?xml{match.group('version')}{match.group('rest')}{text[match.end() :]}"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise XmlBodyError("not-xml", f"body is not encodable as UTF-8: {exc.reason}") from None


def _prolog_has_doctype(data: bytes) -> bool:
    """Whether an ASCII-compatible document declares a DOCTYPE.

    XML 1.0 §2.8: a doctypedecl can only stand in the prolog, after the
    declaration, comments, processing instructions and white space, before
    the root element.  Scanning just that part spots it before libxml2 reads
    the internal subset, without false alarms on ``<!DOCTYPE`` inside a
    comment or CDATA section.  Documents in other encodings (UTF-16) are
    caught after parsing by :func:`parse_xml`.
    """
    pos = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    end = len(data)
    while pos < end:
        if data[pos] in _SPACE:
            pos += 1
        elif data.startswith(b"<!--", pos):
            close = data.find(b"-->", pos + 4)
            if close < 0:
                return False
            pos = close + 3
        elif data.startswith(b"<?", pos):
            close = data.find(b"?>", pos + 2)
            if close < 0:
                return False
            pos = close + 2
        else:
            return data.startswith(b"<!DOCTYPE", pos)
    return False


def parse_xml(body: str | bytes) -> etree._Element:
    """Parse a body with the hardened parser and return its root element.

    ``bytes`` are decoded as the document declares (UTF-8 by default);
    ``str`` is taken as already decoded.  Raises :class:`XmlBodyError` with
    ``"doctype-forbidden"`` for any document with a DOCTYPE and
    ``"not-xml"`` for anything not well-formed.
    """
    data = _str_to_bytes(body) if isinstance(body, str) else body
    if _prolog_has_doctype(data):
        raise XmlBodyError("doctype-forbidden", "a DOCTYPE is not allowed in an event body")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise XmlBodyError("not-xml", str(exc)) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlBodyError("doctype-forbidden", "a DOCTYPE is not allowed in an event body")
    return root


def serialize_xml(root: etree._Element) -> str:
    """The document as text: :data:`XML_DECLARATION`, a newline, then the
    document exactly as the tree holds it (not re-indented).

    For the root of a document, comments and processing instructions
    around it are kept; any other element is written alone.  The text is
    meant to be sent encoded as UTF-8, as the declaration says.
    """
    node = root.getroottree() if root.getparent() is None else root
    text: str = etree.tostring(node, encoding="unicode", with_tail=False)
    return f"{XML_DECLARATION}\n{text}"


def local_name_of(tag: str) -> str:
    """An element's name without its namespace (lxml spells a namespaced
    name ``{namespace}local``)."""
    return tag.rpartition("}")[2]


def is_utf8_text(body: str) -> bool:
    """Whether ``body``, encoded as UTF-8, says so: it has no XML
    declaration, or one without an encoding, or one naming UTF-8."""
    match = _STR_DECLARATION.match(body.removeprefix("\ufeff"))
    if match is None or not match.group("encoding"):
        return True
    return "utf-8" in match.group("encoding").lower()


def find_first(root: etree._Element, local_name: str) -> etree._Element | None:
    """The first element, in document order (depth-first, pre-order, the
    root included), whose local name equals ``local_name`` ignoring ASCII
    case, in any namespace or none.

    This is how Kamailio looks elements up in PIDF and dialog-info bodies,
    and what callers relying on it expect: ``<tuple>``, ``<pidf:tuple>``
    and ``<TUPLE>`` all match.  Comments and processing instructions are
    skipped.
    """
    wanted = local_name.lower()
    for element in root.iter(etree.Element):
        if local_name_of(element.tag).lower() == wanted:
            return element
    return None


def find_attribute(element: etree._Element, name: str) -> str | None:
    """The key of the first attribute without a namespace whose name equals
    ``name`` ignoring case, or ``None``.

    Unprefixed attributes are in no namespace (Namespaces in XML §6.2), so
    ``pidf:id`` is a different attribute from ``id`` and is not matched.
    """
    wanted = name.lower()
    for key in element.attrib:
        if not key.startswith("{") and key.lower() == wanted:
            found: str = key
            return found
    return None


def check_xml_text(field: str, value: str) -> str:
    """``value`` if XML can carry it as text or an attribute value, else
    ``ValueError`` naming ``field`` (XML 1.0 §2.2 excludes most control
    characters, U+FFFE, U+FFFF and lone surrogates)."""
    bad = _NOT_XML_CHAR.search(value)
    if bad is not None:
        raise ValueError(f"{field}: character U+{ord(bad.group()):04X} cannot appear in XML")
    return value
