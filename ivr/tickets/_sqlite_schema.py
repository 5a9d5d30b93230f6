"""The ticket table in SQLite: its schema, migrations and statements.

Rows are built and read by ``_rows`` (shared with PostgreSQL).
"""

from __future__ import annotations

import sqlite3

from ivr.tickets._rows import IN_PROGRESS, INSERT_COLUMNS, UPSERT_GUARD, UPSERT_SET

SCHEMA_VERSION = 4


def _one_of(column: str, *values: str) -> str:
    """``column = 'a' OR column = 'b' ...``: a CHECK that costs SQLite no temporary b-tree."""
    return " OR ".join(f"{column} = '{value}'" for value in values)


_OUTBOX_CHECK = _one_of("outbox_state", "pending", "delivered", "dead")
_CALLBACK_CHECK = _one_of("callback_state", "", "wanted", "done", "given_up")


# Every column of the table at version 3, in its order: the rebuild to 4 copies them all.
_V4_COLUMNS = (
    "seq, ticket_id, linkedid, uniqueid, caller_number, caller_name, dialled_line, "
    "source_label, ivr_path, request_kind, urgency, sla_due, route_kind, route_target, "
    "disposition, started_at, started_us, ended_at, emergency_service, emergency_target, "
    "emergency_result, recording, node, language, extra, outbox_state, attempts, "
    "next_attempt_us, satisfaction, delivery_ref, last_error, in_doubt, claim_id, "
    "callback_state, callback_reason, callback_attempts, next_callback_us, instance"
)

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
    # 4: the same table, its two CHECKs written with OR instead of IN. SQLite checks
    # ``x IN ('a', 'b', 'c')`` by building a temporary b-tree of the list, for every row
    # written: that was half of what writing a ticket cost. A CHECK cannot be altered, so the
    # table is rebuilt (SQLite's documented way: new table, copy, drop, rename, indexes).
    f"""
    CREATE TABLE tickets_v4 (
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
        outbox_state      TEXT NOT NULL DEFAULT 'pending' CHECK ({_OUTBOX_CHECK}),
        attempts          INTEGER NOT NULL DEFAULT 0,
        next_attempt_us   INTEGER NOT NULL,  -- UTC microseconds since the epoch
        satisfaction      TEXT NOT NULL DEFAULT '',
        delivery_ref      TEXT NOT NULL DEFAULT '',
        last_error        TEXT NOT NULL DEFAULT '',
        -- 1 while an attempt was started whose outcome nobody recorded (a crash, a timeout).
        in_doubt          INTEGER NOT NULL DEFAULT 0,
        claim_id          TEXT NOT NULL DEFAULT '',
        callback_state    TEXT NOT NULL DEFAULT '' CHECK ({_CALLBACK_CHECK}),
        callback_reason   TEXT NOT NULL DEFAULT '',
        callback_attempts INTEGER NOT NULL DEFAULT 0,
        next_callback_us  INTEGER NOT NULL DEFAULT 0,
        instance          TEXT NOT NULL DEFAULT ''
    ) STRICT;
    INSERT INTO tickets_v4 ({_V4_COLUMNS}) SELECT {_V4_COLUMNS} FROM tickets;
    DROP TABLE tickets;
    ALTER TABLE tickets_v4 RENAME TO tickets;
    CREATE INDEX tickets_by_start ON tickets (started_us);
    CREATE INDEX tickets_by_line ON tickets (dialled_line, started_us);
    CREATE INDEX tickets_outbox_due ON tickets (next_attempt_us) WHERE outbox_state = 'pending';
    CREATE INDEX tickets_callbacks_due ON tickets (next_callback_us)
        WHERE callback_state = 'wanted';
    CREATE INDEX tickets_in_progress ON tickets (instance) WHERE disposition = 'in_progress';
    """,
)

INSERT = (
    f"INSERT INTO tickets ({', '.join(INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in INSERT_COLUMNS)}) "
    f"ON CONFLICT (linkedid) DO UPDATE SET {UPSERT_SET} {UPSERT_GUARD}"
)
RECOVER = (
    "UPDATE tickets SET disposition = :disposition, ended_at = :ended_at, "
    "next_attempt_us = :now_us, extra = json_set(extra, '$.recovered_after', :note) "
    f"WHERE disposition = '{IN_PROGRESS}' AND (instance = :instance OR started_us < :stale_us)"
)


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
            conn.executescript(f"BEGIN IMMEDIATE; {script} PRAGMA user_version = {target}; COMMIT;")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
