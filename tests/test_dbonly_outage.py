"""db_mode 2 on a real PostgreSQL that goes away for 10 s and comes back.

PostgreSQL is shared by every test on this machine, so instead of stopping
the server the test puts a TCP relay between pua and it and cuts the relay:
every connection is dropped and new ones are refused, which is what pua
sees when the server stops.  While it is cut, calls fail with an error
naming the database, the held publication still refreshes, and nothing is
lost: once the relay is back, the next round writes what waited."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from pua import PuaAPI, PuaConfig
from pua.store.base import StoreError
from pua.store.url import parse_db_url
from tests.store.conftest import POSTGRES_URL
from tests.test_api import Server, publish_info
from tests.test_api_subscribe import poll

#: how long the database stays away (the issue's figure)
OUTAGE = 10.0


class Relay:
    """A TCP relay on a loopback port to ``target``; :meth:`cut` drops every
    connection and stops listening, :meth:`restore` listens again on the
    same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    async def restore(self) -> None:
        await self.start()


async def drop_table(table: str) -> None:
    engine = create_async_engine(parse_db_url(POSTGRES_URL))
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP TABLE IF EXISTS "{table}"'))
        await conn.execute(text(f'DROP TABLE IF EXISTS "{table}_alembic_version"'))
        await conn.execute(text("DELETE FROM version WHERE table_name = :t"), {"t": table})
    await engine.dispose()


async def test_postgresql_away_for_10_s_then_back_loses_nothing(server: Server) -> None:
    url = parse_db_url(POSTGRES_URL)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    await relay.start()
    table = "pua_o" + secrets.token_hex(6)
    relayed = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
    config = PuaConfig(db_url=relayed, db_table=table, db_mode=2, node_id="a", lease_time=30)
    try:
        async with PuaAPI(config) as pua:
            assert pua.shared is not None
            assert pua.store is not None
            first = await pua.send_publish(publish_info(server, expires=-1))
            assert first.ok
            await pua.shared.flush()
            await relay.cut()
            cut_at = time.monotonic()
            # the next round finds the database gone; calls then fail with it
            await pua.shared.tick()
            with pytest.raises(StoreError, match=rf"127\.0\.0\.1:{relay.port}"):
                pua.send_publish(publish_info(server, "closed", expires=-1))
            # the publication goes on: its refresh goes out and is answered
            due = pua.engine.get_timer()
            assert due is not None
            pua.engine.handle_timer(due)
            pua._flush()
            await poll(lambda: len(server.stub.seen) == 2, "the refresh")
            await poll(lambda: server.stub.statuses[-1] == 200, "its answer")
            (record,) = pua.publications()
            assert record["etag"] != first.etag
            # the outage lasts its 10 s (the scenario, not a timing check)
            await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - cut_at)))
            with pytest.raises(StoreError):
                await pua.shared.flush()
            await relay.restore()
            await pua.shared.tick()
            assert pua.shared.down is None
            (row,) = [row async for page in pua.store.load() for row in page]
            assert row.etag == record["etag"]
            assert row.owner == "a"
            assert (await pua.send_publish(publish_info(server, "closed", expires=-1))).ok
    finally:
        with contextlib.suppress(Exception):
            await relay.cut()
        await drop_table(table)
