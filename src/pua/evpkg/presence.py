"""The presence event package: PIDF bodies (RFC 3863, RFC 4479).

:func:`process_pidf` makes a caller's PIDF document fit a publication the
way Kamailio's pua does: the first ``<tuple>`` always carries an ``id``
(the RFC 3863 §4.1 schema makes it mandatory, and the compositor at the presence
server keys on it, so it must stay the same across the refreshes and
modifications of one publication), and the first ``<person>`` (RFC 4479
data-model namespace) gets one too if it has none.

:func:`pidf_document` builds the simple open/closed document a
registrar-driven publisher (``pua_usrloc``) sends.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from pua.evpkg.body import BodyContext, ProcessedBody
from pua.evpkg.xml import (
    XmlBodyError,
    check_xml_text,
    find_attribute,
    is_utf8_text,
    local_name_of,
    parse_xml,
    serialize_xml,
)

__all__ = [
    "DATA_MODEL_NS",
    "MAX_TUPLE_ID_LEN",
    "PIDF_NS",
    "pidf_document",
    "process_pidf",
]

#: RFC 3863 §4.1: the PIDF namespace.
PIDF_NS: Final = "urn:ietf:params:xml:ns:pidf"
#: RFC 4479: the data-model namespace of ``<person>`` and ``<device>``.
DATA_MODEL_NS: Final = "urn:ietf:params:xml:ns:pidf:data-model"
#: Kamailio keeps tuple ids in a 50-byte buffer and refuses longer ones; an
#: id it would refuse is refused here too, so a record stays portable.
MAX_TUPLE_ID_LEN: Final = 50

_BASIC_VALUES: Final = frozenset({"open", "closed"})


def _checked_body_id(value: str) -> str:
    if not value:
        raise XmlBodyError("bad-attribute", "the <tuple> id is empty")
    if len(value) >= MAX_TUPLE_ID_LEN:
        raise XmlBodyError(
            "bad-attribute",
            f"the <tuple> id has {len(value)} characters (at most {MAX_TUPLE_ID_LEN - 1})",
        )
    return value


def process_pidf(ctx: BodyContext) -> ProcessedBody:
    """Give the PIDF body's first tuple (and person) an id.

    - No ``<tuple>`` anywhere: :class:`XmlBodyError` ``"missing-element"``.
    - The tuple has no ``id``: it gets the stored ``ctx.tuple_id``, or a
      fresh ``ctx.new_id()`` for a new publication, which becomes the
      stored one.
    - The tuple has an ``id`` and nothing is stored yet: the body's id is
      adopted (``"bad-attribute"`` if it is empty or 50 characters or more).
    - The tuple has an ``id`` and one is stored: the body is left as it is
      and the stored id is returned unchanged (it is never replaced).

    An empty stored ``tuple_id`` counts as none.  As in Kamailio, element
    names are matched ignoring case in any namespace, and the ``id``
    attribute ignoring case (an unprefixed one: ``x:id`` is another).
    """
    root = parse_xml(ctx.body)
    tuple_el, person = _tuple_and_person(root)
    if tuple_el is None:
        raise XmlBodyError("missing-element", "presence body has no <tuple>")

    changed = False
    stored = ctx.tuple_id or None
    id_key = find_attribute(tuple_el, "id")
    if id_key is None:
        body_id = stored if stored is not None else ctx.new_id()
        tuple_el.set("id", body_id)
        result_id = body_id
        changed = True
    else:
        body_id = tuple_el.get(id_key)
        result_id = stored if stored is not None else _checked_body_id(body_id)

    # RFC 4479: a person is identified by its id like a tuple; the
    # tuple's id is unique in the document and stable, so it serves.
    if person is not None and find_attribute(person, "id") is None:
        person.set("id", body_id)
        changed = True

    if not changed and is_utf8_text(ctx.body):
        # nothing to add: the caller's document goes out as it came
        return ProcessedBody(ctx.body, result_id)
    return ProcessedBody(serialize_xml(root), result_id)


def _tuple_and_person(root: etree._Element) -> tuple[etree._Element | None, etree._Element | None]:
    """The first ``tuple`` and the first ``person`` (local names, any case,
    any namespace, document order), found in one walk."""
    tuple_el = person = None
    for element in root.iter(etree.Element):
        name = local_name_of(element.tag).lower()
        if name == "tuple":
            if tuple_el is None:
                tuple_el = element
                if person is not None:
                    break
        elif name == "person" and person is None:
            person = element
            if tuple_el is not None:
                break
    return tuple_el, person


def _required(field: str, value: str) -> str:
    if not value:
        raise ValueError(f"{field}: must not be empty")
    return check_xml_text(field, value)


def pidf_document(
    entity: str,
    basic: str = "open",
    *,
    note: str | None = None,
    tuple_id: str | None = None,
    contact: str | None = None,
    person_id: str | None = None,
) -> str:
    """A PIDF document (RFC 3863) with one tuple of status ``basic``.

    ``entity`` is the presentity's URI.  In the tuple come, in the
    schema's order (§4.1), ``<status><basic>``, ``<contact>`` and ``<note>``.
    With ``tuple_id`` ``None`` the tuple is written without an ``id``:
    :func:`process_pidf`, which every presence body goes through before it
    is sent, gives it the publication's id, so the id stays the same when
    the document is rebuilt for a modification.  ``person_id`` adds an
    empty RFC 4479 ``<dm:person>`` after the tuple.  Every value is
    escaped by the XML writer.
    """
    _required("entity", entity)
    if basic not in _BASIC_VALUES:
        raise ValueError(f"basic: must be 'open' or 'closed', not {basic!r}")
    nsmap = {None: PIDF_NS} if person_id is None else {None: PIDF_NS, "dm": DATA_MODEL_NS}
    root = etree.Element(f"{{{PIDF_NS}}}presence", nsmap=nsmap)
    root.set("entity", entity)

    tuple_el = etree.SubElement(root, f"{{{PIDF_NS}}}tuple")
    if tuple_id is not None:
        _required("tuple_id", tuple_id)
        if len(tuple_id) >= MAX_TUPLE_ID_LEN or any(c.isspace() for c in tuple_id):
            raise ValueError(
                f"tuple_id: must be under {MAX_TUPLE_ID_LEN} characters, without white space"
            )
        tuple_el.set("id", tuple_id)
    status = etree.SubElement(tuple_el, f"{{{PIDF_NS}}}status")
    etree.SubElement(status, f"{{{PIDF_NS}}}basic").text = basic
    if contact is not None:
        etree.SubElement(tuple_el, f"{{{PIDF_NS}}}contact").text = _required("contact", contact)
    if note is not None:
        etree.SubElement(tuple_el, f"{{{PIDF_NS}}}note").text = check_xml_text("note", note)

    if person_id is not None:
        _required("person_id", person_id)
        etree.SubElement(root, f"{{{DATA_MODEL_NS}}}person").set("id", person_id)
    return serialize_xml(root)
