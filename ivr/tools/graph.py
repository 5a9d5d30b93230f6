"""``hotline-ivr graph``: the menu tree of each line as Mermaid or Graphviz DOT text.

PNG and SVG are drawn by Graphviz's ``dot`` program when it is installed. Nodes are
shared: a queue that five keys lead to is drawn once, with five arrows into it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from ivr.dialplan.model import Action, ActionKind, Dialplan
from ivr.tools._menu_graph import line_actions, reachable
from ivr.tools.errors import MissingProgramError, ToolError

__all__ = ["FORMATS", "Edge", "Node", "edges", "render", "to_dot", "to_mermaid"]

FORMATS = ("mermaid", "dot", "png", "svg")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True, slots=True)
class Node:
    """A box in the drawing: a line, a menu or where a call ends."""

    id: str
    label: str
    shape: str  # "line", "menu", "end"


@dataclass(frozen=True, slots=True)
class Edge:
    """An arrow, labelled with the key (or ``timeout``, ``closed``) that takes it."""

    source: str
    target: str
    label: str


def _node_id(kind: str, name: str) -> str:
    return f"{kind}_{_UNSAFE.sub('_', name)}"


def _action_node(
    plan: Dialplan, action: Action, menu_id: str, parents: tuple[str, ...]
) -> list[Node]:
    """The nodes an action leads to (``back`` leads to every menu that enters this one)."""
    if action.kind is ActionKind.MENU:
        return [Node(_node_id("menu", action.target), action.target, "menu")]
    if action.kind is ActionKind.BACK:
        return [Node(_node_id("menu", parent), parent, "menu") for parent in parents] or [
            Node(_node_id("menu", menu_id), menu_id, "menu")
        ]
    if action.kind in (ActionKind.REPEAT, ActionKind.LANGUAGE) or (
        action.kind is ActionKind.INFO and action.then_back
    ):
        return [Node(_node_id("menu", menu_id), menu_id, "menu")]
    if action.kind in (ActionKind.QUEUE, ActionKind.MESSAGE, ActionKind.CALLBACK):
        label = f"{action.kind.value}: {plan.queues[action.target].label}"
        return [Node(_node_id(action.kind.value, action.target), label, "end")]
    if action.kind is ActionKind.EMERGENCY:
        label = f"emergency: {plan.emergency[action.target].label}"
        return [Node(_node_id("emergency", action.target), label, "end")]
    if action.kind is ActionKind.DEPARTMENT:
        label = f"department: {plan.departments[action.target].label}"
        return [Node(_node_id("department", action.target), label, "end")]
    if action.kind is ActionKind.INFO:
        return [Node(_node_id("info", action.target), f"info: {action.target}", "end")]
    return [Node("hangup", "hang up", "end")]


def _key_label(key: str, action: Action) -> str:
    if action.kind is ActionKind.INFO and action.then_back:
        return f"{key} info {action.target}"
    if action.kind in (ActionKind.BACK, ActionKind.REPEAT):
        return f"{key} {action.kind.value}"
    if action.kind is ActionKind.LANGUAGE:
        return f"{key} language {action.target}"
    return key


def edges(plan: Dialplan, number: str | None = None) -> tuple[tuple[Node, ...], tuple[Edge, ...]]:
    """The nodes and arrows of one line's menus (all lines when ``number`` is None)."""
    if number is not None:
        line = plan.line_for(number)
        if line is None:
            raise ToolError(f"no line has the number {number!r} (lines: {', '.join(plan.lines)})")
        numbers: Iterable[str] = (line.number,)
    else:
        numbers = tuple(plan.lines)
    parents = reachable(plan, numbers)
    nodes: dict[str, Node] = {}
    arrows: list[Edge] = []

    def link(source: str, targets: list[Node], label: str) -> None:
        for target in targets:
            nodes.setdefault(target.id, target)
            edge = Edge(source, target.id, label)
            if edge not in arrows:
                arrows.append(edge)

    for line_number in numbers:
        line = plan.lines[line_number]
        source = _node_id("line", line.number)
        nodes[source] = Node(source, line.label, "line")
        for action in line_actions(plan, line.number):
            label = "closed" if action is line.closed else ("open" if line.schedule else "")
            link(source, _action_node(plan, action, "", ()), label)
    for menu_id, menu_parents in parents.items():
        menu = plan.menus[menu_id]
        source = _node_id("menu", menu_id)
        nodes[source] = Node(source, menu_id, "menu")
        for key, action in menu.keys.items():
            link(source, _action_node(plan, action, menu_id, menu_parents), _key_label(key, action))
        link(source, _action_node(plan, menu.fallback, menu_id, menu_parents), "timeout/invalid")
    return tuple(nodes.values()), tuple(arrows)


def _quote_mermaid(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(plan: Dialplan, number: str | None = None) -> str:
    """A Mermaid ``flowchart`` of the menus."""
    nodes, arrows = edges(plan, number)
    shapes = {"line": ("([", "])"), "menu": ("[", "]"), "end": ("[[", "]]")}
    out = ["flowchart LR"]
    for node in nodes:
        left, right = shapes[node.shape]
        out.append(f"    {node.id}{left}{_quote_mermaid(node.label)}{right}")
    for edge in arrows:
        label = f"|{_quote_mermaid(edge.label)}|" if edge.label else ""
        out.append(f"    {edge.source} -->{label} {edge.target}")
    return "\n".join(out) + "\n"


def _quote_dot(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(plan: Dialplan, number: str | None = None) -> str:
    """A Graphviz ``digraph`` of the menus."""
    nodes, arrows = edges(plan, number)
    shapes = {"line": "oval", "menu": "box", "end": "box3d"}
    out = [
        "digraph hotline {",
        "    rankdir=LR;",
        '    node [fontname="Noto Sans CJK SC,sans-serif"];',
    ]
    for node in nodes:
        out.append(f"    {node.id} [label={_quote_dot(node.label)}, shape={shapes[node.shape]}];")
    for edge in arrows:
        label = f" [label={_quote_dot(edge.label)}]" if edge.label else ""
        out.append(f"    {edge.source} -> {edge.target}{label};")
    out.append("}")
    return "\n".join(out) + "\n"


def render(plan: Dialplan, output_format: str, number: str | None = None) -> bytes:
    """The drawing in ``output_format`` (one of :data:`FORMATS`) as bytes."""
    if output_format == "mermaid":
        return to_mermaid(plan, number).encode()
    dot_text = to_dot(plan, number)
    if output_format == "dot":
        return dot_text.encode()
    if output_format not in FORMATS:
        raise ToolError(f"unknown format {output_format!r} (one of: {', '.join(FORMATS)})")
    program = shutil.which("dot")
    if program is None:
        raise MissingProgramError("dot", f"to draw {output_format.upper()} files", "graphviz")
    result = subprocess.run(
        [program, f"-T{output_format}"],
        input=dot_text.encode(),
        capture_output=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        raise ToolError(f"dot failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout
