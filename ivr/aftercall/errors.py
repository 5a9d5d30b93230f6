"""The after-call package's exceptions."""

from __future__ import annotations

from ivr.errors import HotlineError


class AfterCallError(HotlineError):
    """Base of every error raised on purpose by ``ivr.aftercall``."""
