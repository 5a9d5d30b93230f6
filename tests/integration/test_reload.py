"""Hot reload: a valid dialplan is swapped in for new calls; a broken one is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ivr.simpbx import CallScript

from .conftest import DIALPLANS, Hotline


@pytest.fixture
def dialplans_dir(tmp_path: Path) -> Path:
    """A copy of the shipped dialplans that the test may edit."""
    copy = tmp_path / "dialplans"
    shutil.copytree(DIALPLANS, copy)
    return copy


def edit(folder: Path, old: str, new: str) -> None:
    path = folder / "hotline.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


async def test_a_broken_dialplan_is_refused_and_the_old_one_keeps_serving(
    hotline: Hotline, dialplans_dir: Path
) -> None:
    """POST /admin/reload of a broken file answers 422 with file and line; calls still route."""
    _, before = await hotline.http_get("/healthz")
    edit(dialplans_dir, "default_queue: general", "default_queue: no-such-queue")
    status, body = await hotline.http_post("/admin/reload")
    assert status == 422
    problems = json.loads(body)["problems"]
    assert any("hotline.yaml:" in p and "settings.default_queue" in p for p in problems)
    _, after = await hotline.http_get("/healthz")
    assert json.loads(after)["dialplan"] == json.loads(before)["dialplan"]
    record, _ = await hotline.call(CallScript(caller_number="13900001111", keys=("1",)))
    assert record.destination == "queue:hotline-agents"
    assert hotline.metric("hotline_dialplan_reloads_total", result="failure") == 1
    assert hotline.metric("hotline_dialplan_last_reload_successful") == 0


async def test_a_valid_dialplan_is_swapped_in_for_new_calls(
    hotline: Hotline, dialplans_dir: Path
) -> None:
    """After a good reload, /healthz shows the new version and new calls follow the new menus."""
    edit(
        dialplans_dir,
        '"1": {queue: general, kind: consult}',
        '"1": {queue: commerce, kind: consult}',
    )
    status, body = await hotline.http_post("/admin/reload")
    assert status == 200
    version = json.loads(body)["version"]
    _, health = await hotline.http_get("/healthz")
    assert json.loads(health)["dialplan"]["version"] == version
    assert hotline.metric("hotline_dialplan_info", version=version) == 1
    record, ticket = await hotline.call(CallScript(caller_number="13900001111", keys=("1",)))
    assert record.destination == "queue:hotline-commerce"
    assert ticket is not None and ticket.extra["dialplan"] == version


async def test_reload_needs_the_admin_token(hotline: Hotline) -> None:
    """Without the bearer token the reload is refused."""
    assert (await hotline.http_post("/admin/reload", token=None))[0] == 401
