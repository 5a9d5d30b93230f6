"""FastAGI wire format, sans-I/O: bytes in, frozen objects out.

Asterisk opens a FastAGI connection with an environment block (``agi_key: value`` lines ended by
a blank line), then answers each command with one reply line (``200 result=1 (96119)``), a
multi-line usage text (``520-`` ... ``520 End of proper usage.``), or a bare ``HANGUP`` once the
channel is gone. Nothing here touches a socket, so every rule is table-tested with recorded bytes.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, NamedTuple

from ivr.agi.errors import AgiProtocolError

#: ``AgiReply.code`` of the bare ``HANGUP`` line, which carries no status code of its own.
HANGUP_CODE: Final = 0

_NO_EXTRAS: Final[Mapping[str, str]] = MappingProxyType({})
_ENV_KEY: Final = re.compile(r"agi_[A-Za-z0-9_]+")
_EXTRA_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A whole environment block of well-formed lines, without its closing blank line.
_ENV_LINES: Final = re.compile(r"(?:agi_[A-Za-z0-9_]+: [^\n]*\n)+")
# The usual reply: ``200 result=<number>``, with ``endpos=<offset>`` after a sound file.
_USUAL_REPLY: Final = re.compile(rb"200 result=(-?[0-9]*)(?: endpos=([0-9]+))?\n")
# A usage text is a few lines; a peer that never ends one must not grow our memory without bound.
_MAX_USAGE_LINES: Final = 64
# The usual replies read so far, by their line: a call's replies are mostly lines seen before
# ("200 result=0" after every EXEC, a prompt played to its end, a key pressed), and an AgiReply
# is immutable, so one is shared. Emptied when full: a bound, whatever the peer sends.
_USUAL_REPLIES: dict[bytes, AgiReply] = {}
_MAX_USUAL_REPLIES: Final = 1024


def _decode_line(line: bytes) -> str:
    """The text of one wire line, without its line end; invalid UTF-8 is replaced, not fatal."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    return line.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True, eq=False)
class AgiEnvironment(Mapping[str, str]):
    """The ``agi_*`` variables Asterisk sends when a FastAGI call starts, read-only.

    It is a mapping of the full keys (``"agi_channel"``) to their values; the properties give
    the common ones, ``""`` when Asterisk did not send the key. The keys and their order are
    shared by the calls whose blocks have the same keys (see :class:`_Layout`): a call keeps
    only its values.
    """

    _index: Mapping[str, int]  # each key's position in _items
    _items: tuple[str, ...]

    def __getitem__(self, key: str) -> str:
        return self._items[self._index[key]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"AgiEnvironment({dict(self)!r})"

    def _get(self, name: str) -> str:
        at = self._index.get("agi_" + name)
        return "" if at is None else self._items[at]

    @property
    def channel(self) -> str:
        """The channel name, e.g. ``SIP/127.0.0.1-00000000``."""
        return self._get("channel")

    @property
    def uniqueid(self) -> str:
        """The channel's unique id, the call's key in logs."""
        return self._get("uniqueid")

    @property
    def callerid(self) -> str:
        """The caller's number."""
        return self._get("callerid")

    @property
    def calleridname(self) -> str:
        """The caller's name (UTF-8, may be Chinese)."""
        return self._get("calleridname")

    @property
    def dnid(self) -> str:
        """The dialled number as the channel driver saw it (``unknown`` on Local channels)."""
        return self._get("dnid")

    @property
    def rdnis(self) -> str:
        """The redirecting number of a forwarded call (``unknown`` when not forwarded)."""
        return self._get("rdnis")

    @property
    def extension(self) -> str:
        """The dialplan extension that ran ``AGI()``."""
        return self._get("extension")

    @property
    def context(self) -> str:
        """The dialplan context that ran ``AGI()``."""
        return self._get("context")

    @property
    def request(self) -> str:
        """The full AGI URL, e.g. ``agi://127.0.0.1:4573/ivr``."""
        return self._get("request")

    @property
    def network_script(self) -> str:
        """The path part of the AGI URL (``ivr``), used to pick the script."""
        return self._get("network_script")

    @property
    def language(self) -> str:
        """The channel's language (``en``, ``zh``...)."""
        return self._get("language")

    @property
    def type(self) -> str:
        """The channel technology (``SIP``, ``PJSIP``, ``Local``)."""
        return self._get("type")

    @property
    def args(self) -> tuple[str, ...]:
        """The script arguments ``agi_arg_1`` .. ``agi_arg_N``, in order."""
        found: list[str] = []
        while (at := self._index.get(f"agi_arg_{len(found) + 1}")) is not None:
            found.append(self._items[at])
        return tuple(found)


class _Layout:
    """The keys of an environment block in their order, shared by the calls that send them.

    Asterisk sends the same keys in the same order for every call that runs the same
    ``AGI()``: once a block's keys are known good, a block of as many lines is read by
    checking that each line starts with its key, not by parsing each line.
    """

    __slots__ = ("index", "prefixes")

    def __init__(self, keys: tuple[str, ...]) -> None:
        keys = tuple(map(sys.intern, keys))
        # A plain dict, read-only by convention: each call reads it a dozen times.
        self.index: dict[str, int] = {key: at for at, key in enumerate(keys)}
        # Keys are ASCII (_ENV_KEY): each line's start as bytes.
        self.prefixes = tuple([f"{key}: ".encode() for key in keys])

    @staticmethod
    def remember(keys: tuple[str, ...]) -> _Layout:
        """The layout of ``keys`` (well-formed, distinct), kept for blocks of as many lines."""
        layout = _LAYOUTS.get(len(keys))
        if layout is None or tuple(layout.index) != keys:
            if len(_LAYOUTS) >= _MAX_LAYOUTS:  # a peer sending ever other blocks
                _LAYOUTS.clear()
            layout = _LAYOUTS[len(keys)] = _Layout(keys)
        return layout


#: The last layout seen per number of lines.
_LAYOUTS: dict[int, _Layout] = {}
_MAX_LAYOUTS = 64


def layout_values(block: bytes, prefixes: tuple[bytes, ...]) -> tuple[str, ...] | None:
    """The values of an environment block (its lines, each ended by ``\\n``, then its blank
    line) whose lines start with ``prefixes`` (``b"agi_key: "``), one a line in order: each
    line less its prefix, decoded as UTF-8 with invalid bytes replaced; None if the block has
    another number of lines or a line does not start with its prefix.

    The reference for ``ivr/agi/_speedups.c``, which does it in one pass (~46k instructions a
    call in Python before it); tests check that both agree.
    """
    if not block.endswith(b"\n\n"):
        return None
    lines = block[:-2].split(b"\n")
    if len(lines) != len(prefixes):
        return None
    values = []
    for line, prefix in zip(lines, prefixes, strict=True):
        if not line.startswith(prefix):
            return None
        values.append(line[len(prefix) :].decode("utf-8", "replace"))
    return tuple(values)


_layout_values: Callable[[bytes, tuple[bytes, ...]], tuple[str, ...] | None]
try:
    from ivr.agi._speedups import layout_values as _layout_values
except ImportError:  # not built (no C compiler where the package was installed)
    _layout_values = layout_values


class EnvironmentParser:
    """Incremental reader of the environment block: feed lines until it returns the environment.

    Garbage is refused at its first line, so a server can drop a bad peer early.
    """

    __slots__ = ("_max_bytes", "_seen_bytes", "_values")

    def __init__(self, max_bytes: int = 16384) -> None:
        self._max_bytes = max_bytes
        self._seen_bytes = 0
        self._values: dict[str, str] = {}

    def feed_line(self, line: bytes) -> AgiEnvironment | None:
        """Take one line; return the environment after the closing blank line, else None.

        Raises :class:`AgiProtocolError` for a malformed or duplicated line, or when the block
        outgrows ``max_bytes``.
        """
        self._seen_bytes += len(line)
        if self._seen_bytes > self._max_bytes:
            raise AgiProtocolError(f"AGI environment longer than {self._max_bytes} bytes")
        text = _decode_line(line)
        if not text:
            if not self._values:
                raise AgiProtocolError("empty AGI environment")
            # Hand the dict over, so that a later feed cannot change the environment returned.
            values, self._values = self._values, {}
            # Its keys' layout, shared as a block's is: one way to make an index.
            layout = _Layout.remember(tuple(values))
            return AgiEnvironment(layout.index, tuple(values.values()))
        key, sep, value = text.partition(": ")
        if not sep or _ENV_KEY.fullmatch(key) is None:
            raise AgiProtocolError(f"not an AGI environment line: {text[:80]!r}")
        # A repeated key would let whatever comes second (an injected header) override the first.
        if key in self._values:
            raise AgiProtocolError(f"duplicate AGI environment key {key!r}")
        # Every call repeats the same few dozen keys: share one copy of each across calls.
        self._values[sys.intern(key)] = value
        return None

    def feed_block(self, block: bytes) -> AgiEnvironment | None:
        """Take several whole lines at once (each ending in ``\\n``); the same environment, or
        the same error, as feeding them one by one with :meth:`feed_line`.

        A whole block of well-formed lines (the usual case: Asterisk writes it in one go) is
        decoded and checked at once rather than line by line; anything else (CRLF line ends,
        a bad or repeated line, a block started earlier) takes the line-by-line path.
        """
        if (
            not self._values
            and block.endswith(b"\n\n")
            and block.find(b"\r") < 0  # not ``in``: see AgiSession.run
            and self._seen_bytes + len(block) <= self._max_bytes
        ):
            # The usual block: the keys of the last one with as many lines, each line
            # starting with its own (layout_values, in C when built).
            layout = _LAYOUTS.get(block.count(b"\n") - 1)
            if layout is not None:
                values = _layout_values(block, layout.prefixes)
                if values is not None:
                    self._seen_bytes += len(block)
                    return AgiEnvironment(layout.index, values)
            text = block[:-2].decode("utf-8", errors="replace")
            if _ENV_LINES.fullmatch(text + "\n") is not None:
                pairs = [line.partition(": ") for line in text.split("\n")]
                keys = tuple([key for key, _sep, _value in pairs])
                if len(set(keys)) == len(keys):  # else a repeated key: its own error below
                    layout = _Layout.remember(keys)
                    self._seen_bytes += len(block)
                    return AgiEnvironment(layout.index, tuple([value for *_, value in pairs]))
        if not block.endswith(b"\n"):
            raise ValueError("feed_block: a block ends with a whole line")
        lines = block[:-1].split(b"\n")
        for index, line in enumerate(lines):
            environment = self.feed_line(line + b"\n")
            if environment is not None:
                if index != len(lines) - 1:
                    raise ValueError("feed_block: lines after the environment's blank line")
                return environment
        return None


def parse_environment(block: bytes) -> AgiEnvironment:
    """Parse a whole environment block; the closing blank line may be present or not."""
    if not block.endswith(b"\n"):
        raise AgiProtocolError("AGI environment ends in the middle of a line")
    parser = EnvironmentParser(max_bytes=len(block) + 1)
    body = block if block.endswith(b"\n\n") else block + b"\n"
    lines = body.split(b"\n")[:-1]
    for index, line in enumerate(lines):
        environment = parser.feed_line(line + b"\n")
        if environment is not None:
            if any(lines[index + 1 :]):
                raise AgiProtocolError("bytes after the end of the AGI environment")
            return environment
    raise AssertionError("unreachable: the block was given its closing blank line")


class AgiReply(NamedTuple):
    """One reply of Asterisk to one command.

    ``result`` is the text after ``result=`` (may be empty: ``200 result= (timeout)``); ``data``
    the text in parentheses (``96119`` in ``200 result=1 (96119)``), or None; ``extras`` the
    ``key=value`` words after them (``endpos``); ``text`` everything after the code (the usage
    text of a 520, lines joined by ``\\n``); ``is_hangup`` is true for the bare ``HANGUP`` line.

    A named tuple, immutable: one is made for every reply of every call, and it costs a third
    of what a frozen dataclass does to make.
    """

    code: int
    result: str = ""
    data: str | None = None
    extras: Mapping[str, str] = _NO_EXTRAS
    text: str = ""
    is_hangup: bool = False

    @property
    def ok(self) -> bool:
        """True for a ``200`` reply."""
        return self.code == 200

    def __hash__(self) -> int:
        # ``extras`` is a read-only dict, which has no hash: equal replies hash alike without it.
        return hash((self.code, self.result, self.data, self.text, self.is_hangup))


HANGUP_REPLY: Final = AgiReply(code=HANGUP_CODE, text="HANGUP", is_hangup=True)


def _parse_code(text: str) -> int | None:
    head = text[:3]
    if len(head) == 3 and head.isascii() and head.isdigit():
        return int(head)
    return None


def _parse_extras(tail: str, text: str) -> Mapping[str, str]:
    words = tail.split()
    if not words:
        return _NO_EXTRAS
    extras: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or _EXTRA_KEY.fullmatch(key) is None:
            raise AgiProtocolError(f"unexpected word {word[:40]!r} in AGI reply {text[:80]!r}")
        extras[key] = value
    return MappingProxyType(extras)


def _parse_success(text: str) -> AgiReply:
    body = text[4:]
    if not body.startswith("result="):
        raise AgiProtocolError(f"AGI 200 reply without result=: {text[:80]!r}")
    result, _, rest = body[len("result=") :].partition(" ")
    data: str | None = None
    rest = rest.lstrip(" ")
    if rest.startswith("("):
        # The value is sent raw and may itself contain ")": only the last one closes it.
        close = rest.rfind(")")
        if close < 0:
            raise AgiProtocolError(f"unclosed parenthesis in AGI reply: {text[:80]!r}")
        data = rest[1:close]
        rest = rest[close + 1 :]
        if rest and not rest.startswith(" "):
            raise AgiProtocolError(f"garbage after parenthesis in AGI reply: {text[:80]!r}")
    return AgiReply(code=200, result=result, data=data, extras=_parse_extras(rest, text), text=body)


def parse_reply(line: bytes) -> AgiReply:
    """Parse one single-line reply (``200 ...``, ``510 ...``, ``HANGUP``).

    Raises :class:`AgiProtocolError` for anything else, including the first line of a
    multi-line reply (use :class:`AgiReplyParser` for those).
    """
    text = _decode_line(line)
    return _parse_single(text, _parse_code(text))


def _parse_single(text: str, code: int | None) -> AgiReply:
    """:func:`parse_reply` of a line already decoded, with its code already read."""
    if text == "HANGUP":
        return HANGUP_REPLY
    if code is None or text[3:4] != " ":
        raise AgiProtocolError(f"not a single-line AGI reply: {text[:80]!r}")
    if code == 200:
        return _parse_success(text)
    return AgiReply(code=code, text=text[4:])


class AgiReplyParser:
    """Incremental reply reader: feed it lines, it returns each reply once it is complete."""

    __slots__ = ("_code", "_lines")

    def __init__(self) -> None:
        self._code: int | None = None
        self._lines: list[str] = []

    @property
    def in_reply(self) -> bool:
        """True while a multi-line reply has started but not ended."""
        return self._code is not None

    def feed_line(self, line: bytes) -> AgiReply | None:
        """Take one line; return the reply it completes, or None inside a multi-line reply."""
        if self._code is None:
            known = _USUAL_REPLIES.get(line)
            if known is not None:
                return known
            usual = _USUAL_REPLY.fullmatch(line)
            if usual is not None:
                # What the general path below makes of it, with one match instead of a
                # dozen string operations: most replies of most calls look like this.
                result, endpos = usual.groups()
                extras = _NO_EXTRAS
                if endpos is not None:
                    extras = MappingProxyType({"endpos": endpos.decode()})
                reply = AgiReply(200, result.decode(), None, extras, line[4:-1].decode())
                if len(_USUAL_REPLIES) >= _MAX_USUAL_REPLIES:
                    _USUAL_REPLIES.clear()
                _USUAL_REPLIES[line] = reply
                return reply
            text = _decode_line(line)
            code = _parse_code(text)
            if code is not None and text[3:4] == "-":
                self._code = code
                self._lines = [text[4:]]
                return None
            # The line is decoded and its code read once, not again by parse_reply.
            return _parse_single(text, code)
        text = _decode_line(line)
        if _parse_code(text) == self._code and text[3:4] == " ":
            self._lines.append(text[4:])
            reply = AgiReply(code=self._code, text="\n".join(self._lines))
            self._code = None
            self._lines = []
            return reply
        if len(self._lines) >= _MAX_USAGE_LINES:
            raise AgiProtocolError(f"AGI multi-line reply longer than {_MAX_USAGE_LINES} lines")
        self._lines.append(text)
        return None
