"""``validate``: every problem with file, line and key path, on top of what loading checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.dialplan import Dialplan, load_dialplan
from ivr.tools.validate import format_problems, validate_paths

from .conftest import RECORDINGS, SHIPPED, SMALL, WriteYaml


def test_shipped_dialplan_and_recordings_are_clean() -> None:
    """The shipped dialplan has no problem at all, and every prompt text has its recording."""
    plan, problems = validate_paths([SHIPPED], RECORDINGS)
    assert plan is not None
    assert problems == ()


def test_every_shipped_prompt_has_its_wav_file(shipped: Dialplan) -> None:
    """recordings/<language>/<id>.wav exists for each prompt and language with a text."""
    missing = [f"{language}/{prompt.id}" for prompt in shipped.prompts.values()
               for language in prompt.texts
               if not (RECORDINGS / language / f"{prompt.id}.wav").is_file()]
    assert missing == []


def test_loader_errors_come_back_without_a_plan(write_yaml: WriteYaml) -> None:
    """A YAML mistake is returned as a problem with its file and line, and no plan."""
    path = write_yaml(SMALL.replace('  "12345": {label', '  "12345": {labl'))
    plan, problems = validate_paths([path], None)
    assert plan is None
    assert any(p.line == 22 and p.key_path == "lines.12345.labl" for p in problems)


def test_missing_recording_is_an_error_at_the_prompt_text(
    write_yaml: WriteYaml, recordings_for: Callable[[Dialplan], Path]
) -> None:
    """A prompt without its WAV is reported at the line of that language's text."""
    path = write_yaml(SMALL)
    recordings = recordings_for(load_dialplan([path]))
    (recordings / "zh" / "sub-menu.wav").unlink()
    plan, problems = validate_paths([path], recordings)
    assert plan is None
    assert [str(p) for p in problems] == [
        f"{path}:6:14: prompts.sub-menu.zh: no recording {recordings}/zh/sub-menu.wav "
        "(render it with `hotline-ivr prompts`)"
    ]


def test_recordings_are_not_checked_without_a_folder(write_yaml: WriteYaml) -> None:
    """With no recordings folder (sounds on the PBX) a plan without files still loads."""
    plan, problems = validate_paths([write_yaml(SMALL)], None)
    assert plan is not None and problems == ()


def test_menu_no_line_reaches_is_a_warning(write_yaml: WriteYaml) -> None:
    """Menus only entered from each other, never from a line, are warned about at their id."""
    text = SMALL + """\
  island:
    prompt: sub-menu
    keys: {"1": {menu: islet}, "2": {queue: general}}
  islet:
    prompt: sub-menu
    keys: {"1": {menu: island}, "2": {queue: general}}
"""
    path = write_yaml(text)
    plan, problems = validate_paths([path], None)
    assert plan is not None
    assert {(p.line, p.key_path, p.severity) for p in problems} == {
        (34, "menus.island", "warning"), (37, "menus.islet", "warning")}
    assert plan.warnings == problems
    assert "cannot be reached from any line" in problems[0].message


def test_loop_without_a_person_is_an_error(write_yaml: WriteYaml) -> None:
    """Menus whose keys only lead to each other (back, repeat, info) are an error at keys."""
    text = SMALL.replace('      "1": {queue: general}\n', '      "1": {menu: loop}\n') + """\
  loop:
    prompt: sub-menu
    keys:
      "1": repeat
      "2": {info: welcome}
      "*": back
"""
    text = text.replace('"2": {emergency: fire}', '"2": {menu: root}')
    path = write_yaml(text)
    plan, problems = validate_paths([path], None)
    assert plan is None
    errors = [p for p in problems if p.severity == "error"]
    assert [(p.line, p.key_path) for p in errors] == [
        (26, "menus.root.keys"), (31, "menus.sub.keys"), (36, "menus.loop.keys")]
    assert "a loop with no way out to a person" in errors[0].message


def test_emergency_keys_without_a_fallback_prompt_warn(write_yaml: WriteYaml) -> None:
    """Without 'fallback-emergency' the Asterisk fallback could not announce its keys."""
    path = write_yaml(SMALL.replace("  fallback-emergency: {zh: 紧急情况请按9}\n", ""))
    plan, problems = validate_paths([path], None)
    assert plan is not None
    assert [(p.key_path, p.severity) for p in problems] == [("prompts", "warning")]


def test_cli_exit_codes_and_format(write_yaml: WriteYaml, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """validate prints file:line:column: key.path: message lines, exit 1 on errors, else 0."""
    good = write_yaml(SMALL, "good.yaml")
    assert main(["validate", "--no-recordings", str(good)]) == 0
    assert capsys.readouterr().out.strip() == "0 error(s), 0 warning(s)"
    bad = tmp_path / "bad" / "plan.yaml"
    bad.parent.mkdir()
    bad.write_text(SMALL.replace("kind: consult", "kind: chat"), encoding="utf-8")
    assert main(["validate", "--no-recordings", str(bad.parent)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{bad}:22:36: lines.12345.kind: 'chat' is not one of:")
    assert out[-1] == "1 error(s), 0 warning(s)"


def test_format_marks_warnings() -> None:
    """Warnings are marked in the report and counted apart."""
    _, problems = validate_paths([SHIPPED], None)
    assert format_problems(problems) == "0 error(s), 0 warning(s)"
