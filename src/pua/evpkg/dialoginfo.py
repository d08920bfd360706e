"""The dialog event package: dialog-info bodies (RFC 4235).

:func:`process_dialog_info` stamps the publication's version on a caller's
document; :func:`dialog_info_document` builds the one-dialog document a
dialog-driven publisher (``pua_dialoginfo``) sends; :class:`DialogStateGuard`
keeps such a publisher from sending a dialog's states out of order.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from lxml import etree

from pua.evpkg.body import BodyProcessor, rewrite_version
from pua.evpkg.xml import check_xml_text, serialize_xml

__all__ = [
    "DIALOG_INFO_NS",
    "DIALOG_STATES",
    "TERMINATION_EVENTS",
    "DialogStateGuard",
    "dialog_info_document",
    "process_dialog_info",
]

#: RFC 4235 §4: the dialog-info namespace.
DIALOG_INFO_NS: Final = "urn:ietf:params:xml:ns:dialog-info"

#: RFC 4235 §3.7.1: a dialog's states, in the order a dialog goes through
#: them (the rank :class:`DialogStateGuard` compares).
DIALOG_STATES: Final = ("trying", "proceeding", "early", "confirmed", "terminated")
_RANK: Final = {state: rank for rank, state in enumerate(DIALOG_STATES)}
_TERMINATED: Final = _RANK["terminated"]

#: RFC 4235 §4.1.2 (the ``event`` attribute of ``<state>``): why a dialog
#: terminated.
TERMINATION_EVENTS: Final = frozenset(
    {"cancelled", "rejected", "replaced", "local-bye", "remote-bye", "error", "timeout"}
)
_DIRECTIONS: Final = frozenset({"initiator", "recipient"})

#: RFC 4235 §4.1.2: ``code`` is a SIP response code.
_MIN_CODE: Final = 100
_MAX_CODE: Final = 699

process_dialog_info: BodyProcessor = rewrite_version("dialog-info")
"""Set the ``version`` of the first ``<dialog-info>`` to ``ctx.version``
(RFC 4235 §4.1: a watcher drops a document whose version is not greater
than the previous one).  Used for ``dialog`` when ``dlginfo_increase_version``
is set, and always for ``dialog;sla``."""


def _text(field: str, value: str) -> str:
    if not value:
        raise ValueError(f"{field}: must not be empty")
    return check_xml_text(field, value)


def _participant(
    dialog: etree._Element,
    tag: str,
    identity: str | None,
    display: str | None,
    target: str | None,
) -> None:
    """``<local>`` or ``<remote>`` (RFC 4235 §4.1.6): identity, then target."""
    if display is not None and identity is None:
        raise ValueError(f"{tag}_display: needs {tag}_identity")
    if identity is None and target is None:
        return
    element = etree.SubElement(dialog, f"{{{DIALOG_INFO_NS}}}{tag}")
    if identity is not None:
        ident = etree.SubElement(element, f"{{{DIALOG_INFO_NS}}}identity")
        if display is not None:
            ident.set("display", check_xml_text(f"{tag}_display", display))
        ident.text = _text(f"{tag}_identity", identity)
    if target is not None:
        etree.SubElement(element, f"{{{DIALOG_INFO_NS}}}target").set(
            "uri", _text(f"{tag}_target", target)
        )


def dialog_info_document(
    entity: str,
    *,
    dialog_id: str,
    state: str,
    version: int = 0,
    state_full: bool = True,
    direction: str | None = None,
    call_id: str | None = None,
    local_tag: str | None = None,
    remote_tag: str | None = None,
    local_identity: str | None = None,
    local_display: str | None = None,
    remote_identity: str | None = None,
    remote_display: str | None = None,
    local_target: str | None = None,
    remote_target: str | None = None,
    event: str | None = None,
    code: int | None = None,
) -> str:
    """A dialog-info document (RFC 4235 §4) with one dialog.

    ``<dialog-info version state entity>`` holds ``<dialog id call-id
    local-tag remote-tag direction>`` whose children come in the schema's
    order: ``<state event code>``, ``<local>``, ``<remote>``; each
    participant has ``<identity display>`` then ``<target uri>`` when given.
    ``event`` (the termination reason) is only allowed with ``state``
    ``"terminated"``.  Every value is escaped by the XML writer.
    """
    _text("entity", entity)
    _text("dialog_id", dialog_id)
    if state not in _RANK:
        raise ValueError(f"state: must be one of {', '.join(DIALOG_STATES)}, not {state!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"version: must be a non-negative integer, not {version!r}")
    if direction is not None and direction not in _DIRECTIONS:
        raise ValueError(f"direction: must be 'initiator' or 'recipient', not {direction!r}")
    if event is not None:
        if event not in TERMINATION_EVENTS:
            raise ValueError(f"event: must be one of {', '.join(sorted(TERMINATION_EVENTS))}")
        if state != "terminated":
            raise ValueError(f"event: only a terminated dialog has one, not a {state} one")
    if code is not None and (
        isinstance(code, bool) or not isinstance(code, int) or not _MIN_CODE <= code <= _MAX_CODE
    ):
        raise ValueError(f"code: must be a SIP response code (100-699), not {code!r}")

    root = etree.Element(f"{{{DIALOG_INFO_NS}}}dialog-info", nsmap={None: DIALOG_INFO_NS})
    root.set("version", str(version))
    root.set("state", "full" if state_full else "partial")
    root.set("entity", entity)

    dialog = etree.SubElement(root, f"{{{DIALOG_INFO_NS}}}dialog")
    dialog.set("id", dialog_id)
    for attribute, value in (
        ("call-id", call_id),
        ("local-tag", local_tag),
        ("remote-tag", remote_tag),
    ):
        if value is not None:
            dialog.set(attribute, _text(attribute.replace("-", "_"), value))
    if direction is not None:
        dialog.set("direction", direction)

    state_el = etree.SubElement(dialog, f"{{{DIALOG_INFO_NS}}}state")
    if event is not None:
        state_el.set("event", event)
    if code is not None:
        state_el.set("code", str(code))
    state_el.text = state

    _participant(dialog, "local", local_identity, local_display, local_target)
    _participant(dialog, "remote", remote_identity, remote_display, remote_target)
    return serialize_xml(root)


class DialogStateGuard:
    """Drops dialog states that arrive out of order, per (entity, dialog id).

    A dialog only moves forward (RFC 4235 §3.7.1): trying, proceeding,
    early, confirmed, terminated.  Dialog callbacks can nonetheless report
    a state late (an ``early`` after the ``terminated`` of the same
    dialog); publishing it would resurrect a finished call at every watcher.
    :meth:`accept` says whether a state may be published: not when it ranks
    below the last accepted one, nor after ``terminated``.  Repeating the
    current state is accepted (re-publishing it is harmless), except
    ``terminated``.

    Memory is bounded: at most ``max_active`` dialogs that have not
    terminated are kept (the least recently updated one is forgotten first,
    after which its next state is accepted whatever it is), and at most
    ``max_terminated`` terminated ones are remembered, least recently
    touched forgotten first.  The guard is pure: no clock.
    """

    __slots__ = ("_active", "_max_active", "_max_terminated", "_terminated")

    def __init__(self, max_terminated: int = 10_000, *, max_active: int = 100_000) -> None:
        for name, value in (("max_terminated", max_terminated), ("max_active", max_active)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be a positive integer, not {value!r}")
        self._max_terminated = max_terminated
        self._max_active = max_active
        self._active: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._terminated: OrderedDict[tuple[str, str], None] = OrderedDict()

    def accept(self, entity: str, dialog_id: str, state: str) -> bool:
        """Whether ``state`` may be published for this dialog; if so, it
        becomes the dialog's last state.  ``ValueError`` for an unknown
        state."""
        rank = _RANK.get(state)
        if rank is None:
            raise ValueError(f"state: must be one of {', '.join(DIALOG_STATES)}, not {state!r}")
        key = (entity, dialog_id)
        if key in self._terminated:
            self._terminated.move_to_end(key)
            return False
        last = self._active.get(key)
        if last is not None and rank < last:
            return False
        if rank == _TERMINATED:
            self._active.pop(key, None)
            self._terminated[key] = None
            if len(self._terminated) > self._max_terminated:
                self._terminated.popitem(last=False)
            return True
        self._active[key] = rank
        self._active.move_to_end(key)
        if len(self._active) > self._max_active:
            self._active.popitem(last=False)
        return True

    def forget(self, entity: str, dialog_id: str) -> None:
        """Drop what is known of a dialog (its next state is accepted)."""
        key = (entity, dialog_id)
        self._active.pop(key, None)
        self._terminated.pop(key, None)

    def __len__(self) -> int:
        """Dialogs known: active ones plus remembered terminated ones."""
        return len(self._active) + len(self._terminated)
