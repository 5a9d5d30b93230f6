"""The mutable state of one simulated call, shared by its AGI session, the dialplan and AMI."""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable

from ivr.simpbx._channel import Channel
from ivr.simpbx.script import HANGUP, HOLD, WAIT, CallScript

_REFERENCE = re.compile(r"\$\{([^{}]*)\}")

# Why a call's channel ended before the dialplan could route it.
ENDED_BY_CALLER = "caller"
ENDED_BY_SERVICE = "service"  # AGI HANGUP / EXEC Hangup
ENDED_BY_DIAL = "dial"  # an answered Dial inside the AGI: the conversation happened, then hangup
ENDED_BY_AMI = "ami"  # AMI Hangup action


def expand_keys(keys: tuple[str, ...]) -> deque[str]:
    """One queue entry per keypress: ``"12#"`` becomes three, the words stay whole."""
    pending: deque[str] = deque()
    for key in keys:
        if key in (WAIT, HANGUP, HOLD):
            pending.append(key)
        else:
            pending.extend(key)
    return pending


class CallState:
    """Everything the simulation knows about one call while it runs."""

    __slots__ = (
        "_interrupted",
        "_on_hold",
        "agi_dead",
        "agi_writer",
        "channel",
        "commands",
        "dial_attempts",
        "dial_destination",
        "ended_by",
        "holding",
        "in_agi",
        "interrupt_pending",
        "keys",
        "prompts",
        "redirect_target",
        "script",
        "survey_from",
        "survey_status",
        "variables",
    )

    def __init__(
        self, script: CallScript, channel: Channel, on_hold: Callable[[], None] | None = None
    ) -> None:
        self.script = script
        self.channel = channel
        self.variables: dict[str, str] = {}
        self.commands: list[str] = []
        self.prompts: list[str] = []
        self.dial_attempts: list[tuple[str, str]] = []
        self.keys = expand_keys(script.keys)
        self.ended_by = ""  # one of ENDED_BY_*, "" while the channel lives
        self.dial_destination = ""
        self.redirect_target: tuple[str, str, str] | None = None
        self.interrupt_pending = False  # an AMI Redirect/Hangup not yet told to the AGI server
        self.agi_dead = False  # the AGI server was sent HANGUP: only dead-channel commands run
        self.in_agi = False
        self.agi_writer: asyncio.StreamWriter | None = None  # closed by abandon() to end the AGI
        self._interrupted: asyncio.Future[None] | None = None
        self.holding = False  # the caller holds in silence, waiting for AMI
        self._on_hold = on_hold  # told when the caller starts holding
        self.survey_status = ""  # the survey AGI's AGISTATUS; "" when there was no survey
        # Where the survey's commands and prompts start in ``commands`` / ``prompts``.
        self.survey_from: tuple[int, int] | None = None

    # -- AMI side -------------------------------------------------------------------------

    def redirect(self, context: str, exten: str, priority: str) -> None:
        """An AMI ``Redirect``: the channel leaves the AGI for ``context,exten,priority``."""
        self.redirect_target = (context, exten, priority)
        self._interrupt()

    def hang_up_from_ami(self) -> None:
        """An AMI ``Hangup`` of the channel."""
        if not self.ended_by:
            self.ended_by = ENDED_BY_AMI
        self._interrupt()

    def abandon(self) -> None:
        """The PBX is shutting down: the caller is gone."""
        if not self.ended_by:
            self.ended_by = ENDED_BY_CALLER
        self._interrupt()
        if self.agi_writer is not None:
            self.agi_writer.close()

    def _interrupt(self) -> None:
        if self.in_agi and not self.agi_dead:
            self.interrupt_pending = True
        if self._interrupted is not None and not self._interrupted.done():
            self._interrupted.set_result(None)

    async def wait_interrupt(self) -> None:
        """Block while the caller holds, until AMI moves or ends the channel."""
        if self.interrupt_pending:
            return
        self._interrupted = asyncio.get_running_loop().create_future()
        self.holding = True
        if self._on_hold is not None:
            self._on_hold()
        try:
            await self._interrupted
        finally:
            self.holding = False
            self._interrupted = None

    # -- variables ------------------------------------------------------------------------

    def set_variable(self, name: str, value: str) -> str:
        """Store a channel variable; returns the name without inheritance underscores."""
        bare = name.lstrip("_")
        self.variables[bare] = value
        return bare

    def lookup(self, name: str) -> str | None:
        """A variable or dialplan function as ``GET VARIABLE`` sees it; ``None`` when unset."""
        if name in self.variables:
            return self.variables[name]
        script, channel = self.script, self.channel
        upper = name.upper()
        trunk = script.tech.upper() != "LOCAL"
        functions = {
            "CALLERID(NUM)": script.caller_number,
            "CALLERID(NAME)": script.caller_name,
            "CALLERID(ALL)": f'"{script.caller_name}" <{script.caller_number}>',
            "CALLERID(DNID)": script.dialled if trunk else "",
            "CALLERID(RDNIS)": script.forwarded_from,
            "REDIRECTING(FROM-NUM)": script.forwarded_from,
            "REDIRECTING(REASON)": "cfu" if script.forwarded_from else "",
            "REDIRECTING(COUNT)": "0",  # what the recorded forwarded call reports
            "CHANNEL(LINKEDID)": channel.linkedid,
            "CHANNEL(UNIQUEID)": channel.uniqueid,
            "CHANNEL(NAME)": channel.name,
            "CHANNEL(LANGUAGE)": channel.language,
            "CHANNEL": channel.name,
            "UNIQUEID": channel.uniqueid,
            "EXTEN": channel.exten,
            "CONTEXT": channel.context,
            "PRIORITY": str(channel.priority),
        }
        if upper in functions:
            return functions[upper]
        if upper in ("SIP_HEADER(DIVERSION)", "PJSIP_HEADER(READ,DIVERSION)"):
            if not script.forwarded_from:
                return None
            return f"<sip:{script.forwarded_from}@127.0.0.1>;reason=unconditional;counter=1"
        return None

    def substitute(self, expression: str) -> str:
        """``${NAME}`` references replaced as ``GET FULL VARIABLE`` does (unknown ones empty)."""
        return _REFERENCE.sub(lambda match: self.lookup(match.group(1)) or "", expression)
