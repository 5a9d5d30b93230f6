"""The post-call satisfaction survey: FastAGI script ``survey``.

The dialplan sends the caller here after the agent hangs up, with the ticket id as the first
argument (``AGI(agi://host/survey,T-<linkedid>)``). The caller hears the ``survey`` prompt
("1 satisfied, 2 basically satisfied, 3 dissatisfied"), may press a key during it or within
``timeout_s`` after it, gets one more try after silence or a wrong key, and the answer is
written to the ticket. A caller who hangs up or never answers leaves the ticket unrated.
The prompts are spoken in the language the caller chose in the IVR, as the ticket records it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import structlog

from ivr.agi.errors import AgiHangup
from ivr.agi.session import AgiSession
from ivr.tickets.errors import TicketStoreError
from ivr.tickets.model import Satisfaction, Ticket

RATINGS = MappingProxyType({
    "1": Satisfaction.SATISFIED,
    "2": Satisfaction.BASICALLY_SATISFIED,
    "3": Satisfaction.DISSATISFIED,
})  # fmt: skip
_TICKET_READ_WAIT_S = 0.5  # a slow store must not leave the caller in silence after the agent

_log = structlog.get_logger("ivr.aftercall")


@dataclass(frozen=True, slots=True)
class SurveyPrompts:
    """The prompts the survey plays (names under ``recordings/<language>/``)."""

    question: str = "survey"
    invalid: str = "survey-invalid"
    thanks: str = "survey-thanks"


class SurveyStore(Protocol):
    """What the survey uses of the ticket store: the call's ticket, and where the answer goes."""

    async def get(self, ticket_id: str) -> Ticket | None: ...

    async def record_survey(self, ticket_id: str, rating: str) -> bool: ...


def _unlocalised(_language: str) -> SurveyPrompts:
    """Bare prompt names: Asterisk then plays them in the channel's own language."""
    return SurveyPrompts()


class SurveyHandler:
    """An ``AgiHandler`` for the ``survey`` script, writing answers through ``store``.

    ``prompts`` gives the prompts in a language code (``""`` when the call's is unknown).
    """

    def __init__(
        self,
        store: SurveyStore,
        *,
        prompts: Callable[[str], SurveyPrompts] = _unlocalised,
        timeout_s: float = 5.0,
        retries: int = 1,
    ) -> None:
        if retries < 0 or timeout_s <= 0:
            raise ValueError("retries must not be negative and timeout_s must be positive")
        self._store = store
        self._prompts = prompts
        self._timeout_s = timeout_s
        self._retries = retries

    async def __call__(self, session: AgiSession) -> None:
        """Run the survey on one call; a hangup at any point is a normal end."""
        ticket_id = session.env.args[0] if session.env.args else ""
        log = _log.bind(ticket_id=ticket_id, uniqueid=session.env.uniqueid)
        if not ticket_id.startswith("T-"):
            log.warning("survey.no_ticket")
            return
        try:
            prompts = self._prompts(await self._language(ticket_id, log))
            rating = await self._ask(session, prompts)
            if rating is None:
                log.info("survey.unanswered")
                return
            try:
                found = await self._store.record_survey(ticket_id, rating)
            except TicketStoreError as exc:
                log.error("survey.not_recorded", rating=str(rating), error=str(exc))
            else:
                log.info("survey.answered", rating=str(rating), ticket_found=found)
            await session.stream_file(prompts.thanks)
        except AgiHangup:
            log.info("survey.hangup")

    async def _language(self, ticket_id: str, log: Any) -> str:
        """The language the caller chose in the IVR, from the ticket; ``""`` when the ticket
        cannot be read in time (the prompts then fall back to the default language)."""
        try:
            ticket = await asyncio.wait_for(self._store.get(ticket_id), _TICKET_READ_WAIT_S)
        except (TimeoutError, TicketStoreError) as exc:
            log.warning("survey.language_unknown", error=str(exc) or type(exc).__name__)
            return ""
        return ticket.language if ticket is not None else ""

    async def _ask(self, session: AgiSession, prompts: SurveyPrompts) -> Satisfaction | None:
        for attempt in range(self._retries + 1):
            if attempt:
                await session.stream_file(prompts.invalid)
            digit = await session.stream_file(prompts.question, "".join(RATINGS))
            if digit is None:
                digit = await session.wait_for_digit(self._timeout_s)
            if digit is not None and digit in RATINGS:
                return RATINGS[digit]
        return None
