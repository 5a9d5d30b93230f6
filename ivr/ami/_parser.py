"""AMI framing, sans-I/O: bytes in, frozen :class:`AmiMessage` objects out.

Asterisk sends a banner line (``Asterisk Call Manager/11.0.0``), then messages made of
``Key: value`` lines ended by a blank line. Bytes are buffered and a message is decoded
only once it is complete, so a UTF-8 character split across TCP reads is never damaged.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from types import EllipsisType

from ivr.ami.errors import AmiProtocolError

BANNER_PREFIX = b"Asterisk Call Manager/"
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024

# A blank line ends a message; Asterisk writes CRLF, but bare LF and mixed forms occur
# behind some proxies and in hand-written tools, so all are accepted.
_SEPARATOR = re.compile(rb"\r?\n\r?\n")
# The same blank line, less its first line end's "\r": it stays with the message before.
_BLANK_LINE = re.compile(rb"\n\r?\n")
_LEGACY_FOLLOWS = b"Response: Follows"
_LEGACY_END = re.compile(rb"--END COMMAND--\r?\n\r?\n")
_LEGACY_END_MAX = 24  # longest match of _LEGACY_END, to rescan across reads
# The only headers Asterisk puts before the raw output of a legacy ``Response: Follows``.
_LEGACY_HEADERS = frozenset({"response", "privilege", "actionid", "commandid"})


class _Fields:
    """The fields of :class:`AmiMessage`, in a base of their own so that :class:`_Draft` can
    share them (see there)."""

    __slots__ = ("_first", "_headers", "_lower", "_raw", "event")

    # ``_headers`` and ``_first`` are caches, unset (read with getattr) until first needed:
    # a message is made for every event, and most never need them.
    _headers: tuple[tuple[str, str], ...]
    # The message's bytes when kept, else b"". Lines end as they came, "\r\n" (Asterisk) or
    # "\n", the last one included unless it ends the stream.
    _raw: bytes
    # b"\n" + the bytes with ASCII letters lowered + b"\n": a byte's offset is the raw one's
    # plus one, and every line, the last included, ends in "\n"; None when not kept.
    _lower: bytes | None
    _first: dict[str, str]  # the case-insensitive index of first values
    #: The ``Event`` header, empty for a response. Read when the message is made: every
    #: event's name is read several times (dispatch, the events table, each consumer).
    event: str


class AmiMessage(_Fields):
    """One AMI message (a response or an event), headers in wire order, duplicates kept.

    Immutable. A message read off the wire keeps its bytes and answers lookups from them:
    the service reads a handful of the ~20 headers of an event, and one search in the bytes
    per lookup, decoding only the value found, costs less than decoding the message and
    splitting every line into a pair. ``headers`` is built on first use.
    """

    __slots__ = ()

    def __init__(self, headers: tuple[tuple[str, str], ...]) -> None:
        object.__setattr__(self, "_headers", headers)
        object.__setattr__(self, "_raw", b"")
        object.__setattr__(self, "_lower", None)
        if headers and headers[0][0] == "Event":
            event = headers[0][1]
        else:  # the first Event header, whatever its case
            event = next((value for key, value in headers if key.lower() == "event"), "")
        object.__setattr__(self, "event", event)

    @classmethod
    def from_pairs(cls, pairs: tuple[tuple[str, str], ...]) -> AmiMessage:
        """Build a message from ``(key, value)`` pairs."""
        return cls(pairs)

    @classmethod
    def from_raw(cls, raw: bytes) -> AmiMessage | None:
        """The message whose :attr:`raw` bytes these are; None if they are empty."""
        return cls._from_block(raw)

    @property
    def raw(self) -> bytes:
        """The message's bytes as read, up to the blank line that ends it: for a message kept
        a while at half the memory, read again with :meth:`from_raw`. Empty for a message
        made from pairs, or parsed at once (see :meth:`_from_block`)."""
        return self._raw

    @classmethod
    def _from_block(cls, block: bytes) -> AmiMessage | None:
        """A message from its bytes (lines ended by ``\\r\\n`` or ``\\n``, the last one's
        ``\\n`` left out; no blank line); None if empty.

        A line's value ends before its ``\\n`` and one ``\\r`` before that: what reading the
        text with every ``\\r\\n`` made ``\\n`` gives.

        Kept as bytes unless a line's key could be one of the two non-ASCII letters that
        lower-case to ASCII (KELVIN SIGN, and I WITH DOT ABOVE): a key search in ASCII-lowered
        bytes would not see them as ``k`` and ``i``, so such a message is parsed at once. The
        bytes are not searched for a blank line: the one caller, :meth:`AmiParser.feed`, cuts
        messages at blank lines.
        """
        if not block:
            return None
        if not block.isascii() and (_KELVIN in block or _DOTTED_I in block):
            return _parse_text(_decode_lines(block))
        lower = b"\n" + block.lower() + b"\n"
        # Asterisk writes the event name first: read it without a search, and share the
        # one string per name (names are compared many times on their way).
        if block.startswith(b"Event: "):
            line = block.partition(b"\n")[0]
            return _kept(block, lower, _EVENT_NAMES.get(line) or _event_name(line))
        message = _kept(block, lower, "")
        event = message.get("Event")
        if event:
            _set_event(message, event)
        return message

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"AmiMessage is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"AmiMessage is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AmiMessage):
            return NotImplemented
        return self.headers == other.headers

    def __hash__(self) -> int:
        return hash(self.headers)

    def __repr__(self) -> str:
        return f"AmiMessage(headers={self.headers!r})"

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """``(key, value)`` pairs in wire order."""
        headers: tuple[tuple[str, str], ...] | None = getattr(self, "_headers", None)
        if headers is None:
            parsed = _parse_text(_decode_lines(self._raw))
            headers = parsed.headers if parsed is not None else ()
            object.__setattr__(self, "_headers", headers)  # a cache of an immutable value
        return headers

    def _index(self) -> dict[str, str]:
        first: dict[str, str] | None = getattr(self, "_first", None)
        if first is None:
            # Reversed, so that the first occurrence of a repeated key wins.
            first = {key.lower(): value for key, value in reversed(self.headers)}
            object.__setattr__(self, "_first", first)  # a cache of an immutable value
        return first

    def _find(self, key: str) -> int:
        """Where the value of ``key``'s first line starts in the kept bytes; -1 if absent,
        -2 if the message must be parsed to tell (or ``key`` is not searched in the bytes).

        A line is the first with a key exactly when it is the first line that starts with
        ``key:`` (case aside, see :func:`_needle`): if that one goes on with a space it is
        ``key: value``; if not (``key:value``, a tolerated form) the full parse decides.
        """
        needle = _needle(key)
        lower = self._lower
        if needle is None or lower is None:
            return -2
        at = lower.find(needle)
        if at < 0:
            return -1
        # The lowered bytes have one more leading byte (b"\n"): the needle found at ``at``
        # covers "key:" in the raw bytes up to at + len(needle) - 2, and lower[start] is the
        # byte after it (the closing b"\n" at the end of the message).
        start = at + len(needle)
        if lower[start] != _SPACE:
            return -2
        return start

    def get(self, key: str, default: str = "") -> str:
        """Return the first value of ``key`` (case-insensitive), or ``default``."""
        lower = self._lower
        if lower is not None:
            # The search is header_value, the needle a dict lookup. With the extension built
            # the class's get is the one in C (the end of this module), which comes here only
            # for what it does not read itself.
            needle = _NEEDLES.get(key) or _needle(key)
            if needle is not None:
                value = _header_value(self._raw, lower, needle)
                if value is not ...:
                    return default if value is None else value
        return self._index().get(key.lower(), default)

    def get_all(self, key: str) -> tuple[str, ...]:
        """Return every value of ``key`` (case-insensitive) in wire order."""
        wanted = key.lower()
        return tuple(value for name, value in self.headers if name.lower() == wanted)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if self._lower is not None:
            found = self._find(key)
            if found != -2:
                return found >= 0
        return key.lower() in self._index()

    @property
    def response(self) -> str:
        """The ``Response`` header (``Success``, ``Error``, ``Follows``, ``Goodbye`` ...)."""
        return self.get("Response")

    @property
    def action_id(self) -> str:
        """The ``ActionID`` header, empty when absent."""
        return self.get("ActionID")

    @property
    def is_event(self) -> bool:
        """True for an event (an ``OriginateResponse`` carries ``Response:`` and is one)."""
        return bool(self.event) or "Event" in self

    @property
    def output(self) -> tuple[str, ...]:
        """The lines of command output (``Output:`` headers, or a legacy ``Follows`` body)."""
        return self.get_all("Output")


class _Draft(_Fields):
    """An :class:`AmiMessage` being made from its bytes: the same fields without the guard
    against setting them, given the class :class:`AmiMessage` once they are set.

    A message is made for every event, and setting three slots past the guard (through
    their descriptors' ``__set__``) costs more than making the object and setting its
    class.
    """

    __slots__ = ()


def _kept(raw: bytes, lower: bytes, event: str) -> AmiMessage:
    """A message kept as bytes: ``raw`` and ``lower`` as :class:`_Fields` describes them."""
    message: _Fields = _Draft()
    message._raw = raw
    message._lower = lower
    message.event = event
    message.__class__ = AmiMessage
    return message  # type: ignore[return-value]  # an AmiMessage now


# The event slot of a kept message whose name is not in its first line, set past the guard.
_set_event: Callable[[AmiMessage, str], None] = _Fields.__dict__["event"].__set__


@functools.lru_cache(maxsize=512)
def _needle(key: str) -> bytes | None:
    """``b"\\nkey:"`` lowered, what :meth:`AmiMessage.get` looks for in a message's bytes; None
    for a key it must not look for that way.

    Searched keys are ASCII (so only the key's own letters can match them once lowered),
    printable, without ``:`` or space (so ``key:`` at a line's start is that line's key), and
    not ``Output`` (lines that are not ``Key: value`` count as output). A memo of a pure
    function: the service asks for the same dozen names all the time.
    """
    if not key or not key.isascii() or not key.isprintable() or ":" in key or " " in key:
        return None
    lowered = key.lower()
    if lowered == "output":
        return None
    needle = b"\n" + lowered.encode("ascii") + b":"
    if len(_NEEDLES) < 512:
        _NEEDLES[key] = needle
    return needle


def header_value(raw: bytes, lower: bytes, needle: bytes) -> str | EllipsisType | None:
    """The value of the first line of a kept message whose key is ``needle``'s: what
    :meth:`AmiMessage.get` reads. None if no line has that key; ``...`` if the message must be
    parsed to tell (``key:value`` without a space, or arguments that break the rules below).

    ``raw`` is the message's bytes (lines ended by ``\\n`` or ``\\r\\n``), ``lower`` is
    ``b"\\n" + raw`` with ASCII letters lowered ``+ b"\\n"`` (a byte's offset there is its
    offset in ``raw`` plus one), ``needle`` is ``b"\\n" + key + b":"`` lowered (:func:`_needle`).
    The value ends before its line's ``\\n`` and one ``\\r`` before that, and is decoded as
    UTF-8 with invalid bytes replaced.

    The reference for ``header_value`` in ``ivr/ami/_speedups.c``, which does the same in C
    (and the get in C with it: a lookup then costs ~1.6k instructions, against 6.5-7.5k
    through this). Tests check that both agree.
    """
    if len(lower) != len(raw) + 2 or len(needle) < 2 or needle[0] != _NEWLINE:
        return ...
    at = lower.find(needle)
    if at < 0:
        return None
    # lower[start] is the byte after "key:"; in ``raw`` the value starts at that offset.
    start = at + len(needle)
    if start >= len(lower) or lower[start] != _SPACE:
        return ...
    # The line's "\n" is one byte further in ``lower`` than in ``raw``.
    line_end = lower.find(b"\n", start)
    if line_end < 0:
        return ...
    end = line_end - 1
    if end > start and raw[end - 1] == _CR:
        end -= 1
    value = raw[start:end]
    try:
        return value.decode()  # without arguments to parse; invalid bytes are rare
    except UnicodeDecodeError:
        return value.decode("utf-8", "replace")


def split_messages(data: bytes) -> tuple[list[bytes], bytes, bool] | None:
    """A read cut into messages, the usual way: None if ``data`` holds ``\\n\\n`` (line ends
    other than Asterisk's CRLF, read the slow way); else ``data.split(b"\\n\\r\\n")`` (its
    last piece what is not complete yet), ``data`` with ASCII letters lowered, and whether no
    key can hide from a search in those lowered bytes (see :meth:`AmiMessage._from_block`).

    The reference for ``split_messages`` in ``ivr/ami/_speedups.c``, which does it in one pass:
    under 1k instructions a message, against ~6k for these three passes. Tests check that both
    agree.
    """
    if b"\n\n" in data:
        return None
    plain = data.isascii() or (_KELVIN not in data and _DOTTED_I not in data)
    return data.split(b"\n\r\n"), data.lower(), plain


#: The needles :func:`_needle` made, for :meth:`AmiMessage.get` to look up before calling it:
#: a dict lookup costs less than a call, and ``get`` runs several times an event.
_NEEDLES: dict[str, bytes] = {}
#: Event names read so far, by their message's first line (``Event: name``, with the "\r"
#: of its line end if it has one): one string per name, made once.
_EVENT_NAMES: dict[bytes, str] = {}
_MAX_EVENT_LINE = 128  # longer first lines are not kept (no Asterisk event name is that long)
_MAX_EVENT_NAMES = 1024  # Asterisk has ~200 event names; more means a peer inventing them
# The two letters whose lower case is ASCII (K, i): they would hide a key from a search in
# ASCII-lowered bytes.
_KELVIN = "\u212a".encode()
_DOTTED_I = "\u0130".encode()
_SPACE = ord(" ")
_NEWLINE = ord("\n")
_CR = ord("\r")


def _event_name(line: bytes) -> str:
    """The event name of a message's first line ``Event: name`` (its line end's "\\r" kept,
    its "\\n" not), remembered in :data:`_EVENT_NAMES`."""
    event = line[7 : -1 if line.endswith(b"\r") else None].decode("utf-8", errors="replace")
    if len(_EVENT_NAMES) < _MAX_EVENT_NAMES and len(line) <= _MAX_EVENT_LINE:
        _EVENT_NAMES[line] = event
    return event


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


def _decode_lines(block: bytes) -> str:
    """A message's bytes as text with ``\\n`` line ends (the last line's ``\\r`` dropped)."""
    text = block.decode("utf-8", errors="replace").replace("\r\n", "\n")
    return text[:-1] if text.endswith("\r") else text


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


def _read_crlf(
    blocks: list[bytes], lowered: bytes, plain: bool, messages: list[AmiMessage]
) -> bool:
    """Append to ``messages`` those of ``blocks``, what splitting data without "\\n\\n" at
    each "\\n\\r\\n" gives, less its last piece (the message not yet complete); ``lowered``
    is that data with ASCII letters lowered, ``plain`` True if it holds no key to hide (see
    :meth:`AmiMessage._from_block`). False, ``messages`` left incomplete, if a message is a
    legacy ``Response: Follows``, whose output may hold blank lines.

    The events whose name was seen before are made by :func:`read_events` (in C when built),
    a run of them at a time; this reads the others.
    """
    # A block starts at ``at`` in the data and in ``lowered``; the byte before it there is
    # the "\n" that ends the previous separator, and the one after it the "\n" that starts
    # its own separator. The first block has no byte before it.
    index, at, count = 0, 0, len(blocks)
    while True:
        index, at = _read_events(blocks, index, at, lowered, plain, _EVENT_NAMES, messages)
        if index >= count:
            return True
        block = blocks[index]
        if block:
            block = block.lstrip(b"\r\n")
            if block.startswith(_LEGACY_FOLLOWS):
                return False
            other = AmiMessage._from_block(block)
            if other is not None:
                messages.append(other)
        at += len(blocks[index]) + 3
        index += 1


def read_events(
    blocks: list[bytes],
    index: int,
    at: int,
    lowered: bytes,
    plain: bool,
    names: dict[bytes, str],
    messages: list[AmiMessage],
) -> tuple[int, int]:
    """From ``blocks[index]``, which starts at offset ``at`` of the read and of ``lowered``,
    make each block into a kept message while its first line is a known event's (``names``)
    and no key can hide in it (``plain``, or neither letter in the block), appending to
    ``messages``; the index and offset of the first block it leaves (or of the end).

    :meth:`AmiMessage._from_block` for such a block, whose lowered bytes with their "\\n" on
    either side are a slice of ``lowered``. The reference for ``read_events`` in
    ``ivr/ami/_speedups.c``, which makes the messages in C: with it the parser costs ~3.7k
    instructions an event, against ~7.7k with this. Tests check that both agree.
    """
    count = len(blocks)
    while index < count:
        block = blocks[index]
        size = len(block)
        # Only a first line ``Event: name`` seen before is in the table: one lookup both
        # tells an event and names it.
        event = names.get(block.partition(b"\n")[0])
        if event is None or not (plain or not (_KELVIN in block or _DOTTED_I in block)):
            break
        message: _Fields = _Draft()  # _kept, inlined
        message._raw = block
        message._lower = lowered[at - 1 : at + size + 1] if at else b"\n" + lowered[: size + 1]
        message.event = event
        message.__class__ = AmiMessage
        messages.append(message)  # type: ignore[arg-type]  # an AmiMessage now
        at += size + 3
        index += 1
    return index, at


def _complete_end(buffer: bytearray) -> int:
    """Where the last separator (``\\r?\\n\\r?\\n``) in ``buffer`` ends; 0 if there is none."""
    crlf = buffer.rfind(b"\n\r\n")
    # A bare "\n\n" counts only after the last CRLF separator: search no further back, or
    # every read of CRLF-only data would be scanned to its start for none.
    bare = buffer.rfind(b"\n\n", max(crlf, 0))
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
        messages: list[AmiMessage] = []
        buffer = self._buffer
        if self._expect_banner:
            buffer += data
            if not self._take_banner():
                return messages
            data = bytes(buffer)
        elif buffer:
            data = bytes(buffer) + data
        elif type(data) is not bytes:
            data = bytes(data)
        # ``data`` is now all that waits. Asterisk writes "\r\n\r\n" only; "\n\n" means
        # other line ends somewhere.
        split = _split_messages(data)
        if split is not None:
            # The usual case: one split and one lowering for the whole read, no scan per
            # message; bytes all the way, a value is decoded only when it is read. A blank
            # line ends a message: split after a line's "\n", so each message keeps its last
            # line's "\r" (the lookups drop it). The last piece is what is not complete yet.
            blocks, lowered, plain = split
            rest = blocks.pop()
            # Within the limit, no message can be too large.
            if not blocks or len(data) - len(rest) <= self.max_message_size:
                if not blocks or _read_crlf(blocks, lowered, plain, messages):
                    # Stray line ends after the last message carry nothing.
                    buffer[:] = rest.lstrip(b"\r\n")
                    self._scan_from = max(0, len(buffer) - 3)
                    self._check_size(len(buffer))
                    return messages
                messages.clear()
        # Other line ends, a legacy ``Follows`` message, or more than the limit: read again.
        buffer[:] = data
        if _LEGACY_FOLLOWS not in buffer:
            end = _complete_end(buffer)
            if end <= self.max_message_size:
                if end:
                    data = bytes(buffer[:end])
                    del buffer[:end]
                    # Split after a line's "\n", as above, at every blank line.
                    for block in _BLANK_LINE.split(data):
                        message = AmiMessage._from_block(block.lstrip(b"\r\n"))
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


# The hot paths in C, when the package was built with its extension; else the Python code
# above (no C compiler where the package was installed).
_header_value: Callable[[bytes, bytes, bytes], str | EllipsisType | None]
_split_messages: Callable[[bytes], tuple[list[bytes], bytes, bool] | None]
_read_events: Callable[
    [list[bytes], int, int, bytes, bool, dict[bytes, str], list[AmiMessage]], tuple[int, int]
]
try:
    from ivr.ami import _speedups
except ImportError:
    _header_value = header_value
    _split_messages = split_messages
    _read_events = read_events
else:
    # read_events makes AmiMessage objects: the class, and its fields' slots. The get it
    # gives back reads those slots and the needles itself, and calls the Python get for
    # anything else; the class takes it in place of that one.
    _python_get = AmiMessage.get
    setattr(  # noqa: B010  # a method replaced, which mypy would not let be assigned
        AmiMessage,
        "get",
        _speedups.configure(
            AmiMessage,
            _Fields.__dict__["_raw"],
            _Fields.__dict__["_lower"],
            _Fields.__dict__["event"],
            _NEEDLES,
            _python_get,
        ),
    )
    _header_value = _speedups.header_value
    _split_messages = _speedups.split_messages
    _read_events = _speedups.read_events
