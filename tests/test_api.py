"""PuaAPI on real loopback sockets, against a presence server made of a
SipEndpoint and the sans-IO stub.  Every async test runs on the stock loop
and on uvloop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pua import (
    DIALOG_EVENT,
    DIALOG_PUBLISH,
    PRESENCE_EVENT,
    RPC_ASYN_PUBLISH,
    UL_PUBLISH,
    NoBodyError,
    PuaAPI,
    PuaConfig,
    PublishInfo,
    PublishOutcome,
    UnknownETagError,
)
from pua.endpoint import EndpointConfig, SipEndpoint
from pua.errors import LocalProtocolError
from pua.sip import Request, Response
from pua.sip.address import Address
from pua.transaction import TimerSettings
from tests.presence_stub import PresenceStub
from tests.test_endpoint import silent_peer

FAST = TimerSettings(t1=0.02, t2=0.08, t4=0.1)  # Timer F = 1.28 s
BODY = (
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@127.0.0.1">'
    '<tuple id="t1"><status><basic>{}</basic></status></tuple></presence>'
)


class Server:
    """A presence server on a loopback UDP port."""

    def __init__(self, stub: PresenceStub) -> None:
        self.stub = stub
        self.endpoint = SipEndpoint(
            EndpointConfig(allow=("PUBLISH", "OPTIONS")), handler=self._handle
        )
        self.concurrent = 0
        self.max_concurrent = 0
        self.delay = 0.0
        self.seen = asyncio.Event()

    async def _handle(self, request: Request, source: Address) -> Response:
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        if self.delay:
            await asyncio.sleep(self.delay)  # a slow server, not a test timing
        self.concurrent -= 1
        self.seen.set()
        return self.stub.handle(request)

    @property
    def uri(self) -> str:
        return f"sip:127.0.0.1:{self.endpoint.local['udp'].port}"


def publish_info(server: Server, basic: str = "open", **kw: object) -> PublishInfo:
    args: dict[str, object] = {
        "pres_uri": "sip:alice@127.0.0.1",
        "event": PRESENCE_EVENT,
        "source_flag": UL_PUBLISH,
        "body": BODY.format(basic),
        "outbound_proxy": server.uri,
    }
    args.update(kw)
    return PublishInfo(**args)  # type: ignore[arg-type]


async def test_publish_is_awaited_to_its_outcome(server: Server) -> None:
    async with PuaAPI() as pua:
        outcome = await pua.send_publish(publish_info(server, expires=600))
        assert outcome.ok
        assert outcome.status == 200
        assert outcome.etag in server.stub.entries
        assert outcome.expires == 600
        (record,) = pua.publications()
        assert record["etag"] == outcome.etag
        assert record["pres_uri"] == "sip:alice@127.0.0.1"
        removed = await pua.send_publish(publish_info(server, expires=0, body=None))
        assert removed.ok
        assert removed.ended
        assert server.stub.entries == {}
        assert pua.publications() == []


async def test_fire_and_forget_still_completes(server: Server) -> None:
    done = asyncio.Event()
    seen: list[PublishOutcome] = []

    def callback(outcome: PublishOutcome, param: object) -> None:
        seen.append(outcome)
        done.set()

    async with PuaAPI() as pua:
        pua.register_puacb(UL_PUBLISH, callback)
        call = pua.send_publish(publish_info(server))
        assert not call.done()
        await asyncio.wait_for(done.wait(), 10)
        assert call.done()
        assert call.result() is seen[0]
        assert seen[0].ok


async def test_refusals_are_raised_at_once(server: Server) -> None:
    async with PuaAPI() as pua:
        with pytest.raises(NoBodyError):
            pua.send_publish(publish_info(server, body=None))
        with pytest.raises(UnknownETagError):
            pua.send_publish(publish_info(server, etag="zzz"))
    assert server.stub.seen == []
    with pytest.raises(LocalProtocolError):
        PuaAPI().send_publish(publish_info(server))


async def test_100_concurrent_updates_one_in_flight_last_wins(server: Server) -> None:
    server.delay = 0.005
    async with PuaAPI() as pua:
        calls = [pua.send_publish(publish_info(server, f"n{n}")) for n in range(100)]
        outcomes = await asyncio.gather(*calls)
    assert all(o.ok for o in outcomes)
    assert server.max_concurrent == 1
    assert 412 not in server.stub.statuses
    assert len(server.stub.seen) == 2
    (body,) = server.stub.bodies("sip:alice@127.0.0.1")
    assert b"n99" in body


async def test_callbacks_newest_first_any_mask_param_and_errors(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    order: list[tuple[str, object]] = []

    def first(outcome: PublishOutcome, param: object) -> None:
        order.append(("first", param))

    def broken(outcome: PublishOutcome, param: object) -> None:
        raise RuntimeError("callback bug")

    def last(outcome: PublishOutcome, param: object) -> None:
        order.append(("last", param))

    async def other(outcome: PublishOutcome, param: object) -> None:
        order.append(("other", param))

    async with PuaAPI() as pua:
        # DIALOG_PUBLISH is 1024: Kamailio cannot register it
        pua.register_puacb(DIALOG_PUBLISH | UL_PUBLISH, first, "p1")
        pua.register_puacb(DIALOG_PUBLISH, broken)
        pua.register_puacb(DIALOG_PUBLISH, last, {"k": 2})
        pua.register_puacb(RPC_ASYN_PUBLISH, other)
        dialog = (
            '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" '
            'state="full" entity="sip:alice@127.0.0.1"/>'
        )
        with caplog.at_level(logging.ERROR, logger="pua.callbacks"):
            outcome = await pua.send_publish(
                publish_info(server, event=DIALOG_EVENT, source_flag=DIALOG_PUBLISH, body=dialog)
            )
        assert outcome.ok
        assert order == [("last", {"k": 2}), ("first", "p1")]
        assert "callback bug" in caplog.text
        with pytest.raises(ValueError, match="types"):
            pua.register_puacb(0, first)


async def test_cb_param_comes_back(server: Server) -> None:
    marker = object()
    async with PuaAPI() as pua:
        outcome = await pua.send_publish(publish_info(server, cb_param=marker))
        assert outcome.cb_param is marker


async def test_timeout_is_a_local_408_and_retried() -> None:
    transport, silent, port = await silent_peer()
    try:
        config = PuaConfig(retry_initial=30.0, retry_max=60.0)
        async with PuaAPI(config, endpoint_config=EndpointConfig(timers=FAST)) as pua:
            info = PublishInfo(
                pres_uri="sip:alice@127.0.0.1",
                source_flag=UL_PUBLISH,
                body=BODY.format("open"),
                outbound_proxy=f"sip:127.0.0.1:{port}",
            )
            outcome = await asyncio.wait_for(pua.send_publish(info), 10)
            assert outcome.status == 408
            assert outcome.local
            assert outcome.response is None
            assert outcome.retrying
            (record,) = pua.publications()
            assert record["retry_in"] is not None
            assert record["failures"] == 1
        assert len(silent.received) > 1  # Timer E retransmissions went out
    finally:
        transport.close()


async def test_refresh_goes_out_on_its_own(server: Server) -> None:
    server.stub.max_expires = 2  # the server grants 2 s; refresh before
    refreshed: list[PublishOutcome] = []
    got = asyncio.Event()

    def on_refresh(outcome: PublishOutcome, param: object) -> None:
        if outcome.ticket is None:
            refreshed.append(outcome)
            got.set()

    config = PuaConfig(callbacks_on_refresh=True, refresh_margin=0.5)
    async with PuaAPI(config) as pua:
        pua.register_puacb(UL_PUBLISH, on_refresh)
        first = await pua.send_publish(publish_info(server))
        assert first.expires == 2
        await asyncio.wait_for(got.wait(), 10)
    refresh = server.stub.seen[1]
    assert refresh.sip_if_match == first.etag
    assert refresh.body == b""
    assert refreshed[0].op == "refresh"
    assert refreshed[0].ok
