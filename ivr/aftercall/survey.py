"""The post-call satisfaction survey: FastAGI script ``survey``.

The dialplan sends the caller here after the agent hangs up, with the ticket id as the first
argument (``AGI(agi://host/survey,T-<linkedid>)``). The caller hears the ``survey`` prompt
("1 satisfied, 2 basically satisfied, 3 dissatisfied"), may press a key during it or within
``timeout_s`` after it, gets one more try after silence or a wrong key, and the answer is
written to the ticket. A caller who hangs up or never answers leaves the ticket unrated.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import structlog

from ivr.agi.errors import AgiHangup
from ivr.agi.session import AgiSession
from ivr.tickets.errors import TicketStoreError
from ivr.tickets.model import Satisfaction
from ivr.tickets.store import AfterCallStore

RATINGS = MappingProxyType({
    "1": Satisfaction.SATISFIED,
    "2": Satisfaction.BASICALLY_SATISFIED,
    "3": Satisfaction.DISSATISFIED,
})  # fmt: skip

_log = structlog.get_logger("ivr.aftercall")


@dataclass(frozen=True, slots=True)
class SurveyPrompts:
    """The prompts the survey plays (names under ``recordings/<language>/``)."""

    question: str = "survey"
    invalid: str = "survey-invalid"
    thanks: str = "survey-thanks"


class SurveyHandler:
    """An ``AgiHandler`` for the ``survey`` script, writing answers through ``store``."""

    def __init__(
        self,
        store: AfterCallStore,
        *,
        prompts: SurveyPrompts = SurveyPrompts(),
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
            rating = await self._ask(session)
            if rating is None:
                log.info("survey.unanswered")
                return
            try:
                found = await self._store.record_survey(ticket_id, rating)
            except TicketStoreError as exc:
                log.error("survey.not_recorded", rating=str(rating), error=str(exc))
            else:
                log.info("survey.answered", rating=str(rating), ticket_found=found)
            await session.stream_file(self._prompts.thanks)
        except AgiHangup:
            log.info("survey.hangup")

    async def _ask(self, session: AgiSession) -> Satisfaction | None:
        for attempt in range(self._retries + 1):
            if attempt:
                await session.stream_file(self._prompts.invalid)
            digit = await session.stream_file(self._prompts.question, "".join(RATINGS))
            if digit is None:
                digit = await session.wait_for_digit(self._timeout_s)
            if digit is not None and digit in RATINGS:
                return RATINGS[digit]
        return None
