"""Which line a call belongs to, from every place Asterisk puts the number."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.dialplan import Dialplan
from ivr.engine.lines import LineSources, detect_line


def fastagi_sources(transcript: Path) -> LineSources:
    """The numbers a recorded FastAGI session gives: its environment and GET FULL VARIABLE."""
    text = transcript.read_text(encoding="utf-8")
    env = dict(
        line.split(": ", 1) for line in text.split("### cmd")[0].splitlines() if ": " in line
    )
    # The generated dialplan asks for "${REDIRECTING(from-num)}|...|${HOTLINE_DIALED}".
    reply = text.split("GET FULL VARIABLE", 1)[1].split("200 result=1 (", 1)[1].split(")")[0]
    redirecting_from, *_, hotline_dialed = reply.split("|")
    return LineSources(hotline_dialed=hotline_dialed, redirecting_from=redirecting_from,
                       rdnis=env["agi_rdnis"], dnid=env["agi_dnid"],
                       extension=env["agi_extension"])


def test_sip_call_forwarded_by_the_carrier_is_the_96119_line(
    shipped: Dialplan, fixtures_dir: Path
) -> None:
    """Dialled 12345 with 96119 as the forwarding number (recorded SIP call) means 96119."""
    sources = fastagi_sources(fixtures_dir / "sip-forwarded-96119-fastagi.txt")
    assert (sources.hotline_dialed, sources.dnid, sources.rdnis) == ("12345", "12345", "96119")
    match = detect_line(shipped, sources)
    assert (match.line.number, match.source, match.number) == ("96119", "redirecting_from",
                                                                "96119")
    assert match.line.label == "96119 消防隐患举报"


@pytest.mark.parametrize(
    ("sources", "line", "source"),
    [
        pytest.param(LineSources(hotline_dialed="96119", dnid="unknown", rdnis="unknown",
                                 extension="12345"), "96119", "hotline_dialed",
                     id="saved by the generated dialplan before Goto"),
        pytest.param(LineSources(redirecting_from="12312", dnid="12345"), "12312",
                     "redirecting_from", id="REDIRECTING(from-num)"),
        pytest.param(LineSources(rdnis="12320", dnid="12345"), "12320", "rdnis", id="agi_rdnis"),
        pytest.param(LineSources(dnid="961890"), "961890", "dnid", id="agi_dnid"),
        pytest.param(LineSources(extension="12318"), "12318", "extension", id="agi_extension"),
        pytest.param(LineSources(hotline_dialed="12345", rdnis="12356"), "12356", "rdnis",
                     id="a legacy line wins over the main line"),
        pytest.param(LineSources(hotline_dialed="96119", redirecting_from="12312"), "96119",
                     "hotline_dialed", id="the first legacy source wins"),
        pytest.param(LineSources(dnid="12345", extension="s"), "12345", "dnid",
                     id="main line named"),
        pytest.param(LineSources(dnid="unknown", rdnis="unknown", extension="s"), "12345",
                     "default", id="nothing known: the main line"),
        pytest.param(LineSources(rdnis="99999"), "12345", "default",
                     id="an unconfigured number: the main line"),
    ],
)
def test_detection_order(shipped: Dialplan, sources: LineSources, line: str, source: str) -> None:
    """Legacy lines in source order first, then the main line, else the main line by default."""
    match = detect_line(shipped, sources)
    assert (match.line.number, match.source) == (line, source)


@pytest.mark.parametrize(
    ("written", "line"),
    [
        ("96119", "96119"),
        (" 96 119 ", "96119"),
        ("+8696119", "96119"),
        ("0086 12312", "12312"),
        ("047196119", "96119"),  # a 4-digit area code
        ("0471-96119", "96119"),
        ("01012345", "12345"),  # a 3-digit area code
        ("+86 010 12345", "12345"),
        ("12345678", None),
        ("0471", None),
        ("", None),
        ("unknown", None),
    ],
)
def test_numbers_are_normalised(shipped: Dialplan, written: str, line: str | None) -> None:
    """Spaces, +86/0086 and an area code before a configured number are ignored."""
    found = shipped.line_for(written)
    assert (found.number if found else None) == line
