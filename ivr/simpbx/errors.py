"""Exceptions of the simulated PBX."""

from __future__ import annotations

from ivr.errors import HotlineError


class SimPbxError(HotlineError):
    """Base of every error the simulated PBX raises on purpose."""


class ScriptError(SimPbxError, ValueError):
    """A call script asks for something a caller cannot do (an unknown key, a bad outcome)."""


class PbxNotRunningError(SimPbxError):
    """The simulated PBX was used before ``start()`` or after ``close()``."""
