"""Readers for each section of a dialplan file: YAML values in, model objects out."""

from __future__ import annotations

import re
from datetime import date
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.dialplan._fields import Reader, join
from ivr.dialplan._yaml import Mark, YList, YMap, YNode, YScalar
from ivr.dialplan.model import (
    DTMF_KEYS,
    EMERGENCY_NUMBERS,
    Action,
    ActionKind,
    Department,
    DialTarget,
    EmergencyService,
    Prompt,
    Queue,
    Schedule,
    TimeRange,
)
from ivr.engine.route import RequestKind, Urgency

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_TIME_RANGE = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})\Z")

# Which object kind each action's target names.
_TARGET_KIND = {
    ActionKind.MENU: "menu",
    ActionKind.QUEUE: "queue",
    ActionKind.MESSAGE: "queue",
    ActionKind.CALLBACK: "queue",
    ActionKind.EMERGENCY: "emergency",
    ActionKind.DEPARTMENT: "department",
    ActionKind.INFO: "prompt",
    ActionKind.HANGUP: "prompt",
    ActionKind.LANGUAGE: "language",  # checked against settings.languages
}
_BARE_VERBS = {"back": ActionKind.BACK, "repeat": ActionKind.REPEAT, "hangup": ActionKind.HANGUP}
_ROUTING = (ActionKind.QUEUE, ActionKind.DEPARTMENT, ActionKind.MESSAGE, ActionKind.CALLBACK)
# Modifiers each action accepts besides its verb.
_MODIFIERS: dict[ActionKind, tuple[str, ...]] = {
    ActionKind.MENU: (),
    ActionKind.QUEUE: ("kind", "urgency", "announce"),
    ActionKind.DEPARTMENT: ("kind", "urgency", "announce"),
    ActionKind.MESSAGE: ("kind", "urgency", "announce"),
    ActionKind.CALLBACK: ("kind", "urgency", "announce"),
    ActionKind.EMERGENCY: ("kind", "announce"),  # an emergency is always urgent
    ActionKind.INFO: ("kind", "then"),
    ActionKind.HANGUP: (),
    ActionKind.LANGUAGE: (),
}
TRANSFERRING = "transferring"
# Seconds each dial target rings when the file gives no timeout: an emergency route is
# given up sooner (the next route must ring while the caller still waits), an agency
# gets the minute the hand-written Asterisk dialplan always gave it.
EMERGENCY_DIAL_TIMEOUT_S = 20
DEPARTMENT_DIAL_TIMEOUT_S = 60


def read_action(reader: Reader, node: YNode, path: str) -> Action | None:
    """An action: ``back``/``repeat``/``hangup``, or a mapping such as ``{queue: general}``."""
    if isinstance(node, YScalar):
        verb = _BARE_VERBS.get(node.value)
        if verb is None:
            reader.report(
                node.mark,
                path,
                f"{node.value!r} is not an action; write back, repeat, "
                "hangup or a mapping such as {queue: general}",
            )
            return None
        return Action(verb)
    if not isinstance(node, YMap):
        reader.report(node.mark, path, "expected an action, found a list")
        return None
    verbs = [(key, value) for key, value in node.items if key.value in _TARGET_KIND]
    if len(verbs) != 1:
        names = ", ".join(str(kind.value) for kind in _TARGET_KIND)
        reader.report(node.mark, path, f"an action needs exactly one of: {names}")
        return None
    verb_key, target_node = verbs[0]
    kind = ActionKind(verb_key.value)
    if not reader.fields(node, path, (verb_key.value,), _MODIFIERS[kind]):
        return None
    target_path = join(path, verb_key.value)
    target = reader.ident(target_node, target_path)
    if target is None:
        return None
    reader.refer(_TARGET_KIND[kind], target, target_node.mark, target_path)
    request_kind = urgency = None
    if (kind_node := node.get("kind")) is not None:
        request_kind = reader.choice(kind_node, join(path, "kind"), RequestKind)
    if (urgency_node := node.get("urgency")) is not None:
        urgency = reader.choice(urgency_node, join(path, "urgency"), Urgency)
    then_back = kind is ActionKind.INFO
    if (then_node := node.get("then")) is not None:
        then = reader.text(then_node, join(path, "then"))
        if then not in ("back", "end", None):
            reader.report(then_node.mark, join(path, "then"), "expected back or end")
        then_back = then != "end"
    announce: tuple[str, ...] = ()
    if (announce_node := node.get("announce")) is not None:
        found = reader.texts(announce_node, join(path, "announce")) or ()
        for prompt_id, prompt_node in found:
            reader.refer("prompt", prompt_id, prompt_node.mark, join(path, "announce"))
        announce = tuple(prompt_id for prompt_id, _ in found)
    elif kind in (ActionKind.QUEUE, ActionKind.DEPARTMENT):
        announce = (TRANSFERRING,)
        reader.refer("prompt", TRANSFERRING, node.mark, path, "the default announcement")
    if kind is ActionKind.HANGUP:
        announce, target = (target,), ""  # {hangup: goodbye}: say goodbye, then hang up
    return Action(kind, target, request_kind, urgency, announce, then_back)


def routing_fallback(
    reader: Reader, action: Action | None, node: YNode, path: str
) -> Action | None:
    """A menu's fallback must reach a person: a queue, department, message or callback."""
    if action is not None and action.kind not in _ROUTING:
        reader.report(
            node.mark,
            path,
            "a fallback must be queue, department, message or "
            f"callback, so nobody is left in silence; found {action.kind.value}",
        )
        return None
    return action


def read_keys(reader: Reader, node: YNode, path: str) -> dict[str, Action]:
    """A menu's keys: each a single DTMF key (0-9, *, #) -> an action."""
    mapping = reader.mapping(node, path)
    if mapping is None:
        return {}
    if not mapping.items:
        reader.report(mapping.mark, path, "a menu needs at least one key")
    keys: dict[str, Action] = {}
    for key, value in mapping.items:
        key_path = join(path, key.value)
        if len(key.value) != 1 or key.value not in DTMF_KEYS:
            reader.report(
                key.mark, key_path, f"{key.value!r} is not a phone key (one of 0-9, * and #)"
            )
            continue
        action = read_action(reader, value, key_path)
        if action is not None:
            keys[key.value] = action
    return keys


def read_prompt(
    reader: Reader, prompt_id: str, node: YNode, path: str, languages: tuple[str, ...]
) -> Prompt | None:
    """A prompt: texts by language, Mandarin required."""
    mapping = reader.mapping(node, path)
    if mapping is None:
        return None
    texts: dict[str, str] = {}
    for key, value in mapping.items:
        text = reader.text(value, join(path, key.value))
        if key.value not in languages:
            reader.report(
                key.mark,
                join(path, key.value),
                f"language {key.value!r} is not in settings.languages",
            )
        elif text is not None:
            texts[key.value] = text
    if "zh" not in texts and not any(key.value == "zh" for key, _ in mapping.items):
        reader.report(mapping.mark, path, "missing required key 'zh' (the Mandarin text)")
    for language in languages:
        if language != "zh" and language not in texts:
            reader.report(
                mapping.mark, path, f"no {language!r} text; the zh recording is used", "warning"
            )
    return Prompt(prompt_id, MappingProxyType(texts))


def read_queue(reader: Reader, queue_id: str, node: YNode, path: str) -> Queue | None:
    """An agent queue: its Asterisk name and label."""
    mapping = reader.mapping(node, path)
    if mapping is None or not reader.fields(mapping, path, ("asterisk_queue", "label"), ()):
        return None
    name = reader.text(mapping.get("asterisk_queue") or mapping, join(path, "asterisk_queue"))
    label = reader.text(mapping.get("label") or mapping, join(path, "label"))
    return Queue(queue_id, name, label) if name and label else None


def read_department(
    reader: Reader, department_id: str, node: YNode, path: str
) -> Department | None:
    """An agency: a label and exactly one of a dial string, dial targets or an Asterisk queue."""
    mapping = reader.mapping(node, path)
    if mapping is None or not reader.fields(
        mapping, path, ("label",), ("dial", "targets", "queue")
    ):
        return None
    label = reader.text(mapping.get("label") or mapping, join(path, "label"))
    dial_node, queue_node = mapping.get("dial"), mapping.get("queue")
    targets_node = mapping.get("targets")
    if sum(node is not None for node in (dial_node, queue_node, targets_node)) != 1:
        reader.report(mapping.mark, path, "give exactly one of 'dial', 'targets' and 'queue'")
        return None
    queue = reader.text(queue_node, join(path, "queue")) if queue_node is not None else ""
    targets: tuple[DialTarget, ...] | None = ()
    if dial_node is not None:
        dial = reader.text(dial_node, join(path, "dial"))
        targets = (DialTarget(dial, DEPARTMENT_DIAL_TIMEOUT_S),) if dial is not None else None
    elif targets_node is not None:
        targets = _read_targets(
            reader, targets_node, join(path, "targets"), DEPARTMENT_DIAL_TIMEOUT_S
        )
    if label is None or queue is None or targets is None:
        return None
    return Department(department_id, label, targets[0].dial if targets else "", queue, targets)


def _read_targets(
    reader: Reader, node: YNode, path: str, default_timeout: int
) -> tuple[DialTarget, ...] | None:
    """A non-empty list of ``{dial, timeout}`` in failover order; None if any is unusable."""
    if not isinstance(node, YList) or not node.items:
        reader.report(node.mark, path, "expected a non-empty list of {dial, timeout}")
        return None
    targets = [
        _read_target(reader, item, join(path, str(index)), default_timeout)
        for index, item in enumerate(node.items)
    ]
    usable = tuple(target for target in targets if target is not None)
    return usable if len(usable) == len(targets) else None


def read_emergency(
    reader: Reader, service_id: str, key: YScalar, node: YNode, path: str
) -> EmergencyService | None:
    """An emergency service with its dial targets in failover order."""
    expected = EMERGENCY_NUMBERS.get(service_id)
    if expected is None:
        reader.report(
            key.mark,
            path,
            f"unknown emergency service {service_id!r} "
            f"(expected one of: {', '.join(EMERGENCY_NUMBERS)})",
        )
        return None
    mapping = reader.mapping(node, path)
    if mapping is None or not reader.fields(mapping, path, ("number", "label", "targets"), ()):
        return None
    number_node = mapping.get("number") or mapping
    number = reader.text(number_node, join(path, "number"))
    if number is not None and number != expected:
        reader.report(
            number_node.mark,
            join(path, "number"),
            f"the {service_id} service is {expected}, not {number}",
        )
    label = reader.text(mapping.get("label") or mapping, join(path, "label"))
    targets = _read_targets(
        reader, mapping.get("targets") or mapping, join(path, "targets"), EMERGENCY_DIAL_TIMEOUT_S
    )
    if label is None or number != expected or targets is None:
        return None
    return EmergencyService(service_id, expected, label, targets)


def _read_target(reader: Reader, node: YNode, path: str, default_timeout: int) -> DialTarget | None:
    mapping = reader.mapping(node, path)
    if mapping is None or not reader.fields(mapping, path, ("dial",), ("timeout",)):
        return None
    dial = reader.text(mapping.get("dial") or mapping, join(path, "dial"))
    timeout: int | None = default_timeout
    if (timeout_node := mapping.get("timeout")) is not None:
        timeout = reader.integer(timeout_node, join(path, "timeout"), 1)
    return DialTarget(dial, timeout) if dial is not None and timeout is not None else None


def read_schedule(reader: Reader, schedule_id: str, node: YNode, path: str) -> Schedule | None:
    """Business hours: timezone, weekly hours, holidays and make-up working days."""
    mapping = reader.mapping(node, path)
    if mapping is None or not reader.fields(
        mapping, path, ("timezone", "weekly"), ("holidays", "makeup_days", "makeup_hours")
    ):
        return None
    zone_node = mapping.get("timezone") or mapping
    zone = reader.text(zone_node, join(path, "timezone"))
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            reader.report(zone_node.mark, join(path, "timezone"), f"unknown timezone {zone!r}")
            zone = None
    weekly = _read_weekly(reader, mapping.get("weekly") or mapping, join(path, "weekly"))
    holidays = _read_dates(reader, mapping.get("holidays"), join(path, "holidays"), {})
    makeup_marks: dict[date, Mark] = {}
    makeup = _read_dates(
        reader, mapping.get("makeup_days"), join(path, "makeup_days"), makeup_marks
    )
    for day in sorted(holidays.keys() & makeup.keys()):
        reader.report(
            makeup_marks[day],
            join(path, "makeup_days"),
            f"{day.isoformat()} is both a holiday and a make-up working day",
        )
    makeup_hours: tuple[TimeRange, ...] | None = weekly[0] if weekly else ()
    if (hours_node := mapping.get("makeup_hours")) is not None:
        makeup_hours = _read_ranges(reader, hours_node, join(path, "makeup_hours"))
    if zone is None or weekly is None or makeup_hours is None:
        return None
    return Schedule(
        schedule_id,
        zone,
        weekly,
        MappingProxyType(holidays),
        MappingProxyType(makeup),
        makeup_hours,
    )


def _read_weekly(
    reader: Reader, node: YNode, path: str
) -> tuple[tuple[TimeRange, ...], ...] | None:
    mapping = reader.mapping(node, path)
    if mapping is None or not reader.fields(mapping, path, (), WEEKDAYS):
        return None
    days: list[tuple[TimeRange, ...]] = []
    ok = True
    for day in WEEKDAYS:
        day_node = mapping.get(day)
        ranges = _read_ranges(reader, day_node, join(path, day)) if day_node is not None else ()
        ok = ok and ranges is not None
        days.append(ranges or ())
    return tuple(days) if ok else None


def _read_ranges(reader: Reader, node: YNode, path: str) -> tuple[TimeRange, ...] | None:
    """A day's hours: a list of "08:30-12:00"; ``closed`` or an empty list for none."""
    if isinstance(node, YScalar) and node.value == "closed":
        return ()
    found = reader.texts(node, path)
    if found is None:
        return None
    ranges: list[TimeRange] = []
    for text, item in found:
        match = _TIME_RANGE.match(text)
        minutes = [int(part) for part in match.groups()] if match else []
        start = minutes[0] * 60 + minutes[1] if minutes else -1
        end = minutes[2] * 60 + minutes[3] if minutes else -1
        if (
            not minutes
            or minutes[1] > 59
            or minutes[3] > 59
            or minutes[0] > 23
            or end > 24 * 60
            or start >= end
        ):
            reader.report(item.mark, path, f"{text!r} is not a time range like 08:30-12:00")
            return None
        ranges.append(TimeRange(start, end))
    return tuple(sorted(ranges, key=lambda r: r.start))


def _read_dates(
    reader: Reader, node: YNode | None, path: str, marks: dict[date, Mark]
) -> dict[date, str]:
    """Dates with a name: ``2026-10-01: 国庆节`` (a plain list of dates works too).

    ``marks`` receives where each date was written.
    """
    if node is None:
        return {}
    entries: list[tuple[YScalar, str]] = []
    if isinstance(node, YList):
        entries = [(item, "") for item in node.items if isinstance(item, YScalar)]
        if len(entries) != len(node.items):
            reader.report(node.mark, path, "expected a list of dates")
    else:
        mapping = reader.mapping(node, path)
        for key, value in mapping.items if mapping else ():
            name = (
                reader.text(value, join(path, key.value))
                if not (isinstance(value, YScalar) and value.tag == "null")
                else ""
            )
            entries.append((key, name or ""))
    days: dict[date, str] = {}
    for item, name in entries:
        try:
            day = date.fromisoformat(item.value)
        except ValueError:
            reader.report(
                item.mark, join(path, item.value), f"{item.value!r} is not a date like 2026-10-01"
            )
            continue
        if day in days:
            reader.report(item.mark, join(path, item.value), f"{item.value} is listed twice")
        days[day] = name
        marks[day] = item.mark
    return days
