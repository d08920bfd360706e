"""The one-shot commands: build a request, send it, return the reply."""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path
from typing import Any

from pua.endpoint import EndpointConfig, LocalResponse, SipEndpoint
from pua.errors import LocalProtocolError
from pua.evpkg import presence
from pua.evpkg.registry import EventRegistry
from pua.runtime import run
from pua.sip.digest import DigestCredentials
from pua.sip.headers import Headers
from pua.sip.ids import IdGenerator
from pua.sip.message import Request, Response
from pua.sip.uri import SipUri, parse_uri

__all__ = ["build_publish", "make_publish", "pidf_document", "run_command"]

_EVENTS = EventRegistry()


def pidf_document(entity: str, basic: str, tuple_id: str) -> bytes:
    """A minimal PIDF document (RFC 3863 §4.1)."""
    return presence.pidf_document(entity, basic, tuple_id=tuple_id).encode()


def build_publish(
    ids: IdGenerator,
    pres_uri: str,
    *,
    event: str,
    expires: int,
    body: bytes = b"",
    content_type: str | None = None,
    etag: str | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> Request:
    """A PUBLISH per RFC 3903 §4, after checking the arguments (a sip/sips
    presentity, ``expires >= 0``, a body unless refreshing or removing, a
    Content-Type for the body)."""
    uri = parse_uri(pres_uri)
    if not isinstance(uri, SipUri):
        raise LocalProtocolError(f"presentity must be a sip/sips URI: {pres_uri}")
    if expires < 0:
        raise LocalProtocolError(f"expires must be >= 0, got {expires}")
    if not body and etag is None and expires != 0:
        # RFC 3903 §4.1: an initial PUBLISH carries the state
        raise LocalProtocolError("an initial PUBLISH needs a body (or --etag to refresh)")
    if body and content_type is None:
        package = _EVENTS.by_name(event)
        content_type = None if package is None else package.content_type
        if content_type is None:
            raise LocalProtocolError(f"no default Content-Type for event {event!r}: give one")
    return make_publish(
        ids,
        pres_uri,
        event=event,
        expires=expires,
        body=body,
        content_type=content_type,
        etag=etag,
        extra=extra,
    )


def make_publish(
    ids: IdGenerator,
    pres_uri: str,
    *,
    event: str,
    expires: int,
    body: bytes = b"",
    content_type: str | None = None,
    etag: str | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> Request:
    """The PUBLISH itself, from arguments already checked: Request-URI, To
    and From are the presentity (RFC 3903 §4.1), a new Call-ID and From
    tag; Event and Expires always; SIP-If-Match for an existing
    publication (§4.4); Content-Type with a body."""
    fields = [
        ("Max-Forwards", "70"),
        ("To", f"<{pres_uri}>"),
        ("From", f"<{pres_uri}>;tag={ids.tag()}"),
        ("Call-ID", ids.call_id()),
        ("CSeq", "1 PUBLISH"),
        ("Event", event),
        ("Expires", str(expires)),
    ]
    if etag is not None:
        fields.append(("SIP-If-Match", etag))
    if body and content_type is not None:
        fields.append(("Content-Type", content_type))
    if extra:
        fields.extend(extra)
    return Request("PUBLISH", pres_uri, Headers(fields), body)


def _extra_headers(raw: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in raw:
        name, colon, value = item.partition(":")
        if not colon or not name.strip():
            raise LocalProtocolError(f"--header must be 'Name: value', got {item!r}")
        out.append((name.strip(), value.strip()))
    return out


def run_command(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``pua publish`` or ``pua options``; return the reply as a dict."""
    return run(_send(args), args.loop)


async def _send(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(os.urandom(16))
    ids = IdGenerator(rng)
    extra = _extra_headers(args.header)
    if args.command == "publish":
        body = b""
        if args.body is not None:
            body = args.body.encode()
        elif args.body_file is not None:
            body = Path(args.body_file).read_bytes()
        elif args.pidf is not None:
            body = pidf_document(args.pres_uri, args.pidf, f"t{ids.token(32)}")
        request = build_publish(
            ids,
            args.pres_uri,
            event=args.event,
            expires=args.expires,
            body=body,
            content_type=args.content_type,
            etag=args.etag,
            extra=extra,
        )
    else:
        headers = Headers(
            [
                ("Max-Forwards", "70"),
                ("To", f"<{args.uri}>"),
                ("From", f"<sip:pua@{args.bind}>;tag={ids.tag()}"),
                ("Call-ID", ids.call_id()),
                ("CSeq", "1 OPTIONS"),
                ("Accept", "application/sdp"),
                *extra,
            ]
        )
        request = Request("OPTIONS", args.uri, headers)
    credentials = []
    if args.user:
        credentials.append(DigestCredentials(args.user, args.password or "", args.realm))
    config = EndpointConfig(
        host=args.bind,
        udp_port=0 if args.transport in (None, "udp") else None,
        tcp_port=0 if args.transport in (None, "tcp") else None,
        credentials=credentials,
    )
    async with SipEndpoint(config, rng=rng) as endpoint:
        response = await endpoint.request(request, args.proxy)
    return _as_dict(response)


def _as_dict(response: Response) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name in ("SIP-ETag", "Expires", "Min-Expires", "Retry-After", "Allow", "Contact"):
        value = response.headers.get(name)
        if value is not None:
            headers[name] = value
    return {
        "status": response.status,
        "reason": response.reason,
        "headers": headers,
        "local": isinstance(response, LocalResponse),
    }
