"""The non-INVITE client transaction state machine (RFC 3261 §17.1.2.2).

This module holds the table and nothing else: states, inputs, and for each
(state, input) pair the actions to run and the next state.  A pair that is
not in the table is an input that cannot happen in that state; feeding it
raises :class:`InvalidTransition` and leaves the state unchanged.

The figure from §17.1.2.2 (Figure 6), which the table encodes::

                                   |Request from TU
                                   |send request
               Timer E             V
               send request  +-----------+
                   +---------|           |-------------------+
                   |         |  Trying   |  Timer F          |
                   +-------->|           |  or Transport Err.|
                             +-----------+  inform TU        |
                200-699         |  |                         |
                resp. to TU     |  |1xx                      |
                +---------------+  |resp. to TU              |
                |                  |                         |
                |   Timer E        V       Timer F           |
                |   send req +-----------+ or Transport Err. |
                |  +---------|           | inform TU         |
                |  |         |Proceeding |------------------>|
                |  +-------->|           |-----+             |
                |            +-----------+     |1xx          |
                |              |      ^        |resp to TU   |
                | 200-699      |      +--------+             |
                | resp. to TU  |                             |
                |              V                             |
                |            +-----------+                   |
                |            |           |                   |
                |            | Completed |                   |
                |            |           |                   |
                |            +-----------+                   |
                |              ^   |                         |
                |              |   | Timer K                 |
                +--------------+   | -                       |
                                   |                         |
                                   V                         |
             NOTE:           +-----------+                   |
                             |           |                   |
         transitions         | Terminated|<------------------+
         labeled with        |           |
         the event           +-----------+
         over the action
         to take

States, inputs and actions are string enums: their hash is ``str``'s (C),
which matters because the table is consulted for every message.
"""

from __future__ import annotations

import enum

from pua.errors import LocalProtocolError

__all__ = ["TRANSITIONS", "Action", "Input", "InvalidTransition", "State", "transition"]


class State(enum.StrEnum):
    #: request sent, nothing heard yet; Timer E retransmits (UDP)
    TRYING = "trying"
    #: a provisional response arrived; Timer E keeps firing at T2 (UDP)
    PROCEEDING = "proceeding"
    #: a final response arrived; retransmitted responses are absorbed until K
    COMPLETED = "completed"
    TERMINATED = "terminated"


class Input(enum.StrEnum):
    PROVISIONAL = "1xx"
    FINAL = "200-699"
    TIMER_E = "timer-e"
    TIMER_F = "timer-f"
    TIMER_K = "timer-k"
    TRANSPORT_ERROR = "transport-error"


class Action(enum.StrEnum):
    #: Timer E in Trying: send again, interval doubles up to T2
    RETRANSMIT_BACKOFF = "retransmit-backoff"
    #: Timer E in Proceeding: send again, interval is T2
    RETRANSMIT_T2 = "retransmit-t2"
    #: pass the response to the TU
    PASS_RESPONSE = "pass-response"
    #: stop E and F; start K (zero on reliable transports)
    START_K = "start-k"
    #: report the timeout (the TU sees a 408)
    REPORT_TIMEOUT = "report-timeout"
    REPORT_TRANSPORT_ERROR = "report-transport-error"
    #: a retransmitted response: nothing to do
    ABSORB = "absorb"


class InvalidTransition(LocalProtocolError):
    """An input that cannot occur in the current state (a layer bug)."""


_S, _I, _A = State, Input, Action
#: (state, input) -> (actions in order, next state)
TRANSITIONS: dict[tuple[State, Input], tuple[tuple[Action, ...], State]] = {
    (_S.TRYING, _I.TIMER_E): ((_A.RETRANSMIT_BACKOFF,), _S.TRYING),
    (_S.TRYING, _I.PROVISIONAL): ((_A.PASS_RESPONSE,), _S.PROCEEDING),
    (_S.TRYING, _I.FINAL): ((_A.PASS_RESPONSE, _A.START_K), _S.COMPLETED),
    (_S.TRYING, _I.TIMER_F): ((_A.REPORT_TIMEOUT,), _S.TERMINATED),
    (_S.TRYING, _I.TRANSPORT_ERROR): ((_A.REPORT_TRANSPORT_ERROR,), _S.TERMINATED),
    (_S.PROCEEDING, _I.TIMER_E): ((_A.RETRANSMIT_T2,), _S.PROCEEDING),
    (_S.PROCEEDING, _I.PROVISIONAL): ((_A.PASS_RESPONSE,), _S.PROCEEDING),
    (_S.PROCEEDING, _I.FINAL): ((_A.PASS_RESPONSE, _A.START_K), _S.COMPLETED),
    (_S.PROCEEDING, _I.TIMER_F): ((_A.REPORT_TIMEOUT,), _S.TERMINATED),
    (_S.PROCEEDING, _I.TRANSPORT_ERROR): ((_A.REPORT_TRANSPORT_ERROR,), _S.TERMINATED),
    # §17.1.2.2: "any retransmissions of the final response that are
    # received while in the 'Completed' state MUST be cause for the ACK to
    # be re-passed to the transport layer" is INVITE only; for non-INVITE
    # the Completed state just buffers (absorbs) them.
    (_S.COMPLETED, _I.PROVISIONAL): ((_A.ABSORB,), _S.COMPLETED),
    (_S.COMPLETED, _I.FINAL): ((_A.ABSORB,), _S.COMPLETED),
    (_S.COMPLETED, _I.TIMER_K): ((), _S.TERMINATED),
}
del _S, _I, _A


def transition(state: State, event: Input) -> tuple[tuple[Action, ...], State]:
    """Look up the row for (state, input) or raise :class:`InvalidTransition`."""
    row = TRANSITIONS.get((state, event))
    if row is None:
        raise InvalidTransition(f"non-INVITE client transaction: {event.value} in {state.value}")
    return row
