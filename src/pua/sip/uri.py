"""SIP and SIPS URIs (RFC 3261 §19.1): parse, serialise, compare.

``SipUri`` is an immutable value.  Comparison follows §19.1.4 through
:meth:`SipUri.equivalent`; ``==`` is plain structural equality of the parsed
parts (what round-trip tests need).  URIs of other schemes (``tel:``,
``http:``...) parse into :class:`AbsoluteUri`, which only keeps the text.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace

from pua.errors import SipParseError

__all__ = ["AbsoluteUri", "SipUri", "Uri", "parse_sip_uri", "parse_uri"]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# hostname = *( domainlabel "." ) toplabel [ "." ]; lenient on label shape
# (RFC 4475 §3.1.1.1 uses odd but valid names) but never on the alphabet.
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9_])?\.?")
_IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
# user: unreserved / escaped / user-unreserved (& = + $ , ; ? /)
_USER = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+")
# password: unreserved / escaped / & = + $ ,
_PASSWORD = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|%[0-9A-Fa-f]{2})*")
# paramchar: param-unreserved / unreserved / escaped
_PARAMCHARS = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|%[0-9A-Fa-f]{2})+")
# hname / hvalue: hnv-unreserved / unreserved / escaped
_HCHARS = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|%[0-9A-Fa-f]{2})*")
_ESCAPED = re.compile(r"%([0-9A-Fa-f]{2})")
# RFC 2396 reserved: escaping these changes meaning, so they stay escaped
_RESERVED = frozenset(";/?:@&=+$,")

#: Parameters that make two URIs differ when only one has them (§19.1.4).
_SIGNIFICANT_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def _normalise_escapes(text: str) -> str:
    """Decode escapes of unreserved characters and upper-case the others, so
    that equivalent spellings compare equal (§19.1.4, third bullet)."""
    if "%" not in text:
        return text

    def repl(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        if ch in _RESERVED or ch == "%" or not ch.isprintable() or ch in " \t":
            return "%" + m.group(1).upper()
        return ch

    return _ESCAPED.sub(repl, text)


@dataclass(frozen=True, slots=True)
class SipUri:
    """A parsed ``sip:`` or ``sips:`` URI.

    ``params`` and ``headers`` keep their order of appearance; parameter
    names are lower-cased (they are case-insensitive), values are kept as
    written.  ``port`` is ``None`` when the URI has none (which matters for
    comparison: an omitted port never equals an explicit 5060).
    """

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    _text: str | None = field(default=None, compare=False, repr=False)

    # -- parameters --------------------------------------------------------
    def param(self, name: str) -> str | None:
        """Value of uri-parameter ``name`` (``None`` if absent or valueless)."""
        name = name.lower()
        for key, value in self.params:
            if key == name:
                return value
        return None

    def has_param(self, name: str) -> bool:
        name = name.lower()
        return any(key == name for key, _ in self.params)

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased, or ``None``."""
        value = self.param("transport")
        return value.lower() if value else None

    @property
    def lr(self) -> bool:
        """True for a loose-routing URI (RFC 3261 §19.1.1 ``lr``)."""
        return self.has_param("lr")

    @property
    def maddr(self) -> str | None:
        return self.param("maddr")

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def host_is_ip(self) -> bool:
        """True if the host is a numeric IPv4 address or an IPv6 reference."""
        return self.host.startswith("[") or _IPV4.fullmatch(self.host) is not None

    @property
    def bare_host(self) -> str:
        """The host without the brackets of an IPv6 reference."""
        h = self.host
        return h[1:-1] if h.startswith("[") else h

    def with_params(self, **params: str | None) -> SipUri:
        """A copy with the given parameters set (``None`` value: flag param)."""
        keep = tuple((k, v) for k, v in self.params if k not in params)
        return replace(self, params=keep + tuple(params.items()), _text=None)

    def without_params(self, *names: str) -> SipUri:
        drop = {n.lower() for n in names}
        return replace(
            self, params=tuple((k, v) for k, v in self.params if k not in drop), _text=None
        )

    def without_headers(self) -> SipUri:
        return replace(self, headers=(), _text=None)

    # -- comparison --------------------------------------------------------
    def equivalent(self, other: SipUri) -> bool:
        """URI equality by the rules of RFC 3261 §19.1.4."""
        if self.scheme != other.scheme:
            return False
        if _opt_norm(self.user) != _opt_norm(other.user):
            return False
        if _opt_norm(self.password) != _opt_norm(other.password):
            return False
        if self.host.lower() != other.host.lower() or self.port != other.port:
            return False
        # names too may be escaped ("%6C%72" is "lr"); they are lower-cased
        mine = {_normalise_escapes(k).lower(): _opt_norm(v) for k, v in self.params}
        theirs = {_normalise_escapes(k).lower(): _opt_norm(v) for k, v in other.params}
        for name in _SIGNIFICANT_PARAMS:
            if (name in mine) != (name in theirs):
                return False
        for name, value in mine.items():
            if name in theirs and not _param_equal(value, theirs[name]):
                return False
        mh = sorted((_normalise_escapes(k).lower(), _normalise_escapes(v)) for k, v in self.headers)
        th = sorted(
            (_normalise_escapes(k).lower(), _normalise_escapes(v)) for k, v in other.headers
        )
        return mh == th

    # -- serialisation -----------------------------------------------------
    def __str__(self) -> str:
        if self._text is not None:
            return self._text
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":")
                out.append(self.password)
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        for key, value in self.params:
            out.append(f";{key}" if value is None else f";{key}={value}")
        if self.headers:
            out.append("?")
            out.append("&".join(f"{k}={v}" for k, v in self.headers))
        return "".join(out)


def _opt_norm(text: str | None) -> str | None:
    return None if text is None else _normalise_escapes(text)


def _param_equal(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a == b
    return a.lower() == b.lower()


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """A URI of a scheme other than sip/sips (``tel:``, ``http:``, ``urn:``),
    kept as text: pua only carries these, it never routes to them."""

    scheme: str
    text: str

    def __str__(self) -> str:
        return self.text

    def equivalent(self, other: object) -> bool:
        return isinstance(other, AbsoluteUri) and (
            self.scheme == other.scheme
            and self.text[len(self.scheme) :] == other.text[len(other.scheme) :]
        )


Uri = SipUri | AbsoluteUri


def parse_uri(text: str) -> Uri:
    """Parse any absolute URI; SIP and SIPS ones into :class:`SipUri`."""
    colon = text.find(":")
    if colon <= 0 or _SCHEME.fullmatch(text[:colon]) is None:
        raise SipParseError("bad-uri", 400, text)
    scheme = text[:colon].lower()
    if scheme in ("sip", "sips"):
        return parse_sip_uri(text)
    rest = text[colon + 1 :]
    if not rest or any(c in ' \t\r\n<>"' for c in rest):
        raise SipParseError("bad-uri", 400, text)
    return AbsoluteUri(scheme, text)


def parse_sip_uri(text: str) -> SipUri:
    """Parse a ``sip:``/``sips:`` URI; raise ``SipParseError("bad-uri")``."""
    colon = text.find(":")
    scheme = text[:colon].lower()
    if colon <= 0 or scheme not in ("sip", "sips"):
        raise SipParseError("bad-uri", 400, text)
    rest = text[colon + 1 :]
    user = password = None
    at = rest.rfind("@")
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        ucolon = userinfo.find(":")
        if ucolon >= 0:
            user, password = userinfo[:ucolon], userinfo[ucolon + 1 :]
            if _PASSWORD.fullmatch(password) is None:
                raise SipParseError("bad-uri", 400, text)
        else:
            user = userinfo
        if _USER.fullmatch(user) is None:
            raise SipParseError("bad-uri", 400, text)
    headers: tuple[tuple[str, str], ...] = ()
    q = rest.find("?")
    if q >= 0:
        headers = _parse_uri_headers(rest[q + 1 :], text)
        rest = rest[:q]
    params: tuple[tuple[str, str | None], ...] = ()
    semi = rest.find(";")
    if semi >= 0:
        params = _parse_uri_params(rest[semi + 1 :], text)
        rest = rest[:semi]
    host, port = _parse_hostport(rest, text)
    return SipUri(scheme, user, password, host, port, params, headers, text)


def _parse_hostport(text: str, whole: str) -> tuple[str, int | None]:
    port: int | None = None
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise SipParseError("bad-uri", 400, whole)
        host = text[: close + 1]
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise SipParseError("bad-uri", 400, whole) from None
        tail = text[close + 1 :]
        if tail:
            if not tail.startswith(":"):
                raise SipParseError("bad-uri", 400, whole)
            port = _parse_port(tail[1:], whole)
        return host, port
    host, colon, port_text = text.partition(":")
    if colon:
        port = _parse_port(port_text, whole)
    if _IPV4.fullmatch(host):
        if any(int(octet) > 255 for octet in host.split(".")):
            raise SipParseError("bad-uri", 400, whole)
    elif _HOSTNAME.fullmatch(host) is None:
        raise SipParseError("bad-uri", 400, whole)
    return host, port


def _parse_port(text: str, whole: str) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > 5:
        raise SipParseError("bad-uri", 400, whole)
    port = int(text)
    if port > 65535:
        raise SipParseError("bad-uri", 400, whole)
    return port


def _parse_uri_params(text: str, whole: str) -> tuple[tuple[str, str | None], ...]:
    out: list[tuple[str, str | None]] = []
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        if _PARAMCHARS.fullmatch(name) is None:
            raise SipParseError("bad-uri", 400, whole)
        if eq:
            if _PARAMCHARS.fullmatch(value) is None:
                raise SipParseError("bad-uri", 400, whole)
            out.append((name.lower(), value))
        else:
            out.append((name.lower(), None))
    return tuple(out)


def _parse_uri_headers(text: str, whole: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for part in text.split("&"):
        name, eq, value = part.partition("=")
        if not name or not eq or _HCHARS.fullmatch(name) is None:
            raise SipParseError("bad-uri", 400, whole)
        if _HCHARS.fullmatch(value) is None:
            raise SipParseError("bad-uri", 400, whole)
        out.append((name, value))
    return tuple(out)
