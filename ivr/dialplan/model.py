"""A validated dialplan as frozen, typed objects: what the engine and the wiring read.

Built only by :func:`ivr.dialplan.load_dialplan`; every reference between objects
(menu -> queue, line -> schedule, ...) has been checked by then.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from ivr.dialplan.errors import Problem
from ivr.engine.route import RequestKind, Urgency

#: Emergency service ids and the national number each one must have.
EMERGENCY_NUMBERS: Mapping[str, str] = {
    "police": "110",
    "fire": "119",
    "ambulance": "120",
    "traffic": "122",
}

#: Prompts the service itself plays: when every emergency route failed.
EMERGENCY_FAILED_PROMPT = "emergency-failed"

#: Played by the generated Asterisk fallback when the service is unreachable: "for an
#: emergency press 9 ..., otherwise hold for an agent". Only the PBX plays it, so the
#: loader never calls it unused.
FALLBACK_EMERGENCY_PROMPT = "fallback-emergency"
#: Prompts played outside the menus, after the call (survey, callback greeting): in use when
#: defined, whether or not a menu names them.
AFTERCALL_PROMPTS = ("survey", "survey-invalid", "survey-thanks", "callback-intro")

#: The keys a caller can press.
DTMF_KEYS = "0123456789*#"


class ActionKind(enum.StrEnum):
    """What pressing a key (or a fallback) does."""

    MENU = "menu"  # enter a submenu
    BACK = "back"  # return to the previous menu
    REPEAT = "repeat"  # play the current menu again
    QUEUE = "queue"  # hand to an agent queue
    EMERGENCY = "emergency"  # hand off to 110 / 119 / 120 / 122 at once
    DEPARTMENT = "department"  # transfer to an agency
    INFO = "info"  # play information, then back to the menu or end as self-served
    MESSAGE = "message"  # leave a voice message for a queue
    CALLBACK = "callback"  # ask a queue to call back
    HANGUP = "hangup"  # end the call
    LANGUAGE = "language"  # switch the prompts to another language, then ask the menu again


@dataclass(frozen=True, slots=True)
class Action:
    """One action. ``target`` is a menu, queue, emergency service, department or prompt id,
    or for LANGUAGE a language code of ``settings.languages``.

    ``request_kind``/``urgency`` override the menu's and the line's; ``announce`` is the
    prompts to play before handing over (the loader fills in "transferring" for queue
    and department actions unless configured); ``then_back`` is for INFO: return to the
    menu after the information instead of ending the call as self-served.
    """

    kind: ActionKind
    target: str = ""
    request_kind: RequestKind | None = None
    urgency: Urgency | None = None
    announce: tuple[str, ...] = ()
    then_back: bool = False


@dataclass(frozen=True, slots=True)
class Menu:
    """An IVR menu: a prompt, then one key chooses an action."""

    id: str
    prompt: str
    keys: Mapping[str, Action]
    fallback: Action  # when the retries are used up; never silence or a hang-up
    timeout_s: float = 5.0  # first-digit timeout after the prompt
    retries: int = 2  # re-asks after an invalid key or a timeout, before the fallback
    invalid_prompt: str = "invalid"
    timeout_prompt: str = "timeout"
    request_kind: RequestKind | None = None
    urgency: Urgency | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """A number citizens dial: 12345 itself or a legacy hotline folded into it."""

    number: str
    label: str  # e.g. "96119 消防隐患举报"; becomes the ticket's source label
    request_kind: RequestKind
    urgency: Urgency
    menu: str  # entry menu id
    closed: Action  # what happens outside the schedule's hours
    schedule: str | None = None  # None: open 24x7
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Queue:
    """An agent queue of the 12345 centre."""

    id: str
    asterisk_queue: str  # the name in Asterisk's queues.conf
    label: str


@dataclass(frozen=True, slots=True)
class DialTarget:
    """One way to reach an emergency service or a department."""

    dial: str
    timeout_s: int


@dataclass(frozen=True, slots=True)
class Department:
    """An agency reached by transfer: exactly one of ``dial`` and ``queue`` is set.

    ``targets`` lists the dial strings in failover order (like an emergency service's);
    ``dial`` is always the first of them, so a caller that knows one number still works.
    """

    id: str
    label: str
    dial: str = ""  # an Asterisk dial string, e.g. "PJSIP/8800@water-company"
    queue: str = ""  # or an Asterisk queue name
    targets: tuple[DialTarget, ...] = ()  # dial targets in failover order; () for a queue


@dataclass(frozen=True, slots=True)
class EmergencyService:
    """110 / 119 / 120 / 122, with its dial targets in failover order."""

    id: str  # police, fire, ambulance, traffic
    number: str
    label: str
    targets: tuple[DialTarget, ...]


@dataclass(frozen=True, slots=True)
class Prompt:
    """A recorded prompt; ``texts`` maps language -> the words spoken (zh always present)."""

    id: str
    texts: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Opening hours within one day, in minutes after midnight; ``end`` may be 1440 (24:00)."""

    start: int
    end: int

    def __str__(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"


@dataclass(frozen=True, slots=True)
class Schedule:
    """Business hours: weekly hours, closed holidays, and make-up working days (调休).

    ``weekly`` has seven entries, Monday first. On a make-up working day the
    ``makeup_hours`` apply (by default the Monday hours).
    """

    id: str
    timezone: str
    weekly: tuple[tuple[TimeRange, ...], ...]
    holidays: Mapping[date, str] = field(default_factory=dict)
    makeup_days: Mapping[date, str] = field(default_factory=dict)
    makeup_hours: tuple[TimeRange, ...] = ()


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


_NUMBER_NOISE = str.maketrans("", "", " -()\t")


def normalise_number(number: str) -> str:
    """A number without spaces, dashes and the country code +86 / 0086.

    Area codes are not dropped here: that needs the configured numbers
    (see :meth:`Dialplan.line_for`).
    """
    cleaned = number.translate(_NUMBER_NOISE)
    for prefix in ("+86", "0086"):
        if cleaned.startswith(prefix):
            return cleaned[len(prefix) :]
    return cleaned


@dataclass(frozen=True, slots=True)
class Dialplan:
    """The whole validated dialplan: one immutable value, swapped as a whole on reload."""

    lines: Mapping[str, Line]  # by number
    menus: Mapping[str, Menu]
    queues: Mapping[str, Queue]
    departments: Mapping[str, Department]
    emergency: Mapping[str, EmergencyService]
    prompts: Mapping[str, Prompt]
    schedules: Mapping[str, Schedule]
    main_line: str  # the number of the main line, normally "12345"
    default_queue: str
    supervisor_queue: str
    languages: tuple[str, ...]
    version: str  # short sha256 of the source files
    numbers: Mapping[str, str]  # every number and alias -> the line's number
    sounds_prefix: str = "hotline"
    warnings: tuple[Problem, ...] = ()

    def sound(self, prompt_id: str, language: str) -> str:
        """The Asterisk sound file of a prompt, e.g. ``hotline/zh/welcome-12345``.

        A prompt without a text in ``language`` falls back to Mandarin, so a caller who
        chose English never hears silence where only the zh recording exists.
        """
        prompt = self.prompts[prompt_id]
        chosen = language if language in prompt.texts else "zh"
        return f"{self.sounds_prefix}/{chosen}/{prompt_id}"

    def line_for(self, number: str) -> Line | None:
        """The line a number means, after normalisation, or None.

        Spaces, dashes, ``+86`` and ``0086`` are ignored, and a leading 3-4 digit area
        code (``0471-96119``) is dropped when what remains is a configured number.
        """
        digits = normalise_number(number)
        if not digits:
            return None
        found = self.numbers.get(digits)
        if found is None and digits.startswith("0"):
            for area_code_length in (3, 4):
                found = self.numbers.get(digits[area_code_length:])
                if found is not None:
                    break
        return self.lines[found] if found is not None else None

    @property
    def main(self) -> Line:
        """The main line (12345)."""
        return self.lines[self.main_line]
