"""TCP and TLS transports: a listener plus a pool of connections, reused in
both directions (RFC 3261 §18.1.1, §18.2.2; RFC 5923 reuse is not claimed).

Messages are cut from the byte stream by :class:`pua.sip.StreamFramer`; a
stream that breaks the framing is closed, since message boundaries are lost.
Connections are keyed by the peer's address: for a connection we opened,
the address we connected to; for one we accepted, the peer's source
address (which is what a response to its requests must use).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import cast

from pua.errors import SipParseError
from pua.sip.address import Address
from pua.sip.parser import StreamFramer

__all__ = ["StreamTransport"]

log = logging.getLogger("pua.transport.stream")

#: A connection that never finishes connecting is given up after this.
CONNECT_TIMEOUT = 10.0
#: Bytes queued for a connection that is still being set up.
MAX_PENDING = 1024 * 1024

OnMessage = Callable[[bytes, Address], None]
OnError = Callable[[object, str], None]


class _Connection(asyncio.Protocol):
    def __init__(self, owner: StreamTransport, peer: Address | None) -> None:
        self.owner = owner
        self.peer = peer
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport
        self.transport = cast(asyncio.Transport, transport)
        if self.peer is None:
            host, port = transport.get_extra_info("peername")[:2]
            self.peer = Address(self.owner.kind, str(host), int(port))
            self.owner._accepted(self)

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None
        try:
            messages = self.framer.feed(data)
        except SipParseError as exc:
            self.owner.framing_errors += 1
            log.info("closing %s: %s", self.peer, exc)
            self.close()
            return
        for message in messages:
            self.owner._on_message(message, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._lost(self)
        self.transport = None

    def send(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError(f"connection to {self.peer} is closed")
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class StreamTransport:
    """Connections of one kind (``tcp`` or ``tls``).

    ``on_message(data, peer)`` receives each framed message;
    ``on_error(key, reason)`` is told when a message could not be sent, with
    the key that came with it (the transaction to fail).
    """

    def __init__(
        self,
        kind: str,
        on_message: OnMessage,
        on_error: OnError,
        *,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
    ) -> None:
        if kind not in ("tcp", "tls"):
            raise ValueError(f"stream transport kind must be tcp or tls, not {kind!r}")
        if kind == "tls" and client_ssl is None:
            client_ssl = ssl.create_default_context()
        self.kind = kind
        self._on_message = on_message
        self._on_error = on_error
        self._server_ssl = server_ssl
        self._client_ssl = client_ssl
        self._connections: dict[Address, _Connection] = {}
        self._pending: dict[Address, list[tuple[bytes, object]]] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.local: Address | None = None
        self.framing_errors = 0

    async def listen(self, host: str, port: int) -> Address:
        loop = asyncio.get_running_loop()
        if self.kind == "tls" and self._server_ssl is None:
            raise ValueError("a TLS listener needs a server SSL context (certificate)")
        self._server = await loop.create_server(
            lambda: _Connection(self, None), host, port, ssl=self._server_ssl
        )
        sock_host, sock_port = self._server.sockets[0].getsockname()[:2]
        self.local = Address(self.kind, sock_host, sock_port)
        return self.local

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def send(
        self, data: bytes, destination: Address, key: object = None, server_name: str | None = None
    ) -> None:
        """Send over the pooled connection to ``destination``, opening one if
        needed (then the data waits in a bounded queue until connected)."""
        conn = self._connections.get(destination)
        if conn is not None and conn.transport is not None:
            try:
                conn.send(data)
            except ConnectionError as exc:
                self._on_error(key, str(exc))
            return
        queue = self._pending.get(destination)
        if queue is not None:
            if sum(len(d) for d, _ in queue) + len(data) > MAX_PENDING:
                self._on_error(key, "connection queue full")
                return
            queue.append((data, key))
            return
        self._pending[destination] = [(data, key)]
        task = asyncio.get_running_loop().create_task(self._connect(destination, server_name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, destination: Address, server_name: str | None) -> None:
        loop = asyncio.get_running_loop()
        conn = _Connection(self, destination)
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: conn,
                    destination.host,
                    destination.port,
                    ssl=self._client_ssl if self.kind == "tls" else None,
                    server_hostname=(server_name or destination.host)
                    if self.kind == "tls"
                    else None,
                ),
                CONNECT_TIMEOUT,
            )
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            reason = f"connect to {destination} failed: {exc or type(exc).__name__}"
            for _, key in self._pending.pop(destination, []):
                self._on_error(key, reason)
            return
        self._connections[destination] = conn
        for data, key in self._pending.pop(destination, []):
            try:
                conn.send(data)
            except ConnectionError as exc:
                self._on_error(key, str(exc))

    def _accepted(self, conn: _Connection) -> None:
        assert conn.peer is not None
        self._connections[conn.peer] = conn

    def _lost(self, conn: _Connection) -> None:
        if conn.peer is not None and self._connections.get(conn.peer) is conn:
            del self._connections[conn.peer]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections.values()):
            conn.close()
        self._connections.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
