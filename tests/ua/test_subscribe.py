"""The SUBSCRIBE engine on a fake clock and a fake network: one test per
behaviour and per row of the error policy, and the six scenarios of the
spec's §21 unit test (an unsubscribe answered with an error is never
revived)."""

from __future__ import annotations

import itertools
import random

import pytest

from pua.config import PuaConfig
from pua.errors import SubscribeError
from pua.evpkg.registry import EventRegistry
from pua.model import (
    DIALOG_EVENT,
    INSERT_TYPE,
    INTERNAL_UPDATE_TRUE,
    PRESENCE_EVENT,
    RLS_SUBSCRIBE,
    RPC_SUBSCRIBE,
    XMPP_INITIAL_SUBS,
    XMPP_SUBSCRIBE,
    SubscribeInfo,
)
from pua.sip import Headers, Request, Response, make_response
from pua.ua import DialogStatus, NotifyReceived, OutgoingRequest, SubscribeEngine, SubscribeOutcome

PRES = "sip:alice@example.com"
WATCHER = "sip:bob@example.com"
CONTACT = "sip:bob@192.0.2.5:5060"
NOTIFIER = "sip:ps@198.51.100.7:5060"


def info(**kw: object) -> SubscribeInfo:
    args: dict[str, object] = {
        "pres_uri": PRES,
        "watcher_uri": WATCHER,
        "contact": CONTACT,
        "event": PRESENCE_EVENT,
        "source_flag": RPC_SUBSCRIBE,
    }
    args.update(kw)
    return SubscribeInfo(**args)  # type: ignore[arg-type]


class Harness:
    def __init__(self, **config: object) -> None:
        self.engine = SubscribeEngine(PuaConfig(**config), EventRegistry(), random.Random(3))  # type: ignore[arg-type]
        self.now = 1000.0
        self.events: list[SubscribeOutcome | NotifyReceived] = []
        self.in_flight: dict[int, OutgoingRequest] = {}
        self.sent: list[OutgoingRequest] = []
        self._cseq = itertools.count(1)

    def _collect(self) -> None:
        for item in self.engine.requests_to_send():
            self.in_flight[item.token] = item
            self.sent.append(item)
        self.events.extend(self.engine.events())

    def subscribe(self, **kw: object) -> int:
        ticket = self.engine.subscribe(info(**kw), self.now)
        self._collect()
        return ticket

    def only(self) -> OutgoingRequest:
        (item,) = self.in_flight.values()
        return item

    def answer(
        self,
        status: int,
        *,
        expires: int | None = 600,
        headers: list[tuple[str, str]] | None = None,
        local: bool = False,
        to_tag: str = "ntag",
    ) -> Request:
        item = self.only()
        fields = list(headers or [])
        if 200 <= status < 300:
            fields.append(("Contact", f"<{NOTIFIER}>"))
            if expires is not None:
                fields.append(("Expires", str(expires)))
        response = make_response(item.request, status, to_tag=to_tag, headers=fields)
        del self.in_flight[item.token]
        self.engine.handle_response(item.token, response, self.now, local=local)
        self._collect()
        return item.request

    def notify(
        self,
        request: Request,
        state: str = "active;expires=600",
        *,
        event: str | None = "presence",
        from_tag: str = "ntag",
        to_tag: str | None = None,
        call_id: str | None = None,
        body: bytes = b"<presence/>",
        extra: list[tuple[str, str]] | None = None,
        cseq: int | None = None,
    ) -> Response:
        """A NOTIFY in the dialog of ``request`` (a SUBSCRIBE we sent)."""
        fields = [
            ("Via", "SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKn" + str(next(self._cseq))),
            ("Max-Forwards", "70"),
            ("From", f"<{PRES}>;tag={from_tag}"),
            ("To", f"<{WATCHER}>;tag={to_tag or request.from_.tag}"),
            ("Call-ID", call_id or request.call_id),
            ("CSeq", f"{cseq if cseq is not None else next(self._cseq)} NOTIFY"),
            ("Contact", f"<{NOTIFIER}>"),
        ]
        if event is not None:
            fields.append(("Event", event))
        if state:
            fields.append(("Subscription-State", state))
        fields.extend(extra or [])
        if body:
            fields.append(("Content-Type", "application/pidf+xml"))
        notify = Request("NOTIFY", CONTACT, Headers(fields), body)
        response = self.engine.handle_notify(notify, self.now)
        self._collect()
        return response

    def advance_to_timer(self) -> float:
        when = self.engine.get_timer()
        assert when is not None
        self.now = when
        self.engine.handle_timer(self.now)
        self._collect()
        return when

    def outcome(self, ticket: int | None) -> SubscribeOutcome:
        (found,) = [
            e for e in self.events if isinstance(e, SubscribeOutcome) and e.ticket == ticket
        ]
        return found

    def notifies(self) -> list[NotifyReceived]:
        return [e for e in self.events if isinstance(e, NotifyReceived)]


def established(h: Harness, expires: int = 600, **kw: object) -> Request:
    h.subscribe(**kw)
    return h.answer(200, expires=expires)


# ------------------------------------------------------------ the initial SUBSCRIBE
def test_initial_subscribe_headers() -> None:
    h = Harness()
    h.subscribe(
        outbound_proxy="sip:proxy.example;lr", extra_headers="Accept: application/pidf+xml\r\n"
    )
    item = h.only()
    req = item.request
    assert req.method == "SUBSCRIBE"
    assert req.uri == PRES
    assert req.to.uri == PRES
    assert req.to.tag is None
    assert req.from_.uri == WATCHER
    assert req.from_.tag
    assert req.contacts[0].uri == CONTACT
    assert req.event is not None
    assert req.event.package == "presence"
    assert req.expires == 3600  # default_expires, without Kamailio's +10
    assert req.cseq.seq == 1
    assert req.headers.get("Accept") == "application/pidf+xml"
    assert item.destination == "sip:proxy.example;lr"
    assert h.engine.is_dialog(req.call_id, req.from_.tag or "", None) is DialogStatus.TEMPORARY


def test_remote_target_is_the_request_uri() -> None:
    h = Harness()
    h.subscribe(remote_target="sip:alice@192.0.2.9:5080")
    req = h.only().request
    assert req.uri == "sip:alice@192.0.2.9:5080"
    assert req.to.uri == PRES


def test_2xx_establishes_the_dialog() -> None:
    h = Harness()
    ticket = h.subscribe()
    req = h.answer(
        200,
        expires=600,
        headers=[
            ("Record-Route", "<sip:p1.example;lr>"),
            ("Record-Route", "<sip:p2.example;lr>"),
        ],
    )
    out = h.outcome(ticket)
    assert out.ok
    assert out.expires == 600
    assert out.call_id == req.call_id
    assert out.remote_tag == "ntag"
    (record,) = h.engine.subscriptions()
    # RFC 3261 §12.1.2: the 2xx Record-Route reversed, the Contact as target
    assert record.route_set == ("<sip:p2.example;lr>", "<sip:p1.example;lr>")
    assert record.remote_target == NOTIFIER
    assert h.engine.is_dialog(req.call_id, req.from_.tag or "", "ntag") is DialogStatus.ESTABLISHED
    assert h.engine.get_record_id(req.call_id, req.from_.tag or "", "ntag") == ""


def test_2xx_with_other_uris_still_establishes() -> None:
    h = Harness()
    ticket = h.subscribe()
    item = h.only()
    response = Response(
        200,
        headers=[
            ("Via", "SIP/2.0/UDP 192.0.2.5;branch=z9hG4bKx"),
            ("From", f"<sip:Bob@EXAMPLE.com>;tag={item.request.from_.tag}"),
            ("To", "<sip:alice@other.example>;tag=t9"),
            ("Call-ID", item.request.call_id),
            ("CSeq", "1 SUBSCRIBE"),
            ("Contact", f"<{NOTIFIER}>"),
            ("Expires", "600"),
        ],
    )
    del h.in_flight[item.token]
    h.engine.handle_response(item.token, response, h.now, local=False)
    h._collect()
    assert h.outcome(ticket).ok
    (record,) = h.engine.subscriptions()
    assert record.remote_tag == "t9"


def test_notify_before_2xx_establishes_and_is_delivered() -> None:
    h = Harness()
    ticket = h.subscribe(cb_param="mine", id="rls-1")
    req = h.only().request
    response = h.notify(req, "pending;expires=600", extra=[("Record-Route", "<sip:p1.example;lr>")])
    assert response.status == 200
    (note,) = h.notifies()
    assert note.state == "pending"
    assert note.cb_param == "mine"
    assert note.id == "rls-1"
    (record,) = h.engine.subscriptions()
    assert record.remote_tag == "ntag"
    # a dialog made by a request: its Record-Route in order (RFC 3261 §12.1.1)
    assert record.route_set == ("<sip:p1.example;lr>",)
    h.answer(200)
    assert h.outcome(ticket).ok


def test_2xx_without_expires_uses_the_requested_value() -> None:
    h = Harness()
    ticket = h.subscribe(expires=900)
    h.answer(200, expires=None)
    assert h.outcome(ticket).expires == 900


# ------------------------------------------------------------ refresh
def test_refresh_goes_in_the_dialog_with_loose_routing() -> None:
    h = Harness()
    h.subscribe()
    first = h.answer(200, expires=600, headers=[("Record-Route", "<sip:p1.example;lr>")])
    start = h.now
    when = h.advance_to_timer()
    assert start + 480 <= when <= start + 540
    item = h.only()
    req = item.request
    assert req.uri == NOTIFIER
    assert req.headers.get_all("Route") == ["<sip:p1.example;lr>"]
    assert req.call_id == first.call_id
    assert req.from_.tag == first.from_.tag
    assert req.to.tag == "ntag"
    assert req.cseq.seq == 2
    assert item.destination is None


def test_strict_router_takes_the_request_uri() -> None:
    h = Harness()
    h.subscribe()
    h.answer(
        200, headers=[("Record-Route", "<sip:p2.example>"), ("Record-Route", "<sip:p1.example>")]
    )
    h.advance_to_timer()
    req = h.only().request
    # route set (p1, p2) reversed from the 2xx; p1 is strict (RFC 3261 §12.2.1.1)
    assert req.uri == "sip:p1.example"
    assert req.headers.get_all("Route") == ["<sip:p2.example>", f"<{NOTIFIER}>"]


def test_forever_stays_forever_across_refreshes() -> None:
    h = Harness()
    established(h, expires=600)
    for _ in range(4):
        h.advance_to_timer()
        assert h.only().request.expires == 3600
        h.answer(200, expires=600)
    (record,) = h.engine.subscriptions()
    assert record.desired_expires == 0


def test_notify_expires_brings_the_refresh_forward() -> None:
    h = Harness()
    req = established(h, expires=3600)
    h.notify(req, "active;expires=100")
    when = h.advance_to_timer()
    assert when <= 1000 + 100


def test_finite_subscription_ends_with_an_unsubscribe() -> None:
    h = Harness()
    h.subscribe(expires=300)
    h.answer(200, expires=3600)
    assert h.advance_to_timer() == 1300
    assert h.only().request.expires == 0


# ------------------------------------------------------------ unsubscribe
def test_unsubscribe_then_final_notify_removes_the_dialog() -> None:
    h = Harness()
    req = established(h)
    ticket = h.subscribe(expires=0)
    unsub = h.only().request
    assert unsub.expires == 0
    assert unsub.call_id == req.call_id
    assert unsub.cseq.seq == 2
    h.answer(200, expires=0)
    assert h.outcome(ticket).ended
    assert len(h.engine) == 1  # waiting for the final NOTIFY
    assert h.notify(req, "terminated;reason=timeout").status == 200
    assert len(h.engine) == 0
    assert h.in_flight == {}
    assert h.notifies()[-1].action == "ended"


def test_unsubscribe_without_final_notify_gives_up_after_a_while() -> None:
    h = Harness()
    established(h)
    h.subscribe(expires=0)
    h.answer(200, expires=0)
    h.advance_to_timer()
    assert len(h.engine) == 0
    assert h.in_flight == {}


def test_unsubscribing_an_unknown_subscription_sends_nothing() -> None:
    h = Harness()
    ticket = h.subscribe(expires=0)
    assert h.sent == []
    assert h.outcome(ticket).status is None


def test_unsubscribe_while_pending_waits_for_the_dialog() -> None:
    h = Harness()
    h.subscribe()
    h.subscribe(expires=0)
    h.answer(200)
    assert h.only().request.expires == 0


# ------------------------------------------------------------ NOTIFY as a UAS
def test_notify_answers() -> None:
    h = Harness()
    req = established(h)
    assert h.notify(req, call_id="unknown@x").status == 481
    assert h.notify(req, to_tag="nottag").status == 481
    assert h.notify(req, from_tag="forked").status == 481
    missing_state = h.notify(req, "")
    assert missing_state.status == 400
    assert "Subscription-State" in missing_state.reason
    assert h.notify(req, event=None).status == 400
    assert h.notify(req, event="dialog").status == 489
    assert h.notify(req, cseq=50).status == 200
    assert h.notify(req, cseq=40).status == 500  # older CSeq in the dialog
    assert [n.state for n in h.notifies()] == ["active"]


def test_notify_is_a_target_refresh() -> None:
    h = Harness()
    req = established(h)
    h.notify(req, extra=[])
    (record,) = h.engine.subscriptions()
    assert record.remote_target == NOTIFIER


@pytest.mark.parametrize("reason", ["deactivated", "timeout", None])
def test_terminated_resubscribes_at_once(reason: str | None) -> None:
    h = Harness()
    req = established(h)
    state = "terminated" + (f";reason={reason}" if reason else "")
    h.notify(req, state)
    assert h.notifies()[-1].action == "resubscribe"
    again = h.only().request
    assert again.to.tag is None
    assert again.call_id != req.call_id
    assert h.engine.is_dialog(req.call_id, req.from_.tag or "", "ntag") is DialogStatus.NONE


def test_probation_waits_for_retry_after() -> None:
    h = Harness()
    req = established(h)
    h.notify(req, "terminated;reason=probation;retry-after=30")
    assert h.in_flight == {}
    assert h.advance_to_timer() >= 1030
    assert h.only().request.to.tag is None


@pytest.mark.parametrize("reason", ["rejected", "noresource", "giveup", "invariant"])
def test_terminated_for_good_ends_it(reason: str) -> None:
    h = Harness()
    req = established(h)
    h.notify(req, f"terminated;reason={reason}")
    assert h.notifies()[-1].action == "ended"
    assert len(h.engine) == 0
    assert h.in_flight == {}
    assert h.engine.get_timer() is None


# ------------------------------------------------------------ error policy
@pytest.mark.parametrize(("status", "local"), [(481, False), (408, False), (408, True)])
def test_refresh_481_or_408_makes_a_new_dialog_after_backoff(status: int, local: bool) -> None:
    h = Harness()
    req = established(h)
    h.advance_to_timer()
    h.answer(status, local=local)
    assert h.in_flight == {}
    before = h.now
    assert h.advance_to_timer() > before
    again = h.only().request
    assert again.to.tag is None
    assert again.call_id != req.call_id


def test_refresh_423_retries_with_min_expires() -> None:
    h = Harness(default_expires=60)
    req = established(h, expires=60)
    h.advance_to_timer()
    h.answer(423, headers=[("Min-Expires", "300")])
    again = h.only().request
    assert again.call_id == req.call_id
    assert again.expires == 300


def test_initial_423_retries_with_min_expires() -> None:
    h = Harness()
    ticket = h.subscribe(expires=30)
    h.answer(423, headers=[("Min-Expires", "120")])
    assert h.only().request.expires == 120
    h.answer(200, expires=120)
    assert h.outcome(ticket).ok


def test_refresh_5xx_backs_off_in_the_same_dialog() -> None:
    h = Harness(retry_initial=1.0)
    req = established(h)
    h.advance_to_timer()
    h.answer(503, headers=[("Retry-After", "20")])
    before = h.now
    assert h.advance_to_timer() >= before + 20
    again = h.only().request
    assert again.call_id == req.call_id
    assert again.to.tag == "ntag"


@pytest.mark.parametrize("status", [403, 404, 489, 603])
def test_other_failures_end_and_are_reported(status: int) -> None:
    h = Harness()
    ticket = h.subscribe()
    h.answer(status)
    out = h.outcome(ticket)
    assert out.status == status
    assert out.ended
    assert not out.ok
    assert len(h.engine) == 0


def test_initial_timeout_is_retried_with_backoff() -> None:
    h = Harness()
    ticket = h.subscribe()
    h.answer(408, local=True)
    out = h.outcome(ticket)
    assert out.retrying
    assert out.local
    h.advance_to_timer()
    assert h.only().request.to.tag is None


# ------------------------------------------------------------ spec §21
# (code, lifetime asked D from t=0 or None for ever, when the request that
# fails goes out, what it is, and how many SUBSCRIBEs may follow)
@pytest.mark.parametrize("code", [404, 481, 500, 408])
def test_unsubscribe_answered_with_an_error_in_the_same_second_is_not_revived(code: int) -> None:
    h = Harness()
    established(h, expires=3600)
    h.subscribe(expires=0)
    h.answer(code)
    assert len(h.engine) == 0
    assert h.engine.get_timer() is None
    assert h.in_flight == {}


@pytest.mark.parametrize("code", [404, 481, 500, 408])
def test_unsubscribe_answered_late_with_an_error_is_not_revived(code: int) -> None:
    h = Harness()
    established(h, expires=3600)
    h.subscribe(expires=0)
    h.now += 2
    h.answer(code)
    assert len(h.engine) == 0
    assert h.engine.get_timer() is None


@pytest.mark.parametrize(("code", "sends"), [(481, 1), (408, 1), (500, 1), (404, 0)])
def test_active_subscription_refresh_error_retries_for_the_rest(code: int, sends: int) -> None:
    # D = 130 s asked, the refresh fails at T ~ 100: the remaining ~30 s are
    # asked again (481/408: new dialog; 5xx: the same); 404 ends it
    h = Harness(retry_initial=0.5, retry_max=1.0)
    h.subscribe(expires=130)
    h.answer(200, expires=110)
    h.advance_to_timer()
    h.answer(code)
    while h.engine.get_timer() is not None and not h.in_flight:
        h.advance_to_timer()
    follow = list(h.in_flight.values())
    assert len(follow) == sends
    if sends:
        assert 0 < (follow[0].request.expires or 0) <= 130 - (h.now - 1000) + 1


@pytest.mark.parametrize(("code", "sends"), [(481, 1), (408, 1), (500, 1), (404, 0)])
def test_forever_subscription_refresh_error_is_retried_for_ever(code: int, sends: int) -> None:
    h = Harness(retry_initial=0.5, retry_max=1.0)
    established(h)
    h.advance_to_timer()
    h.answer(code)
    while h.engine.get_timer() is not None and not h.in_flight:
        h.advance_to_timer()
    follow = list(h.in_flight.values())
    assert len(follow) == sends
    if sends:
        assert follow[0].request.expires == 3600


def test_late_unsubscribe_error_after_lifetime_is_not_revived() -> None:
    # the §21 row "404, D = 99, T = 100": the answer comes after the end
    h = Harness()
    h.subscribe(expires=99)
    h.answer(200, expires=3600)
    h.advance_to_timer()  # the lifetime ends at 1099: unsubscribe
    assert h.only().request.expires == 0
    h.now += 1
    h.answer(404)
    assert len(h.engine) == 0
    assert h.engine.get_timer() is None


# ------------------------------------------------------------ keys and lookups
def test_several_subscriptions_coexist_by_id_and_event() -> None:
    h = Harness()
    h.subscribe(id="a")
    h.answer(200, to_tag="t1")
    h.subscribe(id="b")
    h.answer(200, to_tag="t2")
    h.subscribe(id="a", event=DIALOG_EVENT)
    h.answer(200, to_tag="t3")
    assert len(h.engine) == 3
    assert len({r.call_id for r in h.engine.subscriptions()}) == 3
    h.subscribe(id="b", expires=0)
    unsub = h.only().request
    assert unsub.to.tag == "t2"
    h.answer(200, expires=0)
    h.notify(unsub, "terminated", from_tag="t2")
    assert sorted((r.id, r.event) for r in h.engine.subscriptions()) == [
        ("a", PRESENCE_EVENT),
        ("a", DIALOG_EVENT),
    ]


def test_get_subs_list_is_exact() -> None:
    h = Harness()
    h.subscribe(id="rls", pres_uri="sip:b@example.com", source_flag=RLS_SUBSCRIBE)
    h.answer(200)
    h.subscribe(id="rls", pres_uri="sip:a@example.com", source_flag=RLS_SUBSCRIBE)
    h.answer(200)
    h.subscribe(id="rls-2", pres_uri="sip:c@example.com", source_flag=RLS_SUBSCRIBE)
    h.answer(200)
    assert h.engine.get_subs_list("rls") == ["sip:a@example.com", "sip:b@example.com"]
    assert h.engine.get_subs_list("rl") == []


def test_lookup_without_remote_target_finds_the_dialog() -> None:
    # check_remote_contact=1 (the default) must not make unsubscribe
    # impossible for callers without a remote target (spec §6.3)
    h = Harness(check_remote_contact=1)
    req = established(h)
    h.subscribe(expires=0)
    assert h.only().request.call_id == req.call_id


def test_lookup_with_another_remote_target_makes_a_new_dialog() -> None:
    h = Harness(check_remote_contact=1)
    established(h, remote_target="sip:alice@192.0.2.9")
    h.subscribe(remote_target="sip:alice@192.0.2.10")
    assert h.only().request.to.tag is None
    assert len(h.engine) == 2


def test_insert_type_forces_a_new_dialog_and_internal_update_skips() -> None:
    h = Harness()
    established(h)
    ticket = h.subscribe(internal_update_flag=INTERNAL_UPDATE_TRUE)
    assert h.in_flight == {}
    assert h.outcome(ticket).status is None
    h.subscribe(flag=INSERT_TYPE)
    assert h.only().request.to.tag is None
    assert len(h.engine) == 2


def test_update_contact_matches_our_tag_and_theirs() -> None:
    h = Harness()
    req = established(h)

    def notify(to_tag: str, from_tag: str) -> Request:
        return Request(
            "NOTIFY",
            CONTACT,
            Headers(
                [
                    ("Via", "SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKu"),
                    ("From", f"<{PRES}>;tag={from_tag}"),
                    ("To", f"<{WATCHER}>;tag={to_tag}"),
                    ("Call-ID", req.call_id),
                    ("CSeq", "9 NOTIFY"),
                    ("Contact", "<sip:ps@203.0.113.1:5062>"),
                ]
            ),
        )

    ours = req.from_.tag or ""
    assert not h.engine.update_contact(notify(to_tag="ntag", from_tag=ours))  # Kamailio's swap
    assert h.engine.update_contact(notify(to_tag=ours, from_tag="ntag"))
    (record,) = h.engine.subscriptions()
    assert record.remote_target == "sip:ps@203.0.113.1:5062"


def test_xmpp_initial_subs_is_stored_as_xmpp_subscribe() -> None:
    h = Harness()
    ticket = h.subscribe(source_flag=XMPP_INITIAL_SUBS)
    h.answer(200)
    (record,) = h.engine.subscriptions()
    assert record.source_flag == XMPP_SUBSCRIBE
    assert h.outcome(ticket).source_flag == XMPP_INITIAL_SUBS


def test_resubscribe_for_ever_while_pending_keeps_the_dialog() -> None:
    # Kamailio deletes the temporary record here and loses the dialog
    h = Harness()
    first = h.subscribe(expires=600)
    second = h.subscribe(expires=-1)
    assert len(h.sent) == 1
    h.answer(200)
    assert h.outcome(first).ok
    assert h.outcome(second).ok
    (record,) = h.engine.subscriptions()
    assert record.desired_expires == 0


def test_refusals() -> None:
    h = Harness()
    with pytest.raises(SubscribeError, match="contact"):
        h.subscribe(contact="")
    with pytest.raises(SubscribeError, match="event"):
        h.subscribe(event=1 << 20)
    with pytest.raises(SubscribeError, match="watcher_uri"):
        h.subscribe(watcher_uri="bob")
    with pytest.raises(SubscribeError, match="extra_headers"):
        h.subscribe(extra_headers="Contact: <sip:x@y>\r\n")
    with pytest.raises(SubscribeError, match="source_flag"):
        h.subscribe(source_flag=0)
    assert h.sent == []


def test_final_notify_before_the_unsubscribe_2xx() -> None:
    h = Harness()
    req = established(h)
    ticket = h.subscribe(expires=0)
    assert h.notify(req, "terminated;reason=timeout").status == 200
    assert len(h.engine) == 1  # the unsubscribe is still out
    h.answer(200, expires=0)
    out = h.outcome(ticket)
    assert (out.op, out.status, out.ended) == ("unsubscribe", 200, True)
    assert out.call_id == req.call_id
    assert len(h.engine) == 0
    assert h.engine.get_timer() is None


def test_subscribing_again_while_waiting_for_the_final_notify() -> None:
    h = Harness()
    req = established(h)
    h.subscribe(expires=0)
    h.answer(200, expires=0)
    ticket = h.subscribe()
    again = h.only().request
    assert again.to.tag is None
    assert again.call_id != req.call_id
    h.answer(200)
    assert h.outcome(ticket).ok
    assert len(h.engine) == 1


def test_refresh_481_outcome_names_the_dialog_that_failed() -> None:
    h = Harness(callbacks_on_refresh=True)
    req = established(h)
    h.advance_to_timer()
    h.answer(481)
    failed = [e for e in h.events if isinstance(e, SubscribeOutcome) and e.status == 481]
    assert failed[0].call_id == req.call_id
    assert failed[0].retrying


def test_expires_is_never_one_more_than_asked() -> None:
    # now + 600 rounds up just below a power of two of loop.time()
    h = Harness()
    h.now = 3900.123456789
    h.subscribe(expires=600)
    assert h.only().request.expires == 600
