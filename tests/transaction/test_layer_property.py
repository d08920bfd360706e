"""Hypothesis drives the client side of the layer through random
interleavings of sends, responses (lost, duplicated, provisional, final),
transport errors and time, and checks the RFC 3261 §17.1.2 promises:

* every transaction ends exactly once for the TU: one final response, or
  one timeout, or one transport failure; never two, never none once 64*T1
  has passed;
* nothing is retransmitted after the final response, and nothing at all on
  a reliable transport;
* the layer forgets every transaction eventually (no leak)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pua.sip.address import Address
from pua.transaction import (
    ResponseReceived,
    TransactionLayer,
    TransactionTimedOut,
    TransportFailed,
)
from tests.helpers import make_request, reply

UDP = Address("udp", "127.0.0.1", 5070)
TCP = Address("tcp", "127.0.0.1", 5070)

action = st.one_of(
    st.tuples(st.just("send"), st.sampled_from([UDP, TCP])),
    st.tuples(st.just("reply"), st.integers(0, 30), st.sampled_from([100, 180, 200, 412, 503])),
    st.tuples(st.just("error"), st.integers(0, 30)),
    st.tuples(st.just("wait"), st.floats(0.01, 10.0)),
)


@settings(max_examples=300)
@given(script=st.lists(action, max_size=60))
def test_every_transaction_ends_exactly_once(script: list[tuple[object, ...]]) -> None:
    layer = TransactionLayer(
        sent_by={"udp": ("127.0.0.1", 5060), "tcp": ("127.0.0.1", 5060)},
        rng=random.Random(7),
    )
    now = 0.0
    sent: list[tuple[str, bytes, Address]] = []
    finals: dict[str, int] = {}
    ended_at: dict[str, float] = {}

    def drain() -> None:
        # one input at a time: what it sent happened before what it ended
        for out in layer.datagrams_to_send():
            assert isinstance(out.key, str)
            if out.key in ended_at:
                raise AssertionError("retransmitted after the transaction ended")
            if any(key == out.key for key, _, _ in sent):
                assert not out.destination.reliable, "retransmission over a reliable transport"
            else:
                sent.append((out.key, out.data, out.destination))
        for event in layer.events():
            if isinstance(event, ResponseReceived) and event.response.status >= 200:
                finals[event.key] = finals.get(event.key, 0) + 1
                ended_at.setdefault(event.key, now)
            elif isinstance(event, TransactionTimedOut | TransportFailed):
                assert isinstance(event.key, str)
                finals[event.key] = finals.get(event.key, 0) + 1
                ended_at.setdefault(event.key, now)

    for step in script:
        kind = step[0]
        if kind == "send":
            dest = step[1]
            assert isinstance(dest, Address)
            layer.send_request(make_request(call_id=f"c{len(sent)}"), dest, now)
        elif kind == "reply" and sent:
            index, status = step[1], step[2]
            assert isinstance(index, int)
            assert isinstance(status, int)
            _, data, dest = sent[index % len(sent)]
            layer.receive_datagram(reply(data, status), dest, now)
        elif kind == "error" and sent:
            index = step[1]
            assert isinstance(index, int)
            layer.transport_error(sent[index % len(sent)][0], now, "test")
        elif kind == "wait":
            until = now + float(step[1])  # type: ignore[arg-type]
            while (deadline := layer.get_timer()) is not None and deadline <= until:
                now = deadline
                layer.handle_timer(now)
                drain()
            now = until
        drain()

    # let every timer run out: 64*T1 plus T4 is enough for all of them
    now += 40.0
    while (deadline := layer.get_timer()) is not None:
        now = max(now, deadline)
        layer.handle_timer(now)
        drain()
    assert all(count == 1 for count in finals.values()), finals
    assert set(finals) == {key for key, _, _ in sent}
    assert layer.client_count == 0
