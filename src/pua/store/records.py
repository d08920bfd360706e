"""One row of the ``pua`` table, as a plain object.

:class:`StoredRecord` holds Kamailio's 19 columns of the ``pua`` table
(schema version 7, spec §15) under their column names, followed by pua's own
columns, all of which may be NULL.  Kamailio reads rows by column name, so a
row written by pua is a row Kamailio can read, and a row written by Kamailio
(or ``kamdbctl``) loads here with ``None`` in pua's columns.

Kamailio writes ``''``, never NULL, in its NOT NULL string columns: a
publication row has ``watcher_uri = call_id = to_tag = from_tag = ''``, a
dialog row has ``etag = ''``.  Two of those empty columns are kept by the
store itself (see :mod:`pua.store.schema` and ``docs/storage.md``), so a
publication's ``from_tag`` and a subscription's ``etag`` must be ``''``
when written, and read back as ``''``.

:data:`COLUMNS` describes every column once (type, nullability, length);
the schema, the validation in :meth:`StoredRecord.problems` and the stores
all derive from it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Final, Literal

from pua.model import EventFlag

__all__ = [
    "COLUMNS",
    "COLUMN_NAMES",
    "INT32_MAX",
    "INT32_MIN",
    "KAMAILIO_COLUMNS",
    "KNOWN_EVENTS",
    "PUA_COLUMNS",
    "ColumnSpec",
    "StoredRecord",
]

#: every value ``event`` may hold: exactly one known event flag
KNOWN_EVENTS: Final = frozenset(int(flag) for flag in EventFlag)

INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

Kind = Literal["id", "int", "bigint", "varchar", "text", "bytes"]


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One column: its name, kind, nullability and (VARCHAR) length."""

    name: str
    kind: Kind
    nullable: bool
    length: int | None = None
    #: True for Kamailio's columns, False for pua's own
    kamailio: bool = True


#: The columns in physical order: Kamailio's first (``clean_puadb`` reads
#: them by position), then pua's.
COLUMNS: Final[tuple[ColumnSpec, ...]] = (
    ColumnSpec("id", "id", nullable=False),
    ColumnSpec("pres_uri", "varchar", nullable=False, length=255),
    ColumnSpec("pres_id", "varchar", nullable=False, length=255),
    ColumnSpec("event", "int", nullable=False),
    ColumnSpec("expires", "int", nullable=False),
    ColumnSpec("desired_expires", "int", nullable=False),
    ColumnSpec("flag", "int", nullable=False),
    ColumnSpec("etag", "varchar", nullable=False, length=128),
    ColumnSpec("tuple_id", "varchar", nullable=True, length=64),
    ColumnSpec("watcher_uri", "varchar", nullable=False, length=255),
    ColumnSpec("call_id", "varchar", nullable=False, length=255),
    ColumnSpec("to_tag", "varchar", nullable=False, length=128),
    ColumnSpec("from_tag", "varchar", nullable=False, length=128),
    ColumnSpec("cseq", "int", nullable=False),
    ColumnSpec("record_route", "text", nullable=True),
    ColumnSpec("contact", "varchar", nullable=False, length=255),
    ColumnSpec("remote_contact", "varchar", nullable=False, length=255),
    ColumnSpec("version", "int", nullable=False),
    ColumnSpec("extra_headers", "text", nullable=False),
    # --- pua's own, all nullable, appended after Kamailio's ---------------
    ColumnSpec("body", "bytes", nullable=True, kamailio=False),
    ColumnSpec("content_type", "varchar", nullable=True, length=255, kamailio=False),
    ColumnSpec("outbound_proxy", "text", nullable=True, kamailio=False),
    ColumnSpec("owner", "varchar", nullable=True, length=255, kamailio=False),
    ColumnSpec("lease_until", "bigint", nullable=True, kamailio=False),
    ColumnSpec("remote_target_requested", "text", nullable=True, kamailio=False),
    ColumnSpec("remote_cseq", "bigint", nullable=True, kamailio=False),
    ColumnSpec("state_json", "text", nullable=True, kamailio=False),
)

COLUMN_NAMES: Final = tuple(c.name for c in COLUMNS)
#: (name, Python type, NULL allowed) per column, for :meth:`StoredRecord.readable`
_QUICK: Final = tuple(
    (
        c.name,
        bytes if c.kind == "bytes" else int if c.kind not in {"varchar", "text"} else str,
        c.nullable or c.kind == "id",
    )
    for c in COLUMNS
)
KAMAILIO_COLUMNS: Final = tuple(c.name for c in COLUMNS if c.kamailio)
PUA_COLUMNS: Final = tuple(c.name for c in COLUMNS if not c.kamailio)


@dataclass(slots=True, kw_only=True)
class StoredRecord:
    """A publication (``watcher_uri == ''``) or a subscription dialog.

    Times are epoch seconds, as in Kamailio's rows.  ``id`` is ``None``
    until a store assigns one.
    """

    # --- Kamailio's columns (pua table v7) --------------------------------
    id: int | None = None
    pres_uri: str
    pres_id: str = ""
    event: int
    expires: int = 0
    desired_expires: int = 0
    flag: int = 0
    etag: str = ""
    tuple_id: str | None = ""
    watcher_uri: str = ""
    call_id: str = ""
    to_tag: str = ""
    from_tag: str = ""
    cseq: int = 0
    record_route: str | None = ""
    contact: str = ""
    remote_contact: str = ""
    version: int = 0
    extra_headers: str = ""
    # --- pua's own (NULL in rows Kamailio wrote) --------------------------
    #: the body last sent (publications), so that a refresh answered by 412
    #: can re-publish it
    body: bytes | None = None
    content_type: str | None = None
    #: the next hop asked for this record (Kamailio forgets it)
    outbound_proxy: str | None = None
    #: node id of the pua instance that owns the row; NULL: anyone's
    owner: str | None = None
    #: epoch seconds until which ``owner`` holds the row
    lease_until: int | None = None
    #: the URI the initial SUBSCRIBE was sent to (before any redirect)
    remote_target_requested: str | None = None
    #: the highest CSeq seen from the notifier
    remote_cseq: int | None = None
    #: a small JSON object for anything else (retry counters, ...)
    state_json: str | None = None

    # --- kinds --------------------------------------------------------------
    @property
    def is_subscription(self) -> bool:
        """A dialog row: Kamailio's test is a non-empty ``watcher_uri``."""
        return self.watcher_uri != ""

    @property
    def is_publication(self) -> bool:
        return self.watcher_uri == ""

    @property
    def is_temporary(self) -> bool:
        """A subscription whose dialog is not confirmed yet (no remote tag)."""
        return self.watcher_uri != "" and self.to_tag == ""

    # --- helpers --------------------------------------------------------------
    def copy(self, **changes: Any) -> StoredRecord:
        """A copy, with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def values(self) -> dict[str, Any]:
        """Column name -> value, every column, in physical order."""
        return {name: getattr(self, name) for name in COLUMN_NAMES}

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> StoredRecord:
        """The record of a row given as column name -> value; columns the
        mapping lacks (pua's, in a table not upgraded yet) are ``None``."""
        fields: dict[str, Any] = {name: values.get(name) for name in COLUMN_NAMES}
        return cls(**fields)

    def state(self) -> dict[str, Any]:
        """``state_json`` decoded (``{}`` when NULL)."""
        if self.state_json is None:
            return {}
        value = json.loads(self.state_json)
        if not isinstance(value, dict):
            raise ValueError("state_json is not a JSON object")
        return value

    def set_state(self, state: dict[str, Any] | None) -> None:
        """Encode ``state`` into ``state_json`` (``None`` or ``{}``: NULL)."""
        self.state_json = (
            json.dumps(state, separators=(",", ":"), sort_keys=True) if state else None
        )

    def readable(self) -> bool:
        """A quick yes for a row read back from the table: every value has
        its column's type (NULL only where allowed), ``event`` is a known
        flag, and nothing needs a closer look (``state_json``).  When this
        says no, :meth:`problems` tells why, or finds nothing wrong."""
        for name, kind, nullable in _QUICK:
            value = getattr(self, name)
            if value is None:
                if not nullable:
                    return False
            elif type(value) is not kind:
                return False
        return (
            self.event in KNOWN_EVENTS
            and self.state_json is None
            and (self.body is None or self.content_type is not None)
        )

    def problems(self) -> list[str]:
        """Why this record cannot be a row of the table (``[]``: it can).

        Checks every column's type, NULL where the column is NOT NULL,
        VARCHAR lengths, 32-bit ranges of the INT columns, NUL characters
        (PostgreSQL refuses them), ``event`` being exactly one known event
        flag, ``state_json`` being a JSON object and a ``body`` having a
        ``content_type``.
        """
        found: list[str] = []
        for spec in COLUMNS:
            value = getattr(self, spec.name)
            if value is None:
                if not spec.nullable and spec.kind != "id":
                    found.append(f"{spec.name} is NULL")
                continue
            problem = _check(spec, value)
            if problem:
                found.append(f"{spec.name} {problem}")
        event = self.event
        if isinstance(event, int) and not isinstance(event, bool) and event not in KNOWN_EVENTS:
            found.append(f"event {self.event} is not one known event flag")
        if isinstance(self.state_json, str):
            try:
                decoded = json.loads(self.state_json)
            except ValueError:
                found.append("state_json is not JSON")
            else:
                if not isinstance(decoded, dict):
                    found.append("state_json is not a JSON object")
        if self.body is not None and self.content_type is None:
            found.append("body has no content_type")
        return found


def _check(spec: ColumnSpec, value: object) -> str | None:
    kind = spec.kind
    if kind in ("id", "int", "bigint"):
        if not isinstance(value, int) or isinstance(value, bool):
            return f"is {type(value).__name__}, not an integer"
        if kind == "bigint":
            low, high = _INT64_MIN, _INT64_MAX
        elif kind == "id":
            low, high = 1, INT32_MAX
        else:
            low, high = INT32_MIN, INT32_MAX
        if not low <= value <= high:
            return f"{value} is out of range"
        return None
    if kind == "bytes":
        if not isinstance(value, bytes):
            return f"is {type(value).__name__}, not bytes"
        return None
    if not isinstance(value, str):
        return f"is {type(value).__name__}, not a string"
    if spec.length is not None and len(value) > spec.length:
        return f"is longer than {spec.length} characters"
    if "\x00" in value:
        return "contains a NUL character"
    return None
