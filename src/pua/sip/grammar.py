"""Character classes and small scanners for the RFC 3261 §25 grammar.

The codec keeps header values as text and parses them only when asked; these
helpers are the shared pieces of that parsing.  Each one is written for the
common case first (no quotes, no angle brackets: a ``str.split``) and falls
back to a character scanner only when the value needs it.
"""

from __future__ import annotations

import re

from pua.errors import SipParseError

__all__ = [
    "Params",
    "find_unquoted",
    "format_params",
    "is_token",
    "parse_params",
    "quote",
    "split_list",
    "unquote",
]

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# RFC 3261 §25.1: SWS/LWS are spaces and tabs once lines are unfolded.
_WS = " \t"

Params = dict[str, str | None]
"""Generic parameters, keyed by lower-cased name (names are case-insensitive,
RFC 3261 §7.3.1); a parameter without ``=value`` maps to ``None``."""


def is_token(text: str) -> bool:
    """True if ``text`` is a non-empty RFC 3261 token."""
    return _TOKEN.fullmatch(text) is not None


def find_unquoted(text: str, chars: str, start: int = 0) -> int:
    """Index of the first character of ``chars`` at or after ``start`` that is
    outside a quoted-string and outside ``<...>``; -1 if there is none.

    Raises ``SipParseError("unterminated-quote")`` for a quoted-string that
    never closes (RFC 4475 §3.1.2.6).
    """
    i = start
    n = len(text)
    in_angle = False
    while i < n:
        c = text[i]
        if c == '"' and not in_angle:
            i = _skip_quoted(text, i)
            continue
        if c == "<":
            in_angle = True
        elif c == ">":
            in_angle = False
        elif not in_angle and c in chars:
            return i
        i += 1
    return -1


def _skip_quoted(text: str, i: int) -> int:
    """``text[i]`` is an opening quote; return the index just past its close."""
    j = i + 1
    n = len(text)
    while j < n:
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == '"':
            return j + 1
        j += 1
    raise SipParseError("unterminated-quote", 400, text)


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value (RFC 3261 §7.3.1) into elements.

    Commas inside quoted-strings and inside ``<...>`` do not split.  Empty
    elements (``a,,b``) are dropped, as the ``#rule`` of RFC 2616 allows.
    """
    if '"' not in value and "<" not in value:
        return [p for p in (part.strip() for part in value.split(",")) if p]
    out = []
    start = 0
    while True:
        comma = find_unquoted(value, ",", start)
        if comma < 0:
            part = value[start:].strip()
            if part:
                out.append(part)
            return out
        part = value[start:comma].strip()
        if part:
            out.append(part)
        start = comma + 1


def unquote(text: str) -> str:
    """Remove the quotes and backslash escapes of a quoted-string, if quoted."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        if "\\" not in inner:
            return inner
        out = []
        i = 0
        while i < len(inner):
            c = inner[i]
            if c == "\\" and i + 1 < len(inner):
                i += 1
                c = inner[i]
            out.append(c)
            i += 1
        return "".join(out)
    return text


def quote(text: str) -> str:
    """Make a quoted-string of ``text`` (RFC 3261 §25.1 quoted-pair escapes)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_params(text: str, what: str = "param") -> Params:
    """Parse ``;name[=value]`` repeated; ``text`` starts at the first ``;``
    (or is empty).  Values keep their quotes removed; names are lower-cased.

    Raises ``SipParseError(f"bad-{what}")`` for an empty or non-token name.
    """
    params: Params = {}
    if not text:
        return params
    if '"' in text:
        parts = []
        start = 0
        while True:
            semi = find_unquoted(text, ";", start)
            if semi < 0:
                parts.append(text[start:])
                break
            parts.append(text[start:semi])
            start = semi + 1
    else:
        parts = text.split(";")
    first = True
    for part in parts:
        if first:
            first = False
            # text begins with ";", so the first piece is what precedes it
            if part.strip(_WS):
                raise SipParseError(f"bad-{what}", 400, text)
            continue
        name, eq, value = part.partition("=")
        name = name.strip(_WS)
        if not is_token(name):
            raise SipParseError(f"bad-{what}", 400, text)
        if eq:
            value = value.strip(_WS)
            if value.startswith('"'):
                if len(value) < 2 or not value.endswith('"'):
                    raise SipParseError("unterminated-quote", 400, text)
                params[name.lower()] = unquote(value)
            else:
                if not value or any(c in _WS for c in value):
                    raise SipParseError(f"bad-{what}", 400, text)
                params[name.lower()] = value
        else:
            params[name.lower()] = None
    return params


def format_params(params: Params, quoted: frozenset[str] = frozenset()) -> str:
    """Serialise parameters as ``;name=value``; names in ``quoted`` (or values
    that are not tokens) are written as quoted-strings."""
    out = []
    for name, value in params.items():
        if value is None:
            out.append(f";{name}")
        elif name in quoted or not _is_param_value(value):
            out.append(f";{name}={quote(value)}")
        else:
            out.append(f";{name}={value}")
    return "".join(out)


_PARAM_VALUE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~\[\]:]+")


def _is_param_value(value: str) -> bool:
    # token / host (IPv6 references carry "[", "]" and ":")
    return _PARAM_VALUE.fullmatch(value) is not None
