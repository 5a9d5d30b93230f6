"""The dialplan package's exceptions: every mistake in a dialplan, with file, line and key path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ivr.errors import HotlineError

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake (or doubtful spot) in a dialplan file.

    ``line`` and ``column`` are 1-based; ``key_path`` is the dotted path of the value
    (``menus.root.keys.1``), "" for the whole file.
    """

    file: str
    line: int
    column: int
    key_path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        prefix = "warning: " if self.severity == "warning" else ""
        if self.key_path:
            return f"{where}: {self.key_path}: {prefix}{self.message}"
        return f"{where}: {prefix}{self.message}"


class DialplanError(HotlineError):
    """A dialplan was rejected; ``problems`` lists every error found (and the warnings)."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        super().__init__(
            f"{len(errors)} error(s) in the dialplan:\n" + "\n".join(str(p) for p in errors)
        )
