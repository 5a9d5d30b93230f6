"""The dialplan in service, and its hot reload.

A reload validates the new files as a whole and swaps them in with one assignment; a call in
progress keeps the ``Dialplan`` it started with (the call flow takes ``current`` once per call).
A broken version is refused and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from ivr.dialplan.errors import DialplanError, Problem
from ivr.dialplan.loader import load_dialplan
from ivr.dialplan.model import Dialplan
from ivr.metrics import Metrics


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did: the version now serving, and the problems if it was refused."""

    ok: bool
    version: str
    problems: tuple[Problem, ...] = ()


def declare_series(metrics: Metrics, plan: Dialplan) -> None:
    """Create at 0 the metric series of the plan's lines, services and queues."""
    metrics.declare(
        lines=plan.lines.keys(),
        emergency_services=plan.emergency.keys(),
        queues={q.asterisk_queue for q in plan.queues.values()}
        | {d.queue for d in plan.departments.values() if d.queue},
    )


class ActiveDialplan:
    """Holds the dialplan serving new calls; reloads it from the same paths on request."""

    def __init__(
        self,
        plan: Dialplan,
        paths: Sequence[Path],
        metrics: Metrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._current = plan
        self._paths = tuple(paths)
        self._metrics = metrics
        self._clock = clock
        self._lock = asyncio.Lock()
        self.loaded_at = clock()
        self._log = structlog.get_logger("ivr.reload")
        metrics.dialplan_loaded(plan.version)
        declare_series(metrics, plan)

    @property
    def current(self) -> Dialplan:
        """The dialplan new calls start on."""
        return self._current

    async def reload(self) -> ReloadResult:
        """Load the configured files again; swap them in only if they are valid as a whole."""
        async with self._lock:  # two reloads at once would race on the swap
            old = self._current
            try:
                # Reading and validating YAML is blocking work: keep it off the event loop.
                plan = await asyncio.to_thread(load_dialplan, self._paths)
            except DialplanError as exc:
                self._metrics.dialplan_reloaded(None)
                self._log.error(
                    "dialplan.reload_refused",
                    version=old.version,
                    problems=[str(p) for p in exc.problems],
                )
                return ReloadResult(False, old.version, tuple(exc.problems))
            self._current = plan
            self.loaded_at = self._clock()
            self._metrics.dialplan_reloaded(plan.version)
            declare_series(self._metrics, plan)
            self._log.info("dialplan.reloaded", old_version=old.version, version=plan.version)
            return ReloadResult(True, plan.version)
