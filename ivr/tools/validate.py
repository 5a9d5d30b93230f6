"""``hotline-ivr validate``: every problem of a dialplan, each with file, line and key path.

Loading (:func:`ivr.dialplan.load_dialplan`) already checks syntax, types, unknown keys,
references, duplicate keys, numbers two lines claim, times, dates and timezones. On top
of that this module checks what needs the whole menu graph or the disk:

- a menu no line can reach (a **warning**: it cannot hurt a caller, but it is dead text
  an admin believes is live);
- a menu from which no key leads to a person, directly or through other menus: a caller
  who keeps pressing keys loops for ever (an **error**; the timeout fallback does reach a
  person, but only a caller who gives up pressing keys finds it);
- a prompt without its recording ``recordings/<language>/<id>.wav`` for a language it
  has a text in (an **error**: Asterisk would play silence);
- emergency keys in the main menu but no ``fallback-emergency`` prompt for the Asterisk
  fallback to play (a **warning**).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from ivr.dialplan.errors import DialplanError, Problem, Severity
from ivr.dialplan.loader import load_dialplan
from ivr.dialplan.locate import Mark, dialplan_files, key_marks
from ivr.dialplan.model import FALLBACK_EMERGENCY_PROMPT, Dialplan
from ivr.tools._menu_graph import HUMAN_ACTIONS, next_menus, reachable
from ivr.tools.asterisk_config import native_emergency_paths

__all__ = ["format_problems", "recording_path", "validate_paths"]


def recording_path(recordings_dir: Path, language: str, prompt_id: str) -> Path:
    """Where the recording of a prompt in a language lives."""
    return recordings_dir / language / f"{prompt_id}.wav"


def validate_paths(
    paths: Sequence[Path], recordings_dir: Path | None
) -> tuple[Dialplan | None, tuple[Problem, ...]]:
    """Load and check dialplan files; the plan (None if any error) and every problem found.

    Pure apart from reading the files: safe to call on a reload while calls run. With
    ``recordings_dir`` None the recordings are not checked (a service whose sounds live on
    the PBX). The plan returned carries every warning in :attr:`Dialplan.warnings`.
    """
    try:
        plan = load_dialplan(paths)
    except DialplanError as error:
        return None, error.problems
    found = _Findings(key_marks(paths), _first_file(paths))
    _check_reachability(plan, found)
    _check_way_out(plan, found)
    if recordings_dir is not None:
        _check_recordings(plan, recordings_dir, found)
    _check_fallback_prompt(plan, found)
    problems = tuple(sorted((*plan.warnings, *found.problems), key=_position))
    if any(problem.severity == "error" for problem in problems):
        return None, problems
    warnings = tuple(problem for problem in problems if problem.severity == "warning")
    return dataclasses.replace(plan, warnings=warnings), problems


def format_problems(problems: Iterable[Problem]) -> str:
    """One ``file:line:column: key.path: message`` line per problem, then a count."""
    problems = tuple(problems)
    errors = sum(problem.severity == "error" for problem in problems)
    lines = [str(problem) for problem in problems]
    lines.append(f"{errors} error(s), {len(problems) - errors} warning(s)")
    return "\n".join(lines)


class _Findings:
    """Problems found after loading, placed at the key they are about."""

    def __init__(self, marks: Mapping[str, Mark], first_file: str) -> None:
        self.marks = marks
        self.first_file = first_file
        self.problems: list[Problem] = []

    def report(self, key_path: str, message: str, severity: Severity = "error") -> None:
        mark = self.marks.get(key_path) or Mark(self.first_file, 1, 1)
        self.problems.append(
            Problem(mark.file, mark.line, mark.column, key_path, message, severity)
        )


def _first_file(paths: Sequence[Path]) -> str:
    files = dialplan_files(paths)
    return str(files[0]) if files else "dialplan"


def _check_reachability(plan: Dialplan, found: _Findings) -> None:
    parents = reachable(plan)
    referenced = {
        action.target
        for menu in plan.menus.values()
        for action in (*menu.keys.values(), menu.fallback)
    }
    for menu_id in plan.menus:
        # A menu nothing names is already reported by the loader as never used.
        if menu_id not in parents and menu_id in referenced:
            found.report(
                f"menus.{menu_id}",
                f"menu {menu_id!r} cannot be reached from any "
                "line (only from menus that are not reachable either)",
                "warning",
            )


def _check_way_out(plan: Dialplan, found: _Findings) -> None:
    """Every reachable menu must offer, through its keys, a way to a person."""
    parents = reachable(plan)
    edges = {menu_id: next_menus(plan, menu_id, parents) for menu_id in parents}
    good = {
        menu_id
        for menu_id in parents
        if any(action.kind in HUMAN_ACTIONS for action in plan.menus[menu_id].keys.values())
    }
    changed = True
    while changed:
        changed = False
        for menu_id, targets in edges.items():
            if menu_id not in good and targets & good:
                good.add(menu_id)
                changed = True
    for menu_id in parents:
        if menu_id in good:
            continue
        trapped = sorted(_closure(menu_id, edges))
        where = (
            f"keys only lead to menus {', '.join(trapped)}, which loop without one"
            if trapped
            else "no key leads anywhere but here"
        )
        found.report(
            f"menus.{menu_id}.keys",
            "a loop with no way out to a person: "
            f"{where}; add a key to a queue, department or emergency service",
        )


def _closure(start: str, edges: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in edges.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen - {start} if start not in seen else seen


def _check_recordings(plan: Dialplan, recordings_dir: Path, found: _Findings) -> None:
    for prompt in plan.prompts.values():
        for language in prompt.texts:
            path = recording_path(recordings_dir, language, prompt.id)
            if not path.is_file():
                found.report(
                    f"prompts.{prompt.id}.{language}",
                    f"no recording {path} (render it with `hotline-ivr prompts`)",
                )


def _check_fallback_prompt(plan: Dialplan, found: _Findings) -> None:
    if native_emergency_paths(plan) and FALLBACK_EMERGENCY_PROMPT not in plan.prompts:
        found.report(
            "prompts",
            f"no {FALLBACK_EMERGENCY_PROMPT!r} prompt: the Asterisk "
            "fallback (service down) cannot announce the emergency keys",
            "warning",
        )


def _position(problem: Problem) -> tuple[str, int, int, str]:
    return (problem.file, problem.line, problem.column, problem.message)
