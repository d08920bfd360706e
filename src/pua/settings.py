"""The daemon's settings: what ``pua serve --config FILE`` runs with.

:class:`Settings` holds the module parameters (:class:`~pua.config.PuaConfig`,
section ``[pua]``, Kamailio's names), the SIP listen addresses (``[sip]``),
the RPC listen addresses and token (``[rpc]``) and the log level (``[log]``).

:func:`load_settings` layers three sources, each overriding the one before:
the TOML file, environment variables ``PUA_<SECTION>_<KEY>``, and
``section.key=value`` strings from ``--set``.  Every problem raises
:class:`~pua.config.ConfigError` with a one-line message naming the key as
``section.key``, the value, and what is allowed.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pua.config import ConfigError, PuaConfig

__all__ = ["DEFAULT_DB_URL", "LOG_LEVELS", "Settings", "load_settings"]

#: the daemon keeps state by default (PuaConfig's own default, "", means
#: memory only, which stays the default for the Python API)
DEFAULT_DB_URL = "sqlite:///pua.db"
DEFAULT_SIP_LISTEN = ("udp:127.0.0.1:5060", "tcp:127.0.0.1:5060")
DEFAULT_RPC_LISTEN = ("http:127.0.0.1:5081",)
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Settings:
    """Everything the daemon is configured with."""

    pua: PuaConfig = field(default_factory=lambda: PuaConfig(db_url=DEFAULT_DB_URL))
    sip_listen: tuple[str, ...] = DEFAULT_SIP_LISTEN
    rpc_listen: tuple[str, ...] = DEFAULT_RPC_LISTEN
    rpc_token: str | None = None
    log_level: str = "info"


# Kinds of value; PuaConfig's annotations are strings (postponed evaluation).
_PUA_KINDS = {
    f.name: {"str | None": "optstr"}.get(str(f.type), str(f.type)) for f in fields(PuaConfig)
}
_SCHEMA: dict[str, dict[str, str]] = {
    "pua": _PUA_KINDS,
    "sip": {"listen": "list"},
    "rpc": {"listen": "list", "token": "optstr"},
    "log": {"level": "str"},
}
_ALLOWED_TYPE = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "optstr": "a string",
    "list": "an array of strings",
}
_SIP_TRANSPORTS = ("udp", "tcp", "tls")
_HOST_PORT = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]+):(?P<port>[0-9]+)")
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")

# (section, key) -> value, merged over the sources
_Values = dict[tuple[str, str], Any]


def load_settings(
    path: str | Path | None, environ: Mapping[str, str], overrides: Sequence[str]
) -> Settings:
    """Read ``path`` (None: no file), then ``environ``, then ``overrides``."""
    values: _Values = {}
    origins: dict[tuple[str, str], str] = {}
    if path is not None:
        _read_file(Path(path), values)
    for name, text in environ.items():
        where = _env_target(name)
        if where is not None:
            values[where] = _from_string(*where, text, name)
            origins[where] = name
    for item in overrides:
        where, text = _parse_override(item)
        values[where] = _from_string(*where, text, "--set")
        origins[where] = "--set"
    return _build(values, origins)


# --- sources ----------------------------------------------------------------


def _read_file(path: Path, values: _Values) -> None:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        # the message ends with "(at line N, column M)"
        raise ConfigError(str(path), f"invalid TOML: {exc}") from None
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(
                section,
                f"got {_show(table)} outside any section, allowed: "
                + ", ".join(f"[{s}]" for s in _SCHEMA),
            )
        _check_section(section)
        for key, value in table.items():
            _check_key(section, key)
            values[section, key] = _from_toml(section, key, value)


def _env_target(name: str) -> tuple[str, str] | None:
    """The (section, key) an environment variable sets, None if not ours.

    Only names under a known section's prefix are ours, so that a typo in
    one (PUA_PUA_DBMODE) is reported rather than silently ignored.
    """
    for section in _SCHEMA:
        prefix = f"PUA_{section.upper()}_"
        if name.startswith(prefix):
            key = name[len(prefix) :].lower()
            _check_key(section, key, f" (from {name})")
            return section, key
    return None


def _parse_override(item: str) -> tuple[tuple[str, str], str]:
    name, eq, text = item.partition("=")
    section, dot, key = name.strip().partition(".")
    if not eq or not dot or not key:
        raise ConfigError("--set", f"got {_show(item)}, allowed: section.key=value")
    _check_section(section, " (from --set)")
    _check_key(section, key, " (from --set)")
    return (section, key), text


def _check_section(section: str, origin: str = "") -> None:
    if section not in _SCHEMA:
        raise ConfigError(section, f"unknown section{origin}{_suggest(section, list(_SCHEMA))}")


def _check_key(section: str, key: str, origin: str = "") -> None:
    known = _SCHEMA[section]
    if key not in known:
        raise ConfigError(
            f"{section}.{key}",
            f"unknown key{origin}{_suggest(key, list(known), f'{section}.')}",
        )


def _suggest(word: str, choices: list[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    if close:
        return f" (did you mean {prefix}{close[0]}?)"
    return " (allowed: " + ", ".join(prefix + c for c in choices) + ")"


# --- conversion -------------------------------------------------------------


def _from_toml(section: str, key: str, value: Any) -> Any:
    """Check a TOML value's type against the key's kind."""
    kind = _SCHEMA[section][key]
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
        "optstr": isinstance(value, str),
        "list": isinstance(value, list) and all(isinstance(v, str) for v in value),
    }[kind]
    if not ok:
        raise ConfigError(
            f"{section}.{key}",
            f"got {_show(value)} ({_toml_type(value)}), allowed: {_ALLOWED_TYPE[kind]}",
        )
    if kind == "float":
        return float(value)
    if kind == "optstr":
        return value or None
    return value


def _from_string(section: str, key: str, text: str, origin: str) -> Any:
    """Convert an environment or ``--set`` string to the key's kind."""
    kind = _SCHEMA[section][key]
    stripped = text.strip()
    if kind == "str":
        return text
    if kind == "optstr":
        return text or None
    if kind == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    if kind == "bool" and stripped.lower() in _TRUE + _FALSE:
        return stripped.lower() in _TRUE
    if kind in ("int", "float"):
        try:
            return int(stripped) if kind == "int" else float(stripped)
        except ValueError:
            pass
    allowed = "true, false, 1, 0, yes or no" if kind == "bool" else _ALLOWED_TYPE[kind]
    raise ConfigError(f"{section}.{key}", f"got {_show(text)} (from {origin}), allowed: {allowed}")


# --- validation -------------------------------------------------------------


def _build(values: _Values, origins: dict[tuple[str, str], str]) -> Settings:
    def fail(section: str, key: str, value: Any, allowed: str) -> ConfigError:
        origin = origins.get((section, key))
        where = f" (from {origin})" if origin else ""
        return ConfigError(f"{section}.{key}", f"got {_show(value)}{where}, allowed: {allowed}")

    kw: dict[str, Any] = {"db_url": DEFAULT_DB_URL}
    kw.update({key: v for (section, key), v in values.items() if section == "pua"})
    try:
        pua = PuaConfig(**kw)
    except ConfigError as exc:
        # PuaConfig says "must be X, got Y": restate as "got Y, allowed: X"
        m = re.fullmatch(r"must be (.+?), got .+", exc.problem)
        if m:
            raise fail("pua", exc.key, kw.get(exc.key), m.group(1)) from None
        origin = origins.get(("pua", exc.key))
        where = f" (from {origin})" if origin else ""
        raise ConfigError(
            f"pua.{exc.key}", f"got {_show(kw.get(exc.key))}{where}, {exc.problem}"
        ) from None

    sip_listen = tuple(values.get(("sip", "listen"), DEFAULT_SIP_LISTEN))
    if not sip_listen:
        raise fail("sip", "listen", [], "at least one transport:host:port")
    for address in sip_listen:
        transport, _, rest = address.partition(":")
        problem = _host_port_problem(rest) if transport in _SIP_TRANSPORTS else "format"
        if problem == "format":
            problem = "transport:host:port with transport udp, tcp or tls"
        if problem:
            raise fail("sip", "listen", address, problem)

    rpc_listen = tuple(values.get(("rpc", "listen"), DEFAULT_RPC_LISTEN))
    for address in rpc_listen:
        scheme, _, rest = address.partition(":")
        if scheme == "unix":
            problem = "" if rest.startswith("/") else "format"
        else:
            problem = _host_port_problem(rest) if scheme == "http" else "format"
        if problem == "format":
            problem = "http:host:port or unix:/absolute/path"
        if problem:
            raise fail("rpc", "listen", address, problem)

    level = values.get(("log", "level"), "info")
    if level.lower() not in LOG_LEVELS:
        raise fail("log", "level", level, ", ".join(LOG_LEVELS[:-1]) + " or " + LOG_LEVELS[-1])

    return Settings(
        pua=pua,
        sip_listen=sip_listen,
        rpc_listen=rpc_listen,
        rpc_token=values.get(("rpc", "token")),
        log_level=level.lower(),
    )


def _host_port_problem(text: str) -> str:
    """What is wrong with ``host:port`` ("format" if its shape), "" if nothing."""
    m = _HOST_PORT.fullmatch(text)
    if m is None:
        return "format"
    host = m.group("host")
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return "an IPv6 address in brackets, like udp:[::1]:5060"
    if not 1 <= int(m.group("port")) <= 65535:
        return "a port from 1 to 65535"
    return ""


def _show(value: Any) -> str:
    """A value as TOML would write it, on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"
