"""The contract between the publishing engine and a body processor.

Before a PUBLISH goes out, the engine hands the event package's processor
the caller's body with what it knows of the publication (:class:`BodyContext`)
and sends what comes back (:class:`ProcessedBody`).  A processor is a pure
function: randomness comes from ``ctx.new_id``, and there is no clock.

This module sits below both the registry and the processors, so that the
registry can name the processors without an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pua.evpkg.xml import XmlBodyError, find_first, parse_xml, serialize_xml

__all__ = ["BodyContext", "BodyProcessor", "ProcessedBody", "rewrite_version"]


@dataclass(frozen=True, slots=True)
class BodyContext:
    """What a processor is given.

    ``version`` is the publication's body version (incremented by the
    engine on every new body); ``tuple_id`` is the PIDF tuple id stored for
    the publication, ``None`` before the first one; ``new_id`` makes a fresh
    random token.
    """

    body: str
    version: int
    tuple_id: str | None
    new_id: Callable[[], str]


@dataclass(frozen=True, slots=True)
class ProcessedBody:
    """What a processor returns: the body to send and the tuple id the
    engine must store for the publication from now on."""

    body: str
    tuple_id: str | None = None


BodyProcessor = Callable[[BodyContext], ProcessedBody]


def rewrite_version(root_name: str) -> BodyProcessor:
    """A processor setting the ``version`` attribute of the first element
    whose local name is ``root_name`` to ``ctx.version``.

    RFC 4235 §4.1 (dialog-info) and RFC 3680 §5.3 (reginfo) make a watcher
    discard a document whose version is not greater than the last one it
    saw; the engine counts versions per publication, so it stamps them here.
    The element is found as Kamailio finds it (see
    :func:`~pua.evpkg.xml.find_first`); a body without it is refused with
    ``"missing-element"``.  The stored tuple id passes through untouched.
    """

    def process(ctx: BodyContext) -> ProcessedBody:
        root = parse_xml(ctx.body)
        element = find_first(root, root_name)
        if element is None:
            raise XmlBodyError("missing-element", f"body has no <{root_name}>")
        element.set("version", str(ctx.version))
        return ProcessedBody(serialize_xml(root), ctx.tuple_id)

    process.__name__ = f"rewrite_{root_name.replace('-', '_')}_version"
    process.__qualname__ = process.__name__
    process.__doc__ = f"Set the ``version`` of the first <{root_name}> to ``ctx.version``."
    return process
