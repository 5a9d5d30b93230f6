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
import queue
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import structlog

from ivr.tickets._group_commit import GroupCommitStore
from ivr.tickets._queries import TicketQueries
from ivr.tickets._rows import (
    COLUMNS,
    IN_PROGRESS,
    decode,
    encode_batch,
    outcomes,
    recover_params,
    utc_us,
)
from ivr.tickets._sqlite_schema import (
    INSERT,
    RECOVER,
    SCHEMA_VERSION,
    migrate,
    schema_version,
)
from ivr.tickets.errors import TicketStoreError
from ivr.tickets.model import Disposition, Ticket
from ivr.tickets.store import CallbackAttempt, Claim

__all__ = ["SCHEMA_VERSION", "SqliteTicketStore"]

_T = TypeVar("_T")

_log = structlog.get_logger("ivr.tickets")


class SqliteTicketStore(GroupCommitStore, TicketQueries):
    """A ``TicketStore``, ``TicketOutbox`` and ``AfterCallStore`` in one SQLite file.

    ``batch_max`` bounds a group commit; ``max_delay_s`` is how long the writer waits for a
    batch to fill before committing what it has (a few ms buys a shared fsync under load and
    costs nothing an emergency hand-off waits for). ``busy_timeout_s`` is how long a write
    waits for a lock held by another process before its batch fails.

    ``instance`` names the service instance writing provisional (``in_progress``) tickets; when
    the store first opens, the provisional rows of the same instance (left by a process that
    died) and anyone's older than ``stale_after_s`` become final ``service_error`` tickets.
    """

    PARAM: ClassVar[str] = "?"

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
        if busy_timeout_s < 0:
            raise ValueError("delays must not be negative")
        super().__init__(
            failure=sqlite3.Error, instance=instance, stale_after_s=stale_after_s,
            batch_max=batch_max, max_delay_s=max_delay_s, task_name="tickets-writer",
            log_fields={"path": str(path)},
        )  # fmt: skip
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        # The writer connection lives and dies on this one thread; only _db_* methods touch it.
        self._writer_thread: _WriterThread | None = None
        self._reader_pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def _open(self) -> None:
        self._writer_thread = _WriterThread("tickets-write")
        self._reader_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tickets-read")
        await self._on_writer(self._db_connection)

    async def _release(self) -> None:
        if self._writer_thread is not None:
            with contextlib.suppress(sqlite3.Error):
                await self._on_writer(self._db_close)
            self._writer_thread.stop()  # idle now: returns at once
        if self._reader_pool is not None:
            # A long query may still be running; wait for it off the event loop.
            await asyncio.to_thread(self._reader_pool.shutdown, wait=True)

    async def _insert(self, tickets: list[Ticket]) -> list[bool | TicketStoreError]:
        # Encoded on the writer thread: the event loop only queues the ticket objects.
        return await self._on_writer(self._db_insert, tickets)

    async def _on_writer(self, fn: Callable[..., _T], *args: object) -> _T:
        if self._writer_thread is None:
            raise TicketStoreError("the ticket store is not started")
        return await self._writer_thread.call(fn, *args)

    # -- reading ---------------------------------------------------------------------------

    async def _fetch(self, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
        if self._reader_pool is None or self._writer.closed:
            raise TicketStoreError("the ticket store is not running")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._reader_pool, self._db_read, sql, params)
        except sqlite3.Error as exc:
            raise TicketStoreError(f"could not read tickets: {exc}") from exc

    # -- outbox ----------------------------------------------------------------------------

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

    # -- after the call --------------------------------------------------------------------

    async def record_callback_attempt(
        self, attempt: CallbackAttempt, *, retry_at: datetime | None, done: bool
    ) -> int:
        """Log one callback attempt and move the callback on; see ``AfterCallStore``."""
        state = "done" if done else ("wanted" if retry_at is not None else "given_up")
        next_us = utc_us(retry_at, "retry_at") if retry_at is not None and not done else 0
        count = await self._on_writer_guarded(self._db_callback_attempt, attempt, state, next_us)
        if count is None:
            raise TicketStoreError(f"no ticket {attempt.ticket_id}")
        return count

    async def _update(self, sql: str, params: Sequence[object]) -> int:
        return await self._on_writer_guarded(self._db_update, sql, params)

    async def _update_returning(self, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
        return await self._on_writer_guarded(self._db_update_returning, sql, params)

    async def _on_writer_guarded(self, fn: Callable[..., _T], *args: object) -> _T:
        if self._writer.closed:
            raise TicketStoreError("the ticket store is closed")
        try:
            result = await self._on_writer(fn, *args)
        except sqlite3.Error as exc:
            self._writer.set_writable(False, exc)
            raise TicketStoreError(f"could not update the outbox: {exc}") from exc
        self._writer.set_writable(True)
        return result

    # -- on the writer thread --------------------------------------------------------------

    def _db_connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, timeout=self._busy_timeout_s, isolation_level=None)
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
        params = recover_params(self._instance, self._stale_after_s)
        found = conn.execute(RECOVER, params).rowcount
        if found:
            _log.warning(
                "tickets.recovered",
                count=found,
                instance=self._instance,
                disposition=str(Disposition.SERVICE_ERROR),
            )
        return int(found)

    def _db_insert(self, tickets: list[Ticket]) -> list[bool | TicketStoreError]:
        rows, errors = encode_batch(tickets, self._instance)
        conn = self._db_connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            # One statement for the batch. Its row count only says how many rows were new (or
            # replaced a provisional row); if that is not all of them, which ones is unknown:
            # undo it and write row by row, where each row's count tells. That is rare (a
            # ticket submitted twice, a provisional one after its final one).
            if conn.executemany(INSERT, rows).rowcount == len(rows):
                inserted = [True] * len(rows)
            else:
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                inserted = [conn.execute(INSERT, row).rowcount == 1 for row in rows]
            conn.execute("COMMIT")
        except sqlite3.Error:
            self._db_discard()
            raise
        return outcomes(errors, inserted)

    def _db_update(self, sql: str, params: Sequence[object]) -> int:
        try:
            return self._db_connection().execute(sql, params).rowcount
        except sqlite3.Error:
            self._db_discard()
            raise

    def _db_update_returning(self, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
        try:
            cursor = self._db_connection().cursor()
            cursor.row_factory = sqlite3.Row
            return cursor.execute(sql, params).fetchall()
        except sqlite3.Error:
            self._db_discard()
            raise

    def _db_claim(self, limit: int, now_us: int, until_us: int, claim_id: str) -> list[sqlite3.Row]:
        conn = self._db_connection()
        try:
            # One IMMEDIATE transaction: another process on the same file waits for it, so two
            # workers never lease the same ticket.
            conn.execute("BEGIN IMMEDIATE")
            conn.row_factory = sqlite3.Row
            try:
                rows = conn.execute(
                    f"SELECT {COLUMNS}, attempts, in_doubt, delivery_ref "
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


class _WriterThread:
    """The one thread that owns the writer connection, fed through a ``SimpleQueue``.

    It does what a one-worker ``ThreadPoolExecutor`` did with less per hand-off: no
    ``concurrent.futures.Future`` chained to an asyncio one and no thread-count check per batch;
    the caller's asyncio future is settled from the thread with ``call_soon_threadsafe``.
    Calls run one at a time, in order. A daemon thread: a process that exits without closing
    its store stops as after kill -9, which the store survives (uncommitted batches were
    never reported written, and provisional tickets are finalised at the next start).
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., _T], *args: object) -> asyncio.Future[_T]:
        """Run ``fn(*args)`` on the thread; the future settles with its result or error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._jobs.put((loop, future, fn, args))
        return future

    def stop(self) -> None:
        """Let the calls already queued finish, then end the thread and wait for it."""
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, fn, args = job
            try:
                result = fn(*args)
            except Exception as exc:  # the awaiting coroutine gets it, as from an executor
                _settle_soon(loop, _set_exception, future, exc)
            else:
                _settle_soon(loop, _set_result, future, result)


# A call for the writer thread: the loop and future to settle, the function and its arguments.
_Job = tuple[
    asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[object, ...]
]


def _settle_soon(
    loop: asyncio.AbstractEventLoop, settle: Callable[..., None], *args: object
) -> None:
    # The loop may be closed by now (a store left open at exit): nobody awaits the outcome then.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle, *args)


def _set_result(future: asyncio.Future[Any], result: object) -> None:
    if not future.done():  # the awaiting coroutine may have been cancelled
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
