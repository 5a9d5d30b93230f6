"""Helpers for the dialplan tests: the shipped dialplan and small YAML files on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.dialplan import Dialplan, load_dialplan

SHIPPED = Path(__file__).parents[2] / "dialplans"


@pytest.fixture(scope="session")
def shipped() -> Dialplan:
    """The dialplan shipped in ``dialplans/``."""
    return load_dialplan([SHIPPED])


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a YAML text into ``tmp_path`` under a name and return its path."""

    def write(text: str, name: str = "plan.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
