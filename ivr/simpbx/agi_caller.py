"""The Asterisk side of one FastAGI session: connect to the service, send the environment,
answer each command as Asterisk 22 does. Time is virtual: timeouts are answered at once."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from ivr.simpbx import _agi_syntax as syntax
from ivr.simpbx._agi_syntax import AgiCommand
from ivr.simpbx._call import ENDED_BY_CALLER, ENDED_BY_DIAL, ENDED_BY_SERVICE, CallState
from ivr.simpbx._channel import STATE_UP, Channel
from ivr.simpbx._events import NORMAL_CLEARING, CallEvents
from ivr.simpbx.script import DIAL_CAUSES, HANGUP, HOLD, WAIT

ASTERISK_VERSION = "GIT-22-22.0.0-pre1-541-g69535d4837"
CONNECT_TIMEOUT = 2.0  # res_agi gives up on a FastAGI address after about 2 s
PROMPT_SAMPLES = 16000  # a prompt played to its end (2 s at 8 kHz)
INTERRUPTED_SAMPLES = 8000  # where a key press cuts a prompt
KNOWN_APPS = frozenset(
    app.lower()
    for app in [
        "Answer",
        "AGI",
        "Background",
        "BackgroundDetect",
        "Bridge",
        "ChanSpy",
        "ChannelRedirect",
        "Dial",
        "Echo",
        "Exec",
        "ExecIf",
        "GoSub",
        "GosubIf",
        "Goto",
        "GotoIf",
        "Hangup",
        "Log",
        "MeetMe",
        "ConfBridge",
        "MixMonitor",
        "MSet",
        "Monitor",
        "MusicOnHold",
        "NoOp",
        "Playback",
        "PlayTones",
        "Progress",
        "Queue",
        "QueueLog",
        "Read",
        "ReadExten",
        "Record",
        "ResetCDR",
        "Ringing",
        "SayAlpha",
        "SayDigits",
        "SayNumber",
        "SendDTMF",
        "Set",
        "SetMusicOnHold",
        "Stasis",
        "StopMixMonitor",
        "StopMonitor",
        "StopPlayTones",
        "System",
        "Transfer",
        "TryExec",
        "UserEvent",
        "Verbose",
        "VoiceMail",
        "Wait",
        "WaitExten",
    ]
)

AgiStatus = str  # "SUCCESS" | "FAILURE" | "HANGUP", as the AGISTATUS channel variable
DestFactory = Callable[[CallState, str], Channel]  # builds the channel a Dial creates


@dataclass(frozen=True, slots=True)
class AgiTarget:
    """Where the dialplan's ``AGI(agi://host:port/script,...)`` connects."""

    host: str
    port: int
    script: str = "ivr"

    @property
    def url(self) -> str:
        """The ``agi://`` URL as the dialplan writes it."""
        return f"agi://{self.host}:{self.port}/{self.script}"


_thread_ids = itertools.count(140646843504320, 4096)


def env_block(call: CallState, target: AgiTarget, args: tuple[str, ...], thread_id: int) -> bytes:
    """The ``agi_*`` environment, in res_agi's field order, ended by a blank line."""
    script, channel = call.script, call.channel
    trunk = script.tech.upper() != "LOCAL"
    lines = [
        "agi_network: yes",
        f"agi_network_script: {target.script}",
        f"agi_request: {target.url}",
        f"agi_channel: {channel.name}",
        f"agi_language: {channel.language}",
        f"agi_type: {script.tech}",
        f"agi_uniqueid: {channel.uniqueid}",
        f"agi_version: {ASTERISK_VERSION}",
        f"agi_callerid: {script.caller_number or 'unknown'}",
        f"agi_calleridname: {script.caller_name or 'unknown'}",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        f"agi_dnid: {script.dialled if trunk else 'unknown'}",
        f"agi_rdnis: {script.forwarded_from or 'unknown'}",
        f"agi_context: {channel.context}",
        f"agi_extension: {channel.exten}",
        f"agi_priority: {channel.priority}",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        f"agi_threadid: {thread_id}",
        *(f"agi_arg_{index}: {value}" for index, value in enumerate(args, start=1)),
    ]
    return ("\n".join(lines) + "\n\n").encode()


class _Hold(Exception):
    """Raised inside a handler when the caller holds: the session waits, then asks again."""


class AgiCaller:
    """Answers the commands of one FastAGI session for one call."""

    def __init__(self, call: CallState, events: CallEvents, new_dest: DestFactory) -> None:
        self._call = call
        self._events = events
        self._new_dest = new_dest
        self._command_ids = itertools.count(228853526, 7919)
        self._reader: asyncio.StreamReader | None = None  # the session's, while it runs
        self._handlers: dict[str, Callable[[AgiCommand], bytes]] = {
            "ANSWER": self._answer,
            "CHANNEL STATUS": self._channel_status,
            "EXEC": self._exec,
            "GET DATA": self._get_data,
            "GET FULL VARIABLE": self._get_full_variable,
            "GET OPTION": self._get_option,
            "GET VARIABLE": self._get_variable,
            "HANGUP": self._hangup,
            "SAY DIGITS": self._say,
            "SAY NUMBER": self._say,
            "SET CALLERID": lambda _command: syntax.result(1),
            "SET VARIABLE": self._set_variable,
            "STREAM FILE": self._stream_file,
            "VERBOSE": self._verbose,
            "WAIT FOR DIGIT": self._wait_for_digit,
        }

    async def run(
        self, target: AgiTarget, args: tuple[str, ...], *, connect_timeout: float = CONNECT_TIMEOUT
    ) -> AgiStatus:
        """Run the session to its end and return the AGISTATUS it leaves on the channel."""
        call = self._call
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(target.host, target.port), connect_timeout
            )
        except (OSError, TimeoutError):
            return "FAILURE"
        call.in_agi = True
        call.agi_writer = writer
        self._reader = reader
        try:
            writer.write(env_block(call, target, args, next(_thread_ids)))
            while True:
                line = await reader.readline()
                if not line.endswith(b"\n"):
                    break  # end of stream: the service is done (or gone) with this call
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                writer.write(await self.answer(text))
                if writer.transport.get_write_buffer_size() > 65536:
                    await writer.drain()
        except (ConnectionError, ValueError):
            pass  # a reset or an over-long line ends the session as a close does
        finally:
            call.in_agi = False
            call.agi_writer = None
            self._reader = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return "HANGUP" if call.ended_by else "SUCCESS"

    async def answer(self, text: str) -> bytes:
        """The bytes Asterisk sends back for one command line (several lines for 520/HANGUP)."""
        call = self._call
        call.commands.append(text)
        command = syntax.parse_agi_command(text)
        if not command.name:
            reply = syntax.REPLY_UNKNOWN
        elif call.agi_dead and command.name not in syntax.DEAD_ALLOWED:
            reply = syntax.REPLY_DEAD
        else:
            handler = self._handlers.get(command.name, _default_reply)
            while True:
                try:
                    reply = handler(command)
                    break
                except _Hold:
                    if await self._hold():
                        # The server is gone: the caller's wait runs out as Asterisk's
                        # would, and the reply goes nowhere.
                        reply = syntax.result(0)
                        break
        self._report(command, reply)
        return reply

    async def _hold(self) -> bool:
        """Wait while the caller holds, until AMI moves or ends the channel; True when the
        FastAGI server closed the connection meanwhile (killed, or restarted).

        The server owes us nothing while its command runs, so a byte arriving now breaks
        the protocol as surely as a close does; either ends the wait.
        """
        reader = self._reader
        if reader is None:
            await self._call.wait_interrupt()
            return False
        moved = asyncio.ensure_future(self._call.wait_interrupt())
        gone = asyncio.ensure_future(reader.read(1))
        try:
            done, _ = await asyncio.wait((moved, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (moved, gone):
                waiter.cancel()
            await asyncio.gather(moved, gone, return_exceptions=True)
        return moved not in done

    def _report(self, command: AgiCommand, reply: bytes) -> None:
        code = reply[:3].decode()
        outcome = {"200": "Success", "510": "Invalid or unknown command", "520": "Usage"}
        result = outcome.get(code, "Failure")
        if reply.startswith(b"200 result=-1"):
            code, result = "-1", "Failure"
        self._events.agi_exec(
            self._call.channel, next(self._command_ids), command.text, code, result
        )

    # -- the end of the channel, as the AGI server sees it --------------------------------

    def _dead_reply(self, first_line: bytes) -> bytes:
        """Reply, then the bare ``HANGUP`` line res_agi sends once the channel is gone."""
        self._call.agi_dead = True
        self._call.interrupt_pending = False
        return first_line + syntax.HANGUP_LINE

    def _caller_hangs_up(self, first_line: bytes) -> bytes:
        call = self._call
        call.ended_by = ENDED_BY_CALLER
        return self._dead_reply(first_line)

    def _next_input(self, *, holds: bool) -> str | None:
        """The caller's next action at an input opportunity (not consumed); raises to hold."""
        key = self._call.keys[0] if self._call.keys else None
        if key == HOLD:
            if holds:
                raise _Hold
            return None
        return key

    def _press(self) -> str:
        digit = self._call.keys.popleft()
        self._events.dtmf(self._call.channel, digit)
        return digit

    # -- handlers -------------------------------------------------------------------------

    def _answer(self, command: AgiCommand) -> bytes:
        channel = self._call.channel
        if channel.state != STATE_UP:
            channel.set_state(STATE_UP)
            self._events.newstate(channel)
        return syntax.result(0)

    def _channel_status(self, command: AgiCommand) -> bytes:
        return syntax.result(self._call.channel.state)

    def _verbose(self, command: AgiCommand) -> bytes:
        return syntax.usage_reply(command.name) if len(command.args) < 2 else syntax.result(1)

    def _say(self, command: AgiCommand) -> bytes:
        if len(command.args) < 4 or not syntax.is_int(command.args[2]):
            return syntax.usage_reply(command.name)
        return syntax.result(0)

    def _get_variable(self, command: AgiCommand) -> bytes:
        if len(command.args) != 3:
            return syntax.usage_reply(command.name)
        value = self._call.lookup(command.args[2])
        return syntax.result(0) if value is None else syntax.result(1, f"({value})")

    def _get_full_variable(self, command: AgiCommand) -> bytes:
        if len(command.args) not in (4, 5):
            return syntax.usage_reply(command.name)
        return syntax.result(1, f"({self._call.substitute(command.args[3])})")

    def _set_variable(self, command: AgiCommand) -> bytes:
        if len(command.args) != 4:
            return syntax.usage_reply(command.name)
        name, value = command.args[2], command.args[3]
        self._call.set_variable(name, value)
        self._events.var_set(self._call.channel, name, value)
        return syntax.result(1)

    def _hangup(self, command: AgiCommand) -> bytes:
        call = self._call
        if len(command.args) > 2 and command.args[2] != call.channel.name:
            return syntax.result(-1)  # no other channel of ours can be hung up from here
        if call.agi_dead:
            return syntax.result(1)
        if not call.ended_by:
            call.ended_by = ENDED_BY_SERVICE
        self._events.soft_hangup_request(call.channel, 32)
        return self._dead_reply(syntax.result(1))

    def _stream_file(self, command: AgiCommand) -> bytes:
        if len(command.args) not in (4, 5):
            return syntax.usage_reply(command.name)
        self._call.prompts.append(command.args[2])
        return self._play(escape=command.args[3], then_wait=False)

    def _get_option(self, command: AgiCommand) -> bytes:
        if len(command.args) not in (4, 5):
            return syntax.usage_reply(command.name)
        return self._play(escape=command.args[3], then_wait=True, prompt=command.args[2])

    def _play(self, *, escape: str, then_wait: bool, prompt: str = "") -> bytes:
        """A prompt that escape digits cut short; ``then_wait`` adds GET OPTION's wait."""
        call = self._call
        if call.interrupt_pending:
            return self._dead_reply(syntax.result(-1, "endpos=0"))
        key = self._next_input(holds=then_wait)
        if prompt:
            call.prompts.append(prompt)
        if key == HANGUP:
            call.keys.popleft()
            return self._caller_hangs_up(syntax.result(-1, f"endpos={INTERRUPTED_SAMPLES}"))
        if key is not None and key != WAIT and key in escape:
            return syntax.result(ord(self._press()), f"endpos={INTERRUPTED_SAMPLES}")
        if then_wait and key == WAIT:
            call.keys.popleft()
        return syntax.result(0, f"endpos={PROMPT_SAMPLES}")

    def _wait_for_digit(self, command: AgiCommand) -> bytes:
        if len(command.args) != 4 or not syntax.is_int(command.args[3]):
            return syntax.usage_reply(command.name)
        call = self._call
        if call.interrupt_pending:
            return self._dead_reply(syntax.result(-1))
        key = self._next_input(holds=True)
        if key is None:
            return syntax.result(0)
        if key == WAIT:
            call.keys.popleft()
            return syntax.result(0)
        if key == HANGUP:
            call.keys.popleft()
            return self._caller_hangs_up(syntax.result(-1))
        return syntax.result(ord(self._press()))

    def _get_data(self, command: AgiCommand) -> bytes:
        args = command.args
        if len(args) < 3 or (len(args) > 4 and not syntax.is_int(args[4])):
            return syntax.usage_reply(command.name)
        call = self._call
        if call.interrupt_pending:
            return self._dead_reply(syntax.result(-1))
        self._next_input(holds=True)  # a hold waits before the prompt is counted as played
        call.prompts.append(args[2])
        max_digits = int(args[4]) if len(args) > 4 and int(args[4]) > 0 else 1024
        digits = ""
        while True:
            key = self._next_input(holds=not digits)
            if key is None or key == WAIT:
                if key == WAIT:
                    call.keys.popleft()
                return syntax.result(digits, "(timeout)")
            if key == HANGUP:
                call.keys.popleft()
                return self._caller_hangs_up(syntax.result(-1))
            digit = self._press()
            if digit == "#":
                return syntax.result(digits)
            digits += digit
            if len(digits) >= max_digits:
                return syntax.result(digits)

    def _exec(self, command: AgiCommand) -> bytes:
        if len(command.args) < 2:
            return syntax.usage_reply(command.name)
        app = command.args[1].lower()
        data = command.args[2] if len(command.args) > 2 else ""
        call = self._call
        if app == "dial":
            return self._dial(data)
        if app == "hangup":
            call.ended_by = call.ended_by or ENDED_BY_SERVICE
            self._events.soft_hangup_request(call.channel, NORMAL_CLEARING)
            return self._dead_reply(syntax.result(-1))
        if app in ("playback", "background"):
            call.prompts.extend(data.split(",", 1)[0].split("&"))
        elif app == "set" and "=" in data:
            name, value = data.split("=", 1)
            call.set_variable(name, value)
            self._events.var_set(call.channel, name, value)
        elif app == "mset":
            # MSet(name1=value1,name2=value2,...): each set in turn, each with its VarSet event,
            # as Asterisk does. Its quoting and escapes are not modelled: the service only
            # sends plain values this way.
            for assignment in data.split(","):
                name, sep, value = assignment.partition("=")
                if sep and name:
                    call.set_variable(name, value)
                    self._events.var_set(call.channel, name, value)
        elif app not in KNOWN_APPS:
            return syntax.result(-2)
        return syntax.result(0)

    def _dial(self, data: str) -> bytes:
        call = self._call
        dial_string = data.split(",", 1)[0]
        status = run_dial(call, self._events, self._new_dest, dial_string)
        if status != "ANSWER":
            return syntax.result(0)
        # Without Dial's g option the caller's channel ends with the conversation.
        call.ended_by = ENDED_BY_DIAL
        call.dial_destination = f"dial:{dial_string}"
        return self._dead_reply(syntax.result(-1))


def run_dial(call: CallState, events: CallEvents, new_dest: DestFactory, dial_string: str) -> str:
    """Dial ``dial_string`` from the call's channel: record it, emit its events, set DIALSTATUS
    and HANGUPCAUSE, and return the DIALSTATUS."""
    status = call.script.dial_status(dial_string)
    call.dial_attempts.append((dial_string, status))
    cause = DIAL_CAUSES[status]
    dest = new_dest(call, dial_string)
    events.newchannel(dest)
    events.dial_begin(call.channel, dest, dial_string.split("/", 1)[-1])
    if status == "ANSWER":
        dest.set_state(STATE_UP)
        events.newstate(dest)
    events.dial_end(call.channel, dest, status)
    events.hangup(dest, cause, requested=False)
    for name, value in (("DIALSTATUS", status), ("HANGUPCAUSE", str(cause))):
        call.set_variable(name, value)
        events.var_set(call.channel, name, value)
    return status


def _default_reply(command: AgiCommand) -> bytes:
    """Commands the simulation accepts without modelling them (SAY ALPHA, DATABASE PUT ...)."""
    return syntax.result(0)


__all__ = ["AgiCaller", "AgiStatus", "AgiTarget", "env_block", "run_dial"]
