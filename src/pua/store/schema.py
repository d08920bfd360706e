"""The ``pua`` table (Kamailio schema version 7) and the ``version`` table.

Column types, nullability and index columns follow Kamailio's
``pr_pua.xml`` (spec §15).  Index names follow Kamailio's generated SQL:
MySQL names are per table (``pua_idx``, ``expires_idx``, ...), PostgreSQL
and SQLite names are per schema and carry the table name as prefix
(``pua_pua_idx``, ``pua_expires_idx``, ... for the table ``pua``).

pua's own columns (:data:`~pua.store.records.PUA_COLUMNS`) come after
Kamailio's, all NULLable, so that Kamailio (which reads by name, and whose
``clean_puadb`` reads its own columns by position) is not disturbed.

The tables are built per dialect, because the index names and a few types
depend on it (MySQL: ``INT UNSIGNED`` id, ``MEDIUMBLOB`` body; SQLite:
``AUTOINCREMENT`` so that an id is never handed out twice).
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeEngine

from pua.store.records import COLUMNS, ColumnSpec

__all__ = [
    "PUA_TABLE_VERSION",
    "VERSION_TABLE",
    "SchemaError",
    "build_pua_table",
    "build_version_table",
    "index_names",
    "pua_extra_columns",
]

#: the ``version`` table entry Kamailio requires for the ``pua`` table
PUA_TABLE_VERSION: Final = 7
#: Kamailio's table of table versions (shared by every module)
VERSION_TABLE: Final = "version"


class SchemaError(Exception):
    """An existing table pua cannot use as is (wrong version, columns missing)."""


def _is_mysql(dialect: str) -> bool:
    return dialect in ("mysql", "mariadb")


def _type(spec: ColumnSpec) -> TypeEngine[Any]:
    kind = spec.kind
    result: TypeEngine[Any]
    if kind == "id":
        result = Integer().with_variant(mysql.INTEGER(unsigned=True), "mysql", "mariadb")
    elif kind == "int":
        result = Integer()
    elif kind == "bigint":
        result = BigInteger()
    elif kind == "varchar":
        result = String(spec.length)
    elif kind == "text":
        result = Text()
    else:
        # MySQL's BLOB stops at 64 KiB; bodies get up to 16 MiB everywhere
        result = LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")
    return result


def _column(spec: ColumnSpec) -> Column[Any]:
    if spec.kind == "id":
        return Column(spec.name, _type(spec), primary_key=True, autoincrement=True)
    return Column(spec.name, _type(spec), nullable=spec.nullable)


def index_names(table: str, dialect: str) -> dict[str, str]:
    """Kamailio's index names for ``table`` on ``dialect`` (key: the name
    in ``pr_pua.xml``)."""
    keys = ("pua_idx", "expires_idx", "dialog1_idx", "dialog2_idx", "record_idx")
    if _is_mysql(dialect):
        return {key: key for key in keys}
    return {key: f"{table}_{key}" for key in keys}


def pua_index_names(table: str) -> dict[str, tuple[str, ...]]:
    """pua's own indexes of ``table`` (name: columns): db_mode 2 renews and
    claims leases by owner and lease, and looks publications up by
    presentity (Kamailio's indexes all start with ``pres_id`` or
    ``call_id``)."""
    return {
        f"{table}_pua_owner_idx": ("owner", "lease_until"),
        f"{table}_pua_lease_idx": ("lease_until",),
        f"{table}_pua_pres_idx": ("pres_uri",),
    }


def build_pua_table(
    metadata: MetaData, table: str, dialect: str, *, with_pua_columns: bool = True
) -> Table:
    """The ``pua`` table named ``table`` for ``dialect``: Kamailio's columns
    and indexes, then (``with_pua_columns``) pua's."""
    names = index_names(table, dialect)
    columns = [_column(spec) for spec in COLUMNS if spec.kamailio or with_pua_columns]
    extra = (
        [Index(name, *cols) for name, cols in pua_index_names(table).items()]
        if with_pua_columns
        else []
    )
    return Table(
        table,
        metadata,
        *columns,
        UniqueConstraint("etag", "tuple_id", "call_id", "from_tag", name=names["pua_idx"]),
        Index(names["expires_idx"], "expires"),
        Index(names["dialog1_idx"], "pres_id", "pres_uri"),
        Index(names["dialog2_idx"], "call_id", "from_tag"),
        Index(names["record_idx"], "pres_id"),
        *extra,
        sqlite_autoincrement=True,
        mysql_engine="InnoDB",
    )


def pua_extra_columns() -> list[Column[Any]]:
    """New Column objects for pua's own columns (for ``ALTER TABLE``)."""
    return [_column(spec) for spec in COLUMNS if not spec.kamailio]


def build_version_table(metadata: MetaData, dialect: str) -> Table:
    """Kamailio's ``version`` table (``standard-create.sql``)."""
    unique_name = "table_name_idx" if _is_mysql(dialect) else "version_table_name_idx"
    return Table(
        VERSION_TABLE,
        metadata,
        Column(
            "id",
            Integer().with_variant(mysql.INTEGER(unsigned=True), "mysql", "mariadb"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("table_name", String(32), nullable=False),
        Column("table_version", Integer(), nullable=False, server_default=text("0")),
        UniqueConstraint("table_name", name=unique_name),
        mysql_engine="InnoDB",
    )
