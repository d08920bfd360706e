"""A tiny sans-IO presence server (RFC 3903 §6) for engine and shell tests:
it keeps entity-tags and bodies, answers 412 for an unknown SIP-If-Match,
and counts what it saw."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from pua.sip import Headers, Request, Response, make_response


@dataclass
class Stored:
    pres_uri: str
    event: str
    body: bytes
    expires: int


@dataclass
class PresenceStub:
    #: grant at most this (RFC 3903 §6 step 5 lets the server shorten)
    max_expires: int = 3600
    entries: dict[str, Stored] = field(default_factory=dict)
    statuses: list[int] = field(default_factory=list)
    seen: list[Request] = field(default_factory=list)
    _etags: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def handle(self, request: Request) -> Response:
        self.seen.append(request)
        response = self._answer(request)
        self.statuses.append(response.status)
        return response

    def _answer(self, request: Request) -> Response:
        expires = request.expires
        if_match = request.sip_if_match
        event = request.event
        assert event is not None
        if if_match is not None:
            stored = self.entries.pop(if_match, None)
            if stored is None:
                return make_response(request, 412, to_tag="stub")
            if expires == 0:
                return make_response(request, 200, to_tag="stub", headers=[("Expires", "0")])
            if request.body:
                stored.body = request.body
        else:
            if not request.body:
                return make_response(request, 400, to_tag="stub")
            stored = Stored(request.uri, event.package, request.body, 0)
        granted = min(expires if expires is not None else 3600, self.max_expires)
        stored.expires = granted
        etag = f"e{next(self._etags)}"
        self.entries[etag] = stored
        return make_response(
            request,
            200,
            to_tag="stub",
            headers=[("SIP-ETag", etag), ("Expires", str(granted))],
        )

    def bodies(self, pres_uri: str) -> list[bytes]:
        return [s.body for s in self.entries.values() if s.pres_uri == pres_uri]


def answer(
    request: Request,
    status: int,
    *,
    etag: str | None = None,
    expires: int | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    """A response to ``request`` built by hand."""
    fields = list(headers or [])
    if etag is not None:
        fields.append(("SIP-ETag", etag))
    if expires is not None:
        fields.append(("Expires", str(expires)))
    response = make_response(request, status, to_tag="srv", headers=fields)
    assert isinstance(response.headers, Headers)
    return response
