"""Dial a list of targets in order from inside a FastAGI session until one answers.

Shared by the emergency hand-off and the department transfer (按责转办): both need every
attempt's DIALSTATUS at once, so the next target is tried without a round trip through
the dialplan, and both record what happened for the ticket.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from call_transfer import variables
from ivr.agi.errors import AgiHangup

# An answered call keeps the Dial command running for the whole conversation; the bound
# only keeps a wedged channel from holding the session for ever.
LONGEST_CALL_S = 4 * 3600.0

ANSWER = "ANSWER"
CANCEL = "CANCEL"

# Context of the pre-dial Gosub the generated dialplan provides: it runs on the called
# channel before it rings and turns its two arguments into variables / SIP headers.
PREDIAL_CONTEXT = "hotline-predial"

# Gosub arguments are split on "^" and ","; brackets, quotes and "$" would be read by the
# dialplan parser. Menu ids and keys never need them, so anything else becomes "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:*#+-]")


class DialTargetLike(Protocol):
    """One dial target, as the dialplan model gives it (emergency service or department)."""

    @property
    def dial(self) -> str: ...

    @property
    def timeout_s(self) -> int: ...


class AgiDialer(Protocol):
    """The part of an AGI session a failover dial needs."""

    async def exec(self, application: str, *args: str, timeout: float | None = None) -> object: ...

    async def get_variable(self, name: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class DialAttempt:
    """One dial of one target and how it ended.

    ``elapsed_s`` is the time around the ``Dial`` command as the service saw it: for a
    failed attempt, how long the caller waited for that target; for an answered one it
    includes the whole conversation.
    """

    target: str
    status: str  # DIALSTATUS: ANSWER, BUSY, NOANSWER, CONGESTION, CHANUNAVAIL, CANCEL ...
    elapsed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class DialSequence:
    """Every attempt of one failover dial, in order."""

    attempts: tuple[DialAttempt, ...]
    caller_gone: bool  # the caller hung up before any target answered


class OutcomeMixin:
    """Read-only views shared by the results built on a :class:`DialSequence`."""

    __slots__ = ()
    attempts: tuple[DialAttempt, ...]

    @property
    def answered(self) -> bool:
        """Whether a target took the call."""
        return bool(self.attempts) and self.attempts[-1].status == ANSWER

    @property
    def last_target(self) -> str:
        """The target that answered, or the last one tried."""
        return self.attempts[-1].target if self.attempts else ""

    @property
    def last_status(self) -> str:
        """DIALSTATUS of the last attempt."""
        return self.attempts[-1].status if self.attempts else ""

    @property
    def waited_before_answer_s(self) -> float | None:
        """Seconds the caller spent on failed targets before the one that answered.

        ``None`` when nobody answered. The ring time of the answering target itself is
        not in it (an answered Dial returns only when the conversation ends).
        """
        if not self.answered:
            return None
        return sum(attempt.elapsed_s for attempt in self.attempts[:-1])


def predial_option(line: str, path: Sequence[str]) -> str:
    """Dial's ``b()`` option carrying the line and the menu path to the called channel.

    ``b(hotline-predial^s^1(12345^root/root:9/emergency/emergency:1))``.
    """
    safe_line = _UNSAFE.sub("_", line)
    safe_path = "/".join(_UNSAFE.sub("_", step) for step in path)
    return f"b({PREDIAL_CONTEXT}^s^1({safe_line}^{safe_path}))"


async def dial_in_order(
    session: AgiDialer,
    targets: Sequence[DialTargetLike],
    *,
    options: str = "",
    clock: Callable[[], float] = time.monotonic,
) -> DialSequence:
    """Dial ``targets`` in order until one answers, with Dial ``options`` on each.

    Any status but ANSWER moves to the next target (BUSY, NOANSWER, CONGESTION,
    CHANUNAVAIL and the rarer ones alike: for an emergency, trying the next route is
    always right). A hangup of the caller ends the sequence (a normal outcome).
    """
    attempts: list[DialAttempt] = []
    for target in targets:
        args = [target.dial, str(target.timeout_s)]
        if options:
            args.append(options)
        started = clock()
        try:
            reply = await session.exec("Dial", *args, timeout=LONGEST_CALL_S)
        except AgiHangup:
            # The caller left while the target rang: nobody answered.
            attempts.append(DialAttempt(target.dial, CANCEL, clock() - started))
            return DialSequence(tuple(attempts), caller_gone=True)
        elapsed = clock() - started
        # Dial answers result=-1 once an answered call has ended (the caller's channel is
        # then gone), and result=0 after a failed attempt, with DIALSTATUS telling why.
        answered_and_ended = getattr(reply, "result", "") == "-1"
        try:
            status = await session.get_variable(variables.DIALSTATUS) or ""
        except AgiHangup:
            status = ANSWER if answered_and_ended else CANCEL
            attempts.append(DialAttempt(target.dial, status, elapsed))
            return DialSequence(tuple(attempts), caller_gone=status != ANSWER)
        attempts.append(DialAttempt(target.dial, status, elapsed))
        if status == ANSWER:
            break
    return DialSequence(tuple(attempts), caller_gone=False)
