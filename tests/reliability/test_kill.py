"""The real service process killed with SIGKILL while callers wait in its menus: every caller
still reaches a human through the dialplan's fallback, and after a restart every call has
exactly one ticket; so has an emergency call killed during its Dial. And SIGHUP reloads the
dialplan of a running process."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import pytest

from ivr.simpbx import CallScript, SimulatedPbx
from ivr.tickets.sqlite import SqliteTicketStore
from tests.reliability.service_process import (
    AMI_SECRET,
    BOUND_S,
    ServiceProcess,
    free_port,
    spawn,
    write_config,
)
from tests.transfer.held_dial import AT_ONCE_LINE, AT_ONCE_TARGET, hold_dials, write_at_once_line

CALLS = 12


async def wait_provisional(service: ServiceProcess, count: int) -> None:
    """Return once ``count`` provisional tickets are committed (bounded number of reads)."""
    for _ in range(1000):
        status, body = await service.get("/tickets?disposition=in_progress&limit=500")
        assert status == 200
        if len(body["tickets"]) >= count:
            return
    raise AssertionError(f"fewer than {count} provisional tickets were committed")


def dispositions(database: Path) -> dict[str, str]:
    """Linkedid -> disposition of every row, read straight from the file."""
    with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True) as conn:
        return dict(conn.execute("SELECT linkedid, disposition FROM tickets").fetchall())


async def test_sigkill_mid_call_then_restart(tmp_path: Path) -> None:
    """Callers waiting for a key when the service is SIGKILLed reach the agents through the
    fallback; the restarted service turns each call's provisional ticket into one due
    service-error ticket, and there is nothing else."""
    async with SimulatedPbx(agi_port=0, ami_secret=AMI_SECRET) as pbx:
        port = free_port()
        config = write_config(tmp_path, pbx, http_port=port)
        database = tmp_path / "tickets.sqlite3"
        first = await spawn(config, pbx, http_port=port)
        calls = [
            asyncio.create_task(pbx.place_call(CallScript(
                f"1390000{n:04d}", dialled="12345" if n % 2 else "96119", keys=("hold",),
            )))
            for n in range(CALLS)
        ]  # fmt: skip
        try:
            async with asyncio.timeout(BOUND_S):
                await pbx.wait_holding(CALLS)
                await wait_provisional(first, CALLS)
            await first.kill()
            async with asyncio.timeout(BOUND_S):
                records = await asyncio.gather(*calls)
        finally:
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
            await first.stop()
        assert first.process.returncode == -signal.SIGKILL
        assert [(r.destination, r.fallback) for r in records] == [
            ("queue:hotline-agents", True)
        ] * CALLS
        linkedids = {r.linkedid for r in records}
        assert dispositions(database) == dict.fromkeys(linkedids, "in_progress")

        second = await spawn(config, pbx, http_port=port)
        try:
            recovered = await second.wait_for("tickets.recovered")
            status, body = await second.get("/tickets?limit=500")
        finally:
            assert await second.stop() == 0
    assert recovered["count"] == CALLS and status == 200
    assert sorted(t["linkedid"] for t in body["tickets"]) == sorted(linkedids)
    assert dispositions(database) == dict.fromkeys(linkedids, "service_error")
    store = SqliteTicketStore(database)
    await store.start()
    try:
        assert (await store.outbox_counts()).pending == CALLS  # due for delivery
    finally:
        await store.close()


async def test_sigkill_during_an_emergency_dial_then_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line that hands off to 119 at once, the service SIGKILLed while the Dial lasts: the
    caller stays with 119, and the restarted service finds the call's provisional ticket and
    makes it its one service-error ticket."""
    hold_dials(monkeypatch)  # the Dial lasts until the service is gone
    async with SimulatedPbx(agi_port=0, ami_secret=AMI_SECRET) as pbx:
        port = free_port()
        config = write_config(tmp_path, pbx, http_port=port)
        write_at_once_line(tmp_path / "dialplans")
        database = tmp_path / "tickets.sqlite3"
        first = await spawn(config, pbx, http_port=port)
        call = asyncio.create_task(pbx.place_call(CallScript("13900000001", dialled=AT_ONCE_LINE)))
        try:
            async with asyncio.timeout(BOUND_S):
                await pbx.wait_holding(1)
                await wait_provisional(first, 1)
            await first.kill()
            async with asyncio.timeout(BOUND_S):
                record = await call
        finally:
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
            await first.stop()
        assert first.process.returncode == -signal.SIGKILL
        assert (record.destination, record.dial_attempts) == (
            f"dial:{AT_ONCE_TARGET}", ((AT_ONCE_TARGET, "ANSWER"),),
        )
        assert dispositions(database) == {record.linkedid: "in_progress"}

        second = await spawn(config, pbx, http_port=port)
        try:
            recovered = await second.wait_for("tickets.recovered")
            status, body = await second.get("/tickets?limit=500")
        finally:
            assert await second.stop() == 0
    assert recovered["count"] == 1 and status == 200
    assert [t["linkedid"] for t in body["tickets"]] == [record.linkedid]
    assert dispositions(database) == {record.linkedid: "service_error"}


async def test_sighup_reloads_the_dialplan(tmp_path: Path) -> None:
    """After an edit of the dialplan files and SIGHUP, /healthz reports the new version."""
    async with SimulatedPbx(agi_port=0, ami_secret=AMI_SECRET) as pbx:
        port = free_port()
        service = await spawn(write_config(tmp_path, pbx, http_port=port), pbx, http_port=port)
        try:
            _, before = await service.get("/healthz", token=None)
            plan = tmp_path / "dialplans" / "hotline.yaml"
            plan.write_text(plan.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
            service.process.send_signal(signal.SIGHUP)
            reloaded = await service.wait_for("dialplan.reloaded")
            status, after = await service.get("/healthz", token=None)
        finally:
            assert await service.stop() == 0
    assert status == 200
    assert reloaded["old_version"] == before["dialplan"]["version"]
    assert after["dialplan"]["version"] == reloaded["version"] != reloaded["old_version"]

