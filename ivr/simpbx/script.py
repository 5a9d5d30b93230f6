"""What a simulated caller does: the script of one call, validated once into a frozen object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ivr.simpbx.errors import ScriptError

DTMF_DIGITS = frozenset("0123456789*#ABCD")
WAIT = "-"  # the caller waits and presses nothing at this input opportunity
HANGUP = "hangup"  # the caller hangs up at this moment
HOLD = "hold"  # the caller stays silent and no timeout fires until AMI moves or ends the channel

# DIALSTATUS -> HANGUPCAUSE, as a SIP trunk reports them (Q.850 causes).
DIAL_CAUSES: Mapping[str, int] = MappingProxyType(
    {"ANSWER": 16, "BUSY": 17, "NOANSWER": 19, "CONGESTION": 34, "CHANUNAVAIL": 66}
)
QUEUE_OUTCOMES = frozenset({"answered", "abandoned"})
# Channel technologies a stock Asterisk has loaded; a Dial of any other is CHANUNAVAIL.
KNOWN_TECHS = frozenset({"PJSIP", "SIP", "LOCAL", "IAX2", "DAHDI", "MOTIF", "UNISTIM"})


def _empty_outcomes() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CallScript:
    """One simulated inbound call: who calls, which number, and what the caller does.

    ``keys`` holds one entry per input opportunity: a string of DTMF digits (pressed in
    order; ``"12#"`` is three presses), ``"-"`` (wait, press nothing), ``"hangup"``, or
    ``"hold"`` (stay on the line in silence until an AMI ``Redirect``/``Hangup`` arrives).
    When the keys run out the caller is silent and every wait times out at once.
    ``dial_outcomes`` maps a dial string (before its first comma) to a DIALSTATUS; dial
    strings not listed are answered. ``forwarded_from`` is the number a carrier forwarded
    the call from (``Diversion`` / ``REDIRECTING(from-num)``).

    In an agent queue the caller waits ``queue_wait_s`` (virtual) seconds, then an agent
    answers (``queue_outcome="answered"``) or the caller gives up (``"abandoned"``). After
    an answered conversation of ``talk_s`` seconds, ``survey_keys`` decides who hangs up:
    with keys the agent does, the caller continues to the survey (FastAGI script ``survey``)
    and those keys answer it, entry by entry as ``keys`` do; without keys the caller hangs
    up first and there is no survey.
    """

    caller_number: str
    caller_name: str = ""
    dialled: str = "12345"
    forwarded_from: str = ""
    keys: tuple[str, ...] = ()
    dial_outcomes: Mapping[str, str] = field(default_factory=_empty_outcomes)
    queue_outcome: str = "answered"
    tech: str = "PJSIP"
    queue_wait_s: int = 0
    talk_s: int = 60
    survey_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for key in (*self.keys, *self.survey_keys):
            if key in (WAIT, HANGUP, HOLD):
                continue
            if not key or not set(key) <= DTMF_DIGITS:
                raise ScriptError(f"key {key!r} is neither DTMF digits nor '-', 'hangup', 'hold'")
        for dial_string, status in self.dial_outcomes.items():
            if status not in DIAL_CAUSES:
                raise ScriptError(
                    f"dial outcome {status!r} for {dial_string!r} is not a DIALSTATUS"
                )
        if self.queue_outcome not in QUEUE_OUTCOMES:
            raise ScriptError(
                f"queue_outcome {self.queue_outcome!r} is not one of {sorted(QUEUE_OUTCOMES)}"
            )
        if not self.dialled:
            raise ScriptError("dialled must not be empty")
        if self.queue_wait_s < 0 or self.talk_s < 0:
            raise ScriptError("queue_wait_s and talk_s must not be negative")
        # A frozen script must not change under a running call if the caller's dict does.
        object.__setattr__(self, "dial_outcomes", MappingProxyType(dict(self.dial_outcomes)))

    def dial_status(self, dial_string: str) -> str:
        """The DIALSTATUS a ``Dial`` of ``dial_string`` (options after the comma ignored) ends in.

        Listed strings end as listed; an unknown technology (``Nonexistent/119``) or an empty
        string is CHANUNAVAIL, as Asterisk reports it; anything else is answered.
        """
        target = dial_string.split(",", 1)[0]
        if target in self.dial_outcomes:
            return self.dial_outcomes[target]
        if not target or target.split("/", 1)[0].upper() not in KNOWN_TECHS:
            return "CHANUNAVAIL"
        return "ANSWER"
