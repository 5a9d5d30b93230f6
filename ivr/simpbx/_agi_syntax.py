"""Pure FastAGI syntax as Asterisk 22's res_agi applies it: argument splitting, command lookup,
and the fixed reply lines. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

REPLY_UNKNOWN = b"510 Invalid or unknown command\n"
REPLY_DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"
HANGUP_LINE = b"HANGUP\n"

# Every command res_agi registers, as word tuples; matched word by word, case-insensitively.
KNOWN_COMMANDS: frozenset[tuple[str, ...]] = frozenset(
    tuple(name.split())
    for name in (
        "ANSWER",
        "ASYNCAGI BREAK",
        "CHANNEL STATUS",
        "CONTROL STREAM FILE",
        "DATABASE DEL",
        "DATABASE DELTREE",
        "DATABASE GET",
        "DATABASE PUT",
        "EXEC",
        "GET DATA",
        "GET FULL VARIABLE",
        "GET OPTION",
        "GET VARIABLE",
        "GOSUB",
        "HANGUP",
        "NOOP",
        "RECEIVE CHAR",
        "RECEIVE TEXT",
        "RECORD FILE",
        "SAY ALPHA",
        "SAY DATE",
        "SAY DATETIME",
        "SAY DIGITS",
        "SAY NUMBER",
        "SAY PHONETIC",
        "SAY TIME",
        "SEND IMAGE",
        "SEND TEXT",
        "SET AUTOHANGUP",
        "SET CALLERID",
        "SET CONTEXT",
        "SET EXTENSION",
        "SET MUSIC",
        "SET PRIORITY",
        "SET VARIABLE",
        "SPEECH ACTIVATE GRAMMAR",
        "SPEECH CREATE",
        "SPEECH DEACTIVATE GRAMMAR",
        "SPEECH DESTROY",
        "SPEECH LOAD GRAMMAR",
        "SPEECH RECOGNIZE",
        "SPEECH SET",
        "SPEECH UNLOAD GRAMMAR",
        "STREAM FILE",
        "TDD MODE",
        "VERBOSE",
        "WAIT FOR DIGIT",
    )
)
_LONGEST_COMMAND = max(len(words) for words in KNOWN_COMMANDS)

# Commands res_agi still runs once the channel is gone (its "dead" flag); the rest get 511.
DEAD_ALLOWED = frozenset(
    {
        "ASYNCAGI BREAK",
        "CHANNEL STATUS",
        "DATABASE DEL",
        "DATABASE DELTREE",
        "DATABASE GET",
        "DATABASE PUT",
        "GET FULL VARIABLE",
        "GET VARIABLE",
        "HANGUP",
        "NOOP",
        "SET VARIABLE",
        "VERBOSE",
    }
)

# The description paragraphs res_agi prints between the two 520 lines. GET DATA and SAY NUMBER
# are copied from a recorded Asterisk 22 session; the others from the same XML documentation.
_USAGE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "GET DATA": (
            "Stream the given <replaceable>file</replaceable>, and receive DTMF data.",
            "Returns the digits received from the channel at the other end.",
        ),
        "SAY NUMBER": (
            "Say a given number, returning early if any of the given DTMF digits are received on "
            "the channel.  Returns <literal>0</literal> if playback completes without a digit being "
            "pressed, or the ASCII numerical value of the digit if one was pressed or "
            "<literal>-1</literal> on error/hangup.",
        ),
        "WAIT FOR DIGIT": (
            "Waits up to <replaceable>timeout</replaceable> milliseconds for channel to receive a "
            "DTMF digit. Returns <literal>-1</literal> on channel failure, <literal>0</literal> if no "
            "digit is received in the timeout, or the numerical value of the ascii of the digit if "
            "one is received. Use -1 for the <replaceable>timeout</replaceable> value if you desire "
            "the call to block indefinitely.",
        ),
        "STREAM FILE": (
            "Send the given file, allowing playback to be interrupted by the given digits, if any. "
            "Returns <literal>0</literal> if playback completes without a digit being pressed, the "
            "ASCII numerical value of the digit if one was pressed, or <literal>-1</literal> on error "
            "or if the channel was disconnected. If musiconhold is playing before calling stream "
            "file it will be automatically stopped and will not be restarted after completion.",
        ),
        "GET OPTION": ("Behaves similar to STREAM FILE but used with a timeout option.",),
        "GET VARIABLE": (
            "Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not set. "
            "Returns <literal>1</literal> if <replaceable>variablename</replaceable> is set and "
            "returns the variable in parentheses.",
        ),
        "GET FULL VARIABLE": (
            "Evaluates the given <replaceable>expression</replaceable> against the channel specified "
            "by <replaceable>channelname</replaceable>, or the current channel if "
            "<replaceable>channelname</replaceable> is not provided.",
        ),
        "SET VARIABLE": ("Sets a variable to the current channel.",),
        "EXEC": (
            "Executes <replaceable>application</replaceable> with given "
            "<replaceable>options</replaceable>.",
            "Returns whatever the <replaceable>application</replaceable> returns, or "
            "<literal>-2</literal> on failure to find <replaceable>application</replaceable>.",
        ),
        "VERBOSE": (
            "Sends <replaceable>message</replaceable> to the console via verbose message system. "
            "<replaceable>level</replaceable> is the verbose level (1-4).",
            "Always returns <literal>1</literal>",
        ),
    }
)


@dataclass(frozen=True, slots=True)
class AgiCommand:
    """One command line from the FastAGI server, split like res_agi splits it."""

    text: str  # the line as received, without its line end
    name: str  # the matched command words, upper case ("GET VARIABLE"), "" when unknown
    args: tuple[str, ...]  # every word, the command words included (res_agi's argv)


def split_agi_args(line: str) -> tuple[str, ...]:
    """Split a command line into words: blanks separate, double quotes group, ``\\"`` escapes.

    An empty quoted word (``""``) is kept, as res_agi keeps it.
    """
    if '"' not in line:
        return tuple(line.split())  # the common case, at a fraction of the cost
    words: list[str] = []
    current: list[str] = []
    in_word = quoted = False
    index, length = 0, len(line)
    while index < length:
        char = line[index]
        if char == "\\" and quoted and index + 1 < length and line[index + 1] in '"\\':
            current.append(line[index + 1])
            index += 2
            continue
        if char == '"':
            quoted = not quoted
            in_word = True
        elif char in " \t" and not quoted:
            if in_word:
                words.append("".join(current))
                current.clear()
                in_word = False
        else:
            current.append(char)
            in_word = True
        index += 1
    if in_word:
        words.append("".join(current))
    return tuple(words)


def parse_agi_command(line: str) -> AgiCommand:
    """Split ``line`` and find the longest registered command its first words spell."""
    args = split_agi_args(line)
    upper = tuple(word.upper() for word in args[:_LONGEST_COMMAND])
    for size in range(min(len(upper), _LONGEST_COMMAND), 0, -1):
        if upper[:size] in KNOWN_COMMANDS:
            return AgiCommand(line, " ".join(upper[:size]), args)
    return AgiCommand(line, "", args)


def usage_reply(name: str) -> bytes:
    """The multi-line ``520`` reply Asterisk sends for a known command with bad syntax."""
    lines = _USAGE.get(name, (f"Usage: {name}",))
    body = "".join(f"{line}\n" for line in lines)
    return f"520-Invalid command syntax.  Proper usage follows:\n{body}520 End of proper usage.\n".encode()


def result(value: int | str, extra: str = "") -> bytes:
    """A ``200 result=`` reply line, with ``extra`` (``endpos=..``, ``(value)``) appended."""
    return f"200 result={value} {extra}\n".encode() if extra else f"200 result={value}\n".encode()


def is_int(text: str) -> bool:
    """Whether ``text`` is a (possibly negative) decimal integer, as atoi-checked arguments are."""
    return text.lstrip("-").isdigit()
