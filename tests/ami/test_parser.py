"""The sans-I/O AMI parser, on the recorded Asterisk 22 traffic and on edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.ami import AmiMessage, AmiParser, AmiProtocolError

FIXTURES = Path(__file__).parent.parent / "fixtures"
STREAMS = {path.name: path.read_bytes() for path in sorted(FIXTURES.glob("*-ami.txt"))}


def parse_all(data: bytes) -> list[AmiMessage]:
    """Parse a whole stream in one read."""
    return AmiParser().feed(data)


@pytest.mark.parametrize(
    ("name", "messages", "events"),
    [
        ("call-legacy-96119-ami.txt", 132, 125),
        ("dial-outcomes-queue-redirect-ami.txt", 138, 127),
        ("redirect-and-asyncagi-ami.txt", 65, 57),
    ],
)
def test_fixture_message_counts(name: str, messages: int, events: int) -> None:
    """Each recorded session parses into the expected numbers of messages and events."""
    parser = AmiParser()
    parsed = parser.feed(STREAMS[name])
    assert parser.banner == "Asterisk Call Manager/11.0.0"
    assert parser.version == "11.0.0"
    assert (len(parsed), sum(message.is_event for message in parsed)) == (messages, events)
    assert parsed[0].response == "Success"
    assert parsed[-1].response == "Goodbye"


@pytest.mark.parametrize(
    ("name", "names"),
    [
        ("dial-outcomes-queue-redirect-ami.txt", {"张三丰", "李四", "王五"}),
        ("redirect-and-asyncagi-ami.txt", {"曹女士", "李先生"}),
    ],
)
def test_chinese_caller_names_intact(name: str, names: set[str]) -> None:
    """UTF-8 caller names come out whole, even from the stream read in 7-byte pieces."""
    seen = {message.get("CallerIDName") for message in parse_all(STREAMS[name])}
    assert names <= seen
    assert not any("\ufffd" in value for value in seen)


def test_command_output_lines() -> None:
    """The Command action's answer keeps each ``Output:`` line in order."""
    parsed = parse_all(STREAMS["dial-outcomes-queue-redirect-ami.txt"])
    (answer,) = [message for message in parsed if message.action_id == "9"]
    assert answer.get("Message") == "Command output follows"
    assert answer.output == (
        "8 active channels",
        "5 of 5000 max active calls ( 0.10% of capacity)",
        "10416 calls processed",
    )


def test_error_responses() -> None:
    """Error answers carry their ActionID and Asterisk's message."""
    parsed = parse_all(STREAMS["call-legacy-96119-ami.txt"])
    errors = {m.action_id: m.get("Message") for m in parsed if m.response == "Error"}
    assert errors == {
        "6": "Channel does not exist: No/Such-0001",
        "7": "Invalid/unknown command: NoSuchAction. Use Action: ListCommands to show "
        "available commands.",
    }


def test_originate_response_is_an_event() -> None:
    """An OriginateResponse carries ``Response: Failure`` yet is an event."""
    parsed = parse_all(STREAMS["dial-outcomes-queue-redirect-ami.txt"])
    failed = [m for m in parsed if m.event == "OriginateResponse" and m.response == "Failure"]
    assert [m.action_id for m in failed] == ["6", "5"]
    assert all(m.is_event for m in failed)


def test_headers_keep_order_duplicates_and_case() -> None:
    """Headers stay in wire order, duplicates are kept, and lookups ignore case."""
    (message,) = AmiParser().feed(
        b"Event: VarSet\r\nChanVariable: A=1\r\nchanvariable: B=2\r\nAccountCode: \r\n\r\n"
    )
    assert message.headers[0] == ("Event", "VarSet")
    assert message.get_all("CHANVARIABLE") == ("A=1", "B=2")
    assert message.get("chanVariable") == "A=1"
    assert message.get("AccountCode", "x") == ""
    assert message.get("Missing", "x") == "x"
    assert "accountcode" in message and "missing" not in message


@pytest.mark.parametrize(
    "data",
    [
        b"Event: A\r\nX: 1\r\n\r\nEvent: B\r\n\r\n",
        b"Event: A\nX: 1\n\nEvent: B\n\n",
        b"Event: A\r\nX: 1\n\r\nEvent: B\r\n\n",
        b"\r\nEvent: A\r\nX: 1\r\n\r\n\r\n\r\nEvent: B\r\n\r\n",
    ],
    ids=["crlf", "bare-lf", "mixed", "stray-blank-lines"],
)
def test_separators_tolerated(data: bytes) -> None:
    """CRLF, bare LF and mixed blank lines all end a message; stray blank lines are skipped."""
    parser = AmiParser()
    parsed = parser.feed(data)
    assert parser.banner is None
    assert [(m.event, m.get("X")) for m in parsed] == [("A", "1"), ("B", "")]


def test_banner_split_across_reads() -> None:
    """A banner arriving in pieces is recognised and not taken for a message."""
    parser = AmiParser()
    assert parser.feed(b"Asterisk Call Man") == []
    assert parser.feed(b"ager/11.0.0\r\nResponse: Success\r\n\r\n")[0].response == "Success"
    assert parser.version == "11.0.0"


def test_legacy_follows_command_output() -> None:
    """A legacy ``Response: Follows`` body, blank lines included, becomes ``Output`` lines."""
    data = (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: 5\r\n"
        b"Name: hotline-agents\n\nsecond paragraph\n--END COMMAND--\r\n\r\n"
        b"Event: FullyBooted\r\n\r\n"
    )
    follows, booted = AmiParser().feed(data)
    assert follows.response == "Follows"
    assert follows.action_id == "5"
    assert follows.output == ("Name: hotline-agents", "", "second paragraph")
    assert booted.event == "FullyBooted"


def test_message_size_limit() -> None:
    """A message growing past the size limit raises AmiProtocolError instead of buffering."""
    parser = AmiParser(max_message_size=64)
    parser.feed(b"Event: Big\r\n")
    with pytest.raises(AmiProtocolError):
        parser.feed(b"Data: " + b"x" * 100)


def test_invalid_utf8_does_not_break_the_stream() -> None:
    """Bytes that are not UTF-8 (a GBK name from a trunk) are replaced, later messages parse."""
    parsed = AmiParser().feed(b"Event: A\r\nCallerIDName: \xb2\xdc\r\n\r\nEvent: B\r\n\r\n")
    assert [m.event for m in parsed] == ["A", "B"]
    assert "\ufffd" in parsed[0].get("CallerIDName")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_cut_gives_the_same_messages(data: st.DataObject) -> None:
    """However the byte stream is cut, mid-character included, the messages are the same."""
    name = data.draw(st.sampled_from(sorted(STREAMS)))
    stream = STREAMS[name]
    cuts = sorted(data.draw(st.sets(st.integers(1, len(stream) - 1), max_size=300)))
    parser = AmiParser()
    parsed: list[AmiMessage] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        parsed += parser.feed(stream[start:end])
    assert parsed == parse_all(stream)
    assert parser.banner == "Asterisk Call Manager/11.0.0"


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(1, 60))
def test_fixed_size_reads_match(cut: int) -> None:
    """Reads of any fixed size, down to one byte, give the same messages as one read."""
    stream = STREAMS["redirect-and-asyncagi-ami.txt"]
    parser = AmiParser()
    parsed = [m for i in range(0, len(stream), cut) for m in parser.feed(stream[i : i + cut])]
    assert parsed == parse_all(stream)


_KEYS = ("Event", "event", "Uniqueid", "UNIQUEID", "Linkedid", "Output", "Key", "A B", "a:b",
         "\u212aey", "İd", "", "Response", "ActionID")
# Lines drawn from the forms that matter: "Key: value", tolerated "Key:value", output lines
# without a colon, keys that differ in case only, letters whose lower case differs in length.
_LINES = st.sampled_from(
    ["Event: Newexten", "Uniqueid: 1.1", "uniqueid: 2.2", "UNIQUEID:3.3", "Linkedid: ",
     "Output: x", "just output", "Key: a: b", "\u212aey: kelvin", "key:v", "İd: dotted",
     "A B: spaced", "a:b: colon", "Response: Success", "ActionID: 7", "Value: 张三",
     "Uniqueid: 4.4\r", ": empty key", "Event:NoSpace", "Event: Hangup"]
)


@given(st.lists(_LINES, min_size=1, max_size=8))
@settings(max_examples=400, deadline=None)
def test_messages_kept_as_text_answer_as_parsed_ones(lines: list[str]) -> None:
    """A message answered from its kept text gives the same headers and lookups as a parsed one,
    and so does the same message read again from its raw bytes."""
    text = "\n".join(lines)
    parsed = AmiMessage(tuple(_pairs(text)))
    # As cut from a stream with Asterisk's CRLF line ends (the last line keeps its "\r"),
    # and from one with bare LF line ends, where a line cannot end in a "\r" of its own.
    blocks = [text.replace("\n", "\r\n") + "\r"]
    if not any(line.endswith("\r") for line in lines):
        blocks.append(text)
    for block in blocks:
        message = AmiMessage._from_block(block.encode())
        assert message is not None
        # A message parsed at once (see AmiMessage._from_block) keeps no bytes to read again.
        again = AmiMessage.from_raw(message.raw) if message.raw else message
        assert again is not None and again.raw == message.raw
        for kept in (message, again):
            assert kept.headers == parsed.headers
            assert (kept.event, kept.is_event, kept.response, kept.action_id) == (
                parsed.event, parsed.is_event, parsed.response, parsed.action_id,
            )
            for key in _KEYS:
                assert kept.get(key, "-") == parsed.get(key, "-"), key
                assert (key in kept) == (key in parsed), key


def _pairs(text: str) -> list[tuple[str, str]]:
    """The reference reading of one message's lines (the parser's tolerant rules)."""
    pairs = []
    for line in text.split("\n"):
        key, sep, value = line.partition(": ")
        if sep:
            pairs.append((key, value))
            continue
        key, sep, value = line.partition(":")
        pairs.append((key, value) if sep and key and " " not in key else ("Output", line))
    return pairs


def test_messages_are_immutable() -> None:
    """A message cannot be changed once read, whether kept as text or parsed."""
    (message,) = AmiParser().feed(b"Event: Hangup\r\nUniqueid: 1.1\r\n\r\n")
    with pytest.raises(AttributeError):
        message.headers = ()  # type: ignore[misc]
    assert message == AmiMessage.from_pairs((("Event", "Hangup"), ("Uniqueid", "1.1")))
    assert hash(message) == hash(AmiMessage.from_pairs((("Event", "Hangup"), ("Uniqueid", "1.1"))))


def test_legacy_follows_after_events_at_any_cut() -> None:
    """A legacy ``Follows`` answer among events, blank lines in its output, is read whole
    however the stream is cut; "Response: Follows" inside a value is only a value."""
    stream = (
        b"Event: Newexten\r\nAppData: Response: Follows\r\n\r\n"
        b"Response: Follows\r\nActionID: 5\r\n"
        b"first\r\n\r\nsecond\r\n--END COMMAND--\r\n\r\n"
        b"Event: Hangup\r\nUniqueid: 1.1\r\n\r\n"
    )
    expected = [
        ("Newexten", "", ()),
        ("", "Follows", ("first", "", "second")),
        ("Hangup", "", ()),
    ]
    for cut in range(len(stream) + 1):
        parser = AmiParser()
        parsed = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        assert [(m.event, m.response, m.output) for m in parsed] == expected, cut
        assert parsed[0].get("AppData") == "Response: Follows"
