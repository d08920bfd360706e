"""db_mode 2 (pua.dbonly) through PuaAPI: nodes sharing one store, owner
leases, take-over, NOTIFYs answered from the shared state, the database
going away and coming back.  Real loopback sockets; the store is the
in-memory one (the SQL stores keep the same contract: tests/store), so
that two nodes in one process share it.  Interop with several processes
on PostgreSQL and MariaDB is in tests/interop/test_kamailio_nodes.py."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from pua import PRESENCE_EVENT, RPC_SUBSCRIBE, NotifyReceived, PuaAPI, PuaConfig, SubscribeInfo
from pua.config import ConfigError
from pua.store.base import LeaseStore, StoreError
from pua.store.memory import MemoryStore
from pua.store.records import StoredRecord
from tests.test_api import Server, publish_info
from tests.test_api_subscribe import Notifier, poll

PRES = "sip:alice@127.0.0.1"


class Breakable:
    """A store that fails like a database that went away, on demand."""

    def __init__(self, store: MemoryStore) -> None:
        self.inner = store
        self.name = "postgresql://127.0.0.1:5432/test"
        self.broken = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if not callable(method) or name in ("load", "open", "close"):
            return method

        async def call(*args: Any, **kw: Any) -> Any:
            if self.broken:
                raise StoreError(self.name, name, "ConnectionRefusedError", unreachable=True)
            return await method(*args, **kw)

        return call


def rows(store: MemoryStore) -> list[StoredRecord]:
    return [row.copy() for _, row in sorted(store._rows.items())]


@asynccontextmanager
async def node(name: str, store: Any, **kw: Any) -> AsyncIterator[PuaAPI]:
    config = PuaConfig(db_mode=2, node_id=name, **kw)
    async with PuaAPI(config, store=store) as pua:
        yield pua


def subscribe_info(pua: PuaAPI, notifier: Notifier) -> SubscribeInfo:
    return SubscribeInfo(
        pres_uri=PRES,
        watcher_uri="sip:bob@127.0.0.1",
        contact=pua.endpoint.contact_uri("bob"),
        event=PRESENCE_EVENT,
        source_flag=RPC_SUBSCRIBE,
        outbound_proxy=notifier.uri,
        expires=600,
    )


async def written(store: MemoryStore, check: Callable[[list[StoredRecord]], object]) -> None:
    await poll(lambda: check(rows(store)), "the store to hold what was written")


async def test_db_mode_2_needs_a_database() -> None:
    with pytest.raises(ConfigError, match="db_url"):
        async with PuaAPI(PuaConfig(db_mode=2)):
            pass


async def test_the_memory_store_is_a_lease_store() -> None:
    assert isinstance(MemoryStore(), LeaseStore)


async def test_every_change_is_written_at_once_owned_by_the_node(server: Server) -> None:
    store = MemoryStore()
    async with node("a", store) as a:
        outcome = await a.send_publish(publish_info(server, expires=600))
        assert outcome.ok
        await written(store, lambda r: r and r[0].etag == outcome.etag)
        (row,) = rows(store)
        assert row.owner == "a"
        assert row.lease_until is not None
        assert row.lease_until > time.time()
        await a.send_publish(publish_info(server, expires=0, body=None))
        await written(store, lambda r: r == [])


async def test_a_call_reaching_another_node_takes_the_publication_over(server: Server) -> None:
    store = MemoryStore()
    async with node("a", store) as a, node("b", store) as b:
        first = await a.send_publish(publish_info(server, expires=-1))
        await written(store, lambda r: r and r[0].etag == first.etag)
        # b does not hold it: it finds the row, takes it, and modifies the
        # publication with a's entity-tag (no 412, no second presentity)
        second = await b.send_publish(publish_info(server, "closed", expires=-1))
        assert second.ok
        assert server.stub.seen[-1].sip_if_match == first.etag
        assert 412 not in server.stub.statuses
        assert len(server.stub.entries) == 1
        await written(store, lambda r: r and r[0].owner == "b" and r[0].etag == second.etag)
        assert [p["etag"] for p in b.publications()] == [second.etag]
        # a's refresh, when due, does not go out: the gate finds the row
        # is b's, and a forgets the record
        seen = len(server.stub.seen)
        due = a.engine.get_timer()
        assert due is not None
        a.engine.handle_timer(due)
        a._flush()
        await poll(lambda: a.publications() == [], "a to hand the record over")
        assert len(server.stub.seen) == seen
        assert a.engine.stats["handed-over"] == 1
        assert len(store._rows) == 1


async def test_rows_of_a_dead_node_are_claimed_and_refreshed_with_their_etag(
    server: Server,
) -> None:
    store = MemoryStore()
    async with node("a", store) as a:
        first = await a.send_publish(publish_info(server, expires=-1))
        await written(store, lambda r: r and r[0].etag == first.etag)
    # a is gone; say it died: its lease ended (a graceful stop ends it too)
    for row in store._rows.values():
        row.owner, row.lease_until = "a", int(time.time()) - 1
    async with node("b", store) as b:
        # start-up claims every row no live node holds
        (record,) = b.publications()
        assert record["etag"] == first.etag
        assert rows(store)[0].owner == "b"
        due = b.engine.get_timer()
        assert due is not None
        b.engine.handle_timer(due)  # the refresh, without waiting for it
        b._flush()
        await poll(lambda: server.stub.seen[-1].sip_if_match == first.etag, "b's refresh")
        await poll(lambda: server.stub.statuses[-1] == 200, "the refresh's answer")
        assert 412 not in server.stub.statuses


async def test_a_live_lease_is_not_claimed_and_a_graceful_stop_ends_it(server: Server) -> None:
    store = MemoryStore()
    async with node("a", store) as a:
        first = await a.send_publish(publish_info(server, expires=600))
        await written(store, lambda r: r and r[0].etag == first.etag)
        async with node("b", store) as b:
            await b.shared.tick()  # type: ignore[union-attr]
            assert b.publications() == []
            assert rows(store)[0].owner == "a"
        # b stops: a still holds its row
        assert rows(store)[0].owner == "a"
    assert rows(store)[0].lease_until == 0
    async with node("c", store) as c:
        assert [p["etag"] for p in c.publications()] == [first.etag]


async def test_a_notify_reaching_another_node_is_answered_from_the_shared_state() -> None:
    store = MemoryStore()
    notifier = Notifier()
    await notifier.start()
    try:
        async with node("a", store) as a, node("b", store) as b:
            notifies: list[NotifyReceived] = []
            b.register_notify_cb(0xFFFF, lambda n, _: notifies.append(n))
            info = subscribe_info(a, notifier)
            outcome = await a.send_subscribe(info)
            assert outcome.ok
            dialog = notifier.dialog()
            await poll(lambda: len(notifier.notifies) == 1, "the first NOTIFY")
            await written(store, lambda r: r and r[0].to_tag == dialog.tag)
            # the notifier's next NOTIFY reaches b (a shared Contact)
            dialog.target = b.endpoint.contact_uri("bob")
            notifier.basic = "closed"
            response = await notifier.notify(dialog, "active;expires=500")
            assert response.status == 200
            (received,) = notifies
            assert received.request.call_id == outcome.call_id
            assert b"closed" in received.body
            await written(store, lambda r: r[0].owner == "b")
            (held,) = b.subscriptions()
            assert held["call_id"] == outcome.call_id
            # a NOTIFY of a dialog nobody has: 481 from the shared state too
            stray = notifier.notify_request(dialog, "active", call_id="nobody@here")
            assert (await notifier.send(stray)).status == 481
    finally:
        await notifier.close()


async def test_database_down_calls_fail_naming_it_and_nothing_is_lost(server: Server) -> None:
    memory = MemoryStore()
    store = Breakable(memory)
    async with node("a", store) as a:
        assert a.shared is not None
        first = await a.send_publish(publish_info(server, expires=-1))
        await written(memory, lambda r: r and r[0].etag == first.etag)
        store.broken = True
        await a.shared.tick()
        with pytest.raises(StoreError, match=r"127\.0\.0\.1:5432"):
            a.send_publish(publish_info(server, "closed", expires=-1))
        # what is held goes on: a refresh still goes out, and is kept
        due = a.engine.get_timer()
        assert due is not None
        a.engine.handle_timer(due)
        a._flush()
        await poll(lambda: len(server.stub.seen) == 2, "the refresh")
        await poll(lambda: server.stub.statuses[-1] == 200, "its answer")
        (record,) = a.publications()
        assert rows(memory)[0].etag == first.etag != record["etag"]
        # the database is back: the next round writes what waited
        store.broken = False
        await a.shared.tick()
        assert a.shared.down is None
        assert rows(memory)[0].etag == record["etag"]
        assert (await a.send_publish(publish_info(server, "closed", expires=-1))).ok


async def test_a_node_that_cannot_renew_stops_before_its_lease_ends(server: Server) -> None:
    memory = MemoryStore()
    store = Breakable(memory)
    async with node("a", store, lease_time=3) as a:
        assert a.shared is not None
        await a.send_publish(publish_info(server, expires=600))
        await written(memory, lambda r: len(r) == 1)
        store.broken = True
        a.shared.held_until = time.time() + 0.5  # the lease is nearly over
        await a.shared.tick()
        assert a.publications() == []
        assert a.shared.stats["fenced"] == 1
        # the row stays, for whoever claims it
        assert len(memory._rows) == 1


async def test_an_unsubscribe_answered_with_an_error_deletes_the_row_and_sends_nothing() -> None:
    """Spec §21, the DB-only row: D = T, 404/481/500/408 -> the row is
    deleted (one commit) and no SUBSCRIBE follows."""
    store = MemoryStore()
    notifier = Notifier()
    await notifier.start()
    try:
        async with node("a", store) as a:
            info = subscribe_info(a, notifier)
            assert (await a.send_subscribe(info)).ok
            await written(store, lambda r: len(r) == 1 and r[0].to_tag)
            notifier.refresh_status = 404
            sent = len(notifier.subscribes)
            ended = await a.send_subscribe(dataclasses.replace(info, expires=0))
            assert ended.status == 404
            await written(store, lambda r: r == [])
            assert len(notifier.subscribes) == sent + 1  # the un-SUBSCRIBE only
            assert a.subscriptions() == []
    finally:
        await notifier.close()


async def test_a_failure_below_the_call_queue_reaches_every_queued_caller(
    server: Server,
) -> None:
    store = MemoryStore()
    async with node("a", store) as a:
        assert a.shared is not None

        async def broken(wanted: object) -> int:
            raise RuntimeError("a bug in the lookup")

        a.shared.adopt = broken  # type: ignore[method-assign]
        calls = [
            a.send_publish(publish_info(server, pres_uri=f"sip:u{i}@127.0.0.1", expires=-1))
            for i in range(3)
        ]
        for call in calls:
            with pytest.raises(RuntimeError, match="a bug in the lookup"):
                await call
