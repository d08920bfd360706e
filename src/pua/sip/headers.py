"""The header block of a SIP message: an ordered list of (name, value) fields.

Names are case-insensitive and have compact forms (RFC 3261 §7.3.3,
RFC 6665 §8.4); every lookup goes through :func:`header_key`, so
``headers.get("v")`` and ``headers.get("VIA")`` find the same fields.  Fields
keep the name as written, so serialising a parsed message gives back what was
received (apart from line folding and white space around the colon).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pua.sip.grammar import split_list

__all__ = ["COMPACT_FORMS", "Headers", "display_name", "header_key"]

#: Compact forms and their full names (RFC 3261 §7.3.3 and §20, RFC 6665
#: §8.4 for Event "o" and Allow-Events "u", RFC 3515 "r", RFC 3892 "b",
#: RFC 4028 "x", RFC 3841 "a", "j", "d").
COMPACT_FORMS = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
    "u": "allow-events",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
    "a": "accept-contact",
    "j": "reject-contact",
    "d": "request-disposition",
}

_KEYS: dict[str, str] = {}


def header_key(name: str) -> str:
    """The canonical lookup key of a header name: lower-case full form."""
    key = _KEYS.get(name)
    if key is None:
        lower = name.lower()
        key = COMPACT_FORMS.get(lower, lower)
        if len(_KEYS) < 4096:  # bounded: names come from the network
            _KEYS[name] = key
    return key


_DISPLAY = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
    "mime-version": "MIME-Version",
}


def display_name(key: str) -> str:
    """The conventional spelling of a header name (``call-id`` → ``Call-ID``)."""
    name = _DISPLAY.get(key)
    if name is None:
        name = "-".join(part.capitalize() for part in key.split("-"))
    return name


#: Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1); only
#: these are split by :meth:`Headers.get_list`.  WWW-Authenticate and friends
#: use commas between parameters and are never split.
LIST_HEADERS = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "allow-events",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "content-encoding",
        "content-language",
        "in-reply-to",
        "path",
        "service-route",
        "warning",
    }
)


class Headers:
    """Ordered header fields with case- and compact-form-insensitive lookup.

    Typed views parsed from the fields are cached here and dropped on every
    change, so a message can be read many times and parsed once.
    """

    __slots__ = ("_cache", "_fields", "_first")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        #: (key, name as written, value)
        self._fields: list[tuple[str, str, str]] = [
            (header_key(name), name, value) for name, value in fields
        ]
        #: typed views parsed from the fields, by accessor
        self._cache: dict[str, Any] = {}
        #: key -> value of its first field; built on the first lookup
        self._first: dict[str, str] | None = None

    @classmethod
    def _from_triples(cls, triples: list[tuple[str, str, str]]) -> Headers:
        obj = cls.__new__(cls)
        obj._fields = triples
        obj._cache = {}
        obj._first = None
        return obj

    @classmethod
    def _parsed(
        cls, triples: list[tuple[str, str, str]], index: dict[str, str], cache: dict[str, Any]
    ) -> Headers:
        obj = cls.__new__(cls)
        obj._fields = triples
        obj._cache = cache
        obj._first = index
        return obj

    def _index(self) -> dict[str, str]:
        first = self._first
        if first is None:
            # reversed, so that the first field of each name wins
            first = self._first = {k: v for k, _, v in reversed(self._fields)}
        return first

    def _changed(self) -> None:
        self._cache.clear()
        self._first = None

    # -- reading -----------------------------------------------------------
    def get(self, name: str, default: str | None = None) -> str | None:
        """Value of the first field called ``name``, or ``default``."""
        return self._index().get(header_key(name), default)

    def get_all(self, name: str) -> list[str]:
        """Values of every field called ``name``, one per field line."""
        key = header_key(name)
        return [v for k, _, v in self._fields if k == key]

    def get_list(self, name: str) -> list[str]:
        """Every element of a list header, across all its fields, split on
        commas outside quotes and angle brackets (RFC 3261 §7.3.1)."""
        out: list[str] = []
        for value in self.get_all(name):
            out.extend(split_list(value))
        return out

    def count(self, name: str) -> int:
        key = header_key(name)
        return sum(1 for k, _, _ in self._fields if k == key)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return header_key(name) in self._index()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for _, name, value in self._fields:
            yield name, value

    def __len__(self) -> int:
        return len(self._fields)

    def items(self) -> list[tuple[str, str]]:
        return [(name, value) for _, name, value in self._fields]

    def keys(self) -> list[str]:
        """Canonical keys in order (with repeats)."""
        return [k for k, _, _ in self._fields]

    def __eq__(self, other: object) -> bool:
        """Two blocks are equal if they hold the same values under the same
        canonical names in the same order (the spelling of names is not
        significant, RFC 3261 §7.3.1)."""
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._fields] == [(k, v) for k, _, v in other._fields]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"

    def copy(self) -> Headers:
        """An independent copy (parsed views are not shared)."""
        return Headers._from_triples(list(self._fields))

    # -- writing -----------------------------------------------------------
    def add(self, name: str, value: str) -> None:
        """Append a field."""
        self._fields.append((header_key(name), name, value))
        self._changed()

    def prepend(self, name: str, value: str) -> None:
        """Insert a field before all others (a new top Via)."""
        self._fields.insert(0, (header_key(name), name, value))
        self._changed()

    def set(self, name: str, value: str) -> None:
        """Replace the first field called ``name`` in place and drop the
        others; append if there is none."""
        key = header_key(name)
        out = []
        done = False
        for triple in self._fields:
            if triple[0] == key:
                if not done:
                    out.append((key, triple[1], value))
                    done = True
            else:
                out.append(triple)
        if not done:
            out.append((key, name, value))
        self._fields = out
        self._changed()

    def replace_first(self, name: str, value: str) -> None:
        """Replace the value of the first field called ``name`` only."""
        key = header_key(name)
        for i, (k, n, _) in enumerate(self._fields):
            if k == key:
                self._fields[i] = (k, n, value)
                self._changed()
                return
        raise KeyError(name)

    def remove(self, name: str) -> int:
        """Drop every field called ``name``; return how many were dropped."""
        key = header_key(name)
        before = len(self._fields)
        self._fields = [t for t in self._fields if t[0] != key]
        self._changed()
        return before - len(self._fields)

    def remove_first(self, name: str) -> None:
        """Drop the first field called ``name`` (a proxy popping its Via)."""
        key = header_key(name)
        for i, (k, _, _) in enumerate(self._fields):
            if k == key:
                del self._fields[i]
                self._changed()
                return
        raise KeyError(name)
