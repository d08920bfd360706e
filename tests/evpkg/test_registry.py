"""The event package table: Kamailio's built-ins, lookups and processing."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pua.evpkg import (
    BodyContext,
    EventPackage,
    EventPackageError,
    EventRegistry,
    ProcessedBody,
    XmlBodyError,
    parse_xml,
)
from pua.model import EventFlag

BUILT_INS = [
    (1, "presence", "application/pidf+xml"),
    (32, "dialog", "application/dialog-info+xml"),
    (4, "dialog;sla", "application/dialog-info+xml"),
    (8, "message-summary", "application/simple-message-summary"),
    (2, "presence.winfo", None),
    (64, "reg", "application/reginfo+xml"),
    (128, "xcap-diff", "application/xcap-diff+xml"),
    (256, "as-feature-event", "application/x-as-feature-event+xml"),
    (16, "conference", "application/conference-info+xml"),
]

DIALOG_BODY = (
    '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="7" state="full" '
    'entity="sip:alice@example.com"/>'
)
REGINFO_BODY = '<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="7" state="full"/>'


def no_id() -> str:
    raise AssertionError("no id should be made")


def ctx(body: str, version: int = 3, tuple_id: str | None = "stored") -> BodyContext:
    return BodyContext(body=body, version=version, tuple_id=tuple_id, new_id=no_id)


def processed(registry: EventRegistry, name: str, context: BodyContext) -> ProcessedBody:
    package = registry.by_name(name)
    assert package is not None
    return package.process(context)


def version_of(body: str) -> str | None:
    value: str | None = parse_xml(body).get("version")
    return value


# ------------------------------------------------------------------- built-ins
def test_built_ins_flags_names_content_types_and_order() -> None:
    registry = EventRegistry()
    assert [(p.flag, p.name, p.content_type) for p in registry] == BUILT_INS
    assert registry.names() == tuple(name for _, name, _ in BUILT_INS)
    assert len(registry) == len(BUILT_INS)


def test_built_in_flags_are_the_model_flags() -> None:
    registry = EventRegistry()
    assert registry.get_event_flag("presence") == EventFlag.PRESENCE_EVENT
    assert registry.get_event_flag("presence.winfo") == EventFlag.PWINFO_EVENT
    assert registry.get_event_flag("dialog;sla") == EventFlag.BLA_EVENT
    assert registry.get_event_flag("message-summary") == EventFlag.MSGSUM_EVENT
    assert registry.get_event_flag("conference") == EventFlag.CONFERENCE_EVENT
    assert registry.get_event_flag("dialog") == EventFlag.DIALOG_EVENT
    assert registry.get_event_flag("reg") == EventFlag.REGINFO_EVENT
    assert registry.get_event_flag("xcap-diff") == EventFlag.XCAPDIFF_EVENT
    assert registry.get_event_flag("as-feature-event") == EventFlag.DFKS_EVENT


def test_only_presence_winfo_is_subscribe_only() -> None:
    registry = EventRegistry()
    assert [p.name for p in registry if not p.publishable] == ["presence.winfo"]


def test_get_event_flag_unknown_is_none() -> None:
    registry = EventRegistry()
    assert registry.get_event_flag("nonexistent") is None
    assert registry.get_event_flag("Presence") is None
    assert registry.get_event_flag("") is None


def test_get_is_exact_flag_equality() -> None:
    registry = EventRegistry()
    dialog = registry.get(EventFlag.DIALOG_EVENT)
    assert dialog is not None
    assert dialog.name == "dialog"
    sla = registry.get(4)
    assert sla is not None
    assert sla.name == "dialog;sla"
    assert registry.get(EventFlag.PRESENCE_EVENT | EventFlag.DIALOG_EVENT) is None
    assert registry.get(512) is None
    assert registry.get(0) is None


def test_by_name_is_case_sensitive() -> None:
    registry = EventRegistry()
    presence = registry.by_name("presence")
    assert presence is not None
    assert presence.flag == 1
    assert registry.by_name("PRESENCE") is None


# ------------------------------------------------------------------- add_event
def test_add_event_duplicate_name_changes_nothing() -> None:
    registry = EventRegistry()
    before = registry.by_name("presence")
    assert registry.add_event(1024, "presence", "text/plain") is False
    assert registry.by_name("presence") is before
    assert registry.get(1024) is None
    assert len(registry) == len(BUILT_INS)


def test_add_event_new_package_is_appended_and_found() -> None:
    registry = EventRegistry()
    assert registry.add_event(1024, "ua-profile", "application/x-ua-profile") is True
    assert registry.names()[-1] == "ua-profile"
    assert registry.get_event_flag("ua-profile") == 1024
    added = registry.get(1024)
    assert added is not None
    assert added.content_type == "application/x-ua-profile"
    assert added.publishable is True
    assert added.uses_version is False


def test_add_event_is_per_registry() -> None:
    first, second = EventRegistry(), EventRegistry()
    first.add_event(1024, "ua-profile", None)
    assert second.by_name("ua-profile") is None


def test_shared_flag_get_returns_the_first_registered() -> None:
    registry = EventRegistry()
    assert registry.add_event(EventFlag.DIALOG_EVENT, "dialog-custom", None)
    dialog = registry.get(EventFlag.DIALOG_EVENT)
    assert dialog is not None
    assert dialog.name == "dialog"
    assert registry.get_event_flag("dialog-custom") == EventFlag.DIALOG_EVENT


@pytest.mark.parametrize("flag", [0, -1, True, "1", 1.0, None])
def test_add_event_refuses_bad_flag(flag: Any) -> None:
    with pytest.raises(ValueError, match=r"^flag: "):
        EventRegistry().add_event(flag, "x", None)


@pytest.mark.parametrize("name", ["", "a b", "a\tb", "x\r\n", "caf\u00e9", None, 7])
def test_add_event_refuses_bad_name(name: Any) -> None:
    with pytest.raises(ValueError, match=r"^name: "):
        EventRegistry().add_event(1024, name, None)


@pytest.mark.parametrize("content_type", ["", "  ", "text/plain\r\nX-Evil: 1", 5])
def test_add_event_refuses_bad_content_type(content_type: Any) -> None:
    with pytest.raises(ValueError, match=r"^content_type: "):
        EventRegistry().add_event(1024, "x", content_type)


def test_add_event_refuses_non_callable_processor() -> None:
    bad: Any = "not callable"
    with pytest.raises(ValueError, match=r"^process_body: "):
        EventRegistry().add_event(1024, "x", None, bad)


def test_add_event_with_processor_runs_it() -> None:
    registry = EventRegistry()
    registry.add_event(1024, "upper", "text/plain", lambda c: ProcessedBody(c.body.upper(), "t"))
    assert processed(registry, "upper", ctx("abc")) == ProcessedBody("ABC", "t")


def test_event_package_is_frozen() -> None:
    package = EventRegistry().by_name("presence")
    assert package is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        package.name = "other"  # type: ignore[misc]


# ------------------------------------------------------------------ processing
def test_presence_winfo_body_refused() -> None:
    with pytest.raises(EventPackageError) as info:
        processed(EventRegistry(), "presence.winfo", ctx("<watcherinfo/>"))
    assert info.value.reason == "not-publishable"
    assert "presence.winfo is a SUBSCRIBE-only event" in str(info.value)


def test_subscribe_only_user_package_refused() -> None:
    registry = EventRegistry()
    registry.add_event(2048, "custom.winfo", None, publishable=False)
    with pytest.raises(EventPackageError, match=r"custom\.winfo is a SUBSCRIBE-only"):
        processed(registry, "custom.winfo", ctx("x"))


@pytest.mark.parametrize("name", ["message-summary", "xcap-diff", "as-feature-event", "conference"])
def test_pass_through_packages_send_the_body_as_is(name: str) -> None:
    body = "not even <xml"
    assert processed(EventRegistry(), name, ctx(body)) == ProcessedBody(body, "stored")


def test_dialog_not_rewritten_by_default() -> None:
    registry = EventRegistry()
    dialog = registry.by_name("dialog")
    assert dialog is not None
    assert dialog.uses_version is False
    assert dialog.process(ctx(DIALOG_BODY)) == ProcessedBody(DIALOG_BODY, "stored")


def test_dialog_rewritten_when_asked() -> None:
    registry = EventRegistry(dlginfo_increase_version=True)
    dialog = registry.by_name("dialog")
    assert dialog is not None
    assert dialog.uses_version is True
    result = dialog.process(ctx(DIALOG_BODY, version=42))
    assert version_of(result.body) == "42"
    assert result.tuple_id == "stored"


@pytest.mark.parametrize("increase", [False, True])
def test_dialog_sla_always_rewritten(increase: bool) -> None:
    registry = EventRegistry(dlginfo_increase_version=increase)
    sla = registry.by_name("dialog;sla")
    assert sla is not None
    assert sla.uses_version is True
    assert version_of(sla.process(ctx(DIALOG_BODY, version=9)).body) == "9"


def test_reg_rewritten_only_when_asked() -> None:
    plain = processed(EventRegistry(), "reg", ctx(REGINFO_BODY, version=5))
    assert plain.body == REGINFO_BODY
    stamped = processed(
        EventRegistry(reginfo_increase_version=True), "reg", ctx(REGINFO_BODY, version=5)
    )
    assert version_of(stamped.body) == "5"
    reg = EventRegistry(reginfo_increase_version=True).by_name("reg")
    assert reg is not None
    assert reg.uses_version is True


def test_rewriting_package_refuses_non_xml() -> None:
    registry = EventRegistry(dlginfo_increase_version=True)
    with pytest.raises(XmlBodyError) as info:
        processed(registry, "dialog", ctx("not xml"))
    assert info.value.reason == "not-xml"


def test_presence_runs_the_pidf_processor() -> None:
    body = (
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@example.com">'
        "<tuple><status><basic>open</basic></status></tuple></presence>"
    )
    result = processed(
        EventRegistry(),
        "presence",
        BodyContext(body=body, version=1, tuple_id=None, new_id=lambda: "fresh"),
    )
    assert result.tuple_id == "fresh"
    assert '<tuple id="fresh">' in result.body


def test_event_package_without_processor_passes_through() -> None:
    package = EventPackage(flag=1024, name="x", content_type="text/plain")
    assert package.process(ctx("body", tuple_id=None)) == ProcessedBody("body", None)
