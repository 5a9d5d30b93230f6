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
import socket
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog
from psycopg.rows import dict_row

from ivr.tickets._pg_schema import (
    COLUMNS,
    INSERT,
    MIGRATION_LOCK,
    MIGRATIONS,
    RECOVER,
    SCHEMA_VERSION,
    SELECT,
)
from ivr.tickets._sqlite_schema import IN_PROGRESS, RECOVERED_NOTE, Row, decode, encode, utc_us
from ivr.tickets.errors import TicketStoreError
from ivr.tickets.model import Disposition, Satisfaction, Ticket
from ivr.tickets.store import (
    CallbackAttempt,
    CallbackDue,
    CallbackReason,
    Claim,
    OutboxCounts,
    OutboxState,
)

__all__ = ["SCHEMA_VERSION", "PostgresTicketStore"]

_log = structlog.get_logger("ivr.tickets")


@dataclass(slots=True)
class _Queued:
    row: Row
    future: asyncio.Future[bool]


class PostgresTicketStore:
    """Tickets in PostgreSQL at ``conninfo`` (a libpq connection string or URL).

    Two connections: one for the writer's group commits, one (serialised) for reads, outbox
    updates and after-call writes. A connection that fails is dropped and opened again on next
    use; ``writable`` says whether the last write succeeded.

    ``instance`` names this service instance in its provisional (``in_progress``) tickets:
    instances sharing one database must have distinct names, since at its first connection a
    store finalises its own instance's provisional rows (left by a process that died) and
    anyone's older than ``stale_after_s``.
    """

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
        if batch_max < 1:
            raise ValueError("batch_max must be at least 1")
        if max_delay_s < 0 or stale_after_s < 0:
            raise ValueError("delays must not be negative")
        self._conninfo = conninfo
        self._instance = socket.gethostname() if instance is None else instance
        self._stale_after_s = stale_after_s
        self._recovered: int | None = None
        self._batch_max = batch_max
        self._max_delay_s = max_delay_s
        self._connect_timeout_s = connect_timeout_s
        self._queue: deque[_Queued] = deque()
        self._wakeup = asyncio.Event()
        self._batch_full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._in_flight = 0
        self._last_submitted: asyncio.Future[bool] | None = None
        self._commits = 0
        self._writable = True
        self._commit_listeners: list[Callable[[], None]] = []
        self._writer: psycopg.AsyncConnection[Any] | None = None
        self._other: psycopg.AsyncConnection[Any] | None = None
        self._other_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, create or migrate the tables, and start the writer task.

        A server that cannot be reached does not stop the service: ``writable`` turns False and
        every batch tries again.
        """
        if self._task is not None or self._closed:
            raise TicketStoreError("a ticket store can be started once")
        try:
            await self._writer_conn()
        except psycopg.Error as exc:
            self._set_writable(False, exc)
        self._task = asyncio.create_task(self._write_loop(), name="tickets-writer-pg")

    async def close(self) -> None:
        """Commit everything already submitted, then close the connections."""
        if self._closed:
            return
        self._closed = self._closing = True
        self._wakeup.set()
        self._batch_full.set()
        try:
            if self._task is not None:
                await self._task
        finally:
            async with self._other_lock:
                for conn in (self._writer, self._other):
                    if conn is not None:
                        with contextlib.suppress(psycopg.Error):
                            await conn.close()
                self._writer = self._other = None

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after each commit that wrote a new ticket (wakes the outbox)."""
        self._commit_listeners.append(listener)

    # -- writing ---------------------------------------------------------------------------

    def submit(self, ticket: Ticket) -> asyncio.Future[bool]:
        """Queue ``ticket``; see ``TicketStore.submit``. Never raises, never waits."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._task is None or self._closing or self._task.done():
            future.set_exception(TicketStoreError("the ticket store is not running"))
            return future
        try:
            row = encode(ticket)
        except TicketStoreError as exc:
            future.set_exception(exc)
            return future
        row["instance"] = self._instance
        self._queue.append(_Queued(row, future))
        self._last_submitted = future
        self._wakeup.set()
        if len(self._queue) >= self._batch_max:
            self._batch_full.set()
        return future

    async def flush(self) -> None:
        """Wait until every ticket submitted so far is committed or has failed."""
        last = self._last_submitted
        if last is not None:
            await asyncio.wait([last])

    @property
    def pending(self) -> int:
        """Tickets submitted but not yet committed (queued or being written)."""
        return len(self._queue) + self._in_flight

    @property
    def writable(self) -> bool:
        """Whether the last write succeeded."""
        return self._writable

    @property
    def commits(self) -> int:
        """Transactions committed so far (one per batch of tickets)."""
        return self._commits

    @property
    def recovered(self) -> int | None:
        """Provisional tickets of a dead process finalised at start; None until connected."""
        return self._recovered

    async def _write_loop(self) -> None:
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                if len(self._queue) < self._batch_max and self._max_delay_s and not self._closing:
                    self._batch_full.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._batch_full.wait(), self._max_delay_s)
                size = min(len(self._queue), self._batch_max)
                await self._commit([self._queue.popleft() for _ in range(size)])
        finally:
            while self._queue:
                _fail(self._queue.popleft().future, TicketStoreError("the ticket store stopped"))

    async def _commit(self, batch: list[_Queued]) -> None:
        self._in_flight = len(batch)
        try:
            inserted = await self._insert([item.row for item in batch])
        except psycopg.Error as exc:
            self._set_writable(False, exc)
            await self._drop_writer()
            for item in batch:
                error = TicketStoreError(f"ticket {item.row['ticket_id']} not written: {exc}")
                error.__cause__ = exc
                _fail(item.future, error)
        else:
            self._commits += 1
            self._set_writable(True)
            for item, was_new in zip(batch, inserted, strict=True):
                if not item.future.done():
                    item.future.set_result(was_new)
            if any(new and item.row["disposition"] != IN_PROGRESS
                   for item, new in zip(batch, inserted, strict=True)):
                for listener in self._commit_listeners:
                    listener()
        finally:
            self._in_flight = 0
            for item in batch:
                _fail(item.future, TicketStoreError("the ticket store stopped mid-write"))

    async def _insert(self, rows: list[Row]) -> list[bool]:
        conn = await self._writer_conn()
        async with conn.transaction(), conn.cursor() as cur:
            await cur.executemany(INSERT, rows, returning=True)
            inserted: list[bool] = []
            while True:
                inserted.append(await cur.fetchone() is not None)
                if not cur.nextset():
                    break
        return inserted

    def _set_writable(self, writable: bool, error: Exception | None = None) -> None:
        if writable != self._writable:
            if writable:
                _log.info("ticket_store_writable", backend="postgres")
            else:
                _log.error("ticket_store_failing", backend="postgres", error=str(error))
        self._writable = writable

    # -- connections -----------------------------------------------------------------------

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=max(1, round(self._connect_timeout_s))
        )
        try:
            await _migrate(conn)
        except psycopg.Error:
            await conn.close()
            raise
        return conn

    async def _writer_conn(self) -> psycopg.AsyncConnection[Any]:
        if self._writer is None or self._writer.closed:
            conn = await self._connect()
            if self._recovered is None:
                # Once per store, before any call of this process writes a provisional row.
                try:
                    self._recovered = await self._recover(conn)
                except psycopg.Error:
                    await conn.close()
                    raise
            self._writer = conn
        return self._writer

    async def _recover(self, conn: psycopg.AsyncConnection[Any]) -> int:
        now = datetime.now(UTC)
        now_us = utc_us(now, "now")
        cur = await conn.execute(RECOVER, {
            "disposition": str(Disposition.SERVICE_ERROR), "ended_at": now.isoformat(),
            "now_us": now_us, "note": RECOVERED_NOTE, "instance": self._instance,
            "stale_us": now_us - round(self._stale_after_s * 1_000_000),
        })  # fmt: skip
        found = max(cur.rowcount, 0)
        if found:
            _log.warning("tickets.recovered", count=found, instance=self._instance,
                         disposition=str(Disposition.SERVICE_ERROR), backend="postgres")
        return found

    async def _drop_writer(self) -> None:
        conn, self._writer = self._writer, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _run(
        self, sql: str, params: Sequence[object] = (), *, fetch: bool = True, write: bool = False
    ) -> list[dict[str, Any]]:
        """One statement on the shared connection; errors become ``TicketStoreError``."""
        if self._closed:
            raise TicketStoreError("the ticket store is closed")
        async with self._other_lock:
            try:
                if self._other is None or self._other.closed:
                    self._other = await self._connect()
                async with self._other.cursor(row_factory=dict_row) as cur:
                    await cur.execute(sql, params)  # type: ignore[arg-type]
                    rows = await cur.fetchall() if fetch and cur.description else []
                    if write:
                        rows = rows or [{"rowcount": cur.rowcount}]
            except psycopg.Error as exc:
                conn, self._other = self._other, None
                if conn is not None:
                    with contextlib.suppress(psycopg.Error):
                        await conn.close()
                if write:
                    self._set_writable(False, exc)
                raise TicketStoreError(f"ticket store (postgres): {exc}") from exc
        if write:
            self._set_writable(True)
        return rows

    # -- reading ---------------------------------------------------------------------------

    async def get(self, ticket_id: str) -> Ticket | None:
        """The committed ticket with this id, or ``None``."""
        rows = await self._run(f"{SELECT} WHERE ticket_id = %s", (ticket_id,))
        return decode(rows[0]) if rows else None  # type: ignore[arg-type]

    async def query(
        self,
        *,
        line: str | None = None,
        kind: str | None = None,
        disposition: Disposition | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Ticket]:
        """Committed tickets matching every given filter, newest call first."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        clauses: list[str] = []
        params: list[object] = []
        for column, value in (
            ("dialled_line", line),
            ("request_kind", kind),
            ("disposition", disposition),
        ):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(str(value))
        if since is not None:
            clauses.append("started_us >= %s")
            params.append(utc_us(since, "since"))
        if until is not None:
            clauses.append("started_us < %s")
            params.append(utc_us(until, "until"))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{SELECT}{where} ORDER BY started_us DESC, seq DESC LIMIT %s OFFSET %s"
        rows = await self._run(sql, (*params, limit, offset))
        return [decode(row) for row in rows]  # type: ignore[arg-type]

    async def count(self) -> int:
        """How many tickets are committed."""
        rows = await self._run("SELECT count(*) AS n FROM tickets")
        return int(rows[0]["n"])

    # -- outbox ----------------------------------------------------------------------------

    async def due_for_delivery(self, limit: int, *, now: datetime | None = None) -> list[Ticket]:
        """Up to ``limit`` pending tickets whose next attempt is due, oldest due first."""
        due = utc_us(now or datetime.now(UTC), "now")
        rows = await self._run(
            f"{SELECT} WHERE outbox_state = 'pending' AND next_attempt_us <= %s "
            f"AND disposition <> '{IN_PROGRESS}' ORDER BY next_attempt_us, seq LIMIT %s",
            (due, limit),
        )
        return [decode(row) for row in rows]  # type: ignore[arg-type]

    async def claim_for_delivery(
        self, limit: int, *, lease_s: float, now: datetime | None = None
    ) -> list[Claim]:
        """Lease due tickets; rows leased by another instance are skipped, not waited for."""
        now_us = utc_us(now or datetime.now(UTC), "now")
        claim_id = uuid.uuid4().hex
        # The CTE reads the rows as they were before the UPDATE: in_doubt says whether an
        # earlier attempt is unsettled, not this claim.
        rows = await self._run(
            "WITH due AS ("
            f"  SELECT seq, attempts, in_doubt AS was_in_doubt FROM tickets"
            "   WHERE outbox_state = 'pending' AND next_attempt_us <= %s"
            f"  AND disposition <> '{IN_PROGRESS}'"
            "   ORDER BY next_attempt_us, seq LIMIT %s FOR UPDATE SKIP LOCKED) "
            "UPDATE tickets t SET in_doubt = 1, claim_id = %s, next_attempt_us = %s "
            f"FROM due WHERE t.seq = due.seq RETURNING "
            f"{', '.join('t.' + c for c in COLUMNS.split(', '))}, due.attempts, "
            "due.was_in_doubt, t.delivery_ref, t.seq",
            (now_us, limit, claim_id, now_us + round(lease_s * 1_000_000)),
            write=True,
        )
        rows = sorted((r for r in rows if "seq" in r), key=lambda r: int(r["seq"]))
        return [
            Claim(decode(row), claim_id, int(row["attempts"]),  # type: ignore[arg-type]
                  bool(row["was_in_doubt"]), str(row["delivery_ref"]))
            for row in rows
        ]  # fmt: skip

    async def mark_delivered(
        self, ticket_id: str, *, reference: str = "", claim_id: str | None = None
    ) -> bool:
        """Record a successful delivery; see ``TicketOutbox.mark_delivered``."""
        sql = (
            "UPDATE tickets SET outbox_state = %s, delivery_ref = %s, in_doubt = 0, "
            "last_error = '' WHERE ticket_id = %s AND outbox_state = %s"
        )
        params: list[object] = [OutboxState.DELIVERED, reference, ticket_id, OutboxState.PENDING]
        if claim_id is not None:
            sql += " AND claim_id = %s"
            params.append(claim_id)
        rows = await self._run(sql, params, fetch=False, write=True)
        return int(rows[0]["rowcount"]) == 1

    async def mark_attempt_failed(
        self,
        ticket_id: str,
        *,
        retry_at: datetime | None,
        error: str = "",
        in_doubt: bool = False,
        claim_id: str | None = None,
    ) -> int:
        """Count a failed delivery; retry at ``retry_at``, or mark the ticket dead if None."""
        state = OutboxState.DEAD if retry_at is None else OutboxState.PENDING
        next_us = utc_us(retry_at, "retry_at") if retry_at is not None else 0
        sql = (
            "UPDATE tickets SET attempts = attempts + 1, outbox_state = %s, "
            "next_attempt_us = %s, last_error = %s, in_doubt = %s "
            "WHERE ticket_id = %s AND outbox_state = %s"
        )
        params: list[object] = [state, next_us, error, int(in_doubt), ticket_id,
                                OutboxState.PENDING]  # fmt: skip
        if claim_id is not None:
            sql += " AND claim_id = %s"
            params.append(claim_id)
        rows = await self._run(sql + " RETURNING attempts", params, write=True)
        if "attempts" not in rows[0]:
            raise TicketStoreError(f"no pending ticket {ticket_id}")
        return int(rows[0]["attempts"])

    async def outbox_counts(self) -> OutboxCounts:
        """How many tickets are pending, delivered, dead and in doubt."""
        rows = await self._run(
            "SELECT outbox_state AS state, count(*) AS n, sum(in_doubt) AS doubt "
            f"FROM tickets WHERE disposition <> '{IN_PROGRESS}' GROUP BY outbox_state"
        )
        by_state = {row["state"]: int(row["n"]) for row in rows}
        doubt = sum(int(row["doubt"] or 0) for row in rows if row["state"] == "pending")
        return OutboxCounts(
            pending=by_state.get(OutboxState.PENDING, 0),
            delivered=by_state.get(OutboxState.DELIVERED, 0),
            dead=by_state.get(OutboxState.DEAD, 0),
            in_doubt=doubt,
        )

    # -- after the call --------------------------------------------------------------------

    async def record_survey(self, ticket_id: str, rating: str) -> bool:
        """Write the post-call survey answer; ``False`` if no such ticket."""
        rows = await self._run(
            "UPDATE tickets SET satisfaction = %s WHERE ticket_id = %s",
            (str(Satisfaction(rating)), ticket_id), fetch=False, write=True,
        )  # fmt: skip
        return int(rows[0]["rowcount"]) == 1

    async def request_callback(self, ticket_id: str, reason: str) -> bool:
        """Ask for a call back (a review call, 回访); ``False`` if no such ticket."""
        rows = await self._run(
            "UPDATE tickets SET callback_state = 'wanted', callback_reason = %s, "
            "callback_attempts = 0, next_callback_us = 0 WHERE ticket_id = %s",
            (str(CallbackReason(reason)), ticket_id), fetch=False, write=True,
        )  # fmt: skip
        return int(rows[0]["rowcount"]) == 1

    async def callbacks_due(self, limit: int, *, now: datetime | None = None) -> list[CallbackDue]:
        """Tickets owed a callback whose next attempt is due, oldest due first."""
        due = utc_us(now or datetime.now(UTC), "now")
        rows = await self._run(
            f"SELECT {COLUMNS}, callback_reason, callback_attempts FROM tickets "
            "WHERE callback_state = 'wanted' AND next_callback_us <= %s "
            f"AND disposition <> '{IN_PROGRESS}' ORDER BY next_callback_us, seq LIMIT %s",
            (due, limit),
        )
        return [
            CallbackDue(decode(row), row["callback_reason"],  # type: ignore[arg-type]
                        int(row["callback_attempts"]))
            for row in rows
        ]  # fmt: skip

    async def record_callback_attempt(
        self, attempt: CallbackAttempt, *, retry_at: datetime | None, done: bool
    ) -> int:
        """Log one callback attempt and move the callback on; see ``AfterCallStore``."""
        state = "done" if done else ("wanted" if retry_at is not None else "given_up")
        next_us = utc_us(retry_at, "retry_at") if retry_at is not None and not done else 0
        rows = await self._run(
            "WITH t AS (UPDATE tickets SET callback_attempts = callback_attempts + 1, "
            "callback_state = %s, next_callback_us = %s WHERE ticket_id = %s "
            "RETURNING ticket_id, callback_attempts) "
            "INSERT INTO callback_log (ticket_id, attempt, at, result, detail) "
            "SELECT ticket_id, callback_attempts, %s, %s, %s FROM t RETURNING attempt",
            (state, next_us, attempt.ticket_id, attempt.at.isoformat(), attempt.result,
             attempt.detail),
            write=True,
        )  # fmt: skip
        if "attempt" not in rows[0]:
            raise TicketStoreError(f"no ticket {attempt.ticket_id}")
        return int(rows[0]["attempt"])

    async def callback_log(self, ticket_id: str) -> list[CallbackAttempt]:
        """Every callback attempt recorded on the ticket, first first."""
        rows = await self._run(
            "SELECT ticket_id, attempt, at, result, detail FROM callback_log "
            "WHERE ticket_id = %s ORDER BY attempt",
            (ticket_id,),
        )
        return [
            CallbackAttempt(row["ticket_id"], int(row["attempt"]),
                            datetime.fromisoformat(row["at"]), row["result"], row["detail"])
            for row in rows
        ]  # fmt: skip


async def _migrate(conn: psycopg.AsyncConnection[Any]) -> None:
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
            await conn.execute(MIGRATIONS[target - 1])  # type: ignore[arg-type]
            await conn.execute("INSERT INTO ticket_schema (version) VALUES (%s)", (target,))


def _fail(future: asyncio.Future[bool], error: TicketStoreError) -> None:
    if not future.done():
        future.set_exception(error)
