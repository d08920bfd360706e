"""What the PUBLISH and SUBSCRIBE engines share: extra header text,
refresh times and backoff delays."""

from __future__ import annotations

import random

from pua.config import PuaConfig
from pua.errors import PuaError, PublishError

__all__ = ["OWN_HEADERS", "backoff", "parse_extra", "refresh_time"]

# Headers pua writes itself; extra_headers must not repeat them.
OWN_HEADERS = frozenset(
    {
        "via",
        "v",
        "to",
        "t",
        "from",
        "f",
        "call-id",
        "i",
        "cseq",
        "max-forwards",
        "event",
        "o",
        "expires",
        "sip-if-match",
        "content-type",
        "c",
        "content-length",
        "l",
    }
)


def parse_extra(
    text: str | None,
    own: frozenset[str] = OWN_HEADERS,
    error: type[PuaError] = PublishError,
) -> tuple[tuple[str, str], ...]:
    """Kamailio's raw ``extra_headers`` ("Name: value" lines, CRLF-ended)
    as header fields; refuse what pua writes itself (``own``) with
    ``error``."""
    if not text:
        return ()
    fields: list[tuple[str, str]] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name or any(c in name for c in ' \t()<>@,;\\"/[]?={}'):
            raise error(f"extra_headers: not a header line: {line!r}")
        if name.lower() in own:
            raise error(f"extra_headers: {name} is written by pua")
        fields.append((name, value.strip()))
    return tuple(fields)


def refresh_time(config: PuaConfig, rng: random.Random, now: float, granted: int) -> float:
    """When to refresh something granted for ``granted`` seconds: after a
    fraction drawn from [refresh_low, refresh_high] (so that many refreshes
    spread out), and at least ``refresh_margin`` (at most half the grant)
    before it lapses (RFC 3903 §4.3, RFC 6665 §4.1.2.2)."""
    fraction = rng.uniform(config.refresh_low, config.refresh_high)
    margin = min(config.refresh_margin, granted / 2)
    return min(now + granted * fraction, now + granted - margin)


def backoff(config: PuaConfig, rng: random.Random, failures: int, retry_after: int | None) -> float:
    """The delay before retry number ``failures``: exponential from
    ``retry_initial``, capped at ``retry_max``, jittered to 50-100 %, and
    never shorter than a server's Retry-After (RFC 3261 §21.5.4)."""
    delay = min(config.retry_max, config.retry_initial * 2.0 ** min(failures - 1, 30))
    delay *= rng.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, float(retry_after))
    return delay
