"""db_mode 2: the database holds every record, and several nodes share it.

Kamailio's DB-only mode reads and writes the table on every operation and
lets every node refresh every row (spec §14; field problems K22, K24).
Here each row has an **owner** node and a **lease** (``owner``,
``lease_until``):

* a node acts only on the rows it holds.  They are in its engines'
  memory, as in db_mode 0, but every change is written at once (batched
  while a write is running), by compare-and-set: a row another node has
  taken is not written, and the record is handed over (forgotten here);
* every third of ``lease_time`` a node renews its leases, then claims
  rows whose lease ran out (a dead node's) with ``SELECT ... FOR UPDATE
  SKIP LOCKED``, so two nodes never claim the same row; the claimed
  records refresh when due, with their stored entity-tag or dialog;
* a call about a record this node does not hold, or a NOTIFY of a dialog
  it does not hold, takes the row over (:meth:`DbOnly.adopt_publication`,
  :meth:`DbOnly.adopt_subscription`, :meth:`DbOnly.adopt_dialog`): a
  NOTIFY reaching any node is answered from the shared state;
* a node that cannot renew stops acting on its rows just before its lease
  ends (it hands every record over), so that the node taking them over
  never refreshes beside it;
* a graceful stop writes what is pending and ends its leases at once.

While the database is down, :attr:`DbOnly.down` holds the error and calls
fail with it; held records go on refreshing (for up to ``lease_time``) and
their changes are written when it is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from pua.model import PublishInfo, SubscribeInfo
from pua.persist import WriteBack
from pua.store.base import LeaseStore, StoreError
from pua.store.records import StoredRecord
from pua.ua.publish import Publication, PublishEngine
from pua.ua.subscribe import SubscribeEngine, Subscription

__all__ = ["DbOnly"]

log = logging.getLogger("pua.dbonly")

#: stop acting on held rows this many seconds before the lease ends, so
#: that clock steps and a slow renewal never let two nodes act at once
FENCE_MARGIN = 1.0


class DbOnly(WriteBack):
    """Owner leases, take-over and write-at-once on a :class:`LeaseStore`."""

    def __init__(
        self,
        store: LeaseStore,
        publications: PublishEngine,
        subscriptions: SubscribeEngine,
        *,
        node: str,
        lease_time: float,
        fetch_rows: int,
        clock: Callable[[], float],
        wall: Callable[[], float] = time.time,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(
            store,
            publications,
            subscriptions,
            period=lease_time / 3,
            fetch_rows=fetch_rows,
            node=node,
            clock=clock,
            wall=wall,
        )
        self.leases = store
        self.node_name = node
        self.lease_time = lease_time
        #: wall-clock time until which this node's leases are known good
        self.held_until = 0.0
        #: the last failure of the database, until an operation succeeds
        self.down: StoreError | None = None
        #: run after records were taken in (their requests must go out)
        self.wake = wake
        self.stats = {"claimed": 0, "taken": 0, "handed-over": 0, "fenced": 0}

    # ------------------------------------------------------------ health
    def check(self) -> None:
        """Raise the database's error while it is known to be down."""
        if self.down is not None:
            raise self.down

    def _lease_until(self) -> int:
        return int(self._wall() + self.lease_time)

    def _ok(self) -> None:
        if self.down is not None:
            log.warning("database %s is back", self.store.name)
        self.down = None

    def _failed(self, exc: StoreError) -> None:
        if self.down is None:
            log.error("database %s failed: %s", self.store.name, exc)
        self.down = exc

    # ------------------------------------------------------------ taking rows in
    async def restore(self) -> int:
        """At start: take back this node's rows (whatever their lease) and
        every row no live node holds."""
        return await self._claim(own=True)

    async def _claim(self, *, own: bool = False) -> int:
        total = 0
        while True:
            until = self._lease_until()
            rows = await self.leases.claim(
                self.node_name,
                now=int(self._wall()),
                lease_until=until,
                limit=self.fetch_rows,
                own=own,
            )
            # the lease of these rows, at least, is ours until then
            self.held_until = max(self.held_until, until)
            total += self._take_in(rows)
            if len(rows) < self.fetch_rows:
                break
        if total:
            self.stats["claimed"] += total
            log.info("node %s took over %d records", self.node_name, total)
        return total

    def _take_in(self, rows: Sequence[StoredRecord]) -> int:
        taken = self._restore_rows(rows)
        if taken:
            self.wake()
        return taken

    async def _take(self, rows: Sequence[StoredRecord]) -> int:
        ids = [row.id for row in rows if row.id is not None]
        if not ids:
            return 0
        try:
            taken = await self.leases.take(ids, self.node_name, lease_until=self._lease_until())
        except StoreError as exc:
            self._failed(exc)
            raise
        self._ok()
        self.stats["taken"] += len(taken)
        return self._take_in(taken)

    async def adopt(self, wanted: Sequence[PublishInfo | SubscribeInfo]) -> int:
        """Take over the stored records these calls are about (the same
        matching as in memory, spec §6.2 and §6.3), in one lookup and one
        take-over; return how many were taken."""
        uris = sorted({info.pres_uri for info in wanted})
        if not uris:
            return 0
        rows = await self._find(pres_uri=uris)
        by_uri: dict[str, list[StoredRecord]] = {}
        for row in rows:
            by_uri.setdefault(row.pres_uri, []).append(row)
        chosen: dict[int, StoredRecord] = {}
        for info in wanted:
            for row in by_uri.get(info.pres_uri, ()):
                if _matches(row, info):
                    assert row.id is not None
                    chosen[row.id] = row
                    break
        if not chosen:
            return 0
        return await self._take(list(chosen.values()))

    async def adopt_dialog(self, call_id: str, local_tag: str) -> bool:
        """Take over the stored dialog a NOTIFY is about; whether found."""
        if not call_id or not local_tag:
            return False
        rows = await self._find(call_id=call_id, from_tag=local_tag)
        return await self._take([row for row in rows if row.is_subscription][:1]) > 0

    async def held(self, ids: Sequence[int]) -> set[int]:
        """Which of these rows this node still holds.  While the database
        cannot say, all of them: the lease holds until it ends, and the
        node stops acting on them before that (:meth:`tick`)."""
        try:
            owned = await self.leases.owned(ids, self.node_name)
        except StoreError as exc:
            self._failed(exc)
            return set(ids)
        self._ok()
        return set(owned)

    async def _find(self, **columns: str | Sequence[str]) -> list[StoredRecord]:
        try:
            rows = await self.leases.find(**columns)
        except StoreError as exc:
            self._failed(exc)
            raise
        self._ok()
        return rows

    # ------------------------------------------------------------ writing
    async def flush(self) -> tuple[int, int]:
        """Write what changed, if this node still holds it; hand over the
        records another node has taken.  Return (written, deleted)."""
        async with self._lock:
            batch = self._take_batch()
            rows, gone = batch.rows, batch.gone
            until = self._lease_until()
            try:
                lost = (
                    await self.leases.write(rows, self.node_name, lease_until=until) if rows else []
                )
                refused = await self.leases.remove(gone, self.node_name) if gone else []
            except StoreError as exc:
                self._keep(batch)
                self._failed(exc)
                raise
            if rows or gone:
                self._ok()
            lost_ids = set(lost)
            for written, row in zip(batch.records, rows, strict=True):
                if row.id in lost_ids:
                    self._hand_over(written, "taken over by another node")
                else:
                    written.row_id = row.id
            if refused:
                log.warning(
                    "%d ended record(s) had been taken over by another node: rows %s left to it",
                    len(refused),
                    ", ".join(map(str, refused[:20])),
                )
            return len(rows) - len(lost_ids), len(gone) - len(refused)

    def _hand_over(self, record: Publication | Subscription, why: str) -> None:
        if isinstance(record, Publication):
            self.publications.hand_over(record, why)
        else:
            self.subscriptions.hand_over(record, why)
        self.stats["handed-over"] += 1

    # ------------------------------------------------------------ the lease loop
    async def tick(self) -> None:
        """One round: renew, stop acting if the lease is lost, write what
        waits, take over what no live node holds."""
        until = self._lease_until()
        try:
            await self.leases.renew(self.node_name, lease_until=until)
        except StoreError as exc:
            self._failed(exc)
        else:
            self._ok()
            self.held_until = until
        if self._wall() >= self.held_until - FENCE_MARGIN:
            self._fence()
        if self.down is not None:
            return
        try:
            await self.flush()
            await self._claim()
        except StoreError as exc:
            self._failed(exc)

    def _fence(self) -> None:
        """The lease is (nearly) over: another node may take these rows
        now, so act on none of them any more."""
        held: list[Publication | Subscription] = [
            *self.publications.publications(),
            *self.subscriptions.subscriptions(),
        ]
        if not held:
            return
        log.error(
            "node %s could not renew its lease: %d records left to the other nodes",
            self.node_name,
            len(held),
        )
        for record in held:
            self._hand_over(record, "lease lost")
        self.stats["fenced"] += 1

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            await self.tick()

    async def close(self) -> None:
        """Stop the loop, write what is pending, end the leases so that the
        other nodes take the rows over at once."""
        await self._stop()
        try:
            await self.flush()
            await self.leases.release(self.node_name)
        except StoreError as exc:
            # the rows stay as last written; the lease ends by itself
            log.error("node %s stops without its last write: %s", self.node_name, exc)


def _matches(row: StoredRecord, info: PublishInfo | SubscribeInfo) -> bool:
    if not (row.flag & info.source_flag and row.event & info.event):
        return False
    if info.id and row.pres_id != info.id:
        return False
    if isinstance(info, PublishInfo):
        return row.watcher_uri == "" and (info.etag is None or row.etag == info.etag)
    return row.watcher_uri == info.watcher_uri
