"""pua against a real presence server: Kamailio 5.6 with the presence
modules (tests/peers/kamailio/presence-server.cfg), over UDP and TCP.

One server runs for the whole session (the ``presence_server`` fixture);
each test publishes its own presentity, so the tests do not see each
other's state.  The server keeps PUBLISH state in SQLite, which the tests
read to check what the server actually stored.
"""

from __future__ import annotations

import os
import random
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest

from pua.cli.send import build_publish, pidf_document
from pua.endpoint import LocalResponse, SipEndpoint
from pua.sip.headers import Headers
from pua.sip.ids import IdGenerator
from pua.sip.message import Request, Response
from tests.interop.conftest import Endpoints, PresenceServer, Transport, poll

pytestmark = pytest.mark.interop


class _Publisher:
    """Builds and sends PUBLISHes for one fresh presentity."""

    def __init__(
        self, endpoint: SipEndpoint, server: PresenceServer, transport: Transport, label: str
    ) -> None:
        self.endpoint = endpoint
        self.server = server
        self.destination = server.address(transport)
        self.ids = IdGenerator(random.Random(os.urandom(16)))
        self.user = f"{label}-{transport}-{secrets.token_hex(4)}"
        self.uri = f"sip:{self.user}@127.0.0.1"

    async def send(
        self,
        *,
        expires: int = 60,
        etag: str | None = None,
        basic: str | None = None,
        event: str = "presence",
        content_type: str | None = None,
        body: bytes = b"",
    ) -> Response:
        if basic is not None:
            body = pidf_document(self.uri, basic, "t1")
        request = build_publish(
            self.ids,
            self.uri,
            event=event,
            expires=expires,
            body=body,
            content_type=content_type,
            etag=etag,
        )
        response = await self.endpoint.request(request, self.destination)
        assert not isinstance(response, LocalResponse), (response, self.server.log_tail())
        return response

    def rows(self) -> list[dict[str, Any]]:
        return self.server.presentities(self.user)

    async def rows_when(
        self, condition: str, check: Callable[[list[dict[str, Any]]], object]
    ) -> list[dict[str, Any]]:
        """The presentity rows, once ``check(rows)`` holds (polled)."""
        await poll(lambda: bool(check(self.rows())), 5.0, f"{condition} for {self.user}")
        return self.rows()

    async def publish_open(self) -> str:
        """The initial PUBLISH of an ``open`` PIDF; its SIP-ETag."""
        response = await self.send(basic="open")
        assert response.status == 200, (response, self.server.log_tail())
        assert response.sip_etag is not None
        return response.sip_etag


@pytest.fixture
async def publisher(
    request: pytest.FixtureRequest,
    presence_server: PresenceServer,
    endpoints: Endpoints,
    transport: Transport,
) -> _Publisher:
    endpoint = await endpoints.start()
    return _Publisher(endpoint, presence_server, transport, request.node.originalname)


async def test_publish_creates_the_presentity(publisher: _Publisher) -> None:
    """PUBLISH of a PIDF: 200 with SIP-ETag and Expires, and the server has
    stored the document under that ETag."""
    before = int(time.time())
    response = await publisher.send(basic="open")

    assert response.status == 200, response
    etag = response.sip_etag
    assert etag is not None
    assert response.expires == 60
    [row] = await publisher.rows_when("a presentity row", lambda rows: rows)
    assert row["etag"] == etag
    assert (row["domain"], row["event"]) == ("127.0.0.1", "presence")
    assert b"<basic>open</basic>" in row["body"]
    assert row["received_time"] >= before - 1
    assert abs(row["expires"] - row["received_time"] - 60) <= 1


async def test_refresh_with_if_match_gets_a_new_etag(publisher: _Publisher) -> None:
    """A refresh (SIP-If-Match, no body) gets 200 with a new ETag; the stored
    row moves to it and keeps the document."""
    etag = await publisher.publish_open()

    response = await publisher.send(etag=etag)

    assert response.status == 200, response
    new_etag = response.sip_etag
    assert new_etag is not None
    assert new_etag != etag
    assert response.expires == 60
    [row] = await publisher.rows_when("the new etag", lambda rows: rows[0]["etag"] == new_etag)
    assert b"<basic>open</basic>" in row["body"]


async def test_unknown_etag_gets_412(publisher: _Publisher) -> None:
    """A well-formed ETag the server never gave out: 412, no SIP-ETag, the
    stored publication untouched."""
    etag = await publisher.publish_open()

    response = await publisher.send(etag="x.1.2.0")

    assert response.status == 412, response
    assert response.sip_etag is None
    assert [row["etag"] for row in publisher.rows()] == [etag]


async def test_expires_zero_removes_the_publication(publisher: _Publisher) -> None:
    """Expires: 0 with the current ETag: 200 with Expires 0, and the row is
    gone."""
    etag = await publisher.publish_open()

    response = await publisher.send(etag=etag, expires=0)

    assert response.status == 200, response
    assert response.expires == 0
    assert response.sip_etag == etag
    assert await publisher.rows_when("the row to go", lambda rows: rows == []) == []


async def test_unknown_event_gets_489(publisher: _Publisher) -> None:
    """An event package the server does not know: 489 with Allow-Events
    listing presence, and nothing stored."""
    response = await publisher.send(event="pua-test-unknown", content_type="text/plain", body=b"x")

    assert response.status == 489, response
    assert "presence" in [event.package for event in response.allow_events]
    assert publisher.rows() == []


async def test_options_gets_200(
    presence_server: PresenceServer, endpoints: Endpoints, transport: Transport
) -> None:
    """OPTIONS: 200 with the methods the server allows."""
    endpoint = await endpoints.start()
    ids = IdGenerator(random.Random(os.urandom(16)))
    target = f"sip:127.0.0.1:{presence_server.address(transport).port}"
    options = Request(
        "OPTIONS",
        target,
        Headers(
            [
                ("Max-Forwards", "70"),
                ("To", f"<{target}>"),
                ("From", f"<sip:pua@127.0.0.1>;tag={ids.tag()}"),
                ("Call-ID", ids.call_id()),
                ("CSeq", "1 OPTIONS"),
            ]
        ),
    )

    response = await endpoint.request(options, presence_server.address(transport))

    assert response.status == 200, response
    assert not isinstance(response, LocalResponse)
    allow = response.headers.get_list("Allow")
    assert {"PUBLISH", "SUBSCRIBE", "OPTIONS"} <= set(allow)
