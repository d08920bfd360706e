"""RFC 3261 timer values (§17.1.1.1, Table 4 in §A).

T1 is the round-trip estimate (500 ms), T2 the longest retransmit interval
for non-INVITE requests (4 s) and T4 the longest time a message stays in
the network (5 s).  Timer E starts at T1 and doubles up to T2; F and J are
64*T1; K is T4.  On reliable transports E is not used and J and K are zero
(§17.1.2.2, §17.2.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from pua.errors import LocalProtocolError

__all__ = ["TimerSettings"]


@dataclass(frozen=True, slots=True)
class TimerSettings:
    """The base timers; everything else derives from them."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def __post_init__(self) -> None:
        if not self.t1 > 0:
            raise LocalProtocolError(f"T1 must be > 0, got {self.t1}")
        if not self.t2 >= self.t1:
            raise LocalProtocolError(f"T2 must be >= T1, got T1={self.t1} T2={self.t2}")
        if not self.t4 >= 0:
            raise LocalProtocolError(f"T4 must be >= 0, got {self.t4}")

    @property
    def timer_f(self) -> float:
        """Client transaction timeout: 64*T1 (§17.1.2.2)."""
        return 64 * self.t1

    def timer_k(self, reliable: bool) -> float:
        """How long a completed client transaction absorbs retransmitted
        responses: T4 on UDP, 0 on TCP/TLS (§17.1.2.2)."""
        return 0.0 if reliable else self.t4

    def timer_j(self, reliable: bool) -> float:
        """How long a completed server transaction answers retransmitted
        requests: 64*T1 on UDP, 0 on TCP/TLS (§17.2.2)."""
        return 0.0 if reliable else 64 * self.t1
