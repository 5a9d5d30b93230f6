"""Load and validate YAML dialplans into one frozen :class:`Dialplan`, reporting every mistake."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from ivr.dialplan._fields import Reader, join
from ivr.dialplan._sections import (
    read_action,
    read_department,
    read_emergency,
    read_keys,
    read_prompt,
    read_queue,
    read_schedule,
    routing_fallback,
)
from ivr.dialplan._yaml import Mark, YNode, YScalar, parse_yaml
from ivr.dialplan.errors import DialplanError, Problem
from ivr.dialplan.model import (
    AFTERCALL_PROMPTS,
    EMERGENCY_FAILED_PROMPT,
    FALLBACK_EMERGENCY_PROMPT,
    Action,
    ActionKind,
    Dialplan,
    Line,
    Menu,
    normalise_number,
)
from ivr.engine.route import RequestKind, Urgency

T = TypeVar("T")

SECTIONS = (
    "settings",
    "prompts",
    "queues",
    "departments",
    "emergency",
    "schedules",
    "lines",
    "menus",
)
_SETTINGS_REQUIRED = ("default_queue", "supervisor_queue")
_SETTINGS_OPTIONAL = ("main_line", "languages", "sounds_prefix")
_MENU_OPTIONAL = (
    "timeout",
    "retries",
    "invalid_prompt",
    "timeout_prompt",
    "fallback",
    "kind",
    "urgency",
)
_LINE_OPTIONAL = ("schedule", "closed", "aliases", "urgency")


@dataclass(slots=True)
class _Defined(Generic[T]):
    """Objects of one section, by id, with where each was defined."""

    objects: dict[str, T] = field(default_factory=dict)
    marks: dict[str, Mark] = field(default_factory=dict)


@dataclass(slots=True)
class _Sources:
    """Every file's top-level sections, merged by section."""

    sections: dict[str, list[tuple[YScalar, YNode, str]]] = field(default_factory=dict)
    raw: list[bytes] = field(default_factory=list)  # name and bytes of each file, for the version
    claims: list[tuple[str, str, Mark, str]] = field(default_factory=list)  # number, line, where
    files: list[str] = field(default_factory=list)
    unreadable: bool = False  # a file failed to parse: missing sections are no news then


def load_dialplan(paths: Sequence[Path]) -> Dialplan:
    """Read dialplan files (a folder means all its ``*.yaml``), validate, and merge them.

    Raises :class:`DialplanError` listing every error found; warnings (an unused queue,
    a prompt without an English text, ...) are kept in :attr:`Dialplan.warnings`.
    """
    reader = Reader()
    sources = _read_files(reader, paths)
    plan = _build(reader, sources)
    errors = [p for p in reader.problems if p.severity == "error"]
    if errors or plan is None:
        raise DialplanError(tuple(sorted(reader.problems, key=_position)))
    return plan


def _read_files(reader: Reader, paths: Sequence[Path]) -> _Sources:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.yaml"))
            if not found:
                reader.report(Mark(str(path), 1, 1), "", "no *.yaml dialplan files in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            reader.report(Mark(str(path), 1, 1), "", "no such file or folder")
    sources = _Sources()
    for file in files:
        raw = file.read_bytes()
        sources.files.append(str(file))
        sources.raw.append(file.name.encode() + b"\0" + raw + b"\0")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            reader.report(Mark(str(file), 1, 1), "", f"not UTF-8 text: {error}")
            sources.unreadable = True
            continue
        root, problems = parse_yaml(text, str(file))
        reader.problems.extend(problems)
        if root is None:
            sources.unreadable = sources.unreadable or bool(problems)
            continue
        top = reader.mapping(root, "")
        if top is None:
            continue
        reader.fields(top, "", (), SECTIONS)
        for key, value in top.items:
            if key.value in SECTIONS:
                sources.sections.setdefault(key.value, []).append((key, value, str(file)))
    return sources


def _section(
    reader: Reader,
    sources: _Sources,
    name: str,
    read: Callable[[str, YScalar, YNode, str], T | None],
) -> _Defined[T]:
    """Read every entry of a section across files; an id defined twice is an error."""
    defined: _Defined[T] = _Defined()
    for _, node, _file in sources.sections.get(name, []):
        mapping = reader.mapping(node, name)
        for key, value in mapping.items if mapping else ():
            path = join(name, key.value)
            object_id = reader.ident_key(key, path)
            if object_id is None:
                continue
            if object_id in defined.marks:
                first = defined.marks[object_id]
                reader.report(
                    key.mark,
                    path,
                    f"{name} {object_id!r} is already defined at {first.file}:{first.line}",
                )
                continue
            defined.marks[object_id] = key.mark
            result = read(object_id, key, value, path)
            if result is not None:
                defined.objects[object_id] = result
    return defined


@dataclass(frozen=True, slots=True)
class _Settings:
    main_line: str
    default_queue: str
    supervisor_queue: str
    languages: tuple[str, ...]
    sounds_prefix: str
    mark: Mark


def _read_settings(reader: Reader, sources: _Sources) -> _Settings | None:
    entries = sources.sections.get("settings", [])
    if not entries:
        if sources.files and not sources.unreadable:
            reader.report(
                Mark(sources.files[0], 1, 1), "settings", "missing required section 'settings'"
            )
        return None
    for key, _, _file in entries[1:]:
        reader.report(key.mark, "settings", "settings may be given in one file only")
    mapping = reader.mapping(entries[0][1], "settings")
    if mapping is None or not reader.fields(
        mapping, "settings", _SETTINGS_REQUIRED, _SETTINGS_OPTIONAL
    ):
        return None
    values: dict[str, str | None] = {"main_line": "12345", "sounds_prefix": "hotline"}
    for name in ("main_line", "default_queue", "supervisor_queue", "sounds_prefix"):
        if (node := mapping.get(name)) is not None:
            values[name] = reader.text(node, join("settings", name))
    for name in ("default_queue", "supervisor_queue"):
        if (node := mapping.get(name)) is not None and values[name]:
            reader.refer("queue", values[name] or "", node.mark, join("settings", name))
    languages: tuple[str, ...] = ("zh",)
    if (node := mapping.get("languages")) is not None:
        languages = tuple(text for text, _ in reader.texts(node, "settings.languages") or ())
        if "zh" not in languages:
            reader.report(node.mark, "settings.languages", "must include zh (Mandarin)")
    main, default, supervisor, prefix = (
        values["main_line"],
        values["default_queue"],
        values["supervisor_queue"],
        values["sounds_prefix"],
    )
    if main is None or default is None or supervisor is None or prefix is None:
        return None
    return _Settings(normalise_number(main), default, supervisor, languages, prefix, mapping.mark)


def _read_menu(
    reader: Reader, settings: _Settings, menu_id: str, node: YNode, path: str
) -> Menu | None:
    mapping = reader.mapping(node, path)
    if mapping is None or not reader.fields(mapping, path, ("prompt", "keys"), _MENU_OPTIONAL):
        return None
    prompts: dict[str, str | None] = {}
    for name, default in (
        ("prompt", ""),
        ("invalid_prompt", "invalid"),
        ("timeout_prompt", "timeout"),
    ):
        value_node = mapping.get(name)
        prompts[name] = reader.ident(value_node, join(path, name)) if value_node else default
        note = "" if value_node else "the default"
        reader.refer(
            "prompt", prompts[name] or "", (value_node or mapping).mark, join(path, name), note
        )
    keys = read_keys(reader, mapping.get("keys") or mapping, join(path, "keys"))
    timeout: float | None = 5.0
    if (timeout_node := mapping.get("timeout")) is not None:
        timeout = reader.seconds(timeout_node, join(path, "timeout"))
    retries: int | None = 2
    if (retries_node := mapping.get("retries")) is not None:
        retries = reader.integer(retries_node, join(path, "retries"), 0)
    fallback_node = mapping.get("fallback")
    if fallback_node is not None:
        fallback = routing_fallback(
            reader,
            read_action(reader, fallback_node, join(path, "fallback")),
            fallback_node,
            join(path, "fallback"),
        )
    else:
        fallback = Action(ActionKind.QUEUE, settings.default_queue, announce=("transferring",))
        reader.refer("prompt", "transferring", mapping.mark, path, "the default announcement")
    kind = urgency = None
    if (kind_node := mapping.get("kind")) is not None:
        kind = reader.choice(kind_node, join(path, "kind"), RequestKind)
    if (urgency_node := mapping.get("urgency")) is not None:
        urgency = reader.choice(urgency_node, join(path, "urgency"), Urgency)
    prompt, invalid, timed_out = (
        prompts["prompt"],
        prompts["invalid_prompt"],
        prompts["timeout_prompt"],
    )
    if (
        prompt is None
        or invalid is None
        or timed_out is None
        or timeout is None
        or retries is None
        or fallback is None
    ):
        return None
    return Menu(
        menu_id,
        prompt,
        MappingProxyType(keys),
        fallback,
        timeout,
        retries,
        invalid,
        timed_out,
        kind,
        urgency,
    )


def _read_line(
    reader: Reader,
    settings: _Settings,
    sources: _Sources,
    number: str,
    key: YScalar,
    node: YNode,
    path: str,
) -> Line | None:
    mapping = reader.mapping(node, path)
    if mapping is None or not reader.fields(
        mapping, path, ("label", "kind", "menu"), _LINE_OPTIONAL
    ):
        return None
    label = reader.text(mapping.get("label") or mapping, join(path, "label"))
    kind = reader.choice(mapping.get("kind") or mapping, join(path, "kind"), RequestKind)
    menu_node = mapping.get("menu") or mapping
    menu = reader.ident(menu_node, join(path, "menu"))
    if menu is not None:
        reader.refer("menu", menu, menu_node.mark, join(path, "menu"))
    urgency: Urgency | None = Urgency.NORMAL
    if (urgency_node := mapping.get("urgency")) is not None:
        urgency = reader.choice(urgency_node, join(path, "urgency"), Urgency)
    schedule = None
    if (schedule_node := mapping.get("schedule")) is not None:
        schedule = reader.ident(schedule_node, join(path, "schedule"))
        if schedule is not None:
            reader.refer("schedule", schedule, schedule_node.mark, join(path, "schedule"))
    closed: Action | None
    if (closed_node := mapping.get("closed")) is not None:
        closed = read_action(reader, closed_node, join(path, "closed"))
        if closed is not None and closed.kind in (
            ActionKind.BACK,
            ActionKind.REPEAT,
            ActionKind.LANGUAGE,
        ):
            reader.report(
                closed_node.mark,
                join(path, "closed"),
                "back, repeat and language mean nothing before a menu was played",
            )
            closed = None
    else:
        closed = Action(ActionKind.MESSAGE, settings.default_queue, announce=("closed",))
        if schedule is not None:
            reader.refer("prompt", "closed", mapping.mark, path, "the default closed announcement")
    aliases: tuple[str, ...] = ()
    if (aliases_node := mapping.get("aliases")) is not None:
        found = reader.texts(aliases_node, join(path, "aliases")) or ()
        aliases = tuple(normalise_number(text) for text, _ in found)
        for alias, (_, alias_node) in zip(aliases, found, strict=True):
            sources.claims.append((alias, number, alias_node.mark, join(path, "aliases")))
    sources.claims.append((number, number, key.mark, path))
    if label is None or kind is None or menu is None or urgency is None or closed is None:
        return None
    return Line(number, label, kind, urgency, menu, closed, schedule, aliases)


def _line_numbers(reader: Reader, sources: _Sources) -> dict[str, str]:
    """Every number and alias -> its line; a number two lines claim is an error."""
    numbers: dict[str, str] = {}
    for number, line_number, mark, path in sources.claims:
        if not number.isdigit():
            reader.report(mark, path, f"{number!r} is not a phone number (digits only)")
        elif numbers.get(number, line_number) != line_number:
            reader.report(
                mark, path, f"number {number} is already claimed by line {numbers[number]}"
            )
        else:
            numbers[number] = line_number
    return numbers


def _build(reader: Reader, sources: _Sources) -> Dialplan | None:
    """Read every section, then check references and collect warnings."""
    settings = _read_settings(reader, sources)
    # Without valid settings the other sections are still read, so all mistakes show at once.
    usable = settings or _Settings("12345", "", "", ("zh",), "hotline", Mark("dialplan", 1, 1))
    prompts = _section(
        reader,
        sources,
        "prompts",
        lambda object_id, _key, node, path: read_prompt(
            reader, object_id, node, path, usable.languages
        ),
    )
    queues = _section(
        reader,
        sources,
        "queues",
        lambda object_id, _key, node, path: read_queue(reader, object_id, node, path),
    )
    departments = _section(
        reader,
        sources,
        "departments",
        lambda object_id, _key, node, path: read_department(reader, object_id, node, path),
    )
    emergency = _section(
        reader,
        sources,
        "emergency",
        lambda object_id, key, node, path: read_emergency(reader, object_id, key, node, path),
    )
    schedules = _section(
        reader,
        sources,
        "schedules",
        lambda object_id, _key, node, path: read_schedule(reader, object_id, node, path),
    )
    lines = _section(
        reader,
        sources,
        "lines",
        lambda number, key, node, path: _read_line(
            reader, usable, sources, number, key, node, path
        ),
    )
    menus = _section(
        reader,
        sources,
        "menus",
        lambda object_id, _key, node, path: _read_menu(reader, usable, object_id, node, path),
    )
    for prompt_id in (FALLBACK_EMERGENCY_PROMPT, *AFTERCALL_PROMPTS):
        # Played by the generated Asterisk fallback or after the call, not by a menu: in use
        # when defined.
        if prompt_id in prompts.marks:
            reader.refer("prompt", prompt_id, prompts.marks[prompt_id], join("prompts", prompt_id))
    if emergency.marks and settings is not None:
        # Spoken by the service when no emergency route answers; it must never be missing.
        reader.refer(
            "prompt",
            EMERGENCY_FAILED_PROMPT,
            settings.mark,
            "settings",
            "spoken when every emergency route fails",
        )
    defined: dict[str, _Defined[Any]] = {
        "prompt": prompts,
        "queue": queues,
        "department": departments,
        "emergency": emergency,
        "schedule": schedules,
        "menu": menus,
    }
    used: dict[str, set[str]] = {kind: set() for kind in defined}
    for reference in reader.references:
        if reference.kind == "language":
            # A language is not a section object: it must be one the settings list.
            if reference.target not in usable.languages:
                reader.report(
                    reference.mark,
                    reference.path,
                    f"language {reference.target!r} is not in settings.languages",
                )
            continue
        used[reference.kind].add(reference.target)
        if reference.target not in defined[reference.kind].marks:
            note = f" ({reference.note})" if reference.note else ""
            reader.report(
                reference.mark,
                reference.path,
                f"unknown {reference.kind} {reference.target!r}{note}",
            )
    for kind in ("queue", "department", "menu", "prompt", "schedule"):
        for object_id, mark in defined[kind].marks.items():
            if object_id not in used[kind]:
                reader.report(
                    mark,
                    join(_SECTION_OF[kind], object_id),
                    f"{kind} {object_id!r} is never used",
                    "warning",
                )
    numbers = _line_numbers(reader, sources)
    if settings is not None and settings.main_line not in lines.marks:
        reader.report(
            settings.mark,
            "settings.main_line",
            f"the main line {settings.main_line} is not defined in lines",
        )
    if settings is None or any(p.severity == "error" for p in reader.problems):
        return None
    return Dialplan(
        lines=MappingProxyType(lines.objects),
        menus=MappingProxyType(menus.objects),
        queues=MappingProxyType(queues.objects),
        departments=MappingProxyType(departments.objects),
        emergency=MappingProxyType(emergency.objects),
        prompts=MappingProxyType(prompts.objects),
        schedules=MappingProxyType(schedules.objects),
        main_line=settings.main_line,
        default_queue=settings.default_queue,
        supervisor_queue=settings.supervisor_queue,
        languages=settings.languages,
        version=hashlib.sha256(b"".join(sources.raw)).hexdigest()[:12],
        numbers=MappingProxyType(numbers),
        sounds_prefix=settings.sounds_prefix,
        warnings=tuple(
            sorted((p for p in reader.problems if p.severity == "warning"), key=_position)
        ),
    )


_SECTION_OF = {
    "queue": "queues",
    "department": "departments",
    "menu": "menus",
    "prompt": "prompts",
    "schedule": "schedules",
}


def _position(problem: Problem) -> tuple[str, int, int]:
    return (problem.file, problem.line, problem.column)
