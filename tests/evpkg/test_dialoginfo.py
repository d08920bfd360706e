"""dialog-info bodies (RFC 4235): version stamping, the builder, the guard."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pua.evpkg import BodyContext, XmlBodyError, parse_xml
from pua.evpkg.dialoginfo import (
    DIALOG_INFO_NS,
    DIALOG_STATES,
    DialogStateGuard,
    dialog_info_document,
    process_dialog_info,
)

NS = f"{{{DIALOG_INFO_NS}}}"


def never() -> str:
    raise AssertionError("new_id must not be called")


def stamp(body: str, version: int, tuple_id: str | None = None) -> str:
    result = process_dialog_info(
        BodyContext(body=body, version=version, tuple_id=tuple_id, new_id=never)
    )
    assert result.tuple_id == tuple_id
    return result.body


# ------------------------------------------------------------- version stamping
def test_version_overwritten() -> None:
    body = f'<dialog-info xmlns="{DIALOG_INFO_NS}" version="99" state="full" entity="e"/>'
    assert parse_xml(stamp(body, 4)).get("version") == "4"


def test_version_added_when_absent() -> None:
    body = f'<dialog-info xmlns="{DIALOG_INFO_NS}" state="full" entity="e"/>'
    assert parse_xml(stamp(body, 0)).get("version") == "0"


def test_version_found_case_insensitively_with_prefix() -> None:
    body = f'<d:DIALOG-INFO xmlns:d="{DIALOG_INFO_NS}" state="full" entity="e"/>'
    out = stamp(body, 12, tuple_id="t")
    assert '<d:DIALOG-INFO xmlns:d="' in out
    assert parse_xml(out).get("version") == "12"


def test_missing_dialog_info_refused() -> None:
    with pytest.raises(XmlBodyError) as info:
        stamp('<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="e"/>', 1)
    assert info.value.reason == "missing-element"


def test_doctype_refused() -> None:
    with pytest.raises(XmlBodyError) as info:
        stamp('<!DOCTYPE dialog-info><dialog-info version="1"/>', 1)
    assert info.value.reason == "doctype-forbidden"


# --------------------------------------------------------------------- builder
def test_builder_full_document() -> None:
    text = dialog_info_document(
        "sip:alice@example.com",
        dialog_id="d1",
        state="terminated",
        version=3,
        state_full=False,
        direction="initiator",
        call_id="call-1@example.com",
        local_tag="lt",
        remote_tag="rt",
        local_identity="sip:alice@example.com",
        local_display="Alice",
        local_target="sip:alice@192.0.2.1",
        remote_identity="sip:bob@example.com",
        remote_display="Bob",
        remote_target="sip:bob@192.0.2.2",
        event="rejected",
        code=486,
    )
    root = parse_xml(text)
    assert root.tag == f"{NS}dialog-info"
    assert dict(root.attrib) == {
        "version": "3",
        "state": "partial",
        "entity": "sip:alice@example.com",
    }
    (dialog,) = root
    assert dict(dialog.attrib) == {
        "id": "d1",
        "call-id": "call-1@example.com",
        "local-tag": "lt",
        "remote-tag": "rt",
        "direction": "initiator",
    }
    assert [c.tag for c in dialog] == [f"{NS}state", f"{NS}local", f"{NS}remote"]
    state = dialog[0]
    assert state.text == "terminated"
    assert state.get("event") == "rejected"
    assert state.get("code") == "486"
    local = dialog[1]
    assert [c.tag for c in local] == [f"{NS}identity", f"{NS}target"]
    assert local[0].text == "sip:alice@example.com"
    assert local[0].get("display") == "Alice"
    assert local[1].get("uri") == "sip:alice@192.0.2.1"
    assert dialog[2][0].get("display") == "Bob"
    assert dialog[2][1].get("uri") == "sip:bob@192.0.2.2"


def test_builder_minimal_document() -> None:
    root = parse_xml(dialog_info_document("sip:a@example.com", dialog_id="x", state="early"))
    assert root.get("version") == "0"
    assert root.get("state") == "full"
    (dialog,) = root
    assert dict(dialog.attrib) == {"id": "x"}
    assert [c.tag for c in dialog] == [f"{NS}state"]
    assert dialog[0].text == "early"
    assert dict(dialog[0].attrib) == {}


def test_builder_participant_with_target_only() -> None:
    root = parse_xml(
        dialog_info_document("e:x", dialog_id="x", state="trying", remote_target="sip:b@h")
    )
    remote = root[0][1]
    assert remote.tag == f"{NS}remote"
    assert [c.tag for c in remote] == [f"{NS}target"]


def test_builder_escapes() -> None:
    text = dialog_info_document(
        "sip:a@example.com",
        dialog_id='a"<&>',
        state="confirmed",
        local_identity="sip:a@example.com",
        local_display='Al "<&>" Ice',
    )
    root = parse_xml(text)
    assert root[0].get("id") == 'a"<&>'
    assert root[0][1][0].get("display") == 'Al "<&>" Ice'


def test_builder_output_stamped_by_the_processor() -> None:
    text = dialog_info_document("sip:a@example.com", dialog_id="x", state="early", version=1)
    assert parse_xml(stamp(text, 8)).get("version") == "8"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"state": "ringing"}, "state"),
        ({"state": "Early"}, "state"),
        ({"state": "early", "version": -1}, "version"),
        ({"state": "early", "version": True}, "version"),
        ({"state": "early", "direction": "outbound"}, "direction"),
        ({"state": "terminated", "event": "hangup"}, "event"),
        ({"state": "confirmed", "event": "rejected"}, "event"),
        ({"state": "terminated", "code": 99}, "code"),
        ({"state": "terminated", "code": 700}, "code"),
        ({"state": "early", "local_display": "A"}, "local_display"),
        ({"state": "early", "remote_display": "B", "remote_target": "sip:b@h"}, "remote_display"),
        ({"state": "early", "call_id": ""}, "call_id"),
        ({"state": "early", "local_tag": "\x00"}, "local_tag"),
        ({"state": "early", "dialog_id": ""}, "dialog_id"),
        ({"state": "early", "entity": ""}, "entity"),
    ],
)
def test_builder_refuses(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"entity": "sip:a@example.com", "dialog_id": "d", **kwargs}
    with pytest.raises(ValueError, match=rf"^{field}: "):
        dialog_info_document(**arguments)


# ----------------------------------------------------------------------- guard
def test_guard_accepts_a_forward_dialog() -> None:
    guard = DialogStateGuard()
    assert [guard.accept("e", "d", s) for s in DIALOG_STATES] == [True] * 5


def test_guard_drops_going_backwards() -> None:
    guard = DialogStateGuard()
    assert guard.accept("e", "d", "confirmed")
    assert not guard.accept("e", "d", "early")
    assert not guard.accept("e", "d", "trying")
    assert guard.accept("e", "d", "confirmed")


def test_guard_accepts_a_repeated_state_and_skipped_states() -> None:
    guard = DialogStateGuard()
    assert guard.accept("e", "d", "early")
    assert guard.accept("e", "d", "early")
    assert guard.accept("e", "d", "terminated")


def test_guard_drops_late_early_after_terminated() -> None:
    guard = DialogStateGuard()
    assert guard.accept("e", "d", "early")
    assert guard.accept("e", "d", "terminated")
    assert not guard.accept("e", "d", "early")
    assert not guard.accept("e", "d", "confirmed")
    assert not guard.accept("e", "d", "terminated")


def test_guard_terminated_first() -> None:
    guard = DialogStateGuard()
    assert guard.accept("e", "d", "terminated")
    assert not guard.accept("e", "d", "trying")


def test_guard_dialogs_are_independent() -> None:
    guard = DialogStateGuard()
    assert guard.accept("alice", "d1", "terminated")
    assert guard.accept("alice", "d2", "early")
    assert guard.accept("bob", "d1", "trying")
    assert not guard.accept("alice", "d1", "early")
    assert len(guard) == 3


def test_guard_lru_forgets_the_oldest_terminated() -> None:
    guard = DialogStateGuard(max_terminated=2)
    for dialog in ("d1", "d2", "d3"):
        assert guard.accept("e", dialog, "terminated")
    assert len(guard) == 2
    assert not guard.accept("e", "d2", "early")
    assert not guard.accept("e", "d3", "early")
    assert guard.accept("e", "d1", "early")  # forgotten: accepted again


def test_guard_lru_keeps_a_recently_touched_terminated() -> None:
    guard = DialogStateGuard(max_terminated=2)
    assert guard.accept("e", "d1", "terminated")
    assert guard.accept("e", "d2", "terminated")
    assert not guard.accept("e", "d1", "early")  # touches d1
    assert guard.accept("e", "d3", "terminated")  # so d2 goes
    assert not guard.accept("e", "d1", "early")
    assert guard.accept("e", "d2", "early")


def test_guard_bounds_active_dialogs() -> None:
    guard = DialogStateGuard(max_active=2)
    assert guard.accept("e", "d1", "confirmed")
    assert guard.accept("e", "d2", "confirmed")
    assert guard.accept("e", "d3", "confirmed")
    assert len(guard) == 2
    assert guard.accept("e", "d1", "trying")  # forgotten: accepted
    assert not guard.accept("e", "d3", "trying")


def test_guard_active_dialog_moves_to_terminated() -> None:
    guard = DialogStateGuard()
    assert guard.accept("e", "d", "early")
    assert guard.accept("e", "d", "terminated")
    assert len(guard) == 1


def test_guard_forget() -> None:
    guard = DialogStateGuard()
    assert guard.accept("e", "d", "terminated")
    assert guard.accept("e", "a", "confirmed")
    guard.forget("e", "d")
    guard.forget("e", "a")
    guard.forget("e", "unknown")
    assert len(guard) == 0
    assert guard.accept("e", "d", "early")
    assert guard.accept("e", "a", "trying")


def test_guard_unknown_state_refused() -> None:
    with pytest.raises(ValueError, match=r"^state: "):
        DialogStateGuard().accept("e", "d", "ringing")


@pytest.mark.parametrize("kwargs", [{"max_terminated": 0}, {"max_active": 0}, {"max_active": -5}])
def test_guard_bounds_must_be_positive(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"^max_"):
        DialogStateGuard(**kwargs)


@given(
    st.lists(
        st.tuples(st.sampled_from(["d1", "d2", "d3"]), st.sampled_from(DIALOG_STATES)),
        max_size=60,
    )
)
def test_guard_never_accepts_a_lower_rank_or_anything_after_terminated(
    events: list[tuple[str, str]],
) -> None:
    guard = DialogStateGuard()
    accepted: dict[str, list[int]] = {}
    for dialog, state in events:
        if guard.accept("e", dialog, state):
            accepted.setdefault(dialog, []).append(DIALOG_STATES.index(state))
    terminated = DIALOG_STATES.index("terminated")
    for ranks in accepted.values():
        assert ranks == sorted(ranks)
        assert terminated not in ranks[:-1]
    # and the first state seen for each dialog is always accepted
    firsts = dict(reversed(events))
    for dialog, state in firsts.items():
        assert accepted[dialog][0] == DIALOG_STATES.index(state)
