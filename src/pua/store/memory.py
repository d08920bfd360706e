"""The storage contract in a dict: for ``db_mode`` 0 without a database, and
for tests.  Nothing survives the process.  ``open`` and ``close`` are
no-ops (the rows stay), so the store is usable without ``open``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Sequence

from pua.store.base import check_rows
from pua.store.records import StoredRecord

__all__ = ["MemoryStore"]

log = logging.getLogger("pua.store")


class MemoryStore:
    """Rows in a dict keyed by id; ids count up from 1 and are never reused."""

    def __init__(self, *, fetch_rows: int = 500, name: str = "memory") -> None:
        if fetch_rows < 1:
            raise ValueError(f"fetch_rows must be >= 1, got {fetch_rows}")
        self.name = name
        self.fetch_rows = fetch_rows
        self._rows: dict[int, StoredRecord] = {}
        self._next_id = 1

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._rows)} rows)"

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _put(self, row: StoredRecord, row_id: int) -> None:
        self._rows[row_id] = row.copy(id=row_id)
        self._next_id = max(self._next_id, row_id + 1)

    async def insert(self, rows: Sequence[StoredRecord]) -> list[int]:
        check_rows(rows, with_id=False)
        ids = []
        for row in rows:
            row_id = self._next_id
            self._put(row, row_id)
            row.id = row_id
            ids.append(row_id)
        return ids

    async def update(self, rows: Sequence[StoredRecord]) -> list[int]:
        check_rows(rows, with_id=True)
        gone = []
        for row in rows:
            assert row.id is not None
            if row.id in self._rows:
                self._put(row, row.id)
            else:
                gone.append(row.id)
        return gone

    async def upsert(self, rows: Sequence[StoredRecord]) -> list[int]:
        check_rows(rows, with_id=None)
        ids = []
        for row in rows:
            if row.id is None:
                row.id = self._next_id
            self._put(row, row.id)
            ids.append(row.id)
        return ids

    async def delete(self, ids: Iterable[int]) -> int:
        deleted = 0
        for row_id in set(ids):
            if self._rows.pop(row_id, None) is not None:
                deleted += 1
        return deleted

    async def get(self, id: int) -> StoredRecord | None:
        row = self._rows.get(id)
        if row is None or not _readable(row):
            return None
        return row.copy()

    async def load(
        self, *, owner: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[list[StoredRecord]]:
        size = self.fetch_rows if page_size is None else page_size
        if size < 1:
            raise ValueError(f"page_size must be >= 1, got {size}")
        last = 0
        while True:
            # ids added while loading are picked up by the next round
            pending = sorted(row_id for row_id in self._rows if row_id > last)
            if not pending:
                return
            last = pending[-1]
            page: list[StoredRecord] = []
            for row_id in pending:
                row = self._rows.get(row_id)
                if row is None or (owner is not None and row.owner not in (None, owner)):
                    continue
                page.append(row.copy())
                if len(page) == size:
                    readable = [row for row in page if _readable(row)]
                    page = []
                    if readable:
                        yield readable
            readable = [row for row in page if _readable(row)]
            if readable:
                yield readable

    async def count(self) -> int:
        return len(self._rows)

    async def delete_expired(self, before: int) -> int:
        expired = [
            row_id
            for row_id, row in self._rows.items()
            if isinstance(row.expires, int) and row.expires < before
        ]
        for row_id in expired:
            del self._rows[row_id]
        return len(expired)


def _readable(row: StoredRecord) -> bool:
    found = row.problems()
    if found:
        log.warning("pua row %s skipped: %s", row.id, "; ".join(found))
        return False
    return True
