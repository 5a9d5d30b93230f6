"""``graph``: the menu tree of each line as Mermaid, DOT, and pictures through Graphviz."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.dialplan import Dialplan
from ivr.tools.errors import ToolError
from ivr.tools.graph import edges, render, to_dot, to_mermaid

from .conftest import SHIPPED


def test_one_line_only_shows_its_menus(shipped: Dialplan) -> None:
    """--line 96119 draws the 96119 menu and where its keys go, nothing of 12345."""
    nodes, arrows = edges(shipped, "96119")
    assert {node.id for node in nodes} == {"line_96119", "menu_fire_96119", "emergency_fire",
                                           "queue_fire_safety"}
    assert {(a.source, a.target, a.label) for a in arrows} == {
        ("line_96119", "menu_fire_96119", ""),
        ("menu_fire_96119", "emergency_fire", "1"),
        ("menu_fire_96119", "queue_fire_safety", "2"),
        ("menu_fire_96119", "queue_fire_safety", "0"),
        ("menu_fire_96119", "queue_fire_safety", "timeout/invalid"),
    }


def test_back_repeat_and_closed_edges(shipped: Dialplan) -> None:
    """back goes to the parent menu, repeat to itself, a line with hours has a closed arrow."""
    _, arrows = edges(shipped)
    labelled = {(a.source, a.target, a.label) for a in arrows}
    assert ("menu_complaint", "menu_root", "* back") in labelled
    assert ("menu_root", "menu_root", "* repeat") in labelled
    assert ("line_12312", "message_commerce", "closed") in labelled
    assert ("menu_utility_961890", "menu_utility_961890", "2 info water-billing-info") in labelled


def test_mermaid_and_dot_text(shipped: Dialplan) -> None:
    """Both texts name every line and quote labels (Chinese text included)."""
    mermaid, dot = to_mermaid(shipped), to_dot(shipped)
    assert mermaid.startswith("flowchart LR\n")
    assert '    line_12345(["12345 政务服务便民热线"])' in mermaid
    assert '    menu_root -->|"9"| menu_emergency' in mermaid
    assert dot.startswith("digraph hotline {")
    assert '    menu_root -> menu_emergency [label="9"];' in dot
    for number in shipped.lines:
        assert f"line_{number}" in mermaid and f"line_{number}" in dot


def test_unknown_line_is_an_error(shipped: Dialplan) -> None:
    """A number no line has is refused with the list of lines."""
    with pytest.raises(ToolError, match="no line has the number '110'"):
        edges(shipped, "110")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_svg_through_graphviz(tmp_path: Path) -> None:
    """--format svg -o FILE writes an SVG drawn by dot."""
    out = tmp_path / "menus.svg"
    assert main(["graph", "--dialplans", str(SHIPPED), "--format", "svg", "--line", "12345",
                 "-o", str(out)]) == 0
    drawing = out.read_bytes()
    assert drawing.lstrip().startswith(b"<?xml") and b"<svg" in drawing and b"root" in drawing


def test_missing_graphviz_is_a_clear_error(shipped: Dialplan,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the dot program a PNG cannot be drawn, and the error says what to install."""
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ToolError, match=r"dot is not installed.*graphviz"):
        render(shipped, "png")


def test_the_language_key_loops_back_to_its_menu(shipped: Dialplan) -> None:
    """The language key redraws the same menu, labelled with the language, not a hang-up."""
    _, arrows = edges(shipped, "12345")
    languages = [arrow for arrow in arrows if "language" in arrow.label]
    assert languages and all(arrow.source == arrow.target for arrow in languages)
    assert languages[0].label == "8 language en"
