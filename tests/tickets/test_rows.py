"""Rows of tickets: the shorter road ``encode`` takes for the usual ticket writes exactly the row
of the general one, and never lets through a ticket the general one refuses."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.tickets import _rows
from ivr.tickets._rows import INSERT_COLUMNS, Row, encode, encode_batch
from ivr.tickets.errors import TicketStoreError
from ivr.tickets.model import Disposition, Ticket, ticket_id_for
from ivr.tickets.store import callback_reason_for
from tests.tickets.conftest import build_ticket

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2024, 5, 9, 14, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
ZONES = [
    ZoneInfo(name)
    for name in (
        "Asia/Shanghai", "America/New_York", "America/St_Johns", "Asia/Kolkata",
        "Australia/Lord_Howe", "Pacific/Chatham", "Europe/Dublin", "America/Sao_Paulo",
        "Pacific/Kiritimati", "Pacific/Pago_Pago", "Africa/Monrovia",
    )
]  # fmt: skip
FIXED = [
    UTC,
    timezone(timedelta(hours=8)),
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=30, seconds=15)),
    timezone(timedelta(hours=-9, minutes=-30, seconds=-1, microseconds=-7)),
    timezone(timedelta(microseconds=1)),
    timezone(timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999)),
    timezone(-timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999)),
    timezone(timedelta(hours=8), "CST"),
]
LONGEST_OFFSET = timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999)
PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_row(ticket: Ticket, instance: str, now_us: int) -> Row:
    """The row as ``encode`` wrote every ticket before it had a shorter road."""
    reason = callback_reason_for(ticket.disposition)
    values: dict[str, Any] = {name: getattr(ticket, name) for name in _rows._TEXT_COLUMNS}
    values.update(
        ivr_path=json.dumps(ticket.ivr_path, ensure_ascii=False, sort_keys=True),
        extra=json.dumps(ticket.extra, ensure_ascii=False, sort_keys=True),
        disposition=str(ticket.disposition),
        started_at=ticket.started_at.isoformat(),
        ended_at=ticket.ended_at.isoformat(),
        sla_due=None if ticket.sla_due is None else ticket.sla_due.isoformat(),
        started_us=(ticket.started_at - EPOCH) // timedelta(microseconds=1),
        next_attempt_us=now_us,
        callback_state="wanted" if reason else "",
        callback_reason=reason,
        next_callback_us=0,
        instance=instance,
    )
    return tuple(values[name] for name in INSERT_COLUMNS)


def assert_same_row(row: Row | None, expected: Row) -> None:
    """Equal, value by value and type by type (a StrEnum equals its str, yet is another type)."""
    assert row == expected
    assert [type(value) for value in row] == [type(value) for value in expected]


def assert_usual(ticket: Ticket) -> None:
    """The ticket takes the shorter road, and its row is the reference row."""
    expected = reference_row(ticket, "node-a", 42)
    assert_same_row(_rows._usual_row(ticket, "node-a", 42), expected)
    assert_same_row(encode(ticket, "node-a", now_us=42), expected)


def moments() -> Iterator[datetime]:
    """Datetimes around what isoformat and the offsets make of them: every zone, microseconds
    0 and not, years of fewer digits and beyond the table, both folds across DST changes."""
    for zone in ZONES + FIXED:
        for year, month, day in ((1, 1, 2), (999, 12, 31), (1000, 1, 1), (1969, 12, 31),
                                 (1970, 1, 1), (2024, 3, 10), (2024, 11, 3), (2199, 12, 31),
                                 (2200, 1, 1), (9999, 12, 30)):  # fmt: skip
            for hour, minute, second, micro, fold in itertools.product(
                (0, 1, 2, 13, 23), (0, 30, 59), (0, 59), (0, 1, 999_999, 123_000), (0, 1)
            ):
                yield datetime(year, month, day, hour, minute, second, micro, zone, fold=fold)


def test_iso_is_isoformat_over_a_grid_of_times() -> None:
    """For every zone kind, year, time of day, microsecond and fold: isoformat's very text, and
    utc_us's very number."""
    count = 0
    for moment in moments():
        assert _rows._iso(moment) == moment.isoformat(), moment
        assert _rows._start(moment) == (
            moment,
            moment.isoformat(),
            _rows.utc_us(moment, "started_at"),
        ), moment
        count += 1
    assert count > 20_000


@PROFILE
@given(
    st.datetimes(
        timezones=st.sampled_from(ZONES + FIXED)
        | st.timezones()
        | st.timedeltas(min_value=-LONGEST_OFFSET, max_value=LONGEST_OFFSET).map(timezone)
    ),
    st.integers(0, 1),
)
def test_iso_is_isoformat_for_any_aware_time(moment: datetime, fold: int) -> None:
    """Any aware time, any zone hypothesis finds: isoformat's text and utc_us's number."""
    moment = moment.replace(fold=fold)
    assert _rows._iso(moment) == moment.isoformat()
    start = _rows._start(moment)
    assert start == (moment, moment.isoformat(), _rows.utc_us(moment, "started_at"))


class Offbeat(tzinfo):
    """A zone of our own: its offset could be anything, so the shorter road is not taken."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=3)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)


class Moment(datetime):
    """A datetime subclass: its isoformat could be anything, so the shorter road is not taken."""


def test_iso_leaves_unusual_times_to_isoformat() -> None:
    """Naive times, other zones and datetime subclasses are not formatted by _iso."""
    assert _rows._iso(datetime(2024, 5, 9, 14, 30)) is None
    assert _rows._iso(datetime(2024, 5, 9, 14, 30, tzinfo=Offbeat())) is None
    assert _rows._iso(Moment(2024, 5, 9, 14, 30, tzinfo=UTC)) is None
    assert _rows._start(datetime(2024, 5, 9, 14, 30)) is None


def test_offsets_beyond_the_kept_ones_are_still_right(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no room for remembered offsets every time asks isoformat and utc_us: same text."""
    monkeypatch.setattr(_rows, "_OFFSETS_KEPT", 0)
    monkeypatch.setattr(_rows, "_SUFFIXES", {})
    monkeypatch.setattr(_rows, "_UTC_BASES", {})
    monkeypatch.setattr(_rows, "_starts", {})
    monkeypatch.setattr(_rows, "_starts_before", {})
    for zone in ZONES[:3] + FIXED[:5]:
        moment = datetime(2024, 5, 9, 14, 30, 5, 17, tzinfo=zone)
        assert_usual(build_ticket(1, started_at=moment))
    assert _rows._SUFFIXES == {} and _rows._UTC_BASES == {}


def test_start_times_are_remembered_by_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """A call's two tickets share started_at; only that object, while kept, is looked up."""
    monkeypatch.setattr(_rows, "_STARTS_KEPT", 4)
    monkeypatch.setattr(_rows, "_starts", {})
    monkeypatch.setattr(_rows, "_starts_before", {})
    starts = [datetime(2024, 5, 9, 14, 30, n, tzinfo=ZONES[0]) for n in range(20)]
    for round_ in range(2):
        for n, moment in enumerate(starts):
            final = build_ticket(n, started_at=moment)
            provisional = replace(final, disposition=Disposition.IN_PROGRESS, ended_at=moment)
            assert_usual(provisional)
            assert_usual(final)
            # An equal time of another zone is another object, and another text.
            assert_usual(replace(final, started_at=moment.astimezone(UTC)))
        assert len(_rows._starts) <= 4 and len(_rows._starts_before) <= 4, round_


def texts(size: int = 12) -> st.SearchStrategy[str]:
    """Text as callers and menus give it, and text JSON must escape."""
    usual = st.sampled_from(["", "root", "root:2", "投诉", "张三", "96119 消防隐患举报", "zh"])
    awkward = st.sampled_from(['a"b', "back\\slash", "tab\tnew\nline", "\x00\x1f\x7f", "\u2028"])
    return usual | awkward | st.text(max_size=size)


def aware_times() -> st.SearchStrategy[datetime]:
    """Any time in one of our zones, or one of a few seconds of a day (seen again, then)."""
    seconds = st.integers(0, 5).map(lambda n: T0 + timedelta(seconds=n))
    return st.datetimes(timezones=st.sampled_from(ZONES + FIXED)) | seconds


@st.composite
def tickets(draw: st.DrawFn) -> Ticket:
    """A ticket of the types the call flow builds, with any values."""
    linkedid = draw(texts())
    started = draw(aware_times())
    fields = {name: draw(texts()) for name in _rows._TEXT_COLUMNS}
    fields.update(
        ticket_id=ticket_id_for(linkedid),
        linkedid=linkedid,
        ivr_path=tuple(draw(st.lists(texts(), max_size=5))),
        extra=draw(st.dictionaries(texts(), texts(), max_size=4)),
        disposition=draw(st.sampled_from(Disposition)),
        started_at=started,
        ended_at=started if draw(st.booleans()) else draw(aware_times()),
        sla_due=draw(st.none() | aware_times()),
    )
    return Ticket(**fields)


@settings(PROFILE, max_examples=100)
@given(st.lists(tickets(), min_size=1, max_size=4))
def test_usual_tickets_get_the_reference_rows(batch: list[Ticket]) -> None:
    """Any usual ticket, alone or in a batch, again or not: the row encode always wrote."""
    for ticket in batch + batch:
        assert_usual(ticket)
    rows, errors = encode_batch(batch, "node-a")
    assert errors == [None] * len(batch)
    now_us = rows[0][INSERT_COLUMNS.index("next_attempt_us")]
    assert isinstance(now_us, int)
    for row, ticket in zip(rows, batch, strict=True):
        assert_same_row(row, reference_row(ticket, "node-a", now_us))


def test_a_call_s_two_tickets_get_the_reference_rows() -> None:
    """As the call flow writes them: the provisional ticket then the final one, its times
    shared or equal, extras and paths seen before or not."""
    for n in range(50):
        final = build_ticket(
            n,
            extra={"dialplan": "2024-05-01", "route_reason": "menu" if n % 2 else "night"},
            ivr_path=("root", f"root:{n % 3}"),
            disposition=list(Disposition)[n % len(Disposition)],
            sla_due=None if n % 5 == 0 else build_ticket(n).sla_due,
        )
        provisional = replace(
            final,
            disposition=Disposition.IN_PROGRESS,
            ended_at=final.started_at,
            extra={"dialplan": "2024-05-01", "route_reason": ""},
            ivr_path=(),
            sla_due=final.started_at + timedelta(minutes=30),
        )
        assert_usual(provisional)
        assert_usual(final)


def test_unusual_but_valid_tickets_take_the_general_road() -> None:
    """What the shorter road does not vouch for is written as before, not refused."""
    usual = build_ticket(1, extra={"k": "v"}, ivr_path=("1",))
    encode(usual, "node-a", now_us=42)  # ("1",) and {"k": "v"} are now remembered
    for ticket in (
        replace(usual, ivr_path=(1,)),  # equal to no remembered path: JSON of an int
        replace(usual, ivr_path=(True,)),  # equal to (1,): must not be taken for it
        replace(usual, ivr_path=(1.0,)),
        replace(usual, ivr_path=(1.0, True, None)),
        replace(usual, ivr_path=(["a"],)),  # cannot be looked up
        replace(usual, ivr_path=["root", "root:2"]),  # a list, not a tuple
        replace(usual, ivr_path="root"),  # a str: its JSON is a string
        replace(usual, started_at=Moment(2024, 5, 9, 14, 30, tzinfo=UTC)),
        replace(usual, ended_at=datetime(2024, 5, 9, 14, 30, tzinfo=Offbeat())),
        replace(usual, disposition="abandoned_in_ivr"),  # a str, not a Disposition
        replace(usual, caller_name=Disposition.AGENT),  # a str subclass
    ):
        expected = reference_row(ticket, "node-a", 42)
        assert_same_row(encode(ticket, "node-a", now_us=42), expected)


REFUSED = {
    "foreign ticket id": (
        {"ticket_id": "T-something-else"}, "does not belong to Linkedid",
    ),
    "naive start": ({"started_at": datetime(2024, 5, 9, 14, 30)}, "started_at is not"),
    "naive end": ({"ended_at": datetime(2024, 5, 9, 14, 30)}, "ended_at is not"),
    "naive SLA": ({"sla_due": datetime(2024, 5, 9, 14, 30)}, "sla_due is not"),
    "no start": ({"started_at": None}, "cannot be stored"),
    "no end": ({"ended_at": None}, "cannot be stored"),
    "start not a time": ({"started_at": "2024-05-09T14:30:00+08:00"}, "cannot be stored"),
    "extra key": ({"extra": {"k": "v", 1: "v"}}, "extra must map strings to strings"),
    "extra value": ({"extra": {"k": 1}}, "extra must map strings to strings"),
    "extra value bytes": ({"extra": {"k": b"v"}}, "extra must map strings to strings"),
    "extra not a dict": ({"extra": None}, "cannot be stored"),
    "path not JSON": ({"ivr_path": (object(),)}, "cannot be stored"),
    "path not JSON bytes": ({"ivr_path": (b"root",)}, "cannot be stored"),
} | {
    f"{name} not a str": ({name: value}, f"{name} is not a string")
    for name, value in zip(
        _rows._TEXT_COLUMNS[2:], itertools.cycle((None, 5, b"x", 1.5)), strict=False
    )
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSED)
def test_malformed_tickets_are_refused_alone_as_before(case: str) -> None:
    """Every refusal is the general road's, with its message, whatever the shorter road has
    seen before; the other tickets of the batch are written."""
    changes, message = REFUSED[case]
    good = build_ticket(1, extra={"k": "v"}, ivr_path=("root",))
    encode(good, "node-a", now_us=42)  # its path, extra and start are remembered
    bad = dataclasses.replace(good, **changes)
    assert _rows._usual_row(bad, "node-a", 42) is None
    with pytest.raises((TicketStoreError, AttributeError, TypeError, ValueError)) as general:
        _rows._general_row(bad, "node-a", 42)
    rows, errors = encode_batch([good, bad, build_ticket(2)], "node-a")
    assert len(rows) == 2 and errors[0] is None and errors[2] is None
    error = errors[1]
    assert isinstance(error, TicketStoreError) and message in str(error), error
    assert str(general.value) in str(error)
    assert good.ticket_id in str(error) or case == "foreign ticket id"
