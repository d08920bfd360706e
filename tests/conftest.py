"""Hypothesis profiles: "dev" for local runs, "ci" for the long run.

Pick one with the HYPOTHESIS_PROFILE environment variable (default "dev").
Neither profile has a deadline: the suite makes no timing assertions, and a
shared machine's speed says nothing about the codec.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from tests.test_api import Server

settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("ci", max_examples=1000, derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_asyncio_loop_factories(config: object, item: object) -> dict[str, object]:
    """Run every async test on the stock asyncio loop and on uvloop: uvloop
    is the default at run time, and the stock loop must keep working."""
    import asyncio

    import uvloop

    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """A presence server (tests/presence_stub.py) on a loopback UDP port."""
    from tests.presence_stub import PresenceStub
    from tests.test_api import Server

    srv = Server(PresenceStub())
    await srv.endpoint.start()
    try:
        yield srv
    finally:
        await srv.endpoint.close()
