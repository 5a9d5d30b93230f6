"""When the work-order system owes the citizen an answer (the SLA due time of a ticket)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ivr.engine.route import Urgency


def sla_due(
    urgency: str,
    started_at: datetime,
    *,
    urgent: timedelta = timedelta(minutes=30),
    normal: timedelta = timedelta(hours=24),
) -> datetime:
    """The time by which a request of ``urgency`` received at ``started_at`` must be answered.

    The defaults follow Haikou's rule: urgent items are responded to within 30 minutes; other
    items within a day. ``started_at`` must be timezone-aware; the result is in its zone.

    Raises ``ValueError`` for an unknown urgency or a naive ``started_at``.
    """
    if started_at.utcoffset() is None:
        raise ValueError("started_at must be timezone-aware")
    if urgency == Urgency.URGENT:
        window = urgent
    elif urgency == Urgency.NORMAL:
        window = normal
    else:
        known = ", ".join(u.value for u in Urgency)
        raise ValueError(f"unknown urgency {urgency!r} (expected one of: {known})")
    # Add in UTC: aware arithmetic in Python is wall-clock time, so across a DST change a
    # "30 minute" deadline would otherwise be 30 minutes of clock face, not of elapsed time.
    return (started_at.astimezone(UTC) + window).astimezone(started_at.tzinfo)
