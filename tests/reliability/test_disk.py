"""The ticket store's disk full or read-only while calls run: calls still route, and the
service says so loudly: /readyz 503 with ``tickets: false``, ``hotline_ready{check="tickets"}``
at 0, and a log line with the reason."""

from __future__ import annotations

import resource
from pathlib import Path

from aiohttp import web

from ivr.app import FASTAGI, build_app, http_port, start
from ivr.config import FastAgiConfig, HttpConfig, ServiceConfig, TicketsConfig
from ivr.dialplan import load_dialplan
from ivr.simpbx import CallScript, SimulatedPbx
from tests.reliability.service_process import (
    AMI_SECRET,
    DIALPLANS,
    ServiceProcess,
    free_port,
    spawn,
    write_config,
)

TICKETS_NOT_READY = 'hotline_ready{check="tickets"} 0.0'


async def readiness(service: ServiceProcess) -> tuple[int, bool, str]:
    """/readyz's status and its tickets check, and the hotline_ready line of /metrics."""
    status, body = await service.get("/readyz", token=None)
    _, metrics = await service.text("/metrics")
    ready_line = next(
        x for x in metrics.splitlines() if x.startswith('hotline_ready{check="tickets"}')
    )
    return status, body["checks"]["tickets"], ready_line


async def test_full_disk_while_calls_run(tmp_path: Path) -> None:
    """With no room left for the ticket file (a file-size limit of 0 on the running service),
    calls still reach their queue and the service reports the store failing; with room
    again it is ready again."""
    async with SimulatedPbx(agi_port=0, ami_secret=AMI_SECRET) as pbx:
        port = free_port()
        service = await spawn(write_config(tmp_path, pbx, http_port=port), pbx, http_port=port)
        pid = service.process.pid
        soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        try:
            first = await pbx.place_call(CallScript("13900001111", keys=("1",)))
            assert await readiness(service) == (200, True, 'hotline_ready{check="tickets"} 1.0')
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, hard))  # the disk is full now
            during = [await pbx.place_call(CallScript(f"1390000222{n}", keys=("1",)))
                      for n in range(3)]  # fmt: skip
            failing = await service.wait_for("ticket_store_failing")
            full = await readiness(service)
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))  # room again
            after = await pbx.place_call(CallScript("13900003333", keys=("1",)))
            await service.wait_for("ticket_store_writable")
            recovered = await readiness(service)
        finally:
            assert await service.stop() == 0
    for record in (first, *during, after):
        assert (record.destination, record.fallback) == ("queue:hotline-agents", False)
    # EFBIG reads "disk I/O error" to SQLite; ENOSPC on a real disk, "database or disk is full".
    assert failing["error"] in ("disk I/O error", "database or disk is full")
    assert failing["level"] == "error"
    assert full == (503, False, TICKETS_NOT_READY)
    assert recovered == (200, True, 'hotline_ready{check="tickets"} 1.0')


async def test_unusable_ticket_folder_at_start(tmp_path: Path) -> None:
    """A ticket path that cannot be opened (its folder is a regular file: as read-only to root
    as to anyone) does not stop the service: calls route, readiness and the metric say why."""
    (tmp_path / "not-a-folder").write_text("x")
    pbx = SimulatedPbx(agi_port=0, ami_secret=AMI_SECRET)
    await pbx.start()
    config = ServiceConfig(
        fastagi=FastAgiConfig(host="127.0.0.1", port=0, allowed_peers=frozenset({"127.0.0.1"})),
        http=HttpConfig(host="127.0.0.1", port=0, token="t"),
        tickets=TicketsConfig(path=tmp_path / "not-a-folder" / "tickets.sqlite3"),
        dialplans=DIALPLANS,
    )
    app = build_app(config, load_dialplan([DIALPLANS]))
    runner: web.AppRunner | None = None
    try:
        runner = await start(app, "127.0.0.1", 0)
        pbx.agi_port = app[FASTAGI].port
        record = await pbx.place_call(CallScript("13900001111", keys=("1",)))
        service = ServiceProcess(process=None, http_port=http_port(runner))  # type: ignore[arg-type]
        status, tickets_ready, ready_line = await readiness(service)
    finally:
        if runner is not None:
            await runner.cleanup()
        await pbx.close()
    assert (record.destination, record.fallback) == ("queue:hotline-agents", False)
    assert (status, tickets_ready, ready_line) == (503, False, TICKETS_NOT_READY)
