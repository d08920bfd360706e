"""``db_url`` in Kamailio's and SQLAlchemy's forms, and make_store."""

from __future__ import annotations

from pathlib import Path

import pytest

from pua.config import ConfigError, PuaConfig
from pua.store.memory import MemoryStore
from pua.store.sql import SqlStore, make_store
from pua.store.url import describe_url, parse_db_url


@pytest.mark.parametrize(
    ("db_url", "expected"),
    [
        # Kamailio's forms
        (
            "mysql://kamailio:kamailiorw@localhost/kamailio",
            "mysql+aiomysql://kamailio:kamailiorw@localhost/kamailio?charset=utf8mb4",
        ),
        (
            "mysql://kamailio:kamailiorw@db.example.com:3307/kamailio",
            "mysql+aiomysql://kamailio:kamailiorw@db.example.com:3307/kamailio?charset=utf8mb4",
        ),
        ("mysql://root@127.0.0.1/test", "mysql+aiomysql://root@127.0.0.1/test?charset=utf8mb4"),
        ("postgres://k:pw@localhost/kamailio", "postgresql+asyncpg://k:pw@localhost/kamailio"),
        ("postgres://k:pw@[::1]:5433/kamailio", "postgresql+asyncpg://k:pw@[::1]:5433/kamailio"),
        ("postgresql://k:pw@localhost/kam", "postgresql+asyncpg://k:pw@localhost/kam"),
        ("sqlite:////var/lib/pua/pua.sqlite", "sqlite+aiosqlite:////var/lib/pua/pua.sqlite"),
        ("sqlite:///rel/pua.sqlite", "sqlite+aiosqlite:////base/rel/pua.sqlite"),
        ("sqlite://rel/pua.sqlite", "sqlite+aiosqlite:////base/rel/pua.sqlite"),
        ("sqlite:///./pua.sqlite", "sqlite+aiosqlite:////base/pua.sqlite"),
        # SQLAlchemy's forms
        (
            "postgresql+asyncpg://u:p@h/db?ssl=require",
            "postgresql+asyncpg://u:p@h/db?ssl=require",
        ),
        ("mysql+aiomysql://u:p@h/db", "mysql+aiomysql://u:p@h/db?charset=utf8mb4"),
        ("mysql+aiomysql://u:p@h/db?charset=latin1", "mysql+aiomysql://u:p@h/db?charset=latin1"),
        ("mariadb://u:p@h/db", "mysql+aiomysql://u:p@h/db?charset=utf8mb4"),
        ("sqlite+aiosqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("sqlite+aiosqlite:///x.db?timeout=3", "sqlite+aiosqlite:////base/x.db?timeout=3"),
        ("  MySQL://u:p@h/db  ", "mysql+aiomysql://u:p@h/db?charset=utf8mb4"),
    ],
)
def test_accepted_forms(db_url: str, expected: str) -> None:
    url = parse_db_url(db_url, base_dir="/base")
    assert url.render_as_string(hide_password=False) == expected


@pytest.mark.parametrize("db_url", ["sqlite://", "sqlite:///:memory:", "sqlite+aiosqlite://"])
def test_in_memory_sqlite(db_url: str) -> None:
    url = parse_db_url(db_url)
    assert (url.drivername, url.database) == ("sqlite+aiosqlite", ":memory:")


def test_escaped_password_is_decoded() -> None:
    url = parse_db_url("mysql://u:p%40ss@h/db")
    assert url.password == "p@ss"
    assert "p%40ss" not in describe_url(url)
    assert describe_url(url) == "mysql+aiomysql://u:***@h/db?charset=utf8mb4"


def test_relative_sqlite_path_defaults_to_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_db_url("sqlite:///pua.sqlite").database == str(tmp_path / "pua.sqlite")


@pytest.mark.parametrize(
    ("db_url", "words"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("pua.sqlite", "has no scheme"),
        ("://x", "has no scheme"),
        ("oracle://u:secret@h/db", "database type 'oracle' is not supported"),
        ("text:///etc/kamailio/dbtext", "database type 'text' is not supported"),
        ("postgresql+psycopg2://u:secret@h/db", "driver 'psycopg2' is not supported"),
        ("mysql+mysqldb://u:secret@h/db", "driver 'mysqldb' is not supported"),
        ("sqlite+pysqlite:///x.db", "driver 'pysqlite' is not supported"),
        ("mysql://u:secret@h:port/db", "is not a valid URL"),
        ("mysql://u:secret@h:99999/db", "port 99999 is out of range"),
        ("mysql://u:secret@h", "names no database"),
        ("postgres://u:secret@h/", "names no database"),
        ("postgres://u:secret@h/db/more", "must not contain '/'"),
        ("mysql://[pua]@/kamailio", "option groups"),
        ("sqlite:///dir/", "names a directory"),
        ("sqlite:///x.db?timeout", "is not key=value"),
    ],
)
def test_bad_urls_name_db_url_and_hide_the_password(db_url: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        parse_db_url(db_url)
    assert caught.value.key == "db_url"
    assert str(caught.value).startswith("db_url: ")
    assert "secret" not in str(caught.value)


def test_make_store_picks_memory_or_sql(tmp_path: Path) -> None:
    memory = make_store(PuaConfig(db_url="", fetch_rows=7))
    assert isinstance(memory, MemoryStore)
    assert memory.fetch_rows == 7
    sql = make_store(PuaConfig(db_url="sqlite:///pua.sqlite", db_table="pua2"), base_dir="/x")
    assert isinstance(sql, SqlStore)
    assert sql.table_name == "pua2"
    assert sql.url.database == "/x/pua.sqlite"
    assert sql.name == "sqlite+aiosqlite:////x/pua.sqlite"
    assert sql.fetch_rows == 500
    with pytest.raises(ConfigError, match="db_url: database type"):
        make_store(PuaConfig(db_url="redis://h/1"))
    for table in ("1pua", "pua;drop", "p" * 33, "pua-x"):
        with pytest.raises(ConfigError, match="db_table"):
            make_store(PuaConfig(db_url="sqlite:///pua.sqlite", db_table=table))
