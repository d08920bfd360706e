"""What the engines give a store (changed and ended records) and how they
take records back after a restart: publications refresh with their stored
entity-tag and re-publish the stored body on 412; subscriptions refresh in
their stored dialog and make a new one on 481."""

from __future__ import annotations

import random

from pua.config import PuaConfig
from pua.evpkg.registry import EventRegistry
from pua.model import (
    DIALOG_EVENT,
    DIALOG_PUBLISH,
    PRESENCE_EVENT,
    RPC_SUBSCRIBE,
    UL_PUBLISH,
    PublishInfo,
)
from pua.ua import PublishEngine, SubscribeEngine
from tests.presence_stub import answer
from tests.ua.test_publish import Harness, pidf
from tests.ua.test_subscribe import NOTIFIER
from tests.ua.test_subscribe import Harness as SubHarness

BODY = pidf("open").encode()


def restored_publication(now: float, *, etag: str | None, expires_at: float) -> PublishEngine:
    engine = PublishEngine(PuaConfig(), EventRegistry(), random.Random(5))
    record = engine.restore(
        pres_uri="sip:alice@example.com",
        event=PRESENCE_EVENT,
        source_flag=UL_PUBLISH,
        id="UL_PUBLISH.x",
        etag=etag,
        expires_at=expires_at,
        desired_expires=0.0,
        body=BODY,
        content_type="application/pidf+xml",
        tuple_id="t1",
        version=7,
        extra_headers="X-Node: a\r\n",
        outbound_proxy="sip:proxy.example",
        row_id=42,
        now=now,
    )
    assert record is not None
    assert record.row_id == 42
    return engine


def test_changes_are_tracked_only_when_asked() -> None:
    h = Harness()
    h.publish()
    assert h.engine.take_changes() == ([], [])
    h.engine.track_changes = True
    h.answer(200, etag="e1", expires=600)
    ticket = h.publish(expires=0)
    changed, removed = h.engine.take_changes()
    assert [r.etag for r in changed] == ["e1"]
    assert removed == []
    h.answer(200, expires=0)
    assert h.outcome(ticket).ended
    changed, removed = h.engine.take_changes()
    assert changed == []
    assert [r.pres_uri for r in removed] == ["sip:alice@example.com"]


def test_restored_publication_refreshes_with_its_stored_etag() -> None:
    engine = restored_publication(1000.0, etag="a.1.2.3", expires_at=1600.0)
    assert engine.requests_to_send() == []
    when = engine.get_timer()
    assert when is not None
    assert 1000 < when < 1600
    engine.handle_timer(when)
    (item,) = engine.requests_to_send()
    assert item.request.sip_if_match == "a.1.2.3"
    assert item.request.body == b""
    assert item.request.headers.get("X-Node") == "a"
    assert item.destination == "sip:proxy.example"
    # the server lost it: the stored body goes out as a new publication
    engine.handle_response(item.token, answer(item.request, 412), when, local=False)
    (again,) = engine.requests_to_send()
    assert again.request.sip_if_match is None
    assert again.request.body == BODY


def test_restored_lapsed_publication_is_published_anew_at_once() -> None:
    engine = restored_publication(1000.0, etag="a.1.2.3", expires_at=900.0)
    (item,) = engine.requests_to_send()
    assert item.request.sip_if_match is None
    assert item.request.body == BODY


def test_restored_dialog_is_refreshed_in_the_dialog_then_recreated_on_481() -> None:
    engine = SubscribeEngine(PuaConfig(), EventRegistry(), random.Random(5))
    record = engine.restore(
        pres_uri="sip:alice@example.com",
        watcher_uri="sip:bob@example.com",
        contact="sip:bob@192.0.2.5",
        event=PRESENCE_EVENT,
        source_flag=RPC_SUBSCRIBE,
        id="",
        call_id="cid-9",
        local_tag="ours",
        remote_tag="theirs",
        route_set=("<sip:p1.example;lr>",),
        remote_target=NOTIFIER,
        requested_target=None,
        local_cseq=5,
        remote_cseq=3,
        expires_at=1600.0,
        desired_expires=0.0,
        extra_headers=None,
        outbound_proxy=None,
        row_id=7,
        now=1000.0,
    )
    assert record is not None
    when = engine.get_timer()
    assert when is not None
    engine.handle_timer(when)
    (item,) = engine.requests_to_send()
    req = item.request
    # the CSeq jumps ahead: the stored one may be behind the last one sent
    assert (req.call_id, req.from_.tag, req.to.tag) == ("cid-9", "ours", "theirs")
    assert req.cseq.seq > 5 + 1
    assert req.uri == NOTIFIER
    assert req.headers.get_all("Route") == ["<sip:p1.example;lr>"]
    engine.handle_response(item.token, answer(req, 481), when, local=False)
    engine.handle_timer(engine.get_timer() or when)
    (again,) = engine.requests_to_send()
    assert again.request.to.tag is None
    assert again.request.call_id != "cid-9"


def test_subscription_changes_are_tracked() -> None:
    h = SubHarness()
    h.engine.track_changes = True
    h.subscribe()
    h.answer(200)
    changed, _ = h.engine.take_changes()
    assert [r.remote_tag for r in changed] == ["ntag"]


def test_restored_dialog_info_version_keeps_counting() -> None:
    # the version counter is stored: after a restart it goes on from there
    engine = PublishEngine(
        PuaConfig(dlginfo_increase_version=True),
        EventRegistry(dlginfo_increase_version=True),
        random.Random(5),
    )
    body = (
        '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="7" state="full" '
        'entity="sip:alice@example.com"/>'
    )
    engine.restore(
        pres_uri="sip:alice@example.com",
        event=DIALOG_EVENT,
        source_flag=DIALOG_PUBLISH,
        id="",
        etag="e1",
        expires_at=1600.0,
        desired_expires=0.0,
        body=body.encode(),
        content_type=None,
        tuple_id=None,
        version=7,
        extra_headers=None,
        outbound_proxy=None,
        row_id=1,
        now=1000.0,
    )
    engine.publish(
        PublishInfo(
            pres_uri="sip:alice@example.com",
            event=DIALOG_EVENT,
            source_flag=DIALOG_PUBLISH,
            body=body.replace('version="7"', 'version="0"'),
        ),
        1001.0,
    )
    (item,) = engine.requests_to_send()
    assert item.request.sip_if_match == "e1"
    assert b'version="8"' in item.request.body
