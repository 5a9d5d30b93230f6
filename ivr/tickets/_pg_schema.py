"""The ticket tables in PostgreSQL: their schema, migrations and statements.

Rows hold the same values as in SQLite (``_rows.encode``/``decode``): ISO 8601 text that keeps
each time's offset, plus UTC microseconds to sort and filter by instant. Each backend keeps its
own migration scripts, written out in full: a migration is history and must never change
because a shared definition did.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ivr.tickets._rows import IN_PROGRESS, INSERT_COLUMNS, UPSERT_GUARD, UPSERT_SET

SCHEMA_VERSION = 2

# Several service instances may start at once: migrations run under this advisory lock.
MIGRATION_LOCK = 0x12345_0006

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tickets (
        seq               BIGSERIAL PRIMARY KEY,
        ticket_id         TEXT NOT NULL UNIQUE,
        linkedid          TEXT NOT NULL UNIQUE,
        uniqueid          TEXT NOT NULL,
        caller_number     TEXT NOT NULL,
        caller_name       TEXT NOT NULL,
        dialled_line      TEXT NOT NULL,
        source_label      TEXT NOT NULL,
        ivr_path          TEXT NOT NULL,
        request_kind      TEXT NOT NULL,
        urgency           TEXT NOT NULL,
        sla_due           TEXT,
        route_kind        TEXT NOT NULL,
        route_target      TEXT NOT NULL,
        disposition       TEXT NOT NULL,
        started_at        TEXT NOT NULL,
        started_us        BIGINT NOT NULL,
        ended_at          TEXT NOT NULL,
        emergency_service TEXT NOT NULL,
        emergency_target  TEXT NOT NULL,
        emergency_result  TEXT NOT NULL,
        recording         TEXT NOT NULL,
        node              TEXT NOT NULL,
        language          TEXT NOT NULL,
        extra             TEXT NOT NULL,
        satisfaction      TEXT NOT NULL DEFAULT '',
        outbox_state      TEXT NOT NULL DEFAULT 'pending'
                          CHECK (outbox_state IN ('pending', 'delivered', 'dead')),
        attempts          INTEGER NOT NULL DEFAULT 0,
        next_attempt_us   BIGINT NOT NULL,
        delivery_ref      TEXT NOT NULL DEFAULT '',
        last_error        TEXT NOT NULL DEFAULT '',
        in_doubt          INTEGER NOT NULL DEFAULT 0,
        claim_id          TEXT NOT NULL DEFAULT '',
        callback_state    TEXT NOT NULL DEFAULT ''
                          CHECK (callback_state IN ('', 'wanted', 'done', 'given_up')),
        callback_reason   TEXT NOT NULL DEFAULT '',
        callback_attempts INTEGER NOT NULL DEFAULT 0,
        next_callback_us  BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX tickets_by_start ON tickets (started_us);
    CREATE INDEX tickets_by_line ON tickets (dialled_line, started_us);
    CREATE INDEX tickets_outbox_due ON tickets (next_attempt_us) WHERE outbox_state = 'pending';
    CREATE INDEX tickets_callbacks_due ON tickets (next_callback_us)
        WHERE callback_state = 'wanted';
    CREATE TABLE callback_log (
        ticket_id TEXT NOT NULL,
        attempt   INTEGER NOT NULL,
        at        TEXT NOT NULL,
        result    TEXT NOT NULL,
        detail    TEXT NOT NULL,
        PRIMARY KEY (ticket_id, attempt)
    );
    """,
    # 2: provisional tickets (see the SQLite schema's version 3).
    f"""
    ALTER TABLE tickets ADD COLUMN instance TEXT NOT NULL DEFAULT '';
    CREATE INDEX tickets_in_progress ON tickets (instance) WHERE disposition = '{IN_PROGRESS}';
    """,
)

INSERT = (
    f"INSERT INTO tickets ({', '.join(INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('%s' for _ in INSERT_COLUMNS)}) "
    f"ON CONFLICT (linkedid) DO UPDATE SET {UPSERT_SET} {UPSERT_GUARD} RETURNING linkedid"
)
RECOVER = (
    "UPDATE tickets SET disposition = %(disposition)s, ended_at = %(ended_at)s, "
    "next_attempt_us = %(now_us)s, extra = (extra::jsonb || "
    "jsonb_build_object('recovered_after', %(note)s::text))::text "
    f"WHERE disposition = '{IN_PROGRESS}' "
    "AND (instance = %(instance)s OR started_us < %(stale_us)s)"
)


async def migrate(conn: psycopg.AsyncConnection[Any]) -> None:
    """Create or bring the tables up to ``SCHEMA_VERSION``; one instance at a time."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS ticket_schema (version INTEGER NOT NULL)")
        cur = await conn.execute("SELECT max(version) FROM ticket_schema")
        found = await cur.fetchone()
        version = int(found[0]) if found and found[0] is not None else 0
        if version > SCHEMA_VERSION:
            raise psycopg.DataError(
                f"ticket schema {version} is newer than this service ({SCHEMA_VERSION})"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            await conn.execute(MIGRATIONS[target - 1])
            await conn.execute("INSERT INTO ticket_schema (version) VALUES (%s)", (target,))
