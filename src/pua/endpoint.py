"""The asyncio shell around the sans-IO SIP core.

:class:`SipEndpoint` owns the sockets (UDP, TCP, TLS), one
:class:`~pua.transaction.TransactionLayer`, the RFC 3263 resolver and the
digest client.  Every input follows the same path: feed the layer with
``now = loop.time()``, drain its events (complete the waiting requests,
hand new requests to the application), send its datagrams, and re-arm the
single timer at the layer's next deadline.

Outgoing requests: :meth:`SipEndpoint.request` sends one request and awaits
its final response, trying the next RFC 3263 target after a timeout, a
transport error or a 503 (RFC 3263 §4.3) and answering 401/407 challenges
with the configured credentials (RFC 3261 §22).  A request that gets no
response ends with a :class:`LocalResponse` (408 or 503), the equivalent of
Kamailio tm's "faked reply", so callers handle every outcome as a status.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pua.errors import LocalProtocolError, PuaError
from pua.sip.address import Address
from pua.sip.build import make_response
from pua.sip.digest import AuthState, DigestClient, DigestCredentials
from pua.sip.message import Request, Response
from pua.sip.uri import SipUri, parse_uri
from pua.transaction import (
    MessageDropped,
    RequestReceived,
    ResponseReceived,
    TimerSettings,
    TransactionLayer,
    TransactionTimedOut,
    TransportFailed,
)
from pua.transaction.events import ClientKey, ServerKey
from pua.transport.resolve import ResolveError, Resolver
from pua.transport.stream import StreamTransport
from pua.transport.udp import UdpTransport, open_udp

__all__ = ["EndpointConfig", "LocalResponse", "RequestHandler", "SipEndpoint"]

log = logging.getLogger("pua.endpoint")

#: What the application answers an incoming request with: a response (sync
#: or awaited), or ``None`` to let the endpoint's default answer it.
RequestHandler = Callable[[Request, Address], "Response | Awaitable[Response | None] | None"]

#: Methods the endpoint answers by default (RFC 3261 §8.2.1, §11.2).
DEFAULT_ALLOW = ("NOTIFY", "OPTIONS")


class LocalResponse(Response):
    """A response made up locally because none came from the network:
    408 after Timer F (RFC 3261 §8.1.3.1), 503 after a transport error or
    when no target could be resolved."""

    __slots__ = ()


@dataclass(slots=True)
class EndpointConfig:
    """Where to listen and how to behave.  Port 0 picks a free port;
    ``None`` disables that transport."""

    host: str = "127.0.0.1"
    udp_port: int | None = 0
    tcp_port: int | None = None
    tls_port: int | None = None
    #: host written in Via and Contact (default: ``host``)
    advertised_host: str | None = None
    tls_server_context: ssl.SSLContext | None = None
    tls_client_context: ssl.SSLContext | None = None
    timers: TimerSettings = field(default_factory=TimerSettings)
    credentials: list[DigestCredentials] = field(default_factory=list)
    #: DNS servers as (ip, port); ``None`` uses the system's
    nameservers: list[tuple[str, int]] | None = None
    dns_timeout: float = 2.0
    allow: tuple[str, ...] = DEFAULT_ALLOW
    user_agent: str | None = None


class SipEndpoint:
    """One SIP endpoint on the running event loop."""

    def __init__(
        self,
        config: EndpointConfig | None = None,
        *,
        handler: RequestHandler | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config or EndpointConfig()
        self._handler = handler
        self._rng = rng or random.Random(os.urandom(16))
        self._udp: UdpTransport | None = None
        self._streams: dict[str, StreamTransport] = {}
        self._layer: TransactionLayer | None = None
        self._resolver: Resolver | None = None
        self._auth = DigestClient(self.config.credentials, self._rng)
        self._has_credentials = bool(self.config.credentials)
        self._waiting: dict[ClientKey, tuple[asyncio.Future[Response], Request]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._tls_names: dict[Address, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # next hops given as text that name an IP address: resolved once
        self._numeric_hops: dict[str, tuple[Address, str]] = {}
        self.local: dict[str, Address] = {}

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open the configured transports."""
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        if cfg.udp_port is not None:
            self._udp = await open_udp(cfg.host, cfg.udp_port, self._on_message)
            assert self._udp.local is not None
            self.local["udp"] = self._udp.local
        for kind, port in (("tcp", cfg.tcp_port), ("tls", cfg.tls_port)):
            if port is None:
                continue
            stream = StreamTransport(
                kind,
                self._on_message,
                self._on_send_error,
                server_ssl=cfg.tls_server_context,
                client_ssl=cfg.tls_client_context,
            )
            self.local[kind] = await stream.listen(cfg.host, port)
            self._streams[kind] = stream
        if not self.local:
            raise LocalProtocolError("no transport configured")
        host = cfg.advertised_host or cfg.host
        self._layer = TransactionLayer(
            sent_by={kind: (host, addr.port) for kind, addr in self.local.items()},
            rng=self._rng,
            timers=cfg.timers,
            allow=cfg.allow,
        )
        self._resolver = Resolver(
            cfg.nameservers,
            timeout=cfg.dns_timeout,
            supported=tuple(self.local),
            default_transport="udp" if "udp" in self.local else next(iter(self.local)),
            rng=self._rng,
        )

    async def close(self) -> None:
        """Stop: pending requests end with a local 503, sockets close."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for key, (future, request) in list(self._waiting.items()):
            if self._layer is not None:
                self._layer.abandon(key)
            if not future.done():
                future.set_result(_local(request, 503, "Service Unavailable (endpoint closed)"))
        self._waiting.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        for stream in self._streams.values():
            await stream.close()
        self._streams.clear()

    async def __aenter__(self) -> SipEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def handler(self) -> RequestHandler | None:
        """What answers incoming requests (``None``: the default answers)."""
        return self._handler

    @handler.setter
    def handler(self, handler: RequestHandler | None) -> None:
        self._handler = handler

    @property
    def layer(self) -> TransactionLayer:
        if self._layer is None:
            raise LocalProtocolError("endpoint not started")
        return self._layer

    def contact_uri(self, user: str | None = None, transport: str | None = None) -> str:
        """A SIP URI that reaches this endpoint (for Contact headers)."""
        kind = transport or next(iter(self.local))
        addr = self.local[kind]
        host = self.config.advertised_host or addr.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        scheme = "sips" if kind == "tls" else "sip"
        userpart = f"{user}@" if user else ""
        param = f";transport={kind}" if kind == "tcp" else ""
        return f"{scheme}:{userpart}{host}:{addr.port}{param}"

    # -------------------------------------------------------- client side
    async def request(
        self,
        request: Request,
        destination: Address | SipUri | str | None = None,
        *,
        authenticate: bool = True,
    ) -> Response:
        """Send ``request`` and return its final response.

        ``destination`` is the next hop: an :class:`Address`, a URI to
        resolve (an outbound proxy), or ``None`` for the Request-URI (or the
        first Route, if it is a loose router: RFC 3261 §8.1.2).  The
        request must not carry a Via; the caller's object is not changed.
        """
        targets: list[Address]
        if isinstance(destination, Address):
            targets = [destination]
        else:
            found, server_name = await self._targets(request, destination)
            if isinstance(found, Response):
                return found
            targets = found
            if server_name is not None:
                # TLS certificates are checked against the name we resolved
                # (RFC 5922 §4), not the address it resolved to
                for target in targets:
                    if target.transport == "tls":
                        self._tls_names[target] = server_name
        # the caller's request is the template of every attempt; each
        # attempt sends a copy, to which the layer adds its Via
        template = _without_via(request) if "via" in request.headers else request
        state: AuthState | None = None
        while True:
            if len(targets) == 1:
                response = await self._send_once(_copy(template), targets[0])
            else:
                response = await self._try_targets(template, targets)
            if not authenticate or response.status not in (401, 407):
                return response
            if state is None:
                state = AuthState()
            # the template is the request the challenge answers (the copy
            # that went out differs only in its Via)
            retry = self._auth.authorize(template, response, state)
            if retry is None:
                log.info("authentication for %s gave up: %s", request.uri, state.last_failure)
                return response
            template = retry

    def submit(self, request: Request, destination: str | None = None) -> asyncio.Future[Response]:
        """:meth:`request` as a future, for callers that send many requests.

        When ``destination`` (or the Request-URI, if ``None``) names an IP
        address and no credentials are configured, the request goes to the
        transaction layer at once, with no task in between; the request
        object is then consumed (the layer adds its Via).  Anything else
        (DNS, failover, digest) runs :meth:`request` in a task.
        """
        if self._has_credentials or "via" in request.headers:
            return asyncio.ensure_future(self.request(request, destination))
        try:
            hop = destination if destination is not None else _next_hop(request)
        except PuaError:
            return asyncio.ensure_future(self.request(request, destination))
        cached = self._numeric_hops.get(hop) or self._numeric_hop(hop)
        if cached is None:
            return asyncio.ensure_future(self.request(request, destination))
        target, server_name = cached
        if target.transport == "tls":
            self._tls_names[target] = server_name
        return self._send_once(request, target)

    def _numeric_hop(self, hop: str) -> tuple[Address, str] | None:
        if self._resolver is None:
            return None
        try:
            uri = _sip_uri(hop)
            numeric = self._resolver.numeric_target(uri)
        except PuaError:
            return None
        if numeric is None or len(numeric) != 1:
            return None
        if len(self._numeric_hops) >= 4096:
            self._numeric_hops.clear()
        entry = (numeric[0], uri.host)
        self._numeric_hops[hop] = entry
        return entry

    async def _targets(
        self, request: Request, destination: SipUri | str | None
    ) -> tuple[list[Address] | Response, str | None]:
        try:
            if destination is None:
                uri = _sip_uri(_next_hop(request))
            elif isinstance(destination, str):
                uri = _sip_uri(destination)
            else:
                uri = destination
            assert self._resolver is not None
            numeric = self._resolver.numeric_target(uri)
            targets = numeric if numeric is not None else await self._resolver.resolve(uri)
        except PuaError as exc:  # ResolveError, or SipParseError for a bad URI
            reason = getattr(exc, "reason", "bad-destination")
            return _local(request, 503, f"Service Unavailable (no target: {reason})"), None
        return targets, uri.host

    async def _try_targets(self, template: Request, targets: list[Address]) -> Response:
        response: Response | None = None
        for target in targets:
            response = await self._send_once(_copy(template), target)
            # RFC 3263 §4.3: a timeout, a transport error (both local
            # answers) or a 503 moves on to the next target
            if not isinstance(response, LocalResponse) and response.status != 503:
                return response
        assert response is not None
        return response

    def _send_once(self, request: Request, target: Address) -> asyncio.Future[Response]:
        loop = self._running_loop()
        layer = self.layer
        if target.transport not in self.local:
            future: asyncio.Future[Response] = loop.create_future()
            future.set_result(
                _local(request, 503, f"Service Unavailable (no {target.transport} transport)")
            )
            return future
        key = layer.send_request(request, target, loop.time())
        future = loop.create_future()
        self._waiting[key] = (future, request)
        self._flush()
        return future

    # ------------------------------------------------------------- plumbing
    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise LocalProtocolError("endpoint not started")
        return self._loop

    def _on_message(self, data: bytes, source: Address) -> None:
        layer = self._layer
        if layer is None:
            return
        layer.receive_datagram(data, source, self._running_loop().time())
        self._flush()

    def _on_send_error(self, key: object, reason: str) -> None:
        # the transports hand back whatever key came with the message: a
        # transaction key of the layer, or None for a stateless response
        if self._layer is None or not isinstance(key, str | tuple):
            return
        self._layer.transport_error(key, self._running_loop().time(), reason)
        self._flush()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._layer is None:
            return
        self._layer.handle_timer(self._running_loop().time())
        self._flush()

    def _flush(self) -> None:
        layer = self._layer
        if layer is None:
            return
        while True:
            events = layer.events()
            outgoing = layer.datagrams_to_send()
            if not events and not outgoing:
                break
            for event in events:
                self._dispatch(event)
            for out in outgoing:
                self._transmit(out.data, out.destination, out.key)
        deadline = layer.get_timer()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_at = deadline
            if deadline is not None:
                self._timer = self._running_loop().call_at(deadline, self._on_timer)

    def _transmit(
        self, data: bytes, destination: Address, key: ClientKey | ServerKey | None
    ) -> None:
        # called from _flush, whose loop picks up the events a failure adds
        reason = None
        if destination.transport == "udp":
            if self._udp is None:
                reason = "no udp transport"
            else:
                try:
                    self._udp.send(data, destination)
                except OSError as exc:
                    reason = str(exc)
        else:
            stream = self._streams.get(destination.transport)
            if stream is None:
                reason = f"no {destination.transport} transport"
            else:
                stream.send(data, destination, key, self._tls_names.get(destination))
        if reason is not None and key is not None:
            self.layer.transport_error(key, self._running_loop().time(), reason)

    def _dispatch(self, event: object) -> None:
        if isinstance(event, ResponseReceived):
            if event.response.status < 200:
                return
            waiting = self._waiting.pop(event.key, None)
            if waiting is not None and not waiting[0].done():
                waiting[0].set_result(event.response)
        elif isinstance(event, RequestReceived):
            self._serve(event.key, event.request, event.source)
        elif isinstance(event, TransactionTimedOut):
            self._fail(event.key, event.request, 408, "Request Timeout (no response)")
        elif isinstance(event, TransportFailed):
            if isinstance(event.key, str) and event.request is not None:
                self._fail(event.key, event.request, 503, f"Service Unavailable ({event.reason})")
            else:
                log.info("could not answer %s: %s", event.destination, event.reason)
        elif isinstance(event, MessageDropped):
            log.debug("dropped from %s: %s %s", event.source, event.reason, event.detail)

    def _fail(self, key: ClientKey, request: Request, status: int, reason: str) -> None:
        waiting = self._waiting.pop(key, None)
        if waiting is not None and not waiting[0].done():
            waiting[0].set_result(_local(request, status, reason))

    # -------------------------------------------------------- server side
    def _serve(self, key: ServerKey, request: Request, source: Address) -> None:
        # the index is built for every parsed request anyway; the list only
        # when there is a Require at all
        required = request.headers.get_list("require") if "require" in request.headers else []
        if required:
            # RFC 3261 §8.2.2.3: pua implements no extension that a peer can
            # require, so any option-tag in Require gets 420 + Unsupported
            response = make_response(
                request,
                420,
                to_tag=self.layer.ids.tag(),
                headers=[("Unsupported", ", ".join(required))],
            )
            self._respond(key, request, 0, response)
            return
        try:
            answer = self._handler(request, source) if self._handler else None
        except Exception:
            log.exception("request handler failed for %s", request.method)
            self._respond(key, request, 500, None)
            return
        if inspect.isawaitable(answer):
            task = self._running_loop().create_task(self._serve_async(key, request, answer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        self._respond(key, request, 0, answer)

    async def _serve_async(
        self, key: ServerKey, request: Request, answer: Awaitable[Response | None]
    ) -> None:
        try:
            response = await answer
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("request handler failed for %s", request.method)
            self._respond(key, request, 500, None)
        else:
            self._respond(key, request, 0, response)
        self._flush()

    def _respond(
        self, key: ServerKey, request: Request, status: int, response: Response | None
    ) -> None:
        if response is None:
            response = self._default_answer(request, status)
        try:
            self.layer.send_response(key, response, self._running_loop().time())
        except LocalProtocolError as exc:
            log.warning("cannot answer %s: %s", request.method, exc)

    def _default_answer(self, request: Request, status: int) -> Response:
        tag = self.layer.ids.tag()
        if status:
            return make_response(request, status, to_tag=tag)
        if request.method == "OPTIONS":
            # §11.2: capabilities
            return make_response(
                request,
                200,
                to_tag=tag,
                headers=[("Allow", ", ".join(self.config.allow)), ("Accept", "*/*")],
            )
        if request.method == "NOTIFY":
            # RFC 6665 §4.1.3: a NOTIFY matching no subscription
            return make_response(request, 481, to_tag=tag)
        if request.method in self.config.allow:
            return make_response(request, 200, to_tag=tag)
        return make_response(
            request, 405, to_tag=tag, headers=[("Allow", ", ".join(self.config.allow))]
        )


def _next_hop(request: Request) -> str:
    """Where a request goes when no destination is given (RFC 3261
    §8.1.2): a loose router in the first Route, else the Request-URI (a
    strict router's URI is the Request-URI already)."""
    if "route" in request.headers:
        routes = request.route
        if routes and routes[0].sip_uri.lr:
            return routes[0].uri
    return request.uri


def _sip_uri(text: str) -> SipUri:
    uri = parse_uri(text)
    if not isinstance(uri, SipUri):
        raise ResolveError("bad-uri", text, "not a sip or sips URI")
    return uri


def _without_via(request: Request) -> Request:
    copy = _copy(request)
    copy.headers.remove("via")
    return copy


def _copy(request: Request) -> Request:
    return Request(
        request.method, request.uri, request.headers.copy(), request.body, request.version
    )


def _local(request: Request, status: int, reason: str) -> LocalResponse:
    made = make_response(request, status, reason)
    return LocalResponse(made.status, made.reason, made.headers, made.body)
