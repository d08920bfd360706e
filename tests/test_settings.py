"""pua.settings: the daemon's TOML file, environment and --set layers, and
the one-line ConfigError for every kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from pua.config import ConfigError, PuaConfig
from pua.settings import Settings, load_settings

ISSUE_EXAMPLE = """\
[pua]
db_url = "sqlite:///var/lib/pua/pua.db"
outbound_proxy = "sip:127.0.0.1:5070"
[sip]
listen = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]
[rpc]
listen = ["http:127.0.0.1:5081", "unix:/run/pua/pua.sock"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pua.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error(
    path: Path | None, environ: dict[str, str] | None = None, overrides: tuple[str, ...] = ()
) -> str:
    """The message load_settings fails with; always one line."""
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ or {}, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- defaults and sources ---------------------------------------------------


def test_defaults_without_a_file() -> None:
    settings = load_settings(None, {}, ())
    assert settings == Settings()
    assert settings.pua == PuaConfig(db_url="sqlite:///pua.db")
    assert settings.sip_listen == ("udp:127.0.0.1:5060", "tcp:127.0.0.1:5060")
    assert settings.rpc_listen == ("http:127.0.0.1:5081",)
    assert settings.rpc_token is None
    assert settings.log_level == "info"
    # the Python API's default stays memory only
    assert PuaConfig().db_url == ""


def test_issue_example(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ISSUE_EXAMPLE), {}, ())
    assert settings.pua.db_url == "sqlite:///var/lib/pua/pua.db"
    assert settings.pua.outbound_proxy == "sip:127.0.0.1:5070"
    assert settings.pua.db_mode == 0
    assert settings.sip_listen == ("udp:127.0.0.1:5060", "tcp:127.0.0.1:5060")
    assert settings.rpc_listen == ("http:127.0.0.1:5081", "unix:/run/pua/pua.sock")


def test_full_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
[pua]
db_url = "postgresql://pua@db/pua"
db_table = "pua2"
db_mode = 2
hash_size = 10
min_expires = 60
default_expires = 1800
update_period = 0
outbound_proxy = ""
dlginfo_increase_version = true
reginfo_increase_version = true
db_table_lock_write = 1
check_remote_contact = 0
fetch_rows = 100
refresh_margin = 10
node_id = "node-a"
[sip]
listen = ["udp:[::1]:5060", "tls:example.org:5061"]
[rpc]
listen = []
token = "s3cret"
[log]
level = "DEBUG"
""",
    )
    s = load_settings(path, {}, ())
    assert s.pua == PuaConfig(
        db_url="postgresql://pua@db/pua",
        db_table="pua2",
        db_mode=2,
        hash_size=10,
        min_expires=60,
        default_expires=1800,
        update_period=0,
        outbound_proxy=None,  # empty: no proxy
        dlginfo_increase_version=True,
        reginfo_increase_version=True,
        db_table_lock_write=1,
        check_remote_contact=0,
        fetch_rows=100,
        refresh_margin=10.0,
        node_id="node-a",
    )
    assert s.sip_listen == ("udp:[::1]:5060", "tls:example.org:5061")
    assert s.rpc_listen == ()
    assert s.rpc_token == "s3cret"
    assert s.log_level == "debug"


def test_environment_converts_strings() -> None:
    s = load_settings(
        None,
        {
            "PUA_PUA_DB_URL": "sqlite:///tmp/x.db",
            "PUA_PUA_DB_MODE": "2",
            "PUA_PUA_RETRY_MAX": "60.5",
            "PUA_PUA_EXPIRES_PLUS_ONE": "yes",
            "PUA_PUA_FINAL_REMOVE": "0",
            "PUA_PUA_OUTBOUND_PROXY": "",
            "PUA_SIP_LISTEN": "udp:0.0.0.0:5060, tcp:0.0.0.0:5060",
            "PUA_RPC_TOKEN": "t",
            "PUA_LOG_LEVEL": "warning",
            "HOME": "/root",  # not ours: ignored
            "PUA_HOME": "/x",  # no known section: ignored
        },
        (),
    )
    assert s.pua.db_url == "sqlite:///tmp/x.db"
    assert s.pua.db_mode == 2
    assert s.pua.retry_max == 60.5
    assert s.pua.expires_plus_one is True
    assert s.pua.final_remove is False
    assert s.pua.outbound_proxy is None
    assert s.sip_listen == ("udp:0.0.0.0:5060", "tcp:0.0.0.0:5060")
    assert s.rpc_token == "t"
    assert s.log_level == "warning"


def test_overrides_convert_strings() -> None:
    s = load_settings(
        None, {}, ["pua.db_mode=2", "pua.write_through=TRUE", "rpc.listen=unix:/run/p.sock"]
    )
    assert s.pua.db_mode == 2
    assert s.pua.write_through is True
    assert s.rpc_listen == ("unix:/run/p.sock",)


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    path = write(tmp_path, "[pua]\nfetch_rows = 10\nhash_size = 5\nlease_time = 40\n")
    env = {"PUA_PUA_FETCH_ROWS": "20", "PUA_PUA_HASH_SIZE": "6"}
    s = load_settings(path, env, ["pua.fetch_rows=30"])
    assert s.pua.fetch_rows == 30  # flag beats env beats file
    assert s.pua.hash_size == 6  # env beats file
    assert s.pua.lease_time == 40  # file alone
    assert s.pua.db_url == "sqlite:///pua.db"  # default alone


def test_last_flag_wins() -> None:
    s = load_settings(None, {}, ["log.level=error", "log.level=debug"])
    assert s.log_level == "debug"


# --- errors -----------------------------------------------------------------


def test_pua_config_error_gets_section_and_value(tmp_path: Path) -> None:
    msg = error(write(tmp_path, "[pua]\ndb_mode = 3\n"))
    assert msg == "pua.db_mode: got 3, allowed: 0 or 2"


def test_pua_config_error_names_its_source() -> None:
    assert (
        error(None, {"PUA_PUA_DB_MODE": "3"})
        == "pua.db_mode: got 3 (from PUA_PUA_DB_MODE), allowed: 0 or 2"
    )
    assert error(None, overrides=("pua.hash_size=99",)) == (
        "pua.hash_size: got 99 (from --set), allowed: between 1 and 20"
    )


def test_pua_config_error_without_must_be(tmp_path: Path) -> None:
    msg = error(write(tmp_path, '[pua]\ndb_table = ""\n'))
    assert msg == 'pua.db_table: got "", must not be empty'


def test_unknown_key_suggests_a_close_one(tmp_path: Path) -> None:
    msg = error(write(tmp_path, "[pua]\ndbmode = 2\n"))
    assert msg == "pua.dbmode: unknown key (did you mean pua.db_mode?)"
    assert error(None, {"PUA_PUA_DBMODE": "2"}) == (
        "pua.dbmode: unknown key (from PUA_PUA_DBMODE) (did you mean pua.db_mode?)"
    )
    assert error(None, overrides=("log.levle=debug",)) == (
        "log.levle: unknown key (from --set) (did you mean log.level?)"
    )


def test_unknown_key_without_a_close_one_lists_the_keys(tmp_path: Path) -> None:
    msg = error(write(tmp_path, "[rpc]\nzzz = 1\n"))
    assert msg == "rpc.zzz: unknown key (allowed: rpc.listen, rpc.token)"


def test_unknown_section(tmp_path: Path) -> None:
    assert error(write(tmp_path, "[spi]\nlisten = []\n")) == (
        "spi: unknown section (did you mean sip?)"
    )
    assert error(None, overrides=("db.url=x",)) == (
        "db: unknown section (from --set) (allowed: pua, sip, rpc, log)"
    )


def test_key_outside_any_section(tmp_path: Path) -> None:
    msg = error(write(tmp_path, 'db_url = "x"\n'))
    assert msg == 'db_url: got "x" outside any section, allowed: [pua], [sip], [rpc], [log]'


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[pua]\nfetch_rows = "10"',
            'pua.fetch_rows: got "10" (a string), allowed: an integer',
        ),
        ("[pua]\nfetch_rows = true", "pua.fetch_rows: got true (a boolean), allowed: an integer"),
        ("[pua]\nfinal_remove = 1", "pua.final_remove: got 1 (an integer), allowed: true or false"),
        ('[pua]\nretry_max = "5"', 'pua.retry_max: got "5" (a string), allowed: a number'),
        ("[pua]\nnode_id = 5", "pua.node_id: got 5 (an integer), allowed: a string"),
        (
            '[sip]\nlisten = "udp:127.0.0.1:5060"',
            'sip.listen: got "udp:127.0.0.1:5060" (a string), allowed: an array of strings',
        ),
        ("[rpc]\nlisten = [1]", "rpc.listen: got [1] (an array), allowed: an array of strings"),
        ("[log]\nlevel = {a = 1}", "log.level: got {a = 1} (a table), allowed: a string"),
    ],
)
def test_wrong_toml_type(tmp_path: Path, toml: str, message: str) -> None:
    assert error(write(tmp_path, toml + "\n")) == message


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"PUA_PUA_FETCH_ROWS": "ten"},
            'pua.fetch_rows: got "ten" (from PUA_PUA_FETCH_ROWS), allowed: an integer',
        ),
        (
            {"PUA_PUA_RETRY_MAX": "1,5"},
            'pua.retry_max: got "1,5" (from PUA_PUA_RETRY_MAX), allowed: a number',
        ),
        (
            {"PUA_PUA_FINAL_REMOVE": "maybe"},
            'pua.final_remove: got "maybe" (from PUA_PUA_FINAL_REMOVE), '
            "allowed: true, false, 1, 0, yes or no",
        ),
    ],
)
def test_unconvertible_environment_value(env: dict[str, str], message: str) -> None:
    assert error(None, env) == message


def test_unconvertible_flag_and_malformed_flag() -> None:
    assert error(None, overrides=("pua.db_mode=two",)) == (
        'pua.db_mode: got "two" (from --set), allowed: an integer'
    )
    assert error(None, overrides=("pua.db_mode",)) == (
        '--set: got "pua.db_mode", allowed: section.key=value'
    )
    assert error(None, overrides=("db_mode=2",)) == (
        '--set: got "db_mode=2", allowed: section.key=value'
    )


SIP_FORMAT = "allowed: transport:host:port with transport udp, tcp or tls"


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("udp:127.0.0.1", SIP_FORMAT),
        ("sctp:127.0.0.1:5060", SIP_FORMAT),
        ("udp:::1:5060", SIP_FORMAT),  # IPv6 needs brackets
        ("udp:[::g]:5060", "allowed: an IPv6 address in brackets, like udp:[::1]:5060"),
        ("udp:127.0.0.1:0", "allowed: a port from 1 to 65535"),
        ("tcp:127.0.0.1:65536", "allowed: a port from 1 to 65535"),
    ],
)
def test_bad_sip_listen(tmp_path: Path, address: str, allowed: str) -> None:
    path = write(tmp_path, f'[sip]\nlisten = ["udp:127.0.0.1:5060", "{address}"]\n')
    assert error(path) == f'sip.listen: got "{address}", {allowed}'


def test_sip_listen_needs_an_address() -> None:
    assert error(None, {"PUA_SIP_LISTEN": ""}) == (
        "sip.listen: got [] (from PUA_SIP_LISTEN), allowed: at least one transport:host:port"
    )


def test_good_sip_listen_forms() -> None:
    s = load_settings(None, {}, ["sip.listen=udp:[::1]:5060,tls:[2001:db8::1]:5061,tcp:h:1"])
    assert s.sip_listen == ("udp:[::1]:5060", "tls:[2001:db8::1]:5061", "tcp:h:1")


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("https:127.0.0.1:5081", "http:host:port or unix:/absolute/path"),
        ("unix:run/pua.sock", "http:host:port or unix:/absolute/path"),
        ("http:127.0.0.1", "http:host:port or unix:/absolute/path"),
        ("http:127.0.0.1:99999", "a port from 1 to 65535"),
    ],
)
def test_bad_rpc_listen(address: str, allowed: str) -> None:
    assert error(None, overrides=(f"rpc.listen={address}",)) == (
        f'rpc.listen: got "{address}" (from --set), allowed: {allowed}'
    )


def test_bad_log_level(tmp_path: Path) -> None:
    assert error(write(tmp_path, '[log]\nlevel = "loud"\n')) == (
        'log.level: got "loud", allowed: debug, info, warning or error'
    )


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    assert error(path) == f"{path}: cannot read: No such file or directory"


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[pua]\ndb_url = "x"\ndb_mode 2\n')
    msg = error(path)
    assert msg.startswith(f"{path}: invalid TOML: ")
    assert "line 3" in msg


def test_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "pua.toml"
    path.write_bytes(b'[pua]\ndb_url = "\xff"\n')
    assert error(path) == f"{path}: not UTF-8 text"
