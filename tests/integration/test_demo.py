"""``hotline-ivr demo``, the README's first command, runs to the end and tells the truth."""

from __future__ import annotations

import io
from pathlib import Path

from ivr.demo import run_demo, sample_calls

from .conftest import DIALPLANS


async def test_the_demo_places_every_sample_call_and_exits_0(tmp_path: Path) -> None:
    """Each sample call is printed with where it went; the summary counts one ticket per call."""
    out = io.StringIO()
    assert await run_demo(DIALPLANS, out, workdir=tmp_path) == 0
    text = out.getvalue()
    for call in sample_calls():
        assert f"* {call.title}" in text
    assert "went to dial:PJSIP/119@emergency-trunk-b" in text
    assert "survey: satisfied" in text
    assert "(dialplan fallback)" in text
    calls = len(sample_calls())
    assert f"{calls + 1} calls, {calls} tickets written, 0 service calls without a ticket" in text
