"""Non-INVITE client transactions in the layer: timers E/F/K, matching,
absorption, reliable transports (RFC 3261 §17.1.2, §17.1.3, §18.1.2)."""

from __future__ import annotations

from typing import Any

import pytest

from pua.errors import LocalProtocolError
from pua.sip import parse_message
from pua.sip.address import Address
from pua.transaction import (
    MessageDropped,
    ResponseReceived,
    TimerSettings,
    TransactionLayer,
    TransactionTimedOut,
    TransportFailed,
)
from tests.helpers import PEER_TCP, PEER_UDP, FakeClock, dropped, make_request, reply, seeded


def make_layer(**kw: Any) -> TransactionLayer:
    return TransactionLayer(
        sent_by={"udp": ("127.0.0.1", 5060), "tcp": ("127.0.0.1", 5060)}, rng=seeded(), **kw
    )


def run_until(layer: TransactionLayer, clock: FakeClock, until: float) -> list[tuple[float, bytes]]:
    """Advance the clock deadline by deadline; return (time, data) sent."""
    sent: list[tuple[float, bytes]] = []
    while True:
        deadline = layer.get_timer()
        if deadline is None or deadline > until:
            break
        clock.now = deadline
        layer.handle_timer(clock.now)
        sent.extend((clock.now, out.data) for out in layer.datagrams_to_send())
    return sent


def test_send_request_adds_via_with_new_branch_and_rport() -> None:
    layer, clock = make_layer(), FakeClock()
    key = layer.send_request(make_request(), PEER_UDP, clock.now)
    (out,) = layer.datagrams_to_send()
    assert out.destination == PEER_UDP
    assert out.key == key
    sent = parse_message(out.data)
    via = sent.top_via
    # §8.1.1.7: the branch starts with the magic cookie; RFC 3581 rport
    assert via.branch == key
    assert key.startswith("z9hG4bK")
    assert via.rport is True
    assert (via.transport, via.host, via.port) == ("UDP", "127.0.0.1", 5060)


def test_every_request_gets_its_own_branch() -> None:
    layer, clock = make_layer(), FakeClock()
    keys = {layer.send_request(make_request(), PEER_UDP, clock.now) for _ in range(100)}
    assert len(keys) == 100


def test_udp_retransmissions_double_up_to_t2_until_timer_f() -> None:
    # §17.1.2.2: E starts at T1, doubles to T2; F = 64*T1 ends it
    layer, clock = make_layer(), FakeClock(0.0)
    key = layer.send_request(make_request(), PEER_UDP, clock.now)
    first = layer.datagrams_to_send()[0].data
    sent = run_until(layer, clock, 40.0)
    times = [t for t, data in sent]
    assert all(data == first for _, data in sent)
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    (event,) = layer.events()
    assert isinstance(event, TransactionTimedOut)
    assert event.key == key
    assert clock.now == 32.0
    assert layer.client_count == 0
    assert layer.get_timer() is None


def test_provisional_response_moves_retransmissions_to_t2() -> None:
    layer, clock = make_layer(), FakeClock(0.0)
    layer.send_request(make_request(), PEER_UDP, clock.now)
    data = layer.datagrams_to_send()[0].data
    clock.now = 0.2
    layer.receive_datagram(reply(data, 100), PEER_UDP, clock.now)
    (event,) = layer.events()
    assert isinstance(event, ResponseReceived)
    assert event.response.status == 100
    # the E already armed (0.5) fires, then every T2
    times = [t for t, _ in run_until(layer, clock, 13.0)]
    assert times == [0.5, 4.5, 8.5, 12.5]


def test_final_response_is_passed_once_and_retransmissions_absorbed() -> None:
    layer, clock = make_layer(), FakeClock(0.0)
    key = layer.send_request(make_request(), PEER_UDP, clock.now)
    data = layer.datagrams_to_send()[0].data
    ok = reply(data, 200, headers=[("SIP-ETag", "e1"), ("Expires", "60")])
    layer.receive_datagram(ok, PEER_UDP, 0.1)
    layer.receive_datagram(ok, PEER_UDP, 0.2)
    events = layer.events()
    assert len(events) == 1
    assert isinstance(events[0], ResponseReceived)
    assert events[0].key == key
    assert events[0].response.sip_etag == "e1"
    assert layer.stats["response-retransmissions-absorbed"] == 1
    # no more retransmissions of the request after the final response
    assert run_until(layer, clock, 4.0) == []


def test_completed_transaction_lingers_t4_on_udp() -> None:
    layer, clock = make_layer(), FakeClock(0.0)
    layer.send_request(make_request(), PEER_UDP, clock.now)
    data = layer.datagrams_to_send()[0].data
    layer.receive_datagram(reply(data, 200), PEER_UDP, 1.0)
    assert layer.client_count == 1
    assert layer.get_timer() == 6.0  # Timer K = T4 = 5 s after completion
    run_until(layer, clock, 10.0)
    assert layer.client_count == 0
    # a late copy now matches nothing
    layer.receive_datagram(reply(data, 200), PEER_UDP, clock.now)
    (_, late) = layer.events()
    assert isinstance(late, MessageDropped)
    assert late.reason == "no-matching-transaction"


def test_tcp_has_no_retransmissions_and_no_timer_k() -> None:
    layer, clock = make_layer(), FakeClock(0.0)
    layer.send_request(make_request(), PEER_TCP, clock.now)
    data = layer.datagrams_to_send()[0].data
    assert parse_message(data).top_via.transport == "TCP"
    # only Timer F is armed on a reliable transport
    assert layer.get_timer() == 32.0
    layer.receive_datagram(reply(data, 200), PEER_TCP, 0.1)
    assert layer.client_count == 0
    assert layer.get_timer() is None


def test_tcp_timeout_without_any_retransmission() -> None:
    layer, clock = make_layer(), FakeClock(0.0)
    key = layer.send_request(make_request(), PEER_TCP, clock.now)
    layer.datagrams_to_send()
    assert run_until(layer, clock, 100.0) == []
    (event,) = layer.events()
    assert isinstance(event, TransactionTimedOut)
    assert event.key == key


def test_custom_timers_scale_the_schedule() -> None:
    layer, clock = make_layer(timers=TimerSettings(t1=0.1, t2=0.4, t4=1.0)), FakeClock(0.0)
    layer.send_request(make_request(), PEER_UDP, clock.now)
    layer.datagrams_to_send()
    times = [round(t, 6) for t, _ in run_until(layer, clock, 10.0)]
    assert times[:5] == [0.1, 0.3, 0.7, 1.1, 1.5]
    assert clock.now == pytest.approx(6.4)  # 64 * T1


def test_response_with_unknown_branch_is_dropped_with_reason() -> None:
    layer, clock = make_layer(), FakeClock()
    layer.send_request(make_request(), PEER_UDP, clock.now)
    data = layer.datagrams_to_send()[0].data
    forged = reply(data, 200).replace(b"branch=z9hG4bK", b"branch=z9hG4bKX")
    layer.receive_datagram(forged, PEER_UDP, clock.now)
    (event,) = layer.events()
    assert isinstance(event, MessageDropped)
    assert event.reason == "no-matching-transaction"
    assert layer.drops["no-matching-transaction"] == 1


def test_response_with_other_cseq_method_does_not_match() -> None:
    # §17.1.3: branch AND CSeq method must match
    layer, clock = make_layer(), FakeClock()
    layer.send_request(make_request(), PEER_UDP, clock.now)
    data = layer.datagrams_to_send()[0].data
    wrong = reply(data, 200).replace(b"10 PUBLISH", b"10 SUBSCRIBE")
    layer.receive_datagram(wrong, PEER_UDP, clock.now)
    assert dropped(layer) == ["no-matching-transaction"]


def test_response_with_foreign_sent_by_is_discarded() -> None:
    # §18.1.2: the top Via sent-by must be the one we inserted
    layer, clock = make_layer(), FakeClock()
    layer.send_request(make_request(), PEER_UDP, clock.now)
    data = layer.datagrams_to_send()[0].data
    wrong = reply(data, 200).replace(b"127.0.0.1:5060;branch", b"127.0.0.9:5060;branch")
    layer.receive_datagram(wrong, PEER_UDP, clock.now)
    assert dropped(layer) == ["sent-by-mismatch"]


def test_unparseable_response_is_dropped_with_codec_reason() -> None:
    layer, clock = make_layer(), FakeClock()
    layer.send_request(make_request(), PEER_UDP, clock.now)
    data = layer.datagrams_to_send()[0].data
    layer.receive_datagram(reply(data, 200).replace(b" 200 OK", b" 2000 OK"), PEER_UDP, clock.now)
    (event,) = layer.events()
    assert isinstance(event, MessageDropped)
    assert event.reason == "bad-status-code"
    assert layer.datagrams_to_send() == []


def test_transport_error_fails_the_transaction() -> None:
    # §8.1.3.1: a transport error is reported to the TU (treated as 503)
    layer, clock = make_layer(), FakeClock()
    key = layer.send_request(make_request(), PEER_TCP, clock.now)
    out = layer.datagrams_to_send()[0]
    layer.transport_error(out.key, clock.now, "connection refused")
    (event,) = layer.events()
    assert isinstance(event, TransportFailed)
    assert (event.key, event.destination, event.reason) == (key, PEER_TCP, "connection refused")
    assert layer.client_count == 0
    assert layer.get_timer() is None


def test_transport_error_after_completion_is_ignored() -> None:
    layer, clock = make_layer(), FakeClock()
    key = layer.send_request(make_request(), PEER_UDP, clock.now)
    data = layer.datagrams_to_send()[0].data
    layer.receive_datagram(reply(data, 200), PEER_UDP, clock.now)
    layer.events()
    layer.transport_error(key, clock.now, "late")
    assert layer.events() == []


def test_abandon_forgets_without_reporting() -> None:
    layer, clock = make_layer(), FakeClock(0.0)
    key = layer.send_request(make_request(), PEER_UDP, clock.now)
    layer.datagrams_to_send()
    assert layer.abandon(key) is True
    assert layer.abandon(key) is False
    assert run_until(layer, clock, 100.0) == []
    assert layer.events() == []


def test_invite_and_unknown_transports_are_refused() -> None:
    layer, clock = make_layer(), FakeClock()
    with pytest.raises(LocalProtocolError):
        layer.send_request(make_request("INVITE"), PEER_UDP, clock.now)
    with pytest.raises(LocalProtocolError):
        layer.send_request(make_request(), Address("tls", "127.0.0.1", 5061), clock.now)


@pytest.mark.parametrize(("t1", "t2", "t4"), [(0, 4, 5), (1, 0.5, 5), (0.5, 4, -1)])
def test_timer_settings_are_validated(t1: float, t2: float, t4: float) -> None:
    with pytest.raises(LocalProtocolError):
        TimerSettings(t1=t1, t2=t2, t4=t4)


def test_many_transactions_each_complete_independently() -> None:
    layer, clock = make_layer(), FakeClock(0.0)
    for i in range(50):
        layer.send_request(make_request(call_id=f"c{i}"), PEER_UDP, clock.now)
    outs = layer.datagrams_to_send()
    for out in reversed(outs):
        layer.receive_datagram(reply(out.data, 200), PEER_UDP, 0.1)
    events = layer.events()
    assert len(events) == 50
    assert {e.key for e in events if isinstance(e, ResponseReceived)} == {o.key for o in outs}
    run_until(layer, clock, 100.0)
    assert layer.client_count == 0


def test_abandon_a_completed_transaction() -> None:
    layer, clock = make_layer(), FakeClock()
    key = layer.send_request(make_request(), PEER_UDP, clock.now)
    data = layer.datagrams_to_send()[0].data
    layer.receive_datagram(reply(data, 200), PEER_UDP, clock.now)
    assert layer.client_count == 1  # Completed, absorbing for T4
    assert layer.abandon(key) is True
    assert layer.client_count == 0
    assert layer.get_timer() is None


def test_ipv6_sent_by_is_bracketed_and_matched() -> None:
    layer = TransactionLayer(sent_by={"udp": ("::1", 5060)}, rng=seeded())
    peer = Address("udp", "::1", 5070)
    key = layer.send_request(make_request(), peer, 0.0)
    data = layer.datagrams_to_send()[0].data
    assert parse_message(data).top_via.host == "[::1]"
    layer.receive_datagram(reply(data, 200), peer, 0.1)
    (event,) = layer.events()
    assert isinstance(event, ResponseReceived)
    assert event.key == key
