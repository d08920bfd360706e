"""The lease contract (pua.store.base.LeaseStore, db_mode 2) on every store,
and what only the SQL stores do: concurrent claimers, SKIP LOCKED, the
table-wide writer lock (``lock_table``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from pua.config import PuaConfig
from pua.store.base import LeaseStore, Store, StoreError
from pua.store.memory import MemoryStore
from pua.store.records import StoredRecord
from pua.store.sql import SqlStore, make_store
from tests.store.conftest import MYSQL_URL, Db, _url
from tests.store.test_contract import everything, publication, subscription

NOW = 1_700_000_000
LEASE = NOW + 30
LATER = NOW + 60
#: a guard against a hang, never a measure of time
GUARD = 20.0


def leases(store: Store) -> LeaseStore:
    assert isinstance(store, LeaseStore)
    return store


@pytest.fixture
def ls(store: Store) -> LeaseStore:
    return leases(store)


async def stored_lease(db: Db, store: Store, row_id: int) -> tuple[str | None, int | None]:
    """(owner, lease_until) as the table holds them, also for rows the
    store cannot read."""
    if isinstance(store, MemoryStore):
        row = store._rows[row_id]
        return row.owner, row.lease_until
    async with db.connect() as conn:
        found = await conn.execute(
            text(f"SELECT owner, lease_until FROM {db.table} WHERE id = :id"), {"id": row_id}
        )
        owner, until = found.one()
    return owner, until


def ids(rows: list[StoredRecord]) -> list[int]:
    return [row.id for row in rows if row.id is not None]


def leased(row: StoredRecord, node: str, until: int) -> StoredRecord:
    return row.copy(owner=node, lease_until=until)


async def wait_until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` until it holds (bounded by GUARD)."""

    async def poll() -> None:
        while not await check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), GUARD)


# --- claim ------------------------------------------------------------------------
async def test_claim_takes_unowned_and_expired_rows_only(ls: LeaseStore) -> None:
    rows = [
        publication(1),
        publication(2, owner="b", lease_until=None),
        publication(3, owner="b", lease_until=NOW - 1),
        publication(4, owner="b", lease_until=NOW),  # ends now: still live
        publication(5, owner="b", lease_until=NOW + 100),
        publication(6, owner="a", lease_until=NOW + 100),
        subscription(7),
    ]
    await ls.insert(rows)
    free = [rows[0], rows[1], rows[2], rows[6]]
    claimed = await ls.claim("a", now=NOW, lease_until=LEASE, limit=10)
    assert claimed == [leased(row, "a", LEASE) for row in free]
    for row in free:
        assert await ls.get(row.id) == leased(row, "a", LEASE)  # type: ignore[arg-type]
    for row in rows[3:6]:
        assert await ls.get(row.id) == row  # type: ignore[arg-type]
    # every row has a live holder now
    assert await ls.claim("c", now=NOW, lease_until=LEASE, limit=10) == []
    # a node back under its name takes its own rows whatever their lease
    own = await ls.claim("a", now=NOW, lease_until=LATER, limit=10, own=True)
    assert ids(own) == sorted([*ids(free), rows[5].id])  # type: ignore[type-var]
    assert all((r.owner, r.lease_until) == ("a", LATER) for r in own)
    back = await ls.claim("b", now=NOW, lease_until=LATER, limit=10, own=True)
    assert ids(back) == [rows[3].id, rows[4].id]
    # once the leases end, anyone may claim
    later = await ls.claim("c", now=LATER + 1, lease_until=LATER + 30, limit=10)
    assert ids(later) == ids(rows)


async def test_claim_respects_limit(ls: LeaseStore) -> None:
    rows = [publication(n) if n % 2 else subscription(n) for n in range(7)]
    await ls.insert(rows)
    batches = []
    while batch := await ls.claim("a", now=NOW, lease_until=LEASE, limit=3):
        batches.append(ids(batch))
    assert batches == [ids(rows[0:3]), ids(rows[3:6]), ids(rows[6:])]
    with pytest.raises(ValueError, match="limit"):
        await ls.claim("a", now=NOW, lease_until=LEASE, limit=0)


async def test_unreadable_rows_are_neither_claimed_nor_taken(
    db: Db, ls: LeaseStore, caplog: pytest.LogCaptureFixture
) -> None:
    good = [publication(1), subscription(2)]
    await ls.insert(good)
    await db.insert_raw(ls, 101, event=512)
    await db.insert_raw(ls, 102, state_json="[1]")
    await db.insert_raw(ls, 103, pres_id="fine")
    await db.insert_raw(ls, 104, pres_id="fine too")
    first = await ls.claim("a", now=NOW, lease_until=LEASE, limit=2)
    assert ids(first) == ids(good)
    with caplog.at_level(logging.WARNING, logger="pua.store"):
        # the broken rows do not use up the limit
        second = await ls.claim("a", now=NOW, lease_until=LEASE, limit=2)
    assert ids(second) == [103, 104]
    assert [r.pres_id for r in second] == ["fine", "fine too"]
    assert "pua row 101 skipped" in caplog.text
    assert "pua row 102 skipped" in caplog.text
    assert await ls.claim("a", now=NOW, lease_until=LEASE, limit=2) == []
    taken = await ls.take([101, 102, 103], "b", lease_until=LEASE)
    assert ids(taken) == [103]
    for row_id in (101, 102):
        assert await stored_lease(db, ls, row_id) == (None, None)
    assert await stored_lease(db, ls, 103) == ("b", LEASE)
    assert await ls.find(pres_uri="sip:raw@example.com") == [*taken, leased(second[1], "a", LEASE)]


# --- take ---------------------------------------------------------------------------
async def test_take_steals_whoever_holds_the_rows(ls: LeaseStore) -> None:
    rows = [
        publication(1, owner="b", lease_until=NOW + 100),
        subscription(2, owner="c", lease_until=NOW + 100),
        publication(3),
        publication(4, owner="b", lease_until=NOW + 100),
    ]
    await ls.insert(rows)
    unknown = max(ids(rows)) + 100
    wanted = [rows[2].id, unknown, rows[1].id, rows[0].id, rows[0].id]
    taken = await ls.take(wanted, "a", lease_until=LEASE)  # type: ignore[arg-type]
    assert taken == [leased(row, "a", LEASE) for row in rows[:3]]
    for row in rows[:3]:
        assert await ls.get(row.id) == leased(row, "a", LEASE)  # type: ignore[arg-type]
    assert await ls.get(rows[3].id) == rows[3]  # type: ignore[arg-type]
    assert await ls.take([], "a", lease_until=LEASE) == []
    assert await ls.count() == 4


# --- renew / release / owned ------------------------------------------------------------
async def test_renew_counts_the_rows_of_the_node(ls: LeaseStore) -> None:
    rows = [
        publication(1, owner="a", lease_until=NOW),
        publication(2, owner="a", lease_until=NOW - 50),
        subscription(3, owner="a", lease_until=None),
        publication(4, owner="b", lease_until=NOW),
        publication(5),
    ]
    await ls.insert(rows)
    assert await ls.renew("a", lease_until=LATER) == 3
    # the same value again still counts every row (MySQL counts changes
    # unless asked for found rows)
    assert await ls.renew("a", lease_until=LATER) == 3
    assert await ls.renew("nobody", lease_until=LATER) == 0
    for row in rows[:3]:
        assert await ls.get(row.id) == leased(row, "a", LATER)  # type: ignore[arg-type]
    for row in rows[3:]:
        assert await ls.get(row.id) == row  # type: ignore[arg-type]


async def test_release_makes_rows_claimable_at_once(ls: LeaseStore) -> None:
    rows = [publication(1), subscription(2), publication(3)]
    await ls.insert(rows)
    mine = await ls.claim("a", now=NOW, lease_until=LATER, limit=2)
    assert await ls.claim("b", now=NOW, lease_until=LEASE, limit=10) == [
        leased(rows[2], "b", LEASE)
    ]
    assert await ls.release("a") == 2
    assert await ls.release("a") == 2
    assert await ls.release("nobody") == 0
    # the lease ended although LATER is still ahead
    taken = await ls.claim("b", now=NOW, lease_until=LEASE, limit=10)
    assert taken == [leased(row, "b", LEASE) for row in mine]
    assert await ls.claim("a", now=NOW, lease_until=LEASE, limit=10) == []


async def test_owned(ls: LeaseStore) -> None:
    rows = [
        publication(1, owner="a", lease_until=NOW),
        publication(2, owner="b", lease_until=LATER),
        subscription(3, owner="a", lease_until=NOW - 100),
        publication(4),
    ]
    await ls.insert(rows)
    unknown = max(ids(rows)) + 100
    asked = [unknown, *reversed(ids(rows)), rows[0].id]
    assert await ls.owned(asked, "a") == [rows[0].id, rows[2].id]  # type: ignore[arg-type]
    assert await ls.owned(asked, "b") == [rows[1].id]  # type: ignore[arg-type]
    assert await ls.owned([], "a") == []
    # a lease that ran out is still ownership until another node claims
    await ls.claim("c", now=NOW, lease_until=LATER, limit=10)
    assert await ls.owned(asked, "a") == [rows[0].id]  # type: ignore[arg-type]


# --- write: compare-and-set ---------------------------------------------------------------
async def test_write_is_compare_and_set(ls: LeaseStore) -> None:
    rows = [publication(1), subscription(2), publication(3), subscription(4), publication(5)]
    await ls.insert(rows)
    held = await ls.claim("a", now=NOW, lease_until=LEASE, limit=4)
    kept, stolen, vanished, unclaimed = held[0], held[1], held[2], rows[4]
    as_stored = unclaimed.copy()
    # another node takes one, a row goes, one was never a's
    (theirs,) = await ls.take([stolen.id], "b", lease_until=LATER)  # type: ignore[list-item]
    await ls.delete([vanished.id])  # type: ignore[list-item]
    for row in (kept, stolen, vanished, unclaimed):
        row.version += 10
        row.lease_until = 5
    new = [subscription(6), publication(7, etag="", tuple_id="t")]
    given = [kept, stolen, *new, vanished, unclaimed]
    lost = await ls.write(given, "a", lease_until=LATER)
    assert lost == [stolen.id, vanished.id, unclaimed.id]
    # the written rows and objects carry the lease
    assert (kept.owner, kept.lease_until) == ("a", LATER)
    assert await ls.get(kept.id) == kept  # type: ignore[arg-type]
    assert kept.version == 11
    for row in new:
        assert row.id is not None
        assert (row.owner, row.lease_until) == ("a", LATER)
        assert await ls.get(row.id) == row
    # nothing of the lost ones is written, their objects are as they were
    assert await ls.get(stolen.id) == theirs  # type: ignore[arg-type]
    assert await ls.get(vanished.id) is None  # type: ignore[arg-type]
    assert await ls.get(unclaimed.id) == as_stored  # type: ignore[arg-type]
    assert [r.lease_until for r in (stolen, vanished, unclaimed)] == [5, 5, 5]
    assert await ls.count() == 6
    assert await ls.write([], "a", lease_until=LATER) == []


async def test_write_refuses_bad_rows_and_writes_nothing(ls: LeaseStore) -> None:
    row = publication(1)
    await ls.write([row], "a", lease_until=LEASE)
    before = await everything(ls)
    changed = row.copy(version=50)
    for bad, words in [
        (publication(2, event=3), "event 3"),
        (publication(2, from_tag="x"), "publication has no from_tag"),
        (changed, "appears twice"),
    ]:
        with pytest.raises(ValueError, match=words):
            await ls.write([changed, bad], "a", lease_until=LATER)
    with pytest.raises(ValueError, match="owner is longer than 255"):
        await ls.write([changed], "n" * 256, lease_until=LATER)
    assert await everything(ls) == before
    assert row.lease_until == LEASE


# --- remove / find ------------------------------------------------------------------------
async def test_remove_leaves_the_rows_of_others(ls: LeaseStore) -> None:
    rows = [
        publication(1, owner="a", lease_until=LEASE),
        subscription(2, owner="a", lease_until=NOW - 100),
        publication(3, owner="b", lease_until=LEASE),
        publication(4),
        publication(5, owner="a", lease_until=LEASE),
    ]
    await ls.insert(rows)
    gone = max(ids(rows)) + 100
    asked = [rows[3].id, rows[2].id, gone, rows[1].id, rows[0].id]
    left = await ls.remove(asked, "a")  # type: ignore[arg-type]
    # a row nobody owns is not ours to delete either
    assert left == [rows[2].id, rows[3].id]
    assert ids(await everything(ls)) == ids(rows[2:])
    assert await ls.remove([], "a") == []
    assert await ls.remove([gone], "a") == []


async def test_find(db: Db, ls: LeaseStore) -> None:
    rows = [
        publication(1, pres_uri="sip:x@example.com"),
        subscription(2, pres_uri="sip:x@example.com", call_id="c1@h", from_tag="f1"),
        subscription(3, pres_uri="sip:x@example.com", call_id="c1@h", from_tag="f2"),
        subscription(4, pres_uri="sip:y@example.com", watcher_uri="sip:w2@example.com"),
        publication(5, pres_uri="sip:x@example.com", owner="b", lease_until=LATER),
    ]
    await ls.insert(rows)
    await db.insert_raw(ls, 101, pres_uri="sip:x@example.com", event=512)
    assert await ls.find(pres_uri="sip:x@example.com") == [rows[n] for n in (0, 1, 2, 4)]
    assert await ls.find(pres_uri="sip:x@example.com", watcher_uri="") == [rows[0], rows[4]]
    assert await ls.find(watcher_uri="sip:w2@example.com") == [rows[3]]
    assert await ls.find(call_id="c1@h", from_tag="f2") == [rows[2]]
    assert await ls.find(call_id="c1@h") == rows[1:3]
    # Call-IDs and tags are case-sensitive, also under MySQL's collations
    assert await ls.find(call_id="C1@H") == []
    assert await ls.find(call_id="c1@h ") == []
    assert await ls.find(pres_uri="sip:nobody@example.com") == []
    with pytest.raises(ValueError, match="at least one"):
        await ls.find()


async def test_find_any_of_several_values(db: Db, ls: LeaseStore) -> None:
    rows = [
        publication(1, pres_uri="sip:x@example.com"),
        subscription(2, pres_uri="sip:x@example.com", call_id="c1@h", from_tag="f1"),
        subscription(3, pres_uri="sip:y@example.com", call_id="c1@h", from_tag="f2"),
        subscription(4, pres_uri="sip:z@example.com", call_id="c2@h", from_tag="f1"),
    ]
    await ls.insert(rows)
    await db.insert_raw(ls, 101, pres_uri="sip:y@example.com", event=512)
    uris = ["sip:z@example.com", "sip:y@example.com", "sip:z@example.com"]
    assert await ls.find(pres_uri=uris) == rows[2:]
    assert await ls.find(pres_uri=("sip:x@example.com",), watcher_uri="") == rows[:1]
    assert await ls.find(call_id=["c1@h", "c2@h"], from_tag="f1") == [rows[1], rows[3]]
    assert await ls.find(pres_uri=[]) == []
    assert await ls.find(pres_uri=uris, call_id=[]) == []
    # more values than one IN list takes; the same row asked for twice
    # (MySQL's collations find "C1@H" too) comes once
    many = ["C1@H", *(f"other-{n}@h" for n in range(1500)), "c1@h", "c2@h "]
    assert await ls.find(call_id=many) == rows[1:3]
    assert (
        await ls.find(call_id=many, pres_uri=["sip:y@example.com", "sip:x@example.com"])
        == (rows[1:3])
    )


# --- make_store --------------------------------------------------------------------------
def test_stores_are_lease_stores(tmp_path: Path) -> None:
    assert isinstance(MemoryStore(), LeaseStore)
    assert isinstance(SqlStore(f"sqlite:///{tmp_path}/x.sqlite"), LeaseStore)
    url = f"sqlite:///{tmp_path}/x.sqlite"
    shared = make_store(PuaConfig(db_url=url, db_mode=2, db_table_lock_write=1))
    assert isinstance(shared, SqlStore)
    assert shared.lock_table
    unlocked = make_store(PuaConfig(db_url=url, db_mode=2, db_table_lock_write=0))
    assert isinstance(unlocked, SqlStore)
    assert not unlocked.lock_table
    alone = make_store(PuaConfig(db_url=url, db_mode=0, db_table_lock_write=1))
    assert isinstance(alone, SqlStore)
    assert not alone.lock_table


# --- SQL only: several nodes on one table --------------------------------------------------
async def _opened(db: Db, *, lock_table: bool = False, lock_timeout: float = 30.0) -> SqlStore:
    assert db.url is not None
    store = SqlStore(db.url, db.table, lock_table=lock_table, lock_timeout=lock_timeout)
    db.stores.append(store)
    await store.open()
    return store


async def test_concurrent_claimers_get_disjoint_rows(sql_db: Db) -> None:
    one = await _opened(sql_db)
    two = await _opened(sql_db)
    rows = [publication(n) if n % 3 else subscription(n) for n in range(40)]
    await one.insert(rows)

    async def drain(store: SqlStore, node: str) -> list[int]:
        got: list[int] = []
        while batch := await store.claim(node, now=NOW, lease_until=LEASE, limit=3):
            assert all(row.owner == node for row in batch)
            got.extend(ids(batch))
        return got

    first, second = await asyncio.gather(drain(one, "a"), drain(two, "b"))
    assert set(first).isdisjoint(second)
    assert sorted(first + second) == ids(rows)
    for node, got in (("a", first), ("b", second)):
        assert await one.owned(ids(rows), node) == sorted(got)


@pytest.fixture(params=["postgresql", "mariadb"])
async def server_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    result = Db(request.param, _url(request.param, tmp_path))
    try:
        yield result
    finally:
        await result.drop()


async def test_claim_skips_locked_rows_without_waiting(server_db: Db) -> None:
    store = await _opened(server_db)
    rows = [publication(n) for n in range(4)]
    await store.insert(rows)
    locked = asyncio.Event()
    done = asyncio.Event()

    async def hold() -> None:
        # another node in the middle of taking rows 1 and 3
        async with server_db.connect() as conn:
            # one key each: MariaDB's REPEATABLE READ would lock every row
            # a scan passes (an IN list on a tiny table is scanned)
            for row in (rows[0], rows[2]):
                await conn.execute(
                    text(f"SELECT id FROM {server_db.table} WHERE id = :x FOR UPDATE"),
                    {"x": row.id},
                )
            locked.set()
            await done.wait()

    holder = asyncio.create_task(hold())
    try:
        await asyncio.wait_for(locked.wait(), GUARD)
        claimed = await asyncio.wait_for(
            store.claim("a", now=NOW, lease_until=LEASE, limit=10), GUARD
        )
        assert not holder.done()
        assert ids(claimed) == [rows[1].id, rows[3].id]
    finally:
        done.set()
        await holder
    later = await store.claim("b", now=NOW, lease_until=LEASE, limit=10)
    assert ids(later) == [rows[0].id, rows[2].id]


# --- SQL only: the table-wide writer lock ---------------------------------------------------
async def test_lease_methods_work_with_the_table_lock(sql_db: Db) -> None:
    store = await _opened(sql_db, lock_table=True)
    other = await _opened(sql_db, lock_table=True)
    rows = [publication(1), subscription(2), publication(3)]
    await store.insert(rows[:1])
    assert await store.write(rows[1:], "a", lease_until=LEASE) == []
    claimed = await other.claim("b", now=NOW, lease_until=LEASE, limit=10)
    assert ids(claimed) == [rows[0].id]
    assert ids(await store.take([rows[0].id], "a", lease_until=LEASE)) == [rows[0].id]  # type: ignore[list-item]
    assert await store.renew("a", lease_until=LATER) == 3
    rows[0].version = 7
    assert await store.write(rows[:1], "a", lease_until=LATER) == []
    assert await other.write(rows[1:2], "b", lease_until=LATER) == [rows[1].id]
    assert await other.remove([rows[2].id], "b") == [rows[2].id]  # type: ignore[list-item]
    assert await store.remove([rows[2].id], "a") == []  # type: ignore[list-item]
    assert await store.release("a") == 2
    rows[0].lease_until = 0
    assert await other.update([rows[0]]) == []
    assert await store.delete_expired(0) == 0
    assert await other.find(pres_uri=rows[0].pres_uri) == [rows[0]]
    assert ids(await other.claim("b", now=NOW, lease_until=LEASE, limit=10)) == ids(rows[:2])
    if sql_db.backend == "mariadb":
        # the named lock went with each transaction, also a failed one
        name = store._write_lock_name()
        async with sql_db.connect() as conn:
            await conn.execute(text(f"DROP TABLE {sql_db.table}"))
        with pytest.raises(StoreError, match="renew failed"):
            await store.renew("a", lease_until=LATER)
        async with sql_db.connect() as conn:
            assert await conn.scalar(text("SELECT IS_FREE_LOCK(:n)"), {"n": name}) == 1


async def _waiting_for_lock(db: Db, name: str) -> bool:
    """Whether a session of the store waits for the table lock."""
    async with db.connect() as conn:
        if db.backend == "postgresql":
            query = (
                "SELECT count(*) FROM pg_locks WHERE NOT granted "
                "AND relation = CAST(:n AS regclass)"
            )
        else:
            query = (
                "SELECT count(*) FROM information_schema.processlist "
                "WHERE id <> CONNECTION_ID() AND info LIKE 'SELECT GET_LOCK(%' "
                "AND info LIKE CONCAT('%', :n, '%')"
            )
        return bool(await conn.scalar(text(query), {"n": name}))


async def test_a_writer_waits_for_the_table_lock(server_db: Db) -> None:
    store = await _opened(server_db, lock_table=True)
    rows = [publication(1)]
    await store.write(rows, "a", lease_until=LEASE)
    before = rows[0].copy()
    if server_db.backend == "postgresql":
        name = server_db.table
        take, params = f"LOCK TABLE {name} IN EXCLUSIVE MODE", {}
    else:
        name = store._write_lock_name()
        take, params = "SELECT GET_LOCK(:n, 10)", {"n": name}
    locked = asyncio.Event()
    done = asyncio.Event()

    async def hold() -> None:
        # another writer in its transaction
        async with server_db.connect() as conn:
            await conn.execute(text(take), params)
            locked.set()
            await done.wait()
            if server_db.backend == "mariadb":
                await conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})

    holder = asyncio.create_task(hold())
    rows[0].version = 2
    writer: asyncio.Task[list[int]] | None = None
    try:
        await asyncio.wait_for(locked.wait(), GUARD)
        writer = asyncio.create_task(store.write(rows, "a", lease_until=LATER))
        await wait_until(lambda: _waiting_for_lock(server_db, name))
        assert not writer.done()
        # reading goes on meanwhile
        assert await store.find(pres_uri=rows[0].pres_uri) == [before]
    finally:
        done.set()
        await holder
    assert writer is not None
    assert await asyncio.wait_for(writer, GUARD) == []
    assert rows[0].lease_until == LATER
    assert await store.get(rows[0].id) == rows[0]  # type: ignore[arg-type]
    assert rows[0].version == 2


async def test_a_table_lock_not_granted_is_a_store_error() -> None:
    db = Db("mariadb", MYSQL_URL)
    try:
        store = await _opened(db, lock_table=True, lock_timeout=0)
        name = store._write_lock_name()
        async with db.connect() as conn:
            assert await conn.scalar(text("SELECT GET_LOCK(:n, 0)"), {"n": name}) == 1
            with pytest.raises(StoreError, match="not granted"):
                await store.write([publication(1)], "a", lease_until=LEASE)
            await conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})
        assert await store.count() == 0
        assert await store.write([publication(1)], "a", lease_until=LEASE) == []
        assert await store.count() == 1
    finally:
        await db.drop()


async def test_lease_methods_fail_as_store_errors(sql_db: Db) -> None:
    store = await _opened(sql_db)
    await store.insert([publication(1)])
    async with sql_db.connect() as conn:
        await conn.execute(text(f"DROP TABLE {sql_db.table}"))
    for call in (
        store.claim("a", now=NOW, lease_until=LEASE, limit=3),
        store.take([1], "a", lease_until=LEASE),
        store.renew("a", lease_until=LEASE),
        store.write([publication(2)], "a", lease_until=LEASE),
        store.remove([1], "a"),
        store.release("a"),
        store.owned([1], "a"),
        store.find(pres_uri="sip:a@b"),
    ):
        with pytest.raises(StoreError, match="failed"):
            await call
    await store.close()
    with pytest.raises(StoreError, match="not open"):
        await store.claim("a", now=NOW, lease_until=LEASE, limit=3)
