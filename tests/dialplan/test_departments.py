"""Departments: one dial string, dial targets with failover, or an Asterisk queue."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.dialplan import Dialplan, DialplanError, DialTarget, load_dialplan

PLAN = """\
settings: {default_queue: general, supervisor_queue: general}
prompts:
  welcome: {zh: 欢迎}
  invalid: {zh: 输入有误}
  timeout: {zh: 没有收到按键}
  transferring: {zh: 正在转接}
queues:
  general: {asterisk_queue: hotline-agents, label: 综合}
departments:
  water:
DEPARTMENT
lines:
  "12345": {label: 12345 热线, kind: consult, menu: root}
menus:
  root:
    prompt: welcome
    keys: {"1": {department: water}}
"""


def _load(write_yaml: Callable[..., Path], department: str) -> Dialplan:
    return load_dialplan([write_yaml(PLAN.replace("DEPARTMENT", department))])


def test_targets_in_failover_order(write_yaml: Callable[..., Path]) -> None:
    """targets keep their order and timeouts; dial is the first target for older callers."""
    plan = _load(write_yaml, "    label: 供水\n    targets:\n"
                 "      - {dial: PJSIP/8800@water, timeout: 30}\n      - {dial: PJSIP/8801@water}")
    water = plan.departments["water"]
    assert water.targets == (DialTarget("PJSIP/8800@water", 30), DialTarget("PJSIP/8801@water", 60))
    assert (water.dial, water.queue) == ("PJSIP/8800@water", "")


def test_single_dial_and_queue(write_yaml: Callable[..., Path]) -> None:
    """dial: gives one 60 s target; queue: gives no dial target at all."""
    water = _load(write_yaml, "    {label: 供水, dial: PJSIP/8800@water}").departments["water"]
    assert water.targets == (DialTarget("PJSIP/8800@water", 60),)
    queued = _load(write_yaml, "    {label: 供水, queue: water-agents}").departments["water"]
    assert (queued.queue, queued.dial, queued.targets) == ("water-agents", "", ())


@pytest.mark.parametrize(
    ("department", "message"),
    [
        (
            "    {label: 供水, dial: PJSIP/1@w, queue: q}",
            "exactly one of 'dial', 'targets' and 'queue'",
        ),
        ("    {label: 供水, targets: []}", "expected a non-empty list of {dial, timeout}"),
        ("    {label: 供水, targets: [{dial: PJSIP/1@w, timeout: 0}]}", "must be at least 1"),
    ],
)
def test_bad_departments(write_yaml: Callable[..., Path], department: str, message: str) -> None:
    """Two ways at once, an empty list or a zero timeout are errors at line 11."""
    with pytest.raises(DialplanError) as caught:
        _load(write_yaml, department)
    assert [(p.line, p.message) for p in caught.value.problems if message in p.message] != []
    assert all(p.line == 11 for p in caught.value.problems if p.severity == "error")
