"""The menus as a graph: which menus each line reaches, and where each key leads.

Shared by ``validate`` (unreachable menus, loops without a person), ``graph`` (drawing)
and ``asterisk_config`` (the emergency keys the PBX must keep working on its own).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from ivr.dialplan.model import Action, ActionKind, Dialplan

#: Actions that put the caller through to a person (an agent, an agency, 110...).
HUMAN_ACTIONS = frozenset(
    {
        ActionKind.QUEUE,
        ActionKind.DEPARTMENT,
        ActionKind.MESSAGE,
        ActionKind.CALLBACK,
        ActionKind.EMERGENCY,
    }
)


def line_actions(plan: Dialplan, number: str) -> tuple[Action, ...]:
    """What a line starts with: its entry menu, and its closed action when it has hours."""
    line = plan.lines[number]
    entry = Action(ActionKind.MENU, line.menu)
    return (entry, line.closed) if line.schedule is not None else (entry,)


def reachable(
    plan: Dialplan, numbers: Iterable[str] | None = None
) -> Mapping[str, tuple[str, ...]]:
    """Menus the given lines (all by default) can reach -> the menus that enter each one.

    The order is breadth-first from the lines, so a drawing reads top-down.
    """
    parents: dict[str, list[str]] = {}
    queue: list[str] = []
    for number in plan.lines if numbers is None else numbers:
        for action in line_actions(plan, number):
            if action.kind is ActionKind.MENU and action.target not in parents:
                parents[action.target] = []
                queue.append(action.target)
    while queue:
        menu_id = queue.pop(0)
        for action in menu_actions(plan, menu_id):
            if action.kind is not ActionKind.MENU:
                continue
            if action.target not in parents:
                parents[action.target] = []
                queue.append(action.target)
            if menu_id not in parents[action.target]:
                parents[action.target].append(menu_id)
    return MappingProxyType({menu_id: tuple(found) for menu_id, found in parents.items()})


def menu_actions(plan: Dialplan, menu_id: str) -> tuple[Action, ...]:
    """Every action a menu can take: its keys, then its fallback."""
    menu = plan.menus[menu_id]
    return (*menu.keys.values(), menu.fallback)


def next_menus(plan: Dialplan, menu_id: str, parents: Mapping[str, tuple[str, ...]]) -> set[str]:
    """Menus a caller can reach from ``menu_id`` by pressing one key (``back`` included)."""
    found: set[str] = set()
    for action in plan.menus[menu_id].keys.values():
        if action.kind is ActionKind.MENU:
            found.add(action.target)
        elif action.kind is ActionKind.BACK:
            found.update(parents.get(menu_id, ()))
    return found
