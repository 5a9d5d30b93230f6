"""The service process after start-up: what it made is out of the garbage collector's walk."""

from __future__ import annotations

from pathlib import Path

from ivr.simpbx import SimulatedPbx
from tests.reliability.service_process import AMI_SECRET, free_port, spawn, write_config


async def test_startup_objects_are_frozen(tmp_path: Path) -> None:
    """hotline-ivr run freezes start-up's objects once it serves (a full collection then
    walks only what calls made) and makes full collections rarer, and says so."""
    async with SimulatedPbx(agi_port=0, ami_secret=AMI_SECRET) as pbx:
        port = free_port()
        service = await spawn(write_config(tmp_path, pbx, http_port=port), pbx, http_port=port)
        try:
            frozen = await service.wait_for("gc.frozen")
        finally:
            assert await service.stop() == 0
    assert frozen["objects"] > 10_000  # modules, the dialplan, the wiring
    assert frozen["thresholds"][2] == 100  # middle-generation collections per full one
