"""The storage contract on SQLite, PostgreSQL or MySQL/MariaDB.

SQLAlchemy Core (async) with aiosqlite, asyncpg or aiomysql.  Each store
method is one transaction on a pooled connection; batches go to the
database as one ``executemany`` (inserts with ``RETURNING id`` where the
database has it: PostgreSQL, SQLite >= 3.35, MariaDB >= 10.5; one by one
otherwise).  :meth:`SqlStore.open` brings the table to the current schema
with the alembic revisions of ``pua/store/migrations``.

The unique index
----------------
Kamailio's ``pua_idx`` is UNIQUE over ``(etag, tuple_id, call_id,
from_tag)``.  Rows as Kamailio writes them collide on it: two publications
not confirmed yet (``etag = ''``) with the same tuple id, two publications
to which two servers gave the same entity-tag, two dialogs of one forked
SUBSCRIBE, a temporary and a confirmed row of one dialog (Kamailio issues
377, 104).  So the store fills, in each row it writes, the one key column
Kamailio never reads for that kind of row with a fresh unique token
(``pua.<32 hex digits>``):

* a publication's ``from_tag`` (Kamailio restores no dialog fields of a
  publication);
* a subscription's ``etag`` (Kamailio restores no entity-tag of a dialog).

The key is then unique whatever the other three columns hold (also under
MySQL's case-insensitive collations).  Reading maps the column back to
``''``, so callers never see the token; writing requires it to be ``''``.

Leases
------
:class:`SqlStore` is a :class:`~pua.store.base.LeaseStore` too (``db_mode``
2): rows are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and written
compare-and-set on ``owner``.  SQLite has no row locks: its writing
transactions (``BEGIN IMMEDIATE``) exclude each other instead.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

from alembic.util import CommandError
from sqlalchemy import (
    MetaData,
    Table,
    bindparam,
    event,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from pua.config import ConfigError, PuaConfig
from pua.store.base import LeaseStore, StoreError, check_rows, find_columns
from pua.store.memory import MemoryStore
from pua.store.migrate import release_lock, upgrade_async
from pua.store.records import COLUMN_NAMES, StoredRecord
from pua.store.schema import SchemaError, build_pua_table
from pua.store.url import MEMORY_SQLITE, describe_url, parse_db_url

__all__ = ["SqlStore", "make_store"]

log = logging.getLogger("pua.store")

_TABLE_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
_TOKEN_PREFIX: Final = "pua."
#: ids per ``IN (...)`` list
_CHUNK: Final = 1000
_PROBLEM_MAX: Final = 500
# what a database failure looks like on the way out of SQLAlchemy/drivers
_DB_ERRORS: Final = (SQLAlchemyError, OSError, TimeoutError)
_WRITE_COLUMNS: Final = tuple(name for name in COLUMN_NAMES if name != "id")
#: MySQL refuses longer GET_LOCK names
_LOCK_NAME_MAX: Final = 64


def _token() -> str:
    return _TOKEN_PREFIX + secrets.token_hex(16)


def check_table_name(table: str) -> None:
    """Raise :class:`ConfigError` for a ``db_table`` pua will not use."""
    if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table):
        raise ConfigError(
            "db_table",
            "must be 1 to 32 letters, digits or '_', not starting with a digit",
        )


class SqlStore:
    """A :class:`~pua.store.base.Store` on an SQL database.

    ``url`` is a ``db_url`` in Kamailio's or SQLAlchemy's form (see
    :mod:`pua.store.url`; a bad one raises :class:`ConfigError` here);
    ``table`` the ``db_table``; ``fetch_rows`` the default page size of
    :meth:`load`.  With ``lock_table`` (``db_table_lock_write`` in
    ``db_mode`` 2) every writing method first takes a lock that serialises
    the writers of the table (see :class:`~pua.store.base.LeaseStore`);
    ``lock_timeout`` is how long MySQL/MariaDB's ``GET_LOCK`` waits for it
    (PostgreSQL waits as for any lock).
    """

    def __init__(
        self,
        url: str | URL,
        table: str = "pua",
        *,
        fetch_rows: int = 500,
        base_dir: str | None = None,
        pool_size: int = 5,
        connect_timeout: float = 10.0,
        busy_timeout: float = 5.0,
        lock_table: bool = False,
        lock_timeout: float = 30.0,
    ) -> None:
        self.url = url if isinstance(url, URL) else parse_db_url(url, base_dir=base_dir)
        check_table_name(table)
        if fetch_rows < 1:
            raise ConfigError("fetch_rows", f"must be >= 1, got {fetch_rows}")
        self.table_name = table
        self.fetch_rows = fetch_rows
        self.name = describe_url(self.url)
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.busy_timeout = busy_timeout
        self.lock_table = lock_table
        self.lock_timeout = lock_timeout
        self._engine: AsyncEngine | None = None
        self._table: Table | None = None

    def __repr__(self) -> str:
        return f"SqlStore({self.name!r}, table={self.table_name!r})"

    # --- connections and errors ---------------------------------------------
    def _make_engine(self) -> AsyncEngine:
        backend = self.url.get_backend_name()
        options: dict[str, Any] = {"pool_pre_ping": True}
        connect_args: dict[str, Any] = {}
        if backend == "sqlite":
            connect_args["timeout"] = self.busy_timeout
            if self.url.database in (None, "", MEMORY_SQLITE):
                options["poolclass"] = StaticPool
            else:
                options["pool_size"] = self.pool_size
        elif backend == "postgresql":
            connect_args["timeout"] = self.connect_timeout
            options["pool_size"] = self.pool_size
        else:
            connect_args["connect_timeout"] = max(1, round(self.connect_timeout))
            options["pool_size"] = self.pool_size
        engine = create_async_engine(self.url, connect_args=connect_args, **options)
        if backend == "sqlite":
            _sqlite_transactions(engine, in_memory="poolclass" in options)
        return engine

    def _error(self, operation: str, exc: BaseException, *, unreachable: bool) -> StoreError:
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            # the driver's own exception class says most (asyncpg's sits
            # behind SQLAlchemy's DBAPI adapter)
            cause = exc.orig.__cause__ or exc.orig
            problem = f"{type(cause).__name__}: {exc.orig}"
        else:
            problem = f"{type(exc).__name__}: {exc}"
        password = self.url.password
        if password:
            problem = problem.replace(str(password), "***")
        problem = " ".join(problem.split())[:_PROBLEM_MAX]
        return StoreError(self.name, operation, problem, unreachable=unreachable)

    def _require(self, operation: str) -> tuple[AsyncEngine, Table]:
        if self._engine is None or self._table is None:
            raise StoreError(self.name, operation, "the store is not open")
        return self._engine, self._table

    @asynccontextmanager
    async def _transaction(
        self, operation: str, engine: AsyncEngine, *, write: bool = True
    ) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction; every database failure becomes a
        :class:`StoreError` (``unreachable`` when no connection was had).
        A writing transaction takes the table's writer lock first when the
        store has ``lock_table``."""
        try:
            conn = await engine.connect()
        except _DB_ERRORS as exc:
            raise self._error(operation, exc, unreachable=True) from exc
        named_lock: str | None = None
        try:
            if not write:
                await conn.execution_options(pua_read=True)
            try:
                async with conn.begin():
                    if write and self.lock_table and operation != "open":
                        named_lock = await self._lock_table(conn)
                    yield conn
            finally:
                if operation == "open":
                    # after the commit (or the rollback): see upgrade_async
                    await release_lock(conn)
                if named_lock is not None:
                    await self._unlock_table(conn, named_lock)
        except (*_DB_ERRORS, SchemaError, CommandError) as exc:
            raise self._error(operation, exc, unreachable=False) from exc
        finally:
            try:
                await conn.close()
            except _DB_ERRORS as exc:  # the connection died with the error
                log.debug("closing a connection to %s: %s", self.name, exc)

    def _write_lock_name(self) -> str:
        # named locks are server-wide: the database tells equal tables apart
        name = f"pua_write.{self.url.database or ''}.{self.table_name}"
        if len(name) > _LOCK_NAME_MAX:
            name = "pua_write." + hashlib.sha256(name.encode()).hexdigest()[:40]
        return name

    async def _lock_table(self, conn: AsyncConnection) -> str | None:
        """Take the writer lock; return the MySQL lock name to release
        after the transaction (a named lock outlives the commit)."""
        dialect = conn.dialect.name
        if dialect == "postgresql":
            quoted = conn.dialect.identifier_preparer.quote(self.table_name)
            # EXCLUSIVE: readers go on, every other writer waits
            await conn.execute(text(f"LOCK TABLE {quoted} IN EXCLUSIVE MODE"))
        elif dialect in ("mysql", "mariadb"):
            name = self._write_lock_name()
            got = await conn.scalar(
                text("SELECT GET_LOCK(:name, :timeout)"),
                {"name": name, "timeout": self.lock_timeout},
            )
            if got != 1:
                raise TimeoutError(f"table lock {name} not granted within {self.lock_timeout:g} s")
            return name
        return None

    async def _unlock_table(self, conn: AsyncConnection, name: str) -> None:
        try:
            await conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        except _DB_ERRORS as exc:
            # the transaction is over (its outcome stands); a session that
            # may still hold the lock must not go back to the pool
            log.warning("releasing lock %s on %s: %s", name, self.name, exc)
            await conn.invalidate()

    # --- lifecycle --------------------------------------------------------------
    async def open(self) -> None:
        """Connect, then create or upgrade the table (alembic)."""
        if self._engine is not None:
            return
        engine = self._make_engine()
        try:
            async with self._transaction("open", engine) as conn:
                await upgrade_async(conn, self.table_name)
        except BaseException:
            await engine.dispose()
            raise
        self._table = build_pua_table(MetaData(), self.table_name, engine.dialect.name)
        self._engine = engine

    async def close(self) -> None:
        engine, self._engine, self._table = self._engine, None, None
        if engine is not None:
            await engine.dispose()

    async def __aenter__(self) -> SqlStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- rows <-> parameters --------------------------------------------------
    @staticmethod
    def _params(row: StoredRecord, *, with_id: bool = False) -> dict[str, Any]:
        values = {name: getattr(row, name) for name in _WRITE_COLUMNS}
        if row.watcher_uri == "":
            values["from_tag"] = _token()
        else:
            values["etag"] = _token()
        if with_id:
            values["id"] = row.id
        return values

    @staticmethod
    def _record(mapping: Any) -> StoredRecord | None:
        record = StoredRecord.from_values(dict(mapping))
        # the closer look only for rows the quick one doubts (hand-written
        # rows, another program's): 100k good rows load a second faster
        found = [] if record.readable() else record.problems()
        if found:
            log.warning("pua row %s skipped: %s", record.id, "; ".join(found))
            return None
        if record.watcher_uri == "":
            record.from_tag = ""
        else:
            record.etag = ""
        return record

    # --- writes -----------------------------------------------------------------
    async def _insert_new(
        self, conn: AsyncConnection, table: Table, rows: Sequence[StoredRecord]
    ) -> list[int]:
        params = [self._params(row) for row in rows]
        if conn.dialect.insert_executemany_returning:
            # each row carries its own unique token (see the module doc):
            # it tells which id is whose, so the database may return them
            # in any order (asking SQLAlchemy for parameter order costs 6x
            # on SQLite)
            c = table.c
            result = await conn.execute(
                table.insert().returning(c.id, c.watcher_uri, c.from_tag, c.etag), params
            )
            by_token = {
                from_tag if watcher_uri == "" else etag: int(row_id)
                for row_id, watcher_uri, from_tag, etag in result
            }
            ids = [
                by_token[values["from_tag"] if row.watcher_uri == "" else values["etag"]]
                for row, values in zip(rows, params, strict=True)
            ]
        else:
            ids = []
            for values in params:
                one = await conn.execute(table.insert(), values)
                key = one.inserted_primary_key
                if key is None:
                    raise SchemaError("the database returned no id for an inserted row")
                ids.append(int(key[0]))
        for row, row_id in zip(rows, ids, strict=True):
            row.id = row_id
        return ids

    async def _insert_again(
        self, conn: AsyncConnection, table: Table, rows: Sequence[StoredRecord]
    ) -> None:
        """Re-insert vanished rows under their ids."""
        await conn.execute(table.insert(), [self._params(row, with_id=True) for row in rows])
        if conn.dialect.name == "postgresql":
            # explicit ids do not move a SERIAL's sequence: make sure it
            # never hands these out again
            quoted = conn.dialect.identifier_preparer.format_table(table)
            sequence = await conn.scalar(
                text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": quoted}
            )
            if sequence is not None:
                await conn.execute(
                    text(
                        "SELECT setval(CAST(:seq AS regclass), GREATEST("
                        "COALESCE(pg_sequence_last_value(CAST(:seq AS regclass)), 0), "
                        f"(SELECT max(id) FROM {quoted})))"
                    ),
                    {"seq": sequence},
                )

    async def _existing(
        self, conn: AsyncConnection, table: Table, ids: list[int], *, owner: str | None = None
    ) -> set[int]:
        """Lock the rows among ``ids`` (of ``owner`` only, when given) and
        return their ids."""
        found: set[int] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            query = select(table.c.id).where(table.c.id.in_(chunk))
            if owner is not None:
                query = query.where(table.c.owner == owner)
            result = await conn.execute(query.with_for_update())
            found.update(int(r[0]) for r in result)
        return found

    async def _update_rows(
        self, conn: AsyncConnection, table: Table, rows: Sequence[StoredRecord]
    ) -> None:
        stmt = table.update().where(table.c.id == bindparam("row_id"))
        params = []
        for row in rows:
            values = self._params(row)
            values["row_id"] = row.id
            params.append(values)
        await conn.execute(stmt, params)

    async def insert(self, rows: Sequence[StoredRecord]) -> list[int]:
        engine, table = self._require("insert")
        check_rows(rows, with_id=False)
        if not rows:
            return []
        async with self._transaction("insert", engine) as conn:
            return await self._insert_new(conn, table, rows)

    async def update(self, rows: Sequence[StoredRecord]) -> list[int]:
        engine, table = self._require("update")
        check_rows(rows, with_id=True)
        if not rows:
            return []
        async with self._transaction("update", engine) as conn:
            present = await self._existing(conn, table, [r.id for r in rows if r.id is not None])
            there = [row for row in rows if row.id in present]
            if there:
                await self._update_rows(conn, table, there)
        return [row.id for row in rows if row.id is not None and row.id not in present]

    async def upsert(self, rows: Sequence[StoredRecord]) -> list[int]:
        engine, table = self._require("upsert")
        check_rows(rows, with_id=None)
        if not rows:
            return []
        new = [row for row in rows if row.id is None]
        known = [row for row in rows if row.id is not None]
        async with self._transaction("upsert", engine) as conn:
            present = await self._existing(conn, table, [r.id for r in known if r.id is not None])
            there = [row for row in known if row.id in present]
            gone = [row for row in known if row.id not in present]
            if there:
                await self._update_rows(conn, table, there)
            if gone:
                log.info(
                    "%s: %d row(s) had vanished, written again: ids %s",
                    self.table_name,
                    len(gone),
                    ", ".join(str(row.id) for row in gone[:20]),
                )
                await self._insert_again(conn, table, gone)
            if new:
                await self._insert_new(conn, table, new)
        return [row.id for row in rows if row.id is not None]

    async def delete(self, ids: Iterable[int]) -> int:
        engine, table = self._require("delete")
        wanted = sorted(set(ids))
        if not wanted:
            return 0
        deleted = 0
        async with self._transaction("delete", engine) as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                result = await conn.execute(table.delete().where(table.c.id.in_(chunk)))
                deleted += result.rowcount
        return deleted

    async def delete_expired(self, before: int) -> int:
        engine, table = self._require("delete_expired")
        async with self._transaction("delete_expired", engine) as conn:
            result = await conn.execute(table.delete().where(table.c.expires < before))
            return result.rowcount

    # --- leases (db_mode 2) -----------------------------------------------------
    async def _lease_rows(
        self,
        conn: AsyncConnection,
        table: Table,
        rows: list[StoredRecord],
        node: str,
        lease_until: int,
    ) -> None:
        """Give rows read (and locked) in this transaction to ``node``."""
        ids = [row.id for row in rows]
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            await conn.execute(
                table.update()
                .where(table.c.id.in_(chunk))
                .values(owner=node, lease_until=lease_until)
            )
        # the rows are locked: what was read plus the lease is what is stored
        for row in rows:
            row.owner = node
            row.lease_until = lease_until

    async def claim(
        self, node: str, *, now: int, lease_until: int, limit: int, own: bool = False
    ) -> list[StoredRecord]:
        engine, table = self._require("claim")
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        c = table.c
        free = [c.owner.is_(None), c.lease_until.is_(None), c.lease_until < now]
        if own:
            free.append(c.owner == node)
        # SQLite renders no FOR UPDATE: its BEGIN IMMEDIATE keeps the other
        # writers out instead
        query = select(table).where(or_(*free)).order_by(c.id).with_for_update(skip_locked=True)
        claimed: list[StoredRecord] = []
        async with self._transaction("claim", engine) as conn:
            last = 0
            # unreadable rows are not claimed, so they must not use up the
            # limit: read on past them
            while len(claimed) < limit:
                wanted = limit - len(claimed)
                raw = (await conn.execute(query.where(c.id > last).limit(wanted))).mappings().all()
                if not raw:
                    break
                last = int(raw[-1]["id"])
                claimed.extend(row for row in map(self._record, raw) if row is not None)
                if len(raw) < wanted:
                    break
            if claimed:
                await self._lease_rows(conn, table, claimed, node, lease_until)
        return claimed

    async def take(self, ids: Iterable[int], node: str, *, lease_until: int) -> list[StoredRecord]:
        engine, table = self._require("take")
        wanted = sorted(set(ids))
        if not wanted:
            return []
        taken: list[StoredRecord] = []
        async with self._transaction("take", engine) as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                result = await conn.execute(
                    select(table)
                    .where(table.c.id.in_(chunk))
                    .order_by(table.c.id)
                    .with_for_update()
                )
                taken.extend(row for row in map(self._record, result.mappings()) if row is not None)
            if taken:
                await self._lease_rows(conn, table, taken, node, lease_until)
        return taken

    async def _set_leases(self, operation: str, node: str, lease_until: int) -> int:
        engine, table = self._require(operation)
        async with self._transaction(operation, engine) as conn:
            result = await conn.execute(
                table.update().where(table.c.owner == node).values(lease_until=lease_until)
            )
            return result.rowcount

    async def renew(self, node: str, *, lease_until: int) -> int:
        return await self._set_leases("renew", node, lease_until)

    async def release(self, node: str) -> int:
        # 0 is before any ``now``: the rows are claimable at once
        return await self._set_leases("release", node, 0)

    async def write(
        self, rows: Sequence[StoredRecord], node: str, *, lease_until: int
    ) -> list[int]:
        engine, table = self._require("write")
        # copies: the caller's rows change only once the write committed
        staged = [row.copy(owner=node, lease_until=lease_until) for row in rows]
        check_rows(staged, with_id=None)
        if not rows:
            return []
        new = [row for row in staged if row.id is None]
        known = [row for row in staged if row.id is not None]
        async with self._transaction("write", engine) as conn:
            mine = await self._existing(
                conn, table, [r.id for r in known if r.id is not None], owner=node
            )
            there = [row for row in known if row.id in mine]
            if there:
                await self._update_rows(conn, table, there)
            if new:
                await self._insert_new(conn, table, new)
        lost = []
        for row, done in zip(rows, staged, strict=True):
            if row.id is not None and row.id not in mine:
                lost.append(row.id)
                continue
            row.id, row.owner, row.lease_until = done.id, node, lease_until
        return lost

    async def remove(self, ids: Iterable[int], node: str) -> list[int]:
        engine, table = self._require("remove")
        wanted = sorted(set(ids))
        if not wanted:
            return []
        left: list[int] = []
        async with self._transaction("remove", engine) as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                await conn.execute(
                    table.delete().where(table.c.id.in_(chunk), table.c.owner == node)
                )
                result = await conn.execute(
                    select(table.c.id).where(table.c.id.in_(chunk)).order_by(table.c.id)
                )
                left.extend(int(r[0]) for r in result)
        return left

    async def owned(self, ids: Iterable[int], node: str) -> list[int]:
        engine, table = self._require("owned")
        wanted = sorted(set(ids))
        if not wanted:
            return []
        found: list[int] = []
        async with self._transaction("owned", engine, write=False) as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                result = await conn.execute(
                    select(table.c.id)
                    .where(table.c.id.in_(chunk), table.c.owner == node)
                    .order_by(table.c.id)
                )
                found.extend(int(r[0]) for r in result)
        return found

    async def find(
        self,
        *,
        pres_uri: str | Sequence[str] | None = None,
        watcher_uri: str | Sequence[str] | None = None,
        call_id: str | Sequence[str] | None = None,
        from_tag: str | Sequence[str] | None = None,
    ) -> list[StoredRecord]:
        engine, table = self._require("find")
        wanted = find_columns(
            pres_uri=pres_uri, watcher_uri=watcher_uri, call_id=call_id, from_tag=from_tag
        )
        if not all(wanted.values()):
            return []
        # the longest list goes in chunks, the others whole
        longest = max(wanted, key=lambda name: len(wanted[name]))
        fixed = [table.c[name].in_(values) for name, values in wanted.items() if name != longest]
        listed = wanted[longest]
        found: dict[int, StoredRecord] = {}
        async with self._transaction("find", engine, write=False) as conn:
            for start in range(0, len(listed), _CHUNK):
                chunk = listed[start : start + _CHUNK]
                result = await conn.execute(
                    select(table).where(table.c[longest].in_(chunk), *fixed)
                )
                # keyed by id: under MySQL's collations two chunks may
                # find one row ("A" and "a")
                for row in map(self._record, result.mappings()):
                    if row is not None and row.id is not None:
                        found[row.id] = row
        # MySQL's collations ignore case and trailing spaces: compare again
        return [
            row
            for _, row in sorted(found.items())
            if all(getattr(row, name) in values for name, values in wanted.items())
        ]

    # --- reads --------------------------------------------------------------------
    async def get(self, id: int) -> StoredRecord | None:
        engine, table = self._require("get")
        async with self._transaction("get", engine, write=False) as conn:
            result = await conn.execute(select(table).where(table.c.id == id))
            row = result.mappings().first()
        return None if row is None else self._record(row)

    async def load(
        self, *, owner: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[list[StoredRecord]]:
        engine, table = self._require("load")
        size = self.fetch_rows if page_size is None else page_size
        if size < 1:
            raise ValueError(f"page_size must be >= 1, got {size}")
        query = select(table).order_by(table.c.id).limit(size)
        names = [column.name for column in table.c]
        id_index = names.index("id")
        if owner is not None:
            query = query.where(or_(table.c.owner.is_(None), table.c.owner == owner))
        last = 0
        while True:
            async with self._transaction("load", engine, write=False) as conn:
                result = await conn.execute(query.where(table.c.id > last))
                # plain tuples: building mappings costs more than the rows
                raw = result.all()
            if not raw:
                return
            last = int(raw[-1][id_index])
            page = [
                record
                for record in (self._record(dict(zip(names, row, strict=True))) for row in raw)
                if record is not None
            ]
            if page:
                yield page
            if len(raw) < size:
                return

    async def count(self) -> int:
        engine, table = self._require("count")
        async with self._transaction("count", engine, write=False) as conn:
            return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


def _sqlite_transactions(engine: AsyncEngine, *, in_memory: bool) -> None:
    """SQLite: real transactions (the sqlite3 module's implicit ones skip
    DDL and SELECT), ``BEGIN IMMEDIATE`` for writes so that concurrent
    writers wait on the busy timeout instead of failing, WAL journal."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode")
            row = cursor.fetchone()
            if row is None or str(row[0]).lower() != "wal":
                # the mode is kept in the file: when another connection is
                # switching it right now (the lock is busy), it gets there
                try:
                    cursor.execute("PRAGMA journal_mode=WAL")
                except sqlite3.OperationalError as exc:
                    log.debug("journal_mode=WAL not set now: %s", exc)
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        read = conn.get_execution_options().get("pua_read", False)
        conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def make_store(config: PuaConfig, *, base_dir: str | None = None) -> LeaseStore:
    """The store ``config`` asks for: :class:`MemoryStore` when ``db_url`` is
    empty, else :class:`SqlStore` on ``db_url`` / ``db_table`` (its writers
    lock the table in ``db_mode`` 2 with ``db_table_lock_write``)."""
    if not config.db_url.strip():
        return MemoryStore(fetch_rows=config.fetch_rows)
    return SqlStore(
        config.db_url,
        config.db_table,
        fetch_rows=config.fetch_rows,
        base_dir=base_dir,
        lock_table=bool(config.db_table_lock_write) and config.db_mode == 2,
    )
