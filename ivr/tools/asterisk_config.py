"""The Asterisk side, generated from the YAML dialplan: ``extensions.conf`` and ``manager.conf``.

``extensions.conf``:

- ``[from-pstn]``: one extension per configured number (aliases included, never ``_X.``,
  so a number nobody configured is not swallowed); it saves the dialled number in
  ``__HOTLINE_DIALED`` before anything else (a later ``Goto`` would lose it), answers,
  and runs the FastAGI service with the number, the Linkedid and ``REDIRECTING(from-num)``;
- ``[hotline-route]``: carries out the route the service chose (``HOTLINE_ROUTE``,
  ``HOTLINE_TARGET``); a missing or unknown route still reaches the default queue. The
  ``queue`` route queues with option ``c``: when the agent hangs up first the caller
  continues (``QUEUESTATUS`` = ``CONTINUE``) to the satisfaction survey, FastAGI script
  ``survey`` with the ticket id; a caller who hangs up first is simply gone;
- ``[hotline-fallback]``: when ``AGISTATUS`` is not ``SUCCESS`` (the service is down or
  unreachable), the root menu's emergency keys keep working natively, each service's
  targets dialled in failover order; everyone else waits for an agent;
- ``[hotline-callback]``: where an answered callback (AMI ``Originate`` from the
  service's callback scheduler) lands: a short greeting, then the default agent queue,
  with the ticket id handed on to the agent's channel;
- ``[hotline-predial]``: a pre-dial handler that labels an outgoing emergency leg with
  ``X-Hotline-Line`` and ``X-Hotline-Path`` SIP headers.

``manager.conf``: the service's AMI user with the least classes it needs, a permit list,
and event filters that keep only the events the service reads (``ivr.ami.events``): advanced
``eventfilter(...)`` lines for Asterisk 18.26/20.11/21.6/22.1 and later, or with
``legacy_event_filters`` the whole-event regexes every version reads.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from call_transfer import variables
from call_transfer.variables import HOTLINE_CALLBACK_REASON, HOTLINE_KEY
from ivr.aftercall.callbacks import CallbackPolicy
from ivr.ami.events import (
    BOOKKEEPING_APPLICATIONS,
    LEGACY_SERVICE_FILTERS,
    SERVICE_EVENTS,
    SERVICE_FILTERS,
)
from ivr.dialplan.model import (
    EMERGENCY_FAILED_PROMPT,
    FALLBACK_EMERGENCY_PROMPT,
    ActionKind,
    Dialplan,
)
from ivr.tools.errors import ToolError

__all__ = [
    "AMI_EVENTS",
    "AMI_READ_CLASSES",
    "AMI_WRITE_CLASSES",
    "CALLBACK_INTRO_PROMPT",
    "CALLBACK_REASON",
    "HOTLINE_KEY",
    "SURVEY_SCRIPT",
    "AsteriskOptions",
    "extensions_conf",
    "manager_conf",
    "native_emergency_paths",
    "native_fallback_prompts",
    "write_config",
]

#: What the service's AMI user may read: Newchannel/Newstate/Hangup/Dial* and
#: OriginateResponse are ``call`` events, VarSet/Newexten ``dialplan``, Queue* ``agent``.
AMI_READ_CLASSES = ("call", "dialplan", "agent")
#: What it may do: Redirect, transfers, Hangup and Getvar/Setvar need ``call``; callbacks
#: need ``originate``; CoreShowChannels (the resync after a reconnect) needs ``reporting``.
#: Not ``system``: it would allow restarting the PBX and loading modules.
AMI_WRITE_CLASSES = ("call", "originate", "reporting")
#: The events let through (see ``ivr.ami.events``).
AMI_EVENTS: frozenset[str] = SERVICE_EVENTS

#: The FastAGI script of the post-call survey (the service's ``ScriptRouter`` serves it).
SURVEY_SCRIPT = "survey"
#: Played by ``[hotline-callback]`` when the citizen answers a callback (optional prompt).
CALLBACK_INTRO_PROMPT = "callback-intro"
#: Set by the callback scheduler's ``Originate`` next to ``HOTLINE_TICKET``.
CALLBACK_REASON = HOTLINE_CALLBACK_REASON

# A caller in the native fallback gets this long to press each key.
_FALLBACK_KEY_TIMEOUT_S = 4


@dataclass(frozen=True, slots=True)
class AsteriskOptions:
    """Where the service listens and who may use AMI.

    ``ami_permits`` are networks in CIDR form (``10.0.0.0/24``, ``127.0.0.1/32``).
    """

    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    ami_permits: tuple[str, ...] = ("127.0.0.1/32",)
    ami_user: str = "hotline"
    # For an Asterisk older than 18.26/20.11/21.6/22.1, which ignores the advanced lines.
    legacy_event_filters: bool = False


@dataclass(frozen=True, slots=True)
class _FallbackStep:
    """One key sequence of the native fallback: a menu to read the next key, or a service."""

    path: str
    prompt: str  # the prompt read at this point ("" for an emergency service)
    service: str  # the emergency service dialled ("" for a menu)
    next_keys: tuple[str, ...]  # keys that lead on from a menu, in the menu's order


def native_emergency_paths(plan: Dialplan) -> dict[str, tuple[str, ...]]:
    """Key sequences of the main line's root menu that end in an emergency hand-off.

    Each maps to the service's dial strings in failover order, e.g.
    ``{"91": ("Local/110@emergency-routes", "PJSIP/110@emergency-trunk-b"), ...}``.
    This is what the generated ``[hotline-fallback]`` dials when the service is down.
    """
    return {
        step.path: tuple(target.dial for target in plan.emergency[step.service].targets)
        for step in _fallback_steps(plan)
        if step.service
    }


def native_fallback_prompts(plan: Dialplan) -> dict[str, str]:
    """The sound each ``Read`` of the generated ``[hotline-fallback]`` plays, by the keys
    pressed before it: ``{"": "hotline/zh/fallback-emergency", "9": "hotline/zh/emergency-menu"}``.
    """
    return {
        step.path: plan.sound(step.prompt if step.path else FALLBACK_EMERGENCY_PROMPT, "zh")
        for step in _fallback_steps(plan)
        if not step.service
    }


def _fallback_steps(plan: Dialplan) -> tuple[_FallbackStep, ...]:
    """The key tree of the native fallback, depth first, in the menus' key order.

    Only keys that lead (through submenus) to an emergency action are kept; a menu is
    not entered twice on one path, so a loop of menus ends.
    """
    steps: list[_FallbackStep] = []

    def visit(menu_id: str, path: str, seen: tuple[str, ...]) -> bool:
        menu = plan.menus[menu_id]
        index = len(steps)
        steps.append(_FallbackStep(path, menu.prompt, "", ()))
        next_keys: list[str] = []
        for key, action in menu.keys.items():
            if action.kind is ActionKind.EMERGENCY:
                steps.append(_FallbackStep(path + key, "", action.target, ()))
                next_keys.append(key)
            elif (
                action.kind is ActionKind.MENU
                and action.target not in seen
                and visit(action.target, path + key, (*seen, action.target))
            ):
                next_keys.append(key)
        if not next_keys:
            del steps[index:]
            return False
        steps[index] = _FallbackStep(path, menu.prompt, "", tuple(next_keys))
        return True

    root = plan.main.menu
    visit(root, "", (root,))
    return tuple(steps)


def _exten_name(path: str) -> str:
    """The fallback extension of a key sequence: ``s`` for the start, else ``k`` + keys."""
    return "k" + path if path else "s"


def _queue_name(plan: Dialplan, queue_id: str) -> str:
    return plan.queues[queue_id].asterisk_queue


def extensions_conf(plan: Dialplan, options: AsteriskOptions = AsteriskOptions()) -> str:
    """The ``extensions.conf`` piece for a dialplan (include it from ``extensions.conf``)."""
    default_queue = _queue_name(plan, plan.default_queue)
    agi_url = f"agi://{options.agi_host}:{options.agi_port}/ivr"
    dialed = variables.HOTLINE_DIALED
    out: list[str] = [
        "; hotline-ivr: the Asterisk side of the 12345 hotline (include from extensions.conf).",
        "; Generated by `hotline-ivr asterisk-config` from the YAML dialplans: edit those and",
        "; regenerate, do not edit this file.",
        ";",
        "; Route every hotline number to [from-pstn]. The dialled number is saved in",
        f"; {dialed} before any Goto: once the call jumps elsewhere the legacy number is lost.",
        "; The FastAGI service chooses the route and leaves it in HOTLINE_ROUTE / HOTLINE_TARGET /",
        "; HOTLINE_TICKET; [hotline-route] carries it out. If the service cannot be reached",
        "; (AGISTATUS is not SUCCESS) [hotline-fallback] keeps the emergency keys working and",
        "; puts everyone else through to the default queue: nobody is left in silence.",
        "",
        "[from-pstn]",
    ]
    for line in plan.lines.values():
        for number in (line.number, *line.aliases):
            alias = "" if number == line.number else f" (another number of {line.number})"
            out += [
                f"; {line.label}{alias}",
                f"exten => {number},1,Set(__{dialed}=${{EXTEN}})",
                " same => n,Answer()",
                f" same => n,AGI({agi_url},${{{dialed}}},${{CHANNEL(linkedid)}},"
                "${REDIRECTING(from-num)})",
                ' same => n,GotoIf($["${AGISTATUS}" != "SUCCESS"]?hotline-fallback,s,1)',
                f' same => n,Goto(hotline-route,${{IF($["${{{variables.HOTLINE_ROUTE}}}" = ""]'
                f"?fallback:${{{variables.HOTLINE_ROUTE}}})}},1)",
            ]
    target = f"${{{variables.HOTLINE_TARGET}}}"
    survey_url = f"agi://{options.agi_host}:{options.agi_port}/{SURVEY_SCRIPT}"
    out += [
        "",
        "[hotline-route]",
        "; Option c: when the agent hangs up first, Queue returns with QUEUESTATUS=CONTINUE and",
        "; the caller is asked to rate the call; a caller who hangs up first is simply gone.",
        "; Any other QUEUESTATUS (TIMEOUT, JOINEMPTY, LEAVEEMPTY ...) still reaches an agent.",
        f"exten => {variables.ROUTE_QUEUE},1,Queue({target},c)",
        ' same => n,GotoIf($["${QUEUESTATUS}" = "CONTINUE"]?survey)',
        " same => n,Goto(fallback,1)",
        f" same => n(survey),AGI({survey_url},${{{variables.HOTLINE_TICKET}}})",
        " same => n,Hangup()",
        f"exten => {variables.ROUTE_DEPARTMENT},1,Dial({target},60)",
        " same => n,Goto(fallback,1)",
        f"exten => {variables.ROUTE_MESSAGE},1,VoiceMail({target},s)",
        " same => n,Hangup()",
        f"exten => {variables.ROUTE_HANGUP},1,Hangup()",
        "; The emergency hand-off already happened inside the AGI session (Dial with failover).",
        f"exten => {variables.ROUTE_EMERGENCY},1,Hangup()",
        f"exten => fallback,1,Queue({default_queue})",
        " same => n,Hangup()",
        "exten => i,1,Goto(fallback,1)",
        "",
        *_fallback_context(plan, default_queue),
        "",
        *_callback_context(plan, default_queue),
        "",
        "[hotline-predial]",
        "; A pre-dial handler for the emergency leg: Dial(...,b(hotline-predial^s^1(LINE,PATH)))",
        "; tells the emergency centre which hotline line and menu path the caller came by.",
        'exten => s,1,GotoIf($["${CHANNEL(channeltype)}" != "PJSIP"]?done)',
        " same => n,Set(PJSIP_HEADER(add,X-Hotline-Line)=${ARG1})",
        " same => n,Set(PJSIP_HEADER(add,X-Hotline-Path)=${ARG2})",
        " same => n(done),Return()",
    ]
    return "\n".join(out) + "\n"


def _fallback_context(plan: Dialplan, default_queue: str) -> list[str]:
    steps = _fallback_steps(plan)
    out = ["[hotline-fallback]"]
    if not steps:
        return [
            *out,
            "; The service is unreachable: the caller waits for an agent.",
            f"exten => s,1,Queue({default_queue})",
            " same => n,Hangup()",
        ]
    if FALLBACK_EMERGENCY_PROMPT not in plan.prompts:
        raise ToolError(
            f"the dialplan has emergency keys but no {FALLBACK_EMERGENCY_PROMPT!r} "
            "prompt for the Asterisk fallback to play; add it under prompts"
        )
    out += [
        "; The service is unreachable: the emergency keys of the main menu still work",
        "; (each service's routes dialled in failover order); everyone else waits for an",
        "; agent. Generated from the main line's menus.",
    ]
    failed = plan.sound(EMERGENCY_FAILED_PROMPT, "zh") if plan.emergency else ""
    supervisor = _queue_name(plan, plan.supervisor_queue)
    for step in steps:
        exten = _exten_name(step.path)
        if step.service:
            service = plan.emergency[step.service]
            out.append(f"; {step.path}: {service.label}")
            for index, dial_target in enumerate(service.targets):
                lead = f"exten => {exten},1," if index == 0 else " same => n,"
                out += [
                    f"{lead}Dial({dial_target.dial},{dial_target.timeout_s})",
                    f' same => n,GotoIf($["${{{variables.DIALSTATUS}}}" = "ANSWER"]?answered)',
                ]
            out += [
                f" same => n,Playback({failed})",
                f" same => n,Queue({supervisor})",
                " same => n(answered),Hangup()",
            ]
            continue
        prompt = FALLBACK_EMERGENCY_PROMPT if not step.path else step.prompt
        out.append(
            f"exten => {exten},1,Read({HOTLINE_KEY},{plan.sound(prompt, 'zh')},1,,1,"
            f"{_FALLBACK_KEY_TIMEOUT_S})"
        )
        for key in step.next_keys:
            out.append(
                f' same => n,GotoIf($["${{{HOTLINE_KEY}}}" = "{key}"]'
                f"?{_exten_name(step.path + key)},1)"
            )
        out.append(" same => n,Goto(agent,1)")
    out += [f"exten => agent,1,Queue({default_queue})", " same => n,Hangup()"]
    return out


def _callback_context(plan: Dialplan, default_queue: str) -> list[str]:
    """``[hotline-callback]``: the answered callback greets the citizen and waits for an agent."""
    policy = CallbackPolicy()
    ticket = variables.HOTLINE_TICKET
    out = [
        f"[{policy.context}]",
        "; A callback the service placed (AMI Originate with HOTLINE_TICKET and",
        f"; {CALLBACK_REASON} set) was answered. The double underscore hands both on to",
        "; the agent's channel, so the agent's screen can open the ticket.",
        f"exten => {policy.exten},1,Set(__{ticket}=${{{ticket}}})",
        f" same => n,Set(__{CALLBACK_REASON}=${{{CALLBACK_REASON}}})",
    ]
    if CALLBACK_INTRO_PROMPT in plan.prompts:
        out.append(f" same => n,Playback({plan.sound(CALLBACK_INTRO_PROMPT, 'zh')})")
    return [*out, f" same => n,Queue({default_queue})", " same => n,Hangup()"]


def manager_conf(options: AsteriskOptions = AsteriskOptions()) -> str:
    """The ``manager.conf`` piece: the service's AMI user, least privilege, filtered events."""
    permits = [_netmask_form(cidr) for cidr in options.ami_permits]
    out = [
        "; hotline-ivr's AMI user (include from manager.conf). Generated by",
        "; `hotline-ivr asterisk-config`; regenerate rather than edit.",
        ";",
        "; Least privilege: it reads call, dialplan and agent events and writes only what",
        "; transfers, callbacks and the resync after a reconnect need. The secret is not",
        "; written here: set it from your secrets store, and give the same value to the",
        "; service through HOTLINE_AMI_SECRET.",
        "",
        f"[{options.ami_user}]",
        "secret = CHANGE-ME",
        "deny = 0.0.0.0/0.0.0.0",
        *(f"permit = {permit}" for permit in permits),
        f"read = {','.join(AMI_READ_CLASSES)}",
        f"write = {','.join(AMI_WRITE_CLASSES)}",
        *_event_filter_lines(options.legacy_event_filters),
    ]
    return "\n".join(out) + "\n"


def _event_filter_lines(legacy: bool) -> list[str]:
    if legacy:
        return [
            "; Only the events the service reads are sent (each filter lets one event name",
            "; through). Whole-event regexes, for an Asterisk without advanced filtering.",
            *(event_filter.conf_line() for event_filter in LEGACY_SERVICE_FILTERS),
        ]
    return [
        "; Only the events the service reads are sent: each name() filter lets one event",
        "; name through; VarSet only for the service's HOTLINE_ variables; Newexten without",
        f"; {', '.join(sorted(BOOKKEEPING_APPLICATIONS))}",
        "; (they return at once; the next step's Newexten follows).",
        "; Advanced filters need Asterisk 18.26, 20.11, 21.6, 22.1 or later: an older one",
        "; ignores these lines and sends every event (asterisk-config --legacy-eventfilter).",
        *(event_filter.conf_line() for event_filter in SERVICE_FILTERS),
    ]


def _netmask_form(cidr: str) -> str:
    """``10.0.0.0/24`` -> ``10.0.0.0/255.255.255.0``, the form every Asterisk version reads."""
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError as error:
        raise ToolError(f"--ami-permit {cidr!r} is not a network such as 10.0.0.0/24") from error
    if network.version == 6:
        return str(network)
    return f"{network.network_address}/{network.netmask}"


def config_files(plan: Dialplan, options: AsteriskOptions = AsteriskOptions()) -> Mapping[str, str]:
    """File name -> text of every generated file."""
    return MappingProxyType(
        {"extensions.conf": extensions_conf(plan, options), "manager.conf": manager_conf(options)}
    )


def write_config(plan: Dialplan, options: AsteriskOptions, directory: Path) -> tuple[Path, ...]:
    """Write the generated files into ``directory`` (created if missing); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, text in config_files(plan, options).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return tuple(written)


def parse_permits(values: Iterable[str] | None) -> tuple[str, ...]:
    """The ``--ami-permit`` values (repeatable, or comma-separated), default loopback only."""
    found = tuple(
        part.strip() for value in values or () for part in value.split(",") if part.strip()
    )
    return found or AsteriskOptions().ami_permits
