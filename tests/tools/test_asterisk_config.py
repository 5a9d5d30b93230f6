"""``asterisk-config``: the generated Asterisk side keeps the recorded facts and the contract."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from call_transfer import variables
from ivr.ami.events import BOOKKEEPING_APPLICATIONS
from ivr.ami.tracker import TRACKED_EVENTS
from ivr.cli import main
from ivr.dialplan import Dialplan, load_dialplan
from ivr.simpbx._event_filters import FilterSet, parse_filter
from ivr.tools.asterisk_config import (
    AsteriskOptions,
    extensions_conf,
    manager_conf,
    native_emergency_paths,
    native_fallback_prompts,
)
from ivr.tools.errors import ToolError

from .conftest import ROOT, SMALL, WriteYaml

DEPLOY = ROOT / "deploy" / "asterisk"
_EXTEN = re.compile(r"exten => ([^,]+),1,(\w+)\((.*)\)\Z")
_SAME = re.compile(r" same => n(?:\((\w+)\))?,(\w+)\((.*)\)\Z")


@dataclass
class Step:
    """One priority of a dialplan extension."""

    app: str
    data: str
    label: str = ""


@dataclass
class Conf:
    """extensions.conf read back: context -> extension -> priorities in order."""

    contexts: dict[str, dict[str, list[Step]]] = field(default_factory=dict)


def parse_conf(text: str) -> Conf:
    """A small reader for the generated file (only the syntax it uses)."""
    conf = Conf()
    context: dict[str, list[Step]] = {}
    current: list[Step] = []
    for line in text.splitlines():
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            context = conf.contexts.setdefault(line.strip("[]"), {})
        elif match := _EXTEN.match(line):
            assert match.group(1) not in context, f"extension {match.group(1)} twice"
            current = context.setdefault(match.group(1), [])
            current.append(Step(match.group(2), match.group(3)))
        elif match := _SAME.match(line):
            current.append(Step(match.group(2), match.group(3), match.group(1) or ""))
        else:
            raise AssertionError(f"unexpected line {line!r}")
    return conf


def run_fallback(conf: Conf, keys: str, answering: str = "") -> tuple[list[str], str]:
    """Run [hotline-fallback] for a caller pressing ``keys``: (dials tried, where it ended).

    ``answering`` is the dial string that answers; every other one is BUSY.
    """
    context = conf.contexts["hotline-fallback"]
    exten, index, pressed, dials = "s", 0, iter(keys), []
    values = {"HOTLINE_KEY": "", "DIALSTATUS": ""}
    for _ in range(200):
        step = context[exten][index]
        index += 1
        if step.app == "Read":
            values["HOTLINE_KEY"] = next(pressed, "")
        elif step.app == "GotoIf":
            condition, destination = step.data.split("?")
            name, wanted = re.fullmatch(r'\$\["\$\{(\w+)\}" = "(.*)"\]', condition).groups()
            if values[name] == wanted:
                if "," in destination:
                    exten, index = destination.split(",")[0], 0
                else:
                    index = next(i for i, s in enumerate(context[exten]) if s.label == destination)
        elif step.app == "Goto":
            exten, index = step.data.split(",")[0], 0
        elif step.app == "Dial":
            target = step.data.rsplit(",", 1)[0]
            dials.append(target)
            values["DIALSTATUS"] = "ANSWER" if target == answering else "BUSY"
        elif step.app in ("Queue", "Hangup"):
            return dials, f"{step.app}({step.data})"
        elif step.app != "Playback":
            raise AssertionError(f"unexpected application {step.app}")
    raise AssertionError("the fallback loops")


@pytest.fixture(scope="module")
def conf(shipped: Dialplan) -> Conf:
    """The generated extensions.conf of the shipped dialplan, read back."""
    return parse_conf(extensions_conf(shipped))


def test_committed_files_equal_the_generated_ones(shipped: Dialplan) -> None:
    """deploy/asterisk/ holds exactly what asterisk-config generates from dialplans/."""
    assert (DEPLOY / "extensions.conf").read_text(encoding="utf-8") == extensions_conf(shipped)
    assert (DEPLOY / "manager.conf").read_text(encoding="utf-8") == manager_conf()


def test_one_inbound_extension_per_configured_number(shipped: Dialplan, conf: Conf) -> None:
    """[from-pstn] answers each configured number and alias, and no pattern catches others."""
    assert set(conf.contexts["from-pstn"]) == set(shipped.numbers)
    assert not any(exten.startswith("_") for context in conf.contexts.values()
                   for exten in context)


def test_dialled_number_is_saved_before_anything_else(conf: Conf) -> None:
    """Recorded fact: the legacy number is lost unless saved before a Goto; it is priority 1."""
    for number, steps in conf.contexts["from-pstn"].items():
        assert steps[0] == Step("Set", f"__{variables.HOTLINE_DIALED}=${{EXTEN}}"), number
        assert [step.app for step in steps] == ["Set", "Answer", "AGI", "GotoIf", "Goto"]


def test_agi_call_and_fallback_on_agistatus(shipped: Dialplan) -> None:
    """AGI gets the dialled number, Linkedid and REDIRECTING(from-num); not SUCCESS -> fallback."""
    options = AsteriskOptions(agi_host="10.1.2.3", agi_port=4600)
    steps = parse_conf(extensions_conf(shipped, options)).contexts["from-pstn"]["96119"]
    assert steps[2].data == ("agi://10.1.2.3:4600/ivr,${HOTLINE_DIALED},${CHANNEL(linkedid)},"
                             "${REDIRECTING(from-num)}")
    # AGISTATUS is SUCCESS, FAILURE (service unreachable) or HANGUP: all but SUCCESS fall back.
    assert steps[3].data == '$["${AGISTATUS}" != "SUCCESS"]?hotline-fallback,s,1'
    assert steps[4].data == ('hotline-route,${IF($["${HOTLINE_ROUTE}" = ""]?fallback:'
                             '${HOTLINE_ROUTE})},1')


def test_route_context_has_every_route_value(conf: Conf) -> None:
    """Each HOTLINE_ROUTE value the service sets has an extension, plus fallback and i."""
    route = conf.contexts["hotline-route"]
    expected = {variables.ROUTE_QUEUE, variables.ROUTE_DEPARTMENT, variables.ROUTE_MESSAGE,
                variables.ROUTE_HANGUP, variables.ROUTE_EMERGENCY, "fallback", "i"}
    assert set(route) == expected
    assert route["fallback"][0] == Step("Queue", "hotline-agents")


def test_queue_route_continues_to_the_survey(shipped: Dialplan) -> None:
    """Queue option c; only QUEUESTATUS=CONTINUE (the agent hung up first) reaches the survey."""
    options = AsteriskOptions(agi_host="10.1.2.3", agi_port=4600)
    steps = parse_conf(extensions_conf(shipped, options)).contexts["hotline-route"]["queue"]
    assert steps == [
        Step("Queue", "${HOTLINE_TARGET},c"),
        Step("GotoIf", '$["${QUEUESTATUS}" = "CONTINUE"]?survey'),
        Step("Goto", "fallback,1"),  # TIMEOUT, JOINEMPTY, LEAVEEMPTY ...: still an agent
        Step("AGI", "agi://10.1.2.3:4600/survey,${HOTLINE_TICKET}", "survey"),
        Step("Hangup", ""),
    ]


def test_callback_context_greets_then_queues(shipped: Dialplan, conf: Conf) -> None:
    """[hotline-callback] s: the ticket id inherited by the agent leg, the greeting, the queue."""
    assert list(conf.contexts["hotline-callback"]) == ["s"]
    assert conf.contexts["hotline-callback"]["s"] == [
        Step("Set", "__HOTLINE_TICKET=${HOTLINE_TICKET}"),
        Step("Set", "__HOTLINE_CALLBACK_REASON=${HOTLINE_CALLBACK_REASON}"),
        Step("Playback", "hotline/zh/callback-intro"),
        Step("Queue", "hotline-agents"),
        Step("Hangup", ""),
    ]
    assert {"survey", "survey-invalid", "survey-thanks", "callback-intro"} <= set(shipped.prompts)


def test_callback_context_without_its_prompt(write_yaml: WriteYaml) -> None:
    """A plan without callback-intro still gets the context: straight to the default queue."""
    steps = parse_conf(extensions_conf(load_dialplan([write_yaml(SMALL)]))).contexts[
        "hotline-callback"]["s"]
    assert [step.app for step in steps] == ["Set", "Set", "Queue", "Hangup"]


def test_native_fallback_prompts_follow_the_reads(shipped: Dialplan, conf: Conf) -> None:
    """The prompt of each fallback Read, by the keys pressed before it, as generated."""
    prompts = native_fallback_prompts(shipped)
    assert prompts == {"": "hotline/zh/fallback-emergency", "9": "hotline/zh/emergency-menu"}
    for path, sound in prompts.items():
        read = conf.contexts["hotline-fallback"]["k" + path if path else "s"][0]
        assert read.app == "Read" and read.data.split(",")[:2] == ["HOTLINE_KEY", sound]


def test_native_emergency_paths_of_the_shipped_plan(shipped: Dialplan) -> None:
    """9 then 1..4 on 12345 dial 110/119/120/122 with their second trunk as failover."""
    assert native_emergency_paths(shipped) == {
        f"9{key}": (f"Local/{number}@emergency-routes", f"PJSIP/{number}@emergency-trunk-b")
        for key, number in (("1", "110"), ("2", "119"), ("3", "120"), ("4", "122"))
    }


@pytest.mark.parametrize("keys", ["91", "92", "93", "94"])
def test_fallback_dials_each_emergency_path_in_order(shipped: Dialplan, conf: Conf,
                                                     keys: str) -> None:
    """With the service down, each emergency path tries its targets until one answers."""
    targets = native_emergency_paths(shipped)[keys]
    assert run_fallback(conf, keys, answering=targets[1]) == (list(targets), "Hangup()")
    assert run_fallback(conf, keys, answering=targets[0]) == ([targets[0]], "Hangup()")
    # Every route failed: the caller is told and put through to the supervisor.
    assert run_fallback(conf, keys) == (list(targets), "Queue(hotline-supervisor)")


@pytest.mark.parametrize("keys", ["", "1", "0", "95", "9", "*"])
def test_fallback_sends_everyone_else_to_the_default_queue(conf: Conf, keys: str) -> None:
    """No key, another key or an unknown second key reaches an agent, dialling nothing."""
    assert run_fallback(conf, keys) == ([], "Queue(hotline-agents)")


def test_fallback_of_a_plan_with_its_own_key_paths(write_yaml: WriteYaml) -> None:
    """The fallback follows the plan's own menus: here 9 then 2 dials the fire service."""
    plan = load_dialplan([write_yaml(SMALL)])
    assert native_emergency_paths(plan) == {
        "92": ("Local/119@emergency-routes", "PJSIP/119@trunk-b")}
    conf = parse_conf(extensions_conf(plan))
    assert run_fallback(conf, "92") == (["Local/119@emergency-routes", "PJSIP/119@trunk-b"],
                                        "Queue(hotline-agents)")
    assert conf.contexts["hotline-fallback"]["k92"][2] == Step("Dial", "PJSIP/119@trunk-b,15")


def test_plan_without_emergency_keys_falls_back_to_the_queue(write_yaml: WriteYaml) -> None:
    """No emergency key in the main menu: the fallback is just the default queue."""
    plan = load_dialplan([write_yaml(SMALL.replace('"2": {emergency: fire}', '"2": back'))])
    assert native_emergency_paths(plan) == {}
    assert run_fallback(parse_conf(extensions_conf(plan)), "92") == ([], "Queue(hotline-agents)")


def test_missing_fallback_prompt_is_refused(write_yaml: WriteYaml) -> None:
    """Emergency keys without the fallback prompt cannot be generated (validate warns)."""
    plan = load_dialplan([write_yaml(SMALL.replace("  fallback-emergency: {zh: 紧急情况请按9}\n",
                                                   ""))])
    with pytest.raises(ToolError, match="fallback-emergency"):
        extensions_conf(plan)


def test_predial_handler_sets_the_sip_headers(conf: Conf) -> None:
    """[hotline-predial] adds X-Hotline-Line and X-Hotline-Path on PJSIP legs, then returns."""
    steps = conf.contexts["hotline-predial"]["s"]
    assert [step.data for step in steps[1:3]] == ["PJSIP_HEADER(add,X-Hotline-Line)=${ARG1}",
                                                  "PJSIP_HEADER(add,X-Hotline-Path)=${ARG2}"]
    assert steps[-1] == Step("Return", "", "done")


def _manager(text: str) -> dict[str, list[str]]:
    """``key = value`` lines as Asterisk's config parser reads them: split at the first '=',
    both sides trimmed (an empty value is kept)."""
    entries: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith(";"):
            entries.setdefault(key.strip(), []).append(value.strip())
    return entries


def _asterisk_filters(text: str) -> FilterSet:
    """The user's eventfilter lines, parsed as Asterisk's manager_add_filter does (the
    simulated PBX's model of it): every key that begins with "eventfilter"."""
    filters = FilterSet()
    for key, values in _manager(text).items():
        if key.startswith("eventfilter"):
            for value in values:
                filters.add(parse_filter(key, value))
    return filters


def _event(name: str, **fields: str) -> str:
    body = "".join(f"{key}: {value}\r\n" for key, value in fields.items())
    return f"Event: {name}\r\nPrivilege: call,all\r\nChannel: PJSIP/carrier-00000001\r\n" \
        f"{body}Uniqueid: 1795382136.1\r\n\r\n"


def test_manager_user_has_least_privilege() -> None:
    """read call,dialplan,agent; write call,originate,reporting; never system; deny then permit."""
    entries = _manager(manager_conf(AsteriskOptions(ami_permits=("10.0.0.0/24", "192.0.2.7/32"))))
    assert entries["read"] == ["call,dialplan,agent"]
    assert entries["write"] == ["call,originate,reporting"]
    assert entries["deny"] == ["0.0.0.0/0.0.0.0"]
    assert entries["permit"] == ["10.0.0.0/255.255.255.0", "192.0.2.7/255.255.255.255"]


def test_event_filters_keep_only_tracked_events() -> None:
    """The advanced eventfilter lines, read as Asterisk 22.1 reads them, let through each event
    the service reads, VarSet of the HOTLINE_ variables only, and Newexten except the
    bookkeeping applications; look-alike names stay out."""
    text = manager_conf()
    lines = [line for line in text.splitlines() if line.startswith("eventfilter")]
    assert "eventfilter(action(include),name(Newexten),method(none)) =" in lines
    assert (
        "eventfilter(action(include),name(VarSet),header(Variable),method(regex)) = "
        "^_*(HOTLINE_DIALED|HOTLINE_MENU|HOTLINE_ROUTE|HOTLINE_TARGET|HOTLINE_TICKET)$"
    ) in lines
    assert (
        "eventfilter(action(exclude),name(Newexten),header(Application),method(regex)) = "
        "^(Answer|Gosub|GosubIf|Goto|GotoIf|GotoIfTime|Log|MSet|NoOp|Return|Set|Verbose)$"
    ) in lines
    filters = _asterisk_filters(text)
    for name in (TRACKED_EVENTS | {"OriginateResponse", "AgentConnect"}) - {"VarSet", "Newexten"}:
        assert filters.passes(_event(name)), name
    for name in ("HangupRequest", "NewConnectedLine", "RTCPSent", "VarSetExtra", "Cdr", "DialBegin",
                 "AgentCalled", "DTMFEnd", "AGIExecStart"):
        assert not filters.passes(_event(name)), name
    for variable in ("HOTLINE_DIALED", "__HOTLINE_DIALED", "_HOTLINE_TICKET", "HOTLINE_MENU",
                     "HOTLINE_ROUTE", "HOTLINE_TARGET"):
        assert filters.passes(_event("VarSet", Variable=variable, Value="x")), variable
    for variable in ("AGISTATUS", "DIALSTATUS", "QUEUESTATUS", "HOTLINE_KEY",
                     "__HOTLINE_CALLBACK_REASON", "HOTLINE_DIALED2", "X_HOTLINE_ROUTE"):
        assert not filters.passes(_event("VarSet", Variable=variable, Value="x")), variable
    for application in ("AGI", "Queue", "Dial", "Playback", "Read", "Hangup", "ExecIf", ""):
        assert filters.passes(_event("Newexten", Application=application)), application
    for application in BOOKKEEPING_APPLICATIONS | {"Set", "Answer", "GotoIf", "Goto"}:
        assert not filters.passes(_event("Newexten", Application=application)), application


def test_legacy_event_filters_for_an_older_asterisk() -> None:
    """--legacy-eventfilter: one whole-event regex per name, VarSet and Newexten entire."""
    text = manager_conf(AsteriskOptions(legacy_event_filters=True))
    assert not any(key.startswith("eventfilter(") for key in _manager(text))
    assert "eventfilter = ^Event: (VarSet)[[:space:]]" in text.splitlines()
    filters = _asterisk_filters(text)
    assert filters.passes(_event("VarSet", Variable="AGISTATUS", Value="SUCCESS"))
    assert filters.passes(_event("Newexten", Application="Set"))
    assert not filters.passes(_event("VarSetExtra"))


def _steps_after(conf: Conf, context: str, exten: str, index: int) -> list[list[str]]:
    """Every way the dialplan can go on from priority ``index`` of ``context,exten``: the
    applications run, through Goto/GotoIf (both branches), up to the first one whose
    Newexten the service still receives, or the end of the extension (a hangup)."""
    paths: list[list[str]] = []

    def walk(context: str, exten: str, index: int, path: list[str]) -> None:
        steps = conf.contexts[context][exten]
        if index >= len(steps) or len(path) > 20:
            paths.append([*path, "<end>"])
            return
        step = steps[index]
        path = [*path, step.app]
        if step.app not in BOOKKEEPING_APPLICATIONS:
            paths.append(path)
        elif step.app in ("Goto", "GotoIf"):
            destination = step.data.rsplit("?", 1)[-1]
            parts = destination.split(",")
            if len(parts) == 1:  # a label of this extension
                label = next(i for i, s in enumerate(steps) if s.label == parts[0])
                walk(context, exten, label, path)
            else:
                where = (context, *parts)[-3:] if len(parts) == 2 else parts
                assert "${" not in destination, destination
                walk(where[0], where[1], int(where[2]) - 1, path)
            if step.app == "GotoIf":
                walk(context, exten, index + 1, path)
        else:
            walk(context, exten, index + 1, path)

    walk(context, exten, index + 1, [])
    return paths


def test_what_follows_a_queue_still_shows(shipped: Dialplan, conf: Conf) -> None:
    """A caller who leaves a queue moves on through GotoIf/Goto, which Asterisk no longer
    sends: every way on from each Queue of the generated dialplan still reaches an
    application the service sees (queue figures: "exited"), or a hangup."""
    queues = [(context, exten, index) for context, extens in conf.contexts.items()
              for exten, steps in extens.items() for index, step in enumerate(steps)
              if step.app == "Queue"]
    assert len(queues) >= 5
    for where in queues:
        for path in _steps_after(conf, *where):
            assert path[-1] in ("AGI", "Queue", "Hangup", "<end>"), (where, path)
    assert _steps_after(conf, "hotline-route", "queue", 0) == [
        ["GotoIf", "AGI"], ["GotoIf", "Goto", "Queue"]]


def test_bad_permit_is_refused() -> None:
    """--ami-permit must be a network."""
    with pytest.raises(ToolError, match="not a network"):
        manager_conf(AsteriskOptions(ami_permits=("somewhere",)))


def test_cli_writes_both_files(tmp_path: Path, shipped: Dialplan) -> None:
    """asterisk-config -o DIR writes extensions.conf and manager.conf with the given options."""
    assert main(["asterisk-config", "--dialplans", str(ROOT / "dialplans"), "-o", str(tmp_path),
                 "--agi-host", "10.0.0.5", "--ami-permit", "10.0.0.0/8"]) == 0
    assert "agi://10.0.0.5:4573/ivr" in (tmp_path / "extensions.conf").read_text(encoding="utf-8")
    written = (tmp_path / "manager.conf").read_text(encoding="utf-8")
    assert "permit = 10.0.0.0/255.0.0.0" in written
    assert "eventfilter(action(include),name(Hangup),method(none)) =" in written.splitlines()
    assert main(["asterisk-config", "--dialplans", str(ROOT / "dialplans"), "-o", str(tmp_path),
                 "--legacy-eventfilter"]) == 0
    legacy = (tmp_path / "manager.conf").read_text(encoding="utf-8")
    assert "eventfilter = ^Event: (Hangup)[[:space:]]" in legacy.splitlines()
