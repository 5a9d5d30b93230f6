"""Callbacks: calling back citizens whose calls were missed or abandoned, and review calls (回访).

The store says who is owed a call (``AfterCallStore.callbacks_due``). The scheduler places each
with AMI ``Originate`` (async: the answer carries Asterisk's ``OriginateResponse``), but only
during working hours (a dialplan ``Schedule``), at most ``rate_per_minute`` calls a minute, and at
most ``max_attempts`` times per ticket, ``retry_after`` apart. Every attempt and its result is
logged on the ticket.

``Originate`` is not idempotent: sending it twice rings the citizen twice. An attempt whose answer
was lost (the AMI link dropped, or no answer in time) is therefore recorded as ``unknown`` and
ends the automatic callbacks for that ticket; it is never re-sent, after a reconnect or
otherwise. An operator sees it in the callback log and decides.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from call_transfer.variables import HOTLINE_CALLBACK_REASON, HOTLINE_TICKET
from ivr.ami.errors import AmiActionError, AmiConnectionLost, AmiNotConnected, AmiTimeout
from ivr.ami.protocol import AmiResponse
from ivr.dialplan.model import Schedule
from ivr.engine.schedule import is_open
from ivr.tickets.errors import TicketStoreError
from ivr.tickets.store import AfterCallStore, CallbackAttempt, CallbackDue, CallbackResult

_log = structlog.get_logger("ivr.aftercall")


class AmiActions(Protocol):
    """What the scheduler needs of an AMI link (``ivr.ami.AmiLink`` has it)."""

    async def send_action(
        self, action: Mapping[str, str], *, timeout: float | None = None
    ) -> AmiResponse:
        """Send one action and wait for its complete answer."""
        ...


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """How and when callbacks are placed.

    ``channel`` is a dial string with ``{number}`` for the citizen's number; the answered call
    continues at ``context``/``exten`` (the agents' callback queue) with ``HOTLINE_TICKET`` and
    ``HOTLINE_CALLBACK_REASON`` set.
    """

    channel: str = "PJSIP/{number}@trunk"
    context: str = "hotline-callback"
    exten: str = "s"
    caller_id: str = "12345"
    max_attempts: int = 3
    retry_after: timedelta = timedelta(minutes=30)
    rate_per_minute: float = 10.0
    ring_timeout_s: float = 30.0
    poll_s: float = 30.0
    batch: int = 20


class CallbackScheduler:
    """Places due callbacks through ``ami``; ``run_once`` is one pass, ``start`` runs passes."""

    def __init__(
        self,
        store: AfterCallStore,
        ami: AmiActions,
        schedule: Schedule,
        policy: CallbackPolicy = CallbackPolicy(),
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if policy.max_attempts < 1 or policy.rate_per_minute <= 0:
            raise ValueError("max_attempts must be at least 1 and the rate positive")
        self._store = store
        self._ami = ami
        self._schedule = schedule
        self._policy = policy
        self._clock = clock or (lambda: datetime.now(UTC))
        # A token bucket of one minute's worth of calls: a burst after a quiet hour is bounded.
        self._tokens = min(policy.rate_per_minute, float(policy.batch))
        self._refilled_at: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self.placed = 0
        self.answered = 0
        self.failed = 0
        self.unknown = 0

    async def start(self) -> None:
        """Run a pass every ``poll_s`` seconds (or on ``notify``) in a task owned here."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="callbacks")

    async def close(self) -> None:
        """Stop; an Originate in flight is awaited by cancelling its wait, never re-sent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def notify(self) -> None:
        """Something became due (for example a review call was requested): run a pass now."""
        self._wakeup.set()

    async def _loop(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                await self.run_once()
            except TicketStoreError as exc:
                _log.warning("callbacks.store_unavailable", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._policy.poll_s)

    async def run_once(self) -> int:
        """Place the callbacks that are due, in hours and within the rate; how many were placed."""
        now = self._clock()
        if not is_open(self._schedule, now):
            return 0
        self._refill(now)
        allowed = int(self._tokens)
        if allowed < 1:
            return 0
        due = await self._store.callbacks_due(min(allowed, self._policy.batch), now=now)
        placed = 0
        for item in due:
            result = await self._place(item, now)
            if result is None:  # the link is down: nothing was sent, try next pass
                break
            placed += 1
            self._tokens -= 1
        return placed

    def _refill(self, now: datetime) -> None:
        if self._refilled_at is not None:
            elapsed_min = max((now - self._refilled_at).total_seconds(), 0.0) / 60
            cap = max(self._policy.rate_per_minute, 1.0)
            self._tokens = min(cap, self._tokens + elapsed_min * self._policy.rate_per_minute)
        self._refilled_at = now

    async def _place(self, item: CallbackDue, now: datetime) -> CallbackResult | None:
        ticket, policy = item.ticket, self._policy
        action = {
            "Action": "Originate",
            "Channel": policy.channel.format(number=ticket.caller_number),
            "Context": policy.context,
            "Exten": policy.exten,
            "Priority": "1",
            "CallerID": policy.caller_id,
            "Timeout": str(round(policy.ring_timeout_s * 1000)),
            "Variable": (
                f"{HOTLINE_TICKET}={ticket.ticket_id},{HOTLINE_CALLBACK_REASON}={item.reason}"
            ),
            "Async": "true",
        }
        log = _log.bind(ticket_id=ticket.ticket_id, reason=item.reason)
        try:
            answer = await self._ami.send_action(action, timeout=policy.ring_timeout_s + 10)
        except AmiNotConnected:
            log.warning("callback.ami_down")
            return None
        except (AmiConnectionLost, AmiTimeout) as exc:
            result, detail = CallbackResult.UNKNOWN, str(exc)
        except AmiActionError as exc:
            result, detail = CallbackResult.FAILED, exc.message
        else:
            result, detail = _originate_result(answer)
        attempts = item.attempts + 1
        done = result == CallbackResult.ANSWERED
        retry_at = None
        if result == CallbackResult.FAILED and attempts < policy.max_attempts:
            retry_at = now + policy.retry_after
        self.placed += 1
        if result == CallbackResult.ANSWERED:
            self.answered += 1
        elif result == CallbackResult.FAILED:
            self.failed += 1
        else:
            self.unknown += 1
        await self._store.record_callback_attempt(
            CallbackAttempt(ticket.ticket_id, attempts, now, result, detail),
            retry_at=retry_at, done=done,
        )  # fmt: skip
        log.info("callback.attempt", attempt=attempts, result=str(result), detail=detail)
        return result


def _originate_result(answer: AmiResponse) -> tuple[CallbackResult, str]:
    """ANSWERED or FAILED from the ``OriginateResponse`` of an async Originate."""
    for event in answer.events:
        if event.get("Event") == "OriginateResponse":
            reason = event.get("Reason")
            if event.get("Response").lower() == "success":
                return CallbackResult.ANSWERED, f"channel {event.get('Channel')}"
            return CallbackResult.FAILED, f"reason {reason}"
    # Queued, yet no OriginateResponse: the call may be ringing; never place it again blindly.
    return CallbackResult.UNKNOWN, "no OriginateResponse"
