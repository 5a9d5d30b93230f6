"""The IVR as an explicit, sans-I/O state machine over a validated dialplan.

The caller of :class:`MenuWalk` does the I/O: it plays an :class:`Ask`'s prompts,
waits for a key, and feeds back :meth:`MenuWalk.key` or :meth:`MenuWalk.timeout`
until a :class:`Done` says where the call goes. Every way out of a menu ends in a
route to a person or a chosen action: used-up retries go to the menu's fallback
(the default queue unless configured), never to silence or a hang-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from ivr._frozen import fast_init
from ivr.dialplan.model import Action, ActionKind, Dialplan, Line, Menu
from ivr.engine.route import RequestKind, Route, RouteKind, RouteReason, Urgency
from ivr.engine.schedule import is_open


@fast_init
@dataclass(frozen=True, slots=True)
class Ask:
    """Play ``prompts`` (ids, in order), then wait up to ``timeout_s`` for one key."""

    menu: str
    prompts: tuple[str, ...]  # e.g. the invalid-key notice, then the menu prompt
    escape_digits: str  # keys that interrupt the prompts: the menu's keys
    timeout_s: float  # first-digit timeout after the prompts


@fast_init
@dataclass(frozen=True, slots=True)
class Done:
    """The walk is over: play ``announce``, then hand the call to ``route``."""

    route: Route
    announce: tuple[str, ...]


Step: TypeAlias = Ask | Done

_ROUTE_KIND = {
    ActionKind.QUEUE: RouteKind.QUEUE,
    ActionKind.EMERGENCY: RouteKind.EMERGENCY,
    ActionKind.DEPARTMENT: RouteKind.DEPARTMENT,
    ActionKind.INFO: RouteKind.INFO,
    ActionKind.MESSAGE: RouteKind.MESSAGE,
    ActionKind.CALLBACK: RouteKind.CALLBACK,
    ActionKind.HANGUP: RouteKind.HANGUP,
}


class MenuWalk:
    """One call's way through the menus of one line.

    ``path`` records each menu entered and each key pressed, e.g.
    ``("root", "root:2", "complaint", "complaint:1")``; timeouts leave no mark. A
    language key (``root:8``) switches :attr:`language` and asks the same menu again.
    Invalid keys and timeouts share one count per menu visit: after ``retries``
    re-asks the next failure takes the menu's fallback.
    """

    def __init__(self, plan: Dialplan, line: Line, now: datetime, language: str = "zh") -> None:
        self.plan = plan
        self.line = line
        self.now = now
        self._language = language
        self._stack: list[str] = []  # menus entered, for "back"
        self._path: list[str] = []
        self._failures = 0
        self._started = False
        self._done: Done | None = None

    @property
    def path(self) -> tuple[str, ...]:
        """Menus entered and keys pressed so far."""
        return tuple(self._path)

    @property
    def language(self) -> str:
        """The language the caller hears: the one given at the start until a LANGUAGE key."""
        return self._language

    @property
    def menu(self) -> str | None:
        """The menu waiting for a key, or None before the start and after the end."""
        if self._done is not None or not self._stack:
            return None
        return self._stack[-1]

    @property
    def done(self) -> Done | None:
        """The final step, once the walk is over."""
        return self._done

    def start(self) -> Step:
        """The first step: the line's entry menu, or its closed action out of hours."""
        if self._started:
            raise RuntimeError("the walk has already started")
        self._started = True
        schedule_id = self.line.schedule
        if schedule_id is not None and not is_open(self.plan.schedules[schedule_id], self.now):
            return self._perform(self.line.closed, RouteReason.CLOSED)
        return self._enter(self.line.menu)

    def key(self, digit: str) -> Step:
        """The caller pressed ``digit``; a key the menu does not know counts as invalid."""
        menu = self._current()
        self._path.append(f"{menu.id}:{digit}")
        action = menu.keys.get(digit)
        if action is None:
            return self._fail(menu, RouteReason.INVALID)
        return self._perform(action, RouteReason.SELECTED)

    def timeout(self) -> Step:
        """The caller pressed nothing before the timeout."""
        return self._fail(self._current(), RouteReason.TIMEOUT)

    def _current(self) -> Menu:
        menu_id = self.menu
        if menu_id is None:
            raise RuntimeError("no menu is waiting for a key (not started, or already done)")
        return self.plan.menus[menu_id]

    def _ask(self, menu: Menu, lead: tuple[str, ...] = ()) -> Ask:
        return Ask(menu.id, (*lead, menu.prompt), "".join(menu.keys), menu.timeout_s)

    def _enter(self, menu_id: str, lead: tuple[str, ...] = ()) -> Ask:
        self._stack.append(menu_id)
        self._path.append(menu_id)
        self._failures = 0
        return self._ask(self.plan.menus[menu_id], lead)

    def _fail(self, menu: Menu, reason: RouteReason) -> Step:
        self._failures += 1
        if self._failures > menu.retries:
            return self._perform(menu.fallback, reason)
        notice = menu.invalid_prompt if reason is RouteReason.INVALID else menu.timeout_prompt
        return self._ask(menu, (notice,))

    def _perform(self, action: Action, reason: RouteReason) -> Step:
        menu = self.plan.menus[self._stack[-1]] if self._stack else None
        if action.kind is ActionKind.MENU:
            return self._enter(action.target)
        if menu is not None and action.kind is ActionKind.BACK:
            if len(self._stack) > 1:  # "back" in the first menu plays it again
                self._stack.pop()
                self._path.append(self._stack[-1])
                self._failures = 0
            return self._ask(self.plan.menus[self._stack[-1]])
        if menu is not None and action.kind is ActionKind.REPEAT:
            return self._ask(menu)
        if menu is not None and action.kind is ActionKind.LANGUAGE:
            # The caller chose a language: the same menu again, now spoken in it. A fresh
            # count of failures, as when the menu is entered.
            self._language = action.target
            self._failures = 0
            return self._ask(menu)
        if menu is not None and action.kind is ActionKind.INFO and action.then_back:
            self._failures = 0
            return self._ask(menu, (action.target,))
        return self._finish(action, reason, menu)

    def _finish(self, action: Action, reason: RouteReason, menu: Menu | None) -> Done:
        request_kind: RequestKind = (
            action.request_kind or (menu.request_kind if menu else None) or self.line.request_kind
        )
        urgency: Urgency = action.urgency or (menu.urgency if menu else None) or self.line.urgency
        announce = action.announce
        if action.kind is ActionKind.EMERGENCY:
            urgency = Urgency.URGENT
        elif action.kind is ActionKind.INFO:
            announce = (action.target,)
        kind = _ROUTE_KIND.get(action.kind, RouteKind.QUEUE)
        if kind is RouteKind.QUEUE and action.kind is not ActionKind.QUEUE:
            # back/repeat with no menu: the loader forbids it; route to a person anyway.
            target = self.plan.default_queue
        else:
            target = action.target
        self._done = Done(Route(kind, target, request_kind, urgency, reason), announce)
        return self._done
