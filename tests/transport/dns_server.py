"""A small authoritative DNS server on 127.0.0.1 for resolver tests.

It serves one zone built by the test (``add``), answers over UDP only (in
random record order within an RRset, as dnspython renders by default) and
logs every question, so tests can assert what was (not) asked.  Unknown names
get NXDOMAIN; a name that exists (or has names below it, RFC 8020) but lacks
the asked type gets an empty NOERROR answer.  ``silent`` drops every query
and ``drop`` drops chosen ones, to exercise timeouts.
"""

from __future__ import annotations

import asyncio
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["DnsServer"]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the selector loop's datagram transport does not subclass
        # DatagramTransport on every Python version, hence a cast
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.server.answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class DnsServer:
    """Authoritative server for ``origin`` and whatever names the test adds.

    ``additional`` makes SRV answers carry the A/AAAA records of their
    targets in the additional section (RFC 2782), as many servers do.
    """

    def __init__(self, origin: str = "example.com.") -> None:
        self.origin = dns.name.from_text(origin)
        self.records: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], dns.rrset.RRset] = {}
        #: every question received, as ("name.without.dot", "TYPE"), in order
        self.queries: list[tuple[str, str]] = []
        self.silent = False
        self.drop: set[tuple[str, str]] = set()
        self.additional = False
        self._protocol: _Protocol | None = None
        self.add(origin, "SOA", "ns.example.com. hostmaster.example.com. 1 3600 600 86400 60")

    # -- zone ----------------------------------------------------------------
    def add(self, name: str, rdtype: str, *rdatas: str, ttl: int = 300) -> None:
        """Add records; ``name`` is relative to the origin unless it ends in a dot."""
        owner = dns.name.from_text(name, origin=self.origin)
        new = dns.rrset.from_text_list(owner, ttl, dns.rdataclass.IN, rdtype, list(rdatas))
        key = (owner, new.rdtype)
        existing = self.records.setdefault(key, new)
        if existing is not new:
            for rd in new:
                existing.add(rd, ttl)

    def _exists(self, name: dns.name.Name) -> bool:
        return any(owner.is_subdomain(name) for owner, _ in self.records)

    # -- serving -------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        assert self._protocol is not None
        assert self._protocol.transport is not None
        host, port = self._protocol.transport.get_extra_info("sockname")[:2]
        return host, port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=("127.0.0.1", 0)
        )
        self._protocol = protocol

    async def stop(self) -> None:
        if self._protocol is None or self._protocol.transport is None:
            return
        self._protocol.transport.close()
        await self._protocol.closed
        self._protocol = None

    def answer(self, wire: bytes) -> bytes | None:
        """The reply to one query, or ``None`` to leave it unanswered."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return None
        question = query.question[0]
        qname = question.name
        rdtype = dns.rdatatype.RdataType.make(question.rdtype)
        key = (qname.to_text(omit_final_dot=True).lower(), dns.rdatatype.to_text(rdtype))
        self.queries.append(key)
        if self.silent or key in self.drop:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        rrset = self.records.get((qname, rdtype))
        if rrset is not None:
            response.answer.append(rrset)
            if self.additional and rdtype == dns.rdatatype.SRV:
                self._add_additional(response, rrset)
        else:
            if not self._exists(qname):
                response.set_rcode(dns.rcode.NXDOMAIN)
            # RFC 2308: negative answers carry the SOA for their TTL
            response.authority.append(self.records[(self.origin, dns.rdatatype.SOA)])
        return response.to_wire()

    def _add_additional(self, response: dns.message.Message, rrset: dns.rrset.RRset) -> None:
        for rd in rrset:
            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                extra = self.records.get((rd.target, rdtype))
                if extra is not None and extra not in response.additional:
                    response.additional.append(extra)
