"""The post-call survey over real FastAGI: Asterisk's side played by a raw socket client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ivr.aftercall.survey import SurveyHandler
from ivr.agi.router import ScriptRouter
from ivr.agi.server import FastAgiServer
from ivr.tickets.model import Ticket
from ivr.tickets.sqlite import SqliteTicketStore
from tests.tickets.conftest import build_ticket

BOUND = 5.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteTicketStore]:
    """A started store holding ticket 1."""
    ticket_store = SqliteTicketStore(tmp_path / "t.db")
    await ticket_store.start()
    await ticket_store.submit(build_ticket(1))
    try:
        yield ticket_store
    finally:
        await ticket_store.close()


@pytest.fixture
async def survey_port(store: SqliteTicketStore) -> AsyncIterator[int]:
    """A FastAGI server routing script ``survey`` to the handler; its port."""
    server = FastAgiServer(ScriptRouter({"survey": SurveyHandler(store, timeout_s=3)}),
                           host="127.0.0.1", port=0)  # fmt: skip
    await server.start()
    try:
        yield server.port
    finally:
        await server.close()


Replies = Callable[[bytes], bytes]


async def asterisk(port: int, ticket_id: str, answer: Replies) -> list[bytes]:
    """Open a survey call as Asterisk does, answer each command with ``answer``, return them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    env = (f"agi_network: yes\nagi_network_script: survey\nagi_channel: PJSIP/a-1\n"
           f"agi_uniqueid: 1715236205.9\nagi_arg_1: {ticket_id}\n\n")  # fmt: skip
    writer.write(env.encode())
    commands: list[bytes] = []
    try:
        async with asyncio.timeout(BOUND):
            while line := await reader.readline():
                commands.append(line)
                writer.write(answer(line))
    finally:
        writer.close()
        await writer.wait_closed()
    return commands


def keys(*pressed: int) -> Replies:
    """Answers pressing ``pressed`` in turn (0 = nothing) to each prompt or wait."""
    queue = list(pressed)

    def answer(line: bytes) -> bytes:
        if line.startswith((b"STREAM FILE survey ", b"WAIT FOR DIGIT")):
            return f"200 result={queue.pop(0) if queue else 0} endpos=100\n".encode()
        return b"200 result=0 endpos=100\n"

    return answer


@pytest.mark.parametrize(
    ("pressed", "rating"),
    [((ord("1"),), "satisfied"), ((0, ord("2")), "basically_satisfied"),
     ((ord("7"), 0, ord("3")), "dissatisfied"), ((0, 0, 0, 0), "")],
)  # fmt: skip
async def test_rating_written_to_ticket(
    survey_port: int, store: SqliteTicketStore, pressed: tuple[int, ...], rating: str
) -> None:
    """A key during or after the prompt, or on the one retry, is written; silence writes nothing."""
    ticket: Ticket = build_ticket(1)
    commands = await asterisk(survey_port, ticket.ticket_id, keys(*pressed))
    assert commands[0] == b'STREAM FILE survey "123"\n'
    stored = await store.get(ticket.ticket_id)
    assert stored is not None and stored.satisfaction == rating
    assert (b'STREAM FILE survey-thanks ""\n' in commands) == bool(rating)


async def test_hangup_during_survey(survey_port: int, store: SqliteTicketStore) -> None:
    """A caller who hangs up at the question ends the survey without a rating."""
    commands = await asterisk(survey_port, build_ticket(1).ticket_id, lambda _line: b"HANGUP\n")
    assert len(commands) == 1
    stored = await store.get(build_ticket(1).ticket_id)
    assert stored is not None and stored.satisfaction == ""
