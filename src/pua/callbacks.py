"""Outcome callbacks (Kamailio's ``register_puacb``).

A callback is registered for a mask of source flags and runs, newest
registration first, for every outcome whose source flag overlaps the mask.
Unlike Kamailio, any mask is accepted (Kamailio refuses masks above 512, so
DIALOG_PUBLISH, REGINFO_* and DFKS_* could never have callbacks) and the
registration's ``param`` is handed to the callback (Kamailio stores it and
never passes it).  A callback that raises is logged; the engine goes on.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from pua.ua.events import NotifyReceived, PublishOutcome, SubscribeOutcome

__all__ = ["CallbackRegistry", "Delivered", "PuaCallback"]

log = logging.getLogger("pua.callbacks")

#: What callbacks receive: an outcome of a PUBLISH or SUBSCRIBE request, or
#: (for NOTIFY callbacks) a NOTIFY of a subscription.
Delivered = PublishOutcome | SubscribeOutcome | NotifyReceived

#: ``callback(delivered, param)``; may return an awaitable, which is run as
#: a task (its errors are logged too).
PuaCallback = Callable[[Any, Any], object]


class CallbackRegistry:
    """Registered callbacks, newest first."""

    def __init__(self) -> None:
        self._entries: list[tuple[int, PuaCallback, Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def register(self, types: int, callback: PuaCallback, param: Any = None) -> None:
        if isinstance(types, bool) or not isinstance(types, int) or types <= 0:
            raise ValueError(f"types: must be a positive source-flag mask, got {types!r}")
        if not callable(callback):
            raise TypeError(f"callback: must be callable, got {callback!r}")
        self._entries.insert(0, (int(types), callback, param))

    def __len__(self) -> int:
        return len(self._entries)

    def run(self, outcome: Delivered) -> int:
        """Run every callback whose mask overlaps ``outcome.source_flag``;
        return how many ran."""
        ran = 0
        for types, callback, param in self._entries:
            if not types & outcome.source_flag:
                continue
            ran += 1
            try:
                result = callback(outcome, param)
            except Exception:
                log.exception("pua callback %r failed", callback)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._finished)
        return ran

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("pua callback failed", exc_info=task.exception())
