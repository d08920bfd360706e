"""The message-summary event package: message waiting bodies (RFC 3842).

The body (``application/simple-message-summary``) is text, not XML, so it
is sent as the caller wrote it; :func:`message_summary` builds one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = ["MESSAGE_CONTEXT_CLASSES", "MessageCounts", "message_summary"]

#: RFC 3842 §5.2 (message-context-class, defined by RFC 3458): the kinds of
#: message a summary line counts, in the order lines are written, with the
#: spelling of RFC 3842's examples.
MESSAGE_CONTEXT_CLASSES: Final = {
    "voice-message": "Voice-Message",
    "fax-message": "Fax-Message",
    "pager-message": "Pager-Message",
    "multimedia-message": "Multimedia-Message",
    "text-message": "Text-Message",
    "none": "None",
}

#: ``(new, old)`` or ``(new, old, new urgent, old urgent)`` (RFC 3842 §5.2).
MessageCounts = tuple[int, int] | tuple[int, int, int, int]

# An Account-URI (RFC 3842 §5.2: a SIP, SIPS or absolute URI) is header
# text: printable ASCII without white space, so it cannot break the body's
# lines.
_ACCOUNT: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]+\Z")


def _counts_text(field: str, counts: tuple[int, ...]) -> str:
    if len(counts) not in (2, 4):
        raise ValueError(f"{field}: must be (new, old) or (new, old, new urgent, old urgent)")
    for count in counts:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"{field}: counts must be non-negative integers, not {count!r}")
    text = f"{counts[0]}/{counts[1]}"
    if len(counts) == 4:
        text += f" ({counts[2]}/{counts[3]})"
    return text


def message_summary(
    messages_waiting: bool,
    *,
    account: str | None = None,
    voice: MessageCounts | None = None,
    others: Mapping[str, MessageCounts] | None = None,
) -> str:
    """A message-summary body (RFC 3842 §5.2), every line ending in CRLF.

    ``Messages-Waiting: yes|no``, then ``Message-Account`` if ``account``
    is given, then one summary line per message class: ``voice`` for
    ``Voice-Message`` and ``others`` keyed by class name (ignoring case:
    ``fax-message``, ``pager-message``, ``multimedia-message``,
    ``text-message``, ``none``).  Lines come in the order of
    :data:`MESSAGE_CONTEXT_CLASSES` whatever the mapping's order.
    """
    lines = [f"Messages-Waiting: {'yes' if messages_waiting else 'no'}"]
    if account is not None:
        if _ACCOUNT.match(account) is None:
            raise ValueError(f"account: {account!r} is not a URI without white space")
        lines.append(f"Message-Account: {account}")

    by_class: dict[str, MessageCounts] = {}
    if voice is not None:
        by_class["voice-message"] = voice
    for name, counts in (others or {}).items():
        key = name.lower()
        if key not in MESSAGE_CONTEXT_CLASSES:
            raise ValueError(
                f"others: unknown message class {name!r} "
                f"(one of {', '.join(MESSAGE_CONTEXT_CLASSES)})"
            )
        if key in by_class:
            raise ValueError(f"others: message class {key!r} given twice")
        by_class[key] = counts

    for key, spelling in MESSAGE_CONTEXT_CLASSES.items():
        if key in by_class:
            field = "voice" if key == "voice-message" and voice is not None else f"others[{key}]"
            lines.append(f"{spelling}: {_counts_text(field, by_class[key])}")
    return "".join(f"{line}\r\n" for line in lines)
