"""The service and the simulated PBX, both real, talking over loopback TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from ivr.app import FASTAGI, LINKS, STORE, build_app, http_port, start
from ivr.config import (
    AmiNodeConfig,
    CallbacksConfig,
    FastAgiConfig,
    HttpConfig,
    ServiceConfig,
    TicketsConfig,
)
from ivr.dialplan import Dialplan, load_dialplan
from ivr.simpbx import CallRecord, CallScript, SimulatedPbx
from ivr.tickets.model import Ticket, ticket_id_for

DIALPLANS = Path(__file__).parents[2] / "dialplans"
SECRET = "integration-secret"
ADMIN_TOKEN = "integration-admin-token"
# A working Monday morning in Beijing: every shipped line is open.
WORKING_HOURS = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@dataclass
class Hotline:
    """A running service with its simulated PBX."""

    pbx: SimulatedPbx
    app: web.Application
    runner: web.AppRunner
    registry: CollectorRegistry

    async def call(self, script: CallScript) -> tuple[CallRecord, Ticket | None]:
        """Place one call and return what the PBX saw and the ticket the service wrote."""
        record = await self.pbx.place_call(script)
        store = self.app[STORE]
        await store.flush()
        return record, await store.get(ticket_id_for(record.linkedid))

    def metric(self, name: str, **labels: str) -> float:
        """The current value of one metric sample (0 if it was never touched)."""
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    async def http_post(self, path: str, token: str | None = ADMIN_TOKEN) -> tuple[int, str]:
        """POST (no body) to a path of the service's HTTP listener, with the admin token."""
        url = f"http://127.0.0.1:{http_port(self.runner)}{path}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, headers=headers) as response,
        ):
            return response.status, await response.text()

    async def http_get(self, path: str, token: str | None = ADMIN_TOKEN) -> tuple[int, str]:
        """GET a path of the service's HTTP listener, with the admin token unless told."""
        url = f"http://127.0.0.1:{http_port(self.runner)}{path}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers=headers) as response,
        ):
            return response.status, await response.text()


@pytest.fixture(scope="session")
def shipped_dialplan() -> Dialplan:
    """The dialplan shipped in dialplans/, loaded once."""
    return load_dialplan([DIALPLANS])


@pytest.fixture
def dialplans_dir() -> Path:
    """The dialplan folder the service reads (tests that reload it use a copy)."""
    return DIALPLANS


@pytest.fixture
async def hotline(
    tmp_path: Path, shipped_dialplan: Dialplan, dialplans_dir: Path
) -> AsyncIterator[Hotline]:
    """The service on loopback ports, its AMI link logged in to the simulated PBX."""
    plan = shipped_dialplan if dialplans_dir == DIALPLANS else load_dialplan([dialplans_dir])
    async with running_hotline(tmp_path, plan, dialplans_dir) as running:
        yield running


@asynccontextmanager
async def running_hotline(
    tmp_path: Path,
    plan: Dialplan,
    dialplans_dir: Path = DIALPLANS,
    callbacks: CallbacksConfig | None = None,
) -> AsyncIterator[Hotline]:
    """Start the service and a simulated PBX wired to each other; stop both on exit."""
    pbx = SimulatedPbx(agi_port=0, ami_secret=SECRET)
    await pbx.start()
    config = ServiceConfig(
        fastagi=FastAgiConfig(host="127.0.0.1", port=0, allowed_peers=frozenset({"127.0.0.1"})),
        ami=(
            AmiNodeConfig(
                node="sim",
                host="127.0.0.1",
                port=pbx.ami_port,
                username="hotline",
                secret=SECRET,
                ping_interval=5,
                send_filter=True,
            ),
        ),  # the sim allows Filter
        http=HttpConfig(host="127.0.0.1", port=0, token=ADMIN_TOKEN),
        tickets=TicketsConfig(path=tmp_path / "tickets.sqlite3"),
        callbacks=callbacks,
        dialplans=dialplans_dir,
    )
    registry = CollectorRegistry()
    app = build_app(config, plan, registry, clock=lambda: WORKING_HOURS)
    runner = await start(app, "127.0.0.1", 0)
    try:
        pbx.agi_port = app[FASTAGI].port
        for link in app[LINKS]:
            await link.wait_connected(5.0)
        yield Hotline(pbx, app, runner, registry)
    finally:
        await runner.cleanup()
        await pbx.close()
