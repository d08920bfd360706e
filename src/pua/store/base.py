"""The storage contract every store keeps (:class:`Store`), and its error.

Rows are :class:`~pua.store.records.StoredRecord` objects.  A store never
keeps or returns the caller's objects: it copies on the way in and on the
way out, except that :meth:`Store.insert` and :meth:`Store.upsert` set
``row.id`` on the rows they were given.

Contract (``tests/store`` runs it against every store):

* ``insert(rows)``: every row must have ``id is None``; the store assigns
  ids (never reusing one), sets ``row.id`` and returns the ids in order.
* ``update(rows)``: every row must have an id; all columns are written.
  A row whose id is no longer in the table is **not** re-created and not an
  error: its id is returned, so the caller can decide (the other rows are
  written).
* ``upsert(rows)``: rows without an id are inserted; rows with one are
  updated, and **re-inserted with the same id** if their row is gone
  (Kamailio's write-back silently stops writing such a record).  Returns
  the ids in order.
* ``delete(ids)``: returns how many rows went; unknown ids are ignored.
* ``get(id)``: the row, or ``None`` (also for a row that cannot be read,
  with a warning).
* ``load(owner=..., page_size=...)``: every row in ``id`` order, in pages
  (a page holds at most ``page_size`` rows; each page is read in its own
  short transaction).  With ``owner``, rows whose ``owner`` column names
  another node are left out; NULL counts as ours.  A row that cannot be a
  record (NULL in a NOT NULL column, wrong type, an ``event`` that is not
  one known event flag, ``state_json`` that is not a JSON object, a body
  without content type) is skipped with a warning naming its id.
* ``count()``, ``delete_expired(before)``: rows in the table; delete rows
  with ``expires < before`` and return how many.

Rows are checked before anything is written: a row that ``load`` would
skip (see :meth:`~pua.store.records.StoredRecord.problems`), a publication
with a ``from_tag`` or a subscription with an ``etag`` raises
:class:`ValueError` (a programming error; nothing is written).  Every
failure of the database itself raises :class:`StoreError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Protocol, runtime_checkable

from pua.errors import PuaError
from pua.store.records import StoredRecord

__all__ = ["LeaseStore", "Store", "StoreError", "check_rows", "find_columns"]


class StoreError(PuaError):
    """The database failed.  ``database`` names it (URL without password),
    ``operation`` is the store method, ``problem`` the driver's words."""

    def __init__(
        self, database: str, operation: str, problem: str, *, unreachable: bool = False
    ) -> None:
        self.database = database
        self.operation = operation
        self.problem = problem
        self.unreachable = unreachable
        if unreachable:
            message = f"database {database} unreachable ({operation}): {problem}"
        else:
            message = f"database {database}: {operation} failed: {problem}"
        super().__init__(message)


@runtime_checkable
class Store(Protocol):
    """Persistent (or not) home of publication and subscription rows."""

    #: the database, for messages (no password)
    name: str

    async def open(self) -> None:
        """Connect and bring the table to the current schema."""
        ...

    async def close(self) -> None:
        """Release connections; the store can be opened again."""
        ...

    async def insert(self, rows: Sequence[StoredRecord]) -> list[int]:
        """Insert new rows; set and return their ids."""
        ...

    async def update(self, rows: Sequence[StoredRecord]) -> list[int]:
        """Write every column of rows that have an id; return the ids whose
        row was gone (those are not written)."""
        ...

    async def upsert(self, rows: Sequence[StoredRecord]) -> list[int]:
        """Insert rows without id, update the others, re-inserting a
        vanished row under its id; set and return the ids."""
        ...

    async def delete(self, ids: Iterable[int]) -> int:
        """Delete rows by id; return how many were deleted."""
        ...

    async def get(self, id: int) -> StoredRecord | None:
        """The row with this id, or ``None``."""
        ...

    def load(
        self, *, owner: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[list[StoredRecord]]:
        """Every readable row (of ``owner``, or unowned), in id order, in
        pages of at most ``page_size`` (default: the store's
        ``fetch_rows``)."""
        ...

    async def count(self) -> int:
        """How many rows the table holds."""
        ...

    async def delete_expired(self, before: int) -> int:
        """Delete rows with ``expires < before``; return how many."""
        ...


@runtime_checkable
class LeaseStore(Store, Protocol):
    """A store several nodes share (``db_mode`` 2): each row has an
    ``owner`` node and a lease (``lease_until``, epoch seconds); only the
    owner acts on a row, and the rows of a node whose lease ran out are
    taken over by the others.

    Every method is one transaction.  Rows are locked row by row
    (``SELECT ... FOR UPDATE``; ``SKIP LOCKED`` where a claimer must not
    wait for another), never the whole table, unless the store was made
    with ``lock_table=True`` (``db_table_lock_write``): then every writing
    method first takes a lock that serialises all writers of the table
    (PostgreSQL ``LOCK TABLE ... IN EXCLUSIVE MODE``, MySQL/MariaDB a named
    lock held to the commit; SQLite's writes are serialised anyway).
    """

    async def claim(
        self, node: str, *, now: int, lease_until: int, limit: int, own: bool = False
    ) -> list[StoredRecord]:
        """Take up to ``limit`` rows no live node holds (``owner`` NULL,
        ``lease_until`` NULL or ``< now``; with ``own`` also the rows
        ``node`` owns whatever their lease: a node that restarts under the
        same name takes its rows back at once).  Rows another transaction
        has locked are skipped, never waited for.  The rows get ``owner =
        node`` and ``lease_until``; they are returned in id order.  A row
        that cannot be read is skipped with a warning and not claimed."""
        ...

    async def take(self, ids: Iterable[int], node: str, *, lease_until: int) -> list[StoredRecord]:
        """Take these rows whoever holds them (a call or a NOTIFY about
        them reached ``node``); return those that exist and can be read,
        in id order, now owned by ``node``."""
        ...

    async def renew(self, node: str, *, lease_until: int) -> int:
        """Extend the lease of every row ``node`` owns; return how many."""
        ...

    async def write(
        self, rows: Sequence[StoredRecord], node: str, *, lease_until: int
    ) -> list[int]:
        """Compare-and-set.  Rows without an id are inserted, owned by
        ``node`` (their ``id`` is set).  Rows with an id are written only
        where ``node`` still owns them; the ids of the others (gone, or
        taken by another node) are returned, and nothing of them is
        written.  Written rows (and the objects given) get ``owner = node``
        and ``lease_until``."""
        ...

    async def remove(self, ids: Iterable[int], node: str) -> list[int]:
        """Delete the rows ``node`` owns among ``ids``; return the ids left
        alone because another node owns them (rows already gone count as
        deleted)."""
        ...

    async def owned(self, ids: Iterable[int], node: str) -> list[int]:
        """The ids among ``ids`` whose row ``node`` owns (read without
        locking), in id order."""
        ...

    async def release(self, node: str) -> int:
        """End every lease of ``node`` at once (``lease_until = 0``: a
        graceful stop hands its rows over without waiting); return how
        many rows."""
        ...

    async def find(
        self,
        *,
        pres_uri: str | Sequence[str] | None = None,
        watcher_uri: str | Sequence[str] | None = None,
        call_id: str | Sequence[str] | None = None,
        from_tag: str | Sequence[str] | None = None,
    ) -> list[StoredRecord]:
        """The readable rows equal to every column given (at least one;
        a sequence of values: equal to one of them), in id order.
        ``watcher_uri=""`` finds publications."""
        ...


def check_rows(rows: Sequence[StoredRecord], *, with_id: bool | None) -> None:
    """Raise :class:`ValueError` unless every row may be written.

    ``with_id``: True every row needs an id, False none may have one,
    None either.
    """
    seen: set[int] = set()
    for index, row in enumerate(rows):
        if not isinstance(row, StoredRecord):
            raise ValueError(f"row {index} is a {type(row).__name__}, not a StoredRecord")
        if with_id is True and row.id is None:
            raise ValueError(f"row {index} has no id")
        if with_id is False and row.id is not None:
            raise ValueError(f"row {index} has id {row.id} already (use update or upsert)")
        if row.id is not None:
            if row.id in seen:
                raise ValueError(f"row {index}: id {row.id} appears twice")
            seen.add(row.id)
        found = row.problems()
        if row.watcher_uri == "" and row.from_tag != "":
            found.append("a publication has no from_tag")
        if row.watcher_uri != "" and row.etag != "":
            found.append("a subscription has no etag")
        if found:
            label = f"row {index}" if row.id is None else f"row {index} (id {row.id})"
            raise ValueError(f"{label}: {'; '.join(found)}")


def find_columns(**columns: str | Sequence[str] | None) -> dict[str, tuple[str, ...]]:
    """The columns a :meth:`LeaseStore.find` call names, each with its
    values (duplicates dropped, order kept); :class:`ValueError` for none."""
    wanted = {
        name: (value,) if isinstance(value, str) else tuple(dict.fromkeys(value))
        for name, value in columns.items()
        if value is not None
    }
    if not wanted:
        raise ValueError("find needs at least one column")
    return wanted
