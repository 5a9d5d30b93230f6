"""Tickets to rows and back, the same on every backend.

Every field is stored: tuples and dicts as JSON, datetimes as ISO 8601 with their offset, so
a ticket read back equals the one written. The start time is also kept as UTC microseconds,
the form that sorts and filters by instant. The statements here are plain SQL both SQLite and
PostgreSQL accept; each schema module adds its own placeholders and DDL.

Encoding runs on the writer thread for every ticket, twice per call, so the ticket the call
flow builds takes a shorter road (``_usual_row``) to the very same row; anything unusual, and
every refusal, goes the general way (``_general_row``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from operator import attrgetter
from typing import Any, Protocol
from zoneinfo import ZoneInfo

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
    if now_us is None:
        now_us = utc_us(datetime.now(UTC), "now")
    return _usual_row(ticket, instance, now_us) or _general_row(ticket, instance, now_us)


def encode_batch(
    tickets: Sequence[Ticket], instance: str
) -> tuple[list[Row], list[TicketStoreError | None]]:
    """The rows of the tickets that encode, in order, and per ticket its refusal or None."""
    now_us = time.time_ns() // 1000  # utc_us(datetime.now(UTC), "now"): the same clock
    rows: list[Row] = []
    errors: list[TicketStoreError | None] = []
    for ticket in tickets:
        try:
            rows.append(
                _usual_row(ticket, instance, now_us) or _general_row(ticket, instance, now_us)
            )
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


def _general_row(ticket: Ticket, instance: str, now_us: int) -> Row:
    """``encode`` for any ticket: every check, every refusal with its message."""
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
        # A provisional ticket ends when it starts: one isoformat less.
        started_iso if ended is started else ended.isoformat(),
        due.isoformat() if due is not None else None,
        utc_us(started, "started_at"),
        now_us,
        "wanted" if reason else "",
        reason,
        0,
        instance,
    )


# -- the usual ticket, by a shorter road -------------------------------------------------------
# _usual_row returns _general_row's row, or None when it cannot vouch for it: a time that is not
# a datetime with a ZoneInfo or timezone, a field not of the type the call flow gives, anything a
# check or the JSON encoder would refuse... _general_row then writes the ticket or refuses it.


def _usual_row(ticket: Ticket, instance: str, now_us: int) -> Row | None:
    """The row of a ticket as the call flow builds it, for less than ``_general_row``; or None."""
    try:
        # _text_fields(ticket), in _TEXT_COLUMNS order, by plain attribute reads: the
        # interpreter specialises those for slots, attrgetter does not (test_rows checks both).
        texts = (
            ticket.ticket_id, ticket.linkedid, ticket.uniqueid, ticket.caller_number,
            ticket.caller_name, ticket.dialled_line, ticket.source_label, ticket.request_kind,
            ticket.urgency, ticket.route_kind, ticket.route_target, ticket.emergency_service,
            ticket.emergency_target, ticket.emergency_result, ticket.recording, ticket.node,
            ticket.language, ticket.satisfaction,
        )  # fmt: skip
        if texts[0] != ticket_id_for(texts[1]):
            return None
        "".join(texts)  # a TypeError unless every one is a str
        started, ended, due = ticket.started_at, ticket.ended_at, ticket.sla_due
        start = _start(started)
        if start is None:
            return None
        _, started_iso, started_us = start
        ended_iso = started_iso if ended is started else _iso(ended)
        due_iso = None if due is None else _iso(due)
        if ended_iso is None or (due_iso is None and due is not None):
            return None
        path, extra = ticket.ivr_path, ticket.extra
        if type(path) is not tuple or type(extra) is not dict:
            return None
        path_text = _path_texts.get(path) or _path_text(path)
        items = tuple(extra.items())
        extra_text = _extra_texts.get(items) or _extra_text(extra, items)
        if extra_text is None:
            return None
        reason = callback_reason_for(ticket.disposition)
        # Concatenated: less work than unpacking texts into a new display.
        return texts + (  # noqa: RUF005
            path_text,
            extra_text,
            str(ticket.disposition),
            started_iso,
            ended_iso,
            due_iso,
            started_us,
            now_us,
            "wanted" if reason else "",
            reason,
            0,
            instance,
        )
    except (AttributeError, TypeError, ValueError):
        return None


# datetime.isoformat() is dear: a printf per call, and its zone asked for the offset through a
# method looked up by name. _iso formats the fields itself and takes the offset's text from
# isoformat, the first time that offset is seen.
_D2 = tuple(f"{n:02d}" for n in range(100))
_D3 = tuple(f"{n:03d}" for n in range(1000))
_YEARS = {year: str(year) for year in range(1970, 2200)}
_clock_fields = attrgetter(
    "year", "month", "day", "hour", "minute", "second", "microsecond", "tzinfo"
)
# By offset: what isoformat appends ("+08:00", "-05:00", "+05:30:15"...), and what to take from
# a local time's microseconds since 0001-01-01 for UTC ones since the epoch.
_OFFSETS_KEPT = 256
_SUFFIXES: dict[timedelta | None, str] = {}
_UTC_BASES: dict[timedelta | None, int] = {}
_EPOCH_US = _EPOCH.toordinal() * 86_400_000_000


def _iso(moment: datetime) -> str | None:
    """``moment.isoformat()`` for an aware datetime whose zone is a ZoneInfo or a timezone."""
    if type(moment) is not datetime:
        return None
    year, month, day, hour, minute, second, micro, zone = _clock_fields(moment)
    # Exactly these: never naive, and the offset a function of the local time (and fold) alone.
    if type(zone) is not ZoneInfo and type(zone) is not timezone:
        return None
    suffix = _SUFFIXES.get(zone.utcoffset(moment)) or _learn_offset(moment)
    return _iso_text(year, month, day, hour, minute, second, micro, suffix)


def _iso_text(
    year: int, month: int, day: int, hour: int, minute: int, second: int, micro: int, suffix: str
) -> str:
    """What ``isoformat`` writes for these fields and offset text (no fraction at .000000)."""
    if micro:
        return (
            f"{_YEARS.get(year) or f'{year:04d}'}-{_D2[month]}-{_D2[day]}T{_D2[hour]}:"
            f"{_D2[minute]}:{_D2[second]}.{_D3[micro // 1000]}{_D3[micro % 1000]}{suffix}"
        )
    return (
        f"{_YEARS.get(year) or f'{year:04d}'}-{_D2[month]}-{_D2[day]}T{_D2[hour]}:"
        f"{_D2[minute]}:{_D2[second]}{suffix}"
    )


def _learn_offset(moment: datetime) -> str:
    """The ISO suffix of ``moment``'s offset, as ``isoformat`` writes it; remembered."""
    offset = moment.utcoffset()  # checked by datetime: an offset isoformat would refuse raises
    if offset is None:
        raise ValueError("not timezone-aware")
    text = moment.isoformat()
    local = moment.replace(tzinfo=None).isoformat()
    if not text.startswith(local):
        raise ValueError(f"unexpected isoformat {text!r}")
    suffix = text[len(local) :]
    if len(_SUFFIXES) < _OFFSETS_KEPT:
        _UTC_BASES[offset] = _EPOCH_US + offset // _MICROSECOND
        _SUFFIXES[offset] = suffix
    return suffix


# The start times seen lately, by identity: a call's final ticket has its provisional one's
# started_at. An entry holds its datetime, so no other object can have that id meanwhile. Two
# generations, the older dropped when the newer is full: the last _STARTS_KEPT are kept.
_STARTS_KEPT = 4096
_starts: dict[int, tuple[datetime, str, int]] = {}
_starts_before: dict[int, tuple[datetime, str, int]] = {}


def _start(moment: datetime) -> tuple[datetime, str, int] | None:
    """``moment``, ``moment.isoformat()`` and ``utc_us(moment)``, or None where ``_iso`` is.

    The microseconds come from the same fields as the text: one call in two of ``_start`` is
    a provisional ticket's, whose start is not remembered yet.
    """
    global _starts, _starts_before
    key = id(moment)
    seen = _starts.get(key) or _starts_before.get(key)
    if seen is not None and seen[0] is moment:
        return seen
    if type(moment) is not datetime:
        return None
    year, month, day, hour, minute, second, micro, zone = _clock_fields(moment)
    if type(zone) is not ZoneInfo and type(zone) is not timezone:
        return None
    offset = zone.utcoffset(moment)
    suffix = _SUFFIXES.get(offset) or _learn_offset(moment)
    text = _iso_text(year, month, day, hour, minute, second, micro, suffix)
    base = _UTC_BASES.get(offset)
    if base is None:
        us = utc_us(moment, "started_at")
    else:
        local_s = moment.toordinal() * 86_400 + hour * 3_600 + minute * 60 + second
        us = local_s * 1_000_000 + micro - base
    if len(_starts) >= _STARTS_KEPT:
        _starts_before, _starts = _starts, {}
    seen = _starts[key] = (moment, text, us)
    return seen


# The JSON of the IVR paths and extras seen lately: a menu has few paths and an extra few
# values. Only those of exact strs are kept; a tuple or items equal to one of them hold equal
# strs (an int or a float never equals a str), hence encode to the same JSON and pass the same
# checks. Emptied when full.
_JSON_KEPT = 1024
_path_texts: dict[tuple[str, ...], str] = {}
_extra_texts: dict[tuple[tuple[str, str], ...], str] = {}


def _path_text(path: tuple[str, ...]) -> str:
    text = _json(path)  # raises for a step JSON cannot write
    if all(type(step) is str for step in path):
        if len(_path_texts) >= _JSON_KEPT:
            _path_texts.clear()
        _path_texts[path] = text
    return text


def _extra_text(extra: dict[str, str], items: tuple[tuple[str, str], ...]) -> str | None:
    if not all(type(key) is str and type(value) is str for key, value in items):
        return None
    text = _json(extra)
    if len(_extra_texts) >= _JSON_KEPT:
        _extra_texts.clear()
    _extra_texts[items] = text
    return text


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
