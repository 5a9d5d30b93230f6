"""The simulated Asterisk 22: inbound calls through the generated ``from-pstn`` dialplan, its
FastAGI step against the service, the ``hotline-route`` contexts after it (agent queues and
the post-call survey), ``hotline-fallback``, ``hotline-callback``, and AMI beside it."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from ivr.simpbx._call import (
    ENDED_BY_AMI,
    ENDED_BY_CALLER,
    ENDED_BY_DIAL,
    ENDED_BY_SERVICE,
    CallState,
    expand_keys,
)
from ivr.simpbx._channel import STATE_UP, Channel
from ivr.simpbx._events import NORMAL_CLEARING, CallEvents, EventBus, NoBus
from ivr.simpbx.agi_caller import CONNECT_TIMEOUT, AgiCaller, AgiTarget, run_dial
from ivr.simpbx.ami_server import BUFFER_LIMIT, ActionRecord, AmiServer, Originated, QueueStats
from ivr.simpbx.errors import PbxNotRunningError
from ivr.simpbx.script import DTMF_DIGITS, KNOWN_TECHS, CallScript

ROUTE_CONTEXT = "hotline-route"
FALLBACK_CONTEXT = "hotline-fallback"
CALLBACK_CONTEXT = "hotline-callback"
INBOUND_CONTEXT = "from-pstn"
FALLBACK_PROMPT = "hotline/zh/fallback-emergency"
CALLBACK_PROMPT = "hotline/zh/callback-intro"
FALLBACK_KEY_VARIABLE = "HOTLINE_KEY"  # as call_transfer.variables and the generated fallback
FALLBACK_KEY_TIMEOUT_S = 4
SURVEY_SCRIPT = "survey"
# The queue member who answers every simulated queue call, and how long its phone rings.
AGENT_INTERFACE = "PJSIP/agent-1001"
AGENT_NAME = "agent-1001"
AGENT_RING_S = 3


def _no_variables() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CallRecord:
    """What happened to one simulated call, from the PBX's point of view.

    ``destination`` is where the caller ended up: ``queue:<name>``, ``abandoned-in-queue:<name>``,
    ``dial:<dial string>`` (an answered Dial inside the AGI), ``department:<dial string>``,
    ``hangup``, ``redirect:<context>,<exten>,<priority>`` or ``abandoned-in-ivr``.
    ``fallback`` is true when the dialplan's safety net took the caller: AGISTATUS was not
    SUCCESS, or the service set no route (or a queue route without a queue).
    ``survey_status`` is the AGISTATUS of the post-call survey session ("" when the caller
    was not sent to one); ``survey_commands`` and ``survey_prompts`` are what it did.
    """

    linkedid: str
    uniqueid: str
    channel: str
    agi_status: str
    variables: Mapping[str, str]
    commands: tuple[str, ...]
    prompts: tuple[str, ...]
    dial_attempts: tuple[tuple[str, str], ...]
    destination: str
    fallback: bool
    survey_status: str = ""
    survey_commands: tuple[str, ...] = ()
    survey_prompts: tuple[str, ...] = ()


@dataclass(slots=True)
class _QueueCounters:
    waiting: int = 0
    completed: int = 0
    abandoned: int = 0


@dataclass(frozen=True, slots=True)
class OriginateRecord:
    """An outbound call the service asked for with AMI ``Originate``.

    ``variables`` are the Originate's ``Variable`` settings. An answered call into
    ``hotline-callback`` hears ``prompts`` and waits in ``queue`` for an agent, as the
    generated ``[hotline-callback]`` does.
    """

    channel: str
    caller_id: str
    created: str
    uniqueid: str
    destination: str = ""  # the Originate's "Application: ..\r\nData: .." or "Context/Exten" lines
    variables: Mapping[str, str] = field(default_factory=_no_variables)
    queue: str = ""
    prompts: tuple[str, ...] = ()


class SimulatedPbx:
    """A light Asterisk stand-in speaking real AMI and FastAGI over loopback.

    Calls take no real time: each timeout is answered at once, so thousands of calls can run
    concurrently in one event loop.
    """

    def __init__(
        self,
        *,
        agi_host: str = "127.0.0.1",
        agi_port: int,
        ami_host: str = "127.0.0.1",
        ami_port: int = 0,
        ami_username: str = "hotline",
        ami_secret: str = "hotline-secret",
        fallback_queue: str = "hotline-agents",
        agi_connect_timeout: float = CONNECT_TIMEOUT,
        ami_buffer_limit: int = BUFFER_LIMIT,
        native_emergency: Mapping[str, tuple[str, ...]] | None = None,
        native_prompts: Mapping[str, str] | None = None,
    ) -> None:
        self.agi_host = agi_host
        # The generated fallback's emergency keys: key sequence -> dial strings in failover
        # order. Without it the fallback sends everyone to the default queue.
        self.native_emergency: Mapping[str, tuple[str, ...]] = MappingProxyType(
            {keys: tuple(targets) for keys, targets in (native_emergency or {}).items()}
        )
        # The sound each of the fallback's Read steps plays, by the keys pressed before it
        # ("" is the start); a step not listed plays FALLBACK_PROMPT at the start, else nothing
        # recorded.
        self.native_prompts: Mapping[str, str] = MappingProxyType(dict(native_prompts or {}))
        self.agent_interface = AGENT_INTERFACE
        self.agent_name = AGENT_NAME
        self.agi_port = agi_port  # settable: point the dialplan at a restarted service
        self.fallback_queue = fallback_queue
        self.agi_connect_timeout = agi_connect_timeout
        self._ami = AmiServer(
            self,
            host=ami_host,
            port=ami_port,
            username=ami_username,
            secret=ami_secret,
            buffer_limit=ami_buffer_limit,
        )
        self._bus: EventBus = NoBus()
        self._events = CallEvents(self._bus)
        self._epoch = int(time.time())
        self._uniqueids = itertools.count(1)
        self._channel_numbers = itertools.count(1)
        self._live: dict[str, CallState] = {}
        self._queues: dict[str, _QueueCounters] = {}
        self._originated: list[OriginateRecord] = []
        self._calls_processed = 0
        self._running = False
        self._hold_changed = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the AMI port; calls may be placed from now on."""
        await self._ami.start()
        self._bus = self._ami
        self._events = CallEvents(self._bus)
        self._running = True

    async def close(self) -> None:
        """Hang up every call still in the IVR and close AMI."""
        self._running = False
        for call in list(self._live.values()):
            call.abandon()
        await self._ami.close()
        self._bus = NoBus()
        self._events = CallEvents(self._bus)

    async def __aenter__(self) -> SimulatedPbx:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def ami_port(self) -> int:
        """The AMI server's bound port."""
        return self._ami.port

    @property
    def dropped_events(self) -> int:
        """AMI events not delivered because a client did not read them fast enough."""
        return self._ami.dropped_events

    def holding_channels(self) -> list[str]:
        """The channels whose caller holds in silence, waiting for an AMI Redirect/Hangup."""
        return [name for name, call in self._live.items() if call.holding]

    async def wait_holding(self, count: int) -> list[str]:
        """Return the holding channels once at least ``count`` callers hold."""
        while len(self.holding_channels()) < count:
            self._hold_changed.clear()
            await self._hold_changed.wait()
        return self.holding_channels()

    @property
    def ami_actions(self) -> tuple[ActionRecord, ...]:
        """Every AMI action received so far, on every connection."""
        return self._ami.actions

    def ami_action_count(self, name: str) -> int:
        """How many AMI actions called ``name`` were received."""
        return self._ami.action_count(name)

    async def wait_for_ami_action(self, name: str, count: int = 1) -> None:
        """Return once ``count`` AMI actions called ``name`` have been received."""
        await self._ami.wait_for_action(name, count)

    @property
    def originated(self) -> tuple[OriginateRecord, ...]:
        """Every call placed through AMI ``Originate`` so far."""
        return tuple(self._originated)

    # -- calls ----------------------------------------------------------------------------

    async def place_call(self, script: CallScript) -> CallRecord:
        """Run one inbound call through the dialplan and return where it went."""
        if not self._running:
            raise PbxNotRunningError("start() the simulated PBX before placing calls")
        number = next(self._channel_numbers)
        if script.tech.upper() == "LOCAL":
            name = f"Local/{script.dialled}@{INBOUND_CONTEXT}-{number:08x};2"
        else:
            name = f"{script.tech}/carrier-{number:08x}"
        uniqueid = self._new_uniqueid()
        channel = Channel(
            name=name,
            uniqueid=uniqueid,
            linkedid=uniqueid,
            caller_number=script.caller_number,
            caller_name=script.caller_name,
            context=INBOUND_CONTEXT,
            exten=script.dialled,
        )
        call = CallState(script, channel, on_hold=self._hold_changed.set)
        self._live[name] = call
        self._calls_processed += 1
        try:
            agi_status = await self._run_inbound(call)
            destination, fallback = await self._after_agi(call, agi_status)
        finally:
            self._live.pop(name, None)
        commands_end, prompts_end = call.survey_from or (len(call.commands), len(call.prompts))
        return CallRecord(
            linkedid=channel.linkedid,
            uniqueid=uniqueid,
            channel=name,
            agi_status=agi_status,
            variables=MappingProxyType(dict(call.variables)),
            commands=tuple(call.commands[:commands_end]),
            prompts=tuple(call.prompts[:prompts_end]),
            dial_attempts=tuple(call.dial_attempts),
            destination=destination,
            fallback=fallback,
            survey_status=call.survey_status,
            survey_commands=tuple(call.commands[commands_end:]),
            survey_prompts=tuple(call.prompts[prompts_end:]),
        )

    def _new_uniqueid(self) -> str:
        return f"{self._epoch}.{next(self._uniqueids)}"

    def _new_dest(self, call: CallState, dial_string: str) -> Channel:
        """The outgoing channel a Dial creates (``Local/..;1`` or ``PJSIP/endpoint-..``)."""
        number = next(self._channel_numbers)
        target = dial_string.split("&", 1)[0]
        tech, _, resource = target.partition("/")
        if tech.upper() == "LOCAL":
            exten, _, context = resource.partition("@")
            name = f"{target}-{number:08x};1"
        else:
            exten, context = resource.split("@", 1)[0], "from-internal"
            name = f"{tech}/{resource.split('@')[-1]}-{number:08x}"
        return Channel(
            name=name,
            uniqueid=self._new_uniqueid(),
            linkedid=call.channel.linkedid,
            caller_number=call.script.caller_number,
            caller_name=call.script.caller_name,
            context=context or "default",
            exten=exten or "s",
            state=0,
        )

    def _step(
        self, call: CallState, context: str, exten: str, priority: int, app: str, data: str
    ) -> None:
        call.channel.move(context, exten, priority, app, data)
        self._events.newexten(call.channel)

    async def _run_inbound(self, call: CallState) -> str:
        """``[from-pstn]`` up to and including the AGI; returns AGISTATUS."""
        script, channel, events = call.script, call.channel, self._events
        dialled = script.dialled
        events.newchannel(channel)
        self._step(call, INBOUND_CONTEXT, dialled, 1, "Set", f"__HOTLINE_DIALED={dialled}")
        call.set_variable("__HOTLINE_DIALED", dialled)
        events.var_set(channel, "__HOTLINE_DIALED", dialled)
        self._step(call, INBOUND_CONTEXT, dialled, 2, "Answer", "")
        channel.set_state(STATE_UP)
        events.newstate(channel)
        target = AgiTarget(self.agi_host, self.agi_port)
        args = (dialled, channel.linkedid, script.forwarded_from)
        self._step(call, INBOUND_CONTEXT, dialled, 3, "AGI", ",".join((target.url, *args)))
        caller = AgiCaller(call, events, self._new_dest)
        agi_status = await caller.run(target, args, connect_timeout=self.agi_connect_timeout)
        call.set_variable("AGISTATUS", agi_status)
        events.var_set(channel, "AGISTATUS", agi_status)
        return agi_status

    async def _after_agi(self, call: CallState, agi_status: str) -> tuple[str, bool]:
        """The dialplan after ``AGI()``: returns (destination, fallback)."""
        channel, events = call.channel, self._events
        if call.ended_by:
            # Gone inside the AGI: no more dialplan runs for this channel.
            if call.ended_by == ENDED_BY_CALLER:
                events.hangup(channel, NORMAL_CLEARING)
                return "abandoned-in-ivr", False
            events.hangup(channel, NORMAL_CLEARING, requested=call.ended_by == ENDED_BY_AMI)
            if call.ended_by == ENDED_BY_DIAL:
                return call.dial_destination, False
            assert call.ended_by in (ENDED_BY_SERVICE, ENDED_BY_AMI)
            return "hangup", False
        if call.redirect_target is not None:
            context, exten, priority = call.redirect_target
            self._step(call, context, exten, int(priority) if priority.isdigit() else 1, "", "")
            events.hangup(channel, NORMAL_CLEARING)
            return f"redirect:{context},{exten},{priority}", False
        dialled = call.script.dialled
        route = call.variables.get("HOTLINE_ROUTE", "")
        self._step(
            call,
            INBOUND_CONTEXT,
            dialled,
            4,
            "GotoIf",
            f"{int(agi_status != 'SUCCESS')}?{FALLBACK_CONTEXT},s,1",
        )
        if agi_status != "SUCCESS":
            return await self._fallback(call), True
        exten = route or "fallback"
        if exten not in ("queue", "department", "hangup", "emergency", "fallback"):
            exten = "i"  # unknown route value: Asterisk's invalid-extension handler
        self._step(
            call, INBOUND_CONTEXT, dialled, 5, "Goto", f"{ROUTE_CONTEXT},{route or 'fallback'},1"
        )
        target = call.variables.get("HOTLINE_TARGET", "")
        if exten == "queue":
            if target.split(",", 1)[0]:
                return await self._queue(call, ROUTE_CONTEXT, "queue", f"{target},c"), False
            # Queue() without a queue name returns at once: the caller falls to the safety net.
            self._step(call, ROUTE_CONTEXT, "queue", 1, "Queue", f"{target},c")
            return await self._queue(call, ROUTE_CONTEXT, "fallback", self.fallback_queue), True
        if exten == "department":
            self._step(call, ROUTE_CONTEXT, "department", 1, "Dial", f"{target},60")
            status = run_dial(call, events, self._new_dest, target)
            if status == "ANSWER":
                events.hangup(channel, NORMAL_CLEARING)
                return f"department:{target.split(',', 1)[0]}", False
            return await self._queue(
                call, ROUTE_CONTEXT, "department", self.fallback_queue, priority=2
            ), False
        if exten in ("hangup", "emergency"):
            self._step(call, ROUTE_CONTEXT, exten, 1, "Hangup", "")
            events.soft_hangup_request(channel, NORMAL_CLEARING)
            events.hangup(channel, NORMAL_CLEARING, requested=False)
            return "hangup", False
        return await self._queue(
            call, ROUTE_CONTEXT, exten, self.fallback_queue
        ), exten == "fallback"

    async def _fallback(self, call: CallState) -> str:
        """``[hotline-fallback]``: the service is unreachable. With native emergency paths the
        caller hears the fallback prompt and keys one digit per ``Read`` into ``HOTLINE_KEY``
        while the digits lead along a known path; a complete path dials its targets in order,
        anything else (and every failure) goes to the default queue."""
        if not self.native_emergency:
            return await self._queue(call, FALLBACK_CONTEXT, "s", self.fallback_queue)
        path = ""
        while True:
            exten = "k" + path if path else "s"
            prompt = self.native_prompts.get(path, "" if path else FALLBACK_PROMPT)
            self._step(
                call,
                FALLBACK_CONTEXT,
                exten,
                1,
                "Read",
                f"{FALLBACK_KEY_VARIABLE},{prompt},1,,1,{FALLBACK_KEY_TIMEOUT_S}",
            )
            if prompt:
                call.prompts.append(prompt)
            key = ""
            if call.keys and call.keys[0] in DTMF_DIGITS:
                key = call.keys.popleft()
                self._events.dtmf(call.channel, key)
            call.set_variable(FALLBACK_KEY_VARIABLE, key)
            self._events.var_set(call.channel, FALLBACK_KEY_VARIABLE, key)
            if not key or not any(keys.startswith(path + key) for keys in self.native_emergency):
                return await self._queue(call, FALLBACK_CONTEXT, "agent", self.fallback_queue)
            path += key
            if path in self.native_emergency:
                break
        targets = self.native_emergency[path]
        for priority, target in enumerate(targets, start=1):
            self._step(call, FALLBACK_CONTEXT, "k" + path, priority * 2 - 1, "Dial", f"{target},20")
            if run_dial(call, self._events, self._new_dest, target) == "ANSWER":
                self._events.hangup(call.channel, NORMAL_CLEARING)
                return f"dial:{target}"
        return await self._queue(
            call, FALLBACK_CONTEXT, "k" + path, self.fallback_queue, priority=len(targets) * 2 + 2
        )

    async def _queue(
        self, call: CallState, context: str, exten: str, data: str, *, priority: int = 1
    ) -> str:
        """``Queue(data)``: the caller joins, then an agent answers or the caller gives up.

        As app_queue does: ``QueueCallerJoin``; for an abandoned caller ``QueueCallerAbandon``
        and ``QueueCallerLeave``; for an answered one ``AgentCalled``, ``QueueCallerLeave``
        (the caller leaves the queue the moment a member answers), ``AgentConnect``, and at
        the end of the conversation ``AgentComplete``. With option ``c`` and an agent who
        hangs up first, the caller continues to the survey.
        """
        channel, events, script = call.channel, self._events, call.script
        self._step(call, context, exten, priority, "Queue", data)
        name, _, options = data.partition(",")
        counters = self._queues.setdefault(name, _QueueCounters())
        counters.waiting += 1
        position = counters.waiting
        events.queue_join(channel, name, position, counters.waiting)
        counters.waiting -= 1
        hold = script.queue_wait_s
        if script.queue_outcome == "abandoned":
            counters.abandoned += 1
            events.queue_abandon(channel, name, position, hold)
            events.queue_leave(channel, name, position, counters.waiting)
            events.hangup(channel, NORMAL_CLEARING)
            return f"abandoned-in-queue:{name}"
        counters.completed += 1
        interface, member = self.agent_interface, self.agent_name
        agent = self._new_dest(call, interface)
        events.newchannel(agent)
        events.agent_called(channel, agent, name, interface, member)
        agent.set_state(STATE_UP)
        events.newstate(agent)
        events.queue_leave(channel, name, position, counters.waiting)
        events.agent_connect(channel, agent, name, interface, member, hold, min(AGENT_RING_S, hold))
        agent_hangs_up = bool(script.survey_keys)
        events.agent_complete(
            channel,
            agent,
            name,
            interface,
            member,
            hold,
            script.talk_s,
            "agent" if agent_hangs_up else "caller",
        )
        if not agent_hangs_up:
            events.hangup(channel, NORMAL_CLEARING)
            events.hangup(agent, NORMAL_CLEARING, requested=False)
            return f"queue:{name}"
        events.hangup(agent, NORMAL_CLEARING)
        if "c" in options and context == ROUTE_CONTEXT:
            await self._survey(call, exten, priority)
            return f"queue:{name}"
        # Without option c the caller's channel ends with the agent's.
        events.hangup(channel, NORMAL_CLEARING, requested=False)
        return f"queue:{name}"

    async def _survey(self, call: CallState, exten: str, priority: int) -> None:
        """After ``Queue(..,c)`` returned with CONTINUE: the survey AGI, then ``Hangup()``."""
        channel, events = call.channel, self._events
        call.set_variable("QUEUESTATUS", "CONTINUE")
        events.var_set(channel, "QUEUESTATUS", "CONTINUE")
        self._step(call, ROUTE_CONTEXT, exten, priority + 1, "GotoIf", "1?survey")
        ticket = call.variables.get("HOTLINE_TICKET", "")
        target = AgiTarget(self.agi_host, self.agi_port, SURVEY_SCRIPT)
        self._step(call, ROUTE_CONTEXT, exten, priority + 3, "AGI", f"{target.url},{ticket}")
        call.keys = expand_keys(call.script.survey_keys)
        call.survey_from = (len(call.commands), len(call.prompts))
        caller = AgiCaller(call, events, self._new_dest)
        status = await caller.run(target, (ticket,), connect_timeout=self.agi_connect_timeout)
        call.survey_status = status
        call.set_variable("AGISTATUS", status)
        events.var_set(channel, "AGISTATUS", status)
        if call.ended_by:  # the caller hung up, or the service or AMI ended the channel
            events.hangup(
                channel, NORMAL_CLEARING, requested=call.ended_by in (ENDED_BY_CALLER, ENDED_BY_AMI)
            )
            return
        self._step(call, ROUTE_CONTEXT, exten, priority + 4, "Hangup", "")
        events.soft_hangup_request(channel, NORMAL_CLEARING)
        events.hangup(channel, NORMAL_CLEARING, requested=False)

    # -- what AMI actions act on (PbxControl) ---------------------------------------------

    def live_channels(self) -> Sequence[Channel]:
        """The channels of the calls in progress."""
        return [call.channel for call in self._live.values()]

    def redirect(self, channel: str, context: str, exten: str, priority: str) -> bool:
        """AMI ``Redirect`` of a live channel."""
        call = self._live.get(channel)
        if call is None:
            return False
        call.redirect(context, exten, priority)
        return True

    def hangup(self, channel: str) -> bool:
        """AMI ``Hangup`` of a live channel."""
        call = self._live.get(channel)
        if call is None:
            return False
        call.hang_up_from_ami()
        return True

    def originate(
        self,
        channel: str,
        caller_id: str,
        destination: str,
        *,
        context: str = "",
        variables: Mapping[str, str] | None = None,
    ) -> Originated | None:
        """AMI ``Originate``: the outbound call is answered at once; unknown technologies fail.

        A call into ``hotline-callback`` then runs that context: the greeting, and the
        default agent queue (recorded on the ``OriginateRecord``).
        """
        tech = channel.split("/", 1)[0]
        if tech.upper() not in KNOWN_TECHS:
            return None
        number = next(self._channel_numbers)
        suffix = ";1" if tech.upper() == "LOCAL" else ""
        created = Originated(f"{channel}-{number:08x}{suffix}", self._new_uniqueid())
        callback = context == CALLBACK_CONTEXT
        self._originated.append(OriginateRecord(
            channel, caller_id, created.channel, created.uniqueid, destination,
            variables=MappingProxyType(dict(variables or {})),
            queue=self.fallback_queue if callback else "",
            prompts=(CALLBACK_PROMPT,) if callback else (),
        ))  # fmt: skip
        return created

    def get_variable(self, channel: str, name: str) -> str | None:
        """AMI ``Getvar`` on a live channel."""
        call = self._live.get(channel)
        return None if call is None else call.lookup(name)

    def set_variable(self, channel: str, name: str, value: str) -> bool:
        """AMI ``Setvar`` on a live channel."""
        call = self._live.get(channel)
        if call is None:
            return False
        call.set_variable(name, value)
        self._events.var_set(call.channel, name, value)
        return True

    def queue_stats(self) -> Sequence[QueueStats]:
        """Counters of every queue a call has entered."""
        return [
            QueueStats(name, c.waiting, c.completed, c.abandoned)
            for name, c in sorted(self._queues.items())
        ]

    def calls_processed(self) -> int:
        """Calls placed since construction."""
        return self._calls_processed


async def place_calls(pbx: SimulatedPbx, scripts: Sequence[CallScript]) -> list[CallRecord]:
    """Place every call at once and return their records in the scripts' order."""
    return list(await asyncio.gather(*(pbx.place_call(script) for script in scripts)))
