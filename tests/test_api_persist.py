"""PuaAPI with a store (db_mode 0): what it publishes and subscribes
survives a restart, on a real SQLite file and real sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pua import PRESENCE_EVENT, RPC_SUBSCRIBE, PuaAPI, PuaConfig, SubscribeInfo
from pua.config import ConfigError
from tests.test_api import Server, publish_info


def config(tmp_path: Path, **kw: object) -> PuaConfig:
    return PuaConfig(db_url=f"sqlite:///{tmp_path / 'pua.sqlite'}", **kw)  # type: ignore[arg-type]


async def test_publication_survives_a_restart_and_is_recovered_after_412(
    server: Server, tmp_path: Path
) -> None:
    async with PuaAPI(config(tmp_path)) as pua:
        first = await pua.send_publish(publish_info(server, expires=-1))
        assert first.ok
    # a new process on the same database: the publication is back, with
    # its entity-tag, and nothing was sent at start (it is not due)
    seen = len(server.stub.seen)
    async with PuaAPI(config(tmp_path)) as pua:
        (record,) = pua.publications()
        assert record["etag"] == first.etag
        assert len(server.stub.seen) == seen
        # the server forgets everything; a refresh now gets 412 and pua
        # re-publishes the stored body
        server.stub.entries.clear()
        due = pua.engine.get_timer()
        assert due is not None
        pua.engine.handle_timer(due)  # the refresh, without waiting for it
        pua._flush()
        for _ in range(200):
            if server.stub.bodies("sip:alice@127.0.0.1"):
                break
            await asyncio.sleep(0.01)
        (body,) = server.stub.bodies("sip:alice@127.0.0.1")
        assert b"<basic>open</basic>" in body
        assert 412 in server.stub.statuses


async def test_removed_publication_does_not_come_back(server: Server, tmp_path: Path) -> None:
    async with PuaAPI(config(tmp_path)) as pua:
        await pua.send_publish(publish_info(server))
        removed = await pua.send_publish(publish_info(server, expires=0, body=None))
        assert removed.ended
    async with PuaAPI(config(tmp_path)) as pua:
        assert pua.publications() == []


async def test_subscription_dialog_survives_a_restart(tmp_path: Path) -> None:
    from tests.test_api_subscribe import Notifier

    notifier = Notifier()
    await notifier.start()
    try:
        async with PuaAPI(config(tmp_path)) as pua:
            outcome = await pua.send_subscribe(
                SubscribeInfo(
                    pres_uri="sip:alice@127.0.0.1",
                    watcher_uri="sip:bob@127.0.0.1",
                    contact=pua.endpoint.contact_uri("bob"),
                    event=PRESENCE_EVENT,
                    source_flag=RPC_SUBSCRIBE,
                    outbound_proxy=notifier.uri,
                )
            )
            assert outcome.ok
        async with PuaAPI(config(tmp_path)) as pua:
            (record,) = pua.subscriptions()
            assert record["call_id"] == outcome.call_id
            assert record["remote_tag"] == outcome.remote_tag
    finally:
        await notifier.close()


async def test_db_mode_2_on_sqlite_hands_rows_to_the_next_node(
    server: Server, tmp_path: Path
) -> None:
    async with PuaAPI(config(tmp_path, db_mode=2, node_id="a")) as a:
        first = await a.send_publish(publish_info(server, expires=-1))
        assert first.ok
    # a stopped gracefully: its lease ended, b takes the row at start
    async with PuaAPI(config(tmp_path, db_mode=2, node_id="b")) as b:
        (record,) = b.publications()
        assert record["etag"] == first.etag
        assert b.store is not None
        assert [row.owner async for page in b.store.load() for row in page] == ["b"]


async def test_db_mode_2_without_a_database_is_refused_with_the_key() -> None:
    with pytest.raises(ConfigError, match="db_url"):
        async with PuaAPI(PuaConfig(db_mode=2)):
            pass


async def test_write_through_stores_each_change_at_once(server: Server, tmp_path: Path) -> None:
    from pua.store.memory import MemoryStore

    store = MemoryStore()
    # update_period 0: no periodic write at all, only write-through
    async with PuaAPI(PuaConfig(write_through=True, update_period=0), store=store) as pua:
        outcome = await pua.send_publish(publish_info(server))
        for _ in range(200):
            rows = [r async for page in store.load() for r in page]
            if rows and rows[0].etag == outcome.etag:
                break
            await asyncio.sleep(0.01)
        assert [r.etag for r in rows] == [outcome.etag]
        await pua.send_publish(publish_info(server, expires=0, body=None))
        for _ in range(200):
            if await store.count() == 0:
                break
            await asyncio.sleep(0.01)
        assert await store.count() == 0


async def test_a_database_that_is_down_stops_start_with_its_name() -> None:
    from pua.store.base import StoreError

    pua = PuaAPI(PuaConfig(db_url="postgres://pua:secret@127.0.0.1:1/test"))
    with pytest.raises(StoreError) as failed:
        await pua.start()
    message = str(failed.value)
    assert "127.0.0.1:1" in message
    assert "secret" not in message
    assert pua.endpoint._udp is None  # the endpoint was closed again
