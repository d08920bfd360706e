"""What only the SQL stores do: schema, migrations, Kamailio's own tables,
database failures.  Run on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from pua.store import migrate
from pua.store.base import StoreError
from pua.store.records import COLUMN_NAMES, KAMAILIO_COLUMNS, PUA_COLUMNS, StoredRecord
from pua.store.schema import pua_index_names
from pua.store.sql import SqlStore
from tests.store.conftest import MYSQL_URL, POSTGRES_URL, SQL_BACKENDS, Db
from tests.store.test_contract import everything, publication, subscription

KAMAILIO_SQLITE = Path("/usr/share/kamailio/db_sqlite")

# The pua table as Kamailio's schema (spec §15) defines it, for the servers
# whose Kamailio SQL files Debian ships in packages CI does not install.
_KAMAILIO_COLUMNS_DDL = """
    pres_uri VARCHAR(255) NOT NULL,
    pres_id VARCHAR(255) NOT NULL,
    event INT NOT NULL,
    expires INT NOT NULL,
    desired_expires INT NOT NULL,
    flag INT NOT NULL,
    etag VARCHAR(128) NOT NULL,
    tuple_id VARCHAR(64),
    watcher_uri VARCHAR(255) NOT NULL,
    call_id VARCHAR(255) NOT NULL,
    to_tag VARCHAR(128) NOT NULL,
    from_tag VARCHAR(128) NOT NULL,
    cseq INT NOT NULL,
    record_route TEXT,
    contact VARCHAR(255) NOT NULL,
    remote_contact VARCHAR(255) NOT NULL,
    version INT NOT NULL,
    extra_headers TEXT NOT NULL,
"""
_DDL = {
    "postgresql": [
        "CREATE TABLE IF NOT EXISTS version (id SERIAL PRIMARY KEY NOT NULL, "
        "table_name VARCHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL, "
        "CONSTRAINT version_table_name_idx UNIQUE (table_name))",
        "CREATE TABLE {t} (id SERIAL PRIMARY KEY NOT NULL,"
        + _KAMAILIO_COLUMNS_DDL
        + "CONSTRAINT {t}_pua_idx UNIQUE (etag, tuple_id, call_id, from_tag))",
        "CREATE INDEX {t}_expires_idx ON {t} (expires)",
        "CREATE INDEX {t}_dialog1_idx ON {t} (pres_id, pres_uri)",
        "CREATE INDEX {t}_dialog2_idx ON {t} (call_id, from_tag)",
        "CREATE INDEX {t}_record_idx ON {t} (pres_id)",
    ],
    "mariadb": [
        "CREATE TABLE IF NOT EXISTS version (id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY "
        "NOT NULL, table_name VARCHAR(32) NOT NULL, table_version INT UNSIGNED DEFAULT 0 "
        "NOT NULL, CONSTRAINT table_name_idx UNIQUE (table_name))",
        "CREATE TABLE {t} (id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,"
        + _KAMAILIO_COLUMNS_DDL
        + "CONSTRAINT pua_idx UNIQUE (etag, tuple_id, call_id, from_tag))",
        "CREATE INDEX expires_idx ON {t} (expires)",
        "CREATE INDEX dialog1_idx ON {t} (pres_id, pres_uri)",
        "CREATE INDEX dialog2_idx ON {t} (call_id, from_tag)",
        "CREATE INDEX record_idx ON {t} (pres_id)",
    ],
}

# two rows as Kamailio writes them: '' in the unused NOT NULL columns
_KAMAILIO_ROWS = [
    "INSERT INTO {t} (pres_uri, pres_id, event, expires, desired_expires, flag, etag, "
    "tuple_id, watcher_uri, call_id, to_tag, from_tag, cseq, record_route, contact, "
    "remote_contact, version, extra_headers) VALUES ('sip:alice@example.com', 'ul', 1, "
    "1800000000, 0, 1, 'a.1795674236.7088.1.0', 'tuple-1', '', '', '', '', 0, '', '', "
    "'', 3, '')",
    "INSERT INTO {t} (pres_uri, pres_id, event, expires, desired_expires, flag, etag, "
    "tuple_id, watcher_uri, call_id, to_tag, from_tag, cseq, record_route, contact, "
    "remote_contact, version, extra_headers) VALUES ('sip:bob@example.com', 'rls', 32, "
    "1800000000, 1900000000, 512, '', '', 'sip:w@example.com', 'c1@h', 'rt', 'lt', 11, "
    "'<sip:p1;lr>', 'sip:pua@h', 'sip:bob@h2', 0, '')",
]


async def _make_kamailio_table(db: Db, version: int = 7) -> None:
    """Kamailio's ``pua`` table with two rows, and its version row."""
    if db.backend == "sqlite":
        # Kamailio's own SQL files (Debian kamailio-sqlite-modules), table "pua"
        assert db.url is not None
        db.table = "pua"
        path = db.url.removeprefix("sqlite:///")
        lite = sqlite3.connect(path)
        try:
            for name in ("standard-create.sql", "presence-create.sql"):
                lite.executescript((KAMAILIO_SQLITE / name).read_text())
        finally:
            lite.close()
        statements = []
    else:
        statements = list(_DDL[db.backend])
    statements += _KAMAILIO_ROWS
    async with db.connect() as conn:
        for statement in statements:
            await conn.execute(text(statement.format(t=db.table)))
        await conn.execute(text("DELETE FROM version WHERE table_name = :t"), {"t": db.table})
        await conn.execute(
            text("INSERT INTO version (table_name, table_version) VALUES (:t, :v)"),
            {"t": db.table, "v": version},
        )


async def _inspect(db: Db) -> dict[str, object]:
    def look(sync: Connection) -> dict[str, object]:
        insp = inspect(sync)
        return {
            "columns": [c["name"] for c in insp.get_columns(db.table)],
            "unique": sorted(u["name"] or "" for u in insp.get_unique_constraints(db.table))
            + sorted(i["name"] or "" for i in insp.get_indexes(db.table) if i["unique"]),
            "indexes": sorted(i["name"] or "" for i in insp.get_indexes(db.table)),
            "version": sync.execute(
                text("SELECT table_version FROM version WHERE table_name = :t"),
                {"t": db.table},
            ).scalar(),
            "revision": migrate.current_revision(sync, db.table),
        }

    async with db.connect() as conn:
        return await conn.run_sync(look)


async def test_new_table_has_kamailio_schema_then_pua_columns(sql_db: Db) -> None:
    store = sql_db.make()
    await store.open()
    seen = await _inspect(sql_db)
    assert seen["columns"] == list(COLUMN_NAMES)
    assert seen["version"] == 7
    assert seen["revision"] == migrate.HEAD
    prefix = "" if sql_db.backend == "mariadb" else f"{sql_db.table}_"
    assert f"{prefix}pua_idx" in str(seen["unique"])
    for name in ("expires_idx", "dialog1_idx", "dialog2_idx", "record_idx"):
        assert prefix + name in seen["indexes"]  # type: ignore[operator]


async def test_kamailio_table_is_accepted_and_upgraded(sql_db: Db) -> None:
    if sql_db.backend == "sqlite":
        assert (KAMAILIO_SQLITE / "presence-create.sql").exists(), (
            "Debian package kamailio-sqlite-modules is needed (.ci/run installs it)"
        )
    await _make_kamailio_table(sql_db)
    before = await _inspect(sql_db)
    assert before["columns"] == list(KAMAILIO_COLUMNS)
    store = sql_db.make()
    await store.open()
    after = await _inspect(sql_db)
    # Kamailio's columns first and untouched, pua's appended; Kamailio's
    # indexes kept, pua's added
    assert after["columns"] == [*KAMAILIO_COLUMNS, *PUA_COLUMNS]
    kept: list[str] = before["indexes"]  # type: ignore[assignment]
    assert after["indexes"] == sorted([*kept, *pua_index_names(sql_db.table)])
    assert after["unique"] == before["unique"]
    assert after["version"] == 7
    assert after["revision"] == migrate.HEAD
    rows = await everything(store)
    assert [(r.pres_uri, r.is_subscription) for r in rows] == [
        ("sip:alice@example.com", False),
        ("sip:bob@example.com", True),
    ]
    pub, sub = rows
    assert pub.etag == "a.1795674236.7088.1.0"
    assert pub.tuple_id == "tuple-1"
    assert pub.version == 3
    assert sub.record_route == "<sip:p1;lr>"
    assert (sub.call_id, sub.from_tag, sub.to_tag, sub.cseq) == ("c1@h", "lt", "rt", 11)
    assert all(getattr(r, name) is None for r in rows for name in PUA_COLUMNS)
    # the table works for pua now, next to Kamailio's rows
    pub.body, pub.content_type = b"<presence/>", "application/pidf+xml"
    new = [publication(1, etag="", tuple_id="tuple-1"), subscription(2), pub]
    await store.upsert(new)
    assert await store.count() == 4
    assert await store.get(pub.id) == pub  # type: ignore[arg-type]
    # a second start changes nothing
    await store.close()
    await store.open()
    assert await _inspect(sql_db) == after
    assert await store.count() == 4


async def test_kamailio_table_of_another_version_is_refused(sql_db: Db) -> None:
    if sql_db.backend == "sqlite":
        assert (KAMAILIO_SQLITE / "presence-create.sql").exists()
    await _make_kamailio_table(sql_db, version=6)
    store = sql_db.make()
    with pytest.raises(StoreError, match="at version 6 in the version table, pua needs version 7"):
        await store.open()
    seen = await _inspect(sql_db)
    assert seen["columns"] == list(KAMAILIO_COLUMNS)
    assert seen["revision"] is None
    # a table without Kamailio's columns is refused too
    async with sql_db.connect() as conn:
        await conn.execute(text(f"ALTER TABLE {sql_db.table} DROP COLUMN extra_headers"))
        await conn.execute(
            text("UPDATE version SET table_version = 7 WHERE table_name = :t"),
            {"t": sql_db.table},
        )
    with pytest.raises(StoreError, match="lacks Kamailio's columns extra_headers"):
        await store.open()


async def test_downgrade_and_upgrade_keep_rows(sql_db: Db) -> None:
    store = sql_db.make()
    await store.open()
    rows = [publication(1), subscription(2)]
    await store.insert(rows)
    await store.close()
    async with sql_db.connect() as conn:
        await conn.run_sync(migrate.downgrade, sql_db.table, "0001")
    seen = await _inspect(sql_db)
    assert seen["columns"] == list(KAMAILIO_COLUMNS)
    assert seen["revision"] == "0001"
    await store.open()
    assert (await _inspect(sql_db))["columns"] == list(COLUMN_NAMES)
    loaded = await everything(store)
    assert [r.id for r in loaded] == [r.id for r in rows]
    assert loaded[0] == rows[0].copy(body=None, content_type=None)
    await store.close()
    async with sql_db.connect() as conn:
        await conn.run_sync(migrate.downgrade, sql_db.table, "base")
    seen_tables = await _tables(sql_db)
    assert sql_db.table not in seen_tables


async def _tables(db: Db) -> list[str]:
    async with db.connect() as conn:
        return await conn.run_sync(lambda sync: inspect(sync).get_table_names())


async def test_nodes_starting_together_create_the_table_once(sql_db: Db) -> None:
    stores = [sql_db.make() for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    await stores[0].insert([publication(1)])
    assert [await s.count() for s in stores] == [1, 1, 1]
    async with sql_db.connect() as conn:
        versions = await conn.scalar(
            text("SELECT count(*) FROM version WHERE table_name = :t"), {"t": sql_db.table}
        )
    assert versions == 1


async def test_failures_after_open_are_store_errors(sql_db: Db) -> None:
    store = sql_db.make()
    await store.open()
    await store.insert([publication(1)])
    async with sql_db.connect() as conn:
        await conn.execute(text(f"DROP TABLE {sql_db.table}"))
    for call in (
        store.insert([publication(2)]),
        store.upsert([publication(3)]),
        store.count(),
        store.get(1),
        store.delete([1]),
        store.delete_expired(10),
    ):
        with pytest.raises(StoreError) as caught:
            await call
        assert not caught.value.unreachable
        assert caught.value.database == store.name
        assert str(caught.value).startswith(f"database {store.name}: ")
        assert "failed" in str(caught.value)
    with pytest.raises(StoreError, match=r"load failed"):
        await everything(store)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_unreachable_database_names_it_without_password(backend: str, tmp_path: Path) -> None:
    port = _closed_port()
    if backend == "sqlite":
        urls = [f"sqlite:///{tmp_path}/no/such/dir/pua.sqlite"]
        expected = [f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/pua.sqlite"]
    elif backend == "postgresql":
        urls = [f"postgres://pua:s3cr3t-pw@127.0.0.1:{port}/test"]
        expected = [f"postgresql+asyncpg://pua:***@127.0.0.1:{port}/test"]
        base = POSTGRES_URL.rsplit("/", 1)[0]
        urls.append(f"{base}/no_such_database_pua")
        expected.append("no_such_database_pua")
    else:
        urls = [f"mysql://pua:s3cr3t-pw@127.0.0.1:{port}/test"]
        expected = [f"mysql+aiomysql://pua:***@127.0.0.1:{port}/test"]
        base = MYSQL_URL.rsplit("/", 1)[0]
        urls.append(f"{base}/no_such_database_pua")
        expected.append("no_such_database_pua")
    for url, name in zip(urls, expected, strict=True):
        store = SqlStore(url, "pua", connect_timeout=5)
        with pytest.raises(StoreError) as caught:
            await store.open()
        message = str(caught.value)
        assert caught.value.unreachable
        assert message.startswith("database ")
        assert "unreachable (open)" in message
        assert name in message
        assert "s3cr3t-pw" not in message
        with pytest.raises(StoreError, match="not open"):
            await store.insert([StoredRecord(pres_uri="sip:a@b", event=1)])


async def test_in_memory_sqlite_works() -> None:
    async with SqlStore("sqlite://", fetch_rows=2) as store:
        rows = [publication(n) for n in range(3)]
        await store.insert(rows)
        assert [len(page) async for page in store.load()] == [2, 1]
        assert await store.get(rows[2].id) == rows[2]  # type: ignore[arg-type]
