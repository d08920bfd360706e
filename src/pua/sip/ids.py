"""Branch, tag and Call-ID generators (RFC 3261 §8.1.1.4, §8.1.1.7, §19.3).

Randomness comes from the ``random.Random`` the caller passes, so tests can
seed it and the sans-IO rooms never touch a global source.  The shell passes
one seeded from ``os.urandom``.
"""

from __future__ import annotations

import random

__all__ = ["MAGIC_COOKIE", "IdGenerator"]

#: RFC 3261 §8.1.1.7: every branch we create starts with this cookie, which
#: tells the receiver the branch is unique (and transaction matching can use
#: it alone, §17.2.3).
MAGIC_COOKIE = "z9hG4bK"


class IdGenerator:
    """Makes the identifiers a UA needs.

    Branches are a 64-bit random prefix chosen once plus a counter: unique
    "across space and time" (§8.1.1.7) for this process and cheap to make,
    since a branch is needed for every request.  Tags and Call-IDs are 64
    random bits each (§19.3 asks for at least 32).
    """

    __slots__ = ("_branch_prefix", "_counter", "_rng")

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._branch_prefix = f"{MAGIC_COOKIE}{rng.getrandbits(64):016x}."
        self._counter = 0

    def branch(self) -> str:
        self._counter += 1
        return f"{self._branch_prefix}{self._counter:x}"

    def tag(self) -> str:
        return f"{self._rng.getrandbits(64):016x}"

    def call_id(self, host: str | None = None) -> str:
        ident = f"{self._rng.getrandbits(64):016x}{self._rng.getrandbits(32):08x}"
        return f"{ident}@{host}" if host else ident

    def token(self, bits: int = 64) -> str:
        """A random hex token (cnonce, tuple ids...)."""
        return f"{self._rng.getrandbits(bits):0{bits // 4}x}"
