"""Shared test helpers: where the recorded Asterisk traffic lives."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    """The folder of recorded Asterisk 22 transcripts (copied from the shared recordings)."""
    return FIXTURES
