"""db_mode 0: records in memory, written back to a store.

:class:`WriteBack` joins the two engines to a :class:`~pua.store.base.Store`:

* at start-up it reads every row (in pages of ``fetch_rows``), skipping
  rows another node owns, and gives each to its engine, which refreshes it
  in place (stored entity-tag, stored dialog) or makes it anew; the table
  is **not** wiped (Kamailio deletes every row after reading them);
* every ``update_period`` seconds it writes what changed, deletes included,
  in batches (Kamailio writes only updates and inserts, and lets deleted
  records' rows live on until they expire);
* :meth:`WriteBack.close` writes one last time (Kamailio's final flush
  never runs, spec §4.3).

The engines keep time on the event loop's monotonic clock; rows hold epoch
seconds, as Kamailio's do.  The conversion happens here.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pua.store.base import Store, StoreError
from pua.store.records import StoredRecord
from pua.ua.publish import Publication, PublishEngine
from pua.ua.subscribe import SubscribeEngine, Subscription

__all__ = ["WriteBack", "publication_row", "subscription_row"]

log = logging.getLogger("pua.persist")


@dataclass(slots=True)
class _Batch:
    """One write: the records changed and their rows, the ended ones."""

    records: list[Publication | Subscription]
    rows: list[StoredRecord]
    gone: list[int]
    removed_p: list[Publication]
    removed_s: list[Subscription]


class WriteBack:
    """Restore at start, periodic write-back, final flush."""

    def __init__(
        self,
        store: Store,
        publications: PublishEngine,
        subscriptions: SubscribeEngine,
        *,
        period: float,
        fetch_rows: int,
        node: str | None,
        clock: Callable[[], float],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.publications = publications
        self.subscriptions = subscriptions
        self.period = period
        self.fetch_rows = fetch_rows
        self.node = node
        self._clock = clock
        self._wall = wall
        self._task: asyncio.Task[None] | None = None
        self._kicked: asyncio.Task[None] | None = None
        self._again = False
        self._lock = asyncio.Lock()
        #: wall clock minus the engines' clock, during a restore
        self._offset = 0.0
        publications.track_changes = True
        subscriptions.track_changes = True

    # the engines' clock <-> epoch seconds
    def _to_epoch(self, when: float) -> int:
        return int(when - self._clock() + self._wall()) if when else 0

    def _from_epoch(self, epoch: int) -> float:
        # the clocks' offset is read once per page of a restore
        return epoch - self._offset if epoch else 0.0

    async def restore(self) -> int:
        """Give every stored row of this node to its engine; return how
        many records came back."""
        # every record made here lives long: the collector would only walk
        # them again and again while they pile up (about half the time of
        # a 100k restore); they are frozen out of its way afterwards
        enabled = gc.isenabled()
        gc.disable()
        try:
            return await self._restore()
        finally:
            if enabled:
                gc.enable()
            gc.freeze()

    async def _restore(self) -> int:
        restored = 0
        async for page in self.store.load(owner=self.node, page_size=self.fetch_rows):
            restored += self._restore_rows(page)
        # what restore touched is what is stored already
        self.publications.take_changes()
        self.subscriptions.take_changes()
        return restored

    def _restore_rows(self, rows: Sequence[StoredRecord]) -> int:
        """Give these rows to their engines; return how many came back."""
        now = self._clock()
        # the clocks' offset is read once per page
        self._offset = self._wall() - now
        restored = 0
        for row in rows:
            record = (
                self._restore_subscription(row, now)
                if row.is_subscription
                else self._restore_publication(row, now)
            )
            if record is None:
                log.warning("row %s: event %s has no package here; skipped", row.id, row.event)
            else:
                restored += 1
        return restored

    def _restore_publication(self, row: StoredRecord, now: float) -> Publication | None:
        return self.publications.restore(
            pres_uri=row.pres_uri,
            event=row.event,
            source_flag=row.flag,
            id=row.pres_id,
            etag=row.etag or None,
            expires_at=self._from_epoch(row.expires),
            desired_expires=self._from_epoch(row.desired_expires),
            body=row.body,
            content_type=row.content_type,
            tuple_id=row.tuple_id,
            version=row.version,
            extra_headers=row.extra_headers,
            outbound_proxy=row.outbound_proxy,
            row_id=row.id,
            now=now,
        )

    def _restore_subscription(self, row: StoredRecord, now: float) -> Subscription | None:
        routes = tuple(r for r in (row.record_route or "").split(",") if r.strip())
        return self.subscriptions.restore(
            pres_uri=row.pres_uri,
            watcher_uri=row.watcher_uri,
            contact=row.contact,
            event=row.event,
            source_flag=row.flag,
            id=row.pres_id,
            call_id=row.call_id,
            local_tag=row.from_tag,
            remote_tag=row.to_tag,
            route_set=routes,
            remote_target=row.remote_contact,
            requested_target=row.remote_target_requested,
            local_cseq=row.cseq,
            remote_cseq=row.remote_cseq,
            expires_at=self._from_epoch(row.expires),
            desired_expires=self._from_epoch(row.desired_expires),
            extra_headers=row.extra_headers,
            outbound_proxy=row.outbound_proxy,
            row_id=row.id,
            now=now,
        )

    def _take_batch(self) -> _Batch:
        """What changed since the last write, as rows, and the row ids of
        the records that ended."""
        changed_p, removed_p = self.publications.take_changes()
        changed_s, removed_s = self.subscriptions.take_changes()
        records: list[Publication | Subscription] = [*changed_p, *changed_s]
        rows = [
            publication_row(r, self._to_epoch, self.node)
            if isinstance(r, Publication)
            else subscription_row(r, self._to_epoch, self.node)
            for r in records
        ]
        gone = [r.row_id for r in removed_p if r.row_id is not None]
        gone += [r.row_id for r in removed_s if r.row_id is not None]
        return _Batch(records, rows, gone, removed_p, removed_s)

    def _keep(self, batch: _Batch) -> None:
        """A write failed: mark the batch's records again for the next."""
        for record in batch.records:
            if isinstance(record, Publication):
                self.publications._touched(record)
            else:
                self.subscriptions._touched(record)
        self.publications._removed.extend(batch.removed_p)
        self.subscriptions._removed.extend(batch.removed_s)

    async def flush(self) -> tuple[int, int]:
        """Write what changed since the last flush; return (written,
        deleted).  A failure keeps the changes for the next flush."""
        async with self._lock:
            batch = self._take_batch()
            try:
                if batch.rows:
                    await self.store.upsert(batch.rows)
                if batch.gone:
                    await self.store.delete(batch.gone)
            except StoreError:
                self._keep(batch)
                raise
            for written, row in zip(batch.records, batch.rows, strict=True):
                written.row_id = row.id
            return len(batch.rows), len(batch.gone)

    def kick(self) -> None:
        """Write soon (write-through): one write at a time; changes made
        while one runs go in the next, started as soon as it ends."""
        if self._kicked is not None and not self._kicked.done():
            self._again = True
            return
        self._kicked = asyncio.get_running_loop().create_task(self._kick())

    async def _kick(self) -> None:
        while True:
            self._again = False
            try:
                await self.flush()
            except StoreError as exc:
                # the periodic write retries; nothing is lost meanwhile
                log.error("write-through failed: %s", exc)
                return
            if not self._again:
                return

    def start(self) -> None:
        """Write back every ``period`` seconds until :meth:`close`."""
        if self.period > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.flush()
            except StoreError as exc:
                log.error("write-back failed, retried in %s s: %s", self.period, exc)

    async def close(self) -> None:
        """Stop the periodic task and write one last time."""
        await self._stop()
        await self.flush()

    async def _stop(self) -> None:
        """Stop the periodic task and wait for a write-through under way."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._kicked is not None:
            with contextlib.suppress(StoreError):
                await self._kicked


def _extra_text(extra: tuple[tuple[str, str], ...]) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in extra)


def publication_row(
    record: Publication, to_epoch: Callable[[float], int], node: str | None
) -> StoredRecord:
    """The ``pua`` row of a publication (Kamailio's columns as Kamailio
    writes them: '' for the dialog fields)."""
    return StoredRecord(
        id=record.row_id,
        pres_uri=record.pres_uri,
        pres_id=record.id,
        event=record.event,
        expires=to_epoch(record.expires_at) if record.etag else 0,
        desired_expires=to_epoch(record.desired_expires),
        flag=record.source_flag,
        etag=record.etag or "",
        tuple_id=record.tuple_id or "",
        watcher_uri="",
        call_id="",
        to_tag="",
        from_tag="",
        cseq=0,
        record_route="",
        contact="",
        remote_contact="",
        version=record.version,
        extra_headers=_extra_text(record.extra),
        body=record.body,
        content_type=record.content_type,
        outbound_proxy=record.outbound_proxy,
        owner=node,
        lease_until=None,
        remote_target_requested=None,
        remote_cseq=None,
        state_json=None,
    )


def subscription_row(
    record: Subscription, to_epoch: Callable[[float], int], node: str | None
) -> StoredRecord:
    """The ``pua`` row of a subscription: Kamailio's dialog columns (our
    tag in ``from_tag``, the notifier's in ``to_tag``, the route set joined
    with commas)."""
    return StoredRecord(
        id=record.row_id,
        pres_uri=record.pres_uri,
        pres_id=record.id,
        event=record.event,
        expires=to_epoch(record.expires_at),
        desired_expires=to_epoch(record.desired_expires),
        flag=record.source_flag,
        etag="",
        tuple_id="",
        watcher_uri=record.watcher_uri,
        call_id=record.call_id,
        to_tag=record.remote_tag or "",
        from_tag=record.local_tag,
        cseq=record.local_cseq,
        # Kamailio's code cannot read NULL here (spec §14.4)
        record_route=",".join(record.route_set),
        contact=record.contact,
        remote_contact=record.remote_target,
        version=0,
        extra_headers=_extra_text(record.extra),
        body=None,
        content_type=None,
        outbound_proxy=record.outbound_proxy,
        owner=node,
        lease_until=None,
        remote_target_requested=record.requested_target,
        remote_cseq=record.remote_cseq,
        state_json=None,
    )
