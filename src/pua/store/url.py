"""``db_url`` in Kamailio's or SQLAlchemy's form -> an async SQLAlchemy URL.

Accepted (the driver is always the async one pua ships with):

========================================  ====================================
``mysql://user:pass@host[:port]/db``      ``mysql+aiomysql://...?charset=utf8mb4``
``mariadb://...``, ``mysql+aiomysql://``  same
``postgres://user:pass@host[:port]/db``   ``postgresql+asyncpg://...``
``postgresql://...``, ``+asyncpg``        same
``sqlite:////abs/path.db``                ``/abs/path.db``
``sqlite:///rel/path.db``                 ``<base_dir>/rel/path.db``
``sqlite://rel/path.db`` (Kamailio)       ``<base_dir>/rel/path.db``
``sqlite://``, ``sqlite:///:memory:``     an in-memory database
========================================  ====================================

A relative SQLite path is resolved once, here, against ``base_dir`` (the
working directory when not given), so a later ``chdir`` does not move the
database.  Kamailio itself runs in ``/`` (``kamailio -w``), which makes its
``sqlite:///etc/kamailio/kamailio.db`` absolute in practice: give pua
``base_dir="/"``, or four slashes, for the same file.

Anything else raises :class:`~pua.config.ConfigError` with key ``db_url``,
saying what is wrong without echoing the URL (it may hold a password).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from pua.config import ConfigError

__all__ = ["MEMORY_SQLITE", "describe_url", "parse_db_url"]

#: the database name of an in-memory SQLite database
MEMORY_SQLITE: Final = ":memory:"

# scheme (dialect part) -> (SQLAlchemy dialect, async driver)
_DIALECTS: Final = {
    "mysql": ("mysql", "aiomysql"),
    "mariadb": ("mysql", "aiomysql"),
    "postgres": ("postgresql", "asyncpg"),
    "postgresql": ("postgresql", "asyncpg"),
    "sqlite": ("sqlite", "aiosqlite"),
}


def _fail(problem: str) -> ConfigError:
    return ConfigError("db_url", problem)


def parse_db_url(db_url: str, *, base_dir: str | os.PathLike[str] | None = None) -> URL:
    """The async SQLAlchemy URL for ``db_url`` (see the module doc)."""
    if not isinstance(db_url, str):
        raise _fail(f"must be a string, got {type(db_url).__name__}")
    text = db_url.strip()
    if not text:
        raise _fail("is empty")
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme:
        raise _fail("has no scheme (expected mysql://, postgres:// or sqlite://)")
    dialect_name, _, driver = scheme.lower().partition("+")
    if dialect_name not in _DIALECTS:
        raise _fail(
            f"database type {dialect_name!r} is not supported (use mysql, postgres or sqlite)"
        )
    dialect, async_driver = _DIALECTS[dialect_name]
    if driver and driver != async_driver:
        raise _fail(
            f"driver {driver!r} is not supported for {dialect}; "
            f"use {dialect}+{async_driver}:// (or leave the driver out)"
        )
    if dialect == "sqlite":
        return _sqlite(rest, base_dir)
    return _server(dialect, async_driver, rest)


def _server(dialect: str, driver: str, rest: str) -> URL:
    if rest.startswith("["):
        raise _fail("MySQL option groups (mysql://[group]@/db) are not supported")
    try:
        url = make_url(f"{dialect}+{driver}://{rest}")
    except (ArgumentError, ValueError):
        raise _fail(
            "is not a valid URL (expected scheme://user:password@host[:port]/database)"
        ) from None
    if url.username is not None and url.username.startswith("["):
        raise _fail("MySQL option groups (mysql://[group]@/db) are not supported")
    if url.port is not None and not 0 < url.port < 65536:
        raise _fail(f"port {url.port} is out of range")
    if not url.database:
        raise _fail("names no database (expected .../database at the end)")
    if "/" in url.database:
        raise _fail("database name must not contain '/'")
    if dialect == "mysql" and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


def _sqlite(rest: str, base_dir: str | os.PathLike[str] | None) -> URL:
    path_part, _, query_text = rest.partition("?")
    query: dict[str, str] = {}
    if query_text:
        for item in query_text.split("&"):
            key, eq, value = item.partition("=")
            if not key or not eq:
                raise _fail(f"SQLite option {item!r} is not key=value")
            query[key] = value
    if path_part.startswith("/"):
        # sqlite:///rel (three slashes) or sqlite:////abs (four)
        path_part = path_part[1:]
    if path_part in ("", MEMORY_SQLITE):
        return URL.create("sqlite+aiosqlite", database=MEMORY_SQLITE, query=query)
    path = Path(path_part)
    if not path.is_absolute():
        path = Path(base_dir if base_dir is not None else os.getcwd()) / path
    if path_part.endswith("/"):
        raise _fail("SQLite path names a directory, not a file")
    return URL.create("sqlite+aiosqlite", database=os.path.normpath(path), query=query)


def describe_url(url: URL) -> str:
    """``url`` for messages and logs: the password is never shown."""
    return url.render_as_string(hide_password=True)
