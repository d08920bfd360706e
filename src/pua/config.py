"""Module parameters, with Kamailio's names, checked once at start-up.

Kamailio clamps or replaces bad values silently (``default_expires < 600``
becomes 3600, a negative ``min_expires`` becomes 0).  Here a bad value stops
start-up with a :class:`ConfigError` that names the key, in one line.

The parameters after the Kamailio block are pua's own: they make explicit
the policies Kamailio hard-codes or lacks (refresh margin, bounded retries,
the ``+1`` it adds to every Expires).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from pua.errors import PuaError

__all__ = ["ConfigError", "PuaConfig"]


class ConfigError(PuaError):
    """A parameter has a value pua cannot run with.  ``key`` names it."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


@dataclass(frozen=True, slots=True, kw_only=True)
class PuaConfig:
    """Every parameter, with its default."""

    # --- Kamailio's parameters (spec: "Module parameters") -----------------
    hash_size: int = 9
    #: where records are written back (db_mode 0) or kept (db_mode 2);
    #: empty: memory only (db_mode 0)
    db_url: str = ""
    db_table: str = "pua"
    #: floor for a requested Expires (> 0); removals always send Expires: 0
    min_expires: int = 0
    #: Expires used when the caller asks for "for ever" (expires < 0)
    default_expires: int = 3600
    #: paces the database write-back; refreshes use per-record deadlines
    update_period: int = 100
    #: next hop for PUBLISH when the caller names none (a URI)
    outbound_proxy: str | None = None
    dlginfo_increase_version: bool = False
    reginfo_increase_version: bool = False
    #: 0: records in memory, written back; 2: the database holds them,
    #: shared by every node on it (owner + lease per row)
    db_mode: int = 0
    #: db_mode 2: serialise every writer of the table (Kamailio's default
    #: 1; here 0, as rows are locked one by one: see docs/deviations.md)
    db_table_lock_write: int = 0
    check_remote_contact: int = 1
    fetch_rows: int = 500

    # --- pua's own ----------------------------------------------------------
    #: add 1 to every non-zero Expires sent, as Kamailio does (off: send the
    #: value asked for, which is what RFC 3903 §4.1 expects)
    expires_plus_one: bool = False
    #: refresh when this fraction of the granted expiry has passed, drawn
    #: uniformly from [low, high] per refresh so that refreshes of many
    #: publications spread out
    refresh_low: float = 0.8
    refresh_high: float = 0.9
    #: never refresh later than this many seconds before expiry (capped at
    #: half the granted expiry for very short grants)
    refresh_margin: float = 5.0
    #: at most this many re-publications after 412 in a row (RFC 3903 §4.4)
    max_412_attempts: int = 3
    #: backoff after 408, timeout and 5xx: first delay, and the cap
    retry_initial: float = 2.0
    retry_max: float = 300.0
    #: at most this many 3xx Contact targets tried for one request
    max_redirects: int = 5
    #: when a publication's requested lifetime ends, send Expires: 0 (True)
    #: or let it lapse at the server (False)
    final_remove: bool = True
    #: run callbacks for the outcomes of pua's own refreshes too
    #: (Kamailio never does)
    callbacks_on_refresh: bool = False
    #: write every change to the database at once (db_mode 0), so that a
    #: crash loses nothing; off: every ``update_period`` seconds
    write_through: bool = False
    #: db_mode 2: this node's name in the ``owner`` column; empty:
    #: ``<hostname>:<pid>`` (nodes sharing a database need distinct names;
    #: a node restarted under the same name takes its rows back at once)
    node_id: str = ""
    #: db_mode 2: seconds a node's hold on its rows lasts without renewal;
    #: renewed every third of it; the rows of a node silent for longer are
    #: taken over by the others
    lease_time: int = 30

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            expected = f.type if isinstance(f.type, str) else f.type.__name__
            if expected == "bool" and not isinstance(value, bool):
                raise ConfigError(f.name, f"must be true or false, got {value!r}")
            if expected == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f.name, f"must be an integer, got {value!r}")
            if expected == "float" and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ConfigError(f.name, f"must be a number, got {value!r}")
        if not 1 <= self.hash_size <= 20:
            raise ConfigError("hash_size", f"must be between 1 and 20, got {self.hash_size}")
        if self.min_expires < 0:
            raise ConfigError("min_expires", f"must be >= 0, got {self.min_expires}")
        if self.default_expires < 1:
            raise ConfigError("default_expires", f"must be >= 1, got {self.default_expires}")
        if self.default_expires < self.min_expires:
            raise ConfigError(
                "default_expires",
                f"must be >= min_expires ({self.min_expires}), got {self.default_expires}",
            )
        if self.update_period < 0 or 0 < self.update_period <= 5:
            raise ConfigError("update_period", f"must be 0 or > 5, got {self.update_period}")
        if self.db_mode not in (0, 2):
            raise ConfigError("db_mode", f"must be 0 or 2, got {self.db_mode}")
        if self.db_table_lock_write not in (0, 1):
            raise ConfigError(
                "db_table_lock_write", f"must be 0 or 1, got {self.db_table_lock_write}"
            )
        if self.lease_time < 3:
            raise ConfigError("lease_time", f"must be >= 3 seconds, got {self.lease_time}")
        if len(self.node_id) > 255:
            raise ConfigError("node_id", f"must be at most 255 characters, got {len(self.node_id)}")
        if self.check_remote_contact not in (0, 1):
            raise ConfigError(
                "check_remote_contact", f"must be 0 or 1, got {self.check_remote_contact}"
            )
        if self.fetch_rows < 1:
            raise ConfigError("fetch_rows", f"must be >= 1, got {self.fetch_rows}")
        if not self.db_table:
            raise ConfigError("db_table", "must not be empty")
        if not 0 < self.refresh_low <= self.refresh_high < 1:
            raise ConfigError(
                "refresh_low",
                "refresh_low and refresh_high must satisfy 0 < low <= high < 1, "
                f"got {self.refresh_low} and {self.refresh_high}",
            )
        if self.refresh_margin < 0:
            raise ConfigError("refresh_margin", f"must be >= 0, got {self.refresh_margin}")
        if self.max_412_attempts < 0:
            raise ConfigError("max_412_attempts", f"must be >= 0, got {self.max_412_attempts}")
        if self.retry_initial <= 0:
            raise ConfigError("retry_initial", f"must be > 0, got {self.retry_initial}")
        if self.retry_max < self.retry_initial:
            raise ConfigError(
                "retry_max",
                f"must be >= retry_initial ({self.retry_initial}), got {self.retry_max}",
            )
        if self.max_redirects < 0:
            raise ConfigError("max_redirects", f"must be >= 0, got {self.max_redirects}")
