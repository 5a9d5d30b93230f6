"""The survey asks for its prompts in the ticket's language, and in none ("") when the ticket
cannot tell: the dialplan's default then applies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.aftercall.survey import SurveyHandler, SurveyPrompts
from ivr.agi.router import ScriptRouter
from ivr.agi.server import FastAgiServer
from ivr.tickets.sqlite import SqliteTicketStore
from tests.aftercall.test_survey import asterisk
from tests.tickets.conftest import build_ticket


def prompts_in(language: str) -> SurveyPrompts:
    """Prompt names that show the language they were asked in ("default" for "")."""
    folder = language or "default"
    return SurveyPrompts(f"{folder}/survey", f"{folder}/survey-invalid", f"{folder}/survey-thanks")


@pytest.fixture
async def survey_port(tmp_path: Path) -> AsyncIterator[int]:
    """A survey over a store holding ticket 1 in English; the FastAGI port."""
    store = SqliteTicketStore(tmp_path / "t.db")
    await store.start()
    await store.submit(build_ticket(1, language="en"))
    server = FastAgiServer(ScriptRouter({"survey": SurveyHandler(store, prompts=prompts_in)}),
                           host="127.0.0.1", port=0)  # fmt: skip
    await server.start()
    try:
        yield server.port
    finally:
        await server.close()
        await store.close()


@pytest.mark.parametrize(("ticket_id", "folder"), [
    (build_ticket(1).ticket_id, "en"),  # the caller pressed 8 for English
    (build_ticket(2).ticket_id, "default"),  # no such ticket
])  # fmt: skip
async def test_prompts_follow_the_tickets_language(
    survey_port: int, ticket_id: str, folder: str
) -> None:
    """Question and thanks are asked for in the ticket's language, or the default."""
    def press_1_at_the_question(line: bytes) -> bytes:
        return b"200 result=49 endpos=100\n" if b"/survey " in line else b"200 result=0\n"

    commands = await asterisk(survey_port, ticket_id, press_1_at_the_question)
    assert commands == [
        f'STREAM FILE {folder}/survey "123"\n'.encode(),
        f'STREAM FILE {folder}/survey-thanks ""\n'.encode(),
    ]
