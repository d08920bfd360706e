"""db_mode 0 write-back: the engines' records to rows and back, on the
in-memory store (the SQL stores pass the same contract: tests/store)."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from pua.config import PuaConfig
from pua.evpkg.registry import EventRegistry
from pua.model import PRESENCE_EVENT, RPC_SUBSCRIBE, UL_PUBLISH, PublishInfo, SubscribeInfo
from pua.persist import WriteBack
from pua.store.base import StoreError
from pua.store.memory import MemoryStore
from pua.store.records import StoredRecord
from pua.ua import PublishEngine, SubscribeEngine
from tests.presence_stub import answer
from tests.ua.test_publish import pidf

WALL = 1_800_000_000.0  # epoch seconds when the engines' clock reads 1000


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now - 1000.0 + WALL


class Node:
    """Two engines and their write-back, as one pua process has them."""

    def __init__(self, store: MemoryStore, clock: Clock, node: str | None = "a") -> None:
        config = PuaConfig()
        registry = EventRegistry()
        self.clock = clock
        self.pub = PublishEngine(config, registry, random.Random(1))
        self.sub = SubscribeEngine(config, registry, random.Random(2))
        self.wb = WriteBack(
            store,
            self.pub,
            self.sub,
            period=10.0,
            fetch_rows=2,
            node=node,
            clock=clock,
            wall=clock.wall,
        )

    def publish(self, status: int = 200, **kw: object) -> None:
        args: dict[str, object] = {
            "pres_uri": "sip:alice@example.com",
            "source_flag": UL_PUBLISH,
            "body": pidf(),
            "id": "UL_PUBLISH.1",
        }
        args.update(kw)
        self.pub.publish(PublishInfo(**args), self.clock.now)  # type: ignore[arg-type]
        for item in self.pub.requests_to_send():
            headers = [("SIP-ETag", "e1"), ("Expires", "600")] if status == 200 else []
            response = answer(item.request, status, headers=headers)
            self.pub.handle_response(item.token, response, self.clock.now, local=False)

    def subscribe(self) -> None:
        self.sub.subscribe(
            SubscribeInfo(
                pres_uri="sip:alice@example.com",
                watcher_uri="sip:bob@example.com",
                contact="sip:bob@192.0.2.5",
                event=PRESENCE_EVENT,
                source_flag=RPC_SUBSCRIBE,
            ),
            self.clock.now,
        )
        (item,) = self.sub.requests_to_send()
        response = answer(
            item.request,
            200,
            expires=600,
            headers=[
                ("Contact", "<sip:ps@198.51.100.7>"),
                ("Record-Route", "<sip:p1.example;lr>"),
            ],
        )
        self.sub.handle_response(item.token, response, self.clock.now, local=False)


async def rows(store: MemoryStore) -> list[StoredRecord]:
    return [row async for page in store.load(page_size=100) for row in page]


async def test_publication_row_is_written_then_deleted() -> None:
    store, clock = MemoryStore(), Clock()
    node = Node(store, clock)
    node.publish()
    assert await node.wb.flush() == (1, 0)
    (row,) = await rows(store)
    assert (row.pres_uri, row.pres_id, row.etag, row.flag, row.event) == (
        "sip:alice@example.com",
        "UL_PUBLISH.1",
        "e1",
        int(UL_PUBLISH),
        int(PRESENCE_EVENT),
    )
    assert row.expires == int(WALL + 600)
    assert row.desired_expires == 0
    assert row.watcher_uri == ""
    assert row.body is not None
    assert b"<basic>open</basic>" in row.body
    assert row.owner == "a"
    (record,) = node.pub.publications()
    assert record.row_id == row.id
    # nothing changed: nothing written
    assert await node.wb.flush() == (0, 0)
    node.publish(expires=0, body=None)
    assert await node.wb.flush() == (0, 1)
    assert await rows(store) == []


async def test_restart_restores_without_wiping_and_refreshes_with_the_stored_etag() -> None:
    store, clock = MemoryStore(), Clock()
    first = Node(store, clock)
    first.publish()
    first.subscribe()
    await first.wb.close()
    assert await store.count() == 2

    clock.now += 100
    second = Node(store, clock)
    assert await second.wb.restore() == 2
    assert await store.count() == 2  # Kamailio wipes the table here
    assert second.pub.requests_to_send() == []
    assert second.sub.requests_to_send() == []
    when = min(t for t in (second.pub.get_timer(), second.sub.get_timer()) if t is not None)
    assert when < 1600
    clock.now = 1000 + 600 * 0.95
    second.pub.handle_timer(clock.now)
    second.sub.handle_timer(clock.now)
    (refresh,) = second.pub.requests_to_send()
    assert refresh.request.sip_if_match == "e1"
    (in_dialog,) = second.sub.requests_to_send()
    assert in_dialog.request.to.tag is not None
    assert in_dialog.request.headers.get_all("Route") == ["<sip:p1.example;lr>"]
    assert in_dialog.request.cseq.seq > 2  # ahead of anything sent before


async def test_rows_of_another_node_are_left_alone() -> None:
    store, clock = MemoryStore(), Clock()
    other = Node(store, clock, node="b")
    other.publish()
    await other.wb.flush()
    mine = Node(store, clock, node="a")
    assert await mine.wb.restore() == 0
    assert await store.count() == 1


class FailingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def upsert(self, rows: Sequence[StoredRecord]) -> list[int]:
        if self.down:
            raise StoreError("memory", "upsert", "database down", unreachable=True)
        return await super().upsert(rows)


async def test_a_failed_flush_keeps_its_changes_for_the_next() -> None:
    store, clock = FailingStore(), Clock()
    node = Node(store, clock)
    node.publish()
    with pytest.raises(StoreError):
        await node.wb.flush()
    store.down = False
    assert await node.wb.flush() == (1, 0)
    assert len(await rows(store)) == 1
