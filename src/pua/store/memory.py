"""The storage contract in a dict: for ``db_mode`` 0 without a database, and
for tests.  Nothing survives the process.  ``open`` and ``close`` are
no-ops (the rows stay), so the store is usable without ``open``.

It keeps the lease contract too (:class:`~pua.store.base.LeaseStore`):
every method runs without an ``await`` in between, so each is atomic."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Sequence

from pua.store.base import check_rows, find_columns
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

    # --- leases (db_mode 2) -----------------------------------------------------
    def _lease(self, row_id: int, node: str, lease_until: int) -> StoredRecord:
        row = self._rows[row_id]
        row.owner = node
        row.lease_until = lease_until
        return row.copy()

    async def claim(
        self, node: str, *, now: int, lease_until: int, limit: int, own: bool = False
    ) -> list[StoredRecord]:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        claimed: list[StoredRecord] = []
        for row_id in sorted(self._rows):
            row = self._rows[row_id]
            free = (
                row.owner is None
                or row.lease_until is None
                # (a garbage lease makes the row unreadable anyway)
                or (isinstance(row.lease_until, int) and row.lease_until < now)
                or (own and row.owner == node)
            )
            if free and _readable(row):
                claimed.append(self._lease(row_id, node, lease_until))
                if len(claimed) == limit:
                    break
        return claimed

    async def take(self, ids: Iterable[int], node: str, *, lease_until: int) -> list[StoredRecord]:
        return [
            self._lease(row_id, node, lease_until)
            for row_id in sorted(set(ids))
            if row_id in self._rows and _readable(self._rows[row_id])
        ]

    async def renew(self, node: str, *, lease_until: int) -> int:
        mine = [row for row in self._rows.values() if row.owner == node]
        for row in mine:
            row.lease_until = lease_until
        return len(mine)

    async def write(
        self, rows: Sequence[StoredRecord], node: str, *, lease_until: int
    ) -> list[int]:
        # checked with the lease on, so that a bad node name is refused too
        staged = [row.copy(owner=node, lease_until=lease_until) for row in rows]
        check_rows(staged, with_id=None)
        lost = [
            row.id
            for row in staged
            if row.id is not None and (row.id not in self._rows or self._rows[row.id].owner != node)
        ]
        gone = set(lost)
        for row, new in zip(rows, staged, strict=True):
            if new.id is None:
                new.id = self._next_id
            elif new.id in gone:
                continue
            self._put(new, new.id)
            row.id, row.owner, row.lease_until = new.id, node, lease_until
        return lost

    async def remove(self, ids: Iterable[int], node: str) -> list[int]:
        left = []
        for row_id in sorted(set(ids)):
            row = self._rows.get(row_id)
            if row is None:
                continue
            if row.owner == node:
                del self._rows[row_id]
            else:
                left.append(row_id)
        return left

    async def owned(self, ids: Iterable[int], node: str) -> list[int]:
        return [
            row_id
            for row_id in sorted(set(ids))
            if row_id in self._rows and self._rows[row_id].owner == node
        ]

    async def release(self, node: str) -> int:
        return await self.renew(node, lease_until=0)

    async def find(
        self,
        *,
        pres_uri: str | Sequence[str] | None = None,
        watcher_uri: str | Sequence[str] | None = None,
        call_id: str | Sequence[str] | None = None,
        from_tag: str | Sequence[str] | None = None,
    ) -> list[StoredRecord]:
        wanted = find_columns(
            pres_uri=pres_uri, watcher_uri=watcher_uri, call_id=call_id, from_tag=from_tag
        )
        return [
            row.copy()
            for _, row in sorted(self._rows.items())
            if all(getattr(row, name) in values for name, values in wanted.items())
            and _readable(row)
        ]


def _readable(row: StoredRecord) -> bool:
    found = row.problems()
    if found:
        log.warning("pua row %s skipped: %s", row.id, "; ".join(found))
        return False
    return True
