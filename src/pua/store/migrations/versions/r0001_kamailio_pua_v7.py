"""Kamailio's ``pua`` table, version 7, and its ``version`` row.

A table that exists already (made by ``kamdbctl``, by Kamailio's SQL files
or by an earlier pua) is accepted as it is, provided it has Kamailio's 19
columns and the ``version`` table does not say another version than 7.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pua.store.records import KAMAILIO_COLUMNS
from pua.store.schema import (
    PUA_TABLE_VERSION,
    VERSION_TABLE,
    SchemaError,
    build_pua_table,
    build_version_table,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade(*, table: str) -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    inspector = sa.inspect(bind)
    metadata = sa.MetaData()
    version = build_version_table(metadata, dialect)
    if not inspector.has_table(VERSION_TABLE):
        version.create(bind)
        bind.execute(version.insert().values(table_name=VERSION_TABLE, table_version=1))
    row = bind.execute(
        sa.select(version.c.table_version).where(version.c.table_name == table)
    ).first()
    if inspector.has_table(table):
        present = {c["name"] for c in inspector.get_columns(table)}
        missing = [name for name in KAMAILIO_COLUMNS if name not in present]
        if row is not None and row[0] != PUA_TABLE_VERSION:
            raise SchemaError(
                f"table {table} is at version {row[0]} in the version table, "
                f"pua needs version {PUA_TABLE_VERSION}"
            )
        if missing:
            raise SchemaError(f"table {table} lacks Kamailio's columns {', '.join(missing)}")
    else:
        build_pua_table(metadata, table, dialect, with_pua_columns=False).create(bind)
        if row is not None:
            bind.execute(version.delete().where(version.c.table_name == table))
            row = None
    if row is None:
        bind.execute(version.insert().values(table_name=table, table_version=PUA_TABLE_VERSION))


def downgrade(*, table: str) -> None:
    bind = op.get_bind()
    metadata = sa.MetaData()
    version = build_version_table(metadata, bind.dialect.name)
    op.drop_table(table)
    bind.execute(version.delete().where(version.c.table_name == table))
