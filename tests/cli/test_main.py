"""The command line: argument checking and what it prints (the exchanges
with real peers are in tests/interop/test_sipp.py)."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
import uvloop

from pua import __version__
from pua.cli.main import main
from pua.cli.send import build_publish, pidf_document
from pua.errors import LocalProtocolError
from pua.runtime import loop_factory
from pua.sip import Request, parse_message
from pua.sip.ids import IdGenerator


def ids() -> IdGenerator:
    return IdGenerator(random.Random(3))


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "publish" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["publish", "tel:+123", "--pidf", "open"], "presentity must be a sip/sips URI"),
        (["publish", "sip:a@example.com", "--pidf", "open", "--expires", "-1"], "expires"),
        (["publish", "sip:a@example.com"], "needs a body"),
        (["publish", "sip:a@example.com", "--event", "foo", "--body", "x"], "Content-Type"),
        (["publish", "sip:a@example.com", "--pidf", "open", "-H", "nocolon"], "--header"),
    ],
)
def test_bad_arguments_are_named(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*argv, "--loop", "asyncio"])
    assert message in capsys.readouterr().err
    assert code == 2


def test_an_impossible_next_hop_is_a_local_503_in_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # sips over UDP does not exist (RFC 3263 §4.1): no request leaves
    argv = ["publish", "sip:a@example.com", "--pidf", "open", "--json", "--loop", "asyncio"]
    code = main([*argv, "--proxy", "sips:127.0.0.1;transport=udp"])
    result = json.loads(capsys.readouterr().out)
    assert code == 1
    assert result["status"] == 503
    assert result["local"] is True
    assert "tls-over-udp" in result["reason"]


def test_build_publish_follows_rfc_3903() -> None:
    body = pidf_document("sip:alice@example.com", "open", "t1")
    request = build_publish(
        ids(),
        "sip:alice@example.com",
        event="presence",
        expires=600,
        body=body,
        etag="e.1",
        extra=[("X-Test", "1")],
    )
    assert "via" not in request.headers  # the transaction layer adds it
    request.headers.prepend("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtest")
    parsed = parse_message(request.to_bytes())
    assert isinstance(parsed, Request)
    # §4.1: Request-URI, To and From are the presentity; Event and Expires
    assert parsed.uri == "sip:alice@example.com"
    assert parsed.to.uri == "sip:alice@example.com"
    assert parsed.from_.uri == "sip:alice@example.com"
    assert parsed.from_.tag is not None
    assert parsed.to.tag is None
    assert parsed.event is not None
    assert parsed.event.package == "presence"
    assert parsed.expires == 600
    assert parsed.sip_if_match == "e.1"  # §4.4: modify an existing publication
    assert parsed.content_type is not None
    assert parsed.content_type.mime == "application/pidf+xml"
    assert parsed.headers.get("X-Test") == "1"
    assert b"<basic>open</basic>" in parsed.body
    parsed.validate()


@pytest.mark.parametrize("expires", [600, 0])
def test_refresh_and_remove_need_no_body(expires: int) -> None:
    request = build_publish(
        ids(), "sip:alice@example.com", event="presence", expires=expires, etag="e.1"
    )
    assert request.body == b""
    assert "content-type" not in request.headers


def test_build_publish_refuses_an_initial_publish_without_state() -> None:
    # RFC 3903 §4.1: the initial PUBLISH carries the event state
    with pytest.raises(LocalProtocolError, match="needs a body"):
        build_publish(ids(), "sip:alice@example.com", event="presence", expires=600)


def test_loop_factory_names() -> None:
    assert loop_factory("asyncio") is asyncio.new_event_loop
    assert loop_factory("uvloop") is uvloop.new_event_loop
    assert loop_factory("auto") is uvloop.new_event_loop
    with pytest.raises(ValueError, match="loop must be one of"):
        loop_factory("trio")
