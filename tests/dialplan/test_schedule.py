"""Business hours: weekly hours, holidays, make-up working days, timezones."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ivr.dialplan import Dialplan, Schedule
from ivr.dialplan._fields import Reader
from ivr.dialplan._sections import read_schedule
from ivr.dialplan._yaml import parse_yaml
from ivr.engine.schedule import is_open

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def office(shipped: Dialplan) -> Schedule:
    """The shipped office-hours schedule (Mon-Fri 08:30-12:00 and 14:00-17:30)."""
    return shipped.schedules["office-hours"]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param(datetime(2026, 11, 23, 8, 29, 59), False, id="Monday just before opening"),
        pytest.param(datetime(2026, 11, 23, 8, 30), True, id="Monday at opening"),
        pytest.param(datetime(2026, 11, 23, 11, 59, 59), True, id="Monday before lunch"),
        pytest.param(datetime(2026, 11, 23, 12, 0), False, id="Monday lunch break"),
        pytest.param(datetime(2026, 11, 27, 17, 29), True, id="Friday afternoon"),
        pytest.param(datetime(2026, 11, 27, 17, 30), False, id="Friday at closing"),
        pytest.param(datetime(2026, 11, 28, 10, 0), False, id="ordinary Saturday"),
        pytest.param(datetime(2026, 10, 1, 10, 0), False, id="National Day holiday (Thursday)"),
        pytest.param(datetime(2026, 10, 7, 10, 0), False, id="last day of the holiday"),
        pytest.param(datetime(2026, 10, 8, 10, 0), True, id="first working day after it"),
        pytest.param(datetime(2026, 10, 10, 10, 0), True, id="make-up working Saturday"),
        pytest.param(datetime(2026, 9, 20, 15, 0), True, id="make-up working Sunday afternoon"),
        pytest.param(datetime(2026, 9, 20, 13, 0), False, id="make-up day lunch break"),
        pytest.param(datetime(2026, 2, 16, 10, 0), False, id="Spring Festival Monday"),
    ],
)
def test_shipped_office_hours(office: Schedule, when: datetime, expected: bool) -> None:
    """Beijing-time moments are open or closed as the 2026 calendar says."""
    assert is_open(office, when.replace(tzinfo=SHANGHAI)) is expected


def test_hours_are_read_in_the_schedule_timezone(office: Schedule) -> None:
    """01:00 UTC on a Monday is 09:00 in Shanghai (open); 20:00 UTC Monday is 04:00 Tuesday."""
    assert is_open(office, datetime(2026, 11, 23, 1, 0, tzinfo=UTC))
    assert not is_open(office, datetime(2026, 11, 23, 20, 0, tzinfo=UTC))


def test_a_holiday_follows_the_local_date(office: Schedule) -> None:
    """2026-09-30 18:00 UTC is already 1 October in Shanghai: the National Day holiday."""
    assert not is_open(office, datetime(2026, 9, 30, 18, 0, tzinfo=UTC))
    assert is_open(office, datetime(2026, 9, 30, 1, 0, tzinfo=UTC))


def test_a_naive_datetime_is_refused(office: Schedule) -> None:
    """Without a timezone the local time is unknowable, so it is a programming error."""
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(office, datetime(2026, 11, 23, 10, 0))


def test_configured_makeup_hours_and_midnight_end() -> None:
    """Make-up days may have their own hours, and a range may end at 24:00."""
    text = ('timezone: Europe/Berlin\nweekly: {mon: ["20:00-24:00"]}\n'
            'makeup_days: [2026-11-28]\nmakeup_hours: ["09:00-10:00"]\n')
    node, problems = parse_yaml(text, "s.yaml")
    assert problems == () and node is not None
    reader = Reader()
    schedule = read_schedule(reader, "night", node, "schedules.night")
    assert reader.problems == [] and schedule is not None
    berlin = ZoneInfo("Europe/Berlin")
    assert is_open(schedule, datetime(2026, 11, 23, 23, 59, 59, tzinfo=berlin))
    assert not is_open(schedule, datetime(2026, 11, 24, 0, 0, tzinfo=berlin))
    assert is_open(schedule, datetime(2026, 11, 28, 9, 30, tzinfo=berlin))
    assert not is_open(schedule, datetime(2026, 11, 28, 21, 0, tzinfo=berlin))
