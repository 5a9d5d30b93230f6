"""SLA due times: Haikou's 30 minutes for urgent items, a day for the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ivr.engine.route import Urgency
from ivr.tickets.sla import sla_due

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("urgency", "expected"),
    [
        (Urgency.URGENT, datetime(2024, 5, 9, 15, 0, tzinfo=SHANGHAI)),
        ("urgent", datetime(2024, 5, 9, 15, 0, tzinfo=SHANGHAI)),
        (Urgency.NORMAL, datetime(2024, 5, 10, 14, 30, tzinfo=SHANGHAI)),
    ],
)
def test_default_windows(urgency: str, expected: datetime) -> None:
    """Urgent items are due 30 minutes after the call started, normal ones 24 hours after."""
    due = sla_due(urgency, datetime(2024, 5, 9, 14, 30, tzinfo=SHANGHAI))
    assert due == expected
    assert due.tzinfo is SHANGHAI


def test_windows_can_be_configured() -> None:
    """A city with other rules passes its own windows."""
    started = datetime(2024, 5, 9, 6, 30, tzinfo=UTC)
    assert sla_due("urgent", started, urgent=timedelta(minutes=15)) == started + timedelta(
        minutes=15
    )
    assert sla_due("normal", started, normal=timedelta(hours=2)) == started + timedelta(hours=2)


def test_window_is_elapsed_time_across_a_dst_change() -> None:
    """Across a daylight-saving jump the deadline is 30 real minutes, not 30 clock minutes."""
    new_york = ZoneInfo("America/New_York")
    started = datetime(2024, 3, 10, 1, 45, tzinfo=new_york)  # clocks jump 02:00 -> 03:00
    due = sla_due("urgent", started)
    assert due.astimezone(UTC) - started.astimezone(UTC) == timedelta(minutes=30)
    assert (due.hour, due.minute, due.utcoffset()) == (3, 15, timedelta(hours=-4))


@pytest.mark.parametrize(
    ("urgency", "started_at", "message"),
    [
        ("critical", datetime(2024, 5, 9, tzinfo=UTC), "unknown urgency"),
        ("urgent", datetime(2024, 5, 9), "timezone-aware"),
    ],
)
def test_bad_input_is_refused(urgency: str, started_at: datetime, message: str) -> None:
    """An unknown urgency or a naive start time raises ValueError naming the problem."""
    with pytest.raises(ValueError, match=message):
        sla_due(urgency, started_at)
