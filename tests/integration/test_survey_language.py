"""The post-call survey speaks the language the caller chose in the IVR."""

from __future__ import annotations

from ivr.simpbx import CallScript
from ivr.tickets.model import Satisfaction

from .conftest import Hotline


async def test_an_english_call_gets_the_english_survey(hotline: Hotline) -> None:
    """8 on 12345 switches the call to English; after the agent, the survey is in English."""
    script = CallScript("13800138000", keys=("8", "0"), survey_keys=("-", "1"))
    record, ticket = await hotline.call(script)
    assert ticket is not None and ticket.language == "en"
    assert ticket.satisfaction == Satisfaction.SATISFIED
    assert record.survey_prompts == (
        "hotline/en/survey", "hotline/en/survey-invalid", "hotline/en/survey",
        "hotline/en/survey-thanks",
    )
