"""TCP connections: framing, errors that close a stream, connect failures
reported per message, and the pool (RFC 3261 §18.3, §18.4)."""

from __future__ import annotations

import asyncio
import socket

from pua.sip.address import Address
from pua.transport.stream import StreamTransport
from tests.helpers import make_request


class Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[bytes, Address]] = []
        self.errors: list[tuple[object, str]] = []
        self.got = asyncio.Event()

    def on_message(self, data: bytes, peer: Address) -> None:
        self.messages.append((data, peer))
        self.got.set()

    def on_error(self, key: object, reason: str) -> None:
        self.errors.append((key, reason))
        self.got.set()


async def listener() -> tuple[StreamTransport, Sink, int]:
    sink = Sink()
    transport = StreamTransport("tcp", sink.on_message, sink.on_error)
    local = await transport.listen("127.0.0.1", 0)
    return transport, sink, local.port


async def test_messages_are_framed_across_writes_and_within_one() -> None:
    transport, sink, port = await listener()
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        one = make_request("NOTIFY", body=b"abc").to_bytes()
        two = make_request("NOTIFY", call_id="second", body=b"defg").to_bytes()
        # first message in two pieces, then a keep-alive, then the second
        writer.write(one[:10])
        await writer.drain()
        writer.write(one[10:] + b"\r\n\r\n" + two)
        await writer.drain()
        while len(sink.messages) < 2:
            sink.got.clear()
            await asyncio.wait_for(sink.got.wait(), 5)
        assert [m for m, _ in sink.messages] == [one, two]
        peer = sink.messages[0][1]
        assert peer.transport == "tcp"
        assert peer.port == writer.get_extra_info("sockname")[1]
        assert transport.connection_count == 1
        writer.close()
    finally:
        await transport.close()


async def test_a_stream_without_content_length_is_closed() -> None:
    # RFC 3261 §18.3: Content-Length is mandatory on streams; without it the
    # message boundaries are lost and the connection must go
    transport, sink, port = await listener()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"NOTIFY sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by us
        assert transport.framing_errors == 1
        assert sink.messages == []
        writer.close()
    finally:
        await transport.close()


async def test_connect_failure_is_reported_for_every_queued_message() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    transport, sink, _ = await listener()
    try:
        target = Address("tcp", "127.0.0.1", closed_port)
        transport.send(b"first", target, "k1")
        transport.send(b"second", target, "k2")  # queued behind the same connect
        while len(sink.errors) < 2:
            sink.got.clear()
            await asyncio.wait_for(sink.got.wait(), 5)
        assert [key for key, _ in sink.errors] == ["k1", "k2"]
        assert all("connect" in reason for _, reason in sink.errors)
        assert transport.connection_count == 0
    finally:
        await transport.close()


async def test_outgoing_connection_is_pooled_and_carries_replies() -> None:
    server, server_sink, port = await listener()
    client_sink = Sink()
    client = StreamTransport("tcp", client_sink.on_message, client_sink.on_error)
    await client.listen("127.0.0.1", 0)
    try:
        target = Address("tcp", "127.0.0.1", port)
        for i in range(3):
            client.send(make_request(call_id=f"c{i}").to_bytes(), target, f"k{i}")
        while len(server_sink.messages) < 3:
            server_sink.got.clear()
            await asyncio.wait_for(server_sink.got.wait(), 5)
        assert client.connection_count == 1
        assert server.connection_count == 1
        # the server answers over the connection the client opened
        peer = server_sink.messages[0][1]
        server.send(make_request("OPTIONS", call_id="back").to_bytes(), peer, None)
        await asyncio.wait_for(client_sink.got.wait(), 5)
        ((data, source),) = client_sink.messages
        assert b"Call-ID: back" in data
        assert source == target
    finally:
        await client.close()
        await server.close()
