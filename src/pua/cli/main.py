"""``pua``: the command line.

This release has the SIP foundation only, so the commands send one request
and print the reply: ``pua publish`` sends one PUBLISH (RFC 3903) and
``pua options`` one OPTIONS.  The daemon, JSON-RPC and the stateful
PUBLISH/SUBSCRIBE engines come with later releases.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pua", description="Presence User Agent for SIP (PUBLISH/SUBSCRIBE)."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--proxy",
            metavar="URI",
            help="next hop (outbound proxy), e.g. sip:127.0.0.1:5070;transport=tcp; "
            "default: the request URI",
        )
        p.add_argument("--bind", default="127.0.0.1", help="local address (default 127.0.0.1)")
        p.add_argument(
            "--transport",
            choices=("udp", "tcp"),
            default=None,
            help="open only this transport (default: udp and tcp)",
        )
        p.add_argument("--user", help="digest username (RFC 3261 §22)")
        p.add_argument("--password", help="digest password")
        p.add_argument("--realm", help="digest realm (default: any)")
        p.add_argument(
            "-H",
            "--header",
            action="append",
            default=[],
            metavar="NAME: VALUE",
            help="extra header",
        )
        p.add_argument(
            "--loop", choices=("auto", "uvloop", "asyncio"), default="auto", help="event loop"
        )
        p.add_argument("--json", action="store_true", help="print the reply as JSON")

    pub = sub.add_parser("publish", help="send one PUBLISH and print the reply")
    pub.add_argument("pres_uri", metavar="PRES_URI", help="presentity, e.g. sip:alice@example.com")
    pub.add_argument("--event", default="presence", help="event package (default presence)")
    pub.add_argument(
        "--expires", type=int, default=3600, help="Expires in seconds (0 removes; default 3600)"
    )
    pub.add_argument("--etag", help="SIP-If-Match: refresh/modify/remove this publication")
    pub.add_argument("--content-type", help="body type (default for --pidf: application/pidf+xml)")
    body = pub.add_mutually_exclusive_group()
    body.add_argument("--body", help="body text")
    body.add_argument("--body-file", help="read the body from this file")
    body.add_argument(
        "--pidf", choices=("open", "closed"), help="send a minimal PIDF document (RFC 3863)"
    )
    common(pub)

    opt = sub.add_parser("options", help="send one OPTIONS and print the reply")
    opt.add_argument("uri", metavar="URI", help="request URI, e.g. sip:127.0.0.1:5070")
    common(opt)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from pua import __version__  # noqa: PLC0415

        print(__version__)
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    # imported here so that `pua --help` stays fast
    from pua.cli.send import run_command  # noqa: PLC0415
    from pua.errors import PuaError  # noqa: PLC0415

    try:
        result = run_command(args)
    except PuaError as exc:
        print(f"pua: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pua: {exc}", file=sys.stderr)
        return 2
    _print(result, args.json)
    return 0 if 200 <= result["status"] < 300 else 1


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['status']} {result['reason']}")
    for key in ("SIP-ETag", "Expires", "Min-Expires", "Retry-After", "Allow"):
        if result["headers"].get(key) is not None:
            print(f"{key}: {result['headers'][key]}")
    if result.get("local"):
        print("(no response from the network: this status was made up locally)")
