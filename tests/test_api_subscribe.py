"""PuaAPI SUBSCRIBE on real loopback sockets, against a small notifier made
of a SipEndpoint: it answers SUBSCRIBE (200 with Expires, Contact and a To
tag, optionally Record-Route) and sends NOTIFYs in the dialog it made.
Every async test runs on the stock loop and on uvloop.

Waiting is always a poll with a deadline: the only real waits are for
pua's own refresh timer, with a grant of 2 s (the refresh is due 1 s
later)."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from pua import (
    DIALOG_EVENT,
    PRESENCE_EVENT,
    RPC_SUBSCRIBE,
    DialogStatus,
    NotifyReceived,
    PuaAPI,
    PuaConfig,
    SubscribeInfo,
    SubscribeOutcome,
)
from pua.endpoint import EndpointConfig, SipEndpoint
from pua.evpkg import pidf_document
from pua.evpkg.registry import EventRegistry
from pua.sip import Headers, Request, Response, make_response
from pua.sip.address import Address
from pua.ua import SubscribeEngine

HOST = "127.0.0.1"
PRES_URI = f"sip:alice@{HOST}"
WATCHER_URI = f"sip:bob@{HOST}"
PIDF = "application/pidf+xml"
#: deadline of every poll: generous, a loaded machine must not fail a test
DEADLINE = 10.0


async def poll(condition: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    """Wait until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


# ------------------------------------------------------------ the notifier
@dataclass
class Dialog:
    """The notifier's side of one subscription dialog."""

    call_id: str
    watcher_tag: str  # the SUBSCRIBE's From tag
    tag: str  # ours: the 2xx's To tag, the NOTIFYs' From tag
    watcher_uri: str
    pres_uri: str
    event: str
    target: str  # the watcher's Contact: Request-URI of our NOTIFYs
    cseq: int = 0
    subscribes: list[Request] = field(default_factory=list)


class Notifier:
    """A notifier on a loopback port (UDP, or TCP).

    Every SUBSCRIBE is kept in :attr:`subscribes`.  An initial SUBSCRIBE
    makes a :class:`Dialog`; a SUBSCRIBE with a To tag must name one (else
    481).  The answer is 200 with ``Expires: min(asked, max_expires)``,
    ``Contact: contact`` and the To tag; then (``auto_notify``) a NOTIFY
    ``active;expires=N`` with a PIDF body goes out in the dialog, or
    ``terminated;reason=timeout`` after Expires: 0.  With ``notify_first``
    the NOTIFY goes out (and is answered) before the 200.
    """

    def __init__(self, transport: str = "udp") -> None:
        self.transport = transport
        config = EndpointConfig(
            host=HOST,
            udp_port=0 if transport == "udp" else None,
            tcp_port=0 if transport == "tcp" else None,
            allow=("SUBSCRIBE", "OPTIONS"),
        )
        self.endpoint = SipEndpoint(config, handler=self._handle)
        self.subscribes: list[Request] = []
        self.dialogs: dict[str, Dialog] = {}
        #: every NOTIFY sent, with pua's answer
        self.notifies: list[tuple[Request, Response]] = []
        self.max_expires = 3600
        self.auto_notify = True
        self.notify_first = False
        self.basic = "open"
        self.record_route: str | None = None
        self._contact: str | None = None
        #: answer the next in-dialog SUBSCRIBE with this status (once)
        self.refresh_status: int | None = None
        #: called with each SUBSCRIBE before it is answered
        self.on_subscribe: Callable[[Request], None] | None = None
        self._tags = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        await self.endpoint.start()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.endpoint.close()

    @property
    def uri(self) -> str:
        """Where the notifier listens, as a SIP URI."""
        return self.endpoint.contact_uri(transport=self.transport)

    @property
    def contact(self) -> str:
        """The Contact of its 2xx and NOTIFYs (default: :attr:`uri`)."""
        return self._contact or self.uri

    @contact.setter
    def contact(self, value: str) -> None:
        self._contact = value

    def dialog(self) -> Dialog:
        """The one dialog (fails if there is not exactly one)."""
        (dialog,) = self.dialogs.values()
        return dialog

    # -- requests in
    async def _handle(self, request: Request, source: Address) -> Response | None:
        if request.method != "SUBSCRIBE":
            return None
        self.subscribes.append(request)
        if self.on_subscribe is not None:
            self.on_subscribe(request)
        event = request.event
        assert event is not None
        to_tag = request.to.tag
        if to_tag is None:
            dialog = Dialog(
                call_id=request.call_id,
                watcher_tag=request.from_.tag or "",
                tag=f"ntf{next(self._tags)}",
                watcher_uri=request.from_.uri,
                pres_uri=request.to.uri,
                event=str(event),
                target=request.contacts[0].uri,
            )
            self.dialogs[dialog.call_id] = dialog
        else:
            found = self.dialogs.get(request.call_id)
            if found is None or found.tag != to_tag:
                return make_response(request, 481)
            dialog = found
            if self.refresh_status is not None:
                status, self.refresh_status = self.refresh_status, None
                if status == 481:
                    del self.dialogs[dialog.call_id]
                return make_response(request, status)
        dialog.subscribes.append(request)
        dialog.target = request.contacts[0].uri  # a target refresh request
        asked = request.expires
        granted = min(self.max_expires if asked is None else asked, self.max_expires)
        headers = [("Expires", str(granted)), ("Contact", f"<{self.contact}>")]
        if self.record_route is not None:
            headers.append(("Record-Route", self.record_route))
        if granted == 0:
            del self.dialogs[dialog.call_id]
            state = "terminated;reason=timeout"
        else:
            state = f"active;expires={granted}"
        if self.auto_notify:
            if self.notify_first:
                await self.notify(dialog, state)
            else:
                # runs after the 200 is on the wire
                self._spawn(self.notify(dialog, state))
        return make_response(request, 200, to_tag=dialog.tag, headers=headers)

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- NOTIFYs out
    def notify_request(
        self,
        dialog: Dialog,
        state: str | None,
        *,
        event: str | None = None,
        body: bytes | None = None,
        call_id: str | None = None,
    ) -> Request:
        """The next NOTIFY of ``dialog`` (state ``None``: no
        Subscription-State header)."""
        dialog.cseq += 1
        if body is None:
            body = pidf_document(dialog.pres_uri, self.basic).encode()
        fields = [
            ("Max-Forwards", "70"),
            ("To", f"<{dialog.watcher_uri}>;tag={dialog.watcher_tag}"),
            ("From", f"<{dialog.pres_uri}>;tag={dialog.tag}"),
            ("Call-ID", call_id or dialog.call_id),
            ("CSeq", f"{dialog.cseq} NOTIFY"),
            ("Event", event or dialog.event),
            ("Contact", f"<{self.contact}>"),
        ]
        if state is not None:
            fields.append(("Subscription-State", state))
        if body:
            fields.append(("Content-Type", PIDF))
        return Request("NOTIFY", dialog.target, Headers(fields), body)

    async def send(self, request: Request) -> Response:
        response = await self.endpoint.request(request)
        self.notifies.append((request, response))
        return response

    async def notify(self, dialog: Dialog, state: str | None, **kw: Any) -> Response:
        return await self.send(self.notify_request(dialog, state, **kw))


@dataclass
class Watcher:
    """A PuaAPI and what it reported."""

    pua: PuaAPI
    notifier: Notifier
    notifies: list[NotifyReceived] = field(default_factory=list)
    #: the registration param each NOTIFY callback received
    params: list[object] = field(default_factory=list)
    outcomes: list[SubscribeOutcome] = field(default_factory=list)

    def info(self, **kw: Any) -> SubscribeInfo:
        args: dict[str, Any] = {
            "pres_uri": PRES_URI,
            "watcher_uri": WATCHER_URI,
            "contact": self.pua.endpoint.contact_uri(transport=self.notifier.transport),
            "event": PRESENCE_EVENT,
            "source_flag": RPC_SUBSCRIBE,
            "outbound_proxy": self.notifier.uri,
            # "for ever", refreshed with default_expires (600 here): a
            # finite lifetime asks ceil(end - now), which can be one more
            # (see test_a_lifetime_of_600_s_asks_expires_600)
            "expires": -1,
        }
        args.update(kw)
        return SubscribeInfo(**args)

    async def subscribe(self, **kw: Any) -> SubscribeOutcome:
        return await asyncio.wait_for(self.pua.send_subscribe(self.info(**kw)), DEADLINE)

    def own_outcomes(self) -> list[SubscribeOutcome]:
        """Outcomes of what pua sent by itself (ticket None)."""
        return [o for o in self.outcomes if o.ticket is None]

    def record(self) -> dict[str, Any]:
        (record,) = self.pua.subscriptions()
        return record


@asynccontextmanager
async def watching(
    config: PuaConfig | None = None, transport: str = "udp"
) -> AsyncIterator[Watcher]:
    """A notifier and a PuaAPI subscribing to it (callbacks registered);
    ``default_expires`` is 600 unless ``config`` says otherwise."""
    notifier = Notifier(transport)
    await notifier.start()
    endpoint = EndpointConfig(
        host=HOST,
        udp_port=0 if transport == "udp" else None,
        tcp_port=0 if transport == "tcp" else None,
    )
    try:
        config = config or PuaConfig(default_expires=600)
        async with PuaAPI(config, endpoint_config=endpoint) as pua:
            watcher = Watcher(pua, notifier)

            def on_notify(notify: NotifyReceived, param: object) -> None:
                watcher.notifies.append(notify)
                watcher.params.append(param)

            def on_outcome(outcome: SubscribeOutcome, param: object) -> None:
                watcher.outcomes.append(outcome)

            pua.register_notify_cb(RPC_SUBSCRIBE, on_notify, "notify-param")
            pua.register_puacb(RPC_SUBSCRIBE, on_outcome)
            yield watcher
    finally:
        await notifier.close()


def statuses(notifier: Notifier) -> list[int]:
    return [response.status for _, response in notifier.notifies]


async def answered(notifier: Notifier, count: int) -> list[int]:
    """pua's answers to the notifier's NOTIFYs, once ``count`` came (pua
    runs the callback before its answer reaches the notifier)."""
    await poll(lambda: len(notifier.notifies) >= count, f"{count} NOTIFYs answered")
    return statuses(notifier)


# ----------------------------------------------------------------- tests
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_subscribe_makes_a_dialog_and_the_notify_reaches_the_callback(
    transport: str,
) -> None:
    marker = object()
    async with watching(transport=transport) as w:
        outcome = await w.subscribe(cb_param=marker, id="sub-1")
        assert (outcome.ok, outcome.status, outcome.op) == (True, 200, "initial")
        assert (outcome.ended, outcome.retrying, outcome.expires) == (False, False, 600)
        assert outcome.cb_param is marker
        (subscribe,) = w.notifier.subscribes
        dialog = w.notifier.dialog()
        assert (outcome.call_id, outcome.local_tag, outcome.remote_tag) == (
            dialog.call_id,
            dialog.watcher_tag,
            dialog.tag,
        )
        # the initial SUBSCRIBE (RFC 6665 §4.1.2.1): out of any dialog
        assert subscribe.uri == PRES_URI
        assert subscribe.to.uri == PRES_URI
        assert subscribe.to.tag is None
        assert subscribe.from_.uri == WATCHER_URI
        assert subscribe.from_.tag
        assert (subscribe.cseq.seq, subscribe.cseq.method) == (1, "SUBSCRIBE")
        assert str(subscribe.event) == "presence"
        assert subscribe.expires == 600
        assert [c.uri for c in subscribe.contacts] == [w.pua.endpoint.contact_uri()]
        assert "route" not in subscribe.headers

        # the NOTIFY the notifier sent after the 200
        await poll(lambda: w.notifies, "the NOTIFY callback")
        (notify,) = w.notifies
        assert await answered(w.notifier, 1) == [200]
        assert (notify.state, notify.expires, notify.reason, notify.retry_after) == (
            "active",
            600,
            None,
            None,
        )
        assert notify.action == ""
        assert notify.body == pidf_document(PRES_URI, "open").encode()
        assert notify.content_type == PIDF
        assert (notify.cb_param, notify.id) == (marker, "sub-1")
        assert (notify.pres_uri, notify.watcher_uri) == (PRES_URI, WATCHER_URI)
        assert (notify.event, notify.source_flag) == (PRESENCE_EVENT, RPC_SUBSCRIBE)
        assert notify.request.call_id == dialog.call_id
        assert w.params == ["notify-param"]

        record = w.record()
        assert record["call_id"] == dialog.call_id
        assert record["local_tag"] == dialog.watcher_tag
        assert record["remote_tag"] == dialog.tag
        assert record["remote_target"] == w.notifier.uri
        assert record["state"] == "active"
        assert record["event"] == "presence"
        assert 590 < record["expires_in"] < 601
        # the outcome of a caller's request reaches register_puacb too
        assert w.outcomes == [outcome]


async def test_a_notify_before_the_2xx_establishes_the_dialog() -> None:
    async with watching() as w:
        w.notifier.notify_first = True
        seen: list[DialogStatus] = []

        def before_answer(request: Request) -> None:
            # pua knows the dialog it is making, not the notifier's tag yet
            seen.append(w.pua.is_dialog(request.call_id, request.from_.tag or "", "ntf1"))

        w.notifier.on_subscribe = before_answer
        outcome = await w.subscribe()
        # the NOTIFY was answered (200, not 481) before the 200 came
        assert statuses(w.notifier) == [200]
        assert seen == [DialogStatus.TEMPORARY]
        assert len(w.notifies) == 1
        assert w.notifies[0].state == "active"
        dialog = w.notifier.dialog()
        assert (outcome.ok, outcome.status, outcome.remote_tag) == (True, 200, dialog.tag)
        assert w.pua.is_dialog(dialog.call_id, dialog.watcher_tag, dialog.tag) is (
            DialogStatus.ESTABLISHED
        )
        assert w.record()["remote_tag"] == dialog.tag
        # the dialog works: the next NOTIFY in it is taken
        w.notifier.basic = "closed"
        response = await w.notifier.notify(w.notifier.dialog(), "active;expires=500")
        assert response.status == 200
        assert w.notifies[-1].body == pidf_document(PRES_URI, "closed").encode()
        assert w.notifies[-1].expires == 500


async def test_notify_answers_481_400_489() -> None:
    async with watching() as w:
        await w.subscribe()
        await poll(lambda: w.notifies, "the first NOTIFY")
        notifier = w.notifier
        dialog = notifier.dialog()
        assert await answered(notifier, 1) == [200]

        # a dialog pua does not know
        unknown = await notifier.notify(dialog, "active;expires=60", call_id="nobody@127.0.0.1")
        assert unknown.status == 481
        # no Subscription-State (RFC 6665 §8.2.3: mandatory in NOTIFY)
        missing = await notifier.notify(dialog, None)
        assert missing.status == 400
        # another event than the subscription's
        other = await notifier.notify(dialog, "active;expires=60", event="dialog")
        assert other.status == 489
        assert statuses(notifier) == [200, 481, 400, 489]
        assert len(w.notifies) == 1  # none of them reached the callback

        # the subscription is untouched: the next NOTIFY is taken
        fine = await notifier.notify(dialog, "active;expires=60")
        assert fine.status == 200
        assert len(w.notifies) == 2
        assert w.record()["state"] == "active"
        assert len(notifier.subscribes) == 1


async def test_unsubscribe_goes_in_the_dialog_and_the_final_notify_ends_it() -> None:
    async with watching() as w:
        first = await w.subscribe()
        await poll(lambda: w.notifies, "the first NOTIFY")
        dialog = w.notifier.dialog()

        outcome = await w.subscribe(expires=0)
        assert (outcome.ok, outcome.status, outcome.op, outcome.ended) == (
            True,
            200,
            "unsubscribe",
            True,
        )
        initial, unsubscribe = w.notifier.subscribes
        # in the dialog (RFC 3261 §12.2.1.1), Expires: 0 (RFC 6665 §4.1.2.3)
        assert unsubscribe.expires == 0
        assert unsubscribe.call_id == first.call_id
        assert unsubscribe.from_.tag == first.local_tag
        assert unsubscribe.to.tag == dialog.tag
        assert unsubscribe.cseq.seq == initial.cseq.seq + 1
        assert unsubscribe.uri == w.notifier.uri  # the remote target

        # the final NOTIFY (terminated;reason=timeout) removes it
        await poll(lambda: not w.pua.subscriptions(), "the subscription to go")
        final = w.notifies[-1]
        assert (final.state, final.reason, final.action) == ("terminated", "timeout", "ended")
        assert await answered(w.notifier, 2) == [200, 200]
        assert w.pua.is_dialog(dialog.call_id, dialog.watcher_tag, dialog.tag) is (
            DialogStatus.NONE
        )
        assert len(w.notifier.subscribes) == 2


async def test_refresh_goes_in_the_dialog() -> None:
    # the notifier grants 2 s: pua refreshes 1 s later, by itself
    config = PuaConfig(default_expires=600, callbacks_on_refresh=True)
    async with watching(config) as w:
        notifier = w.notifier
        notifier.max_expires = 2
        first = await w.subscribe()
        assert (first.ok, first.expires) == (True, 2)
        await poll(lambda: len(notifier.subscribes) >= 2, "the refresh")
        initial, refresh = notifier.subscribes[:2]
        dialog = notifier.dialog()
        # RFC 3261 §12.2.1.1: the same Call-ID and tags, the next CSeq, the
        # remote target (the 2xx's Contact) as Request-URI, no route set
        assert refresh.call_id == initial.call_id == first.call_id
        assert refresh.from_.tag == initial.from_.tag
        assert refresh.to.tag == dialog.tag
        assert refresh.cseq.seq == initial.cseq.seq + 1
        assert refresh.uri == notifier.contact
        assert "route" not in refresh.headers
        # "for ever": each refresh asks default_expires again
        assert refresh.expires == 600
        assert str(refresh.event) == "presence"
        await poll(w.own_outcomes, "the refresh outcome")
        own = w.own_outcomes()[0]
        assert (own.ok, own.status, own.op, own.expires) == (True, 200, "refresh", 2)
        assert own.call_id == first.call_id
        # the NOTIFY of the refresh is taken in the same dialog
        await poll(lambda: len(w.notifies) >= 2, "the refresh's NOTIFY")
        assert (await answered(notifier, 2))[:2] == [200, 200]
        assert w.record()["call_id"] == first.call_id


async def test_refresh_follows_the_route_set() -> None:
    # the notifier sits behind a loose router (itself, by its Record-Route);
    # the remote target (Contact) is another endpoint, reached only
    # through the route set
    target_seen: list[Request] = []
    target = SipEndpoint(EndpointConfig(host=HOST), handler=lambda r, s: target_seen.append(r))
    await target.start()
    try:
        async with watching() as w:
            notifier = w.notifier
            notifier.max_expires = 2
            notifier.contact = f"sip:presence@{HOST}:{target.local['udp'].port}"
            notifier.record_route = f"<{notifier.uri};lr>"
            first = await w.subscribe()
            assert (first.ok, first.expires) == (True, 2)
            assert w.record()["route_set"] == [notifier.record_route]
            await poll(
                lambda: len(notifier.subscribes) >= 2 or target_seen, "the refresh, anywhere"
            )
            assert target_seen == [], "the refresh went to the remote target, not the route"
            refresh = notifier.subscribes[1]
            assert refresh.call_id == first.call_id
            assert refresh.to.tag == first.remote_tag
            assert refresh.cseq.seq == 2
            # Request-URI the remote target, Route the route set (the 2xx's
            # Record-Route, reversed)
            assert refresh.uri == notifier.contact
            assert refresh.headers.get_all("Route") == [notifier.record_route]
    finally:
        await target.close()


async def test_terminated_deactivated_makes_a_new_subscription() -> None:
    async with watching(PuaConfig(default_expires=600, callbacks_on_refresh=True)) as w:
        first = await w.subscribe()
        await poll(lambda: w.notifies, "the first NOTIFY")
        notifier = w.notifier
        old = notifier.dialog()

        response = await notifier.notify(old, "terminated;reason=deactivated")
        assert response.status == 200
        assert (w.notifies[-1].state, w.notifies[-1].action) == ("terminated", "resubscribe")
        await poll(lambda: len(notifier.subscribes) >= 2, "the new SUBSCRIBE")
        again = notifier.subscribes[1]
        # RFC 6665 §4.1.3: a new subscription, so a new dialog
        assert again.call_id != first.call_id
        assert again.to.tag is None
        assert again.from_.tag != first.local_tag
        assert again.cseq.seq == 1
        await poll(w.own_outcomes, "the new subscription's outcome")
        own = w.own_outcomes()[0]
        assert (own.ok, own.op, own.call_id) == (True, "initial", again.call_id)
        assert w.record()["call_id"] == again.call_id
        # the old dialog is gone: its NOTIFYs are refused
        stale = await notifier.notify(old, "active;expires=60")
        assert stale.status == 481


async def test_terminated_rejected_ends_it_without_a_new_subscribe() -> None:
    async with watching() as w:
        await w.subscribe()
        await poll(lambda: w.notifies, "the first NOTIFY")
        notifier = w.notifier

        response = await notifier.notify(notifier.dialog(), "terminated;reason=rejected")
        assert response.status == 200
        last = w.notifies[-1]
        assert (last.state, last.reason, last.action) == ("terminated", "rejected", "ended")
        assert w.pua.subscriptions() == []
        # a round trip through pua's event loop: a new SUBSCRIBE would be
        # out by now
        probe = await notifier.notify(notifier.dialog(), "active;expires=60")
        assert probe.status == 481
        assert w.pua.subscriptions_engine.stats["sent-initial"] == 1
        assert len(notifier.subscribes) == 1


async def test_481_to_a_refresh_makes_a_new_dialog() -> None:
    config = PuaConfig(callbacks_on_refresh=True, retry_initial=0.1, retry_max=0.5)
    async with watching(config) as w:
        notifier = w.notifier
        notifier.max_expires = 2
        notifier.refresh_status = 481
        first = await w.subscribe()
        assert first.expires == 2
        await poll(lambda: len(notifier.subscribes) >= 3, "the new initial SUBSCRIBE")
        _, refresh, again = notifier.subscribes[:3]
        assert (refresh.call_id, refresh.to.tag) == (first.call_id, first.remote_tag)
        assert again.call_id not in (first.call_id, None)
        assert again.to.tag is None
        await poll(lambda: len(w.own_outcomes()) >= 2, "two outcomes of pua's own")
        failed, made = w.own_outcomes()[:2]
        assert (failed.op, failed.status, failed.ok, failed.retrying) == (
            "refresh",
            481,
            False,
            True,
        )
        assert (made.op, made.status, made.ok, made.call_id) == (
            "initial",
            200,
            True,
            again.call_id,
        )
        await poll(lambda: w.record()["state"] == "active", "the new dialog's NOTIFY")
        new = notifier.dialogs[again.call_id]
        assert w.record()["call_id"] == again.call_id
        assert w.pua.is_dialog(new.call_id, new.watcher_tag, new.tag) is DialogStatus.ESTABLISHED
        assert first.call_id is not None
        assert w.pua.is_dialog(first.call_id, first.local_tag or "", first.remote_tag) is (
            DialogStatus.NONE
        )


async def test_dialog_lookups_on_a_live_dialog() -> None:
    async with watching() as w:
        first = await w.subscribe(id="did-1")
        other = await w.subscribe(id="did-1", pres_uri=f"sip:carol@{HOST}")
        await w.subscribe(id="did-2", pres_uri=f"sip:dave@{HOST}")
        await poll(lambda: len(w.notifies) == 3, "three NOTIFYs")
        assert first.call_id is not None
        assert first.local_tag is not None
        call_id, ours, theirs = first.call_id, first.local_tag, first.remote_tag

        assert w.pua.is_dialog(call_id, ours, theirs) is DialogStatus.ESTABLISHED
        assert w.pua.is_dialog(call_id, ours, None) is DialogStatus.TEMPORARY
        assert w.pua.is_dialog(call_id, "not-ours", theirs) is DialogStatus.NONE
        assert w.pua.is_dialog("nobody@127.0.0.1", ours, theirs) is DialogStatus.NONE
        assert w.pua.get_record_id(call_id, ours, theirs) == "did-1"
        assert w.pua.get_record_id("nobody@127.0.0.1", ours, theirs) is None
        assert w.pua.get_subs_list("did-1") == [PRES_URI, f"sip:carol@{HOST}"]
        assert w.pua.get_subs_list("did-2") == [f"sip:dave@{HOST}"]
        assert w.pua.get_subs_list("did") == []  # exact, not a prefix
        assert other.call_id != call_id

        # update_contact: the NOTIFY's first Contact becomes the remote target
        (notify,) = [n for n in w.notifies if n.request.call_id == call_id]
        moved = f"sip:moved@{HOST}:{w.notifier.endpoint.local['udp'].port}"
        headers = notify.request.headers.copy()
        headers.set("Contact", f"<{moved}>")
        assert w.pua.update_contact(Request("NOTIFY", notify.request.uri, headers))
        record = next(r for r in w.pua.subscriptions() if r["call_id"] == call_id)
        assert record["remote_target"] == moved
        # a NOTIFY of another dialog (the notifier's tag differs) is not it
        wrong = headers.copy()
        wrong.set("From", f"<{PRES_URI}>;tag=someone-else")
        assert not w.pua.update_contact(Request("NOTIFY", notify.request.uri, wrong))

        # the next request in the dialog goes to the new remote target
        count = len(w.notifier.subscribes)
        refreshed = await w.subscribe(id="did-1")
        assert (refreshed.ok, refreshed.op, refreshed.call_id) == (True, "refresh", call_id)
        refresh = w.notifier.subscribes[count]
        assert refresh.uri == moved
        assert refresh.expires == 600
        assert refresh.to.tag == theirs


async def test_a_final_notify_before_the_unsubscribe_2xx_still_ends_it() -> None:
    # the notifier sends the final NOTIFY (and has it answered) before it
    # answers the unsubscribe
    async with watching() as w:
        first = await w.subscribe()
        await poll(lambda: w.notifies, "the first NOTIFY")
        w.notifier.notify_first = True
        outcome = await w.subscribe(expires=0)
        assert (outcome.ok, outcome.ended) == (True, True)
        assert statuses(w.notifier) == [200, 200]
        final = w.notifies[-1]
        assert (final.state, final.reason, final.action) == ("terminated", "timeout", "ended")
        assert w.pua.subscriptions() == []
        assert w.notifier.subscribes[-1].expires == 0
        assert w.notifier.subscribes[-1].call_id == first.call_id


async def test_unsubscribe_outcome_when_the_final_notify_comes_first() -> None:
    async with watching() as w:
        first = await w.subscribe()
        await poll(lambda: w.notifies, "the first NOTIFY")
        w.notifier.notify_first = True
        outcome = await w.subscribe(expires=0)
        assert (outcome.op, outcome.status, outcome.call_id) == ("unsubscribe", 200, first.call_id)


async def test_refusals_are_raised_at_once() -> None:
    from pua.errors import SubscribeError

    async with watching() as w:
        with pytest.raises(SubscribeError, match="contact"):
            w.pua.send_subscribe(w.info(contact=""))
        with pytest.raises(SubscribeError, match="source_flag"):
            w.pua.send_subscribe(w.info(source_flag=0))
        with pytest.raises(SubscribeError, match="event"):
            w.pua.send_subscribe(w.info(event=1 << 20))
        with pytest.raises(SubscribeError, match="pres_uri"):
            w.pua.send_subscribe(w.info(pres_uri="tel:+123"))
        # unsubscribing what does not exist sends nothing
        nothing = await w.subscribe(expires=0)
        assert (nothing.status, nothing.op, nothing.ok) == (None, None, True)
        assert w.notifier.subscribes == []
        assert w.pua.subscriptions() == []
        # another event between the same pair is another subscription
        await w.subscribe(event=DIALOG_EVENT)
        await w.subscribe()
        assert sorted(r["event"] for r in w.pua.subscriptions()) == ["dialog", "presence"]
        assert [str(r.event) for r in w.notifier.subscribes] == ["dialog", "presence"]


def test_subscribe_error_is_exported() -> None:
    import pua
    from pua.errors import SubscribeError

    assert getattr(pua, "SubscribeError", None) is SubscribeError


def test_a_lifetime_of_600_s_asks_expires_600() -> None:
    # sans-IO, at a fixed time: the same happens through PuaAPI whenever
    # loop.time() is in [2**k - 600, 2**k)
    engine = SubscribeEngine(PuaConfig(), EventRegistry(), random.Random(1))
    now = 3900.123456789  # (now + 600) - now == 600.0000000000005
    info = SubscribeInfo(
        pres_uri=PRES_URI,
        watcher_uri=WATCHER_URI,
        contact=f"sip:{HOST}:5060",
        source_flag=RPC_SUBSCRIBE,
        expires=600,
    )
    engine.subscribe(info, now)
    (out,) = engine.requests_to_send()
    assert out.request.expires == 600
