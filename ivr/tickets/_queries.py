"""What every ticket store does with the same SQL: only the placeholder differs.

Reads, and the outbox and after-call updates of one statement each. What needs a backend's
own transaction (claiming tickets, logging a callback attempt) stays in the store.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import ClassVar

from ivr.tickets._rows import COLUMNS, IN_PROGRESS, SELECT, RowLike, decode, utc_us
from ivr.tickets.errors import TicketStoreError
from ivr.tickets.model import Disposition, Satisfaction, Ticket
from ivr.tickets.store import (
    CallbackAttempt,
    CallbackDue,
    CallbackReason,
    OutboxCounts,
    OutboxState,
)


class TicketQueries(abc.ABC):
    """Queries and updates on committed tickets, each one statement run by the store.

    ``PARAM`` is the backend's positional placeholder (``?`` for SQLite, ``%s`` for psycopg).
    Every hook raises a failure as ``TicketStoreError``; the update hooks also record it in
    the store's ``writable``.
    """

    PARAM: ClassVar[str]

    @abc.abstractmethod
    async def _fetch(self, sql: str, params: Sequence[object]) -> Sequence[RowLike]:
        """The rows a read-only statement returns."""

    @abc.abstractmethod
    async def _update(self, sql: str, params: Sequence[object]) -> int:
        """Run one write; how many rows it changed."""

    @abc.abstractmethod
    async def _update_returning(self, sql: str, params: Sequence[object]) -> Sequence[RowLike]:
        """Run one write with a ``RETURNING`` clause; the rows it returned."""

    async def get(self, ticket_id: str) -> Ticket | None:
        """The committed ticket with this id, or ``None``."""
        rows = await self._fetch(f"{SELECT} WHERE ticket_id = {self.PARAM}", (ticket_id,))
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
        """Committed tickets matching every given filter; see ``TicketStore.query``."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        p = self.PARAM
        clauses: list[str] = []
        params: list[str | int] = []
        for column, value in (
            ("dialled_line", line),
            ("request_kind", kind),
            ("disposition", disposition),
        ):
            if value is not None:
                clauses.append(f"{column} = {p}")
                params.append(str(value))
        if since is not None:
            clauses.append(f"started_us >= {p}")
            params.append(utc_us(since, "since"))
        if until is not None:
            clauses.append(f"started_us < {p}")
            params.append(utc_us(until, "until"))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{SELECT}{where} ORDER BY started_us DESC, seq DESC LIMIT {p} OFFSET {p}"
        return [decode(row) for row in await self._fetch(sql, (*params, limit, offset))]

    async def count(self) -> int:
        """How many tickets are committed."""
        rows = await self._fetch("SELECT count(*) AS n FROM tickets", ())
        return int(rows[0]["n"])

    async def due_for_delivery(self, limit: int, *, now: datetime | None = None) -> list[Ticket]:
        """Up to ``limit`` pending tickets whose next attempt is due, oldest due first."""
        due = utc_us(now or datetime.now(UTC), "now")
        rows = await self._fetch(
            f"{SELECT} WHERE outbox_state = 'pending' AND next_attempt_us <= {self.PARAM} "
            f"AND disposition <> '{IN_PROGRESS}' ORDER BY next_attempt_us, seq "
            f"LIMIT {self.PARAM}",
            (due, limit),
        )
        return [decode(row) for row in rows]

    async def mark_delivered(
        self, ticket_id: str, *, reference: str = "", claim_id: str | None = None
    ) -> bool:
        """Record a successful delivery; see ``TicketOutbox.mark_delivered``."""
        p = self.PARAM
        sql = (
            f"UPDATE tickets SET outbox_state = {p}, delivery_ref = {p}, in_doubt = 0, "
            f"last_error = '' WHERE ticket_id = {p} AND outbox_state = {p}"
        )
        params: list[object] = [OutboxState.DELIVERED, reference, ticket_id, OutboxState.PENDING]
        if claim_id is not None:
            sql += f" AND claim_id = {p}"
            params.append(claim_id)
        return await self._update(sql, params) == 1

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
        p = self.PARAM
        sql = (
            f"UPDATE tickets SET attempts = attempts + 1, outbox_state = {p}, "
            f"next_attempt_us = {p}, last_error = {p}, in_doubt = {p} "
            f"WHERE ticket_id = {p} AND outbox_state = {p}"
        )
        params: list[object] = [state, next_us, error, int(in_doubt), ticket_id,
                                OutboxState.PENDING]  # fmt: skip
        if claim_id is not None:
            sql += f" AND claim_id = {p}"
            params.append(claim_id)
        rows = await self._update_returning(sql + " RETURNING attempts", params)
        if not rows:
            raise TicketStoreError(f"no pending ticket {ticket_id}")
        return int(rows[0]["attempts"])

    async def outbox_counts(self) -> OutboxCounts:
        """How many tickets are pending, delivered, dead and in doubt."""
        rows = await self._fetch(
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

    async def record_survey(self, ticket_id: str, rating: str) -> bool:
        """Write the post-call survey answer; ``False`` if no such ticket."""
        sql = f"UPDATE tickets SET satisfaction = {self.PARAM} WHERE ticket_id = {self.PARAM}"
        return await self._update(sql, (str(Satisfaction(rating)), ticket_id)) == 1

    async def request_callback(self, ticket_id: str, reason: str) -> bool:
        """Ask for a call back (a review call, 回访); ``False`` if no such ticket."""
        sql = (
            f"UPDATE tickets SET callback_state = 'wanted', callback_reason = {self.PARAM}, "
            f"callback_attempts = 0, next_callback_us = 0 WHERE ticket_id = {self.PARAM}"
        )
        return await self._update(sql, (str(CallbackReason(reason)), ticket_id)) == 1

    async def callbacks_due(self, limit: int, *, now: datetime | None = None) -> list[CallbackDue]:
        """Tickets owed a callback whose next attempt is due, oldest due first."""
        due = utc_us(now or datetime.now(UTC), "now")
        rows = await self._fetch(
            f"SELECT {COLUMNS}, callback_reason, callback_attempts FROM tickets "
            f"WHERE callback_state = 'wanted' AND next_callback_us <= {self.PARAM} "
            f"AND disposition <> '{IN_PROGRESS}' ORDER BY next_callback_us, seq "
            f"LIMIT {self.PARAM}",
            (due, limit),
        )
        return [
            CallbackDue(decode(row), row["callback_reason"], int(row["callback_attempts"]))
            for row in rows
        ]

    async def callback_log(self, ticket_id: str) -> list[CallbackAttempt]:
        """Every callback attempt recorded on the ticket, first first."""
        rows = await self._fetch(
            "SELECT ticket_id, attempt, at, result, detail FROM callback_log "
            f"WHERE ticket_id = {self.PARAM} ORDER BY attempt",
            (ticket_id,),
        )
        return [
            CallbackAttempt(row["ticket_id"], int(row["attempt"]),
                            datetime.fromisoformat(row["at"]), row["result"], row["detail"])
            for row in rows
        ]  # fmt: skip
