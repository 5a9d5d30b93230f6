"""One call, from the FastAGI session's first line to its ticket.

The flow: find the line dialled, walk the menus (the engine decides, this module only speaks
AGI), carry out the route (emergency hand-off first of all), tell the dialplan where to go, then
write the ticket. A hangup is a normal outcome; a fault of ours still leaves the caller to the
dialplan's fallback (no HOTLINE_ROUTE means the default queue) and still makes a ticket.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from call_transfer import department, emergency, variables
from ivr import sanitize
from ivr.agi.errors import AgiError, AgiHangup
from ivr.agi.session import AgiSession
from ivr.dialplan.model import EMERGENCY_FAILED_PROMPT, Dialplan
from ivr.engine.lines import LineSources, detect_line
from ivr.engine.route import Route, RouteKind
from ivr.engine.walk import Ask, Done, MenuWalk
from ivr.logs import BoundOnce, bind_call
from ivr.metrics import Metrics
from ivr.tickets.model import Disposition, Ticket, ticket_id_for
from ivr.tickets.sla import sla_due
from ivr.tickets.store import TicketStore

# MSet's argument is split by Asterisk's application-argument parser: ',' separates, quotes,
# backslashes, brackets and parentheses group or escape, '=' splits each pair, and an empty
# value may unset instead of set. The route values are ours (route names, queue and dial
# targets from the validated dialplan, ticket ids made of a Linkedid), so they never carry
# these; a value that does anyway goes by SET VARIABLE, which takes it verbatim.
_MSET_UNSAFE = re.compile(r'[\s,\\"\'|()\[\]${}=;]')
_TICKET_COMMIT_WAIT_S = 0.5  # a slow store must not hold a caller back from the agents
_ROUTE_VARIABLE = {
    RouteKind.QUEUE: variables.ROUTE_QUEUE,
    RouteKind.DEPARTMENT: variables.ROUTE_DEPARTMENT,
    RouteKind.MESSAGE: variables.ROUTE_MESSAGE,
    RouteKind.CALLBACK: variables.ROUTE_HANGUP,
    RouteKind.INFO: variables.ROUTE_HANGUP,
    RouteKind.HANGUP: variables.ROUTE_HANGUP,
}
_DISPOSITION = {
    RouteKind.QUEUE: Disposition.AGENT,
    RouteKind.DEPARTMENT: Disposition.AGENT,
    RouteKind.EMERGENCY: Disposition.EMERGENCY,
    RouteKind.INFO: Disposition.SELF_SERVED,
    RouteKind.MESSAGE: Disposition.MESSAGE,
    RouteKind.CALLBACK: Disposition.CALLBACK,
    RouteKind.HANGUP: Disposition.SELF_SERVED,
}


@dataclass(slots=True)
class _CallState:
    """What the flow learns about one call as it goes; becomes the ticket at the end."""

    linkedid: str
    uniqueid: str
    caller_number: str
    caller_name: str
    started_at: datetime
    started_monotonic: float
    line: Any = None
    route: Route | None = None
    disposition: Disposition = Disposition.ABANDONED
    handoff: emergency.HandoffResult | None = None
    transfer: department.TransferResult | None = None
    ticket_submitted: bool = False
    provisional: asyncio.Future[bool] | None = None
    sla: tuple[str, datetime] | None = None  # (urgency, sla_due) of the last ticket built


def _local_id() -> str:
    """An id of Asterisk's shape for a session whose own ids were unusable."""
    return f"{time.time():.6f}"


class CallHandler:
    """Runs one call per FastAGI session; built once with everything it needs."""

    def __init__(
        self,
        *,
        dialplan: Callable[[], Dialplan],
        store: TicketStore,
        metrics: Metrics,
        node: str = "pbx1",
        backend: str = "sqlite",
        clock: Callable[[], datetime],
    ) -> None:
        self._dialplan = dialplan
        self._store = store
        self._metrics = metrics
        self._node = node
        self._backend = backend
        self._clock = clock
        self._log = BoundOnce("ivr.call")
        self._commit_waits = _BoundedWaits(_TICKET_COMMIT_WAIT_S)

    async def __call__(self, session: AgiSession) -> None:
        """Serve one call; never raises for the caller's or Asterisk's doing."""
        plan = self._dialplan()  # a call finishes on the dialplan version it started with
        env = session.env
        args = (*env.args, "", "", "")
        uniqueid = sanitize.asterisk_id(env.uniqueid) or _local_id()
        state = _CallState(
            linkedid=sanitize.asterisk_id(args[1]) or uniqueid,
            uniqueid=uniqueid,
            caller_number=sanitize.caller_number(env.callerid),
            caller_name=sanitize.caller_name(env.calleridname),
            started_at=self._clock(),
            started_monotonic=time.monotonic(),
        )
        sources = LineSources(
            hotline_dialed=args[0],
            redirecting_from=args[2],
            rdnis=env.rdnis,
            dnid=env.dnid,
            extension=env.extension,
        )
        match = detect_line(plan, sources)
        line = match.line
        state.line = line
        # Bound for the call's task: every line logged while serving it carries these ids.
        with bind_call(
            linkedid=state.linkedid,
            uniqueid=state.uniqueid,
            line=line.number,
            caller=state.caller_number,
            line_source=match.source,
        ):
            await self._serve(session, plan, state)

    async def _serve(self, session: AgiSession, plan: Dialplan, state: _CallState) -> None:
        line = state.line
        # One bound logger for the call's lines: each method called on the lazy proxy from
        # get_logger() builds a logger anew, even for a debug line that is filtered out.
        log = self._log()
        walk = MenuWalk(plan, line, now=state.started_at)
        metrics = self._metrics
        active = metrics.child(metrics.active_calls, line.number)
        active.inc()
        try:
            await self._run(session, plan, walk, state, log)
        except AgiHangup:
            log.info("call.hangup", menu=walk.menu)
        except AgiError as exc:
            # Asterisk misbehaved or timed out; the dialplan fallback takes the caller.
            self._metrics.call_errors.labels(kind="agi").inc()
            state.disposition = Disposition.SERVICE_ERROR
            log.warning("call.agi_error", error=str(exc), kind=type(exc).__name__)
        except Exception:
            # A bug of ours in one call must not touch the others; the fallback takes the caller.
            self._metrics.call_errors.labels(kind="internal").inc()
            state.disposition = Disposition.SERVICE_ERROR
            log.exception("call.failed")
        finally:
            active.dec()
        if not state.ticket_submitted:
            self._submit_ticket(plan, walk, state)
        elapsed = time.monotonic() - state.started_monotonic
        metrics.agi_session_seconds.observe(elapsed)
        metrics.child(metrics.calls, line.number, state.disposition._value_).inc()
        log.info(
            "call.summary",
            path=list(walk.path),
            route=state.route.kind._value_ if state.route else None,
            target=state.route.target if state.route else None,
            reason=state.route.reason._value_ if state.route else None,
            disposition=state.disposition._value_,
            ticket=ticket_id_for(state.linkedid),
            seconds=round(elapsed, 3),
        )

    async def _run(
        self, session: AgiSession, plan: Dialplan, walk: MenuWalk, state: _CallState, log: Any
    ) -> None:
        metrics = self._metrics
        step = walk.start()
        if not (isinstance(step, Done) and step.route.kind is RouteKind.EMERGENCY):
            # The provisional ticket: if this process dies mid-call, a restart finds it and
            # the call still has its one ticket. Not awaited, and never ahead of a line that
            # hands off to 110/119/120/122 at once (its own comes right after the Dial).
            self._submit_provisional(plan, walk, state)
        while isinstance(step, Ask):
            log.debug("ivr.ask", menu=step.menu, prompts=list(step.prompts))
            digit: str | None = None
            for prompt in step.prompts:
                # Read at each prompt: a language key switches it mid-call.
                sound = plan.sound(prompt, walk.language)
                digit = await session.stream_file(sound, step.escape_digits)
                if digit:
                    break
            if not digit:
                digit = await session.wait_for_digit(step.timeout_s)
            key_at = time.perf_counter()
            if digit:
                metrics.child(metrics.ivr_selections, step.menu, digit).inc()
                step = walk.key(digit)
            else:
                metrics.child(metrics.ivr_timeouts, step.menu).inc()
                step = walk.timeout()
            if isinstance(step, Done) and step.route.kind is RouteKind.EMERGENCY:
                state.route = step.route
                await self._emergency(session, plan, walk, step.route, state, key_at, log)
                return
            metrics.key_to_command_seconds.observe(time.perf_counter() - key_at)
        assert isinstance(step, Done)
        state.route = step.route
        for prompt in step.announce:
            await session.stream_file(plan.sound(prompt, walk.language), "")
        if step.route.kind is RouteKind.EMERGENCY:  # a line that means emergency at once
            await self._emergency(session, plan, walk, step.route, state, time.perf_counter(), log)
            return
        await self._send_to(session, plan, walk, step.route, state)

    async def _emergency(
        self,
        session: AgiSession,
        plan: Dialplan,
        walk: MenuWalk,
        route: Route,
        state: _CallState,
        key_at: float,
        log: Any,
    ) -> None:
        service = plan.emergency[route.target]
        self._metrics.emergency_handoff_seconds.observe(time.perf_counter() - key_at)
        if state.provisional is None:
            # A line that hands off at once has no provisional ticket yet, and nothing may
            # come before its Dial, which lasts as long as the emergency call. The session
            # writes the Dial before its first await, so a callback queued now runs after it.
            asyncio.get_running_loop().call_soon(self._submit_provisional, plan, walk, state)
        result = await emergency.hand_off(
            session, service.id, service.targets, line=state.line.number, path=walk.path
        )
        state.handoff = result
        for attempt in result.attempts:
            self._metrics.emergency_dial_attempts.labels(
                service=service.id, status=attempt.status
            ).inc()
        state.disposition = Disposition.EMERGENCY
        if result.answered:
            outcome = "answered" if len(result.attempts) == 1 else "failed_over"
        elif result.caller_gone:
            outcome = "abandoned"
        else:
            outcome = "all_failed"
        self._metrics.emergency_handoffs.labels(service=service.id, result=outcome).inc()
        log.info(
            "emergency.handoff",
            service=service.id,
            outcome=outcome,
            attempts=[(a.target, a.status) for a in result.attempts],
        )
        if outcome == "all_failed":
            # Every route failed: tell the caller to dial the number directly, and put them
            # through to a 12345 supervisor rather than leave them alone.
            await session.stream_file(plan.sound(EMERGENCY_FAILED_PROMPT, walk.language), "")
            supervisor = plan.queues[plan.supervisor_queue]
            await self._set_route(session, variables.ROUTE_QUEUE, supervisor.asterisk_queue, state)

    async def _send_to(
        self, session: AgiSession, plan: Dialplan, walk: MenuWalk, route: Route, state: _CallState
    ) -> None:
        route_value = _ROUTE_VARIABLE[route.kind]
        if route.kind in (RouteKind.QUEUE, RouteKind.MESSAGE, RouteKind.CALLBACK):
            target = plan.queues[route.target].asterisk_queue
        elif route.kind is RouteKind.DEPARTMENT:
            agency = plan.departments[route.target]
            if agency.queue:
                route_value, target = variables.ROUTE_QUEUE, agency.queue
            elif agency.targets:
                await self._department(session, plan, walk, agency.targets, state)
                return
            else:
                target = agency.dial
        else:
            target = route.target
        state.disposition = _DISPOSITION[route.kind]
        await self._commit_then_route(session, plan, walk, state, route_value, target)

    async def _department(
        self,
        session: AgiSession,
        plan: Dialplan,
        walk: MenuWalk,
        targets: tuple[Any, ...],
        state: _CallState,
    ) -> None:
        """按责转办: dial the agency's targets in order; if none answers, a 12345 agent."""
        result = await department.transfer(session, targets, line=state.line.number, path=walk.path)
        state.transfer = result
        if result.answered:
            state.disposition = Disposition.AGENT
        elif result.caller_gone:
            state.disposition = Disposition.ABANDONED
        else:
            state.disposition = Disposition.AGENT
            default = plan.queues[plan.default_queue].asterisk_queue
            await self._commit_then_route(
                session, plan, walk, state, variables.ROUTE_QUEUE, default
            )

    async def _commit_then_route(
        self,
        session: AgiSession,
        plan: Dialplan,
        walk: MenuWalk,
        state: _CallState,
        route_value: str,
        target: str,
    ) -> None:
        # The ticket is committed before anyone (the agent's screen via HOTLINE_TICKET) is told
        # of it; a store that is slow or down delays the caller by a bounded moment at most.
        committed = self._submit_ticket(plan, walk, state)
        # A failure is counted by _count_ticket; it does not change the caller's route.
        await self._commit_waits.settled_within(committed)
        await self._set_route(session, route_value, target, state)

    async def _set_route(
        self, session: AgiSession, route_value: str, target: str, state: _CallState
    ) -> None:
        # HOTLINE_ROUTE last: the dialplan reads it, so it must not name a half-set route.
        assignments = (
            (variables.HOTLINE_TICKET, ticket_id_for(state.linkedid)),
            (variables.HOTLINE_TARGET, target),
            (variables.HOTLINE_ROUTE, route_value),
        )
        if all(_mset_safe(value) for _name, value in assignments):
            # One AGI round trip instead of three; MSet sets them in the order given.
            await session.exec("MSet", *(f"{name}={value}" for name, value in assignments))
            return
        for name, value in assignments:
            await session.set_variable(name, value)

    def _submit_ticket(
        self, plan: Dialplan, walk: MenuWalk, state: _CallState
    ) -> asyncio.Future[bool]:
        state.ticket_submitted = True
        future = self._store.submit(self._ticket(plan, walk, state))
        future.add_done_callback(self._count_ticket)
        return future

    def _submit_provisional(self, plan: Dialplan, walk: MenuWalk, state: _CallState) -> None:
        ticket = self._ticket(
            plan, walk, state, disposition=Disposition.IN_PROGRESS, ended_at=state.started_at
        )
        # Its outcome is the final ticket's concern (a failure shows in writable and the log);
        # the future is held so the loop never warns of an exception nobody retrieved.
        state.provisional = self._store.submit(ticket)
        state.provisional.add_done_callback(_consume)

    def _ticket(
        self,
        plan: Dialplan,
        walk: MenuWalk,
        state: _CallState,
        *,
        disposition: Disposition | None = None,
        ended_at: datetime | None = None,
    ) -> Ticket:
        line = state.line
        route = state.route
        # _value_, not .value: the same string without the enum's Python-level descriptor.
        request_kind = route.request_kind._value_ if route else line.request_kind._value_
        urgency = route.urgency._value_ if route else line.urgency._value_
        handoff = state.handoff
        extra = {"dialplan": plan.version, "route_reason": route.reason._value_ if route else ""}
        route_target = route.target if route else ""
        if state.transfer is not None:
            extra["transfer_result"] = state.transfer.last_status
            route_target = state.transfer.last_target or route_target
        return Ticket(
            ticket_id=ticket_id_for(state.linkedid),
            linkedid=state.linkedid,
            uniqueid=state.uniqueid,
            caller_number=state.caller_number,
            caller_name=state.caller_name,
            dialled_line=line.number,
            source_label=line.label,
            ivr_path=tuple(walk.path),
            request_kind=request_kind,
            urgency=urgency,
            sla_due=self._sla_due(state, urgency),
            route_kind=route.kind._value_ if route else "",
            route_target=route_target,
            disposition=state.disposition if disposition is None else disposition,
            started_at=state.started_at,
            ended_at=self._clock() if ended_at is None else ended_at,
            emergency_service=handoff.service if handoff else "",
            emergency_target=handoff.last_target if handoff else "",
            emergency_result=handoff.last_status if handoff else "",
            node=self._node,
            language=walk.language,
            extra=extra,
        )

    @staticmethod
    def _sla_due(state: _CallState, urgency: str) -> datetime:
        """``sla_due`` of the call's start, computed once per urgency: the provisional and the
        final ticket of a call almost always share it."""
        cached = state.sla
        if cached is not None and cached[0] == urgency:
            return cached[1]
        due = sla_due(urgency, state.started_at)
        state.sla = (urgency, due)
        return due

    def _count_ticket(self, future: Any) -> None:
        if future.cancelled() or future.exception() is not None:
            result = "failed"
        else:
            result = "created" if future.result() else "duplicate"
        self._metrics.child(self._metrics.tickets, self._backend, result).inc()


class _BoundedWaits:
    """Waits for futures, each until it is done or ``seconds`` have passed, whichever comes
    first; a future is never cancelled. What ``wait_for(shield(future), seconds)`` does, with
    one timer for all the calls waiting rather than a timer (and a shield) each.

    Every wait has the same bound, so deadlines come in the order the waits start: a deque
    holds them, and the one timer, armed at the oldest deadline, wakes every overdue waiter
    and re-arms itself at the next. A wait that ended early stays in the deque, done, until
    its deadline passes; the timer then drops it.
    """

    __slots__ = ("_loop", "_seconds", "_timer", "_waiting")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def settled_within(self, future: asyncio.Future[Any]) -> None:
        """Return once ``future`` is done or after the bound, whichever comes first."""
        if future.done():
            return
        loop = future.get_loop()
        if loop is not self._loop:  # the first wait, or a new loop (tests): start afresh
            self._loop, self._timer = loop, None
            self._waiting.clear()
        waiter: asyncio.Future[None] = loop.create_future()
        deadline = loop.time() + self._seconds
        self._waiting.append((deadline, waiter))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)
        wake = partial(_settle, waiter)
        future.add_done_callback(wake)
        try:
            await waiter
        finally:
            future.remove_done_callback(wake)

    def _expire(self) -> None:
        loop, waiting = self._loop, self._waiting
        assert loop is not None
        self._timer = None
        now = loop.time()
        while waiting:
            deadline, waiter = waiting[0]
            if deadline > now:
                self._timer = loop.call_at(deadline, self._expire)
                return
            waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)


def _settle(waiter: asyncio.Future[None], _: object = None) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _consume(future: asyncio.Future[bool]) -> None:
    """Retrieve a provisional write's outcome, so a failure is not reported as unhandled."""
    if not future.cancelled():
        future.exception()


def _mset_safe(value: str) -> bool:
    """Whether ``value`` reaches the channel unchanged as one ``name=value`` of ``MSet``."""
    return bool(value) and _MSET_UNSAFE.search(value) is None
