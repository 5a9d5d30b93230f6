"""One FastAGI call: typed commands over the socket Asterisk opened for it.

Commands run one at a time, each under a time bound. Asterisk's ``HANGUP`` line, whether it
answers a command or arrives unasked after a reply, ends the session: that command and every
later one raise :class:`AgiHangup`, which callers treat as the normal end of a call.

The time bound is one lazily re-armed timer per session rather than an ``asyncio.timeout``
per command: a command only stores its deadline, and the timer (armed once, at the first
command's deadline) checks on firing whether the command still waiting is overdue, and if not
re-arms itself at that deadline. Commands answer in milliseconds and their bounds are seconds,
so the timer almost never fires; a per-command timer cost ~5 % of the service's CPU.
"""

from __future__ import annotations

import asyncio
import math
from typing import Final

from ivr.agi import _commands
from ivr.agi._parser import AgiEnvironment, AgiReply, AgiReplyParser
from ivr.agi.connection import AgiConnection, LineTooLong
from ivr.agi.errors import (
    AgiCommandError,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiTimeout,
)

#: Added to a command's own Asterisk-side timeout: Asterisk answers a little after it expires.
TIMEOUT_MARGIN: Final = 5.0

_OPEN: Final = 0
_HUNG_UP: Final = 1
# After a timeout or a garbled reply we no longer know which reply answers which command.
_BROKEN: Final = 2


def _milliseconds(seconds: float) -> int:
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"invalid timeout {seconds!r} s")
    return round(seconds * 1000)


def _command_name(line: bytes) -> str:
    return line.rstrip(b"\n").decode("utf-8", errors="replace")


class AgiSession:
    """A live FastAGI session; ``env`` is what Asterisk told us about the call."""

    __slots__ = (
        "_busy",
        "_command_timeout",
        "_connection",
        "_deadline",
        "_expired",
        "_loop",
        "_parser",
        "_state",
        "_timer",
        "env",
    )

    def __init__(
        self,
        connection: AgiConnection,
        env: AgiEnvironment,
        *,
        command_timeout: float = 30.0,
    ) -> None:
        self.env = env
        self._connection = connection
        self._parser = AgiReplyParser()
        self._command_timeout = command_timeout
        self._state = _OPEN
        self._busy = False
        self._loop = connection.loop
        self._deadline: float | None = None  # of the command in flight, loop time
        self._timer: asyncio.TimerHandle | None = None
        self._expired = False

    @property
    def hung_up(self) -> bool:
        """True once Asterisk has said the channel is gone (or closed the socket)."""
        return self._state == _HUNG_UP

    async def run(self, command: bytes, *, timeout: float | None = None) -> AgiReply:
        """Send one command line (from :mod:`ivr.agi._commands`) and return its ``200`` reply.

        ``timeout`` defaults to the session's command timeout. Raises :class:`AgiHangup`,
        :class:`AgiCommandError` (5xx), :class:`AgiTimeout` or :class:`AgiProtocolError`.
        """
        # One "\n", at the end, and no "\r". find, not ``in``: on Python 3.11, ``b"x" in y``
        # first tries its operand as an integer and makes (and drops) a TypeError, ~2k
        # instructions, at each of the four commands of a call.
        if not command or command.find(b"\n") != len(command) - 1 or command.find(b"\r") >= 0:
            raise ValueError(f"not a single command line: {command!r}")
        if self._state == _HUNG_UP:
            raise AgiHangup(f"channel {self.env.channel} is gone")
        if self._state == _BROKEN:
            raise AgiProtocolError("session is out of step after an earlier failure")
        if self._busy:
            raise RuntimeError("AgiSession runs one command at a time")
        self._busy = True
        try:
            bound = self._command_timeout if timeout is None else timeout
            reply = await self._exchange(command, bound)
        finally:
            self._busy = False
        if reply.is_hangup:
            self._state = _HUNG_UP
            raise AgiHangup(f"channel {self.env.channel} hung up")
        if reply.code == 200:
            return reply
        if 500 <= reply.code < 600:
            raise AgiCommandError(_command_name(command), reply)
        self._state = _BROKEN
        raise AgiProtocolError(f"unexpected AGI reply code {reply.code}")

    async def _exchange(self, command: bytes, timeout: float) -> AgiReply:
        self._arm(timeout)
        try:
            connection = self._connection
            connection.write(command)
            # A command line almost always leaves at once (the buffer stays empty): drain()
            # is only awaited for a peer slow to read, and for a closing connection, where it
            # raises the connection's error.
            if connection.must_drain:
                await connection.drain()
            while True:
                line = connection.next_line()
                if line is None:
                    await connection.readable()
                    continue
                if not line.endswith(b"\n"):
                    self._state = _HUNG_UP
                    raise AgiHangup("Asterisk closed the AGI connection")
                reply = self._parser.feed_line(line)
                if reply is not None:
                    return reply
        except TimeoutError:
            self._state = _BROKEN
            raise AgiTimeout(f"no reply to {_command_name(command)!r} in {timeout} s") from None
        except ConnectionError as exc:
            if self._expired:  # our own abort of a peer that stopped reading
                self._state = _BROKEN
                raise AgiTimeout(f"no reply to {_command_name(command)!r} in {timeout} s") from None
            self._state = _HUNG_UP
            raise AgiHangup("AGI connection lost") from exc
        except LineTooLong as exc:  # a line longer than any real reply
            self._state = _BROKEN
            raise AgiProtocolError(str(exc)) from exc
        except AgiError as exc:
            if not isinstance(exc, AgiHangup):
                self._state = _BROKEN
            raise
        finally:
            self._deadline = None

    def _arm(self, timeout: float) -> None:
        """Set the deadline of the command about to run; arm the timer only if it is later."""
        deadline = self._loop.time() + timeout
        self._deadline = deadline
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:  # no command in flight: the next one arms a new timer
            return
        if self._loop.time() < deadline:  # a later command's deadline: wait for it
            self._timer = self._loop.call_at(deadline, self._on_timer)
            return
        # Overdue: wake the command with a TimeoutError from its reader. The reader is spent
        # after that, as the session is (out of step), so nothing else is lost.
        self._expired = True
        connection = self._connection
        connection.set_exception(TimeoutError())
        if connection.write_buffer_size > 0:  # stuck in drain(): the peer does not read
            connection.abort()

    def close(self) -> None:
        """Drop the session's timer; the server calls this when the call's handler is done."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = None

    async def answer(self) -> None:
        """Answer the channel."""
        reply = await self.run(_commands.answer())
        if reply.result == "-1":
            self._state = _HUNG_UP
            raise AgiHangup("ANSWER failed: channel is gone")

    async def stream_file(
        self, name: str, escape_digits: str = "", *, timeout: float | None = None
    ) -> str | None:
        """Play a sound file; return the escape digit pressed, None if none.

        A missing file is not an error (Asterisk answers ``result=-1 endpos=0`` and the channel
        lives on); a hangup during playback shows at the next command.
        """
        reply = await self.run(_commands.stream_file(name, escape_digits), timeout=timeout)
        return _digit(reply)

    async def wait_for_digit(self, timeout_s: float) -> str | None:
        """Wait up to ``timeout_s`` for one DTMF digit; None on timeout.

        Raises :class:`AgiHangup` when Asterisk answers ``-1`` (hangup, or the channel was
        redirected away).
        """
        reply = await self.run(
            _commands.wait_for_digit(_milliseconds(timeout_s)), timeout=timeout_s + TIMEOUT_MARGIN
        )
        if reply.result == "-1":
            self._state = _HUNG_UP
            raise AgiHangup("WAIT FOR DIGIT failed: channel is gone")
        return _digit(reply)

    async def get_data(
        self, prompt: str, timeout_s: float, max_digits: int, *, timeout: float | None = None
    ) -> str | None:
        """Play ``prompt`` and collect up to ``max_digits`` digits; None if none were entered.

        ``timeout_s`` is Asterisk's wait after the prompt; ``timeout`` bounds the whole command
        (default: the prompt's unknown length as the session timeout, plus ``timeout_s``).
        ``-1`` (a missing prompt, or a hangup that the next command will show) also gives None.
        """
        command = _commands.get_data(prompt, _milliseconds(timeout_s), max_digits)
        bound = self._command_timeout + timeout_s if timeout is None else timeout
        reply = await self.run(command, timeout=bound)
        if reply.result in ("", "-1"):
            return None
        return reply.result

    async def get_variable(self, name: str) -> str | None:
        """The value of a channel variable or function, None when it is not set."""
        return _value(await self.run(_commands.get_variable(name)))

    async def get_full_variable(self, expression: str) -> str | None:
        """Evaluate an expression such as ``${REDIRECTING(from-num)}``; None when unset."""
        return _value(await self.run(_commands.get_full_variable(expression)))

    async def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable."""
        await self.run(_commands.set_variable(name, value))

    async def exec(self, application: str, *args: str, timeout: float | None = None) -> AgiReply:
        """Run a dialplan application and return Asterisk's reply.

        ``result`` is what the application returned (``EXEC Dial``: ``0`` after a failed dial,
        ``-1`` once an answered call ends). A ``Dial`` or ``Queue`` lasts as long as the call it
        connects, so pass a ``timeout`` that covers it. An unknown application (``-2``) raises
        :class:`AgiCommandError`.
        """
        command = _commands.exec_(application, *args)
        reply = await self.run(command, timeout=timeout)
        if reply.result == "-2":
            raise AgiCommandError(_command_name(command), reply)
        return reply

    async def verbose(self, message: str, level: int = 1) -> None:
        """Write a line to the Asterisk console."""
        await self.run(_commands.verbose(message, level))

    async def noop(self) -> None:
        """Do nothing; raises :class:`AgiHangup` if the channel is already gone."""
        await self.run(_commands.noop())

    async def hangup(self) -> None:
        """Hang up the channel; Asterisk confirms with a ``HANGUP`` line at the next command."""
        await self.run(_commands.hangup())


def _digit(reply: AgiReply) -> str | None:
    try:
        code = int(reply.result)
    except ValueError:
        raise AgiProtocolError(f"not a digit result: {reply.result!r}") from None
    if code <= 0:
        return None
    if code > 0x7F:
        raise AgiProtocolError(f"not a DTMF digit: {code}")
    return chr(code)


def _value(reply: AgiReply) -> str | None:
    if reply.result == "0":
        return None
    return "" if reply.data is None else reply.data
