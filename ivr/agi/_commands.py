"""FastAGI command lines, built in one place so that no caller can inject a second command.

Free text goes through :func:`quote`; names (variables, applications, sound files) are checked
against a strict pattern and sent bare, which is also how the recorded Asterisk sessions spell
them (``GET VARIABLE HOTLINE_DIALED``, ``STREAM FILE no-such-prompt "0123456789*#"``).
"""

from __future__ import annotations

import functools
import re
from typing import Final

_NAME: Final = re.compile(r"[A-Za-z0-9_()\-]+")
# Sound files may be paths in any script (zh/欢迎): bar only what would split or end the line.
_SOUND: Final = re.compile(r"[^\x00-\x20\x7f\"\\]+")
_DIGITS: Final = re.compile(r"[0-9*#A-Da-d]*")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def quote(value: str) -> str:
    r"""Quote one argument for Asterisk's AGI argument parser.

    Backslash and double quote are escaped; control characters (``\n``, ``\r``, NUL...) are
    removed, since a line end inside a value would let it start a command of its own.
    """
    cleaned = _CONTROL.sub("", value)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _name(value: str, what: str) -> str:
    if _NAME.fullmatch(value) is None:
        raise ValueError(f"invalid {what} name {value!r}")
    return value


def _sound(value: str) -> str:
    if _SOUND.fullmatch(value) is None:
        raise ValueError(f"invalid sound file name {value!r}")
    return value


def _milliseconds(value: int) -> str:
    if value < -1:
        raise ValueError(f"invalid timeout {value} ms (use -1 to wait without limit)")
    return str(value)


def _line(text: str) -> bytes:
    return (text + "\n").encode("utf-8")


def answer() -> bytes:
    """``ANSWER``: answer the channel."""
    return b"ANSWER\n"


# A call's prompts are a few names of the dialplan, each played with its menu's keys: the same
# few lines over and over, built once (an invalid name raises every time: nothing is cached).
@functools.lru_cache(maxsize=512)
def stream_file(name: str, escape_digits: str = "") -> bytes:
    """``STREAM FILE``: play ``name`` (without extension); a digit in ``escape_digits`` stops it."""
    if _DIGITS.fullmatch(escape_digits) is None:
        raise ValueError(f"invalid escape digits {escape_digits!r}")
    return _line(f"STREAM FILE {_sound(name)} {quote(escape_digits)}")


def wait_for_digit(timeout_ms: int) -> bytes:
    """``WAIT FOR DIGIT``: wait up to ``timeout_ms`` (-1: without limit) for one DTMF digit."""
    return _line(f"WAIT FOR DIGIT {_milliseconds(timeout_ms)}")


def get_data(name: str, timeout_ms: int, max_digits: int) -> bytes:
    """``GET DATA``: play ``name`` and collect up to ``max_digits`` digits (``#`` ends early)."""
    if max_digits < 1:
        raise ValueError(f"invalid max_digits {max_digits}")
    return _line(f"GET DATA {_sound(name)} {_milliseconds(timeout_ms)} {max_digits}")


def get_variable(name: str) -> bytes:
    """``GET VARIABLE``: read a channel variable or function, e.g. ``CALLERID(name)``."""
    return _line(f"GET VARIABLE {_name(name, 'variable')}")


def get_full_variable(expression: str) -> bytes:
    """``GET FULL VARIABLE``: evaluate an expression such as ``${REDIRECTING(from-num)}``."""
    return _line(f"GET FULL VARIABLE {quote(expression)}")


def set_variable(name: str, value: str) -> bytes:
    """``SET VARIABLE``: set a channel variable."""
    return _line(f"SET VARIABLE {_name(name, 'variable')} {quote(value)}")


def exec_(application: str, *args: str) -> bytes:
    """``EXEC``: run a dialplan application; its arguments are joined by ``,`` as one value."""
    command = f"EXEC {_name(application, 'application')}"
    if args:
        command += " " + quote(",".join(args))
    return _line(command)


def hangup() -> bytes:
    """``HANGUP``: hang up the channel."""
    return b"HANGUP\n"


def noop() -> bytes:
    """``NOOP``: do nothing; Asterisk still answers, which shows the channel is alive."""
    return b"NOOP\n"


def verbose(message: str, level: int = 1) -> bytes:
    """``VERBOSE``: write ``message`` to the Asterisk console at ``level`` (1..4)."""
    if not 1 <= level <= 4:
        raise ValueError(f"invalid verbose level {level}")
    return _line(f"VERBOSE {quote(message)} {level}")
