"""The AMI parser's two paths in C (ivr/ami/_speedups.c) answer as their Python references do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import EllipsisType

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ivr.ami import AmiMessage, AmiParser, _parser, _speedups

Lookup = Callable[[bytes, bytes, bytes], "str | EllipsisType | None"]
IMPLEMENTATIONS: dict[str, Lookup] = {
    "python": _parser.header_value,
    "c": _speedups.header_value,
}
FIXTURES = Path(__file__).parent.parent / "fixtures"


def lowered(raw: bytes) -> bytes:
    """What a kept message holds beside its bytes (AmiMessage._from_block)."""
    return b"\n" + raw.lower() + b"\n"


def test_the_c_paths_are_built_and_used() -> None:
    """The package was built with its C paths, and AmiMessage.get and AmiParser.feed use them."""
    assert _parser._header_value is _speedups.header_value
    assert _parser._split_messages is _speedups.split_messages
    assert _parser._read_events is _speedups.read_events
    assert type(AmiMessage.__dict__["get"]).__name__ == "method_descriptor"


@pytest.mark.parametrize("lookup", IMPLEMENTATIONS.values(), ids=IMPLEMENTATIONS.keys())
@pytest.mark.parametrize(
    ("raw", "needle", "expected"),
    [
        (b"Event: VarSet\r\nUniqueid: 1.2\r\nValue: x\r", b"\nuniqueid:", "1.2"),
        (b"Event: VarSet\r\nUniqueid: 1.2\r\nValue: x\r", b"\nvalue:", "x"),
        (b"Event: VarSet\r\nUniqueid: 1.2\r\nValue: x\r", b"\nevent:", "VarSet"),
        (b"Event: VarSet\r\nUniqueid: 1.2", b"\nuniqueid:", "1.2"),  # the last line, no "\r"
        (b"Event: A\nKey: bare line ends\nB: 1", b"\nkey:", "bare line ends"),
        (b"Event: A\r\nLinkedid: \r\nB: 1\r", b"\nlinkedid:", ""),  # an empty value
        (b"Event: A\r\nKey: one\r\nkey: two\r", b"\nkey:", "one"),  # the first line decides
        (b"Event: A\r\nKEY: upper\r", b"\nkey:", "upper"),  # keys are case-insensitive
        (b"Event: A\r\nKey: a: b\r", b"\nkey:", "a: b"),
        (b"Event: A\r\nName: \xe5\xbc\xa0\xe4\xb8\x89\r", b"\nname:", "张三"),
        (b"Event: A\r\nName: bad \xff byte\r", b"\nname:", "bad \ufffd byte"),
        (b"Event: A\r\nMonkey: 1\r", b"\nkey:", None),  # a key ending in the one asked for
        (b"Event: A\r\nB: key: 1\r", b"\nkey:", None),  # "key:" inside a value
        (b"Event: A\r\nB: 1\r", b"\nkey:", None),
        (b"Event: A\r\nKey:value\r", b"\nkey:", ...),  # tolerated, but only a parse tells
        (b"Event: A\r\nKey:\r\nKey: 2\r", b"\nkey:", ...),
    ],
)
def test_lookups(lookup: Lookup, raw: bytes, needle: bytes, expected: object) -> None:
    """The first line with the key gives its value, less its line end; none gives None; a
    line the search cannot read alone gives Ellipsis."""
    assert lookup(raw, lowered(raw), needle) == expected


@pytest.mark.parametrize("lookup", IMPLEMENTATIONS.values(), ids=IMPLEMENTATIONS.keys())
def test_arguments_that_break_the_rules_ask_for_a_parse(lookup: Lookup) -> None:
    """Bytes not made as a kept message's are not searched: the answer is Ellipsis."""
    raw = b"Event: A\r\nKey: 1\r"
    assert lookup(raw, raw.lower(), b"\nkey:") is ...  # no "\n" on either side
    assert lookup(raw, lowered(raw), b"key:") is ...  # a needle not at a line's start
    assert lookup(raw, lowered(raw), b"\n") is ...


def test_the_c_search_takes_bytes_only() -> None:
    """The C search refuses anything but three bytes objects, as a TypeError."""
    raw = b"Event: A\r\nKey: 1\r"
    with pytest.raises(TypeError):
        _speedups.header_value(raw, lowered(raw))  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _speedups.header_value(bytearray(raw), lowered(raw), b"\nkey:")  # type: ignore[arg-type]


_KEYS = ["Event", "Uniqueid", "Linkedid", "Channel", "ChannelStateDesc", "CallerIDNum",
         "CallerIDName", "Exten", "Context", "Application", "Variable", "Value", "Queue",
         "HoldTime", "Cause", "Cause-txt", "DestChannel", "DialStatus", "ActionID", "Response",
         "Message", "Output", "NoSuchHeader"]  # fmt: skip


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*-ami.txt")), ids=lambda p: p.name)
def test_both_agree_on_recorded_traffic(path: Path) -> None:
    """On every message of the recorded Asterisk 22 streams, both searches give the same
    answer for every header the service reads, and it is what the parsed headers say."""
    messages = AmiParser().feed(path.read_bytes())
    assert messages
    for message in messages:
        raw = message.raw
        if not raw:
            continue  # parsed at once (a legacy Follows): nothing kept to search
        for key in _KEYS:
            needle = b"\n" + key.lower().encode() + b":"
            found = _speedups.header_value(raw, lowered(raw), needle)
            assert found == _parser.header_value(raw, lowered(raw), needle), key
            if found is not ...:
                parsed = dict((k.lower(), v) for k, v in reversed(message.headers))
                assert found == parsed.get(key.lower()), key


# Lines drawn from the forms that matter, and bytes of any kind between them.
_LINE = st.one_of(
    st.sampled_from([b"Event: Newexten", b"Uniqueid: 1.1", b"uniqueid: 2.2", b"UNIQUEID:3.3",
                     b"Key: a: b", b"key:v", b"Key:", b"Key: ", b"Value: \xe5\xbc\xa0",
                     b"Value: \xff\xfe", b"Output: x", b"just output", b"", b"Key: x\r"]),
    st.binary(max_size=24),
)  # fmt: skip
_NEEDLE = st.one_of(
    st.sampled_from([b"\nkey:", b"\nuniqueid:", b"\nvalue:", b"\nevent:", b"\n:", b"\nk"]),
    st.binary(max_size=8),
)


@given(st.lists(_LINE, max_size=8), st.sampled_from([b"\r\n", b"\n"]), _NEEDLE)
@settings(max_examples=1500, deadline=None)
def test_both_agree_on_any_bytes(lines: list[bytes], line_end: bytes, needle: bytes) -> None:
    """For any message bytes and any needle, the C search answers as the Python one does."""
    raw = line_end.join(lines)
    lower = lowered(raw)
    assert _speedups.header_value(raw, lower, needle) == _parser.header_value(raw, lower, needle)


# Reads cut into messages: the C pass (split_messages) and its Python reference.
_PIECE = st.sampled_from(
    [b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"\n\r\n", b"Event: A", b"Key: v", b"K", b"k",
     "\u212a".encode(), "\u0130".encode(), b"\xe2\x84", b"\xc4", b"\xff", b" ", b":"]
)  # fmt: skip


@pytest.mark.parametrize("split", [_parser.split_messages, _speedups.split_messages],
                         ids=["python", "c"])  # fmt: skip
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"A: 1\r\nB: 2\r\n\r\nC: 3\r\n\r\nD",
         ([b"A: 1\r\nB: 2\r", b"C: 3\r", b"D"], b"a: 1\r\nb: 2\r\n\r\nc: 3\r\n\r\nd", True)),
        (b"", ([b""], b"", True)),
        (b"A: 1\r\n", ([b"A: 1\r\n"], b"a: 1\r\n", True)),
        (b"A: 1\n\nB: 2\n\n", None),  # bare line ends: not the usual read
        (b"A: 1\r\n\r\n\nB", None),
        ("Name: 张三\r\n\r\n".encode(), (["Name: 张三\r".encode(), b""],
                                         "name: 张三\r\n\r\n".encode(), True)),
        ("\u212aey: 1\r\n\r\n".encode(), (["\u212aey: 1\r".encode(), b""],
                                          "\u212aey: 1\r\n\r\n".encode(), False)),
    ],
)  # fmt: skip
def test_reads_cut_into_messages(
    split: Callable[[bytes], object], data: bytes, expected: object
) -> None:
    """A CRLF read is cut at each blank line, lowered, and told whether a key could hide; a
    read with bare line ends is left to the slow path."""
    assert split(data) == expected


@given(st.lists(_PIECE, max_size=40))
@settings(max_examples=1500, deadline=None)
def test_both_cut_any_read_alike(pieces: list[bytes]) -> None:
    """For any bytes, the C pass gives what the Python reference gives."""
    data = b"".join(pieces)
    assert _speedups.split_messages(data) == _parser.split_messages(data)


def test_the_c_pass_takes_bytes_only() -> None:
    """The C pass refuses anything but a bytes object, as a TypeError."""
    with pytest.raises(TypeError):
        _speedups.split_messages(bytearray(b"A: 1\r\n\r\n"))  # type: ignore[arg-type]


# A read's events made into messages: the C loop (read_events) and its Python reference.
_READ_BLOCK = st.sampled_from(
    [b"Event: Newexten\r\nUniqueid: 1.1\r", b"Event: Hangup\r\nCause: 16\r", b"Event: Hangup\r",
     b"Response: Success\r\nActionID: 7\r", b"Event: NeverSeen\r\nA: 1\r", b"",
     "Event: Hangup\r\nName: \u212aey\r".encode(), "Event: Hangup\r\nName: 张三\r".encode(),
     b"Event: Hangup", b"\r\nEvent: Hangup\r"]
)  # fmt: skip


def _made(messages: list[AmiMessage]) -> list[tuple[bytes, bytes | None, str]]:
    return [(m.raw, m._lower, m.event) for m in messages]


@given(st.lists(_READ_BLOCK, max_size=12), st.integers(0, 12))
@settings(max_examples=1000, deadline=None)
def test_both_make_the_same_messages(blocks: list[bytes], start: int) -> None:
    """From any read's blocks and any starting block, the C loop makes the messages the
    Python reference makes, and stops at the same block."""
    data = b"\n\r\n".join([*blocks, b"Event: Ne"])  # a last piece not yet complete
    split = _parser.split_messages(data)
    assume(split is not None)  # an empty block after another makes a bare "\n\n"
    assert split is not None
    pieces, lowered, plain = split
    pieces.pop()
    start = min(start, len(pieces))
    at = sum(len(piece) + 3 for piece in pieces[:start])
    names = {b"Event: Newexten\r": "Newexten", b"Event: Hangup\r": "Hangup"}
    by_c: list[AmiMessage] = []
    by_python: list[AmiMessage] = []
    stop_c = _speedups.read_events(pieces, start, at, lowered, plain, names, by_c)
    stop_python = _parser.read_events(pieces, start, at, lowered, plain, names, by_python)
    assert stop_c == stop_python
    assert _made(by_c) == _made(by_python)
    for message in by_c:
        assert type(message) is AmiMessage
        assert message.get("Uniqueid", "-") == AmiMessage.from_raw(message.raw).get("Uniqueid", "-")


def test_the_c_loop_makes_whole_messages() -> None:
    """A message the C loop made answers like one parsed from its text, and is immutable."""
    data = b"Event: Hangup\r\nUniqueid: 1.5\r\nCause: 16\r\n\r\nEvent: Hangup\r\nCause: 1\r\n\r\n"
    messages = AmiParser().feed(data)
    assert [(m.event, m.get("Cause"), m.get("Uniqueid", "-")) for m in messages] == [
        ("Hangup", "16", "1.5"), ("Hangup", "1", "-"),
    ]
    assert messages[0].headers == (("Event", "Hangup"), ("Uniqueid", "1.5"), ("Cause", "16"))
    with pytest.raises(AttributeError):
        messages[0].event = "Newexten"  # type: ignore[misc]


def test_the_c_loop_is_given_the_message_class_only() -> None:
    """configure refuses what is not a class and its slots' descriptors."""
    rest = (_parser._NEEDLES, _parser._python_get)
    with pytest.raises(TypeError):
        _speedups.configure(AmiMessage, "raw", "lower", "event", *rest)
    slots = [_parser._Fields.__dict__[name] for name in ("_raw", "_lower", "event")]
    with pytest.raises(TypeError):
        _speedups.configure(int, *slots, *rest)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*-ami.txt")), ids=lambda p: p.name)
def test_get_in_c_answers_as_the_python_get(path: Path) -> None:
    """On every message of the recorded streams, AmiMessage.get (in C) gives what the Python
    get gives, for every header the service reads, a missing one and any default, asked for
    a first time and again; and it takes its arguments as the Python get does."""
    python_get = _parser._python_get
    for message in AmiParser().feed(path.read_bytes()):
        for key in [*_KEYS, "uniqueid", "UNIQUEID"]:
            for _ in range(2):  # the second time, the key's needle is known
                assert message.get(key) == python_get(message, key), key
                assert message.get(key, "-") == python_get(message, key, "-"), key
                assert message.get(key, default="-") == python_get(message, key, "-"), key
    message = AmiParser().feed(b"Event: Hangup\r\nCause: 16\r\n\r\n")[0]
    assert message.get(key="Cause") == "16"
    with pytest.raises(TypeError):
        message.get()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        message.get("Cause", "-", "extra")  # type: ignore[call-arg]
