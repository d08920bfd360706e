"""Storage of publication and subscription rows (Kamailio's ``pua`` table).

* :class:`~pua.store.records.StoredRecord`: one row (Kamailio's columns,
  then pua's own);
* :class:`~pua.store.base.Store`: the contract; :class:`StoreError`;
* :class:`~pua.store.memory.MemoryStore`: in a dict;
* :class:`~pua.store.sql.SqlStore`: SQLite, PostgreSQL, MySQL/MariaDB,
  and :func:`~pua.store.sql.make_store`, which picks one from a
  :class:`~pua.config.PuaConfig`.

``SqlStore`` and ``make_store`` are imported on first use, so that
importing the rest does not load SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pua.store.base import Store, StoreError
from pua.store.memory import MemoryStore
from pua.store.records import StoredRecord

if TYPE_CHECKING:
    from pua.store.sql import SqlStore, make_store

__all__ = ["MemoryStore", "SqlStore", "Store", "StoreError", "StoredRecord", "make_store"]


def __getattr__(name: str) -> Any:
    if name in ("SqlStore", "make_store"):
        from pua.store import sql  # noqa: PLC0415 (SQLAlchemy on first use)

        return getattr(sql, name)
    raise AttributeError(f"module 'pua.store' has no attribute {name!r}")
