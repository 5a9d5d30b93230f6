"""A ticket store on PostgreSQL: for centres that outgrow one machine, and for several service
instances sharing one store.

The same contract as the SQLite store (``TicketStore``, ``TicketOutbox``, ``AfterCallStore``)
and the same group commit: a writer task takes everything submitted (up to ``batch_max``) and
inserts it in one transaction, so a burst of calls shares one commit. Delivery claims use
``SELECT ... FOR UPDATE SKIP LOCKED``: workers in different processes lease disjoint tickets
without waiting for each other. Driver: psycopg 3 (async).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import psycopg
import structlog
from psycopg.rows import dict_row

from ivr.tickets._group_commit import GroupCommitStore
from ivr.tickets._pg_schema import INSERT, RECOVER, SCHEMA_VERSION, migrate
from ivr.tickets._queries import TicketQueries
from ivr.tickets._rows import (
    IN_PROGRESS,
    TICKET_COLUMNS,
    decode,
    encode_batch,
    outcomes,
    recover_params,
    utc_us,
)
from ivr.tickets.errors import TicketStoreError
from ivr.tickets.model import Disposition, Ticket
from ivr.tickets.store import CallbackAttempt, Claim

__all__ = ["SCHEMA_VERSION", "PostgresTicketStore"]

_log = structlog.get_logger("ivr.tickets")


class PostgresTicketStore(GroupCommitStore, TicketQueries):
    """Tickets in PostgreSQL at ``conninfo`` (a libpq connection string or URL).

    Two connections: one for the writer's group commits, one (serialised) for reads, outbox
    updates and after-call writes. A connection that fails is dropped and opened again on next
    use; ``writable`` says whether the last write succeeded. ``batch_max`` and ``max_delay_s``
    shape group commits as in ``SqliteTicketStore``.

    ``instance`` names this service instance in its provisional (``in_progress``) tickets:
    instances sharing one database must have distinct names, since at its first connection a
    store finalises its own instance's provisional rows (left by a process that died) and
    anyone's older than ``stale_after_s``.
    """

    PARAM: ClassVar[str] = "%s"

    def __init__(
        self,
        conninfo: str,
        *,
        batch_max: int = 512,
        max_delay_s: float = 0.005,
        connect_timeout_s: float = 5.0,
        instance: str | None = None,
        stale_after_s: float = 6 * 3600.0,
    ) -> None:
        super().__init__(
            failure=psycopg.Error, instance=instance, stale_after_s=stale_after_s,
            batch_max=batch_max, max_delay_s=max_delay_s, task_name="tickets-writer-pg",
            log_fields={"backend": "postgres"},
        )  # fmt: skip
        self._conninfo = conninfo
        self._connect_timeout_s = connect_timeout_s
        self._write_conn: psycopg.AsyncConnection[Any] | None = None
        self._other: psycopg.AsyncConnection[Any] | None = None
        self._other_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def _open(self) -> None:
        await self._writer_conn()

    async def _release(self) -> None:
        async with self._other_lock:
            for conn in (self._write_conn, self._other):
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        await conn.close()
            self._write_conn = self._other = None

    # -- writing ---------------------------------------------------------------------------

    async def _insert(self, tickets: list[Ticket]) -> list[bool | TicketStoreError]:
        rows, errors = encode_batch(tickets, self._instance)
        if not rows:
            return outcomes(errors, [])
        try:
            conn = await self._writer_conn()
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(INSERT, rows, returning=True)
                inserted: list[bool] = []
                while True:
                    inserted.append(await cur.fetchone() is not None)
                    if not cur.nextset():
                        break
        except psycopg.Error:
            await self._drop_write_conn()  # the next batch starts from a fresh connection
            raise
        return outcomes(errors, inserted)

    # -- connections -----------------------------------------------------------------------

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=max(1, round(self._connect_timeout_s))
        )
        try:
            await migrate(conn)
        except psycopg.Error:
            await conn.close()
            raise
        return conn

    async def _writer_conn(self) -> psycopg.AsyncConnection[Any]:
        if self._write_conn is None or self._write_conn.closed:
            conn = await self._connect()
            if self._recovered is None:
                # Once per store, before any call of this process writes a provisional row.
                try:
                    self._recovered = await self._recover(conn)
                except psycopg.Error:
                    await conn.close()
                    raise
            self._write_conn = conn
        return self._write_conn

    async def _recover(self, conn: psycopg.AsyncConnection[Any]) -> int:
        cur = await conn.execute(RECOVER, recover_params(self._instance, self._stale_after_s))
        found = max(cur.rowcount, 0)
        if found:
            _log.warning(
                "tickets.recovered",
                count=found,
                instance=self._instance,
                disposition=str(Disposition.SERVICE_ERROR),
                backend="postgres",
            )
        return found

    async def _drop_write_conn(self) -> None:
        conn, self._write_conn = self._write_conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _run(
        self, sql: str, params: Sequence[object], *, write: bool
    ) -> tuple[list[dict[str, Any]], int]:
        """One statement on the shared connection: the rows it returned and its rowcount.

        Errors become ``TicketStoreError``; a ``write`` also records them in ``writable``.
        """
        if self._writer.closed:
            raise TicketStoreError("the ticket store is closed")
        async with self._other_lock:
            try:
                if self._other is None or self._other.closed:
                    self._other = await self._connect()
                async with self._other.cursor(row_factory=dict_row) as cur:
                    await cur.execute(sql, params)
                    rows = await cur.fetchall() if cur.description else []
                    count = cur.rowcount
            except psycopg.Error as exc:
                conn, self._other = self._other, None
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        await conn.close()
                if write:
                    self._writer.set_writable(False, exc)
                raise TicketStoreError(f"ticket store (postgres): {exc}") from exc
        if write:
            self._writer.set_writable(True)
        return rows, count

    async def _fetch(self, sql: str, params: Sequence[object]) -> list[dict[str, Any]]:
        rows, _ = await self._run(sql, params, write=False)
        return rows

    async def _update(self, sql: str, params: Sequence[object]) -> int:
        _, count = await self._run(sql, params, write=True)
        return count

    async def _update_returning(self, sql: str, params: Sequence[object]) -> list[dict[str, Any]]:
        rows, _ = await self._run(sql, params, write=True)
        return rows

    # -- outbox ----------------------------------------------------------------------------

    async def claim_for_delivery(
        self, limit: int, *, lease_s: float, now: datetime | None = None
    ) -> list[Claim]:
        """Lease due tickets; rows leased by another instance are skipped, not waited for."""
        now_us = utc_us(now or datetime.now(UTC), "now")
        claim_id = uuid.uuid4().hex
        # The CTE reads the rows as they were before the UPDATE: in_doubt says whether an
        # earlier attempt is unsettled, not this claim.
        rows = await self._update_returning(
            "WITH due AS ("
            f"  SELECT seq, attempts, in_doubt AS was_in_doubt FROM tickets"
            "   WHERE outbox_state = 'pending' AND next_attempt_us <= %s"
            f"  AND disposition <> '{IN_PROGRESS}'"
            "   ORDER BY next_attempt_us, seq LIMIT %s FOR UPDATE SKIP LOCKED) "
            "UPDATE tickets t SET in_doubt = 1, claim_id = %s, next_attempt_us = %s "
            f"FROM due WHERE t.seq = due.seq RETURNING "
            f"{', '.join('t.' + c for c in TICKET_COLUMNS)}, due.attempts, "
            "due.was_in_doubt, t.delivery_ref, t.seq",
            (now_us, limit, claim_id, now_us + round(lease_s * 1_000_000)),
        )
        rows = sorted(rows, key=lambda r: int(r["seq"]))
        return [
            Claim(decode(row), claim_id, int(row["attempts"]),
                  bool(row["was_in_doubt"]), str(row["delivery_ref"]))
            for row in rows
        ]  # fmt: skip

    # -- after the call --------------------------------------------------------------------

    async def record_callback_attempt(
        self, attempt: CallbackAttempt, *, retry_at: datetime | None, done: bool
    ) -> int:
        """Log one callback attempt and move the callback on; see ``AfterCallStore``."""
        state = "done" if done else ("wanted" if retry_at is not None else "given_up")
        next_us = utc_us(retry_at, "retry_at") if retry_at is not None and not done else 0
        rows = await self._update_returning(
            "WITH t AS (UPDATE tickets SET callback_attempts = callback_attempts + 1, "
            "callback_state = %s, next_callback_us = %s WHERE ticket_id = %s "
            "RETURNING ticket_id, callback_attempts) "
            "INSERT INTO callback_log (ticket_id, attempt, at, result, detail) "
            "SELECT ticket_id, callback_attempts, %s, %s, %s FROM t RETURNING attempt",
            (state, next_us, attempt.ticket_id, attempt.at.isoformat(), attempt.result,
             attempt.detail),
        )  # fmt: skip
        if not rows:
            raise TicketStoreError(f"no ticket {attempt.ticket_id}")
        return int(rows[0]["attempt"])
