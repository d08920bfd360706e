"""``PuaAPI``: what Kamailio's ``bind_pua`` hands to other modules, as an
asyncio object.

It joins the sans-IO :class:`~pua.ua.PublishEngine` to a
:class:`~pua.endpoint.SipEndpoint`: every input (a call, a response, the
timer) is fed to the engine with ``now = loop.time()``; then the engine's
requests are handed to the endpoint, its outcomes complete the callers'
awaitables and run the callbacks, and the single timer is re-armed at the
engine's next deadline.

Kamailio's return codes map to Python like this (see docs/api.md):

* ``0`` (sent): :meth:`PuaAPI.send_publish` returns a :class:`PublishCall`;
  awaiting it gives the :class:`~pua.ua.PublishOutcome`;
* ``-1``: :class:`~pua.errors.PublishError` (and :class:`UnknownEventError`);
* ``-10`` (``ERR_PUBLISH_NO_BODY``): :class:`~pua.errors.NoBodyError`;
* ``418`` (unknown ETag): :class:`~pua.errors.UnknownETagError`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Awaitable, Generator
from typing import Any, Generic, TypeVar

from pua.callbacks import CallbackRegistry, PuaCallback
from pua.config import ConfigError, PuaConfig
from pua.dbonly import DbOnly
from pua.endpoint import EndpointConfig, LocalResponse, SipEndpoint
from pua.errors import LocalProtocolError, PuaError
from pua.evpkg.registry import BodyProcessor, EventRegistry
from pua.model import PublishInfo, SubscribeInfo
from pua.persist import WriteBack
from pua.sip.address import Address
from pua.sip.message import Request, Response
from pua.store.base import LeaseStore, Store
from pua.ua.events import NotifyReceived, OutgoingRequest, PublishOutcome, SubscribeOutcome
from pua.ua.publish import PublishEngine
from pua.ua.subscribe import DialogStatus, SubscribeEngine

__all__ = ["PuaAPI", "PuaCall", "PublishCall", "SubscribeCall"]

_T = TypeVar("_T")

log = logging.getLogger("pua.api")


class PuaCall(Generic[_T]):
    """One accepted request: await it for the outcome, or drop it (fire
    and forget: pua goes on either way)."""

    __slots__ = ("_future", "info", "ticket")

    def __init__(self, ticket: int, info: Any, future: asyncio.Future[_T]) -> None:
        self.ticket = ticket
        self.info = info
        self._future = future

    def __await__(self) -> Generator[Any, None, _T]:
        return self._future.__await__()

    def done(self) -> bool:
        return self._future.done()

    def result(self) -> _T:
        return self._future.result()

    def __repr__(self) -> str:
        state = "done" if self._future.done() else "pending"
        return f"<{type(self).__name__} {self.ticket} {self.info.pres_uri} {state}>"


class PublishCall(PuaCall[PublishOutcome]):
    """An accepted ``send_publish``."""

    __slots__ = ()


class SubscribeCall(PuaCall[SubscribeOutcome]):
    """An accepted ``send_subscribe``."""

    __slots__ = ()


class PuaAPI:
    """A presence user agent on the running event loop.

    ``async with PuaAPI(config) as pua: await pua.send_publish(info)``.
    Pass an ``endpoint`` to share one SIP endpoint with other users;
    otherwise one is made from ``endpoint_config`` (default: UDP on a
    free loopback port).
    """

    def __init__(
        self,
        config: PuaConfig | None = None,
        *,
        endpoint: SipEndpoint | None = None,
        endpoint_config: EndpointConfig | None = None,
        registry: EventRegistry | None = None,
        rng: random.Random | None = None,
        store: Store | None = None,
    ) -> None:
        self.config = config or PuaConfig()
        #: where records are written back (db_mode 0): ``store``, or one
        #: made from ``db_url`` at start; none when both are empty
        self.store = store
        self.persistence: WriteBack | None = None
        self._rng = rng or random.Random(os.urandom(16))
        self._own_endpoint = endpoint is None
        self.endpoint = endpoint or SipEndpoint(endpoint_config, rng=self._rng)
        self.endpoint.handler = self._on_request
        self.registry = registry or EventRegistry(
            dlginfo_increase_version=self.config.dlginfo_increase_version,
            reginfo_increase_version=self.config.reginfo_increase_version,
        )
        host = self.endpoint.config.advertised_host or self.endpoint.config.host
        self.engine = PublishEngine(self.config, self.registry, self._rng, local_host=host)
        self.subscriptions_engine = SubscribeEngine(
            self.config, self.registry, self._rng, local_host=host
        )
        self.callbacks = CallbackRegistry()
        self.notify_callbacks = CallbackRegistry()
        self._calls: dict[int, asyncio.Future[PublishOutcome]] = {}
        self._subscribe_calls: dict[int, asyncio.Future[SubscribeOutcome]] = {}
        #: requests out: their future -> (engine, the engine's token)
        self._requests: dict[
            asyncio.Future[Response], tuple[PublishEngine | SubscribeEngine, int]
        ] = {}
        #: db_mode 2: leases, take-over, write-at-once (else None)
        self.shared: DbOnly | None = None
        #: db_mode 2: calls waiting for the database, in call order
        self._queue: asyncio.Queue[PublishCall | SubscribeCall] | None = None
        self._queue_task: asyncio.Task[None] | None = None
        self._queued = 0
        #: db_mode 2: requests waiting for the database to confirm that
        #: this node still holds their record
        self._gate: list[tuple[PublishEngine | SubscribeEngine, OutgoingRequest, int]] = []
        self._gate_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open the endpoint and the store; take back the stored records,
        which then refresh (or re-publish, re-subscribe) as they need."""
        self._loop = asyncio.get_running_loop()
        if self.config.db_mode == 2 and self.store is None and not self.config.db_url.strip():
            raise ConfigError("db_url", "db_mode 2 (DB only) needs a database")
        if self._own_endpoint:
            await self.endpoint.start()
        if self.store is None and self.config.db_url:
            # here, not at the top: SQLAlchemy loads only when a database is used
            from pua.store import make_store  # noqa: PLC0415

            self.store = make_store(self.config)
        if self.store is not None:
            try:
                await self.store.open()
            except Exception:
                # a database that is down stops start-up with its name
                # (StoreError); leave nothing open behind
                if self._own_endpoint:
                    await self.endpoint.close()
                raise
            loop = self._loop
            if self.config.db_mode == 2:
                await self._start_shared(self.store, loop)
                return
            self.persistence = WriteBack(
                self.store,
                self.engine,
                self.subscriptions_engine,
                period=float(self.config.update_period),
                fetch_rows=self.config.fetch_rows,
                node=None,
                clock=loop.time,
            )
            restored = await self.persistence.restore()
            log.info("restored %d records from %s", restored, self.store)
            self.persistence.start()
            self._flush()

    async def _start_shared(self, store: Store, loop: asyncio.AbstractEventLoop) -> None:
        if not isinstance(store, LeaseStore):
            await self.close()
            raise ConfigError("db_mode", f"2 (DB only) needs a shared database, not {store.name}")
        node = self.config.node_id or f"{socket.gethostname()}:{os.getpid()}"
        self.shared = DbOnly(
            store,
            self.engine,
            self.subscriptions_engine,
            node=node,
            lease_time=float(self.config.lease_time),
            fetch_rows=self.config.fetch_rows,
            clock=loop.time,
            wake=self._flush_if_open,
        )
        self.persistence = self.shared
        self._queue = asyncio.Queue()
        self._queue_task = loop.create_task(self._serve_queue())
        restored = await self.shared.restore()
        log.info("node %s holds %d records of %s", node, restored, store.name)
        self.shared.start()
        self._flush()

    async def close(self) -> None:
        """Stop.  Publications are left to expire at the server (or to be
        picked up again from storage); waiting callers get an outcome."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in (self._queue_task, self._gate_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._queue_task = self._gate_task = None
        if self.persistence is not None:
            # the final write-back (Kamailio's never runs, spec §4.3)
            await self.persistence.close()
        if self.store is not None:
            await self.store.close()
        pending = list(self._requests)
        self._requests.clear()
        for future in pending:
            future.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        for calls in (self._calls, self._subscribe_calls):
            for call in calls.values():
                if not call.done():
                    call.cancel()
            calls.clear()
        if self._own_endpoint:
            await self.endpoint.close()

    async def __aenter__(self) -> PuaAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ the API
    def send_publish(self, info: PublishInfo) -> PublishCall:
        """Publish, modify, refresh or remove (``info.expires == 0``).

        Raises :class:`~pua.errors.PublishError` at once when the request
        cannot be sent (nothing changes then).  Otherwise the returned
        :class:`PublishCall` completes with exactly one outcome.
        """
        loop = self._running_loop()
        future: asyncio.Future[PublishOutcome] = loop.create_future()
        if self.shared is not None:
            self.shared.check()
            if self._queued or not self.engine.holds(info):
                call = PublishCall(0, info, future)
                self._enqueue(call)
                return call
        ticket = self.engine.publish(info, loop.time())
        self._calls[ticket] = future
        self._flush()
        return PublishCall(ticket, info, future)

    def send_subscribe(self, info: SubscribeInfo) -> SubscribeCall:
        """Subscribe, refresh or unsubscribe (``info.expires == 0``).

        Raises :class:`~pua.errors.SubscribeError` at once when the request
        cannot be sent.  Otherwise the returned :class:`SubscribeCall`
        completes with exactly one :class:`~pua.ua.SubscribeOutcome`; the
        NOTIFYs of the subscription go to :meth:`register_notify_cb`
        callbacks.
        """
        loop = self._running_loop()
        future: asyncio.Future[SubscribeOutcome] = loop.create_future()
        if self.shared is not None:
            self.shared.check()
            if self._queued or not self.subscriptions_engine.holds(info):
                sub_call = SubscribeCall(0, info, future)
                self._enqueue(sub_call)
                return sub_call
        ticket = self.subscriptions_engine.subscribe(info, loop.time())
        self._subscribe_calls[ticket] = future
        self._flush()
        return SubscribeCall(ticket, info, future)

    def _enqueue(self, call: PublishCall | SubscribeCall) -> None:
        """db_mode 2: a call about a record this node does not hold looks
        for it in the database first (and takes it over).  Calls queue up
        behind it, so that they reach the engines in call order; errors
        that db_mode 0 raises at once are raised by awaiting the call."""
        assert self._queue is not None
        self._queued += 1
        self._queue.put_nowait(call)

    async def _serve_queue(self) -> None:
        # every call waiting is taken at once: one lookup and one take-over
        # for the whole batch, then the calls in order
        assert self._queue is not None
        assert self.shared is not None
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                wanted = [
                    call.info
                    for call in batch
                    if not (
                        self.engine.holds(call.info)
                        if isinstance(call, PublishCall)
                        else self.subscriptions_engine.holds(call.info)
                    )
                ]
                failure: Exception | None = None
                try:
                    if wanted:
                        await self.shared.adopt(wanted)
                except PuaError as exc:
                    failure = exc
                for call in batch:
                    self._start_queued(call, failure)
                self._flush()
            except Exception as exc:
                # a bug below must not leave callers waiting for ever
                log.exception("queued calls failed")
                for call in batch:
                    if not call._future.done():
                        call._future.set_exception(exc)
            finally:
                self._queued -= len(batch)

    def _start_queued(self, call: PublishCall | SubscribeCall, failure: Exception | None) -> None:
        future: asyncio.Future[Any] = call._future
        try:
            if failure is not None:
                raise failure
            now = self._running_loop().time()
            if isinstance(call, PublishCall):
                ticket = self.engine.publish(call.info, now)
                self._calls[ticket] = future
            else:
                ticket = self.subscriptions_engine.subscribe(call.info, now)
                self._subscribe_calls[ticket] = future
        except Exception as exc:  # the call's error, for its caller
            if not future.done():
                future.set_exception(exc)
            return
        call.ticket = ticket

    def register_puacb(self, types: int, callback: PuaCallback, param: Any = None) -> None:
        """Run ``callback(outcome, param)`` for every final outcome of a
        request whose source flag overlaps ``types``: every
        ``send_publish`` and ``send_subscribe``, and pua's own refreshes
        when ``callbacks_on_refresh`` is set.  Newest registration first."""
        self.callbacks.register(types, callback, param)

    def register_notify_cb(self, types: int, callback: PuaCallback, param: Any = None) -> None:
        """Run ``callback(notify, param)`` with a
        :class:`~pua.ua.NotifyReceived` for every NOTIFY of a subscription
        whose source flag overlaps ``types``."""
        self.notify_callbacks.register(types, callback, param)

    def is_dialog(self, call_id: str, local_tag: str, remote_tag: str | None) -> DialogStatus:
        """Whether a dialog is one of our subscriptions: ESTABLISHED (0),
        TEMPORARY (1: the SUBSCRIBE is not answered yet) or NONE (-1).
        ``local_tag`` is ours (a NOTIFY's To tag), ``remote_tag`` the
        notifier's (its From tag)."""
        return self.subscriptions_engine.is_dialog(call_id, local_tag, remote_tag)

    def get_record_id(self, call_id: str, local_tag: str, remote_tag: str | None) -> str | None:
        """The ``id`` of the subscription of that dialog, or ``None``."""
        return self.subscriptions_engine.get_record_id(call_id, local_tag, remote_tag)

    def get_subs_list(self, did: str) -> list[str]:
        """The presentities subscribed with id ``did`` (exactly), sorted."""
        return self.subscriptions_engine.get_subs_list(did)

    def update_contact(self, notify: Request) -> bool:
        """Store the first Contact of ``notify`` as its dialog's remote
        target (Kamailio's ``pua_update_contact()``, as meant); whether
        the dialog was found."""
        return self.subscriptions_engine.update_contact(notify)

    def subscriptions(self) -> list[dict[str, Any]]:
        """Every subscription as plain data (introspection)."""
        now = self._running_loop().time()
        return [r.snapshot(now) for r in self.subscriptions_engine.subscriptions()]

    def add_event(
        self,
        flag: int,
        name: str,
        content_type: str | None,
        process_body: BodyProcessor | None = None,
    ) -> bool:
        """Register an event package; ``False`` if the name exists (then
        nothing changes, as in Kamailio)."""
        return self.registry.add_event(flag, name, content_type, process_body)

    def get_event_flag(self, name: str) -> int | None:
        """The flag of a registered event name, or ``None``."""
        return self.registry.get_event_flag(name)

    def cleanup(self) -> None:
        """Do now what is due now (Kamailio's ``pua.cleanup``): refreshes,
        retries and final removals whose time has come."""
        now = self._running_loop().time()
        self.engine.handle_timer(now)
        self.subscriptions_engine.handle_timer(now)
        self._flush()

    def publications(self) -> list[dict[str, Any]]:
        """Every publication as plain data (introspection)."""
        now = self._running_loop().time()
        return [record.snapshot(now) for record in self.engine.publications()]

    # ------------------------------------------------------------ plumbing
    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._closed:
            raise LocalProtocolError("PuaAPI not started")
        return self._loop

    def _flush(self) -> None:
        engine = self.engine
        subscriptions = self.subscriptions_engine
        loop = self._running_loop()
        for outgoing in engine.requests_to_send():
            self._send(engine, outgoing)
        for outgoing in subscriptions.requests_to_send():
            self._send(subscriptions, outgoing)
        for outcome in engine.events():
            self._deliver(outcome)
        for event in subscriptions.events():
            if isinstance(event, NotifyReceived):
                self.notify_callbacks.run(event)
            else:
                self._deliver(event)
        if self.persistence is not None and (self.config.write_through or self.shared):
            self.persistence.kick()
        deadline = engine.get_timer()
        other = subscriptions.get_timer()
        if other is not None and (deadline is None or other < deadline):
            deadline = other
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_at = deadline
            if deadline is not None:
                self._timer = loop.call_at(deadline, self._on_timer)

    def _send(self, engine: PublishEngine | SubscribeEngine, outgoing: OutgoingRequest) -> None:
        if self.shared is not None:
            row_id = engine.row_of(outgoing.token)
            if row_id is not None:
                # db_mode 2: a stored record's request goes out only once
                # the database says this node still holds it (another node
                # may have taken it over since: then it is that node's)
                self._gate.append((engine, outgoing, row_id))
                if self._gate_task is None or self._gate_task.done():
                    self._gate_task = self._running_loop().create_task(self._open_gate())
                return
        self._submit(engine, outgoing)

    async def _open_gate(self) -> None:
        assert self.shared is not None
        while self._gate and not self._closed:
            batch, self._gate = self._gate, []
            held = await self.shared.held([row_id for _, _, row_id in batch])
            if self._closed:
                return
            for engine, outgoing, row_id in batch:
                if row_id in held:
                    self._submit(engine, outgoing)
                else:
                    engine.abandon(outgoing.token, "taken over by another node")
            self._flush()

    def _submit(self, engine: PublishEngine | SubscribeEngine, outgoing: OutgoingRequest) -> None:
        # the engines build a new request for every send, so the endpoint
        # may consume it (no copy, no task when the next hop is an IP)
        future = self.endpoint.submit(outgoing.request, outgoing.destination)
        self._requests[future] = (engine, outgoing.token)
        future.add_done_callback(self._on_response)

    def _on_response(self, future: asyncio.Future[Response]) -> None:
        engine, token = self._requests.pop(future, (self.engine, 0))
        if future.cancelled() or self._closed:
            return
        exc = future.exception()
        if exc is None:
            response = future.result()
        else:
            # a bug below us must not leave a record waiting for ever
            log.error("sending request %d failed", token, exc_info=exc)
            response = LocalResponse(503, "Service Unavailable (internal error)")
        engine.handle_response(
            token,
            response,
            self._running_loop().time(),
            local=isinstance(response, LocalResponse),
        )
        self._flush()

    def _on_request(
        self, request: Request, source: Address
    ) -> Response | Awaitable[Response | None] | None:
        if request.method != "NOTIFY" or self._closed or self._loop is None:
            return None
        if self.shared is not None:
            try:
                known = self.subscriptions_engine.knows_dialog(
                    request.call_id, request.to.tag or ""
                )
            except PuaError:
                known = True  # the engine answers 400
            if not known:
                return self._notify_shared(request)
        response = self.subscriptions_engine.handle_notify(request, self._loop.time())
        # the engine may want to send (a new subscription) or report
        self._loop.call_soon(self._flush_if_open)
        return response

    async def _notify_shared(self, request: Request) -> Response | None:
        """db_mode 2: a NOTIFY of a dialog another node holds (or held):
        take the dialog over from the database, then answer it."""
        assert self.shared is not None
        try:
            await self.shared.adopt_dialog(request.call_id, request.to.tag or "")
        except PuaError as exc:
            # no answer from the shared state: the notifier tries again
            log.error("NOTIFY %s: %s", request.call_id, exc)
            return None
        if self._closed or self._loop is None:
            return None
        response = self.subscriptions_engine.handle_notify(request, self._loop.time())
        self._flush()
        return response

    def _flush_if_open(self) -> None:
        if not self._closed:
            self._flush()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._closed:
            return
        now = self._running_loop().time()
        self.engine.handle_timer(now)
        self.subscriptions_engine.handle_timer(now)
        self._flush()

    def _deliver(self, outcome: PublishOutcome | SubscribeOutcome) -> None:
        if outcome.ticket is not None:
            calls: dict[int, Any] = (
                self._calls if isinstance(outcome, PublishOutcome) else self._subscribe_calls
            )
            future = calls.pop(outcome.ticket, None)
            if future is not None and not future.done():
                future.set_result(outcome)
        elif not self.config.callbacks_on_refresh:
            return
        self.callbacks.run(outcome)
