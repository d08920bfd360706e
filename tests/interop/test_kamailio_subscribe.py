"""PuaAPI's SUBSCRIBE engine against a real notifier: Kamailio 5.6 with the
presence modules (tests/peers/kamailio/presence-server.cfg).

pua subscribes to presence, dialog, message-summary, reg and
presence.winfo, publishes through its own PUBLISH engine, and checks
that the NOTIFYs Kamailio sends carry that state.

What Kamailio 5.6 does, and the tests rely on:

* an initial SUBSCRIBE gets 200 with the Expires asked for (up to
  ``max_expires``), a Contact and a To tag; the first NOTIFY follows at
  once with ``Subscription-State: active;expires=N`` and, while nothing
  is published, no body (presence.winfo: a full watcherinfo document with
  an empty watcher list);
* every PUBLISH of the presentity (new or modified) brings a NOTIFY with
  the whole state (``active;expires=`` the time the subscription has
  left);
* every refresh is answered 200 and followed by a NOTIFY with the state;
* an unsubscribe (Expires: 0) gets 200, then a final NOTIFY
  ``terminated;reason=timeout`` with the last state;
* presence.winfo: a presence subscription to the presentity brings a
  NOTIFY listing the watcher (``status="active" event="subscribe"``);
  when it ends, the next full document simply omits it;
* after a restart with an empty database the dialog is unknown: the next
  refresh gets 481 (``Subscription does not exist``), and the new
  SUBSCRIBE pua then sends makes a new dialog that works.

Waiting is always a poll with a deadline; the only real waits are for
pua's own refresh timer, with ``default_expires`` of a few seconds.
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from pua import (
    PRESENCE_EVENT,
    PWINFO_EVENT,
    RPC_SUBSCRIBE,
    DialogStatus,
    NotifyReceived,
    PuaAPI,
    PuaConfig,
    PublishInfo,
    PublishOutcome,
    SubscribeInfo,
    SubscribeOutcome,
)
from pua.endpoint import EndpointConfig
from tests.interop.conftest import (
    HOST,
    PresenceServer,
    RestartablePresenceServer,
    Transport,
    poll,
)
from tests.interop.test_kamailio_pua import PACKAGES, Package, pidf_basic

pytestmark = pytest.mark.interop

WINFO_NS = "urn:ietf:params:xml:ns:watcherinfo"

#: the content type of each package's NOTIFY bodies
CONTENT_TYPES = {
    "presence": "application/pidf+xml",
    "dialog": "application/dialog-info+xml",
    "message-summary": "application/simple-message-summary",
    "reg": "application/reginfo+xml",
}

#: how long to wait for a NOTIFY (Kamailio sends them at once)
NOTIFY_DEADLINE = 5.0
#: how long to wait for pua's own refresh (due 2-3 s after a grant of 4-6 s)
REFRESH_DEADLINE = 15.0


def watchers(body: bytes) -> list[tuple[str, str, str]]:
    """(watcher URI, status, event) of every ``<watcher>`` of a
    watcherinfo document (RFC 3858)."""
    root = ET.fromstring(body)
    assert root.tag == f"{{{WINFO_NS}}}watcherinfo", body
    return [
        ((w.text or "").strip(), w.get("status", ""), w.get("event", ""))
        for w in root.iter(f"{{{WINFO_NS}}}watcher")
    ]


def winfo_resource(body: bytes) -> tuple[str, str]:
    """(resource, package) of the watcherinfo document's watcher list."""
    found = ET.fromstring(body).find(f"{{{WINFO_NS}}}watcher-list")
    assert found is not None, body
    return found.get("resource", ""), found.get("package", "")


class Subscriber:
    """A PuaAPI subscribing to and publishing at the presence server, with
    every NOTIFY and outcome its callbacks saw."""

    def __init__(
        self,
        pua: PuaAPI,
        server: PresenceServer | RestartablePresenceServer,
        transport: Transport,
        label: str,
    ) -> None:
        self.pua = pua
        self.server = server
        self.transport = transport
        port = server.address(transport).port
        self.proxy = f"sip:{HOST}:{port};transport={transport}"
        self.contact = pua.endpoint.contact_uri(transport=transport)
        self.label = f"{label}-{transport}-{secrets.token_hex(3)}"
        self.notifies: list[NotifyReceived] = []
        self.outcomes: list[SubscribeOutcome | PublishOutcome] = []
        pua.register_notify_cb(RPC_SUBSCRIBE, self._on_notify, self)
        pua.register_puacb(0xFFFFFFF, self._on_outcome)

    def _on_notify(self, notify: NotifyReceived, param: object) -> None:
        assert param is self
        self.notifies.append(notify)

    def _on_outcome(self, outcome: SubscribeOutcome | PublishOutcome, param: object) -> None:
        self.outcomes.append(outcome)

    def uri(self, name: str) -> str:
        """A presentity or watcher URI of this test alone."""
        return f"sip:{name}-{self.label}@{HOST}"

    def subscribe_info(self, pres_uri: str, event: int, **kw: Any) -> SubscribeInfo:
        args: dict[str, Any] = {
            "pres_uri": pres_uri,
            "watcher_uri": self.uri("watcher"),
            "contact": self.contact,
            "event": event,
            "source_flag": RPC_SUBSCRIBE,
            "outbound_proxy": self.proxy,
        }
        args.update(kw)
        return SubscribeInfo(**args)

    async def subscribe(self, pres_uri: str, event: int, **kw: Any) -> SubscribeOutcome:
        outcome = await self.pua.send_subscribe(self.subscribe_info(pres_uri, event, **kw))
        assert not outcome.local, (outcome, self.server.log_tail())
        return outcome

    async def publish(self, package: Package, pres_uri: str, **kw: Any) -> PublishOutcome:
        info = PublishInfo(
            pres_uri=pres_uri,
            event=package.event,
            source_flag=package.source_flag,
            outbound_proxy=self.proxy,
            **kw,
        )
        outcome = await self.pua.send_publish(info)
        assert (outcome.ok, outcome.local) == (True, False), (outcome, self.server.log_tail())
        return outcome

    async def unpublish(self, package: Package, pres_uri: str) -> None:
        """Remove the publication, and wait until its row is gone:
        Kamailio deletes it a moment after the 200, and a write of one
        worker process while another writes fails ("database is locked",
        a 500) in the next test."""
        removed = await self.publish(package, pres_uri, expires=0)
        assert removed.ended
        user = pres_uri.removeprefix("sip:").split("@")[0]
        await poll(
            lambda: self.server.presentities(user) == [],
            NOTIFY_DEADLINE,
            f"the presentity row of {user} to go",
        )

    def of(self, call_id: str | None) -> list[NotifyReceived]:
        """The NOTIFYs of one dialog, in order."""
        return [n for n in self.notifies if n.request.call_id == call_id]

    async def notify(
        self,
        call_id: str | None,
        what: str,
        check: Callable[[NotifyReceived], bool] = lambda n: True,
        *,
        after: int = 0,
        timeout: float = NOTIFY_DEADLINE,
    ) -> NotifyReceived:
        """The first NOTIFY of dialog ``call_id``, after the first
        ``after`` ones, for which ``check`` holds (polled)."""

        def found() -> NotifyReceived | None:
            return next((n for n in self.of(call_id)[after:] if check(n)), None)

        try:
            await poll(lambda: found() is not None, timeout, what, interval=0.01)
        except AssertionError as exc:
            seen = [(n.state, n.expires, n.reason, n.body[:200]) for n in self.of(call_id)[after:]]
            raise AssertionError(f"{exc}\nNOTIFYs: {seen}\n{self.server.log_tail()}") from None
        notify = found()
        assert notify is not None
        return notify

    def own_subscribe_outcomes(self) -> list[SubscribeOutcome]:
        """Outcomes of SUBSCRIBEs pua sent by itself (ticket None)."""
        return [o for o in self.outcomes if isinstance(o, SubscribeOutcome) and o.ticket is None]


@asynccontextmanager
async def subscriber(
    server: PresenceServer | RestartablePresenceServer,
    transport: Transport,
    label: str,
    config: PuaConfig | None = None,
) -> AsyncIterator[Subscriber]:
    endpoint = EndpointConfig(host=HOST, udp_port=0, tcp_port=0)
    # subscriptions ask for default_expires (120 s unless ``config`` says
    # otherwise): a finite lifetime can ask one second more, see
    # test_api_subscribe.py, test_a_lifetime_of_600_s_asks_expires_600
    config = config or PuaConfig(default_expires=120)
    async with PuaAPI(config, endpoint_config=endpoint) as pua:
        yield Subscriber(pua, server, transport, label)


def _label(request: pytest.FixtureRequest) -> str:
    return str(request.node.originalname).removeprefix("test_")[:16]


def _has_body(notify: NotifyReceived) -> bool:
    return bool(notify.body)


# ----------------------------------------------------------------- tests
_CASES = [pytest.param(p, "udp", id=f"{p.name}-udp") for p in PACKAGES]
_CASES.append(pytest.param(PACKAGES[0], "tcp", id="presence-tcp"))


@pytest.mark.parametrize(("package", "transport"), _CASES)
async def test_subscribe_publish_notify_unsubscribe(
    request: pytest.FixtureRequest,
    presence_server: PresenceServer,
    package: Package,
    transport: Transport,
) -> None:
    """Subscribe; the first NOTIFY (no state yet); publish through pua's
    PUBLISH engine and get a NOTIFY with that document, then one with the
    modified document; unsubscribe and get the final NOTIFY."""
    async with subscriber(presence_server, transport, _label(request)) as s:
        pres_uri = s.uri(package.name)

        subscribed = await s.subscribe(pres_uri, package.event, expires=-1)
        assert (subscribed.ok, subscribed.status, subscribed.op) == (True, 200, "initial")
        assert subscribed.expires == 120
        call_id = subscribed.call_id
        assert call_id is not None
        assert subscribed.local_tag is not None
        assert subscribed.remote_tag
        assert s.pua.is_dialog(call_id, subscribed.local_tag, subscribed.remote_tag) is (
            DialogStatus.ESTABLISHED
        )
        assert subscribed.response is not None
        # Kamailio's Contact names its own socket, over the same transport
        [contact] = subscribed.response.contacts
        assert contact.uri == s.proxy

        first = await s.notify(call_id, "the first NOTIFY")
        assert (first.state, first.reason, first.action) == ("active", None, "")
        assert first.expires is not None
        assert 0 < first.expires <= 120
        assert first.body == b""  # nothing is published yet
        assert str(first.request.event) == package.name

        # publish: the NOTIFY carries the document
        published = await s.publish(package, pres_uri, body=package.build(pres_uri, 0), expires=60)
        assert published.op == "initial"
        notified = await s.notify(call_id, "the NOTIFY of the publication", _has_body, after=1)
        assert notified.state == "active"
        assert notified.content_type == CONTENT_TYPES[package.name]
        assert package.state(notified.body) == package.states[0]

        # modify: the next NOTIFY carries the new document
        count = len(s.of(call_id))
        modified = await s.publish(package, pres_uri, body=package.build(pres_uri, 1), expires=60)
        assert modified.op == "modify"
        changed = await s.notify(
            call_id,
            "the NOTIFY of the modification",
            lambda n: package.state(n.body) == package.states[1],
            after=count,
        )
        assert changed.state == "active"
        assert [n.request.cseq.seq for n in s.of(call_id)] == sorted(
            {n.request.cseq.seq for n in s.of(call_id)}
        )

        # unsubscribe: 200, then the final NOTIFY ends the subscription
        count = len(s.of(call_id))
        unsubscribed = await s.subscribe(pres_uri, package.event, expires=0)
        assert (unsubscribed.ok, unsubscribed.ended) == (True, True), unsubscribed
        # Kamailio sends the 200, then the final NOTIFY; pua may handle the
        # NOTIFY first (responses reach the engine one loop iteration
        # later): the outcome is the unsubscribe's either way
        assert (unsubscribed.op, unsubscribed.status) == ("unsubscribe", 200)
        final = await s.notify(call_id, "the final NOTIFY", after=count)
        assert (final.state, final.reason, final.action) == ("terminated", "timeout", "ended")
        assert package.state(final.body) == package.states[1]
        await poll(lambda: not s.pua.subscriptions(), NOTIFY_DEADLINE, "the subscription to go")
        assert s.pua.is_dialog(call_id, subscribed.local_tag, subscribed.remote_tag) is (
            DialogStatus.NONE
        )
        assert s.pua.subscriptions_engine.stats["notify-481"] == 0

        await s.unpublish(package, pres_uri)


async def test_winfo_notifies_the_watchers_of_a_presentity(
    request: pytest.FixtureRequest, presence_server: PresenceServer
) -> None:
    """presence.winfo (RFC 3857): the presentity subscribes to its own
    watcher list; a watcher's presence subscription appears in the next
    NOTIFY as an active watcher, and its unsubscribe as terminated."""
    async with subscriber(presence_server, "udp", _label(request)) as s:
        alice = s.uri("alice")
        bob = s.uri("bob")

        winfo = await s.subscribe(alice, PWINFO_EVENT, watcher_uri=alice, expires=-1)
        assert (winfo.ok, winfo.status, winfo.expires) == (True, 200, 120), s.server.log_tail()
        first = await s.notify(winfo.call_id, "the first watcherinfo NOTIFY")
        assert first.state == "active"
        assert first.content_type == "application/watcherinfo+xml"
        assert winfo_resource(first.body) == (alice, "presence")
        assert watchers(first.body) == []

        # bob watches alice's presence: alice's watcher list shows him
        count = len(s.of(winfo.call_id))
        watching = await s.subscribe(alice, PRESENCE_EVENT, watcher_uri=bob, expires=-1)
        assert watching.ok
        listed = await s.notify(
            winfo.call_id, "bob in the watcher list", lambda n: bool(watchers(n.body)), after=count
        )
        assert watchers(listed.body) == [(bob, "active", "subscribe")]

        # bob leaves: Kamailio sends a full document without him (RFC 3857
        # would allow him listed as terminated; Kamailio drops the entry)
        count = len(s.of(winfo.call_id))
        left = await s.subscribe(alice, PRESENCE_EVENT, watcher_uri=bob, expires=0)
        assert (left.ok, left.ended) == (True, True)
        gone = await s.notify(
            winfo.call_id,
            "bob gone from the watcher list",
            lambda n: watchers(n.body) == [],
            after=count,
        )
        assert gone.state == "active"
        assert watchers(gone.body) == []
        assert winfo_resource(gone.body) == (alice, "presence")

        unsubscribed = await s.subscribe(alice, PWINFO_EVENT, watcher_uri=alice, expires=0)
        assert unsubscribed.ended
        await s.notify(
            winfo.call_id, "the final watcherinfo NOTIFY", lambda n: n.state == "terminated"
        )
        await poll(lambda: not s.pua.subscriptions(), NOTIFY_DEADLINE, "the subscriptions to go")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_refresh_goes_in_the_dialog_and_brings_a_notify(
    request: pytest.FixtureRequest, presence_server: PresenceServer, transport: Transport
) -> None:
    """A subscription "for ever" with a 4 s grant: pua refreshes it in the
    dialog by itself (2 s later); Kamailio answers 200 and sends a NOTIFY
    with the current state in the same dialog."""
    config = PuaConfig(default_expires=4, callbacks_on_refresh=True)
    async with subscriber(presence_server, transport, _label(request), config) as s:
        package = PACKAGES[0]
        pres_uri = s.uri("presence")
        await s.publish(package, pres_uri, body=package.build(pres_uri, 0), expires=60)
        subscribed = await s.subscribe(pres_uri, PRESENCE_EVENT, expires=-1)
        assert (subscribed.ok, subscribed.expires) == (True, 4)
        call_id = subscribed.call_id
        first = await s.notify(call_id, "the first NOTIFY")
        assert pidf_basic(first.body) == "open"

        await poll(lambda: bool(s.own_subscribe_outcomes()), REFRESH_DEADLINE, "pua's own refresh")
        refresh = s.own_subscribe_outcomes()[0]
        assert (refresh.ok, refresh.status, refresh.op, refresh.expires) == (
            True,
            200,
            "refresh",
            4,
        )
        assert (refresh.call_id, refresh.local_tag, refresh.remote_tag) == (
            call_id,
            subscribed.local_tag,
            subscribed.remote_tag,
        )
        after = await s.notify(call_id, "the refresh's NOTIFY", after=1)
        assert after.state == "active"
        assert after.expires is not None
        assert 0 < after.expires <= 4
        assert pidf_basic(after.body) == "open"
        assert after.request.cseq.seq > first.request.cseq.seq
        stats = s.pua.subscriptions_engine.stats
        assert stats["sent-initial"] == 1
        assert stats["sent-refresh"] >= 1
        assert stats["notify-481"] == 0
        [record] = s.pua.subscriptions()
        assert record["call_id"] == call_id

        await s.subscribe(pres_uri, PRESENCE_EVENT, expires=0)
        await poll(lambda: not s.pua.subscriptions(), NOTIFY_DEADLINE, "the subscription to go")
        await s.unpublish(package, pres_uri)


async def test_restart_with_empty_database_makes_a_new_subscription(
    request: pytest.FixtureRequest, restartable_presence_server: RestartablePresenceServer
) -> None:
    """The server restarts and forgets every subscription and publication.
    pua's next refresh gets 481; pua subscribes again from scratch (a new
    Call-ID), the new dialog gets its NOTIFY, and a new publication's
    state is notified in it."""
    server = restartable_presence_server
    config = PuaConfig(default_expires=6, callbacks_on_refresh=True, retry_initial=0.2)
    async with subscriber(server, "udp", _label(request), config) as s:
        package = PACKAGES[0]
        pres_uri = s.uri("presence")
        await s.publish(package, pres_uri, body=package.build(pres_uri, 0), expires=-1)
        subscribed = await s.subscribe(pres_uri, PRESENCE_EVENT, expires=-1)
        assert (subscribed.ok, subscribed.expires) == (True, 6)
        old_call_id = subscribed.call_id
        first = await s.notify(old_call_id, "the first NOTIFY")
        assert pidf_basic(first.body) == "open"

        await server.restart(empty_db=True)

        assert server.starts == 2
        stats = s.pua.subscriptions_engine.stats
        # the refresh is due 3 s after the grant: the restart must be over
        # before it goes out, or this test does not test a 481
        assert stats["sent-refresh"] == 0, "kamailio took too long to restart"

        def resubscribed() -> bool:
            return any(o.op == "initial" and o.ok for o in s.own_subscribe_outcomes())

        await poll(resubscribed, REFRESH_DEADLINE, "pua's new subscription")
        own = s.own_subscribe_outcomes()
        failed = own[0]
        assert (failed.op, failed.status, failed.ok, failed.retrying) == (
            "refresh",
            481,
            False,
            True,
        ), own
        assert failed.reason == "Subscription does not exist"
        assert failed.call_id in (None, old_call_id)
        [made] = [o for o in own if o.op == "initial" and o.ok]
        assert made.call_id not in (None, old_call_id)
        assert stats["reply-481"] == 1
        [record] = s.pua.subscriptions()
        assert record["call_id"] == made.call_id

        # the new dialog works: its NOTIFY comes, and a new publication
        # (the old one is gone with the database) is notified in it
        new = await s.notify(made.call_id, "the new dialog's first NOTIFY")
        assert new.state == "active"
        count = len(s.of(made.call_id))
        republished = await s.publish(package, pres_uri, body=package.build(pres_uri, 1))
        assert republished.ok
        closed = await s.notify(
            made.call_id,
            "the NOTIFY of the new publication",
            lambda n: bool(n.body) and pidf_basic(n.body) == "closed",
            after=count,
        )
        assert closed.state == "active"
        assert s.of(old_call_id) == [first]
        assert stats["notify-481"] == 0
