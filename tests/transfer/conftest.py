"""Fixtures of the transfer tests: the shipped dialplan, loaded once."""

from __future__ import annotations

import pytest

from ivr.dialplan import Dialplan, load_dialplan
from tests.integration.conftest import DIALPLANS


@pytest.fixture(scope="session")
def shipped_dialplan() -> Dialplan:
    """The dialplan shipped in dialplans/, loaded once."""
    return load_dialplan([DIALPLANS])
