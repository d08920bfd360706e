"""Non-INVITE server transactions in the layer: matching (§17.2.3), Via
stamping and response routing (§18.2.1, §18.2.2, RFC 3581), Timer J,
retransmission handling, and the requests pua answers by itself."""

from __future__ import annotations

from typing import Any

import pytest

from pua.errors import LocalProtocolError
from pua.sip import make_response
from pua.sip.address import Address
from pua.transaction import MessageDropped, RequestReceived, TransactionLayer, TransportFailed
from tests.helpers import PEER_UDP, FakeClock, dropped, incoming, parse_response, seeded


def make_layer(**kw: Any) -> TransactionLayer:
    return TransactionLayer(
        sent_by={"udp": ("127.0.0.1", 5060), "tcp": ("127.0.0.1", 5060)},
        rng=seeded(),
        allow=("NOTIFY", "OPTIONS"),
        **kw,
    )


def receive(layer: TransactionLayer, data: bytes, source: Address, now: float) -> RequestReceived:
    layer.receive_datagram(data, source, now)
    (event,) = layer.events()
    assert isinstance(event, RequestReceived)
    return event


def test_request_is_passed_up_with_received_and_rport_stamped() -> None:
    # RFC 3581 §4: rport asked for -> fill it and add received
    layer, clock = make_layer(), FakeClock()
    source = Address("udp", "192.0.2.7", 40000)
    event = receive(layer, incoming(via_host="10.0.0.1", via_port=5070), source, clock.now)
    via = event.request.top_via
    assert via.rport == 40000
    assert via.received == "192.0.2.7"
    assert event.source == source


def test_response_goes_to_received_and_rport() -> None:
    layer, clock = make_layer(), FakeClock()
    source = Address("udp", "192.0.2.7", 40000)
    event = receive(layer, incoming(via_host="10.0.0.1", via_port=5070), source, clock.now)
    layer.send_response(event.key, make_response(event.request, 200, to_tag="t"), clock.now)
    (out,) = layer.datagrams_to_send()
    assert out.destination == source
    response = parse_response(out.data)
    # the response carries the stamped Via back (§8.2.6.2)
    assert response.top_via.received == "192.0.2.7"
    assert response.top_via.rport == 40000


def test_without_rport_the_response_goes_to_received_and_sent_by_port() -> None:
    # §18.2.2: "received" address, port from sent-by
    layer, clock = make_layer(), FakeClock()
    source = Address("udp", "192.0.2.7", 40000)
    event = receive(
        layer, incoming(via_host="10.0.0.1", via_port=5077, rport=False), source, clock.now
    )
    assert event.request.top_via.received == "192.0.2.7"
    layer.send_response(event.key, make_response(event.request, 200), clock.now)
    (out,) = layer.datagrams_to_send()
    assert out.destination == Address("udp", "192.0.2.7", 5077)


def test_sent_by_equal_to_source_needs_no_received() -> None:
    layer, clock = make_layer(), FakeClock()
    event = receive(layer, incoming(rport=False), PEER_UDP, clock.now)
    assert event.request.top_via.received is None
    layer.send_response(event.key, make_response(event.request, 200), clock.now)
    assert layer.datagrams_to_send()[0].destination == PEER_UDP


def test_reliable_transport_answers_on_the_connection() -> None:
    layer, clock = make_layer(), FakeClock()
    source = Address("tcp", "127.0.0.1", 41234)
    event = receive(layer, incoming(via_port=5070), source, clock.now)
    layer.send_response(event.key, make_response(event.request, 200), clock.now)
    (out,) = layer.datagrams_to_send()
    assert out.destination == source
    # §17.2.2: J is zero on reliable transports: the transaction is gone
    assert layer.server_count == 0


def test_retransmission_before_the_answer_is_absorbed() -> None:
    layer, clock = make_layer(), FakeClock()
    data = incoming()
    receive(layer, data, PEER_UDP, clock.now)
    layer.receive_datagram(data, PEER_UDP, clock.now + 0.5)
    assert layer.events() == []
    assert layer.datagrams_to_send() == []


def test_retransmission_after_the_answer_gets_the_same_answer() -> None:
    layer, clock = make_layer(), FakeClock()
    data = incoming()
    event = receive(layer, data, PEER_UDP, clock.now)
    layer.send_response(event.key, make_response(event.request, 200, to_tag="x"), clock.now)
    (answer,) = layer.datagrams_to_send()
    layer.receive_datagram(data, PEER_UDP, clock.now + 0.5)
    assert layer.events() == []
    (again,) = layer.datagrams_to_send()
    assert again.data == answer.data


def test_provisional_then_retransmission_repeats_the_provisional() -> None:
    layer, clock = make_layer(), FakeClock()
    data = incoming()
    event = receive(layer, data, PEER_UDP, clock.now)
    layer.send_response(event.key, make_response(event.request, 100), clock.now)
    (trying,) = layer.datagrams_to_send()
    layer.receive_datagram(data, PEER_UDP, clock.now)
    assert layer.datagrams_to_send()[0].data == trying.data
    layer.send_response(event.key, make_response(event.request, 200), clock.now)
    assert parse_response(layer.datagrams_to_send()[0].data).status == 200


def test_timer_j_ends_the_transaction_after_64_t1() -> None:
    layer, clock = make_layer(), FakeClock(0.0)
    data = incoming()
    event = receive(layer, data, PEER_UDP, clock.now)
    layer.send_response(event.key, make_response(event.request, 200), clock.now)
    layer.datagrams_to_send()
    assert layer.get_timer() == 32.0
    layer.handle_timer(32.0)
    assert layer.server_count == 0
    # after J, the same bytes are a new request for the TU
    layer.receive_datagram(data, PEER_UDP, 33.0)
    assert isinstance(layer.events()[0], RequestReceived)


def test_two_requests_differing_only_in_sent_by_are_two_transactions() -> None:
    # §17.2.3: branch AND sent-by AND method
    layer, clock = make_layer(), FakeClock()
    receive(layer, incoming(via_port=5070), PEER_UDP, clock.now)
    receive(layer, incoming(via_port=5071), PEER_UDP, clock.now)
    assert layer.server_count == 2


def test_rfc2543_request_without_cookie_matches_its_retransmission() -> None:
    layer, clock = make_layer(), FakeClock()
    data = incoming(branch="oldstyle1")
    receive(layer, data, PEER_UDP, clock.now)
    layer.receive_datagram(data, PEER_UDP, clock.now)
    assert layer.events() == []
    assert layer.server_count == 1


def test_answering_twice_is_refused() -> None:
    layer, clock = make_layer(), FakeClock()
    event = receive(layer, incoming(), PEER_UDP, clock.now)
    layer.send_response(event.key, make_response(event.request, 200), clock.now)
    with pytest.raises(LocalProtocolError):
        layer.send_response(event.key, make_response(event.request, 200), clock.now)


def test_answering_an_unknown_transaction_is_refused() -> None:
    layer, clock = make_layer(), FakeClock()
    event = receive(layer, incoming(), PEER_UDP, clock.now)
    with pytest.raises(LocalProtocolError):
        layer.send_response(("x", "y", "NOTIFY"), make_response(event.request, 200), clock.now)


def test_unanswered_request_gets_500_after_the_tu_timeout() -> None:
    layer, clock = make_layer(tu_timeout=10.0), FakeClock(0.0)
    receive(layer, incoming(), PEER_UDP, clock.now)
    assert layer.get_timer() == 10.0
    layer.handle_timer(10.0)
    (out,) = layer.datagrams_to_send()
    assert parse_response(out.data).status == 500
    assert layer.stats["tu-timeouts"] == 1


def test_invite_is_answered_405_with_allow_and_no_transaction() -> None:
    # §8.2.1: unsupported method -> 405 with Allow
    layer, clock = make_layer(), FakeClock()
    layer.receive_datagram(incoming("INVITE"), PEER_UDP, clock.now)
    assert layer.events() == []
    (out,) = layer.datagrams_to_send()
    response = parse_response(out.data)
    assert response.status == 405
    assert response.headers.get("Allow") == "NOTIFY, OPTIONS"
    assert response.to.tag is not None
    assert layer.server_count == 0


def test_ack_is_dropped_as_stray() -> None:
    layer, clock = make_layer(), FakeClock()
    layer.receive_datagram(incoming("ACK"), PEER_UDP, clock.now)
    assert dropped(layer) == ["stray-ack"]
    assert layer.datagrams_to_send() == []


def test_cancel_without_a_matching_transaction_gets_481() -> None:
    # §9.2
    layer, clock = make_layer(), FakeClock()
    layer.receive_datagram(incoming("CANCEL", branch="z9hG4bK-c1"), PEER_UDP, clock.now)
    assert parse_response(layer.datagrams_to_send()[0].data).status == 481


def test_cancel_of_a_live_non_invite_gets_200_and_changes_nothing() -> None:
    layer, clock = make_layer(), FakeClock()
    receive(layer, incoming(branch="z9hG4bK-c2"), PEER_UDP, clock.now)
    layer.receive_datagram(incoming("CANCEL", branch="z9hG4bK-c2"), PEER_UDP, clock.now)
    assert parse_response(layer.datagrams_to_send()[0].data).status == 200
    assert layer.server_count == 1


def test_malformed_request_is_answered_400_with_the_reason() -> None:
    layer, clock = make_layer(), FakeClock()
    data = incoming().replace(b"CSeq: 1 NOTIFY", b"CSeq: one NOTIFY")
    layer.receive_datagram(data, PEER_UDP, clock.now)
    (event,) = layer.events()
    assert isinstance(event, MessageDropped)
    assert event.reason == "bad-cseq"
    (out,) = layer.datagrams_to_send()
    # the answer echoes the broken CSeq (§8.2.6.2 copies it), so read the
    # status line as bytes
    assert out.data.startswith(b"SIP/2.0 400 Bad Request (bad-cseq)\r\n")
    assert b"\r\nCSeq: one NOTIFY\r\n" in out.data
    assert out.destination == PEER_UDP


def test_malformed_request_answer_is_parseable_when_the_copied_fields_are_sound() -> None:
    layer, clock = make_layer(), FakeClock()
    data = incoming(extra=[("Expires", "soon")])
    receive(layer, data, PEER_UDP, clock.now)  # Expires is not checked by the layer
    data = incoming(branch="z9hG4bK-2").replace(b"Max-Forwards: 70", b"Max-Forwards 70")
    layer.receive_datagram(data, PEER_UDP, clock.now)
    assert dropped(layer) == ["bad-header-line"]
    response = parse_response(layer.datagrams_to_send()[0].data)
    assert response.status == 400
    assert response.reason == "Bad Request (bad-header-line)"


def test_request_with_wrong_version_is_answered_505() -> None:
    layer, clock = make_layer(), FakeClock()
    data = incoming().replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)
    layer.receive_datagram(data, PEER_UDP, clock.now)
    assert parse_response(layer.datagrams_to_send()[0].data).status == 505


def test_garbage_is_dropped_without_an_answer() -> None:
    layer, clock = make_layer(), FakeClock()
    layer.receive_datagram(b"\x00\xffhello\r\n\r\n", PEER_UDP, clock.now)
    (event,) = layer.events()
    assert isinstance(event, MessageDropped)
    assert layer.datagrams_to_send() == []


def test_transport_error_on_a_response_ends_the_server_transaction() -> None:
    layer, clock = make_layer(), FakeClock()
    event = receive(layer, incoming(), PEER_UDP, clock.now)
    layer.send_response(event.key, make_response(event.request, 200), clock.now)
    out = layer.datagrams_to_send()[0]
    layer.transport_error(out.key, clock.now, "unreachable")
    (failed,) = layer.events()
    assert isinstance(failed, TransportFailed)
    assert layer.server_count == 0


def test_next_event_hands_events_out_one_by_one() -> None:
    layer, clock = make_layer(), FakeClock()
    layer.receive_datagram(incoming(branch="z9hG4bK-n1"), PEER_UDP, clock.now)
    layer.receive_datagram(incoming(branch="z9hG4bK-n2"), PEER_UDP, clock.now)
    first, second = layer.next_event(), layer.next_event()
    assert isinstance(first, RequestReceived)
    assert isinstance(second, RequestReceived)
    assert first.key != second.key
    assert layer.next_event() is None


def test_request_with_a_bad_rport_is_dropped() -> None:
    layer, clock = make_layer(), FakeClock()
    data = incoming().replace(b";rport", b";rport=abc")
    layer.receive_datagram(data, PEER_UDP, clock.now)
    assert dropped(layer) == ["bad-via"]
    assert layer.server_count == 0


def test_transport_error_while_proceeding_reports_the_request() -> None:
    layer, clock = make_layer(), FakeClock()
    event = receive(layer, incoming(), PEER_UDP, clock.now)
    layer.send_response(event.key, make_response(event.request, 100), clock.now)
    out = layer.datagrams_to_send()[0]
    layer.transport_error(out.key, clock.now, "unreachable")
    (failed,) = layer.events()
    assert isinstance(failed, TransportFailed)
    assert failed.request is event.request
    assert layer.server_count == 0
    # nothing to report for a stateless answer
    layer.transport_error(None, clock.now, "ignored")
    assert layer.events() == []


def test_ipv6_request_is_answered_at_its_source() -> None:
    layer = TransactionLayer(sent_by={"udp": ("::1", 5060)}, rng=seeded())
    source = Address("udp", "::1", 40001)
    data = incoming(via_host="[::1]", via_port=5070)
    event = receive(layer, data, source, 0.0)
    via = event.request.top_via
    assert via.rport == 40001
    assert via.received == "::1"
    layer.send_response(event.key, make_response(event.request, 200), 0.0)
    assert layer.datagrams_to_send()[0].destination == source
