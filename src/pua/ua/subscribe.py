"""The SUBSCRIBE engine (RFC 6665, subscriber side), sans-IO.

One :class:`Subscription` per subscription, keyed like Kamailio's records
(presentity, watcher, event, source flag, id).  It holds what the
application wants (lifetime, contact, extra headers) and the dialog the
notifier made (Call-ID, tags, route set, remote target, CSeqs, expiry).

* The initial SUBSCRIBE makes a *pending* record that already knows its
  Call-ID and local tag, so a NOTIFY arriving before the 2xx is recognised
  and establishes the dialog (RFC 6665 §4.1.2.4).
* Refreshes go in the dialog (RFC 3261 §12.2.1.1), by per-record deadline
  with jitter; a subscription asked for ever stays for ever.
* Unsubscribing sends Expires: 0 in the dialog and waits (bounded) for the
  final NOTIFY; an unsubscribe that fails is never revived.
* NOTIFYs are answered here: 200 for our dialogs, 481 for unknown ones,
  400 without Event or Subscription-State, 489 for another event.
  ``terminated`` with deactivated/timeout (at once) or probation (after
  retry-after) starts a new subscription; rejected, noresource, giveup and
  invariant end it.
* Replies go through one policy (:func:`classify_refresh`, documented per
  row): 481 and 408 on a refresh start a new dialog with backoff; 423
  retries with Min-Expires; 5xx backs off; other failures end it.

Inputs: :meth:`SubscribeEngine.subscribe`, :meth:`handle_response`,
:meth:`handle_notify`, :meth:`handle_timer`.  Outputs:
:meth:`requests_to_send`, :meth:`events`, :meth:`get_timer`.
"""

from __future__ import annotations

import functools
import random
import sys
from collections.abc import Iterator
from enum import IntEnum, StrEnum
from typing import Any

from pua.config import PuaConfig
from pua.errors import PuaError, SubscribeError
from pua.evpkg.registry import EventPackage, EventRegistry
from pua.model import (
    INTERNAL_UPDATE_TRUE,
    SourceFlag,
    SubscribeInfo,
    UpdateType,
)
from pua.sip.build import make_response
from pua.sip.fields import EventHeader, parse_event, parse_name_addr
from pua.sip.headers import Headers
from pua.sip.message import Request, Response
from pua.sip.uri import SipUri, parse_uri
from pua.ua.common import (
    OWN_HEADERS,
    EngineBase,
    backoff,
    due_waiters,
    parse_extra,
    refresh_time,
)
from pua.ua.events import NotifyReceived, OutgoingRequest, SubscribeOutcome

__all__ = [
    "DialogStatus",
    "SubOp",
    "SubscribeEngine",
    "Subscription",
]

_OWN = OWN_HEADERS | {"contact", "m"}
_XMPP_INITIAL = int(SourceFlag.XMPP_INITIAL_SUBS)
_XMPP_SUBSCRIBE = int(SourceFlag.XMPP_SUBSCRIBE)
_INSERT = int(UpdateType.INSERT_TYPE)

#: how far a restored dialog's CSeq jumps past the stored one
RESTORE_CSEQ_STEP = 1000

#: ``linger_until`` once the final NOTIFY came before the unsubscribe's 2xx
_FINAL_NOTIFIED = -1.0

#: Subscription-State reasons after which a new subscription is made
#: (RFC 6665 §4.1.3): at once, or after retry-after (probation)
_RESUBSCRIBE = frozenset({"deactivated", "timeout", "probation"})


class SubOp(StrEnum):
    INITIAL = "initial"  # out of dialog
    REFRESH = "refresh"  # in the dialog, Expires > 0
    UNSUBSCRIBE = "unsubscribe"  # in the dialog, Expires: 0


class DialogStatus(IntEnum):
    """:meth:`SubscribeEngine.is_dialog`, with Kamailio's values."""

    ESTABLISHED = 0
    TEMPORARY = 1
    NONE = -1


class Subscription:
    """One subscription and its dialog.  Plain data."""

    __slots__ = (
        "alive",
        "call_id",
        "cb_param",
        "contact",
        "desired_expires",
        "due",
        "event",
        "expires_at",
        "extra",
        "failures",
        "gen",
        "id",
        "in_flight",
        "linger_until",
        "local_cseq",
        "local_tag",
        "min_granted",
        "outbound_proxy",
        "package",
        "pres_uri",
        "refresh_at",
        "refresh_wanted",
        "remote_cseq",
        "remote_tag",
        "remote_target",
        "requested_target",
        "retry_at",
        "route_set",
        "row_id",
        "serial",
        "source_flag",
        "state",
        "unsubscribe_wanted",
        "waiters",
        "watcher_uri",
    )

    def __init__(
        self, serial: int, info: SubscribeInfo, package: EventPackage, source_flag: int
    ) -> None:
        self.serial = serial
        self.pres_uri = info.pres_uri
        self.watcher_uri = info.watcher_uri
        self.event = int(info.event)
        self.source_flag = source_flag
        self.id = info.id
        self.package = package
        self.contact = info.contact
        self.extra: tuple[tuple[str, str], ...] = ()
        self.outbound_proxy: str | None = info.outbound_proxy
        self.cb_param = info.cb_param
        #: the caller's remote target: the first Request-URI and a lookup key
        self.requested_target = info.remote_target
        #: absolute end of the wanted lifetime; 0 = for ever
        self.desired_expires = 0.0
        # the dialog (RFC 3261 §12): made at the first send
        self.call_id = ""
        self.local_tag = ""
        self.remote_tag: str | None = None
        self.route_set: tuple[str, ...] = ()
        self.remote_target = info.remote_target or info.pres_uri
        self.local_cseq = 0
        self.remote_cseq: int | None = None
        #: last Subscription-State value seen ("" before any NOTIFY)
        self.state = ""
        self.expires_at = 0.0
        self.refresh_at = 0.0
        self.retry_at: float | None = None
        self.due: float | None = None
        #: after an unsubscribe's 2xx: wait for the final NOTIFY until then
        self.linger_until: float | None = None
        self.in_flight: SubOp | None = None
        self.refresh_wanted = False
        self.unsubscribe_wanted = False
        self.failures = 0
        self.min_granted = 0
        self.gen = 0
        self.waiters: list[tuple[int, int, SubscribeInfo]] | None = None
        #: the database row holding it (None until written)
        self.row_id: int | None = None
        self.alive = True

    @property
    def established(self) -> bool:
        return self.remote_tag is not None

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "pres_uri": self.pres_uri,
            "watcher_uri": self.watcher_uri,
            "event": self.package.name,
            "source_flag": self.source_flag,
            "id": self.id,
            "call_id": self.call_id,
            "local_tag": self.local_tag,
            "remote_tag": self.remote_tag,
            "remote_target": self.remote_target,
            "route_set": list(self.route_set),
            "state": self.state or ("pending" if self.remote_tag is None else "accepted"),
            "expires_in": max(0.0, self.expires_at - now) if self.established else None,
            "desired_expires": self.desired_expires,
            "in_flight": None if self.in_flight is None else str(self.in_flight),
            "retry_in": None if self.retry_at is None else max(0.0, self.retry_at - now),
            "failures": self.failures,
        }


class _Flight:
    __slots__ = ("asked", "gen", "op", "record", "waited")

    def __init__(
        self, record: Subscription, op: SubOp, *, gen: int, asked: int, waited: bool
    ) -> None:
        self.record = record
        self.op = op
        self.gen = gen
        self.asked = asked
        self.waited = waited


class SubscribeEngine(EngineBase[Subscription, _Flight, SubscribeOutcome | NotifyReceived]):
    """Every subscription of one pua instance."""

    def __init__(
        self,
        config: PuaConfig,
        registry: EventRegistry,
        rng: random.Random,
        *,
        local_host: str | None = None,
        unsubscribe_wait: float = 32.0,
    ) -> None:
        super().__init__(config, registry, rng, local_host=local_host)
        #: how long to wait for the final NOTIFY after an unsubscribe's 2xx
        #: (64*T1: the notifier's NOTIFY transaction has timed out by then)
        self.unsubscribe_wait = unsubscribe_wait
        self._by_dialog: dict[tuple[str, str], Subscription] = {}
        # one subscription per (presentity, watcher), the common case, maps
        # to it directly: a list each would cost ~90 bytes
        self._by_pair: dict[tuple[str, str], Subscription | list[Subscription]] = {}
        #: checked URIs (watcher and contact repeat across subscriptions)
        self._checked: dict[str, None] = {}

    # ================================================================ API
    def subscribe(self, info: SubscribeInfo, now: float) -> int:
        """Take one request; return its ticket (one outcome follows).

        Raises :class:`SubscribeError` for an unknown event, a missing
        contact, URIs that are not SIP URIs, or bad extra headers.
        """
        package = self.registry.get(int(info.event))
        if package is None:
            raise SubscribeError(f"event: no event package has flag {int(info.event)}")
        if not info.source_flag:
            raise SubscribeError("source_flag: must be a non-zero SourceFlag")
        if not info.contact:
            raise SubscribeError("contact: a SUBSCRIBE needs a Contact URI")
        extra = parse_extra(info.extra_headers, _OWN, SubscribeError)
        source_flag = _stored_flag(info)
        record = None if int(info.flag) & _INSERT else self._find(info, source_flag)
        self._tickets += 1
        ticket = self._tickets
        if record is not None and info.internal_update_flag == INTERNAL_UPDATE_TRUE:
            self._events.append(self._nothing(ticket, info, "internal update: not re-sent"))
            return ticket
        if record is None:
            if info.expires == 0:
                self._events.append(self._nothing(ticket, info, "no such subscription"))
                return ticket
            for field in ("pres_uri", "watcher_uri", "contact", "remote_target"):
                text = getattr(info, field)
                if text is not None and text not in self._checked:
                    _check_uri(field, text)
                    if len(self._checked) >= 1024:
                        self._checked.clear()
                    self._checked[text] = None
            self._serial += 1
            record = Subscription(self._serial, info, package, source_flag)
            record.extra = extra
            record.outbound_proxy = info.outbound_proxy or self.config.outbound_proxy
            record.desired_expires = self._desired(info.expires, now)
            self._index(record)
        elif info.expires == 0:
            record.unsubscribe_wanted = True
            record.refresh_wanted = False
        else:
            record.unsubscribe_wanted = False
            if record.linger_until is not None and record.in_flight is None:
                # unsubscribed, waiting for the final NOTIFY: start again
                record.linger_until = None
                self._forget_dialog(record)
            # a dialog not made yet: the coming 2xx answers this request
            # too, and the new lifetime applies from the next refresh
            joins = record.in_flight is SubOp.INITIAL and not record.established
            record.refresh_wanted = not joins
            record.desired_expires = self._desired(info.expires, now)
            record.contact = info.contact
            if info.extra_headers is not None:
                record.extra = extra
            if info.cb_param is not None:
                record.cb_param = info.cb_param
        if not (record.in_flight is SubOp.INITIAL and not record.established and info.expires):
            record.gen += 1
        if record.waiters is None:
            record.waiters = []
        record.waiters.append((ticket, record.gen, info))
        self._reconcile(record, now)
        return ticket

    def handle_response(self, token: int, response: Response, now: float, *, local: bool) -> None:
        """The final response to request ``token``."""
        flight = self._flights.pop(token, None)
        if flight is None:
            return
        record = flight.record
        record.in_flight = None
        self.stats[f"reply-{response.status}"] += 1
        if not record.alive:
            return
        if flight.op is SubOp.INITIAL:
            self._initial_reply(flight, response, now, local)
        elif flight.op is SubOp.UNSUBSCRIBE:
            self._unsubscribe_reply(flight, response, now, local)
        else:
            self._refresh_reply(flight, response, now, local)
        if record.alive:
            self._reconcile(record, now)

    def handle_notify(self, request: Request, now: float) -> Response:
        """Answer a NOTIFY (RFC 6665 §4.1.3); our dialogs get 200 and a
        :class:`NotifyReceived` event."""
        try:
            call_id = request.call_id
            local_tag = request.to.tag
            remote_tag = request.from_.tag
            event = request.event
            sub_state = request.subscription_state
            cseq = request.cseq.seq
        except PuaError as exc:
            reason = getattr(exc, "reason", "bad-request")
            return self._answer(request, 400, f"Bad Request ({reason})")
        record = self._by_dialog.get((call_id, local_tag or ""))
        if record is None or not record.alive:
            self.stats["notify-481"] += 1
            return self._answer(request, 481)
        if record.remote_tag and remote_tag != record.remote_tag:
            # a second dialog from a forking proxy: pua keeps the first
            self.stats["notify-481"] += 1
            return self._answer(request, 481)
        if event is None or sub_state is None:
            missing = "Event" if event is None else "Subscription-State"
            return self._answer(request, 400, f"Bad Request (missing {missing})")
        if not _same_event(event, record.package.name):
            return self._answer(request, 489)
        if record.remote_cseq is not None and cseq <= record.remote_cseq:
            # RFC 3261 §12.2.2: an old or repeated CSeq in the dialog
            return self._answer(request, 500, "Server Internal Error (CSeq out of order)")
        try:
            expires = sub_state.expires
            retry_after = sub_state.retry_after
            contacts = request.contacts
            # the route set is fixed when the dialog is made (RFC 3261 §12.1)
            record_route = request.record_route if record.remote_tag is None else []
        except PuaError as exc:
            reason = getattr(exc, "reason", "bad-request")
            return self._answer(request, 400, f"Bad Request ({reason})")
        if record.remote_tag is None:
            # RFC 6665 §4.1.2.4: the NOTIFY establishes the dialog; the
            # route set of a dialog made by a request is its Record-Route
            # in order (RFC 3261 §12.1.1)
            record.remote_tag = remote_tag or ""
            record.route_set = tuple(str(r) for r in record_route)
        elif not record.remote_tag and remote_tag:
            # the 2xx had no To tag: the NOTIFY names the notifier's
            record.remote_tag = remote_tag
        record.remote_cseq = cseq
        if contacts:
            # NOTIFY is a target refresh request (RFC 6665 §4.1.3)
            record.remote_target = contacts[0].uri
        state = sys.intern(sub_state.state.lower())
        reason = sub_state.reason
        record.state = state
        action = ""
        self.stats[f"notify-{state}"] += 1
        if state in ("active", "pending"):
            if expires is not None:
                record.expires_at = now + expires
                refresh = refresh_time(self.config, self._rng, now, expires)
                if not record.refresh_at or refresh < record.refresh_at:
                    record.refresh_at = refresh
        else:
            # "terminated", or a state we do not know (§4.1.3: as terminated)
            action = self._terminated(record, reason, retry_after, now)
        self._events.append(
            NotifyReceived(
                pres_uri=record.pres_uri,
                watcher_uri=record.watcher_uri,
                event=record.event,
                source_flag=record.source_flag,
                id=record.id,
                cb_param=record.cb_param,
                state=state,
                expires=expires,
                reason=reason,
                retry_after=retry_after,
                body=request.body,
                content_type=request.headers.get("Content-Type"),
                request=request,
                action=action,
            )
        )
        if record.alive:
            self._reconcile(record, now)
        return self._answer(request, 200)

    def _answer(self, request: Request, status: int, reason: str | None = None) -> Response:
        # a NOTIFY in a dialog has our tag in To; one that has none gets one
        # (RFC 3261 §8.2.6.2)
        try:
            tagged = request.to.tag is not None
        except PuaError:
            tagged = False
        return make_response(request, status, reason, to_tag=None if tagged else self._ids.tag())

    def _index(self, record: Subscription) -> None:
        pair = (record.pres_uri, record.watcher_uri)
        entry = self._by_pair.get(pair)
        if entry is None:
            self._by_pair[pair] = record
        elif isinstance(entry, Subscription):
            self._by_pair[pair] = [record, entry]
        else:
            entry.insert(0, record)
        self._count += 1

    def restore(
        self,
        *,
        pres_uri: str,
        watcher_uri: str,
        contact: str,
        event: int,
        source_flag: int,
        id: str,
        call_id: str,
        local_tag: str,
        remote_tag: str,
        route_set: tuple[str, ...],
        remote_target: str,
        requested_target: str | None,
        local_cseq: int,
        remote_cseq: int | None,
        expires_at: float,
        desired_expires: float,
        extra_headers: str | None,
        outbound_proxy: str | None,
        row_id: int | None,
        now: float,
    ) -> Subscription | None:
        """Take back a subscription from storage (times on this engine's
        clock).  A dialog still valid is refreshed in the dialog when due
        (a 481 then makes a new one); an expired one is subscribed anew.
        ``None`` for an event no package handles."""
        package = self.registry.get(event)
        if package is None:
            return None
        try:
            extra = parse_extra(extra_headers, _OWN, SubscribeError)
        except SubscribeError:
            extra = ()
        info = SubscribeInfo(
            pres_uri=pres_uri,
            watcher_uri=watcher_uri,
            contact=contact,
            event=event,
            source_flag=source_flag,
            id=id,
            remote_target=requested_target,
        )
        self._serial += 1
        record = Subscription(self._serial, info, package, source_flag)
        record.extra = extra
        record.outbound_proxy = outbound_proxy or self.config.outbound_proxy
        record.desired_expires = desired_expires
        record.row_id = row_id
        if call_id and local_tag:
            record.call_id = call_id
            record.local_tag = local_tag
            # the stored CSeq may be behind the last one sent (a crash
            # between a refresh and the next write-back): jump ahead, as
            # CSeqs need only increase (RFC 3261 §12.2.1.1)
            record.local_cseq = local_cseq + RESTORE_CSEQ_STEP
            self._by_dialog[(call_id, local_tag)] = record
            if remote_tag:
                record.remote_tag = remote_tag
                record.route_set = route_set
                record.remote_target = remote_target or record.remote_target
                record.remote_cseq = remote_cseq
                record.expires_at = expires_at
                if expires_at > now:
                    record.refresh_at = refresh_time(
                        self.config, self._rng, now, int(expires_at - now)
                    )
        self._index(record)
        self._reconcile(record, now)
        return record

    def holds(self, info: SubscribeInfo) -> bool:
        """Whether a request like ``info`` would find a subscription here
        (db_mode 2 looks in the database for one otherwise)."""
        return self._find(info, _stored_flag(info)) is not None

    def knows_dialog(self, call_id: str, local_tag: str) -> bool:
        """Whether a dialog with this Call-ID and our tag is here."""
        return (call_id, local_tag) in self._by_dialog

    def subscriptions(self) -> Iterator[Subscription]:
        for entry in list(self._by_pair.values()):
            if isinstance(entry, Subscription):
                yield entry
            else:
                yield from entry

    # ------------------------------------------------------------ lookups
    def is_dialog(self, call_id: str, local_tag: str, remote_tag: str | None) -> DialogStatus:
        """Kamailio's ``is_dialog``: ESTABLISHED when a dialog has this
        Call-ID, our tag and the remote tag (exact matches, never
        prefixes); TEMPORARY when only Call-ID and our tag match; NONE."""
        record = self._by_dialog.get((call_id, local_tag))
        if record is None:
            return DialogStatus.NONE
        if remote_tag and record.remote_tag == remote_tag:
            return DialogStatus.ESTABLISHED
        return DialogStatus.TEMPORARY

    def get_record_id(self, call_id: str, local_tag: str, remote_tag: str | None) -> str | None:
        """The ``id`` of the subscription of that dialog, or ``None``."""
        if self.is_dialog(call_id, local_tag, remote_tag) is DialogStatus.NONE:
            return None
        return self._by_dialog[(call_id, local_tag)].id

    def get_subs_list(self, did: str) -> list[str]:
        """The presentities of the subscriptions whose id is exactly
        ``did`` (Kamailio compares a prefix), sorted, duplicates kept."""
        return sorted(r.pres_uri for r in self.subscriptions() if r.id == did and r.pres_uri)

    def update_contact(self, notify: Request) -> bool:
        """What Kamailio's ``pua_update_contact()`` was meant to do: find
        the dialog of ``notify`` (its To tag is ours, its From tag the
        notifier's) and store its first Contact URI as the remote target."""
        try:
            call_id = notify.call_id
            local_tag = notify.to.tag
            remote_tag = notify.from_.tag
            contacts = notify.contacts
        except PuaError:
            return False
        record = self._by_dialog.get((call_id, local_tag or ""))
        if record is None or record.remote_tag != remote_tag or not contacts:
            return False
        record.remote_target = contacts[0].uri
        return True

    # ------------------------------------------------------------- intake
    def _find(self, info: SubscribeInfo, source_flag: int) -> Subscription | None:
        # spec §6.3: flags and events overlap bitwise, presentity and
        # watcher equal, id only if given; the remote target only when the
        # caller gives one and check_remote_contact is set (a lookup
        # without one still finds the dialog: unsubscribe must work)
        entry = self._by_pair.get((info.pres_uri, info.watcher_uri))
        if entry is None:
            return None
        records = (entry,) if isinstance(entry, Subscription) else entry
        check = self.config.check_remote_contact and info.remote_target
        for record in records:
            if not (record.source_flag & source_flag and record.event & info.event):
                continue
            if info.id and record.id != info.id:
                continue
            if check and info.remote_target not in (record.requested_target, record.remote_target):
                continue
            return record
        return None

    # -------------------------------------------------------- the machine
    def _reconcile(self, record: Subscription, now: float) -> None:
        self._touched(record)
        if record.in_flight is not None:
            return
        if self._backing_off(record, now):
            return
        if record.linger_until is not None:
            # unsubscribed: waiting for the final NOTIFY
            if now >= record.linger_until:
                self._drop(record, "unsubscribed (no final NOTIFY)", None)
            else:
                self._schedule(record, record.linger_until)
            return
        if record.established and now >= record.expires_at:
            # lapsed at the notifier: the dialog is gone with it
            self._forget_dialog(record)
        if record.unsubscribe_wanted:
            if record.established:
                self._send(record, SubOp.UNSUBSCRIBE, now)
            else:
                self._drop(record, "unsubscribed", None)
            return
        if record.desired_expires and now >= record.desired_expires:
            if record.established and now < record.expires_at:
                record.unsubscribe_wanted = True
                self._send(record, SubOp.UNSUBSCRIBE, now)
            else:
                self._drop(record, "lifetime over", None)
            return
        if not record.established:
            self._send(record, SubOp.INITIAL, now)
            return
        if self._refresh_due(record, now):
            self._send(record, SubOp.REFRESH, now)

    def _send(self, record: Subscription, op: SubOp, now: float) -> None:
        asked = 0 if op is SubOp.UNSUBSCRIBE else self._asked_expires(record, now)
        if op is SubOp.INITIAL:
            # a new dialog: new Call-ID and tag (RFC 3261 §12.1.2)
            self._forget_dialog(record)
            record.call_id = self._ids.call_id(self._local_host)
            record.local_tag = self._ids.tag()
            record.local_cseq = 0
            self._by_dialog[(record.call_id, record.local_tag)] = record
        record.refresh_wanted = False
        record.due = None
        record.local_cseq += 1
        self._tokens += 1
        token = self._tokens
        waited = bool(record.waiters)
        self._flights[token] = _Flight(record, op, gen=record.gen, asked=asked, waited=waited)
        record.in_flight = op
        self.stats[f"sent-{op}"] += 1
        request, destination = self._build(record, op, asked)
        self._outgoing.append(OutgoingRequest(token, request, destination))

    def _build(self, record: Subscription, op: SubOp, asked: int) -> tuple[Request, str | None]:
        to = f"<{record.pres_uri}>"
        if record.remote_tag:
            to += f";tag={record.remote_tag}"
        fields = [
            ("Max-Forwards", "70"),
            ("To", to),
            ("From", f"<{record.watcher_uri}>;tag={record.local_tag}"),
            ("Call-ID", record.call_id),
            ("CSeq", f"{record.local_cseq} SUBSCRIBE"),
            ("Event", record.package.name),
            ("Contact", f"<{record.contact}>"),
            ("Expires", str(asked)),
        ]
        if op is SubOp.INITIAL:
            uri = record.requested_target or record.pres_uri
            destination = record.outbound_proxy
        else:
            uri, routes = _in_dialog_target(record.remote_target, record.route_set)
            fields[1:1] = [("Route", route) for route in routes]
            destination = None
        if record.extra:
            fields.extend(record.extra)
        return Request("SUBSCRIBE", uri, Headers(fields)), destination

    # ------------------------------------------------------ reply handling
    def _initial_reply(self, flight: _Flight, response: Response, now: float, local: bool) -> None:
        record = flight.record
        status = response.status
        if 200 <= status < 300:
            try:
                remote_tag = response.to.tag
                contacts = response.contacts
                routes = response.record_route
                granted = response.expires
            except PuaError:
                remote_tag, contacts, routes, granted = None, [], [], None
            if granted is None:
                granted = flight.asked
            if granted == 0:
                # RFC 6665 §4.1.2.1: nothing was subscribed
                self._fail(flight, response, now, local, "2xx with Expires: 0")
                return
            if record.remote_tag is None:
                # RFC 3261 §12.1.2: the route set is the 2xx Record-Route
                # reversed, the remote target its Contact
                record.remote_tag = remote_tag or ""
                record.route_set = tuple(str(r) for r in reversed(routes))
                if contacts:
                    record.remote_target = contacts[0].uri
            record.expires_at = now + granted
            record.refresh_at = refresh_time(self.config, self._rng, now, granted)
            record.failures = 0
            self._finish(flight, response, local, granted=granted)
            return
        if status == 423:
            self._retry_longer(flight, response, now, local)
            return
        if status == 408 or 500 <= status < 600:
            self._backoff(flight, response, now, local)
            return
        self._fail(flight, response, now, local, "")

    def _refresh_reply(self, flight: _Flight, response: Response, now: float, local: bool) -> None:
        record = flight.record
        status = response.status
        if 200 <= status < 300:
            try:
                contacts = response.contacts
                granted = response.expires
            except PuaError:
                contacts, granted = [], None
            if granted is None:
                granted = flight.asked
            if granted == 0:
                self._forget_dialog(record)
                self._fail(flight, response, now, local, "2xx with Expires: 0")
                return
            if contacts:
                record.remote_target = contacts[0].uri
            record.expires_at = now + granted
            record.refresh_at = refresh_time(self.config, self._rng, now, granted)
            record.failures = 0
            self._finish(flight, response, local, granted=granted)
            return
        if status in (481, 408):
            # RFC 6665 §4.1.2.2: the subscription is gone; make a new one
            # from scratch, after a backoff
            self._backoff(flight, response, now, local, keep_dialog=False)
            return
        if status == 423:
            self._retry_longer(flight, response, now, local)
            return
        if 500 <= status < 600:
            # the subscription is still valid until it expires
            # (RFC 6665 §4.1.2.2): retry the refresh later
            self._backoff(flight, response, now, local)
            return
        self._forget_dialog(record)
        self._fail(flight, response, now, local, "")

    def _unsubscribe_reply(
        self, flight: _Flight, response: Response, now: float, local: bool
    ) -> None:
        record = flight.record
        if not record.unsubscribe_wanted:
            # a newer request wants the subscription again: a new dialog
            record.linger_until = None
            self._forget_dialog(record)
            self._finish(flight, response, local, failed=response.status >= 300)
            return
        if 200 <= response.status < 300:
            self._finish(flight, response, local, ended=True)
            if record.linger_until == _FINAL_NOTIFIED:
                self._drop(record, "unsubscribed", response)
            else:
                # RFC 6665 §4.1.2.3: the notifier sends a final NOTIFY; wait
                # for it (bounded), then the dialog goes
                record.linger_until = now + self.unsubscribe_wait
            return
        # an unsubscribe that failed is never revived (spec §21): the
        # notifier's subscription ends with its expiry anyway
        self._finish(flight, response, local, ended=True, failed=True)
        self._drop(record, "unsubscribed", response)

    def _terminated(
        self, record: Subscription, reason: str | None, retry_after: int | None, now: float
    ) -> str:
        if record.unsubscribe_wanted and record.in_flight is SubOp.UNSUBSCRIBE:
            # the final NOTIFY overtook the 2xx: the reply ends it
            record.linger_until = _FINAL_NOTIFIED
            return "ended"
        self._forget_dialog(record)
        if record.unsubscribe_wanted or record.linger_until is not None:
            self._drop(record, "unsubscribed", None)
            return "ended"
        if reason is None or reason in _RESUBSCRIBE:
            # RFC 6665 §4.1.3: deactivated/timeout (or no reason): at once;
            # probation: after retry-after
            record.failures += 1
            if reason == "probation" or retry_after is not None:
                record.retry_at = now + backoff(self.config, self._rng, 1, retry_after)
            elif record.failures > 1:
                record.retry_at = now + backoff(self.config, self._rng, record.failures - 1, None)
            self.stats["resubscribes"] += 1
            return "resubscribe"
        # rejected, noresource, giveup, invariant, or unknown: it is over
        self._drop(record, f"terminated: {reason}", None)
        return "ended"

    def _retry_longer(self, flight: _Flight, response: Response, now: float, local: bool) -> None:
        record = flight.record
        try:
            minimum = response.min_expires
        except PuaError:
            minimum = None
        if minimum is None or minimum <= flight.asked:
            self._fail(flight, response, now, local, "423 without a usable Min-Expires")
            return
        record.min_granted = minimum
        if flight.op is SubOp.REFRESH:
            record.refresh_wanted = True

    def _backoff(
        self,
        flight: _Flight,
        response: Response,
        now: float,
        local: bool,
        *,
        keep_dialog: bool = True,
    ) -> None:
        record = flight.record
        if (
            keep_dialog
            and flight.op is SubOp.REFRESH
            and record.established
            and now < record.expires_at
        ):
            record.refresh_wanted = True
        record.failures += 1
        try:
            header = response.retry_after
        except PuaError:
            header = None
        retry_after = None if header is None else header.seconds
        record.retry_at = now + backoff(self.config, self._rng, record.failures, retry_after)
        self.stats["backoffs"] += 1
        self._finish(flight, response, local, retrying=True, failed=True)
        if not keep_dialog:
            self._forget_dialog(record)

    def _fail(self, flight: _Flight, response: Response, now: float, local: bool, why: str) -> None:
        record = flight.record
        if why:
            self.stats[f"failed-{why}"] += 1
        self._finish(flight, response, local, ended=True, failed=True, reason=why)
        self._drop(record, why or response.reason, response)

    # ---------------------------------------------------------- bookkeeping
    def _forget_dialog(self, record: Subscription) -> None:
        """The dialog is over; the subscription (what is wanted) stays."""
        if record.call_id:
            self._by_dialog.pop((record.call_id, record.local_tag), None)
            record.call_id = ""
        record.remote_tag = None
        record.route_set = ()
        record.remote_target = record.requested_target or record.pres_uri
        record.remote_cseq = None
        record.state = ""
        record.expires_at = 0.0

    def _finish(
        self,
        flight: _Flight,
        response: Response,
        local: bool,
        *,
        granted: int | None = None,
        ended: bool = False,
        retrying: bool = False,
        failed: bool = False,
        reason: str = "",
    ) -> None:
        record = flight.record
        how: dict[str, Any] = {
            "op": str(flight.op),
            "status": response.status,
            "reason": reason or response.reason,
            "response": None if local else response,
            "local": local,
            "expires": granted,
            "ended": ended,
            "retrying": retrying,
            "ok": not failed and 200 <= response.status < 300,
        }
        answered, record.waiters = due_waiters(record.waiters, flight.gen)
        for ticket, info in answered:
            self._events.append(self._outcome(record, ticket, info, **how))
        if not flight.waited:
            self._events.append(self._outcome(record, None, None, **how))

    @staticmethod
    def _outcome(
        record: Subscription, ticket: int | None, info: SubscribeInfo | None, **how: Any
    ) -> SubscribeOutcome:
        return SubscribeOutcome(
            ticket=ticket,
            info=info,
            pres_uri=record.pres_uri,
            watcher_uri=record.watcher_uri,
            event=record.event,
            # callbacks see the caller's flag (XMPP_INITIAL_SUBS included)
            source_flag=int(info.source_flag) if info is not None else record.source_flag,
            id=record.id,
            call_id=record.call_id or None,
            local_tag=record.local_tag or None,
            remote_tag=record.remote_tag,
            **how,
        )

    def _nothing(self, ticket: int, info: SubscribeInfo, why: str) -> SubscribeOutcome:
        return SubscribeOutcome(
            ticket=ticket,
            info=info,
            pres_uri=info.pres_uri,
            watcher_uri=info.watcher_uri,
            event=int(info.event),
            source_flag=int(info.source_flag),
            id=info.id,
            op=None,
            status=None,
            reason=why,
        )

    def _drop(
        self, record: Subscription, why: str, response: Response | None, *, stored: bool = True
    ) -> None:
        if not record.alive:
            return
        record.alive = False
        record.due = None
        self._count -= 1
        self._ended(record, stored=stored)
        if record.call_id:
            self._by_dialog.pop((record.call_id, record.local_tag), None)
        pair = (record.pres_uri, record.watcher_uri)
        entry = self._by_pair[pair]
        if entry is record:
            del self._by_pair[pair]
        elif isinstance(entry, list):
            entry.remove(record)
            if len(entry) == 1:
                self._by_pair[pair] = entry[0]
        self.stats["ended"] += 1
        waiters = record.waiters
        record.waiters = None
        for ticket, _, info in waiters or ():
            self._events.append(
                SubscribeOutcome(
                    ticket=ticket,
                    info=info,
                    pres_uri=record.pres_uri,
                    watcher_uri=record.watcher_uri,
                    event=record.event,
                    source_flag=int(info.source_flag),
                    id=record.id,
                    op=None,
                    status=None if response is None else response.status,
                    reason=why,
                    ended=True,
                    ok=response is None,
                )
            )


def _stored_flag(info: SubscribeInfo) -> int:
    # spec §10.1: XMPP_INITIAL_SUBS is stored and looked up as
    # XMPP_SUBSCRIBE; callbacks see the caller's flag
    source_flag = int(info.source_flag)
    if source_flag & _XMPP_INITIAL:
        source_flag = (source_flag & ~_XMPP_INITIAL) | _XMPP_SUBSCRIBE
    return source_flag


def _check_uri(field: str, text: str) -> None:
    try:
        uri = parse_uri(text)
    except PuaError as exc:
        raise SubscribeError(f"{field}: not a SIP URI: {text!r}") from exc
    if not isinstance(uri, SipUri):
        raise SubscribeError(f"{field}: must be a sip or sips URI: {text!r}")


def _same_event(event: EventHeader, name: str) -> bool:
    """Whether a NOTIFY's Event names the package we subscribed to:
    same package token, and the parameters our name carries (``sla`` of
    ``dialog;sla``)."""
    ours = _parsed_event(name)
    if event.package != ours.package:
        return False
    theirs = {key for key, _ in event.params}
    return all(key in theirs for key, _ in ours.params)


@functools.lru_cache(maxsize=64)
def _parsed_event(name: str) -> EventHeader:
    return parse_event(name)


def _in_dialog_target(remote_target: str, route_set: tuple[str, ...]) -> tuple[str, list[str]]:
    """Request-URI and Route of a request in the dialog (RFC 3261
    §12.2.1.1): with a loose-routing first hop, the remote target and the
    route set as is; with a strict router, its URI as Request-URI and the
    remote target appended to the rest of the route."""
    if not route_set:
        return remote_target, []
    first = route_set[0]
    try:
        first_uri = parse_name_addr(first).sip_uri
    except PuaError:
        return remote_target, list(route_set)
    if first_uri.lr:
        return remote_target, list(route_set)
    return str(first_uri), [*route_set[1:], f"<{remote_target}>"]
