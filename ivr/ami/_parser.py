"""AMI framing, sans-I/O: bytes in, frozen :class:`AmiMessage` objects out.

Asterisk sends a banner line (``Asterisk Call Manager/11.0.0``), then messages made of
``Key: value`` lines ended by a blank line. Bytes are buffered and a message is decoded
only once it is complete, so a UTF-8 character split across TCP reads is never damaged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ivr.ami.errors import AmiProtocolError

BANNER_PREFIX = b"Asterisk Call Manager/"
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024

# A blank line ends a message; Asterisk writes CRLF, but bare LF and mixed forms occur
# behind some proxies and in hand-written tools, so all are accepted.
_SEPARATOR = re.compile(rb"\r?\n\r?\n")
_LEGACY_FOLLOWS = b"Response: Follows"
_LEGACY_END = re.compile(rb"--END COMMAND--\r?\n\r?\n")
_LEGACY_END_MAX = 24  # longest match of _LEGACY_END, to rescan across reads
# The only headers Asterisk puts before the raw output of a legacy ``Response: Follows``.
_LEGACY_HEADERS = frozenset({"response", "privilege", "actionid", "commandid"})


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One AMI message (a response or an event), headers in wire order, duplicates kept."""

    headers: tuple[tuple[str, str], ...]
    # The case-insensitive index of first values, built on the first lookup that needs it:
    # most events are only asked their name, which the first header gives without it.
    _first: Mapping[str, str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_pairs(cls, pairs: tuple[tuple[str, str], ...]) -> AmiMessage:
        """Build a message from ``(key, value)`` pairs."""
        return cls(pairs)

    def _index(self) -> Mapping[str, str]:
        first = self._first
        if first is None:
            # Reversed, so that the first occurrence of a repeated key wins.
            first = {key.lower(): value for key, value in reversed(self.headers)}
            object.__setattr__(self, "_first", first)  # a cache of a frozen value
        return first

    def get(self, key: str, default: str = "") -> str:
        """Return the first value of ``key`` (case-insensitive), or ``default``."""
        return self._index().get(key.lower(), default)

    def get_all(self, key: str) -> tuple[str, ...]:
        """Return every value of ``key`` (case-insensitive) in wire order."""
        wanted = key.lower()
        return tuple(value for name, value in self.headers if name.lower() == wanted)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index()

    @property
    def event(self) -> str:
        """The ``Event`` header, empty for a response."""
        headers = self.headers
        # Asterisk writes the event name first: answer without building the index.
        if headers and headers[0][0] == "Event":
            return headers[0][1]
        return self._index().get("event", "")

    @property
    def response(self) -> str:
        """The ``Response`` header (``Success``, ``Error``, ``Follows``, ``Goodbye`` ...)."""
        return self._index().get("response", "")

    @property
    def action_id(self) -> str:
        """The ``ActionID`` header, empty when absent."""
        return self._index().get("actionid", "")

    @property
    def is_event(self) -> bool:
        """True for an event (an ``OriginateResponse`` carries ``Response:`` and is one)."""
        headers = self.headers
        if headers and headers[0][0] == "Event":
            return True
        return "event" in self._index()

    @property
    def output(self) -> tuple[str, ...]:
        """The lines of command output (``Output:`` headers, or a legacy ``Follows`` body)."""
        return self.get_all("Output")


def _split_line(line: str) -> tuple[str, str] | None:
    key, sep, value = line.partition(":")
    if not sep or not key or " " in key:
        return None
    # "Key: value" is the norm; "Key:" (empty value) and "Key:value" are tolerated.
    return key, value[1:] if value.startswith(" ") else value


def _loose_pair(line: str) -> tuple[str, str]:
    # A line that is not "Key: value" can only be command output in practice.
    return _split_line(line) or ("Output", line)


def parse_message(block: bytes | bytearray) -> AmiMessage | None:
    """Parse one complete message (without its ending blank line); None if it is empty."""
    return _parse_text(block.decode("utf-8", errors="replace").replace("\r\n", "\n"))


def _parse_text(text: str) -> AmiMessage | None:
    """One message from its text, line ends already ``\n``."""
    # This runs for every event (tens of thousands a second): a C-level split per line and
    # one test; the tolerant reading only for the rare line that is not "Key: value".
    pairs = tuple(
        [
            (key, value) if sep else _loose_pair(key)
            for key, sep, value in [line.partition(": ") for line in text.split("\n") if line]
        ]
    )
    return AmiMessage(pairs) if pairs else None


def parse_legacy_follows(block: bytes | bytearray) -> AmiMessage:
    """Parse a legacy ``Response: Follows`` message: a few headers, then raw output lines."""
    text = block.decode("utf-8", errors="replace")
    pairs: list[tuple[str, str]] = []
    in_headers = True
    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        if in_headers:
            pair = _split_line(line)
            if pair is not None and pair[0].lower() in _LEGACY_HEADERS:
                pairs.append(pair)
                continue
            in_headers = False
        if line or pairs[-1][0] == "Output":
            pairs.append(("Output", line))
    while pairs and pairs[-1] == ("Output", ""):
        pairs.pop()
    return AmiMessage.from_pairs(tuple(pairs))


def _complete_end(buffer: bytearray) -> int:
    """Where the last separator (``\\r?\\n\\r?\\n``) in ``buffer`` ends; 0 if there is none."""
    bare = buffer.rfind(b"\n\n")
    crlf = buffer.rfind(b"\n\r\n")
    return max(bare + 2 if bare >= 0 else 0, crlf + 3 if crlf >= 0 else 0)


class AmiParser:
    """Incremental AMI parser: ``feed`` bytes as they arrive, get whole messages back.

    ``banner`` holds the greeting line once seen (``Asterisk Call Manager/11.0.0``).
    A message (or unterminated data) larger than ``max_message_size`` bytes raises
    :class:`AmiProtocolError`; the connection should then be dropped.
    """

    def __init__(self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_message_size = max_message_size
        self.banner: str | None = None
        self._buffer = bytearray()
        self._scan_from = 0  # bytes before this offset hold no separator
        self._expect_banner = True

    @property
    def version(self) -> str:
        """The AMI version from the banner (``11.0.0``), empty before it is seen."""
        return self.banner.partition("/")[2].strip() if self.banner else ""

    def feed(self, data: bytes) -> list[AmiMessage]:
        """Add ``data`` to the buffer and return every message it completed."""
        self._buffer += data
        messages: list[AmiMessage] = []
        if self._expect_banner and not self._take_banner():
            return messages
        buffer = self._buffer
        if _LEGACY_FOLLOWS not in buffer:
            end = _complete_end(buffer)
            # The usual case, all messages complete up to ``end`` and none can be too large:
            # one decode and one split for the whole read, no scan per message.
            if end <= self.max_message_size:
                if end:
                    text = buffer[:end].decode("utf-8", errors="replace")
                    del buffer[:end]
                    for block in text.replace("\r\n", "\n").split("\n\n"):
                        message = _parse_text(block.lstrip("\r\n"))
                        if message is not None:
                            messages.append(message)
                # Stray line ends after the last message carry nothing, as in the loop below.
                stray = 0
                while stray < len(buffer) and buffer[stray] in b"\r\n":
                    stray += 1
                if stray:
                    del buffer[:stray]
                self._scan_from = max(0, len(buffer) - 3)
                self._check_size(len(buffer))
                return messages
        start = 0
        while True:
            # Stray line ends between messages carry nothing; skipping them here keeps
            # a legacy ``Follows`` message recognisable at the start of the data.
            while start < len(buffer) and buffer[start] in b"\r\n":
                start += 1
            if buffer.startswith(_LEGACY_FOLLOWS, start):
                rescan = max(start, self._scan_from - _LEGACY_END_MAX)
                end_match = _LEGACY_END.search(buffer, rescan)
                if end_match is None:
                    break
                self._check_size(end_match.start() - start)
                messages.append(parse_legacy_follows(buffer[start : end_match.start()]))
                start = self._scan_from = end_match.end()
                continue
            match = _SEPARATOR.search(buffer, max(start, self._scan_from))
            if match is None:
                break
            self._check_size(match.start() - start)
            message = parse_message(buffer[start : match.start()])
            if message is not None:
                messages.append(message)
            start = self._scan_from = match.end()
        if start:
            del buffer[:start]
        # A separator may straddle this read and the next: rescan the last few bytes.
        self._scan_from = max(0, len(buffer) - 3)
        self._check_size(len(buffer))
        return messages

    def _take_banner(self) -> bool:
        """Consume the banner line if present; False while it may still be arriving."""
        buffer = self._buffer
        if not buffer.startswith(BANNER_PREFIX[: len(buffer)]):
            self._expect_banner = False
            return True
        end = buffer.find(b"\n")
        if end < 0:
            self._check_size(len(buffer))
            return False
        if buffer.startswith(BANNER_PREFIX):
            self.banner = bytes(buffer[:end]).decode("utf-8", errors="replace").strip()
            del buffer[: end + 1]
        self._expect_banner = False
        return True

    def _check_size(self, size: int) -> None:
        if size > self.max_message_size:
            raise AmiProtocolError(
                f"AMI message of more than {self.max_message_size} bytes; dropping the link"
            )
