"""AMI header lookups: the C search (ivr/ami/_speedups.c) and its Python reference agree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import EllipsisType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.ami import AmiParser, _parser, _speedups

Lookup = Callable[[bytes, bytes, bytes], "str | EllipsisType | None"]
IMPLEMENTATIONS: dict[str, Lookup] = {
    "python": _parser.header_value,
    "c": _speedups.header_value,
}
FIXTURES = Path(__file__).parent.parent / "fixtures"


def lowered(raw: bytes) -> bytes:
    """What a kept message holds beside its bytes (AmiMessage._from_block)."""
    return b"\n" + raw.lower() + b"\n"


def test_the_c_search_is_built_and_used() -> None:
    """The package was built with its C search, and AmiMessage.get goes through it."""
    assert _parser._header_value is _speedups.header_value


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
