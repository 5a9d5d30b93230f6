"""FastAGI: the pure wire format, typed commands, one session per call, and the server.

Public surface::

    server = FastAgiServer(handler, port=4573)   # handler: async (AgiSession) -> None
    await server.start(); ...; await server.close()

``AgiHangup`` is how a call normally ends; the other ``AgiError`` subclasses are faults of the
other side. Command lines are built only by the builders in ``ivr.agi.commands``.
"""

from ivr.agi import _commands as commands
from ivr.agi._commands import quote
from ivr.agi._parser import (
    HANGUP_CODE,
    AgiEnvironment,
    AgiReply,
    AgiReplyParser,
    EnvironmentParser,
    parse_environment,
    parse_reply,
)
from ivr.agi.errors import (
    AgiCommandError,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiTimeout,
)
from ivr.agi.server import AgiHandler, FastAgiServer
from ivr.agi.session import AgiSession

__all__ = [
    "HANGUP_CODE",
    "AgiCommandError",
    "AgiEnvironment",
    "AgiError",
    "AgiHandler",
    "AgiHangup",
    "AgiProtocolError",
    "AgiReply",
    "AgiReplyParser",
    "AgiSession",
    "AgiTimeout",
    "EnvironmentParser",
    "FastAgiServer",
    "commands",
    "parse_environment",
    "parse_reply",
    "quote",
]
