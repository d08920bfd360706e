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
"""

from __future__ import annotations

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
from pua.store.base import Store, StoreError, check_rows
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
    :meth:`load`.
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
        :class:`StoreError` (``unreachable`` when no connection was had)."""
        try:
            conn = await engine.connect()
        except _DB_ERRORS as exc:
            raise self._error(operation, exc, unreachable=True) from exc
        try:
            if not write:
                await conn.execution_options(pua_read=True)
            try:
                async with conn.begin():
                    yield conn
            finally:
                if operation == "open":
                    # after the commit (or the rollback): see upgrade_async
                    await release_lock(conn)
        except (*_DB_ERRORS, SchemaError, CommandError) as exc:
            raise self._error(operation, exc, unreachable=False) from exc
        finally:
            try:
                await conn.close()
            except _DB_ERRORS as exc:  # the connection died with the error
                log.debug("closing a connection to %s: %s", self.name, exc)

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

    async def _existing(self, conn: AsyncConnection, table: Table, ids: list[int]) -> set[int]:
        found: set[int] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            result = await conn.execute(
                select(table.c.id).where(table.c.id.in_(chunk)).with_for_update()
            )
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


def make_store(config: PuaConfig, *, base_dir: str | None = None) -> Store:
    """The store ``config`` asks for: :class:`MemoryStore` when ``db_url`` is
    empty, else :class:`SqlStore` on ``db_url`` / ``db_table``."""
    if not config.db_url.strip():
        return MemoryStore(fetch_rows=config.fetch_rows)
    return SqlStore(config.db_url, config.db_table, fetch_rows=config.fetch_rows, base_dir=base_dir)
