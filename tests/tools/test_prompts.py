"""``prompts``: missing recordings rendered from their text as 8 kHz mono 16-bit WAV."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.dialplan import Dialplan, load_dialplan
from ivr.tools.errors import ToolError
from ivr.tools.prompts import missing_prompts, render_prompts, speakable, synthesizer

from .conftest import SMALL, WriteYaml

needs_tts = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                               reason="espeak-ng or sox is not installed")


def _plan(write_yaml: WriteYaml) -> Dialplan:
    return load_dialplan([write_yaml(SMALL.replace("  welcome: {zh: 欢迎}",
                                                   "  welcome: {zh: 欢迎, en: Welcome}")
                                     .replace("default_queue: general",
                                              "default_queue: general\n  languages: [zh, en]"))])


def test_only_missing_files_in_the_chosen_languages(write_yaml: WriteYaml, tmp_path: Path) -> None:
    """An existing recording is kept unless forced; --language limits the work."""
    plan = _plan(write_yaml)
    recordings = tmp_path / "rec"
    todo = missing_prompts(plan, recordings)
    assert len(todo) == 8 and {item.language for item in todo} == {"zh", "en"}
    (recordings / "zh").mkdir(parents=True)
    (recordings / "zh" / "welcome.wav").write_bytes(b"real recording")
    assert ("welcome", "zh") not in {(i.prompt_id, i.language) for i in missing_prompts(
        plan, recordings)}
    assert [(i.prompt_id, i.text) for i in missing_prompts(plan, recordings, ["en"])] == [
        ("welcome", "Welcome")]
    assert len(missing_prompts(plan, recordings, force=True)) == 8


def test_numbers_are_spoken_digit_by_digit() -> None:
    """A hotline number is read one digit at a time; short numbers stay as they are."""
    assert speakable("拨打12345或110，按9") == "拨打1 2 3 4 5或1 1 0，按9"


@needs_tts
def test_renders_8khz_mono_16bit_wav(write_yaml: WriteYaml, tmp_path: Path) -> None:
    """espeak-ng and sox make a WAV Asterisk plays as is, the same bytes for the same text."""
    plan = _plan(write_yaml)
    recordings = tmp_path / "rec"
    todo = [item for item in missing_prompts(plan, recordings) if item.prompt_id == "welcome"]
    written = render_prompts(todo, synthesizer())
    assert written == (recordings / "zh" / "welcome.wav", recordings / "en" / "welcome.wav")
    for path in written:
        with wave.open(str(path)) as audio:
            assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (
                8000,
                1,
                2,
            )
            assert audio.getnframes() > 2000  # more than a quarter second of speech
    first = written[0].read_bytes()
    render_prompts(todo[:1], synthesizer())
    assert written[0].read_bytes() == first


def test_missing_programs_are_a_clear_error(write_yaml: WriteYaml, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Without espeak-ng the command fails and says what to install."""
    path = write_yaml(SMALL)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ToolError, match="espeak-ng is not installed"):
        synthesizer()
    assert main(["prompts", "--dialplans", str(path), "--recordings", str(tmp_path / "r")]) == 2
    assert "apt-get install espeak-ng" in capsys.readouterr().err
