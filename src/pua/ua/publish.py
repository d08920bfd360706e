"""The PUBLISH engine (RFC 3903), sans-IO.

One :class:`Publication` per published state, keyed like Kamailio's
records by (presentity, event, source flag, id).  A publication holds the
*desired* state (processed body, lifetime, extra headers, next hop) and the
state the server *confirmed* (entity-tag, expiry), and the engine keeps
sending requests until the two agree:

* **never two requests in flight for one publication**: a change that
  arrives while a request is out only marks the record; when the reply
  comes, the newest body goes out with the new entity-tag (coalescing);
* every reply goes through one policy table (:data:`POLICY`), each row
  bounded: 412 re-publishes the stored body (RFC 3903 §4.4), 423 retries
  with Min-Expires (§4.1), 3xx tries each Contact once, 408/5xx back off
  exponentially with jitter;
* refreshes are per-record deadlines on one heap: a refresh goes out after
  80-90 % of the granted expiry (jittered), never later than
  ``refresh_margin`` before it lapses (RFC 3903 §4.3).

The engine never reads a clock, opens a socket or touches a database:
every entry point takes ``now``; requests come out of
:meth:`PublishEngine.requests_to_send`; their final responses go back in
through :meth:`PublishEngine.handle_response`; outcomes come out of
:meth:`PublishEngine.events`; :meth:`PublishEngine.get_timer` is the
one deadline the shell waits for.  After every call, drain
``requests_to_send()`` and the events, and re-arm the timer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from enum import StrEnum
from typing import Any, Generic, TypeVar, cast

from pua.config import PuaConfig
from pua.errors import (
    NoBodyError,
    PuaError,
    PublishError,
    UnknownETagError,
    UnknownEventError,
)
from pua.evpkg.registry import BodyContext, EventPackage, EventRegistry
from pua.model import PublishInfo, UpdateType
from pua.sip.headers import Headers
from pua.sip.message import Request, Response
from pua.sip.uri import SipUri, parse_uri
from pua.ua.common import (
    EngineBase,
    backoff,
    due_waiters,
    parse_extra,
    refresh_time,
)
from pua.ua.events import OutgoingRequest, PublishOutcome

__all__ = [
    "POLICY",
    "Action",
    "Op",
    "Publication",
    "PublishEngine",
    "ReplyClass",
    "classify",
]


class Op(StrEnum):
    """The four kinds of PUBLISH (RFC 3903 §4.1-§4.6)."""

    INITIAL = "initial"  # no SIP-If-Match, body
    MODIFY = "modify"  # SIP-If-Match, body
    REFRESH = "refresh"  # SIP-If-Match, no body
    REMOVE = "remove"  # SIP-If-Match, Expires: 0


class ReplyClass(StrEnum):
    """Final responses, grouped by what they ask of a publisher."""

    SUCCESS = "2xx"
    REDIRECT = "3xx"
    CONDITIONAL = "412"  # RFC 3903 §4.4: the entity-tag is not known
    TOO_BRIEF = "423"  # RFC 3903 §4.1 / RFC 3261 §21.4.17
    TRANSIENT = "transient"  # 408, local timeout, 5xx, 503 (with Retry-After)
    FATAL = "fatal"  # every other 4xx, 6xx, a final 401/407


class Action(StrEnum):
    """What the engine does with a final response."""

    STORE = "store"  # keep the SIP-ETag and the granted Expires
    FORGET = "forget"  # the server holds nothing any more
    REPUBLISH = "republish"  # send the stored body as a new publication
    RETRY_LONGER = "retry-longer"  # resend with Min-Expires
    REDIRECT = "redirect"  # resend to the next 3xx Contact
    BACKOFF = "backoff"  # resend later, with exponential backoff
    FAIL = "fail"  # report; end the publication unless newer changes wait


def classify(status: int) -> ReplyClass:
    """The class of a final status code."""
    if 200 <= status < 300:
        return ReplyClass.SUCCESS
    if 300 <= status < 400:
        return ReplyClass.REDIRECT
    if status == 412:
        return ReplyClass.CONDITIONAL
    if status == 423:
        return ReplyClass.TOO_BRIEF
    if status == 408 or 500 <= status < 600:
        return ReplyClass.TRANSIENT
    return ReplyClass.FATAL


_ANY_UPDATE = {
    ReplyClass.SUCCESS: Action.STORE,
    ReplyClass.REDIRECT: Action.REDIRECT,
    # the entity-tag is gone (server restart, expiry): the stored body is
    # the state, so publish it again as new (RFC 3903 §4.4)
    ReplyClass.CONDITIONAL: Action.REPUBLISH,
    ReplyClass.TOO_BRIEF: Action.RETRY_LONGER,
    ReplyClass.TRANSIENT: Action.BACKOFF,
    ReplyClass.FATAL: Action.FAIL,
}

#: The reply policy: (request kind, reply class) -> action.  Every action
#: is bounded (see :class:`PuaConfig`): 412 by ``max_412_attempts``, 423 by
#: requiring a longer Min-Expires each time, 3xx by ``max_redirects``,
#: backoff by ``retry_max`` and the publication's own lifetime.
POLICY: dict[tuple[Op, ReplyClass], Action] = {
    **{(Op.INITIAL, cls): action for cls, action in _ANY_UPDATE.items()},
    # a 412 to a request without SIP-If-Match names no precondition we set
    (Op.INITIAL, ReplyClass.CONDITIONAL): Action.FAIL,
    **{(Op.MODIFY, cls): action for cls, action in _ANY_UPDATE.items()},
    **{(Op.REFRESH, cls): action for cls, action in _ANY_UPDATE.items()},
    (Op.REMOVE, ReplyClass.SUCCESS): Action.FORGET,
    (Op.REMOVE, ReplyClass.REDIRECT): Action.REDIRECT,
    # nothing to remove: the server dropped it already
    (Op.REMOVE, ReplyClass.CONDITIONAL): Action.FORGET,
    (Op.REMOVE, ReplyClass.TOO_BRIEF): Action.FAIL,
    (Op.REMOVE, ReplyClass.TRANSIENT): Action.BACKOFF,
    (Op.REMOVE, ReplyClass.FATAL): Action.FAIL,
}

INSERT = int(UpdateType.INSERT_TYPE)


_V = TypeVar("_V")


class _OnDetour(Generic[_V]):
    """A :class:`Publication` attribute that lives in its :class:`_Detour`:
    ``default`` until something went wrong, and the detour is made on the
    first write."""

    __slots__ = ("default", "name")

    def __init__(self, default: _V) -> None:
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, record: Publication, owner: type | None = None) -> _V:
        detour = record.detour
        return self.default if detour is None else cast(_V, getattr(detour, self.name))

    def __set__(self, record: Publication, value: _V) -> None:
        setattr(record._detour(), self.name, value)


class Publication:
    """One publication: the desired state, the confirmed state, and what
    is under way.  Plain data: only the engine changes it."""

    __slots__ = (
        "alive",
        "body",
        "content_type",
        "desired_expires",
        "detour",
        "due",
        "etag",
        "event",
        "expires_at",
        "extra",
        "gen",
        "id",
        "in_flight",
        "min_granted",
        "modify_wanted",
        "outbound_proxy",
        "package",
        "pres_uri",
        "refresh_at",
        "refresh_wanted",
        "remove_wanted",
        "retry_at",
        "row_id",
        "serial",
        "source_flag",
        "tuple_id",
        "version",
        "waiters",
    )

    def __init__(
        self,
        serial: int,
        info: PublishInfo,
        package: EventPackage,
        *,
        body: bytes,
        content_type: str | None,
        tuple_id: str | None,
        extra: tuple[tuple[str, str], ...],
        outbound_proxy: str | None,
        desired_expires: float,
    ) -> None:
        self.serial = serial
        self.pres_uri = info.pres_uri
        self.event = int(info.event)
        self.source_flag = int(info.source_flag)
        self.id = info.id
        self.package = package
        #: processed body last asked for (what a 412 re-publishes)
        self.body = body
        self.content_type = content_type
        self.tuple_id = tuple_id
        self.extra = extra
        self.outbound_proxy = outbound_proxy
        #: absolute time until which to keep publishing; 0 = for ever
        self.desired_expires = desired_expires
        #: dialog-info / reginfo version counter, never reset (RFC 4235 §4.1)
        self.version = 0
        #: confirmed by the server
        self.etag: str | None = None
        self.expires_at = 0.0
        #: what still has to reach the server
        self.modify_wanted = False
        self.refresh_wanted = False
        self.remove_wanted = False
        self.in_flight: Op | None = None
        #: deadlines
        self.refresh_at = 0.0
        self.retry_at: float | None = None
        self.due: float | None = None
        #: retry counters and 3xx targets: made on
        #: first use, as most publications never need them
        self.detour: _Detour | None = None
        #: Min-Expires a server asked for (423); later requests ask at least that
        self.min_granted = 0
        #: bumped by every API request; waiters complete when a request
        #: carrying their generation completes
        self.gen = 0
        self.waiters: list[tuple[int, int, PublishInfo]] | None = None
        #: the database row holding it (None until written)
        self.row_id: int | None = None
        self.alive = True

    def _detour(self) -> _Detour:
        if self.detour is None:
            self.detour = _Detour()
        return self.detour

    #: consecutive transient failures (drives the backoff)
    failures: _OnDetour[int] = _OnDetour(0)
    #: 412 re-publications in a row
    recoveries: _OnDetour[int] = _OnDetour(0)
    #: 423 retries and 3xx targets used by the current request
    detours: _OnDetour[int] = _OnDetour(0)
    #: 3xx targets not tried yet
    redirects: _OnDetour[list[str] | None] = _OnDetour(None)
    #: the 3xx target in use (``None``: the presentity)
    target_uri: _OnDetour[str | None] = _OnDetour(None)

    def snapshot(self, now: float) -> dict[str, Any]:
        """The record as plain data (for introspection)."""
        return {
            "pres_uri": self.pres_uri,
            "event": self.package.name,
            "source_flag": self.source_flag,
            "id": self.id,
            "etag": self.etag,
            "expires_in": max(0.0, self.expires_at - now) if self.etag else None,
            "desired_expires": self.desired_expires,
            "version": self.version,
            "tuple_id": self.tuple_id,
            "in_flight": None if self.in_flight is None else str(self.in_flight),
            "pending": [
                name
                for name, flag in (
                    ("modify", self.modify_wanted),
                    ("refresh", self.refresh_wanted),
                    ("remove", self.remove_wanted),
                )
                if flag
            ],
            "next_refresh_in": (max(0.0, self.refresh_at - now) if self.etag else None),
            "retry_in": None if self.retry_at is None else max(0.0, self.retry_at - now),
            "failures": self.failures,
            "outbound_proxy": self.outbound_proxy,
        }


class _Detour:
    """What a publication keeps only once something went wrong."""

    __slots__ = ("detours", "failures", "recoveries", "redirects", "target_uri")

    def __init__(self) -> None:
        self.failures = 0
        self.recoveries = 0
        self.detours = 0
        self.redirects: list[str] | None = None
        self.target_uri: str | None = None


class _Flight:
    __slots__ = ("asked", "etag", "gen", "op", "record", "waited")

    def __init__(
        self, record: Publication, op: Op, *, gen: int, asked: int, etag: str | None, waited: bool
    ) -> None:
        self.record = record
        self.op = op
        self.gen = gen
        self.asked = asked
        self.etag = etag
        self.waited = waited


class PublishEngine(EngineBase[Publication, _Flight, PublishOutcome]):
    """Every publication of one pua instance."""

    def __init__(
        self,
        config: PuaConfig,
        registry: EventRegistry,
        rng: random.Random,
        *,
        local_host: str | None = None,
    ) -> None:
        super().__init__(config, registry, rng, local_host=local_host)
        # newest first per presentity, as Kamailio's hash chains (spec §6.1)
        # a presentity with one publication (the common case) maps to it
        # directly: a list per presentity would cost ~90 bytes each
        self._by_uri: dict[str, Publication | list[Publication]] = {}

    # ----------------------------------------------------------------- API
    def publish(self, info: PublishInfo, now: float) -> int:
        """Take one request; return its ticket.

        Raises a :class:`PublishError` (nothing sent, nothing changed) for
        an unknown event, a new publication without a body, an unknown
        entity-tag or a body its event package refuses.  Otherwise exactly
        one :class:`PublishOutcome` with this ticket follows, perhaps at
        once.  After calling this, drain :meth:`requests_to_send` and
        :meth:`events`.
        """
        package = self.registry.get(int(info.event))
        if package is None:
            raise UnknownEventError(f"event: no event package has flag {int(info.event)}")
        if not info.source_flag:
            raise PublishError("source_flag: must be a non-zero SourceFlag")
        record = self._find(info)
        if info.etag is not None and record is None:
            raise UnknownETagError(f"etag: no publication holds {info.etag!r}")
        if int(info.flag) & INSERT:
            record = None
        self._tickets += 1
        ticket = self._tickets
        if record is None:
            # only a new publication's presentity needs checking: one that
            # found a record is equal to a checked one
            self._check(info)
            record = self._insert(info, package, now)
            if record is None:
                # removing a publication that does not exist: done
                self._events.append(self._nothing_to_do(ticket, info))
                return ticket
        else:
            self._update(record, info, package, now)
        record.gen += 1
        if record.waiters is None:
            record.waiters = []
        record.waiters.append((ticket, record.gen, info))
        self._reconcile(record, now)
        return ticket

    def handle_response(self, token: int, response: Response, now: float, *, local: bool) -> None:
        """The final response to request ``token`` (``local``: made up by
        the transaction layer or the shell after a timeout or a transport
        failure).  Unknown tokens are ignored."""
        flight = self._flights.pop(token, None)
        if flight is None:
            return
        record = flight.record
        record.in_flight = None
        self.stats[f"reply-{response.status}"] += 1
        if not record.alive:
            return
        cls = classify(response.status)
        if record.redirects is not None and cls in (
            ReplyClass.REDIRECT,
            ReplyClass.TRANSIENT,
            ReplyClass.FATAL,
        ):
            # trying 3xx targets: every failure moves on to the next one
            action = Action.REDIRECT
        else:
            action = POLICY[(flight.op, cls)]
        if action is not Action.REDIRECT and record.redirects is not None:
            record.redirects = None
        handler = _HANDLERS[action]
        handler(self, flight, response, now, local)
        if record.alive:
            self._reconcile(record, now)

    def holds(self, info: PublishInfo) -> bool:
        """Whether a request like ``info`` would find a publication here
        (db_mode 2 looks in the database for one otherwise)."""
        return self._find(info) is not None

    def publications(self) -> Iterator[Publication]:
        for entry in list(self._by_uri.values()):
            if isinstance(entry, Publication):
                yield entry
            else:
                yield from entry

    def restore(
        self,
        *,
        pres_uri: str,
        event: int,
        source_flag: int,
        id: str,
        etag: str | None,
        expires_at: float,
        desired_expires: float,
        body: bytes | None,
        content_type: str | None,
        tuple_id: str | None,
        version: int,
        extra_headers: str | None,
        outbound_proxy: str | None,
        row_id: int | None,
        now: float,
    ) -> Publication | None:
        """Take back a publication from storage (times on this engine's
        clock).  With a live entity-tag it is refreshed when due (a 412 then
        re-publishes the stored body); a lapsed one is published anew.
        ``None`` for an event no package handles."""
        package = self.registry.get(event)
        if package is None:
            return None
        try:
            extra = parse_extra(extra_headers)
        except PublishError:
            extra = ()
        info = PublishInfo(pres_uri=pres_uri, event=event, source_flag=source_flag, id=id)
        self._serial += 1
        record = Publication(
            self._serial,
            info,
            package,
            body=body or b"",
            content_type=content_type or package.content_type,
            tuple_id=tuple_id or None,
            extra=extra,
            outbound_proxy=outbound_proxy or self.config.outbound_proxy,
            desired_expires=desired_expires,
        )
        record.etag = etag or None
        record.expires_at = expires_at
        record.version = version
        record.row_id = row_id
        if record.etag is not None and expires_at > now:
            record.refresh_at = refresh_time(self.config, self._rng, now, int(expires_at - now))
        self._index(record)
        self._reconcile(record, now)
        return record

    # ------------------------------------------------------ intake helpers
    def _check(self, info: PublishInfo) -> None:
        if not info.pres_uri:
            raise PublishError(f"pres_uri: not a SIP URI: {info.pres_uri!r}")
        try:
            uri = parse_uri(info.pres_uri)
        except PuaError as exc:
            raise PublishError(f"pres_uri: not a SIP URI: {info.pres_uri!r}") from exc
        if not isinstance(uri, SipUri):
            raise PublishError(f"pres_uri: must be a sip or sips URI: {info.pres_uri!r}")

    def _find(self, info: PublishInfo) -> Publication | None:
        # spec §6.2: flags and events overlap bitwise, the presentity is
        # equal byte for byte, the id only if given, the etag only if given
        entry = self._by_uri.get(info.pres_uri)
        if entry is None:
            return None
        for record in (entry,) if isinstance(entry, Publication) else entry:
            if (
                record.source_flag & info.source_flag
                and record.event & info.event
                and (not info.id or record.id == info.id)
                and (info.etag is None or record.etag == info.etag)
            ):
                return record
        return None

    def _insert(self, info: PublishInfo, package: EventPackage, now: float) -> Publication | None:
        if info.expires == 0:
            return None
        if info.body is None:
            raise NoBodyError("body: a new publication needs a body (RFC 3903 §4.1)")
        content_type = self._content_type(info, package)
        body, tuple_id = self._process(package, info.body, 0, None)
        extra = parse_extra(info.extra_headers)
        self._serial += 1
        record = Publication(
            self._serial,
            info,
            package,
            body=body,
            content_type=content_type,
            tuple_id=tuple_id,
            extra=extra,
            outbound_proxy=info.outbound_proxy or self.config.outbound_proxy,
            desired_expires=self._desired(info.expires, now),
        )
        self._index(record)
        return record

    def _index(self, record: Publication) -> None:
        entry = self._by_uri.get(record.pres_uri)
        if entry is None:
            self._by_uri[record.pres_uri] = record
        elif isinstance(entry, Publication):
            self._by_uri[record.pres_uri] = [record, entry]
        else:
            entry.insert(0, record)
        self._count += 1

    def _update(
        self, record: Publication, info: PublishInfo, package: EventPackage, now: float
    ) -> None:
        # everything that can fail runs before the record changes
        if info.expires == 0:
            # RFC 3903 §4.5: a removal carries no body
            record.remove_wanted = True
            record.modify_wanted = False
            record.refresh_wanted = False
            return
        version = record.version + 1
        extra = record.extra if info.extra_headers is None else parse_extra(info.extra_headers)
        if info.body is not None:
            content_type = self._content_type(info, package)
            body, _ = self._process(package, info.body, version, record.tuple_id)
            record.body = body
            record.content_type = content_type
            record.modify_wanted = True
        else:
            record.refresh_wanted = True
        record.version = version
        record.extra = extra
        if info.outbound_proxy:
            record.outbound_proxy = info.outbound_proxy
        record.desired_expires = self._desired(info.expires, now)
        record.remove_wanted = False

    def _content_type(self, info: PublishInfo, package: EventPackage) -> str:
        if not package.publishable:
            # presence.winfo and friends are for SUBSCRIBE only (RFC 3857)
            raise PublishError(
                f"event: {package.name} is a SUBSCRIBE-only event: a PUBLISH is refused"
            )
        content_type = info.content_type or package.content_type
        if not content_type:
            raise PublishError(
                f"content_type: event {package.name} has no default Content-Type: give one"
            )
        return content_type

    def _process(
        self, package: EventPackage, body: str | bytes, version: int, tuple_id: str | None
    ) -> tuple[bytes, str | None]:
        if package.process_body is None:
            return (body.encode() if isinstance(body, str) else body), tuple_id
        if isinstance(body, bytes):
            try:
                text = body.decode()
            except UnicodeDecodeError as exc:
                raise PublishError(f"body: not UTF-8 ({exc.reason})") from exc
        else:
            text = body
        try:
            done = package.process(BodyContext(text, version, tuple_id, self._new_id))
        except PuaError as exc:
            raise PublishError(f"body: {exc}") from exc
        return done.body.encode(), done.tuple_id

    def _new_id(self) -> str:
        # an XML ID must not start with a digit (RFC 3863 §4.1.2)
        return f"t{self._ids.token(64)}"

    # -------------------------------------------------------- the machine
    def _reconcile(self, record: Publication, now: float) -> None:
        """Send the next request the record needs, or schedule its next
        wake-up.  Called after every change."""
        self._touched(record)
        if record.in_flight is not None:
            return
        if self._backing_off(record, now):
            return
        if record.etag is not None and now >= record.expires_at:
            # lapsed at the server: its entity-tag means nothing now
            record.etag = None
        if record.remove_wanted:
            if record.etag is not None:
                self._send(record, Op.REMOVE, now)
            else:
                self._drop(record, "removed", None)
            return
        if record.desired_expires and now >= record.desired_expires:
            # the requested lifetime is over
            if record.etag is not None and self.config.final_remove:
                record.remove_wanted = True
                self._send(record, Op.REMOVE, now)
            else:
                self._drop(record, "lifetime over", None)
            return
        if record.etag is None:
            self._send(record, Op.INITIAL, now)
        elif record.modify_wanted:
            self._send(record, Op.MODIFY, now)
        elif self._refresh_due(record, now):
            self._send(record, Op.REFRESH, now)

    def _send(self, record: Publication, op: Op, now: float) -> None:
        asked = 0 if op is Op.REMOVE else self._asked_expires(record, now)
        if op is Op.INITIAL or op is Op.MODIFY:
            record.modify_wanted = False
            record.refresh_wanted = False
        elif op is Op.REFRESH:
            record.refresh_wanted = False
        record.due = None
        self._tokens += 1
        token = self._tokens
        etag = None if op is Op.INITIAL else record.etag
        waited = bool(record.waiters)
        self._flights[token] = _Flight(
            record, op, gen=record.gen, asked=asked, etag=etag, waited=waited
        )
        record.in_flight = op
        self.stats[f"sent-{op}"] += 1
        self._outgoing.append(
            OutgoingRequest(token, self._build(record, op, asked, etag), record.outbound_proxy)
        )

    def _build(self, record: Publication, op: Op, asked: int, etag: str | None) -> Request:
        ids = self._ids
        pres_uri = record.pres_uri
        if asked and self.config.expires_plus_one:
            asked += 1
        fields = [
            ("Max-Forwards", "70"),
            ("To", f"<{pres_uri}>"),
            ("From", f"<{pres_uri}>;tag={ids.tag()}"),
            ("Call-ID", ids.call_id(self._local_host)),
            ("CSeq", "1 PUBLISH"),
            ("Event", record.package.name),
            ("Expires", str(asked)),
        ]
        if etag is not None:
            fields.append(("SIP-If-Match", etag))
        body = b""
        if op is Op.INITIAL or op is Op.MODIFY:
            body = record.body
            if record.content_type:
                fields.append(("Content-Type", record.content_type))
        if record.extra:
            fields.extend(record.extra)
        return Request("PUBLISH", record.target_uri or pres_uri, Headers(fields), body)

    # ------------------------------------------------------ reply actions
    def _on_store(self, flight: _Flight, response: Response, now: float, local: bool) -> None:
        record = flight.record
        try:
            etag = response.sip_etag
        except PuaError:
            etag = None
        if etag is None:
            # RFC 3903 §11.3: a 2xx to PUBLISH carries SIP-ETag; without it
            # the publication cannot be refreshed, modified or removed
            self._fail(flight, response, now, local, "2xx without SIP-ETag")
            return
        try:
            granted = response.expires
        except PuaError:
            granted = None
        if granted is None:
            # RFC 3903 §4.1 requires Expires in the 2xx; be lenient, as the
            # request's value is what the server would have granted
            granted = flight.asked
        if granted == 0:
            # the server ended it at once
            record.etag = None
            self._fail(flight, response, now, local, "server granted 0")
            return
        record.etag = etag
        record.expires_at = now + granted
        detour = record.detour
        if detour is not None:
            detour.failures = 0
            detour.detours = 0
            if flight.op is not Op.INITIAL:
                # an entity-tag the server remembered: the 412 chain is over
                detour.recoveries = 0
        record.refresh_at = self._refresh_time(now, granted)
        self._finish_waiters(flight, response, now, local)

    def _refresh_time(self, now: float, granted: int) -> float:
        return refresh_time(self.config, self._rng, now, granted)

    def _on_forget(self, flight: _Flight, response: Response, now: float, local: bool) -> None:
        record = flight.record
        record.etag = None
        if record.remove_wanted:
            self._finish_waiters(flight, response, now, local, ended=True)
            self._drop(record, "removed", response)
        else:
            # removed, but a newer request wants it published again
            self._finish_waiters(flight, response, now, local)

    def _on_republish(self, flight: _Flight, response: Response, now: float, local: bool) -> None:
        record = flight.record
        if record.recoveries >= self.config.max_412_attempts:
            self._fail(flight, response, now, local, "412 recovery limit reached")
            return
        record.recoveries += 1
        self.stats["412-recoveries"] += 1
        record.etag = None
        if record.package.uses_version:
            # keep dialog-info / reginfo versions monotonic across the new
            # publication (RFC 4235 §4.1, RFC 3680 §5.1)
            version = record.version + 1
            try:
                body, _ = self._process(record.package, record.body, version, record.tuple_id)
            except PublishError:
                self._fail(flight, response, now, local, "stored body no longer processes")
                return
            record.body = body
            record.version = version
        if record.recoveries > 1:
            # a server that keeps forgetting: do not hammer it
            record.retry_at = now + self._backoff(record.recoveries - 1, None)

    def _on_retry_longer(
        self, flight: _Flight, response: Response, now: float, local: bool
    ) -> None:
        record = flight.record
        try:
            minimum = response.min_expires
        except PuaError:
            minimum = None
        if minimum is None or minimum <= flight.asked or record.detours >= self._max_detours():
            self._fail(flight, response, now, local, "423 without a usable Min-Expires")
            return
        record.detours += 1
        record.min_granted = minimum
        self._restore(flight)

    def _on_redirect(self, flight: _Flight, response: Response, now: float, local: bool) -> None:
        record = flight.record
        if record.redirects is None:
            if not 300 <= response.status < 400:
                self._fail(flight, response, now, local, "")
                return
            record.redirects = _redirect_targets(response)[: self.config.max_redirects]
        if not record.redirects or record.detours >= self._max_detours():
            record.redirects = None
            record.target_uri = None
            self._fail(flight, response, now, local, "no 3xx target left")
            return
        record.detours += 1
        record.target_uri = record.redirects.pop(0)
        self._restore(flight)

    def _on_backoff(self, flight: _Flight, response: Response, now: float, local: bool) -> None:
        record = flight.record
        if flight.op is Op.REMOVE and (record.etag is None or now >= record.expires_at):
            # nothing left to remove: it lapsed at the server
            self._on_forget(flight, response, now, local)
            return
        record.failures += 1
        retry_after: int | None = None
        try:
            header = response.retry_after
        except PuaError:
            header = None
        if header is not None:
            retry_after = header.seconds
        record.retry_at = now + self._backoff(record.failures, retry_after)
        self.stats["backoffs"] += 1
        self._restore(flight)
        self._finish_waiters(flight, response, now, local, retrying=True, failed=True)

    def _on_fail(self, flight: _Flight, response: Response, now: float, local: bool) -> None:
        self._fail(flight, response, now, local, "")

    def _fail(self, flight: _Flight, response: Response, now: float, local: bool, why: str) -> None:
        record = flight.record
        if why:
            self.stats[f"failed-{why}"] += 1
        if record.gen > flight.gen and (record.modify_wanted or record.remove_wanted):
            # a newer request waits: it decides what happens next
            self._finish_waiters(flight, response, now, local, reason=why, failed=True)
            return
        self._finish_waiters(flight, response, now, local, ended=True, reason=why, failed=True)
        self._drop(record, why or response.reason, response)

    def _restore(self, flight: _Flight) -> None:
        # the request did not get through: what it carried is wanted again
        record = flight.record
        if flight.op is Op.MODIFY:
            record.modify_wanted = True
        elif flight.op is Op.REFRESH:
            record.refresh_wanted = True
        elif flight.op is Op.REMOVE:
            record.remove_wanted = True

    def _max_detours(self) -> int:
        return self.config.max_redirects + 3

    def _backoff(self, failures: int, retry_after: int | None) -> float:
        return backoff(self.config, self._rng, failures, retry_after)

    # ---------------------------------------------------------- reporting
    def _finish_waiters(
        self,
        flight: _Flight,
        response: Response,
        now: float,
        local: bool,
        *,
        ended: bool = False,
        retrying: bool = False,
        reason: str = "",
        failed: bool = False,
    ) -> None:
        record = flight.record
        granted = None
        if record.etag is not None and record.expires_at > now:
            granted = round(record.expires_at - now)
        how: dict[str, Any] = {
            "local": local,
            "granted": granted,
            "ended": ended,
            "retrying": retrying,
            "reason": reason,
            "failed": failed,
        }
        answered, record.waiters = due_waiters(record.waiters, flight.gen)
        for ticket, info in answered:
            self._events.append(self._outcome(ticket, info, flight, response, **how))
        if not flight.waited:
            # pua's own refresh or removal
            self._events.append(self._outcome(None, None, flight, response, **how))

    @staticmethod
    def _outcome(
        ticket: int | None,
        info: PublishInfo | None,
        flight: _Flight,
        response: Response,
        *,
        local: bool,
        granted: int | None,
        ended: bool,
        retrying: bool,
        reason: str,
        failed: bool,
    ) -> PublishOutcome:
        record = flight.record
        return PublishOutcome(
            ticket=ticket,
            info=info,
            pres_uri=record.pres_uri,
            event=record.event,
            source_flag=record.source_flag,
            id=record.id,
            op=str(flight.op),
            status=response.status,
            reason=reason or response.reason,
            response=None if local else response,
            local=local,
            etag=record.etag,
            sent_etag=flight.etag,
            expires=granted,
            ended=ended,
            retrying=retrying,
            ok=not failed and 200 <= response.status < 300,
        )

    def _nothing_to_do(self, ticket: int, info: PublishInfo) -> PublishOutcome:
        return PublishOutcome(
            ticket=ticket,
            info=info,
            pres_uri=info.pres_uri,
            event=int(info.event),
            source_flag=int(info.source_flag),
            id=info.id,
            op=None,
            status=None,
            reason="no such publication",
            ended=True,
        )

    def _drop(
        self,
        record: Publication,
        why: str,
        response: Response | None,
        *,
        stored: bool = True,
    ) -> None:
        if not record.alive:
            return
        record.alive = False
        record.due = None
        self._count -= 1
        self._ended(record, stored=stored)
        entry = self._by_uri[record.pres_uri]
        if entry is record:
            del self._by_uri[record.pres_uri]
        elif isinstance(entry, list):
            entry.remove(record)
            if len(entry) == 1:
                self._by_uri[record.pres_uri] = entry[0]
        self.stats["ended"] += 1
        waiters = record.waiters
        record.waiters = None
        if waiters:
            for ticket, _, info in waiters:
                self._events.append(
                    PublishOutcome(
                        ticket=ticket,
                        info=info,
                        pres_uri=record.pres_uri,
                        event=record.event,
                        source_flag=record.source_flag,
                        id=record.id,
                        op=None,
                        status=None if response is None else response.status,
                        reason=why,
                        ended=True,
                        ok=response is None,
                    )
                )


_HANDLERS = {
    Action.STORE: PublishEngine._on_store,
    Action.FORGET: PublishEngine._on_forget,
    Action.REPUBLISH: PublishEngine._on_republish,
    Action.RETRY_LONGER: PublishEngine._on_retry_longer,
    Action.REDIRECT: PublishEngine._on_redirect,
    Action.BACKOFF: PublishEngine._on_backoff,
    Action.FAIL: PublishEngine._on_fail,
}


def _redirect_targets(response: Response) -> list[str]:
    """3xx Contacts, highest q first (RFC 3261 §8.1.3.4)."""
    try:
        contacts = response.contacts
    except PuaError:
        return []
    ranked: list[tuple[float, int, str]] = []
    for index, contact in enumerate(contacts):
        try:
            uri = parse_uri(contact.uri)
            q = float(contact.params.get("q") or 1.0)
        except (PuaError, ValueError):
            continue
        if isinstance(uri, SipUri):
            ranked.append((-q, index, contact.uri))
    ranked.sort()
    return [uri for _, _, uri in ranked]
