"""The tools' exceptions: a tool that cannot do its job says why in one line."""

from __future__ import annotations

from ivr.errors import HotlineError


class ToolError(HotlineError):
    """A tool could not run: a program it needs is missing, an argument names nothing, ..."""


class MissingProgramError(ToolError):
    """An external program (``dot``, ``espeak-ng``, ``sox``) is not installed."""

    def __init__(self, program: str, purpose: str, package: str) -> None:
        self.program = program
        super().__init__(
            f"{program} is not installed; it is needed {purpose} "
            f"(Debian/Ubuntu: apt-get install {package})"
        )
