"""reginfo bodies (RFC 3680): version stamping, contacts and the builder."""

from __future__ import annotations

from typing import Any

import pytest

from pua.evpkg import BodyContext, RegContact, XmlBodyError, parse_xml
from pua.evpkg.reginfo import REGINFO_NS, process_reginfo, reginfo_document

NS = f"{{{REGINFO_NS}}}"


def never() -> str:
    raise AssertionError("new_id must not be called")


def stamp(body: str, version: int) -> str:
    ctx = BodyContext(body=body, version=version, tuple_id=None, new_id=never)
    return process_reginfo(ctx).body


def test_version_rewritten() -> None:
    body = f'<reginfo xmlns="{REGINFO_NS}" version="0" state="full"/>'
    assert parse_xml(stamp(body, 17)).get("version") == "17"


def test_missing_reginfo_refused() -> None:
    with pytest.raises(XmlBodyError) as info:
        stamp("<other/>", 1)
    assert info.value.reason == "missing-element"


def test_builder_full_document() -> None:
    contacts = [
        RegContact(
            uri="sip:alice@192.0.2.1:5060",
            id="c1",
            state="active",
            event="registered",
            expires=3600,
            q="0.8",
            callid="abc@192.0.2.1",
            cseq=12,
            display_name="Alice",
        ),
        RegContact(uri="sip:alice@192.0.2.9", id="c2", state="terminated", event="expired"),
    ]
    text = reginfo_document(
        "sip:alice@example.com",
        registration_state="active",
        contacts=contacts,
        version=5,
        state_full=False,
        registration_id="reg-1",
    )
    root = parse_xml(text)
    assert root.tag == f"{NS}reginfo"
    assert dict(root.attrib) == {"version": "5", "state": "partial"}
    (registration,) = root
    assert dict(registration.attrib) == {
        "aor": "sip:alice@example.com",
        "id": "reg-1",
        "state": "active",
    }
    first, second = registration
    assert dict(first.attrib) == {
        "state": "active",
        "event": "registered",
        "id": "c1",
        "expires": "3600",
        "q": "0.8",
        "callid": "abc@192.0.2.1",
        "cseq": "12",
    }
    assert [c.tag for c in first] == [f"{NS}uri", f"{NS}display-name"]
    assert first.findtext(f"{NS}uri") == "sip:alice@192.0.2.1:5060"
    assert first.findtext(f"{NS}display-name") == "Alice"
    assert dict(second.attrib) == {"state": "terminated", "event": "expired", "id": "c2"}
    assert [c.tag for c in second] == [f"{NS}uri"]


def test_builder_init_without_contacts() -> None:
    root = parse_xml(reginfo_document("sip:a@example.com", registration_state="init"))
    assert root.get("version") == "0"
    assert root.get("state") == "full"
    assert root[0].get("state") == "init"
    assert len(root[0]) == 0


def test_default_registration_id_is_stable_and_per_aor() -> None:
    def reg_id(aor: str) -> str:
        value: str = parse_xml(reginfo_document(aor, registration_state="init"))[0].get("id")
        return value

    first = reg_id("sip:alice@example.com")
    assert first == reg_id("sip:alice@example.com")
    assert first != reg_id("sip:bob@example.com")
    assert first
    assert first.isascii()


def test_builder_escapes() -> None:
    contact = RegContact(
        uri="sip:a@h;p=<&>", id="c", state="active", event="created", display_name='"<&>"'
    )
    text = reginfo_document("sip:a@h?x=1&y=2", registration_state="active", contacts=[contact])
    assert "&amp;" in text
    root = parse_xml(text)
    assert root[0].get("aor") == "sip:a@h?x=1&y=2"
    assert root[0][0].findtext(f"{NS}uri") == "sip:a@h;p=<&>"
    assert root[0][0].findtext(f"{NS}display-name") == '"<&>"'


def test_builder_output_stamped_by_the_processor() -> None:
    text = reginfo_document("sip:a@example.com", registration_state="init", version=2)
    assert parse_xml(stamp(text, 3)).get("version") == "3"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"aor": ""}, "aor"),
        ({"registration_state": "registered"}, "registration_state"),
        ({"version": -1}, "version"),
        ({"registration_id": ""}, "registration_id"),
    ],
)
def test_builder_refuses(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"aor": "sip:a@b", "registration_state": "active", **kwargs}
    with pytest.raises(ValueError, match=rf"^{field}: "):
        reginfo_document(**arguments)


def test_builder_refuses_duplicate_contact_ids() -> None:
    contact = RegContact(uri="sip:a@h", id="same", state="active", event="created")
    with pytest.raises(ValueError, match=r"^contacts: duplicate"):
        reginfo_document("sip:a@b", registration_state="active", contacts=[contact, contact])


ACTIVE_EVENTS = ["registered", "created", "refreshed", "shortened"]
TERMINATED_EVENTS = ["expired", "deactivated", "probation", "unregistered", "rejected"]


@pytest.mark.parametrize("event", ACTIVE_EVENTS)
def test_contact_active_events(event: str) -> None:
    assert RegContact(uri="sip:a@h", id="c", state="active", event=event).event == event
    with pytest.raises(ValueError, match=r"^event: "):
        RegContact(uri="sip:a@h", id="c", state="terminated", event=event)


@pytest.mark.parametrize("event", TERMINATED_EVENTS)
def test_contact_terminating_events(event: str) -> None:
    assert RegContact(uri="sip:a@h", id="c", state="terminated", event=event).event == event
    with pytest.raises(ValueError, match=r"^event: "):
        RegContact(uri="sip:a@h", id="c", state="active", event=event)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"uri": ""}, "uri"),
        ({"id": ""}, "id"),
        ({"state": "init"}, "state"),
        ({"event": "moved"}, "event"),
        ({"expires": -1}, "expires"),
        ({"expires": True}, "expires"),
        ({"cseq": -3}, "cseq"),
        ({"q": "1.5"}, "q"),
        ({"q": "0.1234"}, "q"),
        ({"q": "high"}, "q"),
        ({"callid": ""}, "callid"),
        ({"display_name": "\x1b"}, "display_name"),
    ],
)
def test_contact_refuses(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {
        "uri": "sip:a@h",
        "id": "c",
        "state": "active",
        "event": "registered",
        **kwargs,
    }
    with pytest.raises(ValueError, match=rf"^{field}: "):
        RegContact(**arguments)


@pytest.mark.parametrize("q", ["0", "0.5", "0.123", "1", "1.0", "1.000"])
def test_contact_accepts_qvalues(q: str) -> None:
    assert RegContact(uri="sip:a@h", id="c", state="active", event="created", q=q).q == q
