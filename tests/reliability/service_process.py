"""The real service as its own process (``hotline-ivr run``), configured against a simulated PBX
of the test process, and waits on what it logs: JSON lines on its stderr, read as they come."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from ivr.simpbx import SimulatedPbx

REPO = Path(__file__).resolve().parents[2]
DIALPLANS = REPO / "dialplans"
AMI_SECRET = "kill-test-ami-secret-5f1c"
ADMIN_TOKEN = "kill-test-admin-token-9b2e"
BOUND_S = 20.0  # a safety bound on each wait; none comes near it when green


def free_port() -> int:
    """A loopback port nobody listens on right now (for the HTTP listener of a child)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(folder: Path, pbx: SimulatedPbx, *, http_port: int) -> Path:
    """A service configuration in ``folder`` (with its own copy of the dialplans) for ``pbx``."""
    shutil.copytree(DIALPLANS, folder / "dialplans", dirs_exist_ok=True)
    config = folder / "hotline.yaml"
    config.write_text(
        "fastagi: {host: 127.0.0.1, port: 0, allowed_peers: [127.0.0.1]}\n"
        "ami:\n"
        f"  - {{node: sim, host: 127.0.0.1, port: {pbx.ami_port}, username: hotline,\n"
        "      secret_env: HOTLINE_AMI_SECRET, ping_interval: 5, send_filter: true}\n"
        f"http: {{host: 127.0.0.1, port: {http_port}, token_env: HOTLINE_ADMIN_TOKEN}}\n"
        "tickets: {backend: sqlite, path: tickets.sqlite3}\n"
        "dialplans: dialplans\n",
        encoding="utf-8",
    )
    return config


def command() -> list[str]:
    """How to start the service: the installed ``hotline-ivr`` beside this Python, else -m."""
    script = Path(sys.executable).with_name("hotline-ivr")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ivr.cli"]


@dataclass
class ServiceProcess:
    """A running ``hotline-ivr run`` and the log lines it has written so far."""

    process: asyncio.subprocess.Process
    http_port: int
    lines: list[dict[str, Any]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)

    async def wait_for(self, event: str, **fields: Any) -> dict[str, Any]:
        """The first log line (seen before or read now) with this event and these fields."""
        return await self.wait_until(lambda line: _matches(line, event, fields), event)

    async def wait_until(
        self, predicate: Callable[[dict[str, Any]], bool], what: str = "the line awaited"
    ) -> dict[str, Any]:
        """The first log line (seen before or read now) for which ``predicate`` holds."""
        for line in self.lines:
            if predicate(line):
                return line
        assert self.process.stderr is not None
        async with asyncio.timeout(BOUND_S):
            while True:
                text = await self.process.stderr.readline()
                if not text:
                    raise AssertionError(f"the service exited before logging {what}: {self.raw}")
                line = self._record(text)
                if line is not None and predicate(line):
                    return line

    def _record(self, text: bytes) -> dict[str, Any] | None:
        decoded = text.decode("utf-8", "replace").rstrip("\n")
        self.raw.append(decoded)
        try:
            line = json.loads(decoded)
        except ValueError:
            return None  # e.g. a traceback's text: kept in raw for the failure message
        if isinstance(line, dict):
            self.lines.append(line)
            return line
        return None

    async def drain(self) -> None:
        """Read the rest of its log (after it exited)."""
        assert self.process.stderr is not None
        for text in (await self.process.stderr.read()).splitlines(keepends=True):
            self._record(text)

    async def get(self, path: str, *, token: str | None = ADMIN_TOKEN) -> tuple[int, Any]:
        """GET ``path`` from its HTTP listener; the status and the JSON answer."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = f"http://127.0.0.1:{self.http_port}{path}"
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as reply:
            return reply.status, await reply.json(content_type=None)

    async def text(self, path: str) -> tuple[int, str]:
        """GET ``path`` without a token; the status and the body as text."""
        url = f"http://127.0.0.1:{self.http_port}{path}"
        async with aiohttp.ClientSession() as session, session.get(url) as reply:
            return reply.status, await reply.text()

    async def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, the way a crash or the OOM killer ends it."""
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        await self.drain()

    async def stop(self) -> int:
        """SIGTERM, and wait for a clean exit; the exit status."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(BOUND_S):
                await self.process.wait()
        await self.drain()
        return int(self.process.returncode or 0)


async def spawn(
    config: Path, pbx: SimulatedPbx, *, http_port: int, ami_secret: str = AMI_SECRET,
    wait_ami: bool = True, options: tuple[str, ...] = (),
) -> ServiceProcess:
    """Start the service (``hotline-ivr run`` with ``options``), point ``pbx``'s FastAGI at it,
    and wait until AMI is logged in."""
    env = dict(os.environ, HOTLINE_AMI_SECRET=ami_secret, HOTLINE_ADMIN_TOKEN=ADMIN_TOKEN)
    process = await asyncio.create_subprocess_exec(
        *command(), "run", "--config", str(config), *options, cwd=config.parent, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    service = ServiceProcess(process, http_port)
    started = False
    try:
        listening = await service.wait_for("fastagi.listening")
        pbx.agi_port = int(listening["port"])
        if wait_ami:
            await service.wait_for("ami.connected")
        started = True
    finally:
        if not started and process.returncode is None:  # never outlive a failed start
            process.kill()
            await process.wait()
    return service


def _matches(line: dict[str, Any], event: str, fields: dict[str, Any]) -> bool:
    return line.get("event") == event and all(line.get(k) == v for k, v in fields.items())
