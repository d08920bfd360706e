"""The storage contract (pua.store.base), run on every store: memory,
SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from pua.model import EventFlag, SourceFlag
from pua.store.base import Store, StoreError
from pua.store.memory import MemoryStore
from pua.store.records import INT32_MAX, StoredRecord
from tests.store.conftest import Db


def publication(n: int = 0, **changes: object) -> StoredRecord:
    row = StoredRecord(
        pres_uri=f"sip:alice{n}@example.com",
        pres_id=f"pub-{n}",
        event=EventFlag.PRESENCE_EVENT,
        expires=1_800_000_000 + n,
        desired_expires=0,
        flag=SourceFlag.UL_PUBLISH,
        etag=f"etag-{n}",
        tuple_id=f"t{n}",
        version=n,
        extra_headers="X-A: 1\r\n",
        body=b"<presence/>",
        content_type="application/pidf+xml",
    )
    return row.copy(**changes)


def subscription(n: int = 0, **changes: object) -> StoredRecord:
    row = StoredRecord(
        pres_uri=f"sip:bob{n}@example.com",
        pres_id=f"sub-{n}",
        event=EventFlag.DIALOG_EVENT,
        expires=1_800_000_000 + n,
        desired_expires=1_900_000_000,
        flag=SourceFlag.RLS_SUBSCRIBE,
        etag="",
        tuple_id="",
        watcher_uri="sip:watcher@example.com",
        call_id=f"call-{n}@example.com",
        to_tag=f"remote-{n}",
        from_tag=f"local-{n}",
        cseq=11,
        record_route="<sip:p2;lr>,<sip:p1;lr>",
        contact="sip:pua@10.0.0.1",
        remote_contact="sip:notifier@10.0.0.2",
        remote_target_requested="sip:bob@example.com",
        remote_cseq=7,
    )
    return row.copy(**changes)


async def everything(store: Store, *, owner: str | None = None) -> list[StoredRecord]:
    return [row async for page in store.load(owner=owner) for row in page]


# --- insert / get -----------------------------------------------------------
async def test_insert_assigns_ids_and_get_round_trips(store: Store) -> None:
    rows = [
        publication(1),
        subscription(2),
        publication(
            3,
            pres_uri="sip:zoë@exämple.com",
            body=bytes(range(256)) * 300,
            tuple_id=None,
            record_route=None,
            outbound_proxy="sip:proxy.example.com;transport=tcp",
            owner="node-a",
            lease_until=2**40,
            state_json='{"retries":2}',
            expires=INT32_MAX,
        ),
    ]
    ids = await store.insert(rows)
    assert ids == [row.id for row in rows]
    assert len(set(ids)) == 3
    assert all(isinstance(i, int) for i in ids)
    for row in rows:
        got = await store.get(row.id)  # type: ignore[arg-type]
        assert got == row
        assert got is not row
    assert await store.get(max(ids) + 1000) is None
    assert await store.count() == 3


async def test_insert_nothing(store: Store) -> None:
    assert await store.insert([]) == []
    assert await store.update([]) == []
    assert await store.upsert([]) == []
    assert await store.delete([]) == 0
    assert await store.count() == 0
    assert await everything(store) == []


async def test_store_copies_rows(store: Store) -> None:
    row = publication(1)
    await store.insert([row])
    row.version = 99
    got = await store.get(row.id)  # type: ignore[arg-type]
    assert got is not None
    assert got.version == 1
    got.version = 42
    again = await store.get(row.id)  # type: ignore[arg-type]
    assert again is not None
    assert again.version == 1


BAD_ROWS = [
    (publication(1, id=5), "has id 5"),
    (publication(1, event=3), "event 3 is not one known event flag"),
    (publication(1, event=512), "event 512"),
    (publication(1, from_tag="x"), "publication has no from_tag"),
    (subscription(1, etag="x"), "subscription has no etag"),
    (publication(1, pres_uri="s" * 256), "pres_uri is longer than 255"),
    (publication(1, cseq=2**31), "cseq 2147483648 is out of range"),
    (publication(1, content_type=None), "body has no content_type"),
    (publication(1, state_json="[1]"), "state_json is not a JSON object"),
    (publication(1, call_id="a\x00b"), "call_id contains a NUL"),
    (publication(1, pres_id=None), "pres_id is NULL"),
    (publication(1, body="text"), "body is str, not bytes"),
]


async def test_writes_refuse_bad_rows_and_write_nothing(store: Store) -> None:
    stored = publication(0)
    await store.insert([stored])
    for row, words in BAD_ROWS:
        with pytest.raises(ValueError, match=words):
            await store.insert([publication(2), row.copy()])
        if row.id is not None:
            continue
        with pytest.raises(ValueError, match=words):
            await store.upsert([publication(2), row.copy()])
        with pytest.raises(ValueError, match=words):
            await store.update([stored, row.copy(id=stored.id + 1)])  # type: ignore[operator]
    assert await store.count() == 1
    assert await store.get(stored.id) == stored  # type: ignore[arg-type]


# --- update -------------------------------------------------------------------
async def test_update_writes_every_column_and_reports_gone_rows(store: Store) -> None:
    rows = [publication(1), subscription(2), publication(3)]
    await store.insert(rows)
    changed = subscription(
        9,
        id=rows[1].id,
        expires=5,
        record_route=None,
        to_tag="",
        owner="node-b",
        state_json='{"a":1}',
        remote_cseq=None,
    )
    confirmed = publication(1, id=rows[0].id, etag="new-etag", body=None, content_type=None)
    await store.delete([rows[2].id])  # type: ignore[list-item]
    gone = await store.update([confirmed, changed, rows[2]])
    assert gone == [rows[2].id]
    assert await store.get(rows[0].id) == confirmed  # type: ignore[arg-type]
    assert await store.get(rows[1].id) == changed  # type: ignore[arg-type]
    assert await store.get(rows[2].id) is None  # type: ignore[arg-type]
    assert await store.count() == 2


async def test_update_needs_ids(store: Store) -> None:
    with pytest.raises(ValueError, match="no id"):
        await store.update([publication(1)])
    row = publication(1)
    await store.insert([row])
    with pytest.raises(ValueError, match="appears twice"):
        await store.update([row, row])


# --- upsert -------------------------------------------------------------------
async def test_upsert_inserts_updates_and_reinserts_vanished_rows(store: Store) -> None:
    first = [publication(1), subscription(2), publication(3)]
    await store.upsert(first)
    assert all(row.id is not None for row in first)
    kept, vanished, _ = first
    await store.delete([vanished.id])  # type: ignore[list-item]
    kept.version = 10
    vanished.cseq = 12
    new = subscription(4)
    ids = await store.upsert([kept, vanished, new])
    assert ids[:2] == [kept.id, vanished.id]
    assert new.id == ids[2]
    assert new.id not in (row.id for row in first)
    assert await store.get(kept.id) == kept  # type: ignore[arg-type]
    # re-inserted under its old id, with its new values
    assert await store.get(vanished.id) == vanished  # type: ignore[arg-type]
    assert await store.count() == 4
    # an id that was handed out is never handed out again
    later = [publication(n) for n in range(5, 8)]
    await store.insert(later)
    assert {row.id for row in later}.isdisjoint(row.id for row in [*first, new])


async def test_upsert_after_the_highest_row_vanished(store: Store) -> None:
    rows = [publication(1), publication(2)]
    await store.insert(rows)
    await store.delete([rows[1].id])  # type: ignore[list-item]
    await store.upsert([rows[1]])
    fresh = publication(3)
    await store.insert([fresh])
    assert fresh.id is not None
    assert rows[1].id is not None
    assert fresh.id > rows[1].id


# --- delete ---------------------------------------------------------------------
async def test_delete_by_id(store: Store) -> None:
    rows = [publication(n) for n in range(5)]
    await store.insert(rows)
    unknown = max(r.id for r in rows if r.id is not None) + 100
    assert await store.delete([rows[0].id, rows[3].id, unknown]) == 2  # type: ignore[list-item]
    assert await store.count() == 3
    assert [r.id for r in await everything(store)] == [rows[1].id, rows[2].id, rows[4].id]


async def test_delete_many_ids(store: Store) -> None:
    rows = [publication(n, tuple_id="same", etag="") for n in range(1500)]
    await store.insert(rows)
    assert await store.delete(r.id for r in rows[:1200] if r.id is not None) == 1200
    assert await store.count() == 300


async def test_delete_expired(store: Store) -> None:
    rows = [publication(n, expires=100 + n) for n in range(5)]
    await store.insert(rows)
    assert await store.delete_expired(102) == 2
    assert sorted(r.expires for r in await everything(store)) == [102, 103, 104]
    assert await store.delete_expired(0) == 0


# --- load -------------------------------------------------------------------------
async def test_load_pages_in_id_order(store: Store) -> None:
    rows = [publication(n) if n % 2 else subscription(n) for n in range(10)]
    await store.insert(rows)
    pages = [page async for page in store.load()]
    assert [len(page) for page in pages] == [3, 3, 3, 1]
    assert [row for page in pages for row in page] == rows
    sizes = [len(page) async for page in store.load(page_size=4)]
    assert sizes == [4, 4, 2]
    with pytest.raises(ValueError, match="page_size"):
        async for _ in store.load(page_size=0):
            pass


async def test_load_sees_changes_between_pages(store: Store) -> None:
    rows = [publication(n) for n in range(6)]
    await store.insert(rows)
    seen: list[int | None] = []
    async for page in store.load():
        seen.extend(row.id for row in page)
        if len(seen) == 3:
            await store.delete([rows[4].id])  # type: ignore[list-item]
    assert seen == [row.id for row in rows if row is not rows[4]]


async def test_load_filters_by_owner(store: Store) -> None:
    rows = [
        publication(1, owner=None),
        publication(2, owner="me"),
        publication(3, owner="other"),
        subscription(4, owner="me"),
        subscription(5, owner="other"),
        subscription(6),
    ]
    await store.insert(rows)
    mine = await everything(store, owner="me")
    assert [r.pres_id for r in mine] == ["pub-1", "pub-2", "sub-4", "sub-6"]
    theirs = await everything(store, owner="other")
    assert [r.pres_id for r in theirs] == ["pub-1", "pub-3", "sub-5", "sub-6"]
    assert len(await everything(store)) == 6


async def test_load_skips_corrupt_rows_with_a_warning(
    db: Db, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    good = [publication(1), subscription(2)]
    await store.insert(good)
    # an event that is no known flag, two flags at once, pua's JSON column
    # holding no object, a body without content type
    await db.insert_raw(store, 101, event=512)
    await db.insert_raw(store, 102, event=3)
    await db.insert_raw(store, 103, state_json="not json")
    await db.insert_raw(store, 104, body=b"x", content_type=None)
    # a NULL in a NOT NULL column (SQLite cannot drop the constraint: a
    # string in an INTEGER column instead)
    if db.backend == "memory":
        await db.insert_raw(store, 105, pres_uri=None)
    elif db.backend == "sqlite":
        await db.insert_raw(store, 105, cseq="eleven")
    else:
        alter = (
            "ALTER TABLE {t} ALTER COLUMN pres_uri DROP NOT NULL"
            if db.backend == "postgresql"
            else "ALTER TABLE {t} MODIFY pres_uri VARCHAR(255) NULL"
        )
        async with db.connect() as conn:
            await conn.execute(text(alter.format(t=db.table)))
        await db.insert_raw(store, 105, pres_uri=None)
    # a readable row written by someone else, after the broken ones
    await db.insert_raw(store, 106, pres_id="fine", from_tag="")
    with caplog.at_level(logging.WARNING, logger="pua.store"):
        loaded = await everything(store)
        assert await store.get(101) is None
    assert [r.id for r in loaded] == [good[0].id, good[1].id, 106]
    for row_id in (101, 102, 103, 104, 105):
        assert f"pua row {row_id} skipped" in caplog.text
    assert "event 512 is not one known event flag" in caplog.text
    assert "state_json is not JSON" in caplog.text
    assert "body has no content_type" in caplog.text
    assert ("cseq is str" if db.backend == "sqlite" else "pres_uri is NULL") in caplog.text
    assert await store.count() == 8


# --- the unique index (etag, tuple_id, call_id, from_tag) ----------------------
async def test_unique_index_never_bites(store: Store) -> None:
    rows = [
        # dialog rows: empty etag and tuple id, different Call-IDs
        subscription(1, call_id="a@h", from_tag="f"),
        subscription(2, call_id="b@h", from_tag="f"),
        # one forked SUBSCRIBE: same Call-ID and local tag, two remote tags
        subscription(3, call_id="fork@h", from_tag="f", to_tag="r1"),
        subscription(4, call_id="fork@h", from_tag="f", to_tag="r2"),
        # a temporary and a confirmed row of one dialog
        subscription(5, call_id="tmp@h", from_tag="f", to_tag=""),
        subscription(6, call_id="tmp@h", from_tag="f", to_tag="r"),
        # publications not confirmed yet: no etag, same tuple id
        publication(7, etag="", tuple_id="t"),
        publication(8, etag="", tuple_id="t"),
        publication(9, etag="", tuple_id=""),
        publication(10, etag="", tuple_id=""),
        # two servers that gave out the same entity-tag, and one whose
        # differs only in case (MySQL's collations compare without case)
        publication(11, etag="1", tuple_id="t"),
        publication(12, etag="1", tuple_id="t"),
        publication(13, etag="ABC", tuple_id="t"),
        publication(14, etag="abc", tuple_id="t"),
    ]
    await store.insert(rows[:7])
    await store.insert(rows[7:])
    assert await store.count() == len(rows)
    for row in rows:
        row.version += 1
    assert await store.update(rows) == []
    await store.delete([rows[6].id, rows[12].id])  # type: ignore[list-item]
    again = [publication(15, etag="", tuple_id="t"), *rows]
    await store.upsert(again)
    assert await store.count() == len(rows) + 1
    assert await everything(store) == sorted(again, key=lambda r: r.id or 0)


# --- lifecycle --------------------------------------------------------------------
async def test_close_and_open_again_keeps_rows(db: Db, store: Store) -> None:
    rows = [publication(1), subscription(2)]
    await store.insert(rows)
    await store.close()
    if isinstance(store, MemoryStore):
        assert await store.count() == 2
        return
    with pytest.raises(StoreError, match="not open"):
        await store.count()
    await store.open()
    await store.open()
    assert await everything(store) == rows
    other = db.make()
    await other.open()
    assert await everything(other) == rows
