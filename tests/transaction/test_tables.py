"""The NICT and NIST tables, exhaustively (RFC 3261 §17.1.2.2, §17.2.2)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pua.transaction import nict, nist


@given(state=st.sampled_from(nict.State), event=st.sampled_from(nict.Input))
def test_nict_every_pair_is_a_row_or_invalid(state: nict.State, event: nict.Input) -> None:
    row = nict.TRANSITIONS.get((state, event))
    if row is None:
        with pytest.raises(nict.InvalidTransition):
            nict.transition(state, event)
    else:
        actions, new_state = nict.transition(state, event)
        assert (actions, new_state) == row
        assert all(isinstance(a, nict.Action) for a in actions)
        # once completed, a client transaction never goes back
        if state is nict.State.COMPLETED:
            assert new_state in (nict.State.COMPLETED, nict.State.TERMINATED)


@given(state=st.sampled_from(nist.State), event=st.sampled_from(nist.Input))
def test_nist_every_pair_is_a_row_or_invalid(state: nist.State, event: nist.Input) -> None:
    row = nist.TRANSITIONS.get((state, event))
    if row is None:
        with pytest.raises(nist.InvalidTransition):
            nist.transition(state, event)
    else:
        assert nist.transition(state, event) == row
        if state is nist.State.COMPLETED:
            assert row[1] in (nist.State.COMPLETED, nist.State.TERMINATED)


@pytest.mark.parametrize("table", [nict.TRANSITIONS, nist.TRANSITIONS])
def test_terminated_accepts_nothing(table: dict[Any, Any]) -> None:
    assert not [key for key in table if key[0].value == "terminated"]


def test_nict_final_response_in_trying_and_proceeding_starts_timer_k() -> None:
    # §17.1.2.2: "If a final response (status codes 200-699) is received
    # while in the Trying state, the response MUST be passed to the TU, and
    # the client transaction MUST transition to the Completed state."
    for state in (nict.State.TRYING, nict.State.PROCEEDING):
        actions, new = nict.transition(state, nict.Input.FINAL)
        assert actions == (nict.Action.PASS_RESPONSE, nict.Action.START_K)
        assert new is nict.State.COMPLETED


def test_nict_timer_e_backs_off_in_trying_and_stays_at_t2_in_proceeding() -> None:
    assert nict.transition(nict.State.TRYING, nict.Input.TIMER_E)[0] == (
        nict.Action.RETRANSMIT_BACKOFF,
    )
    assert nict.transition(nict.State.PROCEEDING, nict.Input.TIMER_E)[0] == (
        nict.Action.RETRANSMIT_T2,
    )


def test_nist_second_final_from_tu_is_invalid() -> None:
    with pytest.raises(nist.InvalidTransition):
        nist.transition(nist.State.COMPLETED, nist.Input.SEND_FINAL)


def test_nist_retransmission_while_trying_is_discarded() -> None:
    # §17.2.2: in Trying, "any further request retransmissions are discarded"
    assert nist.transition(nist.State.TRYING, nist.Input.REQUEST_RETRANSMISSION) == (
        (nist.Action.ABSORB,),
        nist.State.TRYING,
    )
