"""pua against SIPp, over UDP and TCP.

SIPp plays the other side from the scenarios in ``tests/interop/sipp/``.
Those check what pua sends (with regexp actions that fail the call) and
the tests check what pua got back, plus sipp's verdict: its exit code is 0
only if every call of the run went through the scenario with every check
passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import re
import signal
import sys
from pathlib import Path

import pytest

from pua.cli.send import build_publish, pidf_document
from pua.endpoint import LocalResponse
from pua.sip.address import Address
from pua.sip.build import make_response
from pua.sip.digest import DigestCredentials
from pua.sip.headers import Headers
from pua.sip.ids import IdGenerator
from pua.sip.message import Request, Response
from pua.transaction import TimerSettings
from tests.interop.conftest import Endpoints, Sipp, SippResult, Transport, free_port

pytestmark = pytest.mark.interop

PRESENTITY = "sip:alice@127.0.0.1"
#: short timers for the retransmission tests: Timer E fires at 100 ms
FAST_TIMERS = TimerSettings(t1=0.1, t2=0.4)


def _ids() -> IdGenerator:
    return IdGenerator(random.Random(os.urandom(16)))


def _initial_publish(ids: IdGenerator) -> Request:
    return build_publish(
        ids,
        PRESENTITY,
        event="presence",
        expires=60,
        body=pidf_document(PRESENTITY, "open", "t1"),
    )


def _header(message: str, name: str) -> list[str]:
    """The values of header ``name`` in a message from sipp's trace."""
    pattern = re.compile(rf"^{re.escape(name)}[ \t]*:[ \t]*(.*?)\r?$", re.IGNORECASE | re.MULTILINE)
    head = message.split("\r\n\r\n", 1)[0]
    return [match.group(1).strip() for match in pattern.finditer(head)]


def _branch(message: str) -> str:
    via = _header(message, "Via")[0]
    match = re.search(r";branch=([^;\s]+)", via)
    assert match is not None, via
    return match.group(1)


def _digest_params(value: str) -> dict[str, str]:
    assert value.startswith("Digest "), value
    return {
        name: quoted if quoted else bare
        for name, quoted, bare in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', value[7:])
    }


def _expected_digest(params: dict[str, str], method: str, password: str) -> str:
    """The RFC 2617 qop=auth MD5 response for ``params``."""

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = md5(f"{params['username']}:{params['realm']}:{password}")
    ha2 = md5(f"{method}:{params['uri']}")
    return md5(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{params['qop']}:{ha2}")


def _assert_sipp_passed(result: SippResult, calls: int) -> None:
    """sipp's verdict: exit code 0 and exactly ``calls`` successful calls."""
    assert result.returncode == 0, result.report()
    assert (result.successful, result.failed) == (calls, 0), result.report()


# ------------------------------------------------------------------ PUBLISH
async def test_publish_and_refresh(sipp: Sipp, endpoints: Endpoints, transport: Transport) -> None:
    """A PUBLISH gets 200 with the server's SIP-ETag; the refresh carries
    that ETag in SIP-If-Match and gets a new one.  The scenario checks
    Event, Expires, Via (z9hG4bK branch, rport), CSeq and the If-Match."""
    server = await sipp.server("uas_publish.xml", transport, calls=2)
    endpoint = await endpoints.start()
    ids = _ids()

    first = await endpoint.request(_initial_publish(ids), server.address)
    assert first.status == 200, first
    etag = first.sip_etag
    assert etag is not None
    assert re.fullmatch(r"sipp-\d+-1", etag), etag
    assert first.expires == 60

    refresh = build_publish(ids, PRESENTITY, event="presence", expires=60, etag=etag)
    second = await endpoint.request(refresh, server.address)
    assert second.status == 200, second
    assert second.sip_etag is not None
    assert second.sip_etag != etag

    result = await server.finish()
    _assert_sipp_passed(result, 2)
    published = result.received("PUBLISH")
    assert len(published) == 2
    for message in published:
        assert _header(message, "Via")[0].startswith(f"SIP/2.0/{transport.upper()} ")
    assert _header(published[0], "SIP-If-Match") == []
    assert _header(published[1], "SIP-If-Match") == [etag]
    assert _header(published[1], "Content-Length") == ["0"]


# ---------------------------------------------------------------- SUBSCRIBE
async def test_subscribe(sipp: Sipp, endpoints: Endpoints, transport: Transport) -> None:
    """A SUBSCRIBE built by hand gets 200 with a To tag, a Contact and the
    Expires asked for; the scenario checks Event, Expires, Contact, the From
    tag, Via and CSeq."""
    server = await sipp.server("uas_subscribe.xml", transport)
    endpoint = await endpoints.start()
    ids = _ids()
    contact = endpoint.contact_uri(transport=transport)
    subscribe = Request(
        "SUBSCRIBE",
        "sip:bob@127.0.0.1",
        Headers(
            [
                ("Max-Forwards", "70"),
                ("To", "<sip:bob@127.0.0.1>"),
                ("From", f"<sip:watcher@127.0.0.1>;tag={ids.tag()}"),
                ("Call-ID", ids.call_id()),
                ("CSeq", "1 SUBSCRIBE"),
                ("Contact", f"<{contact}>"),
                ("Event", "presence"),
                ("Expires", "60"),
                ("Accept", "application/pidf+xml"),
            ]
        ),
    )

    response = await endpoint.request(subscribe, server.address)
    assert response.status == 200, response
    assert response.to.tag
    assert response.expires == 60
    [server_contact] = response.contacts
    assert server_contact.sip_uri.port == server.port

    result = await server.finish()
    _assert_sipp_passed(result, 1)
    [received] = result.received("SUBSCRIBE")
    assert _header(received, "Contact") == [f"<{contact}>"]
    if transport == "tcp":
        assert contact.endswith(";transport=tcp")


# ---------------------------------------------------------- retransmissions
async def test_udp_retransmission_reaches_the_server(sipp: Sipp, endpoints: Endpoints) -> None:
    """The server drops the first copy of the PUBLISH: pua's Timer E sends
    it again (same transaction, same branch) and the 200 to that copy
    completes the request."""
    # -nr: without it sipp itself drops the copy as a retransmission
    server = await sipp.server("uas_publish_retransmission.xml", "udp", extra=["-nr"])
    endpoint = await endpoints.start(timers=FAST_TIMERS)

    response = await endpoint.request(_initial_publish(_ids()), server.address)
    assert response.status == 200, response
    assert not isinstance(response, LocalResponse)
    assert response.sip_etag is not None
    assert endpoint.layer.stats["request-retransmissions"] >= 1

    result = await server.finish()
    _assert_sipp_passed(result, 1)
    copies = result.received("PUBLISH")
    assert len(copies) >= 2
    assert len({_branch(copy) for copy in copies}) == 1
    assert len({copy.replace("\r\n", "\n") for copy in copies}) == 1  # byte for byte


async def test_tcp_never_retransmits(sipp: Sipp, endpoints: Endpoints) -> None:
    """Over TCP a request is sent once even when the answer takes four T1
    (RFC 3261 section 17.1.2.2)."""
    server = await sipp.server("uas_publish_slow.xml", "tcp")
    endpoint = await endpoints.start(timers=FAST_TIMERS)

    response = await endpoint.request(_initial_publish(_ids()), server.address)
    assert response.status == 200, response
    assert endpoint.layer.stats["request-retransmissions"] == 0

    result = await server.finish()
    _assert_sipp_passed(result, 1)
    assert len(result.received("PUBLISH")) == 1


# ----------------------------------------------------------- authentication
@pytest.mark.parametrize(
    ("status", "credentials_header"),
    [(401, "Authorization"), (407, "Proxy-Authorization")],
)
async def test_digest_challenge_is_answered(
    sipp: Sipp,
    endpoints: Endpoints,
    transport: Transport,
    status: int,
    credentials_header: str,
) -> None:
    """A 401 (or 407) challenge is answered once, with the right digest in
    Authorization (or Proxy-Authorization) and CSeq + 1, and the retry gets
    200.  For 401 sipp verifies the digest itself (verifyauth); the test
    recomputes it from sipp's trace for both."""
    server = await sipp.server(f"uas_publish_auth_{status}.xml", transport)
    endpoint = await endpoints.start(credentials=[DigestCredentials("alice", "secret", None)])

    response = await endpoint.request(_initial_publish(_ids()), server.address)
    assert response.status == 200, response
    assert response.sip_etag is not None

    result = await server.finish()
    _assert_sipp_passed(result, 1)
    first, retry = result.received("PUBLISH")
    assert _header(first, credentials_header) == []
    [credentials] = _header(retry, credentials_header)
    other = "Authorization" if status == 407 else "Proxy-Authorization"
    assert _header(retry, other) == []
    params = _digest_params(credentials)
    assert params["username"] == "alice"
    assert params["uri"] == PRESENTITY
    assert params["response"] == _expected_digest(params, "PUBLISH", "secret")
    assert _header(first, "Call-ID") == _header(retry, "Call-ID")
    assert _header(first, "CSeq") == ["1 PUBLISH"]
    assert _header(retry, "CSeq") == ["2 PUBLISH"]


async def test_refused_credentials_end_after_one_retry(
    sipp: Sipp, endpoints: Endpoints, transport: Transport
) -> None:
    """A second 401 with the nonce already answered means the password is
    wrong: pua returns that 401 instead of trying again."""
    server = await sipp.server("uas_publish_auth_refused.xml", transport)
    endpoint = await endpoints.start(credentials=[DigestCredentials("alice", "secret", None)])

    response = await endpoint.request(_initial_publish(_ids()), server.address)
    assert response.status == 401, response
    assert not isinstance(response, LocalResponse)

    result = await server.finish()
    _assert_sipp_passed(result, 1)
    assert len(result.received("PUBLISH")) == 2


# ---------------------------------------------------- requests from SIPp
class _Recorder:
    """A request handler: answers NOTIFY 200 and records every request."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def __call__(self, request: Request, source: Address) -> Response | None:
        self.requests.append(request)
        if request.method == "NOTIFY":
            return make_response(request, 200, to_tag="pua-test")
        return None  # the endpoint's default answer


async def test_notify_and_options_from_sipp(
    sipp: Sipp, endpoints: Endpoints, transport: Transport
) -> None:
    """SIPp sends NOTIFY and OPTIONS; the handler answers the NOTIFY and sees
    its Event and body, OPTIONS gets the default 200 with Allow.  The
    scenario checks the To tags and Allow."""
    recorder = _Recorder()
    endpoint = await endpoints.start(handler=recorder)

    client = sipp.client("uac_notify_options.xml", transport, endpoint.local[transport])
    result = await client.finish()

    _assert_sipp_passed(result, 1)
    assert [request.method for request in recorder.requests] == ["NOTIFY", "OPTIONS"]
    notify = recorder.requests[0]
    assert notify.event is not None
    assert notify.event.package == "presence"
    state = notify.subscription_state
    assert state is not None
    assert state.expires == 60
    content_type = notify.headers.get("Content-Type")
    assert content_type == "application/pidf+xml"
    assert b"<basic>open</basic>" in notify.body
    options_reply = result.received()[1]
    assert "NOTIFY" in _header(options_reply, "Allow")[0]


async def test_malformed_request_gets_400_bad_cseq(
    sipp: Sipp, endpoints: Endpoints, transport: Transport
) -> None:
    """A NOTIFY with "CSeq: abc NOTIFY" never reaches the handler and is
    answered 400 with the reason token in the phrase."""
    recorder = _Recorder()
    endpoint = await endpoints.start(handler=recorder)

    client = sipp.client("uac_malformed.xml", transport, endpoint.local[transport])
    result = await client.finish()

    _assert_sipp_passed(result, 1)
    assert recorder.requests == []
    assert endpoint.layer.drops["bad-cseq"] >= 1
    assert endpoint.layer.stats["stateless-400"] >= 1
    replies = result.received()
    assert replies
    for reply in replies:  # more than one only if sipp resent the NOTIFY
        status_line = reply.split("\n", 1)[0]
        assert status_line.startswith("SIP/2.0 400 "), status_line
        assert "bad-cseq" in status_line


# --------------------------------------------------------------------- CLI
def _pua_script() -> Path:
    script = Path(sys.executable).parent / "pua"
    if not script.is_file():
        pytest.fail(
            f"{script} is missing: install the project into this environment (pip install -e .)",
            pytrace=False,
        )
    return script


async def _run_pua(*args: str) -> tuple[int, str, str]:
    """Run the ``pua`` console script; its exit code, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        str(_pua_script()),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, stdout.decode(), stderr.decode()


async def test_cli_publish(sipp: Sipp, transport: Transport) -> None:
    """``pua publish ... --json`` end to end: exit code 0 and the reply
    (200 and sipp's SIP-ETag) as JSON."""
    server = await sipp.server("uas_publish.xml", transport)
    proxy = f"sip:127.0.0.1:{server.port}" + (";transport=tcp" if transport == "tcp" else "")

    code, stdout, stderr = await _run_pua(
        "publish", PRESENTITY, "--proxy", proxy, "--pidf", "open", "--json"
    )

    assert code == 0, stderr
    reply = json.loads(stdout)
    assert reply["status"] == 200
    assert reply["local"] is False
    assert re.fullmatch(r"sipp-\d+-1", reply["headers"]["SIP-ETag"])
    assert reply["headers"]["Expires"] == "3600"

    result = await server.finish()
    _assert_sipp_passed(result, 1)
    [sent] = result.sent()
    assert _header(sent, "SIP-ETag") == [reply["headers"]["SIP-ETag"]]
    [received] = result.received("PUBLISH")
    assert _header(received, "Expires") == ["3600"]


async def test_cli_publish_to_a_closed_tcp_port() -> None:
    """Nothing listens: the connection is refused at once, and ``pua publish``
    reports a local 503 and exits 1."""
    port = free_port("tcp")  # free: nothing listens there

    code, stdout, stderr = await _run_pua(
        "publish",
        PRESENTITY,
        "--proxy",
        f"sip:127.0.0.1:{port};transport=tcp",
        "--pidf",
        "open",
        "--json",
    )

    assert code == 1, stderr
    reply = json.loads(stdout)
    assert reply["status"] == 503
    assert reply["local"] is True
