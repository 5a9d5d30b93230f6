"""Helpers for the tools' tests: the shipped dialplan and small dialplans on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.dialplan import Dialplan, load_dialplan

ROOT = Path(__file__).parents[2]
SHIPPED = ROOT / "dialplans"
RECORDINGS = ROOT / "recordings"

# A small valid dialplan: root -> sub (keys 1, 2) and an emergency key path 9 -> 2.
SMALL = """\
settings:
  default_queue: general
  supervisor_queue: general
prompts:
  welcome: {zh: 欢迎}
  sub-menu: {zh: 子菜单}
  invalid: {zh: 输入有误}
  timeout: {zh: 没有收到按键}
  transferring: {zh: 正在转接}
  emergency-failed: {zh: 紧急线路暂时无法接通}
  fallback-emergency: {zh: 紧急情况请按9}
queues:
  general: {asterisk_queue: hotline-agents, label: 综合}
emergency:
  fire:
    number: "119"
    label: 119 火警
    targets:
      - {dial: Local/119@emergency-routes, timeout: 20}
      - {dial: PJSIP/119@trunk-b, timeout: 15}
lines:
  "12345": {label: 12345 热线, kind: consult, menu: root}
menus:
  root:
    prompt: welcome
    keys:
      "1": {queue: general}
      "9": {menu: sub}
  sub:
    prompt: sub-menu
    keys:
      "2": {emergency: fire}
      "*": back
"""

WriteYaml = Callable[..., Path]


@pytest.fixture(scope="session")
def shipped() -> Dialplan:
    """The dialplan shipped in ``dialplans/``."""
    return load_dialplan([SHIPPED])


@pytest.fixture
def write_yaml(tmp_path: Path) -> WriteYaml:
    """Write a YAML text into ``tmp_path`` under a name and return its path."""

    def write(text: str, name: str = "plan.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def recordings_for(tmp_path: Path) -> Callable[[Dialplan], Path]:
    """A recordings folder holding a (tiny) file for every prompt text of a plan."""

    def make(plan: Dialplan) -> Path:
        folder = tmp_path / "recordings"
        for prompt in plan.prompts.values():
            for language in prompt.texts:
                path = folder / language / f"{prompt.id}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"RIFF")
        return folder

    return make
