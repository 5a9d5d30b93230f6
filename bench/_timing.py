"""PBX-side timestamps: from a key's reply written to the service's next command read.

The simulated PBX builds an :class:`~ivr.simpbx.agi_caller.AgiCaller` per FastAGI session;
:func:`timed_pbx` gives it one that also stamps, in this process, the moment the reply carrying
a caller's key is handed to the socket and the moment the next command line has been read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ivr.simpbx import pbx as pbx_module
from ivr.simpbx.agi_caller import AgiCaller
from ivr.simpbx.script import HOLD

# Commands whose 200 reply carries the digit pressed (its code) when result > 0.
_KEY_COMMANDS = ("STREAM FILE", "WAIT FOR DIGIT", "GET OPTION")


@dataclass
class Stamps:
    """Latencies seen by the PBX, by what the service did next, and calls now holding."""

    menu: list[float] = field(default_factory=list)  # key -> next prompt or wait
    emergency: list[float] = field(default_factory=list)  # key -> EXEC Dial of the hand-off
    route: list[float] = field(default_factory=list)  # last key -> first route command
    holding: int = 0
    hold_target: int = 0
    all_holding: asyncio.Event = field(default_factory=asyncio.Event)
    recording: bool = False

    def clear(self) -> None:
        """Forget the latencies seen so far."""
        self.menu.clear()
        self.emergency.clear()
        self.route.clear()


def _key_code(command: str, reply: bytes) -> int:
    if not command.startswith(_KEY_COMMANDS) or not reply.startswith(b"200 result="):
        return 0
    head = reply[11:].split(b" ", 1)[0].split(b"\n", 1)[0]
    return int(head) if head.isdigit() else 0


def _timed_caller(stamps: Stamps) -> type[AgiCaller]:
    class TimedAgiCaller(AgiCaller):
        """An ``AgiCaller`` that stamps key replies and the commands that follow them."""

        _key_at: float | None = None

        async def answer(self, text: str) -> bytes:
            arrived = time.perf_counter()
            if self._key_at is not None and stamps.recording:
                latency = arrived - self._key_at
                if text.startswith("EXEC Dial"):
                    stamps.emergency.append(latency)
                elif text.startswith(_KEY_COMMANDS):
                    stamps.menu.append(latency)
                else:
                    stamps.route.append(latency)
            self._key_at = None
            call = self._call
            if text.startswith("WAIT FOR DIGIT") and call.keys and call.keys[0] == HOLD:
                stamps.holding += 1
                if stamps.holding >= stamps.hold_target > 0:
                    stamps.all_holding.set()
            reply = await super().answer(text)
            if _key_code(text, reply) > 0:
                self._key_at = time.perf_counter()  # the caller writes the reply right after
            return reply

    return TimedAgiCaller


@contextmanager
def timed_pbx(stamps: Stamps) -> Iterator[None]:
    """While open, simulated PBXs of this process stamp key latencies into ``stamps``.

    The simulated PBX has no hook for its FastAGI caller class, so the benchmark swaps the
    name it looks up, in this process only, and puts it back on exit.
    """
    original = pbx_module.AgiCaller
    pbx_module.AgiCaller = _timed_caller(stamps)  # type: ignore[misc]
    try:
        yield
    finally:
        pbx_module.AgiCaller = original  # type: ignore[misc]
