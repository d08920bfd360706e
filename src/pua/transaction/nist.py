"""The non-INVITE server transaction state machine (RFC 3261 §17.2.2).

As in :mod:`pua.transaction.nict`, the table is the whole machine; a pair
that is not in it raises :class:`InvalidTransition`.

The figure from §17.2.2 (Figure 8)::

                                  |Request received
                                  |pass to TU
                                  V
                            +-----------+
                            |           |
                            | Trying    |-------------+
                            |           |             |
                            +-----------+             |200-699 from TU
                                  |                   |send response
                                  |1xx from TU        |
                                  |send response      |
                                  |                   |
               Request            V      1xx from TU  |
               send response+-----------+send response|
                   +--------|           |--------+    |
                   |        | Proceeding|        |    |
                   +------->|           |<-------+    |
            +<--------------|           |             |
            |Trnsprt Err    +-----------+             |
            |Inform TU            |                   |
            |                     |                   |
            |                     |200-699 from TU    |
            |                     |send response      |
            |  Request            V                   |
            |  send response+-----------+             |
            |      +--------|           |             |
            |      |        | Completed |<------------+
            |      +------->|           |
            +<--------------|           |
            |Trnsprt Err    +-----------+
            |Inform TU            |
            |                     |Timer J fires
            |                     |-
            |                     |
            |                     V
            |               +-----------+
            |               |           |
            +-------------->| Terminated|
                            |           |
                            +-----------+

RFC 4320 §4.1 adds that a non-INVITE server transaction never sends a
provisional response on its own; pua's never does.
"""

from __future__ import annotations

import enum

from pua.errors import LocalProtocolError

__all__ = ["TRANSITIONS", "Action", "Input", "InvalidTransition", "State", "transition"]


class State(enum.StrEnum):
    #: request passed to the TU, nothing sent yet
    TRYING = "trying"
    #: a provisional response was sent
    PROCEEDING = "proceeding"
    #: the final response was sent; it is repeated for retransmitted requests until J
    COMPLETED = "completed"
    TERMINATED = "terminated"


class Input(enum.StrEnum):
    REQUEST_RETRANSMISSION = "request"
    SEND_PROVISIONAL = "1xx-from-tu"
    SEND_FINAL = "200-699-from-tu"
    TIMER_J = "timer-j"
    TRANSPORT_ERROR = "transport-error"


class Action(enum.StrEnum):
    #: send the response the TU gave and remember it as the last one
    SEND_RESPONSE = "send-response"
    #: send the last response again
    RESEND_LAST = "resend-last"
    #: start J (zero on reliable transports)
    START_J = "start-j"
    REPORT_TRANSPORT_ERROR = "report-transport-error"
    #: a retransmission while Trying: "discarded" (§17.2.2)
    ABSORB = "absorb"


class InvalidTransition(LocalProtocolError):
    """An input that cannot occur in the current state (for SEND_*: the TU
    answered twice, which is the TU's bug)."""


_S, _I, _A = State, Input, Action
TRANSITIONS: dict[tuple[State, Input], tuple[tuple[Action, ...], State]] = {
    (_S.TRYING, _I.REQUEST_RETRANSMISSION): ((_A.ABSORB,), _S.TRYING),
    (_S.TRYING, _I.SEND_PROVISIONAL): ((_A.SEND_RESPONSE,), _S.PROCEEDING),
    (_S.TRYING, _I.SEND_FINAL): ((_A.SEND_RESPONSE, _A.START_J), _S.COMPLETED),
    (_S.PROCEEDING, _I.REQUEST_RETRANSMISSION): ((_A.RESEND_LAST,), _S.PROCEEDING),
    (_S.PROCEEDING, _I.SEND_PROVISIONAL): ((_A.SEND_RESPONSE,), _S.PROCEEDING),
    (_S.PROCEEDING, _I.SEND_FINAL): ((_A.SEND_RESPONSE, _A.START_J), _S.COMPLETED),
    (_S.PROCEEDING, _I.TRANSPORT_ERROR): ((_A.REPORT_TRANSPORT_ERROR,), _S.TERMINATED),
    (_S.COMPLETED, _I.REQUEST_RETRANSMISSION): ((_A.RESEND_LAST,), _S.COMPLETED),
    (_S.COMPLETED, _I.TIMER_J): ((), _S.TERMINATED),
    (_S.COMPLETED, _I.TRANSPORT_ERROR): ((_A.REPORT_TRANSPORT_ERROR,), _S.TERMINATED),
}
del _S, _I, _A


def transition(state: State, event: Input) -> tuple[tuple[Action, ...], State]:
    """Look up the row for (state, input) or raise :class:`InvalidTransition`."""
    row = TRANSITIONS.get((state, event))
    if row is None:
        raise InvalidTransition(f"non-INVITE server transaction: {event.value} in {state.value}")
    return row
