"""The real service (``build_app``) with its AMI links pointed wherever a test says (a fault
proxy in front of a simulated PBX), the transfer routes added, and event-driven waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from ivr.ami import AmiLink, AmiMessage, CallTracker
from ivr.app import FASTAGI, LINKS, STORE, TRACKERS, build_app, http_port, start
from ivr.config import AmiNodeConfig, FastAgiConfig, HttpConfig, ServiceConfig, TicketsConfig
from ivr.dialplan import Dialplan
from ivr.simpbx import SimulatedPbx
from tests.integration.conftest import ADMIN_TOKEN, DIALPLANS, SECRET, WORKING_HOURS

WAIT_S = 5.0  # the bound on every wait of these tests; none comes near it when green


@dataclass(frozen=True)
class Node:
    """One PBX node as the service is told of it: its name and the AMI port to dial."""

    name: str
    port: int
    ping_interval: float = 5.0


@dataclass
class Service:
    """A running service and what tests look at."""

    app: web.Application
    runner: web.AppRunner
    registry: CollectorRegistry
    _seen: dict[str, asyncio.Event] = field(default_factory=dict)

    def link(self, node: str) -> AmiLink:
        """The AMI link of ``node``."""
        return next(link for link in self.app[LINKS] if link.node == node)

    def tracker(self, node: str) -> CallTracker:
        """The call tracker of ``node``."""
        tracker: CallTracker = self.app[TRACKERS][node]
        return tracker

    def watch(self) -> None:
        """Count AMI events per node so that :meth:`wait_tracked` can wait on them."""
        for link in self.app[LINKS]:
            seen = self._seen.setdefault(link.node, asyncio.Event())

            def mark(_event: AmiMessage, seen: asyncio.Event = seen) -> None:
                seen.set()

            link.subscribe("*", mark)

    async def wait_tracked(self, node: str, predicate: Callable[[CallTracker], bool]) -> None:
        """Return once ``predicate(tracker)`` holds, checking after each AMI event of ``node``."""
        seen = self._seen[node]
        async with asyncio.timeout(WAIT_S):
            while not predicate(self.tracker(node)):
                seen.clear()
                await seen.wait()

    async def post(self, path: str, body: object) -> tuple[int, dict[str, Any]]:
        """POST JSON to the service with the admin token; returns status and JSON answer."""
        url = f"http://127.0.0.1:{http_port(self.runner)}{path}"
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with aiohttp.ClientSession() as session, session.post(
            url, json=body, headers=headers
        ) as response:
            return response.status, await response.json()


@asynccontextmanager
async def running_service(
    tmp_path: Path, dialplan: Dialplan, nodes: Sequence[Node], pbxs: Sequence[SimulatedPbx],
    *, action_timeout: float = 5.0,
) -> AsyncIterator[Service]:
    """Start the service for ``nodes`` and point every ``pbxs`` FastAGI at it."""
    config = ServiceConfig(
        fastagi=FastAgiConfig(host="127.0.0.1", port=0, allowed_peers=frozenset({"127.0.0.1"})),
        ami=tuple(
            AmiNodeConfig(node=node.name, host="127.0.0.1", port=node.port, username="hotline",
                          secret=SECRET, ping_interval=node.ping_interval, send_filter=True)
            for node in nodes
        ),
        http=HttpConfig(
            host="127.0.0.1", port=0, token=ADMIN_TOKEN, transfer_timeout_s=action_timeout
        ),
        tickets=TicketsConfig(path=tmp_path / "tickets.sqlite3"),
        dialplans=DIALPLANS,
    )
    registry = CollectorRegistry()
    app = build_app(config, dialplan, registry, clock=lambda: WORKING_HOURS)

    runner = await start(app, "127.0.0.1", 0)
    try:
        for pbx in pbxs:
            pbx.agi_port = app[FASTAGI].port
        service = Service(app, runner, registry)
        service.watch()
        yield service
    finally:
        await runner.cleanup()


__all__ = ["STORE", "WAIT_S", "Node", "Service", "running_service"]
