"""Calls that 110 sends over arrive on their own line and are ticketed with that source."""

from __future__ import annotations

from ivr.simpbx import CallScript
from tests.integration.conftest import Hotline, dialplans_dir, hotline

__all__ = ["dialplans_dir", "hotline"]  # fixtures, imported for the tests below


async def test_call_from_110_is_recognised_and_ticketed(hotline: Hotline) -> None:
    """A call on the 110 link's number is queued for the link's agents with its source label."""
    record, ticket = await hotline.call(CallScript("13800138000", dialled="12345110"))
    assert record.destination == "queue:hotline-110-link"
    assert ticket is not None
    assert (ticket.dialled_line, ticket.source_label) == ("12345110", "110转办 两线联动")
    assert ticket.urgency == "urgent"


async def test_police_matter_goes_back_to_110(hotline: Hotline) -> None:
    """Key 9 on the 110 link hands the caller back to 110 through the police targets."""
    record, ticket = await hotline.call(CallScript("13800138000", dialled="12345110", keys=("9",)))
    assert record.dial_attempts == (("Local/110@emergency-routes", "ANSWER"),)
    assert ticket is not None and ticket.emergency_service == "police"
