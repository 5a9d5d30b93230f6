"""Emergency hand-off and department transfer inside the FastAGI session, over the simulated PBX."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from call_transfer import department, emergency
from ivr.agi import AgiSession, FastAgiServer
from ivr.agi.router import ScriptRouter
from ivr.callflow import CallHandler
from ivr.dialplan import Dialplan
from ivr.metrics import Metrics
from ivr.simpbx import CallScript, SimulatedPbx
from ivr.tickets.model import Disposition, Ticket
from tests.integration.conftest import WORKING_HOURS

FAILURES = ("BUSY", "NOANSWER", "CONGESTION", "CHANUNAVAIL")


@dataclass(frozen=True)
class Target:
    """A dial target as the dialplan model gives it."""

    dial: str
    timeout_s: int = 20


class BlockedStore:
    """A ticket store whose writes never complete and whose flush never returns."""

    def __init__(self) -> None:
        self.submitted: list[Ticket] = []
        self._never: list[asyncio.Future[bool]] = []

    def submit(self, ticket: Ticket) -> asyncio.Future[bool]:
        self.submitted.append(ticket)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._never.append(future)
        return future

    async def flush(self) -> None:
        await asyncio.get_running_loop().create_future()

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the call path must not use the store's {name}")



@pytest.fixture
async def serve() -> AsyncIterator[
    Callable[[Callable[[AgiSession], Awaitable[None]]], Awaitable[SimulatedPbx]]
]:
    """Run a FastAGI handler on loopback with a simulated PBX pointed at it."""
    servers: list[FastAgiServer] = []
    pbxs: list[SimulatedPbx] = []

    async def start(handler: Callable[[AgiSession], Awaitable[None]]) -> SimulatedPbx:
        server = FastAgiServer(ScriptRouter({"ivr": handler}), host="127.0.0.1", port=0,
                               allowed_peers=frozenset({"127.0.0.1"}))
        await server.start()
        servers.append(server)
        pbx = SimulatedPbx(agi_port=server.port)
        await pbx.start()
        pbxs.append(pbx)
        return pbx

    yield start
    for pbx in pbxs:
        await pbx.close()
    for server in servers:
        await server.close()


def call_handler(plan: Dialplan, store: BlockedStore) -> CallHandler:
    """The service's call handler, built as ivr/app.py builds it, over ``store``."""
    return CallHandler(dialplan=lambda: plan, store=store, metrics=Metrics(CollectorRegistry()),
                       node="sim", clock=lambda: WORKING_HOURS)


async def test_handoff_proceeds_while_the_ticket_store_is_blocked(
    serve: Any, shipped_dialplan: Dialplan
) -> None:
    """With a store that never answers, the police key still dials 110 and is answered."""
    store = BlockedStore()
    pbx = await serve(call_handler(shipped_dialplan, store))
    record = await asyncio.wait_for(pbx.place_call(CallScript("13800138000", keys=("9", "1"))), 5)
    assert record.dial_attempts == (("Local/110@emergency-routes", "ANSWER"),)
    assert record.destination == "dial:Local/110@emergency-routes"
    assert [(t.disposition, t.emergency_result) for t in store.submitted] == [
        (Disposition.IN_PROGRESS, ""), (Disposition.EMERGENCY, "ANSWER"),
    ]


async def test_first_dial_is_the_first_command_after_the_key(
    serve: Any, shipped_dialplan: Dialplan
) -> None:
    """Nothing runs between the emergency key and the first Dial, not even a variable."""
    pbx = await serve(call_handler(shipped_dialplan, BlockedStore()))
    script = CallScript(
        "13800138000", keys=("9", "3"), dial_outcomes={"Local/120@emergency-routes": "BUSY"}
    )
    record = await asyncio.wait_for(pbx.place_call(script), 5)
    dial = next(i for i, command in enumerate(record.commands) if command.startswith("EXEC Dial"))
    assert record.commands[dial - 1].startswith("STREAM FILE hotline/zh/emergency-menu")
    assert "Local/120@emergency-routes" in record.commands[dial]
    assert record.dial_attempts[-1] == ("PJSIP/120@emergency-trunk-b", "ANSWER")


@pytest.mark.parametrize("failure", FAILURES)
async def test_each_failure_moves_to_the_next_target(serve: Any, failure: str) -> None:
    """BUSY, NOANSWER, CONGESTION and CHANUNAVAIL each move the transfer to the next target."""
    results: list[department.TransferResult] = []

    async def handler(session: AgiSession) -> None:
        targets = (Target("PJSIP/8800@water-company"), Target("PJSIP/8801@water-company", 30))
        results.append(await department.transfer(session, targets))

    pbx = await serve(handler)
    script = CallScript("13800138000", dial_outcomes={"PJSIP/8800@water-company": failure})
    record = await asyncio.wait_for(pbx.place_call(script), 5)
    assert record.dial_attempts == (
        ("PJSIP/8800@water-company", failure), ("PJSIP/8801@water-company", "ANSWER"),
    )
    (result,) = results
    assert (result.answered, result.last_target, result.caller_gone) == (
        True, "PJSIP/8801@water-company", False,
    )
    assert result.waited_before_answer_s is not None and result.waited_before_answer_s >= 0


async def test_all_targets_failing_leaves_the_caller_on_the_line(serve: Any) -> None:
    """When every target fails the result says so and the caller is still there to route on."""
    results: list[department.TransferResult] = []

    async def handler(session: AgiSession) -> None:
        results.append(
            await department.transfer(session, (Target("PJSIP/1@a"), Target("PJSIP/2@b")))
        )
        await session.set_variable("HOTLINE_ROUTE", "queue")

    pbx = await serve(handler)
    outcomes = {"PJSIP/1@a": "CONGESTION", "PJSIP/2@b": "NOANSWER"}
    record = await asyncio.wait_for(pbx.place_call(CallScript("1", dial_outcomes=outcomes)), 5)
    (result,) = results
    assert (result.answered, result.last_status, result.caller_gone) == (False, "NOANSWER", False)
    assert result.waited_before_answer_s is None
    assert record.variables["HOTLINE_ROUTE"] == "queue"


async def test_line_and_path_travel_in_the_predial_option(serve: Any) -> None:
    """The line and the menu path go with each Dial in its b() pre-dial Gosub, made safe."""
    async def handler(session: AgiSession) -> None:
        await emergency.hand_off(session, "police", (Target("Local/110@emergency-routes"),),
                                 line="12345", path=("root", "root:9", "emergency", "x^(y)"))

    pbx = await serve(handler)
    record = await asyncio.wait_for(pbx.place_call(CallScript("13800138000")), 5)
    dial = next(command for command in record.commands if command.startswith("EXEC Dial"))
    assert dial == (
        'EXEC Dial "Local/110@emergency-routes,20,'
        'b(hotline-predial^s^1(12345^root/root:9/emergency/x__y_))"'
    )
    assert record.dial_attempts == (("Local/110@emergency-routes", "ANSWER"),)


async def test_unreachable_service_keeps_native_emergency_keys(serve: Any) -> None:
    """With the FastAGI service down, a native emergency path dials its targets in order."""
    paths = {"91": ("Local/110@emergency-routes", "PJSIP/110@emergency-trunk-b")}
    async with SimulatedPbx(agi_port=1, native_emergency=paths, agi_connect_timeout=1) as pbx:
        script = CallScript("13800138000", keys=("9", "1"),
                            dial_outcomes={"Local/110@emergency-routes": "CHANUNAVAIL"})
        record = await pbx.place_call(script)
        other = await pbx.place_call(CallScript("13800138000", keys=("2",)))
    assert (record.agi_status, record.fallback) == ("FAILURE", True)
    assert record.prompts == ("hotline/zh/fallback-emergency",)
    assert record.dial_attempts == (
        ("Local/110@emergency-routes", "CHANUNAVAIL"), ("PJSIP/110@emergency-trunk-b", "ANSWER"),
    )
    assert record.destination == "dial:PJSIP/110@emergency-trunk-b"
    assert (other.destination, other.dial_attempts) == ("queue:hotline-agents", ())


async def test_unreachable_service_without_paths_goes_to_the_queue() -> None:
    """Without native paths the fallback is the default queue, as before, keys untouched."""
    async with SimulatedPbx(agi_port=1, agi_connect_timeout=1) as pbx:
        record = await pbx.place_call(CallScript("13800138000", keys=("9", "1")))
    assert (record.destination, record.prompts, record.fallback) == (
        "queue:hotline-agents",
        (),
        True,
    )
