"""Operations tests: the real service and simulated PBX, plus the shipped deploy/ files."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog

# The service and simulated PBX on loopback, exactly as the integration tests run them.
# (Each fixture the `hotline` fixture needs is imported too, so pytest finds it here.)
from tests.integration.conftest import Hotline, dialplans_dir, hotline, shipped_dialplan

__all__ = [
    "DEPLOY", "Hotline", "Promtool", "dialplans_dir", "exported_names", "hotline",
    "metric_names_in", "shipped_dialplan",
]

DEPLOY = Path(__file__).parents[2] / "deploy"


@pytest.fixture
def reset_logging() -> Iterator[None]:
    """For a test that configures logging itself: the defaults back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)
RULES = DEPLOY / "prometheus" / "hotline-rules.yml"
DASHBOARD = DEPLOY / "grafana" / "hotline-dashboard.json"

# A metric name of ours in a PromQL expression: not part of a longer name or a recording
# rule's level:name:operation, and not a function call.
_OUR_METRIC = re.compile(r"(?<![\w:])((?:hotline|process)_[a-zA-Z0-9_]+)(?![\w:(])")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


@dataclass(frozen=True)
class Promtool:
    """The ``promtool`` command of the Prometheus distribution."""

    path: str

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``promtool args...``; bounded, output captured."""
        return subprocess.run(
            [self.path, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
        )


@pytest.fixture(scope="session")
def promtool() -> Promtool:
    """promtool, or a skip that says how to get it."""
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return Promtool(path)


def metric_names_in(expression: str) -> set[str]:
    """The names of our metrics (``hotline_*``, ``process_*``) a PromQL expression reads."""
    return set(_OUR_METRIC.findall(_STRING.sub('""', expression)))


def exported_names(exposition: str) -> set[str]:
    """Every sample name a text exposition can hold, from its ``# TYPE`` lines.

    A family with no sample yet (a labelled counter never incremented) still counts: its
    series appear as soon as the event happens.
    """
    names: set[str] = set()
    for family, kind in _TYPE_LINE.findall(exposition):
        base = family.removesuffix("_total") if kind == "counter" else family
        names.update(base + suffix for suffix in _SUFFIXES.get(kind, ("",)))
    return names
