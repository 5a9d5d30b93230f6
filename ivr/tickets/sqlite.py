"""The embedded default ticket store: one SQLite file, group-committed by one writer thread.

Calls end at their own pace; each one ``submit``s its ticket and moves on. A writer task takes
everything queued (up to ``batch_max``) and commits it in one transaction on a dedicated
thread, so a burst of calls shares one fsync and a slow or locked disk never blocks the event
loop. Readers open their own short-lived connections on other threads: in WAL mode a long
query neither blocks nor is blocked by the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import structlog

from ivr.tickets._sqlite_schema import (
    IN_PROGRESS,
    INSERT,
    RECOVER,
    RECOVERED_NOTE,
    SCHEMA_VERSION,
    SELECT,
    TICKET_COLUMNS,
    Row,
    decode,
    encode,
    migrate,
    schema_version,
    utc_us,
)
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

__all__ = ["SCHEMA_VERSION", "SqliteTicketStore"]

_T = TypeVar("_T")

_log = structlog.get_logger("ivr.tickets")


@dataclass(slots=True)
class _Queued:
    """A submitted ticket, already encoded, and the future its submitter may await."""

    row: Row
    future: asyncio.Future[bool]


class SqliteTicketStore:
    """A ``TicketStore`` and ``TicketOutbox`` in one SQLite file.

    ``batch_max`` bounds a group commit; ``max_delay_s`` is how long the writer waits for a
    batch to fill before committing what it has (a few ms buys a shared fsync under load and
    costs nothing an emergency hand-off waits for). ``busy_timeout_s`` is how long a write
    waits for a lock held by another process before its batch fails.

    ``instance`` names the service instance writing provisional (``in_progress``) tickets; when
    the store first opens, the provisional rows of the same instance (left by a process that
    died) and anyone's older than ``stale_after_s`` become final ``service_error`` tickets.
    """

    def __init__(
        self,
        path: Path,
        *,
        batch_max: int = 512,
        max_delay_s: float = 0.005,
        busy_timeout_s: float = 10.0,
        instance: str | None = None,
        stale_after_s: float = 6 * 3600.0,
    ) -> None:
        if batch_max < 1:
            raise ValueError("batch_max must be at least 1")
        if max_delay_s < 0 or busy_timeout_s < 0 or stale_after_s < 0:
            raise ValueError("delays must not be negative")
        self._path = path
        self._instance = socket.gethostname() if instance is None else instance
        self._stale_after_s = stale_after_s
        self._recovered: int | None = None  # rows finalised at the first open; None before it
        self._batch_max = batch_max
        self._max_delay_s = max_delay_s
        self._busy_timeout_s = busy_timeout_s
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
        # The writer connection lives and dies on this one thread; only _db_* methods touch it.
        self._writer_pool: ThreadPoolExecutor | None = None
        self._reader_pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open (creating or migrating) the database and start the writer task.

        A database that cannot be opened does not stop the service: ``writable`` turns False,
        submitted tickets fail, and every batch tries to open it again.
        """
        if self._task is not None or self._closed:
            raise TicketStoreError("a ticket store can be started once")
        self._writer_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tickets-write")
        self._reader_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tickets-read")
        try:
            await self._on_writer(self._db_connection)
        except sqlite3.Error as exc:
            self._set_writable(False, exc)
        self._task = asyncio.create_task(self._write_loop(), name="tickets-writer")

    async def close(self) -> None:
        """Commit everything already submitted, then close the database and its threads."""
        if self._closed:
            return
        self._closed = self._closing = True
        self._wakeup.set()
        self._batch_full.set()
        try:
            if self._task is not None:
                await self._task
        finally:
            if self._writer_pool is not None:
                with contextlib.suppress(sqlite3.Error):
                    await self._on_writer(self._db_close)
                self._writer_pool.shutdown(wait=True)  # idle now: returns at once
            if self._reader_pool is not None:
                # A long query may still be running; wait for it off the event loop.
                await asyncio.to_thread(self._reader_pool.shutdown, wait=True)

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
        """Wait until every ticket submitted so far is committed or has failed.

        Batches are committed in submission order, so the last ticket submitted settles last.
        """
        last = self._last_submitted
        if last is not None:
            await asyncio.wait([last])

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after each commit that wrote a new ticket (wakes the outbox)."""
        self._commit_listeners.append(listener)

    @property
    def pending(self) -> int:
        """Tickets submitted but not yet committed (queued or being written)."""
        return len(self._queue) + self._in_flight

    @property
    def in_flight(self) -> int:
        """Tickets handed to the writer thread whose transaction has not finished yet."""
        return self._in_flight

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
        """Provisional tickets of a dead process finalised at start; None until the file opens."""
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
            # Only reached early if the task is cancelled: nobody may wait forever on a ticket.
            while self._queue:
                _fail(self._queue.popleft().future, TicketStoreError("the ticket store stopped"))

    async def _commit(self, batch: list[_Queued]) -> None:
        self._in_flight = len(batch)
        try:
            inserted = await self._on_writer(self._db_insert, [item.row for item in batch])
        except sqlite3.Error as exc:
            self._set_writable(False, exc)
            for item in batch:
                error = TicketStoreError(f"ticket {item.row['ticket_id']} not written: {exc}")
                error.__cause__ = exc
                _fail(item.future, error)
        else:
            self._commits += 1
            self._set_writable(True)
            for item, was_new in zip(batch, inserted, strict=True):
                if not item.future.done():  # the submitter may have cancelled it
                    item.future.set_result(was_new)
            # Only a final ticket is due for delivery: a provisional one wakes nobody.
            if any(new and item.row["disposition"] != IN_PROGRESS
                   for item, new in zip(batch, inserted, strict=True)):
                for listener in self._commit_listeners:
                    listener()
        finally:
            self._in_flight = 0
            # Cancelled mid-write, or a bug: the outcome is unknown, but nobody waits forever.
            for item in batch:
                _fail(item.future, TicketStoreError("the ticket store stopped mid-write"))

    def _set_writable(self, writable: bool, error: Exception | None = None) -> None:
        if writable != self._writable:
            if writable:
                _log.info("ticket_store_writable", path=str(self._path))
            else:
                _log.error("ticket_store_failing", path=str(self._path), error=str(error))
        self._writable = writable

    async def _on_writer(self, fn: Callable[..., _T], *args: object) -> _T:
        if self._writer_pool is None:
            raise TicketStoreError("the ticket store is not started")
        return await asyncio.get_running_loop().run_in_executor(self._writer_pool, fn, *args)

    # -- reading ---------------------------------------------------------------------------

    async def get(self, ticket_id: str) -> Ticket | None:
        """The committed ticket with this id, or ``None``."""
        rows = await self._read(f"{SELECT} WHERE ticket_id = ?", (ticket_id,))
        return decode(rows[0]) if rows else None

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
        params: list[str | int] = []
        for column, value in (
            ("dialled_line", line),
            ("request_kind", kind),
            ("disposition", disposition),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(str(value))
        if since is not None:
            clauses.append("started_us >= ?")
            params.append(utc_us(since, "since"))
        if until is not None:
            clauses.append("started_us < ?")
            params.append(utc_us(until, "until"))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{SELECT}{where} ORDER BY started_us DESC, seq DESC LIMIT ? OFFSET ?"
        return [decode(row) for row in await self._read(sql, (*params, limit, offset))]

    async def count(self) -> int:
        """How many tickets are committed."""
        rows = await self._read("SELECT count(*) AS n FROM tickets", ())
        return int(rows[0]["n"])

    async def _read(self, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
        if self._reader_pool is None or self._closed:
            raise TicketStoreError("the ticket store is not running")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._reader_pool, self._db_read, sql, params)
        except sqlite3.Error as exc:
            raise TicketStoreError(f"could not read tickets: {exc}") from exc

    # -- outbox ----------------------------------------------------------------------------

    async def due_for_delivery(self, limit: int, *, now: datetime | None = None) -> list[Ticket]:
        """Up to ``limit`` pending tickets whose next attempt is due, oldest due first."""
        due = utc_us(now or datetime.now(UTC), "now")
        rows = await self._read(
            f"{SELECT} WHERE outbox_state = 'pending' AND next_attempt_us <= ? "
            f"AND disposition <> '{IN_PROGRESS}' ORDER BY next_attempt_us, seq LIMIT ?",
            (due, limit),
        )
        return [decode(row) for row in rows]

    async def claim_for_delivery(
        self, limit: int, *, lease_s: float, now: datetime | None = None
    ) -> list[Claim]:
        """Lease due tickets to this worker; see ``TicketOutbox.claim_for_delivery``."""
        now_us = utc_us(now or datetime.now(UTC), "now")
        claim_id = uuid.uuid4().hex
        rows = await self._on_writer_guarded(
            self._db_claim, limit, now_us, now_us + round(lease_s * 1_000_000), claim_id
        )
        return [
            Claim(decode(row), claim_id, int(row["attempts"]), bool(row["in_doubt"]),
                  str(row["delivery_ref"]))
            for row in rows
        ]  # fmt: skip

    async def mark_delivered(
        self, ticket_id: str, *, reference: str = "", claim_id: str | None = None
    ) -> bool:
        """Record a successful delivery; see ``TicketOutbox.mark_delivered``."""
        sql = (
            "UPDATE tickets SET outbox_state = ?, delivery_ref = ?, in_doubt = 0, last_error = '' "
            "WHERE ticket_id = ? AND outbox_state = ?"
        )
        params: list[object] = [OutboxState.DELIVERED, reference, ticket_id, OutboxState.PENDING]
        if claim_id is not None:
            sql += " AND claim_id = ?"
            params.append(claim_id)
        return await self._write_one(sql, params) == 1

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
            "UPDATE tickets SET attempts = attempts + 1, outbox_state = ?, next_attempt_us = ?, "
            "last_error = ?, in_doubt = ? WHERE ticket_id = ? AND outbox_state = ?"
        )
        params: list[object] = [state, next_us, error, int(in_doubt), ticket_id,
                                OutboxState.PENDING]  # fmt: skip
        if claim_id is not None:
            sql += " AND claim_id = ?"
            params.append(claim_id)
        rows = await self._on_writer_guarded(
            self._db_update_returning, sql + " RETURNING attempts", params
        )
        if not rows:
            raise TicketStoreError(f"no pending ticket {ticket_id}")
        return int(rows[0][0])

    async def outbox_counts(self) -> OutboxCounts:
        """How many tickets are pending, delivered, dead and in doubt."""
        rows = await self._read(
            "SELECT outbox_state AS state, count(*) AS n, sum(in_doubt) AS doubt "
            f"FROM tickets WHERE disposition <> '{IN_PROGRESS}' GROUP BY outbox_state",
            (),
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
        rating = str(Satisfaction(rating))
        sql = "UPDATE tickets SET satisfaction = ? WHERE ticket_id = ?"
        return await self._write_one(sql, (rating, ticket_id)) == 1

    async def request_callback(self, ticket_id: str, reason: str) -> bool:
        """Ask for a call back (a review call, 回访); ``False`` if no such ticket."""
        sql = (
            "UPDATE tickets SET callback_state = 'wanted', callback_reason = ?, "
            "callback_attempts = 0, next_callback_us = 0 WHERE ticket_id = ?"
        )
        return await self._write_one(sql, (str(CallbackReason(reason)), ticket_id)) == 1

    async def callbacks_due(self, limit: int, *, now: datetime | None = None) -> list[CallbackDue]:
        """Tickets owed a callback whose next attempt is due, oldest due first."""
        due = utc_us(now or datetime.now(UTC), "now")
        rows = await self._read(
            f"SELECT {', '.join(TICKET_COLUMNS)}, callback_reason, callback_attempts "
            "FROM tickets WHERE callback_state = 'wanted' AND next_callback_us <= ? "
            f"AND disposition <> '{IN_PROGRESS}' ORDER BY next_callback_us, seq LIMIT ?",
            (due, limit),
        )
        return [
            CallbackDue(decode(row), row["callback_reason"], int(row["callback_attempts"]))
            for row in rows
        ]

    async def record_callback_attempt(
        self, attempt: CallbackAttempt, *, retry_at: datetime | None, done: bool
    ) -> int:
        """Log one callback attempt and move the callback on; see ``AfterCallStore``."""
        state = "done" if done else ("wanted" if retry_at is not None else "given_up")
        next_us = utc_us(retry_at, "retry_at") if retry_at is not None and not done else 0
        count = await self._on_writer_guarded(
            self._db_callback_attempt, attempt, state, next_us
        )
        if count is None:
            raise TicketStoreError(f"no ticket {attempt.ticket_id}")
        return count

    async def callback_log(self, ticket_id: str) -> list[CallbackAttempt]:
        """Every callback attempt recorded on the ticket, first first."""
        rows = await self._read(
            "SELECT ticket_id, attempt, at, result, detail FROM callback_log "
            "WHERE ticket_id = ? ORDER BY attempt",
            (ticket_id,),
        )
        return [
            CallbackAttempt(row["ticket_id"], int(row["attempt"]),
                            datetime.fromisoformat(row["at"]), row["result"], row["detail"])
            for row in rows
        ]  # fmt: skip

    async def _write_one(self, sql: str, params: Sequence[object]) -> int:
        return await self._on_writer_guarded(self._db_update, sql, params)

    async def _on_writer_guarded(self, fn: Callable[..., _T], *args: object) -> _T:
        if self._closed:
            raise TicketStoreError("the ticket store is closed")
        try:
            result = await self._on_writer(fn, *args)
        except sqlite3.Error as exc:
            self._set_writable(False, exc)
            raise TicketStoreError(f"could not update the outbox: {exc}") from exc
        self._set_writable(True)
        return result

    # -- on the writer thread --------------------------------------------------------------

    def _db_connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self._path, timeout=self._busy_timeout_s, isolation_level=None
            )
            opened = False
            try:
                # Check the version before anything else: a newer service's file is not ours
                # to convert to WAL, let alone migrate.
                version = schema_version(conn)
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.OperationalError(f"journal_mode is {mode}, not wal")
                # FULL, not NORMAL: NORMAL in WAL mode survives kill -9 but a power cut can lose
                # the last commits, and a ticket we reported durable must never vanish. Group
                # commit pays that fsync once per batch, not once per ticket.
                conn.execute("PRAGMA synchronous = FULL")
                migrate(conn, version)
                if self._recovered is None:
                    # Once per store, before any call of this process writes: later reopens
                    # (after a disk error) must not finalise this process's live calls.
                    self._recovered = self._db_recover(conn)
                opened = True
            finally:
                if not opened:
                    conn.close()
            self._conn = conn
        return self._conn

    def _db_recover(self, conn: sqlite3.Connection) -> int:
        now = datetime.now(UTC)
        now_us = utc_us(now, "now")
        found = conn.execute(RECOVER, {
            "disposition": str(Disposition.SERVICE_ERROR), "ended_at": now.isoformat(),
            "now_us": now_us, "note": RECOVERED_NOTE, "instance": self._instance,
            "stale_us": now_us - round(self._stale_after_s * 1_000_000),
        }).rowcount  # fmt: skip
        if found:
            _log.warning("tickets.recovered", count=found, instance=self._instance,
                         disposition=str(Disposition.SERVICE_ERROR))
        return int(found)

    def _db_insert(self, rows: list[Row]) -> list[bool]:
        conn = self._db_connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            inserted = [conn.execute(INSERT, row).rowcount == 1 for row in rows]
            conn.execute("COMMIT")
        except sqlite3.Error:
            self._db_discard()
            raise
        return inserted

    def _db_update(self, sql: str, params: Sequence[object]) -> int:
        try:
            return self._db_connection().execute(sql, params).rowcount
        except sqlite3.Error:
            self._db_discard()
            raise

    def _db_update_returning(self, sql: str, params: Sequence[object]) -> list[tuple[int]]:
        try:
            return self._db_connection().execute(sql, params).fetchall()
        except sqlite3.Error:
            self._db_discard()
            raise

    def _db_claim(
        self, limit: int, now_us: int, until_us: int, claim_id: str
    ) -> list[sqlite3.Row]:
        conn = self._db_connection()
        try:
            # One IMMEDIATE transaction: another process on the same file waits for it, so two
            # workers never lease the same ticket.
            conn.execute("BEGIN IMMEDIATE")
            conn.row_factory = sqlite3.Row
            try:
                rows = conn.execute(
                    f"SELECT {', '.join(TICKET_COLUMNS)}, attempts, in_doubt, delivery_ref "
                    "FROM tickets WHERE outbox_state = 'pending' AND next_attempt_us <= ? "
                    f"AND disposition <> '{IN_PROGRESS}' ORDER BY next_attempt_us, seq LIMIT ?",
                    (now_us, limit),
                ).fetchall()
            finally:
                conn.row_factory = None
            conn.executemany(
                "UPDATE tickets SET in_doubt = 1, claim_id = ?, next_attempt_us = ? "
                "WHERE ticket_id = ?",
                [(claim_id, until_us, row["ticket_id"]) for row in rows],
            )
            conn.execute("COMMIT")
        except sqlite3.Error:
            self._db_discard()
            raise
        return rows

    def _db_callback_attempt(
        self, attempt: CallbackAttempt, state: str, next_us: int
    ) -> int | None:
        conn = self._db_connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            found = conn.execute(
                "UPDATE tickets SET callback_attempts = callback_attempts + 1, "
                "callback_state = ?, next_callback_us = ? WHERE ticket_id = ? "
                "RETURNING callback_attempts",
                (state, next_us, attempt.ticket_id),
            ).fetchone()
            if found is None:
                conn.execute("ROLLBACK")
                return None
            conn.execute(
                "INSERT INTO callback_log (ticket_id, attempt, at, result, detail) "
                "VALUES (?, ?, ?, ?, ?)",
                (attempt.ticket_id, int(found[0]), attempt.at.isoformat(), attempt.result,
                 attempt.detail),
            )  # fmt: skip
            conn.execute("COMMIT")
        except sqlite3.Error:
            self._db_discard()
            raise
        return int(found[0])

    def _db_discard(self) -> None:
        # After a failed write the connection may be in any state (a lost file, a full disk):
        # drop it, and the next batch starts from a fresh open.
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _db_close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA optimize")
            self._conn.close()
            self._conn = None

    # -- on a reader thread ----------------------------------------------------------------

    def _db_read(self, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
        uri = f"{self._path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=self._busy_timeout_s)
        try:
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()


def _fail(future: asyncio.Future[bool], error: TicketStoreError) -> None:
    if not future.done():
        future.set_exception(error)
