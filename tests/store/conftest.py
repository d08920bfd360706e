"""Fixtures of the storage contract suite: one store per backend.

``db`` is parametrised over memory, SQLite (a file in ``tmp_path``),
PostgreSQL and MariaDB; ``sql_db`` over the three SQL ones.  Each test gets
its own table ``pua_t<hex>``, dropped afterwards (with its alembic table and
its ``version`` row).  The servers are the ones this machine and CI run;
override with ``PUA_TEST_POSTGRES_URL`` / ``PUA_TEST_MYSQL_URL``.  They are
required: without them these tests fail, they do not skip.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from pua.store.base import Store
from pua.store.memory import MemoryStore
from pua.store.records import COLUMN_NAMES, StoredRecord
from pua.store.sql import SqlStore
from pua.store.url import parse_db_url

POSTGRES_URL = os.environ.get("PUA_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("PUA_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")

BACKENDS = ["memory", "sqlite", "postgresql", "mariadb"]
SQL_BACKENDS = BACKENDS[1:]


@dataclass
class Db:
    """One backend and one fresh table name."""

    backend: str
    url: str | None
    table: str = field(default_factory=lambda: "pua_t" + secrets.token_hex(6))
    stores: list[Store] = field(default_factory=list)

    def make(self, *, fetch_rows: int = 3, table: str | None = None) -> Store:
        """A new (unopened) store on this backend and table."""
        store: Store
        if self.backend == "memory":
            store = MemoryStore(fetch_rows=fetch_rows)
        else:
            assert self.url is not None
            store = SqlStore(self.url, table or self.table, fetch_rows=fetch_rows)
        self.stores.append(store)
        return store

    def connect(self) -> _Raw:
        """Raw SQL on the backend (``{t}`` in statements is the table)."""
        assert self.url is not None
        return _Raw(self)

    async def insert_raw(self, store: Store, row_id: int, **values: Any) -> None:
        """Write a row behind the store's back, unchecked (as a person or
        another program would)."""
        full: dict[str, Any] = {
            "pres_uri": "sip:raw@example.com",
            "pres_id": "raw",
            "event": 1,
            "expires": 0,
            "desired_expires": 0,
            "flag": 0,
            "etag": "",
            "tuple_id": "",
            "watcher_uri": "",
            "call_id": "",
            "to_tag": "",
            "from_tag": f"raw{row_id}",
            "cseq": 0,
            "record_route": "",
            "contact": "",
            "remote_contact": "",
            "version": 0,
            "extra_headers": "",
        }
        full.update(values)
        full["id"] = row_id
        if isinstance(store, MemoryStore):
            store._rows[row_id] = StoredRecord.from_values(full)
            store._next_id = max(store._next_id, row_id + 1)
            return
        columns = [name for name in COLUMN_NAMES if name in full]
        async with self.connect() as conn:
            await conn.execute(
                text(
                    f"INSERT INTO {self.table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join(':' + c for c in columns)})"
                ),
                {c: full[c] for c in columns},
            )

    async def drop(self) -> None:
        for store in self.stores:
            await store.close()
        if self.url is None:
            return
        async with self.connect() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {self.table}"))
            await conn.execute(text(f"DROP TABLE IF EXISTS {self.table}_alembic_version"))
            has_version = await conn.run_sync(lambda sync: sync.dialect.has_table(sync, "version"))
            if has_version:
                await conn.execute(
                    text("DELETE FROM version WHERE table_name = :t"), {"t": self.table}
                )


class _Raw:
    """``async with db.connect() as conn``: a connection in a transaction."""

    def __init__(self, db: Db) -> None:
        assert db.url is not None
        self.engine = create_async_engine(parse_db_url(db.url))
        self.table = db.table

    async def __aenter__(self) -> AsyncConnection:
        self._ctx = self.engine.begin()
        return await self._ctx.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self._ctx.__aexit__(*exc)
        finally:
            await self.engine.dispose()


def _url(backend: str, tmp_path: Path) -> str | None:
    if backend == "memory":
        return None
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/pua.sqlite"
    if backend == "postgresql":
        return POSTGRES_URL
    return MYSQL_URL


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def db(backend: str, tmp_path: Path) -> AsyncIterator[Db]:
    result = Db(backend, _url(backend, tmp_path))
    try:
        yield result
    finally:
        await result.drop()


@pytest.fixture
async def store(db: Db) -> Store:
    """An opened store with ``fetch_rows=3`` on a fresh table (``db``
    closes it)."""
    result = db.make(fetch_rows=3)
    await result.open()
    return result


@pytest.fixture(params=SQL_BACKENDS)
async def sql_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    result = Db(request.param, _url(request.param, tmp_path))
    try:
        yield result
    finally:
        await result.drop()
