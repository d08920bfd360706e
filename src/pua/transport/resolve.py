"""Next-hop resolution for SIP requests: RFC 3263 §4, the client side.

:class:`Resolver` turns the URI a request is sent to (Request-URI or top
Route) into the ordered list of :class:`~pua.sip.address.Address` values to
try.  It only *orders*: failover is the caller's job.  A client sends to the
first address and, on a transport error or a transaction timeout, moves on to
the next one (RFC 3263 §4.3); the resolver never probes a target.

The steps, and what is not done:

* target host: the ``maddr`` parameter if present, else the URI host (§4);
* transport (§4.1): the ``transport`` parameter, else NAPTR, else SRV probing,
  else UDP for ``sip`` (``default_transport``) and TLS for ``sips``;
* port and address (§4.2): the URI port with an A/AAAA lookup, else SRV
  (RFC 2782 priority and weight order), else A/AAAA with the default port;
* not done: NAPTR records with regexp rewrites or flags other than ``s``
  (RFC 3263 uses replacement only), SCTP (``SIP+D2S``), WebSocket, the
  response side (§5, RFC 3581 ``rport``) and server-side failover state
  (blacklisting a target that failed recently).

Caching: answers are kept by dnspython's own TTL cache
(:class:`dns.resolver.Cache`), one per :class:`Resolver`; there is no other
cache here.  Every DNS query is bounded by ``timeout`` seconds, so a silent
server ends in :class:`ResolveError` with reason ``timeout``, never a hang.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.rrset
from dns.rdtypes.IN.NAPTR import NAPTR
from dns.rdtypes.IN.SRV import SRV

from pua.errors import PuaError
from pua.sip.address import TRANSPORTS, Address
from pua.sip.uri import SipUri

__all__ = ["DEFAULT_PORTS", "ResolveError", "Resolver"]

#: RFC 3261 §19.1.2: 5060 for UDP and TCP, 5061 for TLS.
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}

# RFC 3263 §4.1: NAPTR service fields for SIP and the transport each names.
_NAPTR_SERVICES = {b"SIP+D2U": "udp", b"SIP+D2T": "tcp", b"SIPS+D2T": "tls"}
# RFC 3263 §4.1, last paragraph: SRV names probed when there is no NAPTR,
# in this order; "_sips" is the service of TLS for sip URIs too (§4.2).
_SRV_PREFIXES = {"udp": "_sip._udp", "tcp": "_sip._tcp", "tls": "_sips._tcp"}

# Failures of a NAPTR or SRV query that end the resolution: the next step
# would only be a guess.
_FATAL = ("timeout", "server-failure")

_IPV4_LIKE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9_])?\.?")


class ResolveError(PuaError):
    """No address can be found for a SIP URI.

    ``reason`` is a stable, machine-readable token:

    * ``"nxdomain"``: the target host does not exist;
    * ``"no-records"``: it exists but yields no usable address;
    * ``"timeout"``: a DNS query went unanswered for ``timeout`` seconds;
    * ``"server-failure"``: the DNS servers answered with an error (SERVFAIL,
      REFUSED) or could not be reached;
    * ``"bad-uri"``: the URI cannot be routed to (no host, bad ``maddr``);
    * ``"tls-over-udp"``: a ``sips`` URI with ``transport=udp``;
    * ``"unsupported-transport"``: the URI asks for a transport this client
      does not support (or does not know, such as ``sctp``).

    ``host`` is the host being resolved; it is also in the message.
    """

    def __init__(self, reason: str, host: str, detail: str = "") -> None:
        self.reason = reason
        self.host = host
        self.detail = detail
        text = f"{reason}: {host}"
        super().__init__(f"{text} ({detail})" if detail else text)


@dataclass(slots=True)
class _Outcome:
    """One DNS query's result: an answer, or why there is none."""

    answer: dns.resolver.Answer | None = None
    failure: str | None = None


@dataclass(slots=True)
class _Service:
    """A transport and the SRV owner name that says where it is served."""

    transport: str
    srv_name: dns.name.Name


@dataclass(slots=True)
class _Hosts:
    """Addresses found for one name, or the failures that left it empty."""

    addresses: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the URI alone decides (§4): target, numeric form, transport, port."""

    host: str
    numeric: str | None
    transport: str | None
    port: int | None
    secure: bool


class Resolver:
    """RFC 3263 §4 client resolution of SIP URIs to an ordered address list.

    ``nameservers`` lists ``(ip, port)`` pairs to query; ``None`` reads the
    system configuration (``/etc/resolv.conf``).  ``timeout`` bounds every
    single DNS query, in seconds.  ``supported`` names the transports this
    client can use: NAPTR and SRV results for others are dropped.
    ``default_transport`` is used for ``sip`` URIs where RFC 3263 says UDP
    (no ``transport`` parameter and no NAPTR/SRV to tell); ``sips`` URIs
    always use TLS.  ``rng`` draws the RFC 2782 weighted order of SRV
    records of equal priority; inject a seeded one for reproducible orders.
    """

    def __init__(
        self,
        nameservers: list[tuple[str, int]] | None = None,
        timeout: float = 2.0,
        supported: tuple[str, ...] = ("udp", "tcp", "tls"),
        default_transport: str = "udp",
        rng: random.Random | None = None,
    ) -> None:
        unknown = [t for t in supported if t not in TRANSPORTS]
        if unknown or not supported:
            raise ValueError(f"supported transports must be among {TRANSPORTS}: {supported!r}")
        if default_transport not in supported:
            raise ValueError(f"default transport {default_transport!r} is not supported")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._timeout = timeout
        self._supported = tuple(supported)
        self._default_transport = default_transport
        self._rng = rng if rng is not None else random.Random()
        if nameservers is None:
            self._dns = dns.asyncresolver.Resolver()
        else:
            self._dns = dns.asyncresolver.Resolver(configure=False)
            self._dns.nameservers = [
                dns.nameserver.Do53Nameserver(ip, port) for ip, port in nameservers
            ]
        self._dns.timeout = timeout
        self._dns.lifetime = timeout
        self._dns.cache = dns.resolver.Cache()

    # -- public -------------------------------------------------------------
    def numeric_target(self, uri: SipUri) -> list[Address] | None:
        """The single address of a URI whose target is a numeric IP, else ``None``.

        Synchronous and free of DNS, so that a caller sending to an IP
        address needs no coroutine.  ``None`` means :meth:`resolve` must be
        awaited.  Raises :class:`ResolveError` for URIs that can never be
        resolved (``tls-over-udp``, ``bad-uri``, ``unsupported-transport``).
        """
        return self._numeric(self._plan(uri))

    async def resolve(self, uri: SipUri) -> list[Address]:
        """The addresses to try for ``uri``, best first (RFC 3263 §4).

        The list is never empty: a URI that yields nothing raises
        :class:`ResolveError`.  The caller tries the addresses in order and
        moves to the next one when a transport error or a timeout ends the
        attempt (§4.3); the resolver keeps no failure state of its own.

        At most three rounds of queries run one after the other (NAPTR, SRV,
        A/AAAA; the queries of a round run together), each bounded by
        ``timeout``, so a call takes at most three times ``timeout``.
        """
        plan = self._plan(uri)
        numeric = self._numeric(plan)
        if numeric is not None:
            return numeric
        name = _dns_name(plan.host)

        if plan.port is not None:
            # §4.1/§4.2: a name with an explicit port: no NAPTR nor SRV, the
            # URI transport (UDP for sip, TLS for sips) and an A/AAAA lookup.
            transport = plan.transport or self._implicit_transport(plan)
            return self._host_addresses(plan.host, transport, plan.port, await self._hosts(name))

        fallback_transport = plan.transport or self._implicit_transport(plan)
        if plan.transport is not None:
            # §4.2: the transport is known, so SRV for that transport alone.
            services = [_Service(plan.transport, _srv_name(plan.transport, name))]
        else:
            naptr = await self._naptr(plan.host, name, plan.secure)
            if naptr:
                services = naptr
                # §4.2: without SRV, A/AAAA with the transport NAPTR chose.
                fallback_transport = naptr[0].transport
            else:
                # §4.1, last paragraph: no (usable) NAPTR: probe the SRV names
                # of the supported transports, _sips only for sips URIs.
                wanted = ("tls",) if plan.secure else ("udp", "tcp", "tls")
                services = [_Service(t, _srv_name(t, name)) for t in wanted if t in self._supported]

        found, addresses = await self._srv_addresses(plan.host, services)
        if found:
            return addresses
        # §4.2: no SRV records: A/AAAA of the target, default port.
        return self._host_addresses(
            plan.host,
            fallback_transport,
            DEFAULT_PORTS[fallback_transport],
            await self._hosts(name),
        )

    # -- what the URI decides ----------------------------------------------
    def _plan(self, uri: SipUri) -> _Plan:
        if not isinstance(uri, SipUri) or uri.scheme not in ("sip", "sips"):
            raise ResolveError("bad-uri", str(uri), "not a sip or sips URI")
        secure = uri.secure
        # §4: TARGET is maddr when present, else the host part.
        if uri.has_param("maddr"):
            host = uri.maddr or ""
            if not host:
                raise ResolveError("bad-uri", str(uri), "empty maddr")
        else:
            host = uri.host
        if not host:
            raise ResolveError("bad-uri", str(uri), "no host")
        numeric = _numeric_host(host)
        if numeric is None and _HOSTNAME.fullmatch(host) is None:
            raise ResolveError("bad-uri", host, "not a host name")

        transport: str | None = None
        if uri.has_param("transport"):
            requested = uri.transport or ""
            if secure and requested == "udp":
                # RFC 3261 §26.2.2 / RFC 3263 §4.1: sips means TLS, and TLS
                # over UDP does not exist.
                raise ResolveError("tls-over-udp", host, str(uri))
            if secure and requested in ("tcp", "tls"):
                # RFC 3261 §26.2.2: a sips URI is reached by TLS over TCP.
                transport = "tls"
            elif requested in TRANSPORTS:
                transport = requested
            else:
                raise ResolveError("unsupported-transport", host, f"transport={requested}")
            if transport not in self._supported:
                raise ResolveError("unsupported-transport", host, f"transport={transport}")
        return _Plan(host, numeric, transport, uri.port, secure)

    def _numeric(self, plan: _Plan) -> list[Address] | None:
        if plan.numeric is None:
            return None
        # RFC 3263 §4.1: a numeric target takes UDP for sip, TLS for sips;
        # §4.2: the URI port, else the transport's default port.
        transport = plan.transport or self._implicit_transport(plan)
        port = plan.port if plan.port is not None else DEFAULT_PORTS[transport]
        return [Address(transport, plan.numeric, port)]

    def _implicit_transport(self, plan: _Plan) -> str:
        """§4.1: UDP (the configured default) for sip, TLS for sips."""
        if not plan.secure:
            return self._default_transport
        if "tls" not in self._supported:
            raise ResolveError("unsupported-transport", plan.host, "sips needs tls")
        return "tls"

    # -- DNS steps ------------------------------------------------------------
    async def _query(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> _Outcome:
        """One query, bounded by ``timeout``; failures become reason tokens."""
        try:
            # dnspython's lifetime bounds it already; asyncio.timeout is the
            # backstop that makes "never a hang" independent of it.
            async with asyncio.timeout(self._timeout):
                answer = await self._dns.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            return _Outcome(failure="nxdomain")
        except dns.resolver.NoAnswer:
            return _Outcome(failure="no-records")
        except (dns.exception.Timeout, TimeoutError):
            return _Outcome(failure="timeout")
        except dns.exception.DNSException:
            # NoNameservers (SERVFAIL, REFUSED, unreachable), YXDOMAIN, ...
            return _Outcome(failure="server-failure")
        return _Outcome(answer=answer)

    async def _naptr(self, host: str, name: dns.name.Name, secure: bool) -> list[_Service]:
        """§4.1: the usable NAPTR records of ``name``, in order; ``[]`` if none."""
        outcome = await self._query(name, dns.rdatatype.NAPTR)
        if outcome.failure is not None and outcome.failure in _FATAL:
            # Guessing past an unanswered NAPTR could pick a transport the
            # domain does not want; report instead.
            raise ResolveError(outcome.failure, host, "NAPTR")
        if outcome.failure == "nxdomain":
            # RFC 8020: nothing exists under a name that does not exist, so
            # the SRV and A/AAAA steps cannot succeed either.
            raise ResolveError("nxdomain", host)
        if outcome.answer is None or outcome.answer.rrset is None:
            return []
        records = [rd for rd in outcome.answer.rrset if isinstance(rd, NAPTR)]
        records.sort(key=lambda rd: (rd.order, rd.preference, rd.service, rd.replacement))
        services: list[_Service] = []
        for rd in records:
            transport = _NAPTR_SERVICES.get(rd.service.upper())
            # §4.1: SIP uses the "s" flag and the replacement only; a sips
            # URI keeps SIPS+D2T; the client drops what it does not support.
            if transport is None or rd.flags.lower() != b"s" or rd.regexp:
                continue
            if (secure and transport != "tls") or transport not in self._supported:
                continue
            if rd.replacement == dns.name.root:
                continue
            services.append(_Service(transport, rd.replacement))
        return services

    async def _srv_addresses(
        self, host: str, services: Sequence[_Service]
    ) -> tuple[bool, list[Address]]:
        """§4.2: SRV records of each service, then the addresses of their targets.

        Returns whether any SRV record exists (a lone "." target counts: the
        service is decidedly not available, RFC 2782) and the addresses in
        order: services in the order given, RFC 2782 order within each.
        """
        outcomes = await asyncio.gather(
            *(self._query(s.srv_name, dns.rdatatype.SRV) for s in services)
        )
        found = False
        # (transport, target, port), in the order the addresses must come
        targets: list[tuple[str, dns.name.Name, int]] = []
        hints: dict[dns.name.Name, list[str]] = {}
        for service, outcome in zip(services, outcomes, strict=True):
            if outcome.failure is not None and outcome.failure in _FATAL:
                raise ResolveError(outcome.failure, host, f"SRV {service.srv_name}")
            answer = outcome.answer
            if answer is None or answer.rrset is None:
                continue  # nxdomain or no-records: this service is absent
            found = True
            records = [rd for rd in answer.rrset if isinstance(rd, SRV)]
            for rd in _order_srv(records, self._rng):
                if rd.target != dns.name.root:
                    targets.append((service.transport, rd.target, rd.port))
            for target, addresses in _additional_addresses(answer).items():
                hints.setdefault(target, addresses)
        if not found:
            return False, []

        unique = list(dict.fromkeys(t for _, t, _ in targets if t not in hints))
        looked_up = await asyncio.gather(*(self._hosts(t) for t in unique))
        resolved: dict[dns.name.Name, _Hosts] = dict(zip(unique, looked_up, strict=True))
        for target, addresses in hints.items():
            resolved[target] = _Hosts(addresses)

        out: list[Address] = []
        failures: list[str] = []
        for transport, target, port in targets:
            hosts = resolved[target]
            out.extend(Address(transport, ip, port) for ip in hosts.addresses)
            failures.extend(hosts.failures if not hosts.addresses else ())
        out = list(dict.fromkeys(out))
        if not out:
            reason = _combine(failures) if failures else "no-records"
            if reason == "nxdomain":
                # the domain exists; only its SRV targets do not
                reason = "no-records"
            raise ResolveError(reason, host, "no address for the SRV targets")
        return True, out

    async def _hosts(self, name: dns.name.Name) -> _Hosts:
        """A then AAAA addresses of ``name`` (both asked at once)."""
        a, aaaa = await asyncio.gather(
            self._query(name, dns.rdatatype.A), self._query(name, dns.rdatatype.AAAA)
        )
        hosts = _Hosts()
        for outcome in (a, aaaa):
            if outcome.answer is not None and outcome.answer.rrset is not None:
                hosts.addresses.extend(_rrset_addresses(outcome.answer.rrset))
            elif outcome.failure is not None:
                hosts.failures.append(outcome.failure)
        return hosts

    @staticmethod
    def _host_addresses(host: str, transport: str, port: int, hosts: _Hosts) -> list[Address]:
        if not hosts.addresses:
            raise ResolveError(_combine(hosts.failures), host, "A/AAAA")
        return list(dict.fromkeys(Address(transport, ip, port) for ip in hosts.addresses))


def _order_srv(records: Iterable[SRV], rng: random.Random) -> list[SRV]:
    """RFC 2782 order: ascending priority, weighted random within a priority.

    Within a priority the records are first put in a fixed order (weight 0
    first, as RFC 2782 requires, then by target and port) so that the result
    depends on ``rng`` alone and not on the order the server sent them in.
    """
    by_priority: dict[int, list[SRV]] = {}
    for rd in records:
        by_priority.setdefault(rd.priority, []).append(rd)
    out: list[SRV] = []
    for priority in sorted(by_priority):
        group = sorted(by_priority[priority], key=lambda r: (r.weight != 0, r.target, r.port))
        while group:
            total = sum(r.weight for r in group)
            # RFC 2782: a uniform number in [0, total]; the first record whose
            # running sum of weights reaches it is next.
            pick = rng.randint(0, total)
            running = 0
            for index, rd in enumerate(group):
                running += rd.weight
                if running >= pick:
                    out.append(group.pop(index))
                    break
    return out


def _additional_addresses(answer: dns.resolver.Answer) -> dict[dns.name.Name, list[str]]:
    """A/AAAA records the server put in the additional section (RFC 2782
    allows it), A first, so that SRV targets need no query of their own."""
    a: dict[dns.name.Name, list[str]] = {}
    aaaa: dict[dns.name.Name, list[str]] = {}
    for rrset in answer.response.additional:
        if rrset.rdtype == dns.rdatatype.A:
            a.setdefault(rrset.name, []).extend(_rrset_addresses(rrset))
        elif rrset.rdtype == dns.rdatatype.AAAA:
            aaaa.setdefault(rrset.name, []).extend(_rrset_addresses(rrset))
    return {name: a.get(name, []) + aaaa.get(name, []) for name in a.keys() | aaaa.keys()}


def _rrset_addresses(rrset: dns.rrset.RRset) -> list[str]:
    return [str(ipaddress.ip_address(rd.address)) for rd in rrset]


def _combine(failures: Sequence[str]) -> str:
    """One reason for a set of failed lookups of a name: ``nxdomain`` only
    if every lookup said so, else the most telling of the rest."""
    if failures and all(f == "nxdomain" for f in failures):
        return "nxdomain"
    for reason in ("timeout", "server-failure"):
        if reason in failures:
            return reason
    return "no-records"


def _numeric_host(host: str) -> str | None:
    """The IP address ``host`` spells (without brackets), or ``None`` for a name."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        if host.startswith("[") or ":" in host or _IPV4_LIKE.fullmatch(host):
            raise ResolveError("bad-uri", host, "not an IP address") from None
        return None


def _dns_name(host: str) -> dns.name.Name:
    """The absolute DNS name of a URI host: SIP hosts are never searched
    relative to a local domain list."""
    try:
        return dns.name.from_text(host)
    except dns.exception.DNSException as exc:
        raise ResolveError("bad-uri", host, str(exc)) from None


def _srv_name(transport: str, name: dns.name.Name) -> dns.name.Name:
    """§4.2: ``_sip._udp``, ``_sip._tcp`` or ``_sips._tcp`` under ``name``."""
    return dns.name.from_text(_SRV_PREFIXES[transport], origin=name)
