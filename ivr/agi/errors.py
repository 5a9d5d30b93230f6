"""The FastAGI package's exceptions.

Faults of the other side (a hangup, a malformed line, a command Asterisk refused, a reply that
never came) each have their own class, so that callers can tell a normal end of call from a bug.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.errors import HotlineError

if TYPE_CHECKING:
    from ivr.agi._parser import AgiReply


class AgiError(HotlineError):
    """Base of every error raised by the FastAGI protocol and server."""


class AgiHangup(AgiError):
    """The channel is gone (or Asterisk closed the socket); a normal outcome of every call."""


class AgiProtocolError(AgiError):
    """Asterisk (or whoever is on the socket) sent bytes that are not valid FastAGI."""


class AgiCommandError(AgiError):
    """Asterisk refused a command (510 unknown, 511 not permitted, 520 bad syntax)."""

    def __init__(self, command: str, reply: AgiReply) -> None:
        self.command = command
        self.reply = reply
        super().__init__(f"{command!r} refused: {reply.code} {reply.text}")


class AgiTimeout(AgiError):
    """No reply to a command within its time bound; the session cannot be used any more."""
