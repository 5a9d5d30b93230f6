"""Business hours: is a line open at a given moment?

Rules, in order, all in the schedule's own timezone:

1. a holiday is closed all day;
2. a make-up working day (调休, usually a Saturday or Sunday) uses the schedule's
   ``makeup_hours``, which default to the Monday hours;
3. any other day uses its weekly hours; a day without hours is closed.

A range ``08:30-12:00`` includes 08:30:00 and excludes 12:00:00.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from ivr.dialplan.model import Schedule


def is_open(schedule: Schedule, when: datetime) -> bool:
    """Whether ``when`` (timezone-aware) falls within the schedule's opening hours."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("is_open needs a timezone-aware datetime")
    local = when.astimezone(ZoneInfo(schedule.timezone))
    day = local.date()
    if day in schedule.holidays:
        return False
    if day in schedule.makeup_days:
        ranges = schedule.makeup_hours
    else:
        ranges = schedule.weekly[local.weekday()]
    # Seconds, so 11:59:59 is open and 12:00:00 closed for a range ending at 12:00.
    second = local.hour * 3600 + local.minute * 60 + local.second
    return any(r.start * 60 <= second < r.end * 60 for r in ranges)
