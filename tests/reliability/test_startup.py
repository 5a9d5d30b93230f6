"""The service process after start-up: the event loop it runs on, and what it made put out of
the garbage collector's walk."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from ivr.simpbx import SimulatedPbx
from tests.reliability.service_process import (
    AMI_SECRET,
    command,
    free_port,
    spawn,
    write_config,
)

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


async def _started(tmp_path: Path, *options: str) -> dict[str, Any]:
    """What ``hotline-ivr run`` with ``options`` logs as it starts serving (``service.started``);
    the service is stopped cleanly after."""
    async with SimulatedPbx(agi_port=0, ami_secret=AMI_SECRET) as pbx:
        port = free_port()
        config = write_config(tmp_path, pbx, http_port=port)
        service = await spawn(config, pbx, http_port=port, options=options)
        try:
            started = await service.wait_for("service.started")
        finally:
            assert await service.stop() == 0
    return started


async def test_startup_on_asyncio_with_its_objects_frozen(tmp_path: Path) -> None:
    """hotline-ivr run --loop asyncio serves on asyncio's own loop, freezes start-up's objects
    once it serves (a full collection then walks only what calls made), makes full
    collections rarer, and says so."""
    started = await _started(tmp_path, "--loop", "asyncio")
    assert started["loop"] == "asyncio"
    assert started["frozen_objects"] > 10_000  # modules, the dialplan, the wiring
    assert started["gc_thresholds"][2] == 100  # middle-generation collections per full one


async def test_startup_by_default_on_uvloop_when_installed(tmp_path: Path) -> None:
    """Without --loop the service runs on uvloop if it is installed, else on asyncio's."""
    started = await _started(tmp_path)
    assert started["loop"] == ("uvloop" if HAVE_UVLOOP else "asyncio")


@pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop is not installed here")
async def test_startup_on_uvloop_when_asked(tmp_path: Path) -> None:
    """--loop uvloop runs the same service on uvloop."""
    started = await _started(tmp_path, "--loop", "uvloop")
    assert started["loop"] == "uvloop"


@pytest.mark.skipif(HAVE_UVLOOP, reason="uvloop is installed here")
async def test_uvloop_asked_for_but_missing_is_a_clear_error(tmp_path: Path) -> None:
    """--loop uvloop without uvloop installed stops at once with exit status 2 and says how
    to install it."""
    process = await asyncio.create_subprocess_exec(
        *command(), "run", "--config", str(tmp_path / "absent.yaml"), "--loop", "uvloop",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"hotline-ivr[fast]" in stderr
