"""The transaction layer: many non-INVITE client and server transactions,
matched, timed and retransmitted (RFC 3261 §17, §18.1.2, §18.2).

Shape (aioquic's): inputs are :meth:`~TransactionLayer.send_request`,
:meth:`~TransactionLayer.send_response`,
:meth:`~TransactionLayer.receive_datagram`,
:meth:`~TransactionLayer.transport_error` and
:meth:`~TransactionLayer.handle_timer`, each with ``now``; outputs are
:meth:`~TransactionLayer.next_event`,
:meth:`~TransactionLayer.datagrams_to_send` and one
:meth:`~TransactionLayer.get_timer` deadline.  After every input, the caller
drains events and datagrams and re-arms its single timer.

Timers.  F, K, J, the TU guard and the first Timer E (always T1) have one
fixed duration each, so their deadlines arrive in the order they were set:
each lives in an ``OrderedDict`` (key -> deadline) that is both the queue
and the O(1) cancel.  Only the later Timer E firings, whose interval
doubles, use a heap; they happen only to requests that went unanswered for
T1, and their stale entries are skipped lazily and live at most T2.  This
keeps the common case (answer before T1) free of heap work and memory
proportional to live transactions at any rate.  ``now`` must never go
backwards (use a monotonic clock).
"""

from __future__ import annotations

import heapq
import random
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Mapping
from typing import NamedTuple, TypeVar

from pua.errors import LocalProtocolError, SipParseError
from pua.sip.address import Address
from pua.sip.build import make_response
from pua.sip.fields import Via
from pua.sip.grammar import split_list
from pua.sip.ids import MAGIC_COOKIE, IdGenerator
from pua.sip.message import Request, Response, reason_phrase
from pua.sip.parser import parse_message, salvage_request
from pua.transaction import nict, nist
from pua.transaction.events import (
    ClientKey,
    Event,
    MessageDropped,
    RequestReceived,
    ResponseReceived,
    ServerKey,
    TransactionTimedOut,
    TransportFailed,
)
from pua.transaction.timers import TimerSettings

__all__ = ["Outgoing", "TransactionLayer"]

_K = TypeVar("_K", str, tuple[str, str, str])


class Outgoing(NamedTuple):
    """A message to put on the wire.  ``key`` names the transaction to blame
    (pass it to :meth:`TransactionLayer.transport_error` if sending fails);
    it is ``None`` for stateless responses."""

    data: bytes
    destination: Address
    key: ClientKey | ServerKey | None


class _ClientTx:
    __slots__ = (
        "data",
        "destination",
        "e_at",
        "e_interval",
        "key",
        "method",
        "request",
        "sent_by",
        "state",
    )

    def __init__(
        self,
        key: ClientKey,
        request: Request,
        data: bytes,
        destination: Address,
        sent_by: tuple[str, int],
    ) -> None:
        self.key = key
        self.method = request.method
        self.request = request
        self.data = data
        self.destination = destination
        self.sent_by = sent_by
        self.state = nict.State.TRYING
        self.e_interval = 0.0
        self.e_at: float | None = None


class _ServerTx:
    __slots__ = ("destination", "key", "last", "request", "state")

    def __init__(self, key: ServerKey, request: Request, destination: Address) -> None:
        self.key = key
        self.request = request
        self.destination = destination
        self.state = nist.State.TRYING
        self.last: bytes | None = None


class TransactionLayer:
    """All non-INVITE transactions of one SIP endpoint.

    ``sent_by`` maps each transport we listen on (``udp``, ``tcp``,
    ``tls``) to the (host, port) written in our Via (RFC 3261 §18.1.1).
    ``allow`` lists the methods the TU accepts; an INVITE is answered 405
    with them (§8.2.1) without a transaction.  ``tu_timeout`` (default
    64*T1) bounds how long a server transaction waits for the TU: past it,
    the layer answers 500 so that no transaction is left open for ever.
    """

    def __init__(
        self,
        *,
        sent_by: Mapping[str, tuple[str, int]],
        rng: random.Random,
        timers: TimerSettings | None = None,
        allow: Iterable[str] = ("NOTIFY", "OPTIONS"),
        tu_timeout: float | None = None,
    ) -> None:
        self.timers = timers or TimerSettings()
        self.ids = IdGenerator(rng)
        self._sent_by = {t: (_via_host(h), p) for t, (h, p) in sent_by.items()}
        self._allow = ", ".join(allow)
        self._tu_timeout = self.timers.timer_f if tu_timeout is None else tu_timeout
        self._client: dict[ClientKey, _ClientTx] = {}
        self._server: dict[ServerKey, _ServerTx] = {}
        # Completed transactions shrink to what they still need: the method
        # (client, to absorb retransmitted responses until K) and the last
        # response with its destination (server, to repeat it until J).
        # Their requests and objects are released at once, which keeps the
        # cyclic garbage collector's work proportional to in-flight
        # transactions rather than to T4 or 64*T1 seconds of traffic.
        self._client_done: dict[ClientKey, str] = {}
        self._server_done: dict[ServerKey, tuple[bytes, Address]] = {}
        self._timer_e1: OrderedDict[ClientKey, float] = OrderedDict()
        self._timer_e: list[tuple[float, ClientKey]] = []
        self._timer_f: OrderedDict[ClientKey, float] = OrderedDict()
        self._timer_k: OrderedDict[ClientKey, float] = OrderedDict()
        self._timer_j: OrderedDict[ServerKey, float] = OrderedDict()
        self._tu_guard: OrderedDict[ServerKey, float] = OrderedDict()
        self._events: deque[Event] = deque()
        self._out: list[Outgoing] = []
        #: counts of dropped messages by reason, and of notable happenings
        self.drops: Counter[str] = Counter()
        self.stats: Counter[str] = Counter()

    # ------------------------------------------------------------- outputs
    def next_event(self) -> Event | None:
        """The next event for the TU, or ``None``."""
        return self._events.popleft() if self._events else None

    def events(self) -> list[Event]:
        """Every pending event, oldest first (drains the queue)."""
        out = list(self._events)
        self._events.clear()
        return out

    def datagrams_to_send(self) -> list[Outgoing]:
        """Every message to send now (drains the queue)."""
        out = self._out
        self._out = []
        return out

    def get_timer(self) -> float | None:
        """The earliest deadline at which :meth:`handle_timer` must run."""
        best: float | None = None
        heap = self._timer_e
        while heap:
            at, key = heap[0]
            tx = self._client.get(key)
            if tx is not None and tx.e_at == at:
                best = at
                break
            heapq.heappop(heap)  # cancelled by a response or the end of the transaction
        for queue in (self._timer_e1, self._timer_f, self._timer_k):
            if queue:
                at = queue[next(iter(queue))]
                if best is None or at < best:
                    best = at
        for squeue in (self._timer_j, self._tu_guard):
            if squeue:
                at = squeue[next(iter(squeue))]
                if best is None or at < best:
                    best = at
        return best

    @property
    def client_count(self) -> int:
        """Client transactions not yet terminated (Completed included)."""
        return len(self._client) + len(self._client_done)

    @property
    def server_count(self) -> int:
        """Server transactions not yet terminated (Completed included)."""
        return len(self._server) + len(self._server_done)

    # ------------------------------------------------------- client side
    def send_request(self, request: Request, destination: Address, now: float) -> ClientKey:
        """Start a client transaction for ``request`` towards ``destination``.

        The layer prepends our Via (new branch, ``rport`` per RFC 3581) and
        owns the request from here on.  Returns the transaction key, which
        every later event about it carries.
        """
        method = request.method
        if method in ("INVITE", "ACK"):
            raise LocalProtocolError(f"{method} needs an INVITE transaction, which pua has not")
        sent_by = self._sent_by.get(destination.transport)
        if sent_by is None:
            raise LocalProtocolError(f"no local {destination.transport} transport to send from")
        branch = self.ids.branch()
        host, port = sent_by
        request.headers.prepend(
            "Via", f"SIP/2.0/{destination.transport.upper()} {host}:{port};branch={branch};rport"
        )
        data = request.to_bytes()
        tx = _ClientTx(branch, request, data, destination, sent_by)
        self._client[branch] = tx
        self._out.append(Outgoing(data, destination, branch))
        self._timer_f[branch] = now + self.timers.timer_f
        if not destination.reliable:
            # §17.1.2.2: Timer E only on unreliable transports
            tx.e_interval = self.timers.t1
            tx.e_at = self._timer_e1[branch] = now + tx.e_interval
        return branch

    def abandon(self, key: ClientKey) -> bool:
        """Forget a client transaction without reporting it (the TU gave up,
        e.g. at shutdown).  Returns whether it existed."""
        if self._client_done.pop(key, None) is not None:
            self._timer_k.pop(key, None)
            return True
        tx = self._client.pop(key, None)
        if tx is None:
            return False
        tx.state = nict.State.TERMINATED
        self._timer_f.pop(key, None)
        self._timer_e1.pop(key, None)
        tx.e_at = None
        return True

    def _on_response(self, response: Response, source: Address, now: float) -> None:
        via = response.top_via
        branch = via.branch
        tx = self._client.get(branch) if branch else None
        if tx is None:
            method = self._client_done.get(branch) if branch else None
            if method is not None and method == response.cseq.method:
                # a retransmitted response while Completed
                nict.transition(nict.State.COMPLETED, _response_input(response))
                self.stats["response-retransmissions-absorbed"] += 1
                return
        # §17.1.3: the branch and the CSeq method must both match
        if tx is None or tx.method != response.cseq.method:
            self._drop("no-matching-transaction", source, f"branch={branch}")
            return
        # §18.1.2: a response whose top Via sent-by is not ours is discarded
        if (_via_host(via.host), via.port) != tx.sent_by:
            self._drop("sent-by-mismatch", source, str(via))
            return
        actions, tx.state = nict.transition(tx.state, _response_input(response))
        for action in actions:
            if action is nict.Action.PASS_RESPONSE:
                self._events.append(
                    ResponseReceived(
                        key=tx.key, request=tx.request, response=response, source=source
                    )
                )
            elif action is nict.Action.START_K:
                self._complete_client(tx, now)
            # (ABSORB belongs to Completed, whose responses are absorbed above)

    def _complete_client(self, tx: _ClientTx, now: float) -> None:
        key = tx.key
        if tx.e_at is not None:
            tx.e_at = None
            self._timer_e1.pop(key, None)
        self._timer_f.pop(key, None)
        del self._client[key]
        wait = self.timers.timer_k(tx.destination.reliable)
        if wait <= 0:
            tx.state = nict.State.TERMINATED
        else:
            self._client_done[key] = tx.method
            self._timer_k[key] = now + wait

    def _fire_e(self, tx: _ClientTx, now: float) -> None:
        actions, tx.state = nict.transition(tx.state, nict.Input.TIMER_E)
        if actions[0] is nict.Action.RETRANSMIT_BACKOFF:
            tx.e_interval = min(2 * tx.e_interval, self.timers.t2)
        else:  # RETRANSMIT_T2
            tx.e_interval = self.timers.t2
        self._out.append(Outgoing(tx.data, tx.destination, tx.key))
        self.stats["request-retransmissions"] += 1
        tx.e_at = at = now + tx.e_interval
        heapq.heappush(self._timer_e, (at, tx.key))

    def _fire_f(self, tx: _ClientTx) -> None:
        nict.transition(tx.state, nict.Input.TIMER_F)
        tx.state = nict.State.TERMINATED
        tx.e_at = None
        self._timer_e1.pop(tx.key, None)
        del self._client[tx.key]
        self.stats["client-timeouts"] += 1
        self._events.append(TransactionTimedOut(key=tx.key, request=tx.request))

    # ------------------------------------------------------- server side
    def send_response(self, key: ServerKey, response: Response, now: float) -> None:
        """Send the TU's response in server transaction ``key``.

        Raises ``LocalProtocolError`` if the transaction is unknown or
        already answered with a final response.
        """
        tx = self._server.get(key)
        if tx is None:
            raise LocalProtocolError(f"no server transaction {key!r} (answered or timed out)")
        final = response.status >= 200
        event = nist.Input.SEND_FINAL if final else nist.Input.SEND_PROVISIONAL
        _, tx.state = nist.transition(tx.state, event)
        tx.last = data = response.to_bytes()
        self._out.append(Outgoing(data, tx.destination, key))
        if final:
            self._tu_guard.pop(key, None)
            del self._server[key]
            wait = self.timers.timer_j(tx.destination.reliable)
            if wait <= 0:
                tx.state = nist.State.TERMINATED
            else:
                self._server_done[key] = (data, tx.destination)
                self._timer_j[key] = now + wait

    def _on_request(self, request: Request, source: Address, now: float) -> None:
        method = request.method
        if method == "ACK":
            # An ACK to a 2xx is end-to-end and pua never sends 2xx to an
            # INVITE; an ACK to our stateless 405 ends there too.
            self._drop("stray-ack", source)
            return
        via = request.top_via
        key = _server_key(request, via)
        tx = self._server.get(key)
        if tx is not None:
            actions, tx.state = nist.transition(tx.state, nist.Input.REQUEST_RETRANSMISSION)
            if actions[0] is nist.Action.RESEND_LAST and tx.last is not None:
                self._out.append(Outgoing(tx.last, tx.destination, key))
            self.stats["request-retransmissions-absorbed"] += 1
            return
        done = self._server_done.get(key)
        if done is not None:
            # Completed: the final response again (§17.2.2)
            nist.transition(nist.State.COMPLETED, nist.Input.REQUEST_RETRANSMISSION)
            self._out.append(Outgoing(done[0], done[1], key))
            self.stats["request-retransmissions-absorbed"] += 1
            return
        _stamp_via(request, via, source)
        destination = _response_destination(request.top_via, source)
        if method == "INVITE":
            # §8.2.1: a method the UAS does not support gets 405 with Allow
            self._send_stateless(request, 405, destination, [("Allow", self._allow)])
            return
        if method == "CANCEL":
            self._on_cancel(request, key, destination)
            return
        self._server[key] = _ServerTx(key, request, destination)
        self._tu_guard[key] = now + self._tu_timeout
        self._events.append(RequestReceived(key=key, request=request, source=source))

    def _on_cancel(self, request: Request, key: ServerKey, destination: Address) -> None:
        # §9.2: CANCEL matches the transaction with the same branch and
        # sent-by; it has no effect on a non-INVITE one but is answered 200.
        # pua has no INVITE transactions, so without a match it is 481.
        target = any(k[0] == key[0] and k[1] == key[1] for k in (*self._server, *self._server_done))
        self._send_stateless(request, 200 if target else 481, destination)

    def _send_stateless(
        self,
        request: Request,
        status: int,
        destination: Address,
        headers: list[tuple[str, str]] | None = None,
        reason: str | None = None,
    ) -> None:
        response = make_response(request, status, reason, to_tag=self.ids.tag(), headers=headers)
        self._out.append(Outgoing(response.to_bytes(), destination, None))
        self.stats[f"stateless-{status}"] += 1

    def _fire_guard(self, tx: _ServerTx, now: float) -> None:
        # The TU never answered: answer for it rather than leave the peer
        # retransmitting into a transaction that never completes.
        self.stats["tu-timeouts"] += 1
        response = make_response(
            tx.request,
            500,
            "Server Internal Error (no answer from application)",
            to_tag=self.ids.tag(),
        )
        self.send_response(tx.key, response, now)

    # ------------------------------------------------------------ inputs
    def receive_datagram(self, data: bytes, source: Address, now: float) -> None:
        """Feed one datagram (UDP) or one framed message (TCP/TLS)."""
        try:
            message = parse_message(data, stream=source.reliable)
        except SipParseError as exc:
            self._drop(exc.reason, source, exc.detail)
            if exc.status is not None:
                self._answer_unparseable(data, exc, source)
            return
        try:
            if isinstance(message, Response):
                self._on_response(message, source, now)
            else:
                self._on_request(message, source, now)
        except SipParseError as exc:
            # a field the layer needed beyond the parser's checks (rport...)
            self._drop(exc.reason, source, exc.detail)

    def _answer_unparseable(self, data: bytes, exc: SipParseError, source: Address) -> None:
        # §8.2 and §21.4.1: answer a malformed request 400 (or the status
        # the codec chose) when enough of it survives to route a response;
        # the reason token goes into the reason phrase for the sender.
        request = salvage_request(data)
        if request is None or request.method == "ACK":
            return
        assert exc.status is not None
        try:
            via = request.top_via
            _stamp_via(request, via, source)
            destination = _response_destination(request.top_via, source)
        except SipParseError:
            return
        phrase = f"{reason_phrase(exc.status)} ({exc.reason})"
        self._send_stateless(request, exc.status, destination, reason=phrase)

    def transport_error(
        self, key: ClientKey | ServerKey | None, now: float, reason: str = ""
    ) -> None:
        """The shell could not send a message of transaction ``key``."""
        if key is None:
            return
        if isinstance(key, str):
            ctx = self._client.get(key)
            if ctx is None or (ctx.state, nict.Input.TRANSPORT_ERROR) not in nict.TRANSITIONS:
                return
            nict.transition(ctx.state, nict.Input.TRANSPORT_ERROR)
            ctx.state = nict.State.TERMINATED
            ctx.e_at = None
            self._timer_e1.pop(key, None)
            del self._client[key]
            self._timer_f.pop(key, None)
            self.stats["client-transport-errors"] += 1
            self._events.append(
                TransportFailed(
                    key=key, request=ctx.request, destination=ctx.destination, reason=reason
                )
            )
            return
        done = self._server_done.pop(key, None)
        if done is not None:
            # §17.2.4: the final response could not be delivered
            nist.transition(nist.State.COMPLETED, nist.Input.TRANSPORT_ERROR)
            self._timer_j.pop(key, None)
            self.stats["server-transport-errors"] += 1
            self._events.append(
                TransportFailed(key=key, request=None, destination=done[1], reason=reason)
            )
            return
        stx = self._server.get(key)
        if stx is None or (stx.state, nist.Input.TRANSPORT_ERROR) not in nist.TRANSITIONS:
            return
        nist.transition(stx.state, nist.Input.TRANSPORT_ERROR)
        stx.state = nist.State.TERMINATED
        del self._server[key]
        self._tu_guard.pop(key, None)
        self.stats["server-transport-errors"] += 1
        self._events.append(
            TransportFailed(
                key=key, request=stx.request, destination=stx.destination, reason=reason
            )
        )

    def handle_timer(self, now: float) -> None:
        """Run every timer whose deadline is at or before ``now``."""
        heap = self._timer_e
        client = self._client
        for key in _due(self._timer_e1, now):
            self._fire_e(client[key], now)
        while heap and heap[0][0] <= now:
            at, key = heapq.heappop(heap)
            tx = client.get(key)
            if tx is not None and tx.e_at == at:
                self._fire_e(tx, now)
        for key in _due(self._timer_f, now):
            self._fire_f(client[key])
        for key in _due(self._timer_k, now):
            del self._client_done[key]
            nict.transition(nict.State.COMPLETED, nict.Input.TIMER_K)
        for skey in _due(self._tu_guard, now):
            stx = self._server[skey]
            self._fire_guard(stx, now)
        for skey in _due(self._timer_j, now):
            del self._server_done[skey]
            nist.transition(nist.State.COMPLETED, nist.Input.TIMER_J)

    def _drop(self, reason: str, source: Address, detail: str = "") -> None:
        self.drops[reason] += 1
        self._events.append(MessageDropped(reason=reason, source=source, detail=detail))


def _response_input(response: Response) -> nict.Input:
    return nict.Input.PROVISIONAL if response.status < 200 else nict.Input.FINAL


def _due(queue: OrderedDict[_K, float], now: float) -> list[_K]:
    """Pop and return the leading keys whose deadline has come."""
    out = []
    while queue:
        key = next(iter(queue))
        if queue[key] > now:
            break
        del queue[key]
        out.append(key)
    return out


def _via_host(host: str) -> str:
    """Hosts compare without IPv6 brackets and case (§18.1.2, §19.1.4)."""
    host = host.lower()
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def _server_key(request: Request, via: Via) -> ServerKey:
    branch = via.branch or ""
    method = request.method
    if branch.startswith(MAGIC_COOKIE):
        # §17.2.3: branch, sent-by and method (ACK would match INVITE, but
        # pua keeps no INVITE transactions)
        return (branch, f"{_via_host(via.host)}:{via.port}", method)
    # RFC 2543 peers: Request-URI, To tag, From tag, Call-ID, CSeq and the
    # top Via together identify the transaction
    ident = "|".join(
        (
            request.uri,
            request.to.tag or "",
            request.from_.tag or "",
            request.call_id,
            str(request.cseq.seq),
            str(via),
        )
    )
    return ("rfc2543", ident, method)


def _stamp_via(request: Request, via: Via, source: Address) -> None:
    """§18.2.1 and RFC 3581 §4: record where the request really came from
    in its top Via, so that the response finds the way back."""
    params: dict[str, str | None] = {}
    if via.rport is True:
        # "the server MUST insert a received parameter ... even if it is
        # the same as the sent-by host" when rport is asked for
        params["rport"] = str(source.port)
        params["received"] = source.host
    elif _via_host(via.host) != _via_host(source.host):
        params["received"] = source.host
    if not params:
        return
    stamped = str(via.with_params(**params))
    value = request.headers.get("via")
    assert value is not None
    rest = split_list(value)[1:]
    request.headers.replace_first("via", ", ".join([stamped, *rest]))


def _response_destination(via: Via, source: Address) -> Address:
    """§18.2.2 (and RFC 3581 §4): where a response to this request goes."""
    if source.reliable:
        # the connection the request came on
        return source
    rport = via.rport
    host = via.received or via.host
    if host.startswith("["):
        host = host[1:-1]
    if isinstance(rport, int) and not isinstance(rport, bool):
        return Address(source.transport, host, rport)
    return Address(source.transport, host, via.port or 5060)
