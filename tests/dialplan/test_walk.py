"""The IVR state machine: keys in, prompts and routes out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.dialplan import Dialplan, load_dialplan
from ivr.engine.route import RequestKind, Route, RouteKind, RouteReason, Urgency
from ivr.engine.walk import Ask, Done, MenuWalk, Step

SHANGHAI = ZoneInfo("Asia/Shanghai")
WORKING_HOURS = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)  # a Monday morning
NIGHT = datetime(2026, 11, 23, 22, 0, tzinfo=SHANGHAI)

Q, E, DEPT, INFO, MSG = (RouteKind.QUEUE, RouteKind.EMERGENCY, RouteKind.DEPARTMENT,
                         RouteKind.INFO, RouteKind.MESSAGE)
CONSULT, HELP, COMPLAINT, REPORT, SUGGESTION = (
    RequestKind.CONSULT, RequestKind.HELP, RequestKind.COMPLAINT, RequestKind.REPORT,
    RequestKind.SUGGESTION)
NORMAL, URGENT = Urgency.NORMAL, Urgency.URGENT


def walk(plan: Dialplan, number: str, keys: str, now: datetime = WORKING_HOURS) -> MenuWalk:
    """A walk on a line after pressing ``keys`` ("t" stands for a timeout)."""
    menu_walk = MenuWalk(plan, plan.lines[number], now)
    step: Step = menu_walk.start()
    for key in keys:
        assert isinstance(step, Ask), f"the walk ended before {key!r}"
        step = menu_walk.timeout() if key == "t" else menu_walk.key(key)
    return menu_walk


@pytest.mark.parametrize(
    ("number", "keys", "route"),
    [
        ("12345", "1", Route(Q, "general", CONSULT, NORMAL)),
        ("12345", "21", Route(Q, "general", COMPLAINT, NORMAL)),
        ("12345", "22", Route(Q, "general", REPORT, NORMAL)),
        ("12345", "3", Route(Q, "general", SUGGESTION, NORMAL)),
        ("12345", "0", Route(Q, "general", CONSULT, NORMAL)),
        ("12345", "91", Route(E, "police", HELP, URGENT)),
        ("12345", "92", Route(E, "fire", HELP, URGENT)),
        ("12345", "93", Route(E, "ambulance", HELP, URGENT)),
        ("12345", "94", Route(E, "traffic", HELP, URGENT)),
        ("96119", "1", Route(E, "fire", REPORT, URGENT)),
        ("96119", "2", Route(Q, "fire-safety", REPORT, NORMAL)),
        ("12312", "1", Route(Q, "commerce", COMPLAINT, NORMAL)),
        ("12312", "2", Route(Q, "commerce", REPORT, NORMAL)),
        ("12312", "3", Route(Q, "commerce", CONSULT, NORMAL)),
        ("12320", "1", Route(Q, "health", CONSULT, NORMAL)),
        ("12320", "9", Route(E, "ambulance", CONSULT, URGENT)),
        ("961890", "1", Route(Q, "utilities", HELP, URGENT)),
        ("961890", "3", Route(DEPT, "water-company", HELP, NORMAL)),
        ("961890", "4", Route(Q, "utilities", COMPLAINT, NORMAL)),
        ("12356", "1", Route(Q, "health", CONSULT, NORMAL)),
        ("12318", "1", Route(Q, "culture", REPORT, NORMAL)),
    ],
)
def test_keys_lead_to_routes(shipped: Dialplan, number: str, keys: str, route: Route) -> None:
    """Each shipped line's keys end in the expected route."""
    done = walk(shipped, number, keys).done
    assert done is not None and done.route == route


def test_first_step_plays_the_line_menu(shipped: Dialplan) -> None:
    """Starting a walk asks with the line's welcome prompt and the menu's keys and timeout."""
    step = MenuWalk(shipped, shipped.lines["96119"], WORKING_HOURS).start()
    assert step == Ask("fire-96119", ("welcome-96119",), "120", 5.0)


def test_path_records_menus_and_keys(shipped: Dialplan) -> None:
    """The IVR path names each menu entered and each key pressed."""
    menu_walk = walk(shipped, "12345", "21")
    assert menu_walk.path == ("root", "root:2", "complaint", "complaint:1")
    assert menu_walk.menu is None


def test_an_agent_transfer_is_announced(shipped: Dialplan) -> None:
    """A queue route plays "transferring" first; an emergency hand-off plays nothing."""
    assert walk(shipped, "12345", "0").done == Done(Route(Q, "general", CONSULT, NORMAL),
                                                   ("transferring",))
    emergency = walk(shipped, "12345", "92").done
    assert emergency is not None and emergency.announce == ()


def test_invalid_keys_reask_then_reach_the_default_queue(shipped: Dialplan) -> None:
    """Two re-asks with the invalid notice, then the third wrong key goes to an agent."""
    menu_walk = MenuWalk(shipped, shipped.main, WORKING_HOURS)
    menu_walk.start()
    reask = Ask("root", ("invalid", "welcome-12345"), "123980*", 5.0)
    first, second = menu_walk.key("7"), menu_walk.key("#")
    assert first == reask
    assert second == first
    assert menu_walk.key("5") == Done(
        Route(Q, "general", CONSULT, NORMAL, RouteReason.INVALID), ("transferring",))


def test_timeouts_reask_then_reach_the_default_queue(shipped: Dialplan) -> None:
    """Silence is met with the timeout notice, then with an agent, never with a hang-up."""
    menu_walk = MenuWalk(shipped, shipped.main, WORKING_HOURS)
    menu_walk.start()
    assert menu_walk.timeout() == Ask("root", ("timeout", "welcome-12345"), "123980*", 5.0)
    assert isinstance(menu_walk.timeout(), Ask)
    done = menu_walk.timeout()
    assert done == Done(Route(Q, "general", CONSULT, NORMAL, RouteReason.TIMEOUT),
                        ("transferring",))


def test_the_last_failure_names_the_reason(shipped: Dialplan) -> None:
    """Invalid keys and timeouts share the count; the reason is the last failure's."""
    done = walk(shipped, "12345", "7t5").done
    assert done is not None and done.route.reason is RouteReason.INVALID


def test_the_emergency_menu_falls_back_to_an_urgent_agent(shipped: Dialplan) -> None:
    """A caller silent in the emergency menu reaches an agent as urgent help after one re-ask."""
    done = walk(shipped, "12345", "9tt").done
    assert done is not None
    assert done.route == Route(Q, "general", HELP, URGENT, RouteReason.TIMEOUT)


def test_back_returns_to_the_previous_menu(shipped: Dialplan) -> None:
    """``*`` in a submenu plays the previous menu again, with a fresh retry count."""
    menu_walk = walk(shipped, "12345", "2tt")
    step = menu_walk.key("*")
    assert step == Ask("root", ("welcome-12345",), "123980*", 5.0)
    assert menu_walk.menu == "root"
    assert menu_walk.path == ("root", "root:2", "complaint", "complaint:*", "root")
    assert isinstance(menu_walk.timeout(), Ask)  # the submenu's failures do not count here
    assert isinstance(menu_walk.timeout(), Ask)


def test_repeat_plays_the_menu_again(shipped: Dialplan) -> None:
    """``*`` in the root menu repeats its prompt without the invalid notice."""
    menu_walk = walk(shipped, "12345", "")
    assert menu_walk.key("*") == Ask("root", ("welcome-12345",), "123980*", 5.0)


def test_a_language_key_asks_the_same_menu_in_that_language(shipped: Dialplan) -> None:
    """Key 8 on 12345 switches the walk to English and asks the root menu again."""
    menu_walk = walk(shipped, "12345", "")
    assert menu_walk.language == "zh"
    step = menu_walk.key("8")
    assert step == Ask("root", ("welcome-12345",), "123980*", 5.0)
    assert menu_walk.language == "en"
    assert shipped.sound(step.prompts[0], menu_walk.language) == "hotline/en/welcome-12345"
    assert menu_walk.path == ("root", "root:8")
    assert menu_walk.key("1") == Done(Route(Q, "general", CONSULT, NORMAL), ("transferring",))
    assert menu_walk.language == "en"
    assert menu_walk.path == ("root", "root:8", "root:1")


def test_a_language_key_gives_fresh_retries(shipped: Dialplan) -> None:
    """A caller who timed out twice before choosing English still has every re-ask left."""
    menu_walk = walk(shipped, "12345", "tt8")
    assert isinstance(menu_walk.timeout(), Ask)
    assert isinstance(menu_walk.timeout(), Ask)
    assert isinstance(menu_walk.timeout(), Done)


def test_the_language_survives_submenus(shipped: Dialplan) -> None:
    """The chosen language stays for the rest of the walk, through a submenu and back."""
    menu_walk = walk(shipped, "12345", "82*")
    assert menu_walk.language == "en"
    assert menu_walk.path == ("root", "root:8", "root:2", "complaint", "complaint:*", "root")


def test_info_then_back_plays_it_before_the_menu(shipped: Dialplan) -> None:
    """Information with ``then: back`` is played, then the same menu asks again."""
    menu_walk = walk(shipped, "961890", "")
    step = menu_walk.key("2")
    assert step == Ask("utility-961890", ("water-billing-info", "welcome-961890"), "12340", 5.0)
    assert menu_walk.done is None


def test_a_closed_line_takes_its_closed_action(shipped: Dialplan) -> None:
    """Out of hours, 12312 takes a message for its queue after the closed notice."""
    step = MenuWalk(shipped, shipped.lines["12312"], NIGHT).start()
    assert step == Done(Route(MSG, "commerce", COMPLAINT, NORMAL, RouteReason.CLOSED),
                        ("closed",))


def test_the_main_line_is_open_at_night(shipped: Dialplan) -> None:
    """12345 has no schedule: its menu plays at any hour."""
    step = MenuWalk(shipped, shipped.main, NIGHT).start()
    assert isinstance(step, Ask) and step.menu == "root"


def test_a_finished_walk_takes_no_more_keys(shipped: Dialplan) -> None:
    """Feeding keys after the end is a programming error, not a silent no-op."""
    menu_walk = walk(shipped, "12345", "0")
    with pytest.raises(RuntimeError):
        menu_walk.key("1")


OTHER_ACTIONS = """\
settings: {default_queue: general, supervisor_queue: general}
prompts:
  menu: {zh: 菜单}
  invalid: {zh: 输入有误}
  timeout: {zh: 没有收到按键}
  transferring: {zh: 正在转接}
  hours: {zh: 办公时间}
  goodbye: {zh: 再见}
  after-hours: {zh: 下班了}
queues:
  general: {asterisk_queue: hotline-agents, label: 综合}
departments:
  tax: {label: 税务局, queue: tax-agents}
schedules:
  never: {timezone: Asia/Shanghai, weekly: {}}
lines:
  "12345": {label: main, kind: consult, menu: start}
  "12366": {label: tax, kind: consult, menu: start, schedule: never, closed: {menu: night}}
menus:
  start:
    prompt: menu
    kind: help
    retries: 0
    fallback: {callback: general, kind: suggestion}
    keys:
      "1": {info: hours, then: end}
      "2": {message: general, urgency: urgent}
      "3": {callback: general}
      "4": {hangup: goodbye}
      "5": hangup
      "6": {department: tax}
      "*": back
  night:
    prompt: after-hours
    keys:
      "1": {message: general}
"""


@pytest.fixture
def other(write_yaml: Callable[..., Path]) -> Dialplan:
    """A dialplan using the actions the shipped one does not."""
    return load_dialplan([write_yaml(OTHER_ACTIONS)])


@pytest.mark.parametrize(
    ("keys", "done"),
    [
        ("1", Done(Route(INFO, "hours", HELP, NORMAL), ("hours",))),
        ("2", Done(Route(MSG, "general", HELP, URGENT), ())),
        ("3", Done(Route(RouteKind.CALLBACK, "general", HELP, NORMAL), ())),
        ("4", Done(Route(RouteKind.HANGUP, "", HELP, NORMAL), ("goodbye",))),
        ("5", Done(Route(RouteKind.HANGUP, "", HELP, NORMAL), ())),
        ("6", Done(Route(DEPT, "tax", HELP, NORMAL), ("transferring",))),
        ("*t", Done(Route(RouteKind.CALLBACK, "general", SUGGESTION, NORMAL,
                          RouteReason.TIMEOUT), ())),
    ],
)
def test_other_actions(other: Dialplan, keys: str, done: Done) -> None:
    """Info, message, callback, hang-up and department routes; the menu's kind applies."""
    assert walk(other, "12345", keys).done == done


def test_a_closed_action_may_open_a_menu(other: Dialplan) -> None:
    """Out of hours a line can play a night menu instead of routing at once."""
    menu_walk = walk(other, "12366", "1")
    assert menu_walk.path == ("night", "night:1")
    assert menu_walk.done == Done(Route(MSG, "general", CONSULT, NORMAL), ())
