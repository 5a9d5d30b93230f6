"""Reader of the recorded FastAGI transcripts: the environment block, then commands and replies.

A transcript is a series of sections, each a ``### <kind>`` header line followed by the raw
bytes: ``env`` (the block up to and including its blank line), ``cmd`` (one command line we
sent), ``resp`` (one line Asterisk sent; a multi-line reply is several ``resp`` sections) and
``timeout`` (Asterisk sent nothing more).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent.parent / "fixtures"


@dataclass(frozen=True, slots=True)
class Step:
    """One section after the environment: ``kind`` is ``cmd``, ``resp`` or ``timeout``."""

    kind: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Transcript:
    """One recorded FastAGI session."""

    name: str
    env: bytes
    steps: tuple[Step, ...]

    @property
    def reply_lines(self) -> tuple[bytes, ...]:
        """Every line Asterisk sent after the environment, in order."""
        return tuple(step.data for step in self.steps if step.kind == "resp")

    def exchanges(self) -> tuple[tuple[bytes, tuple[bytes, ...]], ...]:
        """Each command with the reply lines Asterisk sent after it, before the next command."""
        found: list[tuple[bytes, list[bytes]]] = []
        for step in self.steps:
            if step.kind == "cmd":
                found.append((step.data, []))
            elif step.kind == "resp":
                found[-1][1].append(step.data)
        return tuple((command, tuple(replies)) for command, replies in found)


def read_transcript(path: Path) -> Transcript:
    """Split a transcript file into its environment block and its steps, bytes untouched."""
    sections: list[tuple[str, bytes]] = []
    for line in path.read_bytes().splitlines(keepends=True):
        if line.startswith(b"### "):
            sections.append((line[4:].strip().decode("ascii"), b""))
        else:
            kind, data = sections[-1]
            sections[-1] = (kind, data + line)
    (env_kind, env), *rest = sections
    assert env_kind == "env", path
    return Transcript(path.name, env, tuple(Step(kind, data) for kind, data in rest))


def all_transcripts() -> tuple[Transcript, ...]:
    """Every recorded FastAGI transcript of the fixtures folder."""
    return tuple(read_transcript(path) for path in sorted(FIXTURES.glob("*fastagi.txt")))


def load(name: str) -> Transcript:
    """One transcript by file name."""
    return read_transcript(FIXTURES / name)
