"""``hotline-ivr simulate``: walk a line's menus without a PBX, printing every step.

The walk is the service's own :class:`~ivr.engine.walk.MenuWalk`, so what an admin sees
here is what a caller gets: each prompt with its Mandarin text, each key and where it
leads, and the ticket fields the call would make.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from ivr.dialplan.model import Dialplan, Line
from ivr.engine.route import Route, RouteKind
from ivr.engine.walk import Ask, Done, MenuWalk, Step
from ivr.tools.errors import ToolError

__all__ = ["HANG_UP", "TIMEOUT", "parse_keys", "parse_when", "scripted", "simulate"]

#: What a key source answers for "the caller pressed nothing".
TIMEOUT = "t"
#: What a key source answers for "the caller hung up".
HANG_UP = "q"

KeySource = Callable[[Ask], str]
_DEFAULT_TIMEZONE = "Asia/Shanghai"


def parse_keys(text: str) -> tuple[str, ...]:
    """``"2,1"`` -> ``("2", "1")``; ``t`` (or an empty item) is a timeout, ``q`` a hang-up."""
    keys: list[str] = []
    for item in text.split(","):
        key = item.strip().lower() or TIMEOUT
        if key not in (TIMEOUT, HANG_UP) and (len(key) != 1 or key not in "0123456789*#"):
            raise ToolError(f"--keys: {item.strip()!r} is not a key (0-9, *, #, t or q)")
        keys.append(key)
    return tuple(keys)


def line_timezone(plan: Dialplan, line: Line) -> ZoneInfo:
    """The timezone a line's hours are judged in: its schedule's, else the first schedule's."""
    if line.schedule is not None:
        return ZoneInfo(plan.schedules[line.schedule].timezone)
    for schedule in plan.schedules.values():
        return ZoneInfo(schedule.timezone)
    return ZoneInfo(_DEFAULT_TIMEZONE)


def parse_when(text: str | None, zone: ZoneInfo) -> datetime:
    """``"2026-10-01 09:00"`` in the line's timezone; None means now."""
    if text is None:
        return datetime.now(zone)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise ToolError(f'--at {text!r} is not a time like "2026-10-01 09:00"') from error
    return when.replace(tzinfo=zone) if when.tzinfo is None else when.astimezone(zone)


def scripted(keys: Sequence[str]) -> KeySource:
    """A key source that presses ``keys`` in order, then hangs up."""
    remaining: Iterator[str] = iter(keys)
    return lambda _ask: next(remaining, HANG_UP)


def simulate(
    plan: Dialplan, number: str, when: datetime, next_key: KeySource, write: Callable[[str], None]
) -> Done | None:
    """Walk line ``number`` at ``when``; ``next_key`` answers each question, ``write`` prints.

    Returns the final step, or None when the caller hung up in the menus.
    """
    line = plan.line_for(number)
    if line is None:
        known = ", ".join(plan.lines)
        raise ToolError(f"no line has the number {number!r} (lines: {known})")
    schedule = f"schedule {line.schedule}" if line.schedule else "open 24x7"
    write(
        f"line {line.number} {line.label}: kind {line.request_kind.value}, "
        f"urgency {line.urgency.value}, {schedule}"
    )
    write(f"time {when.strftime('%Y-%m-%d %H:%M %Z')} ({when.tzinfo})")
    walk = MenuWalk(plan, line, when)
    step: Step = walk.start()
    while isinstance(step, Ask):
        _write_ask(plan, step, walk.language, write)
        key = next_key(step)
        if key == HANG_UP:
            write("caller hangs up in the menus (the ticket records an abandoned call)")
            _write_ticket(line, walk.path, None, write)
            return None
        if key == TIMEOUT:
            write("  no key (timeout)")
            step = walk.timeout()
        else:
            write(f"  key {key}{_where(plan, step.menu, key)}")
            step = walk.key(key)
    _write_done(plan, step, walk.language, write)
    _write_ticket(line, walk.path, step.route, write)
    return step


def _text(plan: Dialplan, prompt_id: str, language: str) -> str:
    """The words of a prompt in the caller's language, or Mandarin where it has none."""
    prompt = plan.prompts.get(prompt_id)
    if prompt is None:
        return ""
    return prompt.texts.get(language) or prompt.texts.get("zh", "")


def _write_ask(plan: Dialplan, ask: Ask, language: str, write: Callable[[str], None]) -> None:
    write(f"menu {ask.menu} (keys {' '.join(ask.escape_digits)}, timeout {ask.timeout_s:g}s)")
    for prompt_id in ask.prompts:
        write(f"  play {prompt_id}: {_text(plan, prompt_id, language)}")


def _where(plan: Dialplan, menu_id: str, key: str) -> str:
    action = plan.menus[menu_id].keys.get(key)
    if action is None:
        return " -> invalid key"
    target = f" {action.target}" if action.target else ""
    return f" -> {action.kind.value}{target}"


def _write_done(plan: Dialplan, done: Done, language: str, write: Callable[[str], None]) -> None:
    for prompt_id in done.announce:
        write(f"  play {prompt_id}: {_text(plan, prompt_id, language)}")
    route = done.route
    write(f"route {route.kind.value} {_describe_target(plan, route)} ({route.reason.value})")


def _describe_target(plan: Dialplan, route: Route) -> str:
    if route.kind in (RouteKind.QUEUE, RouteKind.MESSAGE, RouteKind.CALLBACK):
        queue = plan.queues[route.target]
        return f"{route.target} (Asterisk queue {queue.asterisk_queue}, {queue.label})"
    if route.kind is RouteKind.EMERGENCY:
        service = plan.emergency[route.target]
        dials = " then ".join(target.dial for target in service.targets)
        return f"{route.target} ({service.label}: {dials})"
    if route.kind is RouteKind.DEPARTMENT:
        department = plan.departments[route.target]
        where = department.queue or " then ".join(t.dial for t in department.targets)
        return f"{route.target} ({department.label}: {where})"
    return route.target


def _write_ticket(
    line: Line, path: tuple[str, ...], route: Route | None, write: Callable[[str], None]
) -> None:
    kind = route.request_kind.value if route else line.request_kind.value
    urgency = route.urgency.value if route else line.urgency.value
    where = f"{route.kind.value}:{route.target}" if route else "abandoned-in-ivr"
    write(
        f"ticket line={line.number} label={line.label} kind={kind} urgency={urgency} "
        f"route={where} path={'/'.join(path)}"
    )
