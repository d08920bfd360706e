"""Fixtures for the transport tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.transport.dns_server import DnsServer


@pytest.fixture
async def dns_server() -> AsyncIterator[DnsServer]:
    """A fresh authoritative server for ``example.com.`` on 127.0.0.1, stopped
    after the test."""
    server = DnsServer("example.com.")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
