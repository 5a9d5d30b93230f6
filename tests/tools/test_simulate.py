"""``simulate``: a line's menus walked as the service walks them, printed step by step."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ivr.cli import main
from ivr.dialplan import Dialplan
from ivr.engine.route import RouteKind
from ivr.tools.errors import ToolError
from ivr.tools.simulate import (
    HANG_UP,
    TIMEOUT,
    line_timezone,
    parse_keys,
    parse_when,
    scripted,
    simulate,
)

from .conftest import SHIPPED

SHANGHAI = ZoneInfo("Asia/Shanghai")
WORKDAY_9AM = datetime(2026, 9, 29, 9, 0, tzinfo=SHANGHAI)  # a Tuesday


@pytest.mark.parametrize("number", ["12345", "96119", "12312", "12320", "961890", "12356",
                                    "12318", "12345110"])
def test_every_shipped_line_reaches_a_person_by_timeouts(shipped: Dialplan, number: str) -> None:
    """A silent caller on any shipped line ends with a queue, printed with a ticket line."""
    out: list[str] = []
    done = simulate(shipped, number, WORKDAY_9AM, scripted([TIMEOUT] * 10), out.append)
    assert done is not None and done.route.kind is RouteKind.QUEUE
    assert out[0].startswith(f"line {number} ")
    assert out[-1].startswith(f"ticket line={number} ")


def test_keys_route_and_ticket_fields(shipped: Dialplan) -> None:
    """96119 then 2: the prompt with its zh text, the key, the queue and the ticket fields."""
    out: list[str] = []
    simulate(shipped, "96119", WORKDAY_9AM, scripted(["2"]), out.append)
    assert out[2:] == [
        "menu fire-96119 (keys 1 2 0, timeout 5s)",
        f"  play welcome-96119: {shipped.prompts['welcome-96119'].texts['zh']}",
        "  key 2 -> queue fire-safety",
        f"  play transferring: {shipped.prompts['transferring'].texts['zh']}",
        "route queue fire-safety (Asterisk queue hotline-fire-safety, 消防隐患受理) (selected)",
        "ticket line=96119 label=96119 消防隐患举报 kind=report urgency=normal "
        "route=queue:fire-safety path=fire-96119/fire-96119:2",
    ]


def test_emergency_path_is_urgent(shipped: Dialplan) -> None:
    """12345, 9, 1: the police hand-off with its failover routes, ticketed urgent."""
    out: list[str] = []
    simulate(shipped, "12345", WORKDAY_9AM, scripted(["9", "1"]), out.append)
    assert out[-2] == ("route emergency police (110 公安报警: Local/110@emergency-routes then "
                       "PJSIP/110@emergency-trunk-b) (selected)")
    assert "kind=help urgency=urgent route=emergency:police" in out[-1]


def test_closed_on_a_holiday(shipped: Dialplan) -> None:
    """12312 on National Day at 09:00 takes its closed action: a message for commerce."""
    when = parse_when("2026-10-01 09:00", line_timezone(shipped, shipped.lines["12312"]))
    out: list[str] = []
    done = simulate(shipped, "12312", when, scripted([]), out.append)
    assert done is not None and done.route.kind is RouteKind.MESSAGE
    assert (
        out[-2] == "route message commerce (Asterisk queue hotline-commerce, 商务投诉举报) (closed)"
    )


def test_hang_up_in_the_menus(shipped: Dialplan) -> None:
    """Running out of keys hangs up; the ticket says abandoned in the IVR."""
    out: list[str] = []
    assert simulate(shipped, "12345", WORKDAY_9AM, scripted(["2"]), out.append) is None
    assert out[-1].endswith("route=abandoned-in-ivr path=root/root:2/complaint")


def test_parse_keys_and_time() -> None:
    """Keys are comma-separated (t/empty = timeout, q = hang up); a naive time is local."""
    assert parse_keys("2, 1,t,,q,*") == ("2", "1", TIMEOUT, TIMEOUT, HANG_UP, "*")
    with pytest.raises(ToolError, match="not a key"):
        parse_keys("12")
    assert parse_when("2026-10-01 09:00", SHANGHAI) == datetime(2026, 10, 1, 9, tzinfo=SHANGHAI)
    with pytest.raises(ToolError, match="not a time"):
        parse_when("tomorrow", SHANGHAI)


def test_cli_simulate(capsys: pytest.CaptureFixture[str]) -> None:
    """The command prints the walk for --line/--keys/--at; an unknown line is an error."""
    assert main(["simulate", "--dialplans", str(SHIPPED), "--line", "0471-96119",
                 "--keys", "1", "--at", "2026-10-01 03:00"]) == 0
    assert "route emergency fire" in capsys.readouterr().out
    assert main(["simulate", "--dialplans", str(SHIPPED), "--line", "110"]) == 2
    assert "no line has the number '110'" in capsys.readouterr().err


def test_cli_simulate_asks_on_the_terminal(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Without --keys each key is read from the terminal; a bad answer is asked again."""
    answers = iter(["x", "", "0"])
    monkeypatch.setattr("builtins.input", lambda _prompt: next(answers))
    assert main(["simulate", "--dialplans", str(SHIPPED), "--line", "12345"]) == 0
    out = capsys.readouterr().out
    assert "not a key" in out and "no key (timeout)" in out and "route queue general" in out


def test_after_the_language_key_prompts_are_shown_in_english(shipped: Dialplan) -> None:
    """12345, 8, 1: the menu is played again with its English words, and so is the hand-over."""
    out: list[str] = []
    simulate(shipped, "12345", WORKDAY_9AM, scripted(["8", "1"]), out.append)
    assert "  key 8 -> language en" in out
    assert f"  play welcome-12345: {shipped.prompts['welcome-12345'].texts['en']}" in out
    assert f"  play transferring: {shipped.prompts['transferring'].texts['en']}" in out
