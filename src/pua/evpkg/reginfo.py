"""The reg event package: reginfo bodies (RFC 3680).

:func:`process_reginfo` stamps the publication's version on a caller's
document; :func:`reginfo_document` builds the document of one address of
record, with its contacts (:class:`RegContact`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from lxml import etree

from pua.evpkg.body import BodyProcessor, rewrite_version
from pua.evpkg.xml import check_xml_text, serialize_xml

__all__ = [
    "CONTACT_EVENTS",
    "REGINFO_NS",
    "REGISTRATION_STATES",
    "RegContact",
    "process_reginfo",
    "reginfo_document",
    "registration_id_for",
]

#: RFC 3680 §5.4: the reginfo namespace.
REGINFO_NS: Final = "urn:ietf:params:xml:ns:reginfo"

#: RFC 3680 §5.2: the state of a registration (all contacts of an AOR).
REGISTRATION_STATES: Final = frozenset({"init", "active", "terminated"})

#: RFC 3680 §5.3, contact state machine: the events that leave a contact
#: active, and those that terminate it.
_ACTIVE_EVENTS: Final = frozenset({"registered", "created", "refreshed", "shortened"})
_TERMINATED_EVENTS: Final = frozenset(
    {"expired", "deactivated", "probation", "unregistered", "rejected"}
)
CONTACT_EVENTS: Final = _ACTIVE_EVENTS | _TERMINATED_EVENTS

# RFC 3261 §20.10 qvalue: "0" ["." 0*3DIGIT] / "1" ["." 0*3("0")].
_QVALUE: Final = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)\Z")

process_reginfo: BodyProcessor = rewrite_version("reginfo")
"""Set the ``version`` of the first ``<reginfo>`` to ``ctx.version`` (RFC
3680 §5.3: a watcher drops a document whose version is not greater than
the previous one).  Used for ``reg`` when ``reginfo_increase_version`` is
set."""


def _text(field: str, value: str) -> str:
    if not value:
        raise ValueError(f"{field}: must not be empty")
    return check_xml_text(field, value)


def _count(field: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{field}: must be a non-negative integer, not {value!r}")


@dataclass(frozen=True, slots=True)
class RegContact:
    """One ``<contact>`` of a registration (RFC 3680 §5.4).

    ``state`` is ``"active"`` or ``"terminated"`` and must agree with
    ``event``, the transition that led there (§5.3): ``registered``,
    ``created``, ``refreshed`` and ``shortened`` leave a contact active;
    ``expired``, ``deactivated``, ``probation``, ``unregistered`` and
    ``rejected`` terminate it.  ``expires`` is in seconds; ``q``,
    ``callid`` and ``cseq`` are those of the REGISTER that made the
    contact.  ``ValueError`` names the first field that is wrong.
    """

    uri: str
    id: str
    state: str
    event: str
    expires: int | None = None
    q: str | None = None
    callid: str | None = None
    cseq: int | None = None
    display_name: str | None = None

    def __post_init__(self) -> None:
        _text("uri", self.uri)
        _text("id", self.id)
        if self.state not in {"active", "terminated"}:
            raise ValueError(f"state: must be 'active' or 'terminated', not {self.state!r}")
        if self.event not in CONTACT_EVENTS:
            raise ValueError(f"event: must be one of {', '.join(sorted(CONTACT_EVENTS))}")
        expected = "active" if self.event in _ACTIVE_EVENTS else "terminated"
        if self.state != expected:
            raise ValueError(f"event: {self.event!r} leaves a contact {expected}, not {self.state}")
        _count("expires", self.expires)
        _count("cseq", self.cseq)
        if self.q is not None and _QVALUE.match(self.q) is None:
            raise ValueError(f"q: {self.q!r} is not a qvalue (RFC 3261 §20.10)")
        if self.callid is not None:
            _text("callid", self.callid)
        if self.display_name is not None:
            check_xml_text("display_name", self.display_name)


def registration_id_for(aor: str) -> str:
    """A stable registration id derived from the AOR: the same AOR always
    gets the same id (RFC 3680 §5.4 only asks that it identify the
    registration), so a rebuilt document still describes the same one."""
    return "r" + hashlib.sha256(aor.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def reginfo_document(
    aor: str,
    *,
    registration_state: str,
    contacts: Sequence[RegContact] = (),
    version: int = 0,
    state_full: bool = True,
    registration_id: str | None = None,
) -> str:
    """A reginfo document (RFC 3680 §5.4) with the registration of ``aor``.

    ``<reginfo version state>`` holds ``<registration aor id state>`` with
    one ``<contact state event id [expires q callid cseq]>`` per contact,
    each holding ``<uri>`` and, if given, ``<display-name>``.  Without
    ``registration_id`` one is derived from the AOR
    (:func:`registration_id_for`).  Contact ids must be unique.
    """
    _text("aor", aor)
    if registration_state not in REGISTRATION_STATES:
        raise ValueError(
            "registration_state: must be 'init', 'active' or 'terminated', "
            f"not {registration_state!r}"
        )
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"version: must be a non-negative integer, not {version!r}")
    reg_id = registration_id_for(aor) if registration_id is None else registration_id
    _text("registration_id", reg_id)
    seen: set[str] = set()
    for contact in contacts:
        if contact.id in seen:
            raise ValueError(f"contacts: duplicate contact id {contact.id!r}")
        seen.add(contact.id)

    root = etree.Element(f"{{{REGINFO_NS}}}reginfo", nsmap={None: REGINFO_NS})
    root.set("version", str(version))
    root.set("state", "full" if state_full else "partial")
    registration = etree.SubElement(root, f"{{{REGINFO_NS}}}registration")
    registration.set("aor", aor)
    registration.set("id", reg_id)
    registration.set("state", registration_state)
    for contact in contacts:
        element = etree.SubElement(registration, f"{{{REGINFO_NS}}}contact")
        element.set("state", contact.state)
        element.set("event", contact.event)
        element.set("id", contact.id)
        if contact.expires is not None:
            element.set("expires", str(contact.expires))
        if contact.q is not None:
            element.set("q", contact.q)
        if contact.callid is not None:
            element.set("callid", contact.callid)
        if contact.cseq is not None:
            element.set("cseq", str(contact.cseq))
        etree.SubElement(element, f"{{{REGINFO_NS}}}uri").text = contact.uri
        if contact.display_name is not None:
            etree.SubElement(element, f"{{{REGINFO_NS}}}display-name").text = contact.display_name
    return serialize_xml(root)
