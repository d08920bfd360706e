"""RFC 3263 §4 next-hop resolution against a local authoritative DNS server."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from pua.errors import PuaError
from pua.sip.address import Address
from pua.sip.uri import SipUri, parse_sip_uri
from pua.transport.resolve import ResolveError, Resolver
from tests.transport.dns_server import DnsServer


def uri(text: str) -> SipUri:
    return parse_sip_uri(text)


def resolver(server: DnsServer, **kwargs: Any) -> Resolver:
    return Resolver(nameservers=[server.address], **kwargs)


def types_asked(server: DnsServer) -> set[str]:
    return {rdtype for _, rdtype in server.queries}


def names_asked(server: DnsServer) -> set[str]:
    return {name for name, _ in server.queries}


def add_srv_zone(server: DnsServer) -> None:
    """One SRV record per transport, each target with one IPv4 address."""
    server.add("_sip._udp", "SRV", "0 0 5060 udp.example.com.")
    server.add("_sip._tcp", "SRV", "0 0 5062 tcp.example.com.")
    server.add("_sips._tcp", "SRV", "0 0 5063 tls.example.com.")
    server.add("udp", "A", "192.0.2.10")
    server.add("tcp", "A", "192.0.2.20")
    server.add("tls", "A", "192.0.2.30")


UDP = Address("udp", "192.0.2.10", 5060)
TCP = Address("tcp", "192.0.2.20", 5062)
TLS = Address("tls", "192.0.2.30", 5063)


# -- numeric targets: no DNS at all (RFC 3263 §4.1, §4.2) -------------------


async def test_numeric_ipv4(dns_server: DnsServer) -> None:
    r = resolver(dns_server)
    assert await r.resolve(uri("sip:alice@192.0.2.1")) == [Address("udp", "192.0.2.1", 5060)]
    assert await r.resolve(uri("sip:192.0.2.1:5070")) == [Address("udp", "192.0.2.1", 5070)]
    assert dns_server.queries == []


async def test_numeric_ipv6_with_brackets(dns_server: DnsServer) -> None:
    r = resolver(dns_server)
    assert await r.resolve(uri("sip:bob@[2001:db8::1]:5070")) == [
        Address("udp", "2001:db8::1", 5070)
    ]
    assert await r.resolve(uri("sips:[2001:DB8:0::1]")) == [Address("tls", "2001:db8::1", 5061)]
    assert dns_server.queries == []


def test_numeric_target_is_synchronous() -> None:
    r = Resolver(nameservers=[("127.0.0.1", 9)])
    assert r.numeric_target(uri("sip:192.0.2.1;transport=tcp")) == [
        Address("tcp", "192.0.2.1", 5060)
    ]
    assert r.numeric_target(uri("sip:192.0.2.1;transport=TLS")) == [
        Address("tls", "192.0.2.1", 5061)
    ]
    assert r.numeric_target(uri("sip:example.com")) is None
    assert r.numeric_target(uri("sip:example.com;maddr=[::1]")) == [Address("udp", "::1", 5060)]


def test_default_transport_for_numeric_sip() -> None:
    r = Resolver(nameservers=[("127.0.0.1", 9)], default_transport="tcp")
    assert r.numeric_target(uri("sip:192.0.2.1")) == [Address("tcp", "192.0.2.1", 5060)]
    assert r.numeric_target(uri("sips:192.0.2.1")) == [Address("tls", "192.0.2.1", 5061)]


# -- what the URI decides ----------------------------------------------------


async def test_explicit_port_with_name_asks_a_and_aaaa_only(dns_server: DnsServer) -> None:
    dns_server.add("@", "NAPTR", '10 10 "s" "SIP+D2T" "" _sip._tcp.example.com.')
    dns_server.add("_sip._tcp", "SRV", "0 0 5062 tcp.example.com.")
    dns_server.add("proxy", "A", "192.0.2.5")
    dns_server.add("proxy", "AAAA", "2001:db8::5")
    got = await resolver(dns_server).resolve(uri("sip:proxy.example.com:5080"))
    assert got == [Address("udp", "192.0.2.5", 5080), Address("udp", "2001:db8::5", 5080)]
    assert set(dns_server.queries) == {("proxy.example.com", "A"), ("proxy.example.com", "AAAA")}


async def test_explicit_port_sips_is_tls(dns_server: DnsServer) -> None:
    dns_server.add("proxy", "A", "192.0.2.5")
    got = await resolver(dns_server).resolve(uri("sips:proxy.example.com:5081"))
    assert got == [Address("tls", "192.0.2.5", 5081)]
    assert types_asked(dns_server) == {"A", "AAAA"}


async def test_transport_param_skips_naptr_and_asks_its_srv(dns_server: DnsServer) -> None:
    dns_server.add("@", "NAPTR", '10 10 "s" "SIP+D2U" "" _sip._udp.example.com.')
    add_srv_zone(dns_server)
    got = await resolver(dns_server).resolve(uri("sip:example.com;transport=tcp"))
    assert got == [TCP]
    assert "NAPTR" not in types_asked(dns_server)
    assert ("_sip._tcp.example.com", "SRV") in dns_server.queries
    assert ("_sip._udp.example.com", "SRV") not in dns_server.queries


async def test_transport_param_tls_on_sip_uses_sips_srv(dns_server: DnsServer) -> None:
    add_srv_zone(dns_server)
    got = await resolver(dns_server).resolve(uri("sip:example.com;transport=tls"))
    assert got == [TLS]


async def test_maddr_numeric_overrides_host(dns_server: DnsServer) -> None:
    got = await resolver(dns_server).resolve(
        uri("sip:alice@example.com:5070;maddr=192.0.2.9;transport=tcp")
    )
    assert got == [Address("tcp", "192.0.2.9", 5070)]
    assert dns_server.queries == []


async def test_maddr_name_is_the_target(dns_server: DnsServer) -> None:
    dns_server.add("proxy", "A", "192.0.2.7")
    dns_server.add("@", "A", "192.0.2.1")
    got = await resolver(dns_server).resolve(uri("sip:alice@example.com;maddr=proxy.example.com"))
    assert got == [Address("udp", "192.0.2.7", 5060)]
    assert "example.com" not in names_asked(dns_server)
    assert ("proxy.example.com", "NAPTR") in dns_server.queries


async def test_sips_is_tls(dns_server: DnsServer) -> None:
    dns_server.add(
        "@",
        "NAPTR",
        '10 10 "s" "SIP+D2U" "" _sip._udp.example.com.',
        '20 10 "s" "SIPS+D2T" "" _sips._tcp.example.com.',
    )
    add_srv_zone(dns_server)
    r = resolver(dns_server)
    assert await r.resolve(uri("sips:alice@example.com")) == [TLS]
    assert await r.resolve(uri("sips:alice@example.com;transport=tcp")) == [TLS]
    assert r.numeric_target(uri("sips:192.0.2.1")) == [Address("tls", "192.0.2.1", 5061)]


async def test_sips_with_transport_udp_is_an_error(dns_server: DnsServer) -> None:
    r = resolver(dns_server)
    with pytest.raises(ResolveError) as exc:
        await r.resolve(uri("sips:alice@example.com;transport=udp"))
    assert exc.value.reason == "tls-over-udp"
    assert "example.com" in str(exc.value)
    with pytest.raises(ResolveError) as exc:
        r.numeric_target(uri("sips:192.0.2.1;transport=UDP"))
    assert exc.value.reason == "tls-over-udp"
    assert dns_server.queries == []


async def test_unsupported_transport_param(dns_server: DnsServer) -> None:
    r = resolver(dns_server, supported=("udp", "tcp"))
    for text in ("sip:example.com;transport=sctp", "sip:192.0.2.1;transport=tls", "sips:x.com"):
        with pytest.raises(ResolveError) as exc:
            await r.resolve(uri(text))
        assert exc.value.reason == "unsupported-transport"
    assert dns_server.queries == []


async def test_bad_maddr_is_bad_uri(dns_server: DnsServer) -> None:
    r = resolver(dns_server)
    for text in ("sip:example.com;maddr=a&b", "sip:example.com;maddr", "sip:x.com;maddr=[zz]"):
        with pytest.raises(ResolveError) as exc:
            await r.resolve(uri(text))
        assert exc.value.reason == "bad-uri"
        assert isinstance(exc.value, PuaError)


def test_constructor_checks_transports() -> None:
    with pytest.raises(ValueError, match="supported"):
        Resolver(nameservers=[], supported=("udp", "ws"))
    with pytest.raises(ValueError, match="default transport"):
        Resolver(nameservers=[], supported=("tcp",))


# -- NAPTR (RFC 3263 §4.1) ---------------------------------------------------


def add_naptr_zone(server: DnsServer) -> None:
    server.add(
        "@",
        "NAPTR",
        '20 10 "s" "SIP+D2U" "" _sip._udp.example.com.',
        '10 20 "s" "SIP+D2T" "" _sip._tcp.example.com.',
        '10 10 "S" "SIPS+D2T" "" _sips._tcp.example.com.',
        # not for a SIP client: another application, SCTP, a terminal rule
        '1 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" .',
        '1 10 "s" "SIP+D2S" "" _sip._sctp.example.com.',
        '1 10 "a" "SIP+D2U" "" udp.example.com.',
    )
    add_srv_zone(server)


async def test_naptr_srv_a_chain_in_order_and_preference(dns_server: DnsServer) -> None:
    add_naptr_zone(dns_server)
    got = await resolver(dns_server).resolve(uri("sip:alice@example.com"))
    assert got == [TLS, TCP, UDP]
    assert dns_server.queries[0] == ("example.com", "NAPTR")
    assert ("_sip._sctp.example.com", "SRV") not in dns_server.queries


async def test_naptr_restricted_by_supported(dns_server: DnsServer) -> None:
    add_naptr_zone(dns_server)
    got = await resolver(dns_server, supported=("udp", "tcp")).resolve(uri("sip:example.com"))
    assert got == [TCP, UDP]
    assert ("_sips._tcp.example.com", "SRV") not in dns_server.queries
    got = await resolver(dns_server, supported=("udp",)).resolve(uri("sip:example.com"))
    assert got == [UDP]


async def test_naptr_with_only_unusable_records_falls_back_to_srv(
    dns_server: DnsServer,
) -> None:
    dns_server.add("@", "NAPTR", '10 10 "u" "E2U+sip" "!^.*$!sip:info@example.com!" .')
    add_srv_zone(dns_server)
    assert await resolver(dns_server).resolve(uri("sip:example.com")) == [UDP, TCP, TLS]


async def test_naptr_without_srv_uses_its_transport_on_a(dns_server: DnsServer) -> None:
    dns_server.add("@", "NAPTR", '10 10 "s" "SIP+D2T" "" _sip._tcp.example.com.')
    dns_server.add("@", "A", "192.0.2.1")
    got = await resolver(dns_server).resolve(uri("sip:example.com"))
    assert got == [Address("tcp", "192.0.2.1", 5060)]


# -- SRV (RFC 3263 §4.1 last paragraph, §4.2; RFC 2782) ---------------------


async def test_no_naptr_srv_fallback_order(dns_server: DnsServer) -> None:
    add_srv_zone(dns_server)
    assert await resolver(dns_server).resolve(uri("sip:example.com")) == [UDP, TCP, TLS]
    srv_asked = [name for name, rdtype in dns_server.queries if rdtype == "SRV"]
    assert sorted(srv_asked) == [
        "_sip._tcp.example.com",
        "_sip._udp.example.com",
        "_sips._tcp.example.com",
    ]


async def test_no_naptr_srv_fallback_restricted_and_sips(dns_server: DnsServer) -> None:
    add_srv_zone(dns_server)
    r = resolver(dns_server, supported=("tcp", "tls"), default_transport="tcp")
    assert await r.resolve(uri("sip:example.com")) == [TCP, TLS]
    assert ("_sip._udp.example.com", "SRV") not in dns_server.queries
    dns_server.queries.clear()
    assert await resolver(dns_server).resolve(uri("sips:example.com")) == [TLS]
    srv_asked = {name for name, rdtype in dns_server.queries if rdtype == "SRV"}
    assert srv_asked == {"_sips._tcp.example.com"}


async def test_srv_fallback_keeps_only_existing_services(dns_server: DnsServer) -> None:
    dns_server.add("_sip._tcp", "SRV", "0 0 5062 tcp.example.com.")
    dns_server.add("tcp", "A", "192.0.2.20")
    assert await resolver(dns_server).resolve(uri("sip:example.com")) == [TCP]


def add_weighted_zone(server: DnsServer) -> None:
    server.add(
        "_sip._udp",
        "SRV",
        "20 0 5060 backup.example.com.",
        "10 0 5060 light.example.com.",
        "10 10 5060 middle.example.com.",
        "10 90 5060 heavy.example.com.",
    )
    for n, host in enumerate(("backup", "light", "middle", "heavy"), start=1):
        server.add(host, "A", f"192.0.2.{n}")


async def test_srv_priority_then_weight(dns_server: DnsServer) -> None:
    add_weighted_zone(dns_server)
    r = resolver(dns_server, supported=("udp",), rng=random.Random(1))
    firsts: Counter[str] = Counter()
    for _ in range(300):
        got = await r.resolve(uri("sip:example.com"))
        hosts = [a.host for a in got]
        # RFC 2782: every priority-10 record before the priority-20 one
        assert sorted(hosts[:3]) == ["192.0.2.2", "192.0.2.3", "192.0.2.4"]
        assert hosts[3] == "192.0.2.1"
        firsts[hosts[0]] += 1
    # weighted draw: heavy (90) leads far more often than middle (10), which
    # leads more often than the weight-0 record
    assert firsts["192.0.2.4"] > firsts["192.0.2.3"] > firsts["192.0.2.2"]
    assert firsts["192.0.2.4"] > 200


async def test_srv_order_is_reproducible_with_a_seed(dns_server: DnsServer) -> None:
    # the server shuffles records, so equal orders show that the seed alone
    # decides them
    add_weighted_zone(dns_server)
    orders = set()
    for seed in range(20):
        first, second = [
            await resolver(dns_server, rng=random.Random(seed)).resolve(uri("sip:example.com"))
            for _ in range(2)
        ]
        assert first == second
        orders.add(tuple(first))
    assert len(orders) > 1


async def test_srv_target_with_several_a_and_aaaa(dns_server: DnsServer) -> None:
    dns_server.add("_sip._tcp", "SRV", "0 0 5070 multi.example.com.", "1 0 5071 other.example.com.")
    dns_server.add("multi", "A", "192.0.2.1", "192.0.2.2")
    dns_server.add("multi", "AAAA", "2001:db8::1", "2001:db8::2")
    dns_server.add("other", "AAAA", "2001:db8::9")
    got = await resolver(dns_server, supported=("tcp",), default_transport="tcp").resolve(
        uri("sip:example.com")
    )
    # dnspython (like most servers) shuffles the records of an RRset, so the
    # order within a family is the server's; A comes before AAAA, and the
    # priority-0 target before the priority-1 one
    assert set(got[:2]) == {Address("tcp", "192.0.2.1", 5070), Address("tcp", "192.0.2.2", 5070)}
    assert set(got[2:4]) == {
        Address("tcp", "2001:db8::1", 5070),
        Address("tcp", "2001:db8::2", 5070),
    }
    assert got[4:] == [Address("tcp", "2001:db8::9", 5071)]


async def test_srv_additional_section_saves_queries(dns_server: DnsServer) -> None:
    dns_server.additional = True
    dns_server.add("_sip._udp", "SRV", "0 0 5070 multi.example.com.")
    dns_server.add("multi", "A", "192.0.2.1")
    dns_server.add("multi", "AAAA", "2001:db8::1")
    got = await resolver(dns_server, supported=("udp",)).resolve(uri("sip:example.com"))
    assert got == [Address("udp", "192.0.2.1", 5070), Address("udp", "2001:db8::1", 5070)]
    assert "multi.example.com" not in names_asked(dns_server)


async def test_srv_dot_target_means_not_available(dns_server: DnsServer) -> None:
    dns_server.add("_sip._udp", "SRV", "0 0 0 .")
    dns_server.add("@", "A", "192.0.2.1")
    with pytest.raises(ResolveError) as exc:
        await resolver(dns_server, supported=("udp",)).resolve(uri("sip:example.com"))
    assert exc.value.reason == "no-records"


async def test_srv_targets_without_addresses(dns_server: DnsServer) -> None:
    dns_server.add("_sip._udp", "SRV", "0 0 5060 gone.example.com.")
    with pytest.raises(ResolveError) as exc:
        await resolver(dns_server, supported=("udp",)).resolve(uri("sip:example.com"))
    assert exc.value.reason == "no-records"
    assert "example.com" in str(exc.value)


# -- A/AAAA fallback (RFC 3263 §4.2) -----------------------------------------


async def test_no_srv_uses_a_and_aaaa_with_default_ports(dns_server: DnsServer) -> None:
    dns_server.add("@", "A", "192.0.2.1")
    dns_server.add("@", "AAAA", "2001:db8::1")
    r = resolver(dns_server)
    assert await r.resolve(uri("sip:example.com")) == [
        Address("udp", "192.0.2.1", 5060),
        Address("udp", "2001:db8::1", 5060),
    ]
    assert await r.resolve(uri("sips:example.com")) == [
        Address("tls", "192.0.2.1", 5061),
        Address("tls", "2001:db8::1", 5061),
    ]
    assert await r.resolve(uri("sip:example.com;transport=tcp")) == [
        Address("tcp", "192.0.2.1", 5060),
        Address("tcp", "2001:db8::1", 5060),
    ]


async def test_partial_answer_is_enough(dns_server: DnsServer) -> None:
    dns_server.add("proxy", "A", "192.0.2.5")
    dns_server.drop.add(("proxy.example.com", "AAAA"))
    got = await resolver(dns_server, timeout=0.3).resolve(uri("sip:proxy.example.com:5060"))
    assert got == [Address("udp", "192.0.2.5", 5060)]


# -- errors --------------------------------------------------------------------


async def test_nxdomain(dns_server: DnsServer) -> None:
    with pytest.raises(ResolveError) as exc:
        await resolver(dns_server).resolve(uri("sip:alice@nowhere.example.com"))
    assert exc.value.reason == "nxdomain"
    assert exc.value.host == "nowhere.example.com"
    assert "nowhere.example.com" in str(exc.value)
    # RFC 8020: nothing below a name that does not exist, so no SRV queries
    assert dns_server.queries == [("nowhere.example.com", "NAPTR")]


async def test_nxdomain_with_explicit_port(dns_server: DnsServer) -> None:
    with pytest.raises(ResolveError) as exc:
        await resolver(dns_server).resolve(uri("sip:nowhere.example.com:5060"))
    assert exc.value.reason == "nxdomain"


async def test_name_without_addresses(dns_server: DnsServer) -> None:
    dns_server.add("mail", "MX", "10 mx.example.com.")
    with pytest.raises(ResolveError) as exc:
        await resolver(dns_server).resolve(uri("sip:mail.example.com"))
    assert exc.value.reason == "no-records"
    assert "mail.example.com" in str(exc.value)


async def test_unanswered_server_times_out(dns_server: DnsServer) -> None:
    dns_server.silent = True
    with pytest.raises(ResolveError) as exc:
        await resolver(dns_server, timeout=0.3).resolve(uri("sip:example.com"))
    assert exc.value.reason == "timeout"
    assert "example.com" in str(exc.value)
