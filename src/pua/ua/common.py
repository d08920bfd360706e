"""What the PUBLISH and SUBSCRIBE engines share: the engine plumbing
(deadlines, requests in flight, output queues), extra header text, the
Expires to ask for, refresh times and backoff delays."""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from pua.config import PuaConfig
from pua.errors import PuaError, PublishError
from pua.evpkg.registry import EventRegistry
from pua.sip.ids import IdGenerator
from pua.sip.message import Response
from pua.ua.events import OutgoingRequest

__all__ = [
    "OWN_HEADERS",
    "Deadlines",
    "EngineBase",
    "asked_expires",
    "backoff",
    "desired_expires",
    "due_waiters",
    "parse_extra",
    "refresh_time",
]

_I = TypeVar("_I")

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


def desired_expires(config: PuaConfig, expires: int, now: float) -> float:
    """The absolute end of a lifetime asked as ``expires`` seconds
    (``< 0``: for ever, which is 0)."""
    if expires < 0:
        return 0.0
    return now + max(expires, config.min_expires)


def asked_expires(config: PuaConfig, desired: float, now: float, min_granted: int) -> int:
    """The Expires to ask for: ``default_expires`` for ever, else what is
    left of the lifetime; never below ``min_expires`` or a server's
    Min-Expires."""
    if desired == 0:
        asked = config.default_expires
    else:
        # the float sum now + expires may land a hair above it: do not let
        # that round up to one second more than asked
        asked = max(1, math.ceil(desired - now - 1e-6))
    return max(asked, config.min_expires, min_granted)


class Scheduled(Protocol):
    """What :class:`Deadlines` and :class:`EngineBase` need of a record."""

    serial: int
    alive: bool
    due: float | None
    retry_at: float | None
    refresh_at: float
    refresh_wanted: bool
    expires_at: float
    desired_expires: float
    row_id: int | None

    @property
    def min_granted(self) -> int: ...


_R = TypeVar("_R", bound=Scheduled)


class Deadlines(Generic[_R]):
    """One deadline per record, on one heap.

    Rescheduling pushes a new entry; the old one goes stale (its time is
    no longer the record's ``due``) and is skipped when it comes up.  The
    heap is rebuilt when stale entries outnumber live records.
    """

    __slots__ = ("_heap",)

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _R]] = []

    def schedule(self, record: _R, when: float, live: int) -> None:
        if record.due == when:
            return
        record.due = when
        heapq.heappush(self._heap, (when, record.serial, record))
        if len(self._heap) > 2 * live + 1024:
            self._heap = [e for e in self._heap if e[2].alive and e[2].due == e[0]]
            heapq.heapify(self._heap)

    def pop_due(self, now: float) -> Iterator[_R]:
        """The records due at ``now``, their ``due`` cleared."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, record = heapq.heappop(heap)
            if record.alive and record.due == when:
                record.due = None
                yield record

    def next(self) -> float | None:
        """The earliest live deadline."""
        heap = self._heap
        while heap:
            when, _, record = heap[0]
            if record.alive and record.due == when:
                return when
            heapq.heappop(heap)
        return None

    def __len__(self) -> int:
        return len(self._heap)


def due_waiters(
    waiters: list[tuple[int, int, _I]] | None, gen: int
) -> tuple[list[tuple[int, _I]], list[tuple[int, int, _I]] | None]:
    """Split callers waiting on a record: those whose request a reply
    carrying generation ``gen`` answers (in order), and the rest (``None``
    when none are left)."""
    if not waiters:
        return [], None
    done = 0
    for _, waited, _ in waiters:
        if waited > gen:
            break
        done += 1
    answered = [(ticket, info) for ticket, _, info in waiters[:done]]
    rest = waiters[done:] or None
    return answered, rest


_E = TypeVar("_E")
_F = TypeVar("_F")


class EngineBase(Generic[_R, _F, _E]):
    """The plumbing both engines share: the records' deadlines, the
    requests in flight by token, the queues the shell drains, counters.
    A subclass implements ``_reconcile(record, now)``: send what the record
    needs next, or schedule its next wake-up."""

    def __init__(
        self,
        config: PuaConfig,
        registry: EventRegistry,
        rng: random.Random,
        *,
        local_host: str | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self._rng = rng
        self._ids = IdGenerator(rng)
        self._local_host = local_host
        self._count = 0
        self._serial = 0
        self._tickets = 0
        self._tokens = 0
        self._flights: dict[int, _F] = {}
        self._deadlines: Deadlines[_R] = Deadlines()
        self._outgoing: list[OutgoingRequest] = []
        self._events: list[_E] = []
        #: counters: sent by kind, replies by status, retries, ...
        self.stats: Counter[str] = Counter()
        #: set by a shell that persists records: then every record touched
        #: is remembered until :meth:`take_changes`
        self.track_changes = False
        self._changed: dict[int, _R] = {}
        self._removed: list[_R] = []

    def _reconcile(self, record: _R, now: float) -> None:
        raise NotImplementedError

    def _drop(
        self, record: _R, why: str, response: Response | None, *, stored: bool = True
    ) -> None:
        """End a record here; ``stored=False``: its row is not ours to
        delete (the record was handed over)."""
        raise NotImplementedError

    def row_of(self, token: int) -> int | None:
        """The stored row of the record request ``token`` is for (``None``
        for a record not stored yet, or a request no longer in flight)."""
        flight = self._flights.get(token)
        return None if flight is None else flight.record.row_id  # type: ignore[attr-defined]

    def abandon(self, token: int, why: str) -> None:
        """Do not send request ``token`` after all: another node holds its
        record now (db_mode 2), which is handed over."""
        flight = self._flights.pop(token, None)
        if flight is None:
            return
        record = flight.record  # type: ignore[attr-defined]
        record.in_flight = None
        self.hand_over(record, why)

    def hand_over(self, record: _R, why: str) -> None:
        """Forget a record that another node holds now (db_mode 2):
        nothing is sent and nothing is reported as ended for the store (its
        row is the other node's); a request in flight is left to finish
        unheard, and callers still waiting get an outcome saying ``why``."""
        self._drop(record, why, None, stored=False)
        self.stats["handed-over"] += 1

    def take_changes(self) -> tuple[list[_R], list[_R]]:
        """The records changed (and still alive) and the records ended
        since the last call; for the shell to write back."""
        changed = [r for r in self._changed.values() if r.alive]
        removed = self._removed
        self._changed = {}
        self._removed = []
        return changed, removed

    def _touched(self, record: _R) -> None:
        if self.track_changes:
            self._changed[record.serial] = record

    def _ended(self, record: _R, *, stored: bool = True) -> None:
        if self.track_changes:
            self._changed.pop(record.serial, None)
            if stored:
                self._removed.append(record)

    def handle_timer(self, now: float) -> None:
        """Send what is due: refreshes, retries, removals."""
        for record in self._deadlines.pop_due(now):
            self._reconcile(record, now)

    def get_timer(self) -> float | None:
        """The next deadline, or ``None``."""
        return self._deadlines.next()

    def requests_to_send(self) -> list[OutgoingRequest]:
        out = self._outgoing
        self._outgoing = []
        return out

    def events(self) -> list[_E]:
        out = self._events
        self._events = []
        return out

    def __len__(self) -> int:
        return self._count

    @property
    def in_flight(self) -> int:
        return len(self._flights)

    def _schedule(self, record: _R, when: float) -> None:
        self._deadlines.schedule(record, when, self._count)

    def _desired(self, expires: int, now: float) -> float:
        return desired_expires(self.config, expires, now)

    def _asked_expires(self, record: _R, now: float) -> int:
        return asked_expires(self.config, record.desired_expires, now, record.min_granted)

    def _backing_off(self, record: _R, now: float) -> bool:
        """Whether the record waits for a retry (then it is scheduled)."""
        if record.retry_at is None:
            return False
        if now < record.retry_at:
            self._schedule(record, record.retry_at)
            return True
        record.retry_at = None
        return False

    def _refresh_due(self, record: _R, now: float) -> bool:
        """Whether a refresh must go now; if not, the record is scheduled
        for its refresh or the end of its lifetime.  A grant that reaches
        the end of the lifetime needs no refresh."""
        desired = record.desired_expires
        covered = bool(desired) and record.expires_at >= desired
        if record.refresh_wanted or (now >= record.refresh_at and not covered):
            return True
        if covered or (desired and desired < record.refresh_at):
            self._schedule(record, desired)
        else:
            self._schedule(record, record.refresh_at)
        return False
