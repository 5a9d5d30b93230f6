"""The ticket table in SQLite: its schema and migrations, and tickets to rows and back.

Every field is stored: tuples and dicts as JSON, datetimes as ISO 8601 with their offset, so
a ticket read back equals the one written. The start time is also kept as UTC microseconds,
the form that sorts and filters by instant.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

from ivr.tickets.errors import TicketStoreError
from ivr.tickets.model import Disposition, Ticket, ticket_id_for
from ivr.tickets.store import callback_reason_for

SCHEMA_VERSION = 3

# One script per schema version; version N is reached by running scripts[N - 1].
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tickets (
        seq               INTEGER PRIMARY KEY,
        ticket_id         TEXT NOT NULL UNIQUE,
        linkedid          TEXT NOT NULL UNIQUE,
        uniqueid          TEXT NOT NULL,
        caller_number     TEXT NOT NULL,
        caller_name       TEXT NOT NULL,
        dialled_line      TEXT NOT NULL,
        source_label      TEXT NOT NULL,
        ivr_path          TEXT NOT NULL,  -- JSON array
        request_kind      TEXT NOT NULL,
        urgency           TEXT NOT NULL,
        sla_due           TEXT,           -- ISO 8601 with offset, like every *_at column
        route_kind        TEXT NOT NULL,
        route_target      TEXT NOT NULL,
        disposition       TEXT NOT NULL,
        started_at        TEXT NOT NULL,
        -- ISO strings with different offsets do not sort by instant; this does.
        started_us        INTEGER NOT NULL,  -- UTC microseconds since the epoch
        ended_at          TEXT NOT NULL,
        emergency_service TEXT NOT NULL,
        emergency_target  TEXT NOT NULL,
        emergency_result  TEXT NOT NULL,
        recording         TEXT NOT NULL,
        node              TEXT NOT NULL,
        language          TEXT NOT NULL,
        extra             TEXT NOT NULL,  -- JSON object
        outbox_state      TEXT NOT NULL DEFAULT 'pending'
                          CHECK (outbox_state IN ('pending', 'delivered', 'dead')),
        attempts          INTEGER NOT NULL DEFAULT 0,
        next_attempt_us   INTEGER NOT NULL  -- UTC microseconds since the epoch
    ) STRICT;
    CREATE INDEX tickets_by_start ON tickets (started_us);
    CREATE INDEX tickets_by_line ON tickets (dialled_line, started_us);
    CREATE INDEX tickets_outbox_due ON tickets (next_attempt_us) WHERE outbox_state = 'pending';
    """,
    # 2: delivery bookkeeping (claims, the receiver's reference, the last error), the post-call
    # survey, and callbacks with their log.
    """
    ALTER TABLE tickets ADD COLUMN satisfaction TEXT NOT NULL DEFAULT '';
    ALTER TABLE tickets ADD COLUMN delivery_ref TEXT NOT NULL DEFAULT '';
    ALTER TABLE tickets ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
    -- 1 while an attempt was started whose outcome nobody recorded (a crash, a timeout).
    ALTER TABLE tickets ADD COLUMN in_doubt INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tickets ADD COLUMN claim_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE tickets ADD COLUMN callback_state TEXT NOT NULL DEFAULT ''
        CHECK (callback_state IN ('', 'wanted', 'done', 'given_up'));
    ALTER TABLE tickets ADD COLUMN callback_reason TEXT NOT NULL DEFAULT '';
    ALTER TABLE tickets ADD COLUMN callback_attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tickets ADD COLUMN next_callback_us INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX tickets_callbacks_due ON tickets (next_callback_us)
        WHERE callback_state = 'wanted';
    CREATE TABLE callback_log (
        ticket_id TEXT NOT NULL,
        attempt   INTEGER NOT NULL,
        at        TEXT NOT NULL,
        result    TEXT NOT NULL,
        detail    TEXT NOT NULL,
        PRIMARY KEY (ticket_id, attempt)
    ) STRICT;
    """,
    # 3: provisional tickets. A call's ticket is first written as ``in_progress`` when the call
    # starts, by one service instance; if that instance dies, it (or, once the row is stale,
    # any instance) finalises the row when its store starts again.
    """
    ALTER TABLE tickets ADD COLUMN instance TEXT NOT NULL DEFAULT '';
    CREATE INDEX tickets_in_progress ON tickets (instance) WHERE disposition = 'in_progress';
    """,
)

TICKET_COLUMNS = (
    "ticket_id", "linkedid", "uniqueid", "caller_number", "caller_name", "dialled_line",
    "source_label", "ivr_path", "request_kind", "urgency", "sla_due", "route_kind",
    "route_target", "disposition", "started_at", "ended_at", "emergency_service",
    "emergency_target", "emergency_result", "recording", "node", "language", "extra",
    "satisfaction",
)  # fmt: skip
INSERT_COLUMNS = (
    *TICKET_COLUMNS, "started_us", "next_attempt_us", "callback_state", "callback_reason",
    "next_callback_us", "instance",
)  # fmt: skip
IN_PROGRESS = str(Disposition.IN_PROGRESS)
# A final ticket replaces its call's provisional row, and nothing else: a final row is never
# replaced (idempotence on Linkedid), and a provisional row never replaces anything.
UPSERT_GUARD = (
    f"WHERE tickets.disposition = '{IN_PROGRESS}' AND excluded.disposition <> '{IN_PROGRESS}'"
)
UPSERT_SET = ", ".join(
    f"{name} = excluded.{name}" for name in INSERT_COLUMNS if name not in ("ticket_id", "linkedid")
)
INSERT = (
    f"INSERT INTO tickets ({', '.join(INSERT_COLUMNS)}) "
    f"VALUES ({', '.join(':' + name for name in INSERT_COLUMNS)}) "
    f"ON CONFLICT (linkedid) DO UPDATE SET {UPSERT_SET} {UPSERT_GUARD}"
)
# Provisional rows left by a dead process: ours (same instance) or anyone's once stale. They
# become final service errors (the dialplan fallback took the caller) and due for delivery.
RECOVERED_NOTE = "service_restart"
RECOVER = (
    "UPDATE tickets SET disposition = :disposition, ended_at = :ended_at, "
    "next_attempt_us = :now_us, extra = json_set(extra, '$.recovered_after', :note) "
    f"WHERE disposition = '{IN_PROGRESS}' AND (instance = :instance OR started_us < :stale_us)"
)
SELECT = f"SELECT {', '.join(TICKET_COLUMNS)} FROM tickets"

_DECODED = frozenset({"ivr_path", "extra", "disposition", "started_at", "ended_at", "sla_due"})
_TEXT_COLUMNS = tuple(name for name in TICKET_COLUMNS if name not in _DECODED)
Row = dict[str, str | int | None]


def schema_version(conn: sqlite3.Connection) -> int:
    """The file's schema version; one newer than this code knows is refused."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"ticket database schema {version} is newer than this service ({SCHEMA_VERSION})"
        )
    return version


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """Bring the schema from ``version`` to ``SCHEMA_VERSION``, one version per transaction."""
    for target in range(version + 1, SCHEMA_VERSION + 1):
        try:
            script = MIGRATIONS[target - 1]
            conn.executescript(
                f"BEGIN IMMEDIATE; {script} PRAGMA user_version = {target}; COMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def utc_us(moment: datetime, name: str) -> int:
    """Microseconds since the epoch, UTC: the sortable form of an aware datetime."""
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode(ticket: Ticket) -> Row:
    """The row for ``ticket``; a ticket that cannot be stored faithfully is refused here."""
    if ticket.ticket_id != ticket_id_for(ticket.linkedid):
        raise TicketStoreError(
            f"ticket id {ticket.ticket_id!r} does not belong to Linkedid {ticket.linkedid!r}"
        )
    for name in ("started_at", "ended_at", "sla_due"):
        moment = getattr(ticket, name)
        if moment is not None and moment.utcoffset() is None:
            raise TicketStoreError(f"ticket {ticket.ticket_id}: {name} is not timezone-aware")
    row: Row = {name: getattr(ticket, name) for name in TICKET_COLUMNS}
    # One wrongly typed field would otherwise fail the whole batch it is committed with.
    for name in _TEXT_COLUMNS:
        if not isinstance(row[name], str):
            raise TicketStoreError(f"ticket {ticket.ticket_id}: {name} is not a string")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in ticket.extra.items()):
        raise TicketStoreError(f"ticket {ticket.ticket_id}: extra must map strings to strings")
    row["ivr_path"] = json.dumps(list(ticket.ivr_path), ensure_ascii=False)
    row["extra"] = json.dumps(ticket.extra, ensure_ascii=False, sort_keys=True)
    row["disposition"] = str(ticket.disposition)
    row["started_at"] = ticket.started_at.isoformat()
    row["ended_at"] = ticket.ended_at.isoformat()
    row["sla_due"] = ticket.sla_due.isoformat() if ticket.sla_due is not None else None
    row["started_us"] = utc_us(ticket.started_at, "started_at")
    row["next_attempt_us"] = utc_us(datetime.now(UTC), "now")
    reason = callback_reason_for(ticket.disposition)
    row["callback_state"] = "wanted" if reason else ""
    row["callback_reason"] = reason
    row["next_callback_us"] = 0
    row["instance"] = ""  # the store that writes the row names itself here
    return row


def decode(row: sqlite3.Row) -> Ticket:
    """The ticket stored in ``row``, equal to the one that was submitted."""
    sla_due = row["sla_due"]
    return Ticket(
        **{name: row[name] for name in TICKET_COLUMNS if name not in _DECODED},
        ivr_path=tuple(json.loads(row["ivr_path"])),
        extra=json.loads(row["extra"]),
        disposition=Disposition(row["disposition"]),
        started_at=datetime.fromisoformat(row["started_at"]),
        ended_at=datetime.fromisoformat(row["ended_at"]),
        sla_due=datetime.fromisoformat(sla_due) if sla_due is not None else None,
    )
