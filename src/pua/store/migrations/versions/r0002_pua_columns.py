"""pua's own columns, NULLable, after Kamailio's.

Columns that exist already are left alone, so a table upgraded by hand (or
whose ``<table>_alembic_version`` was lost) upgrades cleanly.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pua.store.records import PUA_COLUMNS
from pua.store.schema import pua_extra_columns

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade(*, table: str) -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
    for column in pua_extra_columns():
        if column.name not in present:
            op.add_column(table, column)


def downgrade(*, table: str) -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
    for name in reversed(PUA_COLUMNS):
        if name in present:
            op.drop_column(table, name)
