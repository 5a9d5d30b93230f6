"""Tickets to rows and back, the same on every backend.

Every field is stored: tuples and dicts as JSON, datetimes as ISO 8601 with their offset, so
a ticket read back equals the one written. The start time is also kept as UTC microseconds,
the form that sorts and filters by instant. The statements here are plain SQL both SQLite and
PostgreSQL accept; each schema module adds its own placeholders and DDL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, Protocol

from ivr.tickets.errors import TicketStoreError
from ivr.tickets.model import Disposition, Ticket, ticket_id_for
from ivr.tickets.store import callback_reason_for

TICKET_COLUMNS = (
    "ticket_id", "linkedid", "uniqueid", "caller_number", "caller_name", "dialled_line",
    "source_label", "ivr_path", "request_kind", "urgency", "sla_due", "route_kind",
    "route_target", "disposition", "started_at", "ended_at", "emergency_service",
    "emergency_target", "emergency_result", "recording", "node", "language", "extra",
    "satisfaction",
)  # fmt: skip
COLUMNS = ", ".join(TICKET_COLUMNS)
_DECODED = frozenset({"ivr_path", "extra", "disposition", "started_at", "ended_at", "sla_due"})
_TEXT_COLUMNS = tuple(name for name in TICKET_COLUMNS if name not in _DECODED)
# The columns of a row, in the order ``encode`` builds it: the text fields stored as they are,
# then the encoded ones. Rows are tuples bound to positional placeholders: binding by name
# costs SQLite a parameter-name lookup (and sqlite3 a string) per column per row.
INSERT_COLUMNS = (
    *_TEXT_COLUMNS, "ivr_path", "extra", "disposition", "started_at", "ended_at", "sla_due",
    "started_us", "next_attempt_us", "callback_state", "callback_reason", "next_callback_us",
    "instance",
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
SELECT = f"SELECT {COLUMNS} FROM tickets"
# Provisional rows left by a dead process: ours (same instance) or anyone's once stale. They
# become final service errors (the dialplan fallback took the caller) and due for delivery.
RECOVERED_NOTE = "service_restart"

Row = tuple[str | int | None, ...]  # values in INSERT_COLUMNS order
_text_fields = attrgetter(*_TEXT_COLUMNS)
# Built once: json.dumps with options builds an encoder per call. Its output is dumps's.
_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class RowLike(Protocol):
    """A fetched row read by column name: an ``sqlite3.Row`` or a psycopg ``dict_row``."""

    def __getitem__(self, key: str, /) -> Any: ...


def utc_us(moment: datetime, name: str) -> int:
    """Microseconds since the epoch, UTC: the sortable form of an aware datetime."""
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return (moment - _EPOCH) // _MICROSECOND


def encode(ticket: Ticket, instance: str, *, now_us: int | None = None) -> Row:
    """The row ``instance`` writes for ``ticket``; a ticket not stored faithfully is refused.

    ``now_us`` (due for delivery from then) defaults to the clock; a batch reads it once.
    """
    if ticket.ticket_id != ticket_id_for(ticket.linkedid):
        raise TicketStoreError(
            f"ticket id {ticket.ticket_id!r} does not belong to Linkedid {ticket.linkedid!r}"
        )
    started, ended, due = ticket.started_at, ticket.ended_at, ticket.sla_due
    for name, moment in (("started_at", started), ("ended_at", ended), ("sla_due", due)):
        if moment is not None and moment.utcoffset() is None:
            raise TicketStoreError(f"ticket {ticket.ticket_id}: {name} is not timezone-aware")
    texts = _text_fields(ticket)
    # One wrongly typed field would otherwise fail the whole batch it is committed with.
    for name, value in zip(_TEXT_COLUMNS, texts, strict=True):
        if not isinstance(value, str):
            raise TicketStoreError(f"ticket {ticket.ticket_id}: {name} is not a string")
    extra = ticket.extra
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise TicketStoreError(f"ticket {ticket.ticket_id}: extra must map strings to strings")
    reason = callback_reason_for(ticket.disposition)
    started_iso = started.isoformat()
    return (
        *texts,
        _json(ticket.ivr_path),  # a tuple is written as the JSON array of its items
        _json(extra),
        str(ticket.disposition),
        started_iso,
        # A provisional ticket ends when it starts: one isoformat (dear with a ZoneInfo) less.
        started_iso if ended is started else ended.isoformat(),
        due.isoformat() if due is not None else None,
        utc_us(started, "started_at"),
        utc_us(datetime.now(UTC), "now") if now_us is None else now_us,
        "wanted" if reason else "",
        reason,
        0,
        instance,
    )


def encode_batch(
    tickets: Sequence[Ticket], instance: str
) -> tuple[list[Row], list[TicketStoreError | None]]:
    """The rows of the tickets that encode, in order, and per ticket its refusal or None."""
    now_us = utc_us(datetime.now(UTC), "now")
    rows: list[Row] = []
    errors: list[TicketStoreError | None] = []
    for ticket in tickets:
        try:
            rows.append(encode(ticket, instance, now_us=now_us))
        except TicketStoreError as exc:
            errors.append(exc)
        except (AttributeError, TypeError, ValueError) as exc:
            # A field of the wrong type that encode does not check (a time that is None, a
            # path that is not JSON): this ticket fails, not its batch nor the writer.
            ticket_id = getattr(ticket, "ticket_id", "?")
            errors.append(TicketStoreError(f"ticket {ticket_id} cannot be stored: {exc}"))
        else:
            errors.append(None)
    return rows, errors


def outcomes(
    errors: Sequence[TicketStoreError | None], inserted: Sequence[bool]
) -> list[bool | TicketStoreError]:
    """Per ticket of a batch: whether its row was new, or why it was refused."""
    written = iter(inserted)
    return [next(written) if error is None else error for error in errors]


def decode(row: RowLike) -> Ticket:
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


def recover_params(instance: str, stale_after_s: float) -> dict[str, str | int]:
    """The parameters of a schema's ``RECOVER`` statement, as of now."""
    now = datetime.now(UTC)
    now_us = utc_us(now, "now")
    return {
        "disposition": str(Disposition.SERVICE_ERROR), "ended_at": now.isoformat(),
        "now_us": now_us, "note": RECOVERED_NOTE, "instance": instance,
        "stale_us": now_us - round(stale_after_s * 1_000_000),
    }  # fmt: skip
