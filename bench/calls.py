"""Call figures, measured from the simulated PBX (this process) against a FastAGI target in its
own process: the service (``bench.service``) or the bare responder (``bench.bare_agi``).

One run of a target: warm-up; 1,000 callers held silent in the first menu (memory per call:
the target's RSS growth over the held calls); under that load, paced probe calls whose key
latencies are stamped by the PBX (menu key -> next prompt, emergency key -> ``EXEC Dial``);
the held calls hung up over AMI's own path (``SimulatedPbx.hangup``); then the throughput run:
two-level menu calls (12345, keys 2 then 1, to the agents' queue, ticket written) as fast as
the target answers them, with the target's CPU seconds read from ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench._timing import Stamps
from bench.service import AMI_SECRET
from ivr.simpbx import CallRecord, CallScript, SimulatedPbx

ROOT = Path(__file__).resolve().parents[1]
# The scenario of a call is told by its caller's number, so the bare responder can pick its
# command sequence as the service picks its menu by the line.
MENU_CALLER, EMERGENCY_CALLER, HOLD_CALLER = "1380000", "1390000", "1370000"
MENU_DESTINATION = "queue:hotline-agents"


def menu_call(n: int) -> CallScript:
    """12345, complaint menu (key 2), complaint (key 1): to the agents with a ticket."""
    return CallScript(caller_number=f"{MENU_CALLER}{n % 10000:04d}", keys=("2", "1"))


def emergency_call(n: int) -> CallScript:
    """12345, emergency menu (key 9), fire (key 2): handed off to 119 at once."""
    return CallScript(caller_number=f"{EMERGENCY_CALLER}{n % 10000:04d}", keys=("9", "2"))


def hold_call(n: int) -> CallScript:
    """A caller who stays silent in the first menu until hung up over AMI."""
    return CallScript(caller_number=f"{HOLD_CALLER}{n % 10000:04d}", keys=("hold",))


@dataclass(frozen=True)
class RunSettings:
    """How much load one run puts on a target."""

    held_calls: int = 1000
    probe_rate: float = 400.0  # probe calls per second while the calls are held
    probe_seconds: float = 3.0
    calls: int = 10_000
    concurrency: int = 200
    warmup_calls: int = 300


@dataclass
class Target:
    """A FastAGI target process and its ports."""

    name: str
    process: asyncio.subprocess.Process
    agi_port: int
    http_port: int

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    async def stop(self) -> None:
        """Close its stdin (its signal to stop) and wait for it."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def start_target(
    name: str,
    module: str,
    *args: str,
    under: tuple[str, ...] = (),
    start_s: float = 60,
    root: Path = ROOT,
    python: str = sys.executable,
) -> Target:
    """Start ``python -m module args`` (run by ``under``, e.g. valgrind) in the source tree
    ``root`` (this one, or another revision's checkout) and read its ports. ``python`` is
    this process's interpreter unless another is named (an environment of its own, with the
    project installed)."""
    process = await asyncio.create_subprocess_exec(
        *under, python, "-m", module, *args, cwd=root,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), start_s)
    if not line:
        await process.wait()
        raise RuntimeError(f"{module} exited with {process.returncode} before serving")
    ports = json.loads(line)
    return Target(name, process, int(ports["agi_port"]), int(ports["http_port"]))


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_split(pid: int, thread: int | None = None) -> tuple[float, float]:
    """User and system CPU seconds of a process (all its threads), or of one of its threads."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def main_thread_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process's main thread (the event loop's)."""
    return sum(cpu_split(pid, thread=pid))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    return sum(cpu_split(pid))


def quantile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``samples``; NaN when there are none."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def histogram(http_port: int, name: str) -> dict[float, float]:
    """Cumulative bucket counts of one histogram of the service's ``/metrics``."""
    async with aiohttp.ClientSession() as session, session.get(
        f"http://127.0.0.1:{http_port}/metrics"
    ) as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        if family.name == name:
            return {
                float(sample.labels["le"]): sample.value
                for sample in family.samples
                if sample.name.endswith("_bucket")
            }
    return {}


async def counter(http_port: int, name: str, **labels: str) -> float:
    """One counter sample of the service's ``/metrics``."""
    async with aiohttp.ClientSession() as session, session.get(
        f"http://127.0.0.1:{http_port}/metrics"
    ) as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The upper bound of the bucket holding the ``q`` quantile of the observations in between."""
    bounds = sorted(after)
    total = after.get(float("inf"), 0.0) - before.get(float("inf"), 0.0)
    if total <= 0:
        return float("nan")
    for bound in bounds:
        if after[bound] - before.get(bound, 0.0) >= q * total:
            return bound
    return float("inf")


async def place_many(
    pbx: SimulatedPbx, script: Callable[[int], CallScript], count: int, concurrency: int
) -> list[CallRecord]:
    """``count`` calls, ``concurrency`` at a time."""
    records: list[CallRecord] = []
    numbers = iter(range(count))

    async def caller() -> None:
        for n in numbers:
            records.append(await pbx.place_call(script(n)))

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, count)):
            group.create_task(caller())
    return records


async def record_sequences(pbx: SimulatedPbx, stamps: Stamps) -> dict[str, list[str]]:
    """The command lines the service sends in each scenario, for the bare responder."""
    menu = await pbx.place_call(menu_call(0))
    emergency = await pbx.place_call(emergency_call(0))
    stamps.holding, stamps.hold_target = 0, 1
    stamps.all_holding.clear()
    held = asyncio.ensure_future(pbx.place_call(hold_call(0)))
    await asyncio.wait_for(stamps.all_holding.wait(), 10)
    for channel in pbx.live_channels():
        pbx.hangup(channel.name)
    hold = await held
    stamps.hold_target = 0
    return {MENU_CALLER: list(menu.commands), EMERGENCY_CALLER: list(emergency.commands),
            HOLD_CALLER: list(hold.commands)}


@dataclass
class RunResult:
    """The figures of one run of one target."""

    calls_per_s: float = 0.0
    calls_per_cpu_s: float = 0.0
    cpu_share: float = 0.0  # the target's CPU seconds / wall seconds in the throughput run
    calls_ok: int = 0
    calls_total: int = 0
    tickets_created: float = float("nan")
    rss_before_kib: int = 0
    rss_held_kib: int = 0
    kib_per_call: float = 0.0
    menu_p50_ms: float = float("nan")
    menu_p99_ms: float = float("nan")
    emergency_p50_ms: float = float("nan")
    emergency_p99_ms: float = float("nan")
    route_p50_ms: float = float("nan")
    route_p99_ms: float = float("nan")
    probe_keys: int = 0
    service_key_p99_bucket_ms: float = float("nan")
    service_emergency_p99_bucket_ms: float = float("nan")
    # The throughput run's AMI stream: events the service counted per call, and events the
    # PBX dropped because the service read too slowly (a tracker that missed them is wrong).
    ami_events_per_call: float = float("nan")
    ami_events_dropped: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


async def one_run(
    pbx: SimulatedPbx, stamps: Stamps, target: Target, settings: RunSettings, *, service: bool
) -> RunResult:
    """Every call figure of one target, in one run (see the module's docstring)."""
    result = RunResult()
    pbx.agi_port = target.agi_port
    await place_many(pbx, menu_call, settings.warmup_calls, 20)

    # Memory: callers held silent in the first menu.
    result.rss_before_kib = rss_kib(target.pid)
    stamps.holding, stamps.hold_target = 0, settings.held_calls
    stamps.all_holding.clear()
    held = [asyncio.ensure_future(pbx.place_call(hold_call(n))) for n in range(settings.held_calls)]
    try:
        await asyncio.wait_for(stamps.all_holding.wait(), 60)
        result.rss_held_kib = rss_kib(target.pid)
        result.kib_per_call = (result.rss_held_kib - result.rss_before_kib) / settings.held_calls

        # Latency under that load: paced probe calls, half of them emergencies.
        if service:
            keys_before = await histogram(target.http_port, "hotline_key_to_command_seconds")
            emergency_before = await histogram(
                target.http_port, "hotline_emergency_handoff_seconds"
            )
        stamps.clear()
        stamps.recording = True
        probes: list[asyncio.Future[CallRecord]] = []
        began = time.perf_counter()
        count = int(settings.probe_rate * settings.probe_seconds)
        for n in range(count):
            delay = began + n / settings.probe_rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing an open-loop load, not waiting for a result
            script = emergency_call(n) if n % 2 else menu_call(n)
            probes.append(asyncio.ensure_future(pbx.place_call(script)))
        await asyncio.gather(*probes)
        stamps.recording = False
        result.probe_keys = len(stamps.menu) + len(stamps.emergency) + len(stamps.route)
        for name in ("menu", "emergency", "route"):
            samples = getattr(stamps, name)
            setattr(result, f"{name}_p50_ms", quantile(samples, 0.50) * 1000)
            setattr(result, f"{name}_p99_ms", quantile(samples, 0.99) * 1000)
        if service:
            keys_after = await histogram(target.http_port, "hotline_key_to_command_seconds")
            emergency_after = await histogram(target.http_port, "hotline_emergency_handoff_seconds")
            result.service_key_p99_bucket_ms = 1000 * bucket_quantile(keys_before, keys_after, 0.99)
            result.service_emergency_p99_bucket_ms = 1000 * bucket_quantile(
                emergency_before, emergency_after, 0.99
            )
    finally:
        stamps.hold_target = 0
        for channel in pbx.live_channels():
            if channel.caller_number.startswith(HOLD_CALLER):
                pbx.hangup(channel.name)
        held_records = await asyncio.gather(*held)
    result.extra["held_ended_as"] = sorted({r.destination for r in held_records})

    # Throughput: two-level menu calls, each with its ticket.
    if service:
        tickets_before = await counter(
            target.http_port, "hotline_tickets_total", backend="sqlite", result="created"
        )
        events_before = await counter(target.http_port, "hotline_ami_events_total", node="sim")
    dropped_before = pbx.dropped_events
    cpu_before, began = cpu_seconds(target.pid), time.perf_counter()
    records = await place_many(pbx, menu_call, settings.calls, settings.concurrency)
    wall = time.perf_counter() - began
    cpu = cpu_seconds(target.pid) - cpu_before
    result.calls_total = len(records)
    result.calls_ok = sum(
        1 for r in records if r.destination == MENU_DESTINATION and r.agi_status == "SUCCESS"
    )
    result.calls_per_s = result.calls_ok / wall
    result.calls_per_cpu_s = result.calls_ok / cpu if cpu > 0 else float("inf")
    result.cpu_share = cpu / wall
    result.ami_events_dropped = pbx.dropped_events - dropped_before
    if service:
        events = await counter(target.http_port, "hotline_ami_events_total", node="sim")
        result.ami_events_per_call = (events - events_before) / len(records)
        result.tickets_created = await counter(
            target.http_port, "hotline_tickets_total", backend="sqlite", result="created"
        ) - tickets_before
    return result


@contextlib.asynccontextmanager
async def pbx_and_service(
    loop: str, *, under: tuple[str, ...] = (), start_s: float = 60
) -> AsyncIterator[tuple[SimulatedPbx, Target]]:
    """The simulated PBX (this process) and the service (core 0, run by ``under``) taking its
    calls; both stopped after."""
    pbx = start_pbx()
    await pbx.start()
    try:
        service = await start_target(
            "service", "bench.service", "--ami-port", str(pbx.ami_port), "--loop", loop,
            "--core", "0", under=under, start_s=start_s,
        )
        try:
            pbx.agi_port = service.agi_port
            yield pbx, service
        finally:
            await service.stop()
    finally:
        await pbx.close()


@contextlib.asynccontextmanager
async def held_callers(
    pbx: SimulatedPbx, stamps: Stamps, count: int, *, within_s: float = 60
) -> AsyncIterator[None]:
    """``count`` callers silent in the first menu while the block runs; hung up after."""
    stamps.holding, stamps.hold_target = 0, count
    stamps.all_holding.clear()
    held = [asyncio.ensure_future(pbx.place_call(hold_call(n))) for n in range(count)]
    try:
        if count:
            await asyncio.wait_for(stamps.all_holding.wait(), within_s)
        yield
    finally:
        stamps.hold_target = 0
        for channel in pbx.live_channels():
            if channel.caller_number.startswith(HOLD_CALLER):
                pbx.hangup(channel.name)
        await asyncio.gather(*held, return_exceptions=True)


def start_pbx() -> SimulatedPbx:
    """The simulated PBX of the benchmark (its FastAGI target is set per run)."""
    return SimulatedPbx(agi_port=0, ami_secret=AMI_SECRET)
