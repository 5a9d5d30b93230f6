"""An emergency call still connected: a line that hands off at once, and a Dial that lasts.

The simulated PBX answers a ``Dial`` at once, while a real emergency call keeps the FastAGI
``EXEC Dial`` running for the whole conversation. With :func:`hold_dials` every ``EXEC Dial``
first waits, its caller listed by ``pbx.holding_channels()``, until the test releases it,
AMI moves or ends the channel, or the service closes the connection (killed); then the Dial
ends as scripted (answered, unless ``dial_outcomes`` says otherwise).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ivr.simpbx.agi_caller import AgiCaller

# Out of hours (it never opens), this line hands off to 119 at once: no menu, no prompt.
AT_ONCE_LINE = "96110"
AT_ONCE_TARGET = "Local/119@emergency-routes"
_AT_ONCE_YAML = f"""\
schedules:
  never-open:
    timezone: Asia/Shanghai
    weekly: {{mon: closed, tue: closed, wed: closed, thu: closed, fri: closed,
             sat: closed, sun: closed}}
lines:
  "{AT_ONCE_LINE}":
    label: 96110 夜间火警
    kind: help
    urgency: urgent
    menu: fire-96119
    schedule: never-open
    closed: {{emergency: fire}}
"""


def write_at_once_line(folder: Path) -> Path:
    """Write the dialplan file of :data:`AT_ONCE_LINE` into ``folder``; its path."""
    path = folder / "at-once.yaml"
    path.write_text(_AT_ONCE_YAML, encoding="utf-8")
    return path


class HeldDials:
    """The dials held by :func:`hold_dials`, until :meth:`release`."""

    def __init__(self) -> None:
        self._released = asyncio.Event()

    def release(self) -> None:
        """Let every held Dial (and every later one) end as scripted."""
        self._released.set()

    async def hold(self, caller: AgiCaller) -> None:
        """Hold one Dial until released, or the caller's hold ends (AMI, or the server gone)."""
        released = asyncio.ensure_future(self._released.wait())
        held = asyncio.ensure_future(caller._hold())
        try:
            await asyncio.wait((released, held), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (released, held):
                waiter.cancel()
            await asyncio.gather(released, held, return_exceptions=True)


def hold_dials(monkeypatch: pytest.MonkeyPatch) -> HeldDials:
    """Make every ``EXEC Dial`` of the simulated PBX last until it is released."""
    dials = HeldDials()
    answer = AgiCaller.answer

    async def answer_when_released(caller: AgiCaller, text: str) -> bytes:
        if text.startswith("EXEC Dial"):
            await dials.hold(caller)
        return await answer(caller, text)

    monkeypatch.setattr(AgiCaller, "answer", answer_when_released)
    return dials
