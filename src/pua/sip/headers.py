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

__all__ = ["COMPACT_FORMS", "Headers", "header_key"]

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
    """The canonical lookup key of a header name: lower-case full form
    (white space a parsed name kept before its colon is ignored)."""
    key = _KEYS.get(name)
    if key is None:
        lower = name.lower().rstrip(" \t")
        key = COMPACT_FORMS.get(lower, lower)
        if len(_KEYS) < 4096:  # bounded: names come from the network
            _KEYS[name] = key
    return key


class Headers:
    """Ordered header fields with case- and compact-form-insensitive lookup.

    Each field is kept as the ``(name, separator, value)`` triple it was
    read as (``("Via", ":", " SIP/2.0/UDP ...")``; fields added through the
    API use ``": "``), so that serialising a parsed message writes back
    exactly what was received, with one ``"".join`` per field.  Values are
    returned without the white space around them.

    Typed views parsed from the fields are cached here and dropped on every
    change, so a message can be read many times and parsed once.
    """

    __slots__ = ("_cache", "_fields", "_first", "_keys")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        #: (name as written, separator, value as written)
        self._fields: list[tuple[str, str, str]] = [(name, ": ", value) for name, value in fields]
        #: typed views parsed from the fields, by accessor
        self._cache: dict[str, Any] = {}
        #: key -> (stripped) value of its first field; built on first lookup
        self._first: dict[str, str] | None = None
        #: canonical key of each field, in order; built when needed
        self._keys: list[str] | None = None

    @classmethod
    def _parsed(
        cls,
        fields: list[tuple[str, str, str]],
        index: dict[str, str] | None,
        cache: dict[str, Any],
    ) -> Headers:
        obj = cls.__new__(cls)
        obj._fields = fields
        obj._cache = cache
        obj._first = index
        obj._keys = None
        return obj

    def _index(self) -> dict[str, str]:
        first = self._first
        if first is None:
            # reversed, so that the first field of each name wins
            known = _KEYS
            first = self._first = {
                known.get(n) or header_key(n): v.strip(" \t") for n, _, v in reversed(self._fields)
            }
        return first

    def _key_list(self) -> list[str]:
        keys = self._keys
        if keys is None:
            known = _KEYS
            keys = self._keys = [known.get(n) or header_key(n) for n, _, _ in self._fields]
        return keys

    def _changed(self) -> None:
        self._cache.clear()
        self._first = None
        self._keys = None

    # -- reading -----------------------------------------------------------
    def get(self, name: str, default: str | None = None) -> str | None:
        """Value of the first field called ``name``, or ``default``."""
        return self._index().get(header_key(name), default)

    def get_all(self, name: str) -> list[str]:
        """Values of every field called ``name``, one per field line."""
        key = header_key(name)
        return [
            f[2].strip(" \t")
            for k, f in zip(self._key_list(), self._fields, strict=True)
            if k == key
        ]

    def get_list(self, name: str) -> list[str]:
        """Every element of a list header, across all its fields, split on
        commas outside quotes and angle brackets (RFC 3261 §7.3.1).  Ask it
        only of headers whose grammar is a list: WWW-Authenticate and the
        like use commas between parameters."""
        out: list[str] = []
        for value in self.get_all(name):
            out.extend(split_list(value))
        return out

    def count(self, name: str) -> int:
        return self._key_list().count(header_key(name))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = header_key(name)
        if self._first is not None:
            return key in self._first
        return key in self._key_list()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for name, _, value in self._fields:
            yield name.rstrip(" \t"), value.strip(" \t")

    def __len__(self) -> int:
        return len(self._fields)

    def items(self) -> list[tuple[str, str]]:
        return list(self)

    def keys(self) -> list[str]:
        """Canonical keys in order (with repeats)."""
        return list(self._key_list())

    def _comparable(self, skip: str = "") -> list[tuple[str, str]]:
        return [
            (k, f[2].strip(" \t"))
            for k, f in zip(self._key_list(), self._fields, strict=True)
            if k != skip
        ]

    def __eq__(self, other: object) -> bool:
        """Two blocks are equal if they hold the same values under the same
        canonical names in the same order (the spelling of names and the
        white space around values are not significant, RFC 3261 §7.3.1)."""
        if not isinstance(other, Headers):
            return NotImplemented
        return self._comparable() == other._comparable()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"

    def copy(self) -> Headers:
        """An independent copy (parsed views are not shared)."""
        first, keys = self._first, self._keys
        copy = Headers._parsed(list(self._fields), None if first is None else dict(first), {})
        copy._keys = None if keys is None else list(keys)
        return copy

    # -- writing -----------------------------------------------------------
    def add(self, name: str, value: str) -> None:
        """Append a field."""
        self._fields.append((name, ": ", value))
        # keep the lookup structures instead of rebuilding them: a request
        # gets fields added on its way out (Via, credentials)
        key = header_key(name)
        if self._keys is not None:
            self._keys.append(key)
        if self._first is not None:
            self._first.setdefault(key, value.strip(" \t"))
        self._cache.clear()

    def prepend(self, name: str, value: str) -> None:
        """Insert a field before all others (a new top Via)."""
        self._fields.insert(0, (name, ": ", value))
        key = header_key(name)
        if self._keys is not None:
            self._keys.insert(0, key)
        if self._first is not None:
            self._first[key] = value.strip(" \t")
        self._cache.clear()

    def set(self, name: str, value: str) -> None:
        """Replace the first field called ``name`` in place and drop the
        others; append if there is none."""
        key = header_key(name)
        out = []
        done = False
        for k, field in zip(self._key_list(), self._fields, strict=True):
            if k == key:
                if not done:
                    out.append((field[0], ": ", value))
                    done = True
            else:
                out.append(field)
        if not done:
            out.append((name, ": ", value))
        self._fields = out
        self._changed()

    def replace_first(self, name: str, value: str) -> None:
        """Replace the value of the first field called ``name`` only."""
        key = header_key(name)
        for i, k in enumerate(self._key_list()):
            if k == key:
                self._fields[i] = (self._fields[i][0], ": ", value)
                self._changed()
                return
        raise KeyError(name)

    def remove(self, name: str) -> int:
        """Drop every field called ``name``; return how many were dropped."""
        key = header_key(name)
        before = len(self._fields)
        self._fields = [f for k, f in zip(self._key_list(), self._fields, strict=True) if k != key]
        self._changed()
        return before - len(self._fields)

    def remove_first(self, name: str) -> None:
        """Drop the first field called ``name`` (a proxy popping its Via)."""
        key = header_key(name)
        for i, k in enumerate(self._key_list()):
            if k == key:
                del self._fields[i]
                self._changed()
                return
        raise KeyError(name)
