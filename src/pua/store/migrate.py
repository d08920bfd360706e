"""Run the alembic revisions of ``pua/store/migrations`` on an open connection.

:func:`upgrade_async` is what :meth:`pua.store.sql.SqlStore.open` calls: it
takes a database-wide lock first (PostgreSQL advisory lock, MySQL
``GET_LOCK``, SQLite's write lock through ``BEGIN IMMEDIATE``), so that
nodes starting together do not create the same table twice.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "HEAD",
    "MIGRATIONS_DIR",
    "current_revision",
    "downgrade",
    "upgrade",
    "upgrade_async",
    "version_table",
]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
#: the newest revision
HEAD: Final = "0003"
_LOCK_NAME: Final = "pua_migrations"
_LOCK_KEY: Final = zlib.crc32(_LOCK_NAME.encode())
_MYSQL_LOCK_TIMEOUT: Final = 60


def version_table(table: str) -> str:
    """The table in which alembic records the revision of ``table``."""
    return f"{table}_alembic_version"


def _config(connection: Connection, table: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["table"] = table
    return config


def upgrade(connection: Connection, table: str, revision: str = "head") -> None:
    """Upgrade ``table`` to ``revision`` (in the caller's transaction)."""
    command.upgrade(_config(connection, table), revision)


def downgrade(connection: Connection, table: str, revision: str) -> None:
    """Downgrade ``table`` to ``revision`` (``"base"``: drop it)."""
    command.downgrade(_config(connection, table), revision)


def current_revision(connection: Connection, table: str) -> str | None:
    """The revision ``table`` is at (``None``: never migrated by pua)."""
    context = MigrationContext.configure(connection, opts={"version_table": version_table(table)})
    return context.get_current_revision()


async def upgrade_async(connection: AsyncConnection, table: str) -> None:
    """Lock, then upgrade ``table`` to the newest revision, unless it is
    there already."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    elif dialect in ("mysql", "mariadb"):
        got = await connection.scalar(
            text("SELECT GET_LOCK(:name, :timeout)"),
            {"name": _LOCK_NAME, "timeout": _MYSQL_LOCK_TIMEOUT},
        )
        if got != 1:
            raise TimeoutError(f"migration lock {_LOCK_NAME} not granted")
    # MySQL's lock belongs to the session, not the transaction: the caller
    # releases it (release_lock) once the transaction has committed, or
    # another node could read the version row before it is written
    if await connection.run_sync(current_revision, table) != HEAD:
        await connection.run_sync(upgrade, table)


async def release_lock(connection: AsyncConnection) -> None:
    """Release MySQL's migration lock (after the upgrade's commit)."""
    if connection.dialect.name in ("mysql", "mariadb"):
        await connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": _LOCK_NAME})
