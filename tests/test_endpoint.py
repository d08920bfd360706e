"""The asyncio shell on real loopback sockets: UDP, TCP and TLS, timeouts
and retransmissions, connection reuse, RFC 3263 failover and digest retries.
Every async test runs on both the stock asyncio loop and uvloop."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
from collections.abc import AsyncIterator

import pytest
import trustme

from pua.endpoint import EndpointConfig, LocalResponse, SipEndpoint
from pua.sip import Request, Response, make_response, parse_message
from pua.sip.address import Address
from pua.sip.digest import DigestCredentials
from pua.transaction import TimerSettings
from tests.helpers import make_request
from tests.transport.dns_server import DnsServer

FAST = TimerSettings(t1=0.02, t2=0.08, t4=0.1)  # F = 1.28 s


class Recorder:
    """A request handler that remembers what it got and answers 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[Request, Address]] = []

    def __call__(self, request: Request, source: Address) -> Response | None:
        self.requests.append((request, source))
        if request.method in ("NOTIFY", "PUBLISH", "MESSAGE"):
            return make_response(request, 200, to_tag="b")
        return None


Pair = tuple[SipEndpoint, SipEndpoint, Recorder]


@pytest.fixture
async def pair() -> AsyncIterator[tuple[SipEndpoint, SipEndpoint, Recorder]]:
    recorder = Recorder()
    a = SipEndpoint(EndpointConfig(tcp_port=0), handler=Recorder())
    b = SipEndpoint(
        EndpointConfig(tcp_port=0, allow=("NOTIFY", "OPTIONS", "PUBLISH")), handler=recorder
    )
    await a.start()
    await b.start()
    try:
        yield a, b, recorder
    finally:
        await a.close()
        await b.close()


class Silent(asyncio.DatagramProtocol):
    """A UDP peer that never answers and counts what it receives."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)


async def silent_peer() -> tuple[asyncio.DatagramTransport, Silent, int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Silent, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    return transport, protocol, port


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_options_is_answered_with_allow(pair: Pair, transport: str) -> None:
    a, b, _ = pair
    response = await a.request(make_request("OPTIONS", "sip:b@127.0.0.1"), b.local[transport])
    assert response.status == 200
    assert response.headers.get("Allow") == "NOTIFY, OPTIONS, PUBLISH"
    assert response.to.tag is not None


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_handler_answers_and_sees_the_request(pair: Pair, transport: str) -> None:
    a, b, recorder = pair
    request = make_request("NOTIFY", body=b"state", extra=[("Event", "presence")])
    response = await a.request(request, b.local[transport])
    assert response.status == 200
    ((seen, source),) = recorder.requests
    assert seen.body == b"state"
    assert seen.event is not None
    assert seen.event.package == "presence"
    assert source.transport == transport
    # the caller's request object is left as it was: no Via added
    assert "via" not in request.headers


async def test_destination_as_uri_string(pair: Pair) -> None:
    a, b, _ = pair
    port = b.local["tcp"].port
    response = await a.request(
        make_request("OPTIONS", "sip:b@example.invalid"), f"sip:127.0.0.1:{port};transport=tcp"
    )
    assert response.status == 200


async def test_request_uri_is_the_default_next_hop(pair: Pair) -> None:
    a, b, _ = pair
    port = b.local["udp"].port
    response = await a.request(make_request("OPTIONS", f"sip:b@127.0.0.1:{port}"))
    assert response.status == 200


async def test_async_handler_and_failing_handler() -> None:
    async def slow(request: Request, source: Address) -> Response:
        await asyncio.sleep(0)
        if request.method == "MESSAGE":
            raise RuntimeError("application bug")
        return make_response(request, 202, to_tag="x")

    allow = ("NOTIFY", "OPTIONS", "MESSAGE")
    async with (
        SipEndpoint() as a,
        SipEndpoint(EndpointConfig(allow=allow), handler=slow) as b,
    ):
        ok = await a.request(make_request("NOTIFY"), b.local["udp"])
        assert ok.status == 202
        # an exception in the application becomes a 500, not silence
        failed = await a.request(make_request("MESSAGE"), b.local["udp"])
        assert failed.status == 500


async def test_default_answers(pair: Pair) -> None:
    a, _, _ = pair
    b_without_handler = SipEndpoint()
    async with b_without_handler as b:
        dest = b.local["udp"]
        # RFC 6665 §4.1.3: a NOTIFY for no subscription is 481
        assert (await a.request(make_request("NOTIFY"), dest)).status == 481
        # RFC 3261 §8.2.1: methods not allowed get 405 with Allow
        refused = await a.request(make_request("MESSAGE"), dest)
        assert refused.status == 405
        assert refused.headers.get("Allow") == "NOTIFY, OPTIONS"


async def test_required_extension_gets_420_with_unsupported(pair: Pair) -> None:
    # RFC 3261 §8.2.2.3
    a, b, recorder = pair
    request = make_request("NOTIFY", extra=[("Require", "100rel, timer")])
    response = await a.request(request, b.local["udp"])
    assert response.status == 420
    assert response.headers.get("Unsupported") == "100rel, timer"
    assert recorder.requests == []


async def test_timeout_after_retransmissions_gives_a_local_408() -> None:
    transport, silent, port = await silent_peer()
    try:
        async with SipEndpoint(EndpointConfig(timers=FAST)) as a:
            response = await a.request(make_request(), Address("udp", "127.0.0.1", port))
            assert isinstance(response, LocalResponse)
            assert response.status == 408
            # RFC 3261 §17.1.2.2: E doubles from T1 up to T2 until F = 64*T1
            # (0.02 0.06 0.14, then every 0.08 until 1.28: at most 17
            # retransmissions; the exact schedule is tested with a fake clock
            # in tests/transaction, here the real loop may run late)
            copies = len(silent.received)
            assert 5 <= copies <= 18
            branches = {parse_message(d).top_via.branch for d in silent.received}
            assert len(branches) == 1
            assert a.layer.stats["request-retransmissions"] == copies - 1
    finally:
        transport.close()


async def test_tcp_connection_refused_gives_a_local_503() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with SipEndpoint(EndpointConfig(tcp_port=0)) as a:
        response = await a.request(make_request(), Address("tcp", "127.0.0.1", port))
        assert isinstance(response, LocalResponse)
        assert response.status == 503
        assert "connect" in response.reason


async def test_tcp_connection_is_reused_in_both_directions(pair: Pair) -> None:
    a, b, recorder = pair
    for _ in range(3):
        response = await a.request(make_request("OPTIONS"), b.local["tcp"])
        assert response.status == 200
    assert a._streams["tcp"].connection_count == 1
    await a.request(make_request("NOTIFY"), b.local["tcp"])
    source = recorder.requests[-1][1]
    # B reaches A over the connection A opened (RFC 3261 §18.2.2 spirit)
    back = await b.request(make_request("NOTIFY", call_id="back"), source)
    assert back.status == 200
    assert b._streams["tcp"].connection_count == 1
    assert a._streams["tcp"].connection_count == 1


async def test_malformed_request_gets_400_with_reason(pair: Pair) -> None:
    _, b, recorder = pair
    loop = asyncio.get_running_loop()
    replies: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            replies.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        bad = (
            "NOTIFY sip:b@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKx\r\n"
            "From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c1\r\nCSeq: abc NOTIFY\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        transport.sendto(bad, b.local["udp"][1:])
        answer = await asyncio.wait_for(replies.get(), 5)
        assert answer.startswith(b"SIP/2.0 400 Bad Request (bad-cseq)\r\n")
        assert recorder.requests == []
        assert b.layer.drops["bad-cseq"] == 1
    finally:
        transport.close()


def tls_configs(trusted: bool) -> tuple[EndpointConfig, EndpointConfig]:
    """A TLS-only client and server; the client trusts the server's CA, or
    another one."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    (ca if trusted else trustme.CA()).configure_trust(client_ctx)
    client = EndpointConfig(
        udp_port=None, tls_port=0, tls_client_context=client_ctx, tls_server_context=server_ctx
    )
    server = EndpointConfig(udp_port=None, tls_port=0, tls_server_context=server_ctx)
    return client, server


async def test_tls_with_a_trusted_certificate() -> None:
    client, server = tls_configs(trusted=True)
    async with SipEndpoint(client) as a, SipEndpoint(server, handler=Recorder()) as b:
        port = b.local["tls"].port
        response = await a.request(make_request("NOTIFY"), f"sips:127.0.0.1:{port}")
        assert response.status == 200
        assert parse_message(response.to_bytes()).top_via.transport == "TLS"


async def test_tls_with_an_untrusted_certificate_fails_as_503() -> None:
    client, server = tls_configs(trusted=False)
    async with SipEndpoint(client) as a, SipEndpoint(server, handler=Recorder()) as b:
        response = await a.request(make_request("NOTIFY"), b.local["tls"])
        assert isinstance(response, LocalResponse)
        assert response.status == 503


async def test_failover_to_the_next_srv_target_after_a_timeout() -> None:
    # RFC 3263 §4.3: on timeout, try the next target with a new branch
    transport, silent, silent_port = await silent_peer()
    dns = DnsServer("example.com.")
    await dns.start()
    try:
        async with SipEndpoint(
            handler=Recorder(), config=EndpointConfig(allow=("NOTIFY", "OPTIONS", "PUBLISH"))
        ) as b:
            dns.add(
                "_sip._udp",
                "SRV",
                f"10 0 {silent_port} one.example.com.",
                f"20 0 {b.local['udp'].port} two.example.com.",
            )
            dns.add("one", "A", "127.0.0.1")
            dns.add("two", "A", "127.0.0.1")
            config = EndpointConfig(timers=FAST, nameservers=[dns.address])
            async with SipEndpoint(config) as a:
                response = await a.request(make_request(uri="sip:alice@example.com"))
                assert response.status == 200
                assert len(silent.received) >= 2  # tried first, and retransmitted there
    finally:
        transport.close()
        await dns.stop()


async def test_unresolvable_destination_is_a_local_503() -> None:
    dns = DnsServer("example.com.")
    await dns.start()
    try:
        async with SipEndpoint(EndpointConfig(nameservers=[dns.address])) as a:
            response = await a.request(make_request(uri="sip:alice@nowhere.example.com"))
            assert isinstance(response, LocalResponse)
            assert response.status == 503
            assert "nxdomain" in response.reason
    finally:
        await dns.stop()


def _digest_ok(request: Request, password: str) -> bool:
    creds = request.headers.get("Authorization")
    if creds is None:
        return False
    fields = dict(part.strip().split("=", 1) for part in creds.removeprefix("Digest ").split(","))
    fields = {k: v.strip('"') for k, v in fields.items()}
    ha1 = hashlib.md5(f"{fields['username']}:{fields['realm']}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{request.method}:{fields['uri']}".encode()).hexdigest()
    expected = hashlib.md5(
        f"{ha1}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:{fields['qop']}:{ha2}".encode()
    ).hexdigest()
    return fields["response"] == expected


async def test_digest_challenge_is_answered_once_with_cseq_plus_one() -> None:
    seen: list[Request] = []

    def challenger(request: Request, source: Address) -> Response:
        seen.append(request)
        if _digest_ok(request, "secret"):
            return make_response(request, 200, to_tag="ok")
        challenge = 'Digest realm="pua.test", nonce="n1", qop="auth", algorithm=MD5'
        return make_response(request, 401, headers=[("WWW-Authenticate", challenge)])

    allow = ("PUBLISH", "OPTIONS")
    config = EndpointConfig(credentials=[DigestCredentials("alice", "secret")])
    async with (
        SipEndpoint(EndpointConfig(allow=allow), handler=challenger) as b,
        SipEndpoint(config) as a,
    ):
        response = await a.request(make_request(), b.local["udp"])
        assert response.status == 200
        assert [r.cseq.seq for r in seen] == [10, 11]
        assert seen[0].top_via.branch != seen[1].top_via.branch

        # wrong password: one retry, then the 401 is the answer (no loop)
        seen.clear()
        wrong = EndpointConfig(credentials=[DigestCredentials("alice", "wrong")])
        async with SipEndpoint(wrong) as c:
            refused = await c.request(make_request(), b.local["udp"])
        assert refused.status == 401
        assert len(seen) == 2


async def test_close_ends_pending_requests_with_a_local_503() -> None:
    transport, _, port = await silent_peer()
    try:
        a = SipEndpoint()
        await a.start()
        pending = asyncio.ensure_future(
            a.request(make_request(), Address("udp", "127.0.0.1", port))
        )
        while not a._waiting:
            await asyncio.sleep(0)
        await a.close()
        response = await pending
        assert isinstance(response, LocalResponse)
        assert response.status == 503
    finally:
        transport.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_ipv6_loopback(transport: str) -> None:
    config = EndpointConfig(host="::1", tcp_port=0)
    async with SipEndpoint(config) as a, SipEndpoint(config, handler=Recorder()) as b:
        response = await a.request(make_request("NOTIFY", "sip:b@[::1]"), b.local[transport])
        assert response.status == 200
        via = response.top_via
        assert via.host == "[::1]"  # RFC 3261 §25: IPv6 references in Via
        assert via.received == "::1"
        assert a.contact_uri("a").startswith("sip:a@[::1]:")
        by_uri = await a.request(
            make_request("OPTIONS", "sip:b@[::1]"), f"sip:[::1]:{b.local['udp'].port}"
        )
        assert by_uri.status == 200


async def test_submit_to_an_ip_goes_straight_to_the_layer(pair: Pair) -> None:
    a, b, recorder = pair
    hop = f"sip:127.0.0.1:{b.local['udp'].port}"
    future = a.submit(make_request("PUBLISH", "sip:x@127.0.0.1"), hop)
    assert not isinstance(future, asyncio.Task)
    response = await future
    assert response.status == 200
    assert recorder.requests[-1][0].method == "PUBLISH"
    # the next one reuses the resolved hop
    assert (
        await a.submit(make_request("PUBLISH", "sip:x@127.0.0.1", call_id="c2"), hop)
    ).status == 200


async def test_submit_with_credentials_takes_the_full_path(pair: Pair) -> None:
    _, b, _ = pair
    config = EndpointConfig(credentials=[DigestCredentials("alice", "secret")])
    async with SipEndpoint(config) as c:
        hop = f"sip:127.0.0.1:{b.local['udp'].port}"
        future = c.submit(make_request("PUBLISH", "sip:x@127.0.0.1"), hop)
        assert isinstance(future, asyncio.Task)
        assert (await future).status == 200
