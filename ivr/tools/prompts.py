"""``hotline-ivr prompts``: render missing prompt recordings from their text.

espeak-ng speaks the text (``-v cmn`` for Mandarin, ``-v en`` for English); sox turns it
into what Asterisk plays without transcoding: 8 kHz, mono, 16-bit signed PCM WAV. The
result is a usable stand-in until a voice artist records the prompt; a file already
there (a real recording) is kept unless ``force`` is given.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ivr.dialplan.model import Dialplan
from ivr.tools.errors import MissingProgramError, ToolError
from ivr.tools.validate import recording_path

__all__ = ["VOICES", "RenderPlan", "missing_prompts", "render_prompts", "speakable", "synthesizer"]

#: espeak-ng voice per dialplan language.
VOICES = {"zh": "cmn", "en": "en"}
_TIMEOUT_S = 60
# A hotline number is said digit by digit ("一二三四五"), not as a quantity ("一万两千...").
_NUMBER = re.compile(r"\d{3,}")


def speakable(text: str) -> str:
    """The text as espeak-ng should read it: runs of 3+ digits spelled one digit at a time."""
    return _NUMBER.sub(lambda match: " ".join(match.group()), text)


@dataclass(frozen=True, slots=True)
class RenderPlan:
    """One recording to make: the prompt, the language, the words and the file."""

    prompt_id: str
    language: str
    text: str
    path: Path


Synthesize = Callable[[str, str, Path], None]


def missing_prompts(
    plan: Dialplan,
    recordings_dir: Path,
    languages: Iterable[str] | None = None,
    force: bool = False,
) -> tuple[RenderPlan, ...]:
    """The recordings to render: those missing (all with ``force``) in the given languages."""
    wanted = set(languages) if languages is not None else set(plan.languages)
    found: list[RenderPlan] = []
    for prompt in plan.prompts.values():
        for language, text in prompt.texts.items():
            path = recording_path(recordings_dir, language, prompt.id)
            if language in wanted and (force or not path.is_file()):
                found.append(RenderPlan(prompt.id, language, text, path))
    return tuple(found)


def synthesizer() -> Synthesize:
    """The espeak-ng + sox renderer; raises :class:`MissingProgramError` if one is missing."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise MissingProgramError("espeak-ng", "to speak prompt texts", "espeak-ng")
    sox = shutil.which("sox")
    if sox is None:
        raise MissingProgramError("sox", "to convert prompts to 8 kHz WAV", "sox")

    def synthesize(language: str, text: str, path: Path) -> None:
        voice = VOICES.get(language)
        if voice is None:
            raise ToolError(f"no espeak-ng voice is known for language {language!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as scratch:
            spoken = Path(scratch) / "spoken.wav"
            _run([espeak, "-v", voice, "-w", str(spoken), "--", speakable(text)])
            # -G guards against clipping; -D (no dither) makes the same text give the same bytes.
            _run(
                [
                    sox,
                    "-G",
                    "-D",
                    str(spoken),
                    "-r",
                    "8000",
                    "-c",
                    "1",
                    "-b",
                    "16",
                    "-e",
                    "signed-integer",
                    str(path),
                ]
            )

    return synthesize


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, check=False, timeout=_TIMEOUT_S)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise ToolError(f"{Path(command[0]).name} failed: {message}")


def render_prompts(todo: Iterable[RenderPlan], synthesize: Synthesize) -> tuple[Path, ...]:
    """Render each planned recording; returns the files written."""
    written: list[Path] = []
    for item in todo:
        synthesize(item.language, item.text, item.path)
        written.append(item.path)
    return tuple(written)
