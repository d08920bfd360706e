"""pua's own indexes: leases by owner and by expiry, publications by
presentity (db_mode 2 renews, claims and looks up by them; without them
each is a scan, and on MariaDB a scan in a locking statement locks every
row it passes).

Indexes that exist already are left alone.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pua.store.schema import pua_index_names

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade(*, table: str) -> None:
    present = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}
    for name, columns in pua_index_names(table).items():
        if name not in present:
            op.create_index(name, table, list(columns))


def downgrade(*, table: str) -> None:
    present = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}
    for name in reversed(pua_index_names(table)):
        if name in present:
            op.drop_index(name, table_name=table)
