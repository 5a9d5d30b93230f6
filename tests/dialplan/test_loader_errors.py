"""Each kind of dialplan mistake is reported with its exact file, line, column and key path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.dialplan import DialplanError, load_dialplan
from ivr.dialplan.model import Action, ActionKind

WriteYaml = Callable[..., Path]

# A small valid dialplan; each test changes one numbered line (numbers in comments).
BASE = """\
settings:
  default_queue: general
  supervisor_queue: general
prompts:
  welcome: {zh: 欢迎}
  invalid: {zh: 输入有误}
  timeout: {zh: 没有收到按键}
  transferring: {zh: 正在转接}
  closed: {zh: 现在是非工作时间}
  emergency-failed: {zh: 紧急线路暂时无法接通，请直接拨打119}
queues:
  general: {asterisk_queue: hotline-agents, label: 综合}
emergency:
  fire:
    number: "119"
    label: 119 火警
    targets:
      - {dial: Local/119@emergency-routes, timeout: 20}
schedules:
  office:
    timezone: Asia/Shanghai
    weekly: {mon: ["08:30-12:00"]}
lines:
  "12345": {label: 12345 热线, kind: consult, menu: root}
  "96119": {label: 96119 消防, kind: report, menu: root, schedule: office}
menus:
  root:
    prompt: welcome
    keys:
      "1": {queue: general}
      "2": {emergency: fire}
"""


def variant(line_number: int, replacement: str) -> str:
    """BASE with one line (1-based) replaced by one or more lines."""
    lines = BASE.splitlines()
    lines[line_number - 1] = replacement
    return "\n".join(lines) + "\n"


def errors_of(path: Path) -> list[str]:
    """The errors loading ``path`` reports, as ``file:line:column: key.path: message``."""
    with pytest.raises(DialplanError) as caught:
        load_dialplan([path])
    return [str(p) for p in caught.value.problems if p.severity == "error"]


def test_the_base_dialplan_is_valid(write_yaml: WriteYaml) -> None:
    """The base used by the other tests loads without errors or warnings."""
    plan = load_dialplan([write_yaml(BASE)])
    assert plan.warnings == ()
    assert set(plan.lines) == {"12345", "96119"}


@pytest.mark.parametrize(
    ("line_number", "replacement", "expected"),
    [
        pytest.param(31, '      "1": {emergency: fire}',
                     "31:7: menus.root.keys.1: duplicate key '1' (first at line 30)",
                     id="same DTMF key twice"),
        pytest.param(2, "  default_queue: [general]",
                     "2:18: settings.default_queue: expected a text value, found a list",
                     id="wrong type"),
        pytest.param(12, "  general: [hotline-agents]", "12:12: queues.general: expected a "
                     "mapping, found a list", id="list instead of mapping"),
        pytest.param(24, '  "12345": {label: x, kind: consult, menu: root, colour: red}',
                     "24:50: lines.12345.colour: unknown key 'colour' (expected one of: label, "
                     "kind, menu, schedule, closed, aliases, urgency)", id="unknown key"),
        pytest.param(24, '  "12345": {label: x, menu: root}',
                     "24:12: lines.12345: missing required key 'kind'", id="missing key"),
        pytest.param(24, '  "12345": {label: x, kind: consult, menu: main}',
                     "24:44: lines.12345.menu: unknown menu 'main'", id="unknown menu"),
        pytest.param(30, '      "1": {queue: agents}',
                     "30:20: menus.root.keys.1.queue: unknown queue 'agents'",
                     id="unknown queue"),
        pytest.param(30, '      "1": {department: water}',
                     "30:25: menus.root.keys.1.department: unknown department 'water'",
                     id="unknown department"),
        pytest.param(31, '      "2": {emergency: police}',
                     "31:24: menus.root.keys.2.emergency: unknown emergency 'police'",
                     id="unknown emergency service"),
        pytest.param(10, "  spare: {zh: 备用}",
                     "2:3: settings: unknown prompt 'emergency-failed' (spoken when every "
                     "emergency route fails)", id="no prompt for failed emergency routes"),
        pytest.param(28, "    prompt: hello",
                     "28:13: menus.root.prompt: unknown prompt 'hello'", id="unknown prompt"),
        pytest.param(25, '  "96119": {label: x, kind: report, menu: root, aliases: ["+86 12345"]}',
                     "25:59: lines.96119.aliases: number 12345 is already claimed by line "
                     "12345", id="number claimed twice"),
        pytest.param(22, '    weekly: {mon: ["08:30-07:00"]}',
                     "22:20: schedules.office.weekly.mon: '08:30-07:00' is not a time range "
                     "like 08:30-12:00", id="bad time range"),
        pytest.param(22, '    weekly: {mon: ["08:30-12:00"]}\n    holidays: {2026-02-30: x}',
                     "23:16: schedules.office.holidays.2026-02-30: '2026-02-30' is not a date "
                     "like 2026-10-01", id="bad date"),
        pytest.param(21, "    timezone: Asia/Beijing",
                     "21:15: schedules.office.timezone: unknown timezone 'Asia/Beijing'",
                     id="unknown timezone"),
        pytest.param(31, '      "12": {emergency: fire}',
                     "31:7: menus.root.keys.12: '12' is not a phone key (one of 0-9, * and #)",
                     id="invalid key"),
        pytest.param(15, '    number: "999"',
                     "15:13: emergency.fire.number: the fire service is 119, not 999",
                     id="wrong emergency number"),
        pytest.param(28, "    prompt: welcome\n    fallback: hangup",
                     "29:15: menus.root.fallback: a fallback must be queue, department, "
                     "message or callback, so nobody is left in silence; found hangup",
                     id="silent fallback"),
        pytest.param(22, '    weekly: {mon: ["08:30-12:00"]}\n    holidays: [2026-10-01]\n'
                     "    makeup_days: [2026-10-01]",
                     "24:19: schedules.office.makeup_days: 2026-10-01 is both a holiday and a "
                     "make-up working day", id="holiday and make-up day"),
        pytest.param(30, '      "1": {language: en}',
                     "30:23: menus.root.keys.1.language: language 'en' is not in "
                     "settings.languages", id="language not in the settings"),
        pytest.param(25, '  "96119": {label: x, kind: report, menu: root, schedule: office, '
                     "closed: {language: zh}}",
                     "25:75: lines.96119.closed: back, repeat and language mean nothing "
                     "before a menu was played", id="language as the closed action"),
        pytest.param(1, "extras: {}\nsettings:",
                     "1:1: extras: unknown key 'extras' (expected one of: "
                     "settings, prompts, queues, departments, emergency, schedules, lines, "
                     "menus)", id="unknown section"),
        pytest.param(30, '      "1": {queue: general',
                     "31:10: YAML syntax error: while parsing a flow mapping expected ',' or "
                     "'}', but got ':'", id="YAML syntax error"),
    ],
)
def test_each_mistake_names_file_line_column_and_key_path(
    write_yaml: WriteYaml, line_number: int, replacement: str, expected: str
) -> None:
    """The mistake is reported once, at the place it was made."""
    path = write_yaml(variant(line_number, replacement))
    assert errors_of(path) == [f"{path}:{expected}"]


def test_every_mistake_is_reported_not_only_the_first(write_yaml: WriteYaml) -> None:
    """Three unrelated mistakes give three errors, in file order."""
    text = variant(21, "    timezone: Mars/Base")
    text = text.replace("prompt: welcome", "prompt: hello").replace("kind: report", "kind: x")
    path = write_yaml(text)
    assert [e.split(": ", 2)[1] for e in errors_of(path)] == [
        "schedules.office.timezone", "lines.96119.kind", "menus.root.prompt",
    ]


def test_an_id_defined_in_two_files_is_an_error(write_yaml: WriteYaml) -> None:
    """Files of a folder are merged, and a queue defined twice names both places."""
    first = write_yaml(BASE, "a.yaml")
    second = write_yaml("queues:\n  general: {asterisk_queue: other, label: 另一个}\n", "b.yaml")
    assert errors_of(first.parent) == [
        f"{second}:2:3: queues.general: queues 'general' is already defined at {first}:12"
    ]


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    """A path that does not exist is reported rather than ignored."""
    missing = tmp_path / "nowhere.yaml"
    assert errors_of(missing) == [f"{missing}:1:1: no such file or folder"]


def test_an_unused_queue_is_a_warning_only(write_yaml: WriteYaml) -> None:
    """An unused queue does not fail the load; it is kept as a located warning."""
    text = variant(12, "  general: {asterisk_queue: hotline-agents, label: 综合}\n"
                       "  spare: {asterisk_queue: hotline-spare, label: 备用}")
    path = write_yaml(text)
    plan = load_dialplan([path])
    assert [str(w) for w in plan.warnings] == [
        f"{path}:13:3: queues.spare: warning: queue 'spare' is never used"
    ]


def test_a_language_of_the_settings_is_a_valid_action(write_yaml: WriteYaml) -> None:
    """With English in settings.languages, ``{language: en}`` loads as a LANGUAGE action."""
    text = variant(3, "  supervisor_queue: general\n  languages: [zh, en]")
    text = text.replace('      "2": {emergency: fire}', '      "2": {emergency: fire}\n'
                        '      "8": {language: en}')
    plan = load_dialplan([write_yaml(text)])
    assert plan.menus["root"].keys["8"] == Action(ActionKind.LANGUAGE, "en")


def test_a_missing_english_text_is_a_warning(write_yaml: WriteYaml) -> None:
    """With English enabled, a prompt without an en text loads with a warning."""
    text = variant(3, "  supervisor_queue: general\n  languages: [zh, en]")
    plan = load_dialplan([write_yaml(text)])
    assert len(plan.warnings) == 6
    assert all("no 'en' text" in w.message for w in plan.warnings)
    assert plan.sound("welcome", "en") == "hotline/zh/welcome"
