"""PuaAPI against a real presence server: Kamailio 5.6 with the presence
modules (tests/peers/kamailio/presence-server.cfg), over UDP and TCP.

Where test_kamailio.py sends hand-built PUBLISHes, these tests drive the
whole stack (API, engine, event packages, endpoint) and check what
Kamailio stored in its ``presentity`` table: the body, the entity-tag and
the expiry of every publication pua holds, for the four event packages
pua publishes (presence, dialog, message-summary, reg).

What Kamailio 5.6 does, and the tests rely on:

* every initial PUBLISH gets a fresh entity-tag; every PUBLISH with
  SIP-If-Match (modify and refresh alike) gets a new one, and the row
  moves to it;
* a refresh (no body) keeps the stored body, and moves ``expires`` to
  ``now + Expires`` (``received_time`` to now);
* a removal (Expires: 0) is answered 200 with Expires 0 and the request's
  entity-tag *before* the row is deleted: the row goes a moment after the
  reply, so the tests poll for it;
* an entity-tag the database does not hold (after a restart with an empty
  database) gets 412;
* a ``dialog`` presentity whose stored dialogs are all ``terminated`` is
  never updated again: a modify is answered 200 with a new entity-tag that
  is not stored anywhere, so the next request with it gets 412.

Waiting is always a poll with a deadline; the only real waits are for
pua's own refresh timer, with ``default_expires`` of a few seconds.
"""

from __future__ import annotations

import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from pua import (
    DIALOG_EVENT,
    DIALOG_PUBLISH,
    MSGSUM_EVENT,
    PRESENCE_EVENT,
    REGINFO_EVENT,
    REGINFO_PUBLISH,
    UL_PUBLISH,
    PuaAPI,
    PuaConfig,
    PublishInfo,
    PublishOutcome,
)
from pua.endpoint import EndpointConfig
from pua.evpkg import (
    RegContact,
    dialog_info_document,
    message_summary,
    pidf_document,
    reginfo_document,
)
from tests.interop.conftest import (
    HOST,
    PresenceServer,
    RestartablePresenceServer,
    Transport,
    poll,
)

pytestmark = pytest.mark.interop

Row = dict[str, Any]

PIDF_NS = "urn:ietf:params:xml:ns:pidf"
DIALOG_NS = "urn:ietf:params:xml:ns:dialog-info"
REGINFO_NS = "urn:ietf:params:xml:ns:reginfo"

#: how long to wait for pua's own refresh (it is due 2-3 s after a grant
#: of 4-6 s) or for a row to change
REFRESH_DEADLINE = 15.0
ROW_DEADLINE = 5.0


# ------------------------------------------------------------ the bodies
def _xml(body: bytes) -> ET.Element:
    return ET.fromstring(body)


def pidf_basic(body: bytes) -> str:
    """The ``<basic>`` status of the PIDF's first tuple."""
    basic = _xml(body).find(f"{{{PIDF_NS}}}tuple/{{{PIDF_NS}}}status/{{{PIDF_NS}}}basic")
    assert basic is not None, body
    return basic.text or ""


def pidf_tuple_id(body: bytes) -> str:
    found = _xml(body).find(f"{{{PIDF_NS}}}tuple")
    assert found is not None, body
    return found.get("id", "")


def dialog_state(body: bytes) -> str:
    """The ``<state>`` of the dialog-info document's first dialog."""
    state = _xml(body).find(f"{{{DIALOG_NS}}}dialog/{{{DIALOG_NS}}}state")
    assert state is not None, body
    return state.text or ""


def dialog_version(body: bytes) -> str:
    root = _xml(body)
    assert root.tag == f"{{{DIALOG_NS}}}dialog-info", body
    return root.get("version", "")


def messages_waiting(body: bytes) -> str:
    """The value of the message-summary's ``Messages-Waiting`` line."""
    for line in body.decode().splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "messages-waiting":
            return value.strip()
    raise AssertionError(f"no Messages-Waiting line in {body!r}")


def registration_state(body: bytes) -> str:
    """The ``state`` of the reginfo document's registration."""
    registration = _xml(body).find(f"{{{REGINFO_NS}}}registration")
    assert registration is not None, body
    return registration.get("state", "")


@dataclass(frozen=True)
class Package:
    """An event package and two documents of it that differ in ``state``."""

    name: str
    event: int
    source_flag: int
    build: Callable[[str, int], str]  # (presentity URI, which) -> body
    state: Callable[[bytes], str]  # what the test compares in a stored body
    states: tuple[str, str]  # state(build(uri, 0)), state(build(uri, 1))


def _pidf(uri: str, which: int) -> str:
    return pidf_document(uri, ("open", "closed")[which])


def _dialog(uri: str, which: int) -> str:
    return dialog_info_document(
        uri,
        dialog_id="d1",
        state=("early", "confirmed")[which],
        version=which,
        direction="recipient",
        call_id="call-1@127.0.0.1",
        local_tag="lt1",
        remote_tag="rt1",
    )


def _mwi(uri: str, which: int) -> str:
    if which == 0:
        return message_summary(True, account=uri, voice=(2, 1))
    return message_summary(False, account=uri, voice=(0, 3))


def _reginfo(uri: str, which: int) -> str:
    if which == 0:
        contact = RegContact("sip:phone@127.0.0.1:5999", "c1", "active", "registered", expires=60)
        return reginfo_document(uri, registration_state="active", contacts=[contact])
    contact = RegContact("sip:phone@127.0.0.1:5999", "c1", "terminated", "unregistered")
    return reginfo_document(uri, registration_state="terminated", contacts=[contact], version=1)


PACKAGES = [
    Package("presence", PRESENCE_EVENT, UL_PUBLISH, _pidf, pidf_basic, ("open", "closed")),
    Package("dialog", DIALOG_EVENT, DIALOG_PUBLISH, _dialog, dialog_state, ("early", "confirmed")),
    Package("message-summary", MSGSUM_EVENT, UL_PUBLISH, _mwi, messages_waiting, ("yes", "no")),
    Package(
        "reg",
        REGINFO_EVENT,
        REGINFO_PUBLISH,
        _reginfo,
        registration_state,
        ("active", "terminated"),
    ),
]


# ------------------------------------------------------------ the client
class Client:
    """A PuaAPI publishing one fresh presentity to the presence server."""

    def __init__(
        self,
        pua: PuaAPI,
        server: PresenceServer | RestartablePresenceServer,
        transport: Transport,
        label: str,
    ) -> None:
        self.pua = pua
        self.server = server
        self.transport = transport
        port = server.address(transport).port
        self.proxy = f"sip:{HOST}:{port};transport={transport}"
        self.user = f"{label}-{transport}-{secrets.token_hex(4)}"
        self.uri = f"sip:{self.user}@{HOST}"
        #: every outcome the callback saw, in order
        self.seen: list[PublishOutcome] = []
        pua.register_puacb(UL_PUBLISH | DIALOG_PUBLISH | REGINFO_PUBLISH, self._seen, self)

    def _seen(self, outcome: PublishOutcome, param: object) -> None:
        assert param is self
        self.seen.append(outcome)

    def info(self, package: Package, **kw: Any) -> PublishInfo:
        return PublishInfo(
            pres_uri=self.uri,
            event=package.event,
            source_flag=package.source_flag,
            outbound_proxy=self.proxy,
            **kw,
        )

    async def publish(self, package: Package, **kw: Any) -> PublishOutcome:
        outcome = await self.pua.send_publish(self.info(package, **kw))
        assert outcome.status is not None, outcome
        assert not outcome.local, (outcome, self.server.log_tail())
        return outcome

    def rows(self) -> list[Row]:
        return self.server.presentities(self.user)

    async def rows_when(self, what: str, check: Callable[[list[Row]], object]) -> list[Row]:
        """The presentity rows once ``check(rows)`` holds (polled)."""

        def holds() -> bool:
            return bool(check(self.rows()))

        try:
            await poll(holds, ROW_DEADLINE, f"{what} for {self.user}", interval=0.02)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nrows: {self.rows()}") from None
        return self.rows()

    async def row_with_etag(self, etag: str | None) -> Row:
        """The one row of the presentity, once it holds ``etag``."""
        assert etag is not None
        [row] = await self.rows_when(
            f"the row with etag {etag}", lambda rows: len(rows) == 1 and rows[0]["etag"] == etag
        )
        return row

    def own_outcomes(self) -> list[PublishOutcome]:
        """Outcomes of what pua sent by itself (refreshes: ticket None)."""
        return [o for o in self.seen if o.ticket is None]


@asynccontextmanager
async def client(
    server: PresenceServer | RestartablePresenceServer,
    transport: Transport,
    label: str,
    config: PuaConfig | None = None,
) -> AsyncIterator[Client]:
    endpoint = EndpointConfig(host=HOST, udp_port=0, tcp_port=0)
    async with PuaAPI(config or PuaConfig(), endpoint_config=endpoint) as pua:
        yield Client(pua, server, transport, label)


def _label(request: pytest.FixtureRequest) -> str:
    return str(request.node.originalname).removeprefix("test_")[:24]


# ----------------------------------------------------------------- tests
@pytest.mark.parametrize("package", PACKAGES, ids=[p.name for p in PACKAGES])
async def test_publish_modify_refresh_remove(
    request: pytest.FixtureRequest,
    presence_server: PresenceServer,
    transport: Transport,
    package: Package,
) -> None:
    """The four kinds of PUBLISH, as the presentity table sees them: a row
    with the body under the entity-tag pua holds; a new body and a new tag;
    the same body, a new tag and a later expiry; then no row."""
    async with client(presence_server, transport, _label(request)) as c:
        first, second = package.build(c.uri, 0), package.build(c.uri, 1)

        # initial
        before = int(time.time())
        published = await c.publish(package, body=first, expires=30)
        assert (published.ok, published.status, published.op) == (True, 200, "initial")
        assert published.etag is not None
        assert published.expires == 30
        row = await c.row_with_etag(published.etag)
        assert (row["domain"], row["event"]) == (HOST, package.name)
        assert package.state(row["body"]) == package.states[0]
        assert row["received_time"] >= before - 1
        assert abs(row["expires"] - row["received_time"] - 30) <= 1

        # modify: the new body under a new entity-tag
        modified = await c.publish(package, body=second, expires=30)
        assert (modified.ok, modified.status, modified.op) == (True, 200, "modify")
        assert modified.sent_etag == published.etag
        assert modified.etag not in (None, published.etag)
        row = await c.row_with_etag(modified.etag)
        assert package.state(row["body"]) == package.states[1]
        stored_body = row["body"]

        # refresh: no body, a longer expiry; the body stays, the tag changes
        refreshed = await c.publish(package, expires=60)
        assert (refreshed.ok, refreshed.status, refreshed.op) == (True, 200, "refresh")
        assert refreshed.sent_etag == modified.etag
        assert refreshed.etag not in (None, modified.etag)
        assert refreshed.expires == 60
        new_row = await c.row_with_etag(refreshed.etag)
        assert new_row["body"] == stored_body
        assert abs(new_row["expires"] - new_row["received_time"] - 60) <= 1
        assert new_row["expires"] >= row["expires"] + 29

        # remove: 200 with Expires 0 and the tag it removed; then no row
        removed = await c.publish(package, expires=0)
        assert (removed.ok, removed.status, removed.op, removed.ended) == (
            True,
            200,
            "remove",
            True,
        )
        assert removed.sent_etag == refreshed.etag
        assert removed.response is not None
        assert removed.response.expires == 0
        assert removed.response.sip_etag == refreshed.etag
        assert await c.rows_when("the row to go", lambda rows: rows == []) == []
        assert c.pua.publications() == []


async def test_automatic_refresh_moves_the_row_to_the_new_etag(
    request: pytest.FixtureRequest, presence_server: PresenceServer, transport: Transport
) -> None:
    """A publication "for ever" with a 4 s grant: pua refreshes it by itself
    (2 s later), the callback sees the refresh, and Kamailio's row holds the
    refresh's entity-tag, the same body and a later expiry."""
    config = PuaConfig(default_expires=4, callbacks_on_refresh=True)
    async with client(presence_server, transport, _label(request), config) as c:
        package = PACKAGES[0]
        published = await c.publish(package, body=package.build(c.uri, 0), expires=-1)
        assert (published.ok, published.expires) == (True, 4)
        row = await c.row_with_etag(published.etag)

        await poll(lambda: bool(c.own_outcomes()), REFRESH_DEADLINE, "pua's own refresh")

        refresh = c.own_outcomes()[0]
        assert (refresh.ok, refresh.status, refresh.op) == (True, 200, "refresh"), refresh
        assert refresh.sent_etag == published.etag
        assert refresh.etag not in (None, published.etag)
        assert refresh.expires == 4
        refreshed_row = await c.row_with_etag(refresh.etag)
        assert refreshed_row["body"] == row["body"]
        assert pidf_basic(refreshed_row["body"]) == "open"
        assert refreshed_row["expires"] > row["expires"]
        assert c.pua.engine.stats["412-recoveries"] == 0


async def test_restart_with_empty_database_is_recovered_by_republishing(
    request: pytest.FixtureRequest,
    restartable_presence_server: RestartablePresenceServer,
    transport: Transport,
) -> None:
    """The server restarts and forgets every publication.  pua's next
    automatic refresh gets 412, and pua publishes the stored body again as
    a new publication: the presentity is back, with the same document."""
    server = restartable_presence_server
    config = PuaConfig(default_expires=6, callbacks_on_refresh=True)
    async with client(server, transport, _label(request), config) as c:
        package = PACKAGES[0]
        published = await c.publish(package, body=package.build(c.uri, 0), expires=-1)
        assert (published.ok, published.expires) == (True, 6)
        [record] = c.pua.publications()
        tuple_id = record["tuple_id"]
        assert tuple_id
        row = await c.row_with_etag(published.etag)
        assert pidf_tuple_id(row["body"]) == tuple_id
        original_body = row["body"]

        await server.restart(empty_db=True)

        assert server.starts == 2
        assert c.rows() == []
        # the refresh is due 3 s after the grant: the restart must be over
        # before it goes out, or this test does not test a 412
        assert c.pua.engine.stats["sent-refresh"] == 0, "kamailio took too long to restart"

        await poll(lambda: bool(c.own_outcomes()), REFRESH_DEADLINE, "pua's own refresh")

        # the refresh got 412; the outcome is the re-publication's
        [republished] = c.own_outcomes()
        assert (republished.ok, republished.status, republished.op) == (True, 200, "initial"), (
            republished
        )
        stats = c.pua.engine.stats
        assert stats["sent-refresh"] == 1
        assert stats["reply-412"] == 1
        assert stats["412-recoveries"] >= 1
        assert republished.sent_etag is None
        assert republished.etag not in (None, published.etag)
        assert republished.expires == 6
        new_row = await c.row_with_etag(republished.etag)
        assert new_row["body"] == original_body
        assert pidf_basic(new_row["body"]) == "open"
        assert pidf_tuple_id(new_row["body"]) == tuple_id
        [record] = c.pua.publications()
        assert (record["etag"], record["tuple_id"]) == (republished.etag, tuple_id)


async def test_dialog_versions_increase_with_dlginfo_increase_version(
    request: pytest.FixtureRequest, presence_server: PresenceServer, transport: Transport
) -> None:
    """With dlginfo_increase_version, pua writes its own version into
    every dialog-info document, whatever the caller wrote: 0, then 1."""
    config = PuaConfig(dlginfo_increase_version=True)
    async with client(presence_server, transport, _label(request), config) as c:
        package = PACKAGES[1]

        def body(state: str) -> str:
            return dialog_info_document(c.uri, dialog_id="d1", state=state, version=7)

        published = await c.publish(package, body=body("early"), expires=30)
        assert (published.ok, published.op) == (True, "initial")
        row = await c.row_with_etag(published.etag)
        assert (dialog_version(row["body"]), dialog_state(row["body"])) == ("0", "early")

        modified = await c.publish(package, body=body("confirmed"), expires=30)
        assert (modified.ok, modified.op) == (True, "modify")
        row = await c.row_with_etag(modified.etag)
        assert (dialog_version(row["body"]), dialog_state(row["body"])) == ("1", "confirmed")


async def test_dialog_update_after_terminated_is_recovered_after_412(
    request: pytest.FixtureRequest, presence_server: PresenceServer, transport: Transport
) -> None:
    """Kamailio never updates a dialog presentity whose dialogs are all
    terminated: it answers 200 with a new entity-tag that it does not
    store.  The next refresh with that tag gets 412, and pua's
    re-publication of the latest body replaces the terminated row."""
    async with client(presence_server, transport, _label(request)) as c:
        package = PACKAGES[1]

        def body(state: str) -> str:
            return dialog_info_document(c.uri, dialog_id="d1", state=state)

        await c.publish(package, body=body("confirmed"), expires=30)
        terminated = await c.publish(package, body=body("terminated"), expires=30)
        assert (terminated.ok, terminated.op) == (True, "modify")
        row = await c.row_with_etag(terminated.etag)
        assert dialog_state(row["body"]) == "terminated"

        ignored = await c.publish(package, body=body("early"), expires=30)
        assert (ignored.ok, ignored.status, ignored.op) == (True, 200, "modify")
        assert ignored.etag not in (None, terminated.etag)
        # the reply's tag is nowhere: the row is the terminated one still
        assert [(r["etag"], dialog_state(r["body"])) for r in c.rows()] == [
            (terminated.etag, "terminated")
        ]

        refreshed = await c.publish(package, expires=30)
        assert c.pua.engine.stats["reply-412"] == 1
        assert c.pua.engine.stats["412-recoveries"] == 1
        assert (refreshed.ok, refreshed.status, refreshed.op) == (True, 200, "initial")
        row = await c.row_with_etag(refreshed.etag)
        assert dialog_state(row["body"]) == "early"
