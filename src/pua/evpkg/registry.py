"""The table of event packages pua can publish and subscribe to.

Each :class:`EventPackage` ties an event flag (the ``EventFlag`` numbers of
Kamailio's ``hash.h``) to the package name of the Event header (RFC 6665
§8.2.1), the Content-Type of its PUBLISH bodies (RFC 3903 §4) and the
processor that prepares those bodies.  :class:`EventRegistry` starts with
Kamailio's built-in packages, with its names and content types, so a
configuration written for Kamailio means the same thing here, plus
``conference`` (RFC 4575), which Kamailio defines a flag for but never
registers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from pua.errors import PuaError
from pua.evpkg.body import BodyContext, BodyProcessor, ProcessedBody, rewrite_version
from pua.evpkg.dialoginfo import process_dialog_info
from pua.evpkg.presence import process_pidf
from pua.evpkg.reginfo import process_reginfo
from pua.model import EventFlag

__all__ = [
    "BodyContext",
    "BodyProcessor",
    "EventPackage",
    "EventPackageError",
    "EventRegistry",
    "ProcessedBody",
    "rewrite_version",
]

# A package name is the Event header's token with its parameters, as in
# Kamailio's "dialog;sla": printable ASCII without white space.
_MIN_NAME_CHAR: Final = 0x21
_MAX_NAME_CHAR: Final = 0x7E


class EventPackageError(PuaError):
    """A request does not fit its event package.

    ``reason`` is a stable, machine-readable token (``"not-publishable"``);
    ``detail`` is free text for humans.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class EventPackage:
    """One event package.

    ``content_type`` is ``None`` for packages that are only subscribed to.
    ``publishable`` is ``False`` for packages whose state is made by the
    presence server itself (``presence.winfo``, RFC 3857: there is nothing
    for a user agent to publish).  ``uses_version`` says the processor
    writes ``ctx.version`` into the body, so the engine must run it again
    whenever the version changes (a refresh with a stored body included).
    """

    flag: int
    name: str
    content_type: str | None
    process_body: BodyProcessor | None = None
    publishable: bool = True
    uses_version: bool = False

    def process(self, ctx: BodyContext) -> ProcessedBody:
        """The body to PUBLISH for ``ctx``: the processor's result, or the
        body unchanged for a package without one.

        Raises :class:`EventPackageError` ``"not-publishable"`` for a
        subscribe-only package; a processor's
        :class:`~pua.evpkg.xml.XmlBodyError` propagates.
        """
        if not self.publishable:
            raise EventPackageError(
                "not-publishable",
                f"{self.name} is a SUBSCRIBE-only event: a PUBLISH body is refused",
            )
        if self.process_body is None:
            return ProcessedBody(ctx.body, ctx.tuple_id)
        return self.process_body(ctx)


def _check_flag(flag: int) -> None:
    if isinstance(flag, bool) or not isinstance(flag, int) or flag <= 0:
        raise ValueError(f"flag: must be a positive integer, not {flag!r}")


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: must be a non-empty string, not {name!r}")
    if any(not _MIN_NAME_CHAR <= ord(c) <= _MAX_NAME_CHAR for c in name):
        raise ValueError(f"name: {name!r} must be printable ASCII without white space")


def _check_content_type(content_type: str | None) -> None:
    # It goes into a header: an empty value or a line break would corrupt
    # the request.
    if content_type is None:
        return
    if not isinstance(content_type, str) or not content_type.strip():
        raise ValueError(f"content_type: must be a non-empty string or None, not {content_type!r}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in content_type):
        raise ValueError(f"content_type: {content_type!r} contains a control character")


class EventRegistry:
    """The event packages known to a pua instance, in registration order.

    ``dlginfo_increase_version`` and ``reginfo_increase_version`` are
    Kamailio's module parameters of the same names: with them, pua stamps
    its own version on ``dialog`` and ``reg`` bodies (RFC 4235 §4.1, RFC
    3680 §5.2); without them, it sends the caller's version as it is.
    ``dialog;sla`` (shared line appearance) is always stamped.
    """

    __slots__ = ("_packages",)

    def __init__(
        self,
        *,
        dlginfo_increase_version: bool = False,
        reginfo_increase_version: bool = False,
    ) -> None:
        self._packages: dict[str, EventPackage] = {}
        self.add_event(EventFlag.PRESENCE_EVENT, "presence", "application/pidf+xml", process_pidf)
        self.add_event(
            EventFlag.DIALOG_EVENT,
            "dialog",
            "application/dialog-info+xml",
            process_dialog_info if dlginfo_increase_version else None,
            uses_version=dlginfo_increase_version,
        )
        self.add_event(
            EventFlag.BLA_EVENT,
            "dialog;sla",
            "application/dialog-info+xml",
            process_dialog_info,
            uses_version=True,
        )
        self.add_event(
            EventFlag.MSGSUM_EVENT, "message-summary", "application/simple-message-summary"
        )
        self.add_event(EventFlag.PWINFO_EVENT, "presence.winfo", None, publishable=False)
        self.add_event(
            EventFlag.REGINFO_EVENT,
            "reg",
            "application/reginfo+xml",
            process_reginfo if reginfo_increase_version else None,
            uses_version=reginfo_increase_version,
        )
        self.add_event(EventFlag.XCAPDIFF_EVENT, "xcap-diff", "application/xcap-diff+xml")
        self.add_event(
            EventFlag.DFKS_EVENT, "as-feature-event", "application/x-as-feature-event+xml"
        )
        self.add_event(EventFlag.CONFERENCE_EVENT, "conference", "application/conference-info+xml")

    def add_event(
        self,
        flag: int,
        name: str,
        content_type: str | None,
        process_body: BodyProcessor | None = None,
        *,
        publishable: bool = True,
        uses_version: bool = False,
    ) -> bool:
        """Register a package; ``False`` (and nothing changes) if one with
        the same name exists already.

        ``ValueError`` names the argument that is wrong: ``flag`` must be a
        positive integer, ``name`` printable ASCII without white space,
        ``content_type`` a header value, ``process_body`` callable.
        """
        _check_flag(flag)
        _check_name(name)
        _check_content_type(content_type)
        if process_body is not None and not callable(process_body):
            raise ValueError(f"process_body: must be callable or None, not {process_body!r}")
        if name in self._packages:
            return False
        self._packages[name] = EventPackage(
            flag=flag,
            name=name,
            content_type=content_type,
            process_body=process_body,
            publishable=publishable,
            uses_version=uses_version,
        )
        return True

    def get(self, flag: int) -> EventPackage | None:
        """The package registered with exactly ``flag`` (a combination of
        flags matches nothing); the first registered if several share it."""
        for package in self._packages.values():
            if package.flag == flag:
                return package
        return None

    def by_name(self, name: str) -> EventPackage | None:
        """The package called exactly ``name`` (case-sensitive)."""
        return self._packages.get(name)

    def get_event_flag(self, name: str) -> int | None:
        """The flag of the package called ``name``, or ``None``."""
        package = self._packages.get(name)
        return None if package is None else package.flag

    def names(self) -> tuple[str, ...]:
        """The package names, in registration order."""
        return tuple(self._packages)

    def __iter__(self) -> Iterator[EventPackage]:
        return iter(tuple(self._packages.values()))

    def __len__(self) -> int:
        return len(self._packages)
