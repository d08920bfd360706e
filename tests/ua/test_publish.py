"""The PUBLISH engine on a fake clock and a fake network: one test per
behaviour, one per row of the reply policy."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pua.config import PuaConfig
from pua.errors import NoBodyError, PublishError, UnknownETagError, UnknownEventError
from pua.evpkg.registry import EventRegistry
from pua.model import (
    DIALOG_EVENT,
    DIALOG_PUBLISH,
    INSERT_TYPE,
    MSGSUM_EVENT,
    PRESENCE_EVENT,
    PWINFO_EVENT,
    RPC_PUBLISH,
    UL_PUBLISH,
    UPDATE_TYPE,
    PublishInfo,
)
from pua.sip import Request, Response
from pua.ua import OutgoingRequest, PublishEngine, PublishOutcome
from pua.ua.publish import POLICY, Action, Op, ReplyClass, classify
from tests.presence_stub import PresenceStub, answer

URI = "sip:alice@example.com"
PIDF = (
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com">'
    '<tuple id="{tid}"><status><basic>{basic}</basic></status></tuple></presence>'
)
DLG = (
    '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" '
    'entity="sip:alice@example.com"><dialog id="d1"><state>{state}</state></dialog></dialog-info>'
)


def pidf(basic: str = "open", tid: str = "t1") -> str:
    return PIDF.format(tid=tid, basic=basic)


def info(**kw: object) -> PublishInfo:
    args: dict[str, object] = {
        "pres_uri": URI,
        "event": PRESENCE_EVENT,
        "source_flag": UL_PUBLISH,
        "body": pidf(),
    }
    args.update(kw)
    return PublishInfo(**args)  # type: ignore[arg-type]


class Harness:
    """An engine, a clock, and the network between it and the tests."""

    def __init__(self, **config: object) -> None:
        versions = {
            k: bool(config.pop(k))
            for k in ("dlginfo_increase_version", "reginfo_increase_version")
            if k in config
        }
        self.config = PuaConfig(**config, **versions)  # type: ignore[arg-type]
        self.engine = PublishEngine(self.config, EventRegistry(**versions), random.Random(7))
        self.now = 1000.0
        self.outcomes: list[PublishOutcome] = []
        self.in_flight: dict[int, OutgoingRequest] = {}

    def publish(self, **kw: object) -> int:
        ticket = self.engine.publish(info(**kw), self.now)
        self._collect()
        return ticket

    def _collect(self) -> list[OutgoingRequest]:
        out = self.engine.requests_to_send()
        for item in out:
            self.in_flight[item.token] = item
        self.outcomes.extend(self.engine.events())
        return out

    def sent(self) -> list[OutgoingRequest]:
        """Requests in flight, oldest first."""
        return list(self.in_flight.values())

    def only(self) -> OutgoingRequest:
        (item,) = self.in_flight.values()
        return item

    def reply(self, item: OutgoingRequest, response: Response, *, local: bool = False) -> None:
        del self.in_flight[item.token]
        self.engine.handle_response(item.token, response, self.now, local=local)
        self._collect()

    def answer(self, status: int, **kw: object) -> Request:
        item = self.only()
        self.reply(item, answer(item.request, status, **kw))  # type: ignore[arg-type]
        return item.request

    def advance_to_timer(self) -> float:
        when = self.engine.get_timer()
        assert when is not None
        self.now = when
        self.engine.handle_timer(self.now)
        self._collect()
        return when

    def outcome(self, ticket: int | None) -> PublishOutcome:
        (found,) = [o for o in self.outcomes if o.ticket == ticket]
        return found


def published(h: Harness, etag: str = "e1", expires: int = 3600) -> int:
    ticket = h.publish()
    h.answer(200, etag=etag, expires=expires)
    return ticket


# ------------------------------------------------------------ requests
def test_initial_publish_carries_the_body_and_no_if_match() -> None:
    h = Harness()
    h.publish()
    item = h.only()
    req = item.request
    assert req.method == "PUBLISH"
    assert req.uri == URI
    assert req.to.uri == URI
    assert req.from_.uri == URI
    assert req.from_.tag
    assert req.event is not None
    assert req.event.package == "presence"
    assert req.expires == 3600  # default_expires, without Kamailio's +1
    assert req.sip_if_match is None
    assert req.headers.get("Content-Type") == "application/pidf+xml"
    assert b"<basic>open</basic>" in req.body
    assert req.max_forwards == 70
    assert item.destination is None


def test_expires_plus_one_is_kamailios_option() -> None:
    h = Harness(expires_plus_one=True)
    h.publish(expires=600)
    assert h.only().request.expires == 601


def test_each_publish_has_a_new_call_id_and_tag() -> None:
    h = Harness()
    h.publish()
    first = h.answer(200, etag="e1", expires=3600)
    h.publish(body=pidf("closed"))
    second = h.only().request
    assert first.call_id != second.call_id
    assert first.from_.tag != second.from_.tag


# ------------------------------------------------------------ 2xx row
def test_2xx_stores_etag_and_granted_expires() -> None:
    h = Harness()
    ticket = h.publish()
    h.answer(200, etag="abc", expires=120)
    out = h.outcome(ticket)
    assert out.ok
    assert out.status == 200
    assert out.etag == "abc"
    assert out.expires == 120
    assert out.sent_etag is None
    (record,) = h.engine.publications()
    assert record.etag == "abc"
    assert record.expires_at == h.now + 120


def test_2xx_without_expires_uses_the_requested_value() -> None:
    h = Harness()
    ticket = h.publish(expires=900)
    h.answer(200, etag="abc")
    assert h.outcome(ticket).expires == 900
    (record,) = h.engine.publications()
    assert record.expires_at == h.now + 900


def test_2xx_without_sip_etag_is_a_failure_reported() -> None:
    h = Harness()
    ticket = h.publish()
    h.answer(200, expires=3600)
    out = h.outcome(ticket)
    assert not out.ok
    assert out.ended
    assert "SIP-ETag" in out.reason
    assert len(h.engine) == 0


def test_refresh_goes_out_between_80_and_90_percent_without_body() -> None:
    h = Harness()
    published(h, "e1", 1000)
    start = h.now
    when = h.advance_to_timer()
    assert start + 800 <= when <= start + 900
    refresh = h.only().request
    assert refresh.sip_if_match == "e1"
    assert refresh.body == b""
    assert "Content-Type" not in refresh.headers
    assert refresh.expires == 3600
    h.answer(200, etag="e2", expires=1000)
    out = h.outcome(None)
    assert out.op == "refresh"
    assert out.etag == "e2"


def test_short_grants_are_refreshed_before_the_margin() -> None:
    h = Harness(refresh_margin=5.0)
    published(h, "e1", 20)
    start = h.now
    when = h.advance_to_timer()
    assert when <= start + 15
    assert when < start + 20


def test_refresh_jitter_spreads_many_publications() -> None:
    h = Harness()
    for n in range(50):
        h.publish(pres_uri=f"sip:u{n}@example.com")
    for item in h.sent():
        h.reply(item, answer(item.request, 200, etag=f"e{item.token}", expires=1000))
    deadlines = {round(r.refresh_at, 3) for r in h.engine.publications()}
    assert len(deadlines) > 40


# ------------------------------------------------------------ modify / remove
def test_modify_sends_the_new_body_with_if_match() -> None:
    h = Harness()
    published(h, "e1")
    ticket = h.publish(body=pidf("closed"))
    req = h.only().request
    assert req.sip_if_match == "e1"
    assert b"closed" in req.body
    h.answer(200, etag="e2", expires=3600)
    assert h.outcome(ticket).etag == "e2"
    assert h.outcome(ticket).sent_etag == "e1"


def test_remove_sends_expires_zero_without_body_and_forgets() -> None:
    h = Harness(min_expires=300)
    published(h, "e1")
    ticket = h.publish(expires=0, body=pidf("closed"))
    req = h.only().request
    assert req.expires == 0  # never min_expires (Kamailio bug)
    assert req.sip_if_match == "e1"
    assert req.body == b""
    h.answer(200, expires=0)
    out = h.outcome(ticket)
    assert out.ok
    assert out.ended
    assert len(h.engine) == 0
    assert h.engine.get_timer() is None


def test_removing_an_unknown_publication_sends_nothing() -> None:
    h = Harness()
    ticket = h.publish(expires=0)
    assert h.sent() == []
    out = h.outcome(ticket)
    assert out.status is None
    assert out.ok


def test_body_less_publish_refreshes_an_existing_publication() -> None:
    h = Harness()
    published(h, "e1")
    h.publish(body=None, expires=60)
    req = h.only().request
    assert req.sip_if_match == "e1"
    assert req.expires == 60
    assert req.body == b""


# ------------------------------------------------------------ refusals
def test_refusals_change_nothing() -> None:
    h = Harness()
    published(h, "e1")
    (record,) = h.engine.publications()
    before = (record.body, record.version, record.etag)
    with pytest.raises(NoBodyError) as no_body:
        h.publish(pres_uri="sip:bob@example.com", body=None)
    assert no_body.value.code == -10
    with pytest.raises(UnknownETagError) as etag:
        h.publish(etag="nope")
    assert etag.value.code == 418
    with pytest.raises(UnknownEventError):
        h.publish(event=1 << 20)
    with pytest.raises(PublishError, match="SUBSCRIBE-only"):
        h.publish(event=PWINFO_EVENT, pres_uri="sip:w@example.com")
    with pytest.raises(PublishError, match="pres_uri"):
        h.publish(pres_uri="mailto:alice@example.com")
    with pytest.raises(PublishError, match="source_flag"):
        h.publish(source_flag=0)
    with pytest.raises(PublishError, match="body"):
        h.publish(body="<presence")
    with pytest.raises(PublishError, match="extra_headers"):
        h.publish(extra_headers="Expires: 5\r\n")
    assert (record.body, record.version, record.etag) == before
    assert h.sent() == []


# ------------------------------------------------------------ coalescing
def test_100_concurrent_updates_coalesce_last_body_wins() -> None:
    h = Harness()
    stub = PresenceStub()
    tickets = [h.publish(body=pidf(f"note{n}")) for n in range(100)]
    assert len(h.sent()) == 1
    while h.in_flight:
        assert len(h.in_flight) == 1
        item = h.only()
        h.reply(item, stub.handle(item.request))
    assert 412 not in stub.statuses
    assert len(stub.seen) == 2  # the initial, then one modify with the newest body
    (body,) = stub.bodies(URI)
    assert b"note99" in body
    assert sorted(o.ticket for o in h.outcomes if o.ticket) == tickets
    assert all(o.ok for o in h.outcomes)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 50), st.none()), min_size=1, max_size=60))
def test_random_interleavings_never_overlap_and_converge(steps: list[int | None]) -> None:
    h = Harness()
    stub = PresenceStub()
    last = None
    tickets = []
    for step in steps:
        if step is None:
            if h.in_flight:
                item = h.only()
                h.reply(item, stub.handle(item.request))
        else:
            last = f"v{step}x"
            tickets.append(h.publish(body=pidf(last)))
        assert len(h.in_flight) <= 1
    while h.in_flight:
        item = h.only()
        h.reply(item, stub.handle(item.request))
    assert 412 not in stub.statuses
    if last is not None:
        (body,) = stub.bodies(URI)
        assert last.encode() in body
    assert sorted(o.ticket for o in h.outcomes if o.ticket) == tickets


def test_remove_while_initial_in_flight_removes_after_the_2xx() -> None:
    h = Harness()
    first = h.publish()
    second = h.publish(expires=0)
    h.answer(200, etag="e1", expires=3600)
    assert h.outcome(first).ok
    req = h.only().request
    assert req.expires == 0
    assert req.sip_if_match == "e1"
    h.answer(200, expires=0)
    assert h.outcome(second).ended
    assert len(h.engine) == 0


# ------------------------------------------------------------ 412 row
def test_412_on_modify_republishes_the_stored_body_as_new() -> None:
    h = Harness()
    published(h, "e1")
    ticket = h.publish(body=pidf("closed"))
    h.answer(412)
    again = h.only().request
    assert again.sip_if_match is None
    assert b"closed" in again.body
    h.answer(200, etag="e9", expires=3600)
    out = h.outcome(ticket)
    assert out.ok
    assert out.etag == "e9"
    assert h.engine.stats["412-recoveries"] == 1


def test_412_on_refresh_republishes_the_stored_body() -> None:
    h = Harness()
    published(h, "e1", 100)
    h.advance_to_timer()
    h.answer(412)
    again = h.only().request
    assert again.sip_if_match is None
    assert b"<basic>open</basic>" in again.body
    h.answer(200, etag="e2", expires=100)
    (record,) = h.engine.publications()
    assert record.etag == "e2"


def test_412_chain_is_bounded_and_backs_off() -> None:
    # a server that forgets every entity-tag: each modify 412s, each new
    # publication is accepted
    h = Harness(max_412_attempts=2)
    published(h, "e1")
    first = h.publish(body=pidf("closed"))
    h.answer(412)
    h.answer(200, etag="e2", expires=3600)
    assert h.outcome(first).ok
    second = h.publish(body=pidf("open"))
    h.answer(412)
    assert h.sent() == []  # the second recovery in a row waits
    before = h.now
    assert h.advance_to_timer() > before
    assert h.only().request.sip_if_match is None
    h.answer(200, etag="e3", expires=3600)
    assert h.outcome(second).ok
    third = h.publish(body=pidf("closed"))
    h.answer(412)
    out = h.outcome(third)
    assert not out.ok
    assert out.ended
    assert h.sent() == []
    assert len(h.engine) == 0


def test_412_to_a_new_publication_fails_at_once() -> None:
    h = Harness()
    published(h, "e1")
    ticket = h.publish(body=pidf("closed"))
    h.answer(412)
    h.answer(412)
    assert not h.outcome(ticket).ok
    assert h.sent() == []


# ------------------------------------------------------------ 423 row
def test_423_retries_with_min_expires() -> None:
    h = Harness(default_expires=60)
    ticket = h.publish()
    assert h.only().request.expires == 60
    h.answer(423, headers=[("Min-Expires", "300")])
    again = h.only().request
    assert again.expires == 300
    h.answer(200, etag="e1", expires=300)
    assert h.outcome(ticket).ok
    # refreshes keep asking at least what the server wants
    h.advance_to_timer()
    assert h.only().request.expires == 300


def test_423_without_min_expires_fails() -> None:
    h = Harness()
    ticket = h.publish(expires=60)
    h.answer(423)
    out = h.outcome(ticket)
    assert out.status == 423
    assert out.ended
    assert h.sent() == []


# ------------------------------------------------------------ 3xx row
def test_3xx_tries_each_contact_once_by_q() -> None:
    h = Harness()
    ticket = h.publish()
    h.answer(
        302,
        headers=[("Contact", "<sip:a@one.example>;q=0.5, <sip:a@two.example>;q=0.9")],
    )
    assert h.only().request.uri == "sip:a@two.example"
    h.answer(404)
    assert h.only().request.uri == "sip:a@one.example"
    h.answer(302, headers=[("Contact", "<sip:a@three.example>")])
    out = h.outcome(ticket)
    assert not out.ok
    assert h.sent() == []
    assert len(h.engine) == 0


def test_3xx_target_is_kept_for_refreshes() -> None:
    h = Harness()
    h.publish()
    h.answer(301, headers=[("Contact", "<sip:a@moved.example>")])
    h.answer(200, etag="e1", expires=100)
    h.advance_to_timer()
    assert h.only().request.uri == "sip:a@moved.example"


# ------------------------------------------------------------ transient row
@pytest.mark.parametrize("status", [408, 500, 503, 504])
def test_transient_failures_back_off_and_retry(status: int) -> None:
    h = Harness(retry_initial=2.0, retry_max=60.0)
    ticket = h.publish()
    h.answer(status)
    out = h.outcome(ticket)
    assert out.status == status
    assert out.retrying
    assert not out.ended
    gaps = []
    for _ in range(8):
        before = h.now
        h.advance_to_timer()
        gaps.append(h.now - before)
        h.answer(status)
    assert all(1.0 <= g <= 60.0 for g in gaps)
    assert gaps[3] > gaps[0]
    assert max(gaps) <= 60.0
    h.advance_to_timer()
    h.answer(200, etag="e1", expires=3600)
    (record,) = h.engine.publications()
    assert record.etag == "e1"
    assert record.failures == 0


def test_local_timeout_is_reported_as_408_and_retried() -> None:
    h = Harness()
    ticket = h.publish()
    item = h.only()
    h.reply(item, answer(item.request, 408), local=True)
    out = h.outcome(ticket)
    assert out.status == 408
    assert out.local
    assert out.response is None
    assert out.retrying
    h.advance_to_timer()
    assert h.only().request.sip_if_match is None


def test_retry_after_is_honoured() -> None:
    h = Harness(retry_initial=1.0)
    h.publish()
    h.answer(503, headers=[("Retry-After", "120")])
    start = h.now
    assert h.advance_to_timer() >= start + 120


def test_modify_lost_to_backoff_is_sent_again_with_newest_body() -> None:
    h = Harness()
    published(h, "e1")
    h.publish(body=pidf("closed"))
    h.answer(500)
    h.publish(body=pidf("open", tid="t1"))
    assert h.sent() == []  # waits for the backoff
    h.advance_to_timer()
    req = h.only().request
    assert req.sip_if_match == "e1"
    assert b"open" in req.body


def test_publication_lapsed_during_backoff_is_published_anew() -> None:
    h = Harness(retry_initial=50.0, retry_max=50.0)
    published(h, "e1", 60)
    h.advance_to_timer()  # refresh
    h.answer(503)
    h.advance_to_timer()
    (record,) = h.engine.publications()
    if h.now >= record.expires_at:
        assert h.only().request.sip_if_match is None
    else:
        assert h.only().request.sip_if_match == "e1"


# ------------------------------------------------------------ other failures
@pytest.mark.parametrize("status", [400, 403, 404, 405, 489, 603])
def test_other_failures_end_the_publication(status: int) -> None:
    h = Harness()
    published(h, "e1")
    ticket = h.publish(body=pidf("closed"))
    h.answer(status)
    out = h.outcome(ticket)
    assert out.status == status
    assert out.ended
    assert len(h.engine) == 0
    assert h.engine.get_timer() is None


def test_failed_initial_never_touches_another_publication() -> None:
    h = Harness()
    published(h, "e1")
    ticket = h.publish(id="other", flag=INSERT_TYPE)
    h.answer(404)
    assert h.outcome(ticket).ended
    (record,) = h.engine.publications()
    assert record.etag == "e1"
    assert record.id == ""


def test_nothing_loops_without_bound_on_a_broken_server() -> None:
    h = Harness(retry_initial=1.0, retry_max=4.0)
    ticket = h.publish(expires=100)
    sent = 0
    while h.in_flight or h.engine.get_timer() is not None:
        if not h.in_flight:
            h.advance_to_timer()
            continue
        sent += 1
        h.answer(503)
        assert sent < 200
    assert h.outcome(ticket).status == 503
    assert len(h.engine) == 0  # the lifetime ended


# ------------------------------------------------------------ expires
def test_finite_lifetime_ends_with_a_final_remove() -> None:
    h = Harness()
    h.publish(expires=100)
    assert h.only().request.expires == 100
    # the server keeps it longer than asked (as after a 423)
    h.answer(200, etag="e1", expires=300)
    start = h.now
    assert h.advance_to_timer() == start + 100
    req = h.only().request
    assert req.expires == 0
    assert req.sip_if_match == "e1"
    h.answer(200, expires=0)
    assert len(h.engine) == 0
    assert h.outcome(None).ended


def test_finite_lifetime_granted_in_full_lapses_without_a_request() -> None:
    h = Harness()
    h.publish(expires=100)
    h.answer(200, etag="e1", expires=100)
    start = h.now
    assert h.advance_to_timer() == start + 100
    assert h.sent() == []
    assert len(h.engine) == 0


def test_finite_lifetime_shorter_grant_refreshes_the_remainder() -> None:
    h = Harness()
    h.publish(expires=1000)
    h.answer(200, etag="e1", expires=300)
    start = h.now
    h.advance_to_timer()
    req = h.only().request
    assert req.expires is not None
    assert 0 < req.expires <= 1000 - (h.now - start) + 1


def test_final_remove_can_be_turned_off() -> None:
    h = Harness(final_remove=False)
    h.publish(expires=100)
    h.answer(200, etag="e1", expires=300)
    h.advance_to_timer()
    assert h.sent() == []
    assert len(h.engine) == 0


def test_forever_keeps_refreshing() -> None:
    h = Harness()
    published(h, "e1", 600)
    for n in range(5):
        h.advance_to_timer()
        req = h.only().request
        assert req.expires == 3600
        h.answer(200, etag=f"r{n}", expires=600)
    assert len(h.engine) == 1


def test_min_expires_is_a_floor_for_requests() -> None:
    h = Harness(min_expires=300)
    h.publish(expires=10)
    assert h.only().request.expires == 300


# ------------------------------------------------------------ keys and lookups
def test_id_distinguishes_publications_and_empty_id_matches_any() -> None:
    h = Harness()
    h.publish(id="a")
    h.answer(200, etag="ea", expires=3600)
    h.publish(id="b", body=pidf(tid="t2"))
    h.answer(200, etag="eb", expires=3600)
    assert len(h.engine) == 2
    h.publish(id="", body=pidf("closed"))
    assert h.only().request.sip_if_match == "eb"  # newest first


def test_flags_match_bitwise_and_insert_type_forces_new() -> None:
    h = Harness()
    published(h, "e1")
    h.publish(source_flag=UL_PUBLISH | RPC_PUBLISH, body=pidf("closed"), flag=UPDATE_TYPE)
    assert h.only().request.sip_if_match == "e1"
    h.answer(200, etag="e2", expires=3600)
    h.publish(flag=INSERT_TYPE)
    assert h.only().request.sip_if_match is None
    h.answer(200, etag="e3", expires=3600)
    assert len(h.engine) == 2


def test_etag_selects_the_publication() -> None:
    h = Harness()
    h.publish(id="a")
    h.answer(200, etag="ea", expires=3600)
    h.publish(id="b", body=pidf(tid="t2"))
    h.answer(200, etag="eb", expires=3600)
    h.publish(id="", etag="ea", body=None)
    assert h.only().request.sip_if_match == "ea"


def test_events_do_not_mix() -> None:
    h = Harness()
    published(h, "e1")
    h.publish(event=MSGSUM_EVENT, body="Messages-Waiting: yes\r\n")
    req = h.only().request
    assert req.sip_if_match is None
    assert req.headers.get("Content-Type") == "application/simple-message-summary"


# ------------------------------------------------------------ routing and headers
def test_outbound_proxy_is_kept_for_refreshes_and_module_default_used() -> None:
    h = Harness(outbound_proxy="sip:proxy.example;lr")
    h.publish()
    assert h.only().destination == "sip:proxy.example;lr"
    h.answer(200, etag="e1", expires=100)
    h.publish(pres_uri="sip:bob@example.com", outbound_proxy="sip:other.example")
    item = next(i for i in h.sent() if i.request.uri == "sip:bob@example.com")
    assert item.destination == "sip:other.example"
    h.reply(item, answer(item.request, 200, etag="b1", expires=100))
    h.advance_to_timer()
    for item in h.sent():
        if item.request.uri == "sip:bob@example.com":
            assert item.destination == "sip:other.example"


def test_extra_headers_go_on_every_request() -> None:
    h = Harness()
    h.publish(extra_headers="X-Sender: sip:bla@example.com\r\nPriority: urgent\r\n")
    assert h.only().request.headers.get("X-Sender") == "sip:bla@example.com"
    h.answer(200, etag="e1", expires=100)
    h.advance_to_timer()
    assert h.only().request.headers.get("Priority") == "urgent"


# ------------------------------------------------------------ bodies
def test_pidf_tuple_id_generated_then_kept() -> None:
    h = Harness()
    h.publish(body=pidf().replace(' id="t1"', ""))
    first = h.only().request.body
    h.answer(200, etag="e1", expires=3600)
    (record,) = h.engine.publications()
    assert record.tuple_id
    assert record.tuple_id.encode() in first
    h.publish(body=pidf("closed").replace(' id="t1"', ""))
    assert record.tuple_id.encode() in h.only().request.body


def test_dialog_versions_increase_and_survive_412_recovery() -> None:
    h = Harness(dlginfo_increase_version=True)

    def version(req: Request) -> str:
        found = re.search(r'<dialog-info[^>]* version="(\d+)"', req.body.decode())
        assert found is not None
        return found.group(1)

    h.publish(event=DIALOG_EVENT, source_flag=DIALOG_PUBLISH, body=DLG.format(state="early"))
    assert version(h.only().request) == "0"
    h.answer(200, etag="e1", expires=3600)
    h.publish(event=DIALOG_EVENT, source_flag=DIALOG_PUBLISH, body=DLG.format(state="confirmed"))
    assert version(h.only().request) == "1"
    h.answer(412)
    # the re-publication counts on: a watcher never sees the version go back
    assert version(h.only().request) == "2"
    h.answer(200, etag="e2", expires=3600)
    h.publish(event=DIALOG_EVENT, source_flag=DIALOG_PUBLISH, body=DLG.format(state="terminated"))
    assert version(h.only().request) == "3"


def test_dialog_versions_untouched_without_the_option() -> None:
    h = Harness()
    h.publish(event=DIALOG_EVENT, source_flag=DIALOG_PUBLISH, body=DLG.format(state="early"))
    h.answer(200, etag="e1", expires=3600)
    h.publish(event=DIALOG_EVENT, source_flag=DIALOG_PUBLISH, body=DLG.format(state="confirmed"))
    assert b'version="0"' in h.only().request.body


# ------------------------------------------------------------ the table itself
def test_policy_covers_every_request_kind_and_reply_class() -> None:
    for op in Op:
        for cls in ReplyClass:
            assert (op, cls) in POLICY
    assert POLICY[(Op.MODIFY, ReplyClass.CONDITIONAL)] is Action.REPUBLISH
    assert POLICY[(Op.REMOVE, ReplyClass.CONDITIONAL)] is Action.FORGET


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (200, ReplyClass.SUCCESS),
        (202, ReplyClass.SUCCESS),
        (302, ReplyClass.REDIRECT),
        (401, ReplyClass.FATAL),
        (407, ReplyClass.FATAL),
        (408, ReplyClass.TRANSIENT),
        (412, ReplyClass.CONDITIONAL),
        (423, ReplyClass.TOO_BRIEF),
        (480, ReplyClass.FATAL),
        (503, ReplyClass.TRANSIENT),
        (600, ReplyClass.FATAL),
    ],
)
def test_classify(status: int, cls: ReplyClass) -> None:
    assert classify(status) is cls


def test_stale_token_is_ignored() -> None:
    h = Harness()
    h.publish()
    item = h.only()
    h.engine.handle_response(999, answer(item.request, 200, etag="x"), h.now, local=False)
    assert h.engine.requests_to_send() == []
    assert h.engine.in_flight == 1


def test_expires_is_never_one_more_than_asked() -> None:
    # now + 600 rounds up just below a power of two of loop.time()
    h = Harness()
    h.now = 3900.123456789
    h.publish(expires=600)
    assert h.only().request.expires == 600
