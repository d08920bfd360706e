"""Alembic environment for the ``pua`` table.

Run by :mod:`pua.store.migrate` with an open connection in
``config.attributes["connection"]`` and the table name in
``config.attributes["table"]``.  From the command line (a developer's
``alembic -c some.ini upgrade head``), the database comes from ``-x url=...``
(any form :func:`pua.store.url.parse_db_url` takes) or ``sqlalchemy.url``,
and the table from ``-x table=...`` (default ``pua``).

Alembic's own bookkeeping lives in ``<table>_alembic_version`` (for the
table ``pua``: ``pua_alembic_version``), so that it never clashes with an
application's ``alembic_version`` and each ``pua`` table of a database
has its own history.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from pua.store.migrate import version_table
from pua.store.url import parse_db_url


def _run(connection: Connection, table: str) -> None:
    context.configure(connection=connection, version_table=version_table(table))
    with context.begin_transaction():
        context.run_migrations(table=table)


async def _run_from_url(url: str, table: str) -> None:
    engine = create_async_engine(parse_db_url(url))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run, table)
    finally:
        await engine.dispose()


def main() -> None:
    if context.is_offline_mode():
        raise SystemExit("pua migrations: offline (--sql) mode is not supported")
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection, config.attributes["table"])
        return
    args = context.get_x_argument(as_dictionary=True)
    url = args.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("pua migrations: give the database as -x url=... or sqlalchemy.url")
    asyncio.run(_run_from_url(url, args.get("table", "pua")))


main()
