"""Which number did the citizen dial? 12345 itself or a legacy line forwarded to it.

Asterisk hands the number over in several places, depending on how the call came:
the generated dialplan saves the dialled extension as ``HOTLINE_DIALED`` before any
``Goto``; a carrier's call forwarding leaves the legacy number in
``REDIRECTING(from-num)`` and ``agi_rdnis`` while ``agi_dnid`` says 12345; a call
routed straight to the PBX shows it as ``agi_dnid`` or ``agi_extension``.
A legacy line named anywhere wins over the main line, because a forwarded call
also names 12345 (it is where the call was forwarded to).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ivr._frozen import fast_init
from ivr.dialplan.model import Dialplan, Line

_ABSENT = ("", "unknown")


@fast_init
@dataclass(frozen=True, slots=True)
class LineSources:
    """The numbers Asterisk gave for a call; "" or "unknown" means absent."""

    hotline_dialed: str = ""  # HOTLINE_DIALED, set by the generated dialplan
    redirecting_from: str = ""  # REDIRECTING(from-num)
    rdnis: str = ""  # agi_rdnis
    dnid: str = ""  # agi_dnid
    extension: str = ""  # agi_extension


@fast_init
@dataclass(frozen=True, slots=True)
class LineMatch:
    """The detected line, the source field that named it ("default" if none did), the number."""

    line: Line
    source: str
    number: str


_ORDER = tuple(f.name for f in fields(LineSources))


def detect_line(plan: Dialplan, sources: LineSources) -> LineMatch:
    """The line a call belongs to: a legacy line first, then the main line, else the main line."""
    first: LineMatch | None = None
    main_line = plan.main_line
    values = (
        sources.hotline_dialed,
        sources.redirecting_from,
        sources.rdnis,
        sources.dnid,
        sources.extension,
    )  # in the order of _ORDER
    for source, raw in zip(_ORDER, values, strict=True):
        if not raw:
            continue
        number = raw.strip()
        if number.lower() in _ABSENT:
            continue
        line = plan.line_for(number)
        if line is None:
            continue
        if line.number != main_line:  # a legacy line named anywhere wins
            return LineMatch(line, source, number)
        if first is None:
            first = LineMatch(line, source, number)
    if first is not None:
        return first
    return LineMatch(plan.main, "default", main_line)
