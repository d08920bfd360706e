"""StoredRecord: the columns, the kinds of row, the checks."""

from __future__ import annotations

import pytest

from pua.model import EventFlag
from pua.store.records import (
    COLUMN_NAMES,
    KAMAILIO_COLUMNS,
    KNOWN_EVENTS,
    PUA_COLUMNS,
    StoredRecord,
)


def test_columns_are_kamailios_in_order_then_puas() -> None:
    assert KAMAILIO_COLUMNS == (
        "id", "pres_uri", "pres_id", "event", "expires", "desired_expires", "flag", "etag",
        "tuple_id", "watcher_uri", "call_id", "to_tag", "from_tag", "cseq", "record_route",
        "contact", "remote_contact", "version", "extra_headers",
    )  # fmt: skip
    assert PUA_COLUMNS == (
        "body", "content_type", "outbound_proxy", "owner", "lease_until",
        "remote_target_requested", "remote_cseq", "state_json",
    )  # fmt: skip
    assert COLUMN_NAMES == KAMAILIO_COLUMNS + PUA_COLUMNS
    assert tuple(StoredRecord.__dataclass_fields__) == COLUMN_NAMES


def test_known_events_are_the_single_flags() -> None:
    assert sorted(KNOWN_EVENTS) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert int(EventFlag.DFKS_EVENT) in KNOWN_EVENTS


def test_kinds() -> None:
    pub = StoredRecord(pres_uri="sip:a@b", event=1)
    assert pub.is_publication
    assert not pub.is_subscription
    assert not pub.is_temporary
    temporary = StoredRecord(pres_uri="sip:a@b", event=1, watcher_uri="sip:w@b", call_id="c")
    assert temporary.is_subscription
    assert temporary.is_temporary
    confirmed = temporary.copy(to_tag="r")
    assert confirmed.is_subscription
    assert not confirmed.is_temporary
    assert temporary.to_tag == ""


def test_defaults_are_what_kamailio_writes() -> None:
    row = StoredRecord(pres_uri="sip:a@b", event=1)
    values = row.values()
    assert list(values) == list(COLUMN_NAMES)
    assert values["id"] is None
    for name in KAMAILIO_COLUMNS[1:]:
        assert values[name] is not None, name
    for name in PUA_COLUMNS:
        assert values[name] is None, name
    assert row.problems() == []
    assert StoredRecord.from_values(values) == row
    assert StoredRecord.from_values({"pres_uri": "x"}).problems()[:3] == [
        "pres_id is NULL",
        "event is NULL",
        "expires is NULL",
    ]


def test_state_helpers() -> None:
    row = StoredRecord(pres_uri="sip:a@b", event=1)
    assert row.state() == {}
    row.set_state({"retries": 2, "a": [1]})
    assert row.state_json == '{"a":[1],"retries":2}'
    assert row.state() == {"retries": 2, "a": [1]}
    row.set_state({})
    assert row.state_json is None
    row.state_json = "[]"
    with pytest.raises(ValueError, match="not a JSON object"):
        row.state()


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"event": 0}, "event 0 is not one known event flag"),
        ({"event": 3}, "event 3 is not one known event flag"),
        ({"event": True}, "event is bool, not an integer"),
        ({"expires": "1"}, "expires is str, not an integer"),
        ({"expires": -(2**31) - 1}, "out of range"),
        ({"id": 0}, "id 0 is out of range"),
        ({"lease_until": 2**63}, "lease_until 9223372036854775808 is out of range"),
        ({"etag": "e" * 129}, "etag is longer than 128 characters"),
        ({"tuple_id": "t" * 65}, "tuple_id is longer than 64 characters"),
        ({"extra_headers": None}, "extra_headers is NULL"),
        ({"record_route": 5}, "record_route is int, not a string"),
        ({"body": b"x"}, "body has no content_type"),
        ({"state_json": "{"}, "state_json is not JSON"),
        ({"owner": "a\x00"}, "owner contains a NUL character"),
    ],
)
def test_problems(changes: dict[str, object], problem: str) -> None:
    row = StoredRecord(pres_uri="sip:a@b", event=1).copy(**changes)
    assert any(problem in found for found in row.problems()), row.problems()


def test_nullable_columns_may_be_null() -> None:
    row = StoredRecord(pres_uri="sip:a@b", event=1, tuple_id=None, record_route=None)
    assert row.problems() == []
    assert StoredRecord(pres_uri="sip:a@b", event=1, extra_headers="x" * 100_000).problems() == []
