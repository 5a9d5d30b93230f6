"""The pure FastAGI parser, fed with every environment and reply of the recorded sessions."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.agi import (
    AgiEnvironment,
    AgiProtocolError,
    AgiReply,
    AgiReplyParser,
    EnvironmentParser,
    parse_environment,
    parse_reply,
)
from tests.agi.transcripts import Transcript, all_transcripts, load

TRANSCRIPTS = all_transcripts()

# name -> (channel, uniqueid, callerid, calleridname, dnid, rdnis, extension, context, type)
ENVIRONMENTS = {
    "call-legacy-96119-fastagi.txt": (
        "Local/96119@from-pstn-00000001;2", "1795380949.3", "13900001111", "Cao",
        "unknown", "unknown", "12345", "from-pstn", "Local",
    ),
    "dial-outcomes-fastagi.txt": (
        "Local/s@dial-tests-00001455;2", "1795382136.10411", "13700003333", "张三丰",
        "unknown", "unknown", "s", "dial-tests", "Local",
    ),
    "redirect-during-fastagi.txt": (
        "Local/12345@from-pstn-00000003;2", "1795381014.7", "13900001111", "曹女士",
        "unknown", "unknown", "12345", "from-pstn", "Local",
    ),
    "sip-forwarded-96119-fastagi.txt": (
        "SIP/127.0.0.1-00000000", "1795381948.0", "13900001111", "曹女士",
        "12345", "96119", "12345", "from-pstn", "SIP",
    ),
}


def _ok(result: str, data: str | None = None, **extras: str) -> AgiReply:
    text = f"result={result}" + ("" if data is None else f" ({data})")
    text += "".join(f" {key}={value}" for key, value in extras.items())
    return AgiReply(code=200, result=result, data=data, extras=MappingProxyType(extras), text=text)


HANGUP = AgiReply(code=0, text="HANGUP", is_hangup=True)

# Every single-line reply of the recordings, and the variants Asterisk's source can send.
SINGLE_LINES: dict[bytes, AgiReply] = {
    b"200 result=0\n": _ok("0"),
    b"200 result=1\n": _ok("1"),
    b"200 result=-1\n": _ok("-1"),
    b"200 result=49\n": _ok("49"),
    b"200 result=-1 endpos=0\n": _ok("-1", endpos="0"),
    b"200 result=1 (96119)\n": _ok("1", "96119"),
    b"200 result=1 (13900001111||)\n": _ok("1", "13900001111||"),
    b"200 result=1 (ANSWER)\n": _ok("1", "ANSWER"),
    b"200 result=1 (BUSY)\n": _ok("1", "BUSY"),
    b"200 result=1 (CONGESTION)\n": _ok("1", "CONGESTION"),
    b"200 result=1 (NOANSWER)\n": _ok("1", "NOANSWER"),
    b"200 result=1 (CHANUNAVAIL)\n": _ok("1", "CHANUNAVAIL"),
    b"200 result=1 (0)\n": _ok("1", "0"),
    b"200 result=1 (16)\n": _ok("1", "16"),
    b"200 result=1 (66)\n": _ok("1", "66"),
    "200 result=1 (曹女士)\n".encode(): _ok("1", "曹女士"),
    b"200 result=1 (96119|cfu|0|12345|96119|12345)\n": _ok("1", "96119|cfu|0|12345|96119|12345"),
    b"200 result=1 (<sip:96119@127.0.0.1>;reason=unconditional;counter=1)\n": _ok(
        "1", "<sip:96119@127.0.0.1>;reason=unconditional;counter=1"
    ),
    b"510 Invalid or unknown command\n": AgiReply(code=510, text="Invalid or unknown command"),
    b"HANGUP\n": HANGUP,
    # Not in the recordings, but in res_agi.c's replies:
    b"200 result= (timeout)\n": _ok("", "timeout"),
    b"200 result=12 (timeout)\n": _ok("12", "timeout"),
    b"200 result=0 (timeout) endpos=8000\n": _ok("0", "timeout", endpos="8000"),
    b"200 result=1 (a value (with) spaces)\n": _ok("1", "a value (with) spaces"),
    b"200 result=1 ()\n": _ok("1", ""),
    b"200 result=1 (96119)\r\n": _ok("1", "96119"),
    b"511 Command Not Permitted on a dead channel or intercept routine\n": AgiReply(
        code=511, text="Command Not Permitted on a dead channel or intercept routine"
    ),
    b"520 Invalid command syntax.  Proper usage not available.\n": AgiReply(
        code=520, text="Invalid command syntax.  Proper usage not available."
    ),
}


@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=lambda t: t.name)
def test_environment_of_each_recording(transcript: Transcript) -> None:
    """Each recorded environment block parses to the call's channel, ids, numbers and names."""
    env = parse_environment(transcript.env)
    got = (
        env.channel, env.uniqueid, env.callerid, env.calleridname, env.dnid, env.rdnis,
        env.extension, env.context, env.type,
    )
    assert got == ENVIRONMENTS[transcript.name]
    assert env.request.startswith("agi://127.0.0.1:4573/")
    assert env.request.endswith("/" + env.network_script)
    assert env.language == "en"
    assert env["agi_accountcode"] == ""
    assert len(env) == 22
    assert env.args == ()


def test_every_recording_has_an_environment_row() -> None:
    """The environment table covers every FastAGI recording in the fixtures."""
    assert {t.name for t in TRANSCRIPTS} == set(ENVIRONMENTS)


def test_environment_args_and_missing_keys() -> None:
    """``args`` collects agi_arg_1..N in order and stops at a gap; a missing key reads as ""."""
    env = parse_environment(
        b"agi_channel: SIP/a\nagi_arg_2: two\nagi_arg_1: one\nagi_arg_4: four\n\n"
    )
    assert env.args == ("one", "two")
    assert env.uniqueid == ""
    assert dict(env) == {
        "agi_channel": "SIP/a", "agi_arg_2": "two", "agi_arg_1": "one", "agi_arg_4": "four"
    }


def test_environment_keeps_colons_and_replaces_bad_utf8() -> None:
    """Only the first ": " splits a line; invalid UTF-8 in a value is replaced, not fatal."""
    env = parse_environment(b"agi_request: agi://h:4573/ivr?a: b\nagi_calleridname: \xff\xfe\n\n")
    assert env.request == "agi://h:4573/ivr?a: b"
    assert env.calleridname == "\ufffd\ufffd"


@pytest.mark.parametrize(
    "block",
    [
        b"",
        b"\n",
        b"agi_channel: SIP/a",  # cut in the middle of a line
        b"agi_callerid: 110\nagi_callerid: 13900001111\n\n",  # a second value must not win
        b"agi_channel SIP/a\n\n",
        b"agi_channel:SIP/a\n\n",
        b"GET / HTTP/1.1\r\nHost: example\r\n\r\n",
        b"Host: example\n\n",
        b"agi_channel: a\n\nagi_extra: b\n",
        b"\x00\x01\x02: \xff\n\n",
    ],
)
def test_environment_rejects(block: bytes) -> None:
    """Truncated, duplicated, foreign or binary environment blocks are protocol errors."""
    with pytest.raises(AgiProtocolError):
        parse_environment(block)


def test_environment_parser_bounds_the_block() -> None:
    """The incremental environment parser refuses a block longer than its byte limit."""
    parser = EnvironmentParser(max_bytes=64)
    assert parser.feed_line(b"agi_a: 0123456789\n") is None
    assert parser.feed_line(b"agi_b: 0123456789\n") is None
    with pytest.raises(AgiProtocolError, match="longer than 64"):
        parser.feed_line(b"agi_c: 0123456789012345678901234567890\n")


@pytest.mark.parametrize("line", list(SINGLE_LINES), ids=repr)
def test_single_line_replies(line: bytes) -> None:
    """Each single-line reply parses to its code, result, data and extras."""
    assert parse_reply(line) == SINGLE_LINES[line]
    assert AgiReplyParser().feed_line(line) == SINGLE_LINES[line]


@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=lambda t: t.name)
def test_every_recorded_reply(transcript: Transcript) -> None:
    """Every recorded reply line is in the table, and the lines after one command form one
    reply (two when Asterisk adds an unasked HANGUP)."""
    parser = AgiReplyParser()
    for _command, lines in transcript.exchanges():
        replies = [reply for line in lines if (reply := parser.feed_line(line)) is not None]
        assert not parser.in_reply
        if replies[0].code != 520:
            assert all(line in SINGLE_LINES for line in lines)
            assert replies == [SINGLE_LINES[line] for line in lines]
        assert len(replies) == (2 if len(replies) > 1 and replies[1].is_hangup else 1)


def test_multi_line_520_usage() -> None:
    """A 520 usage reply completes only at its closing line and carries the whole text."""
    exchanges = dict(load("redirect-during-fastagi.txt").exchanges())
    parser = AgiReplyParser()
    lines = exchanges[b"GET DATA\n"]
    assert [parser.feed_line(line) for line in lines[:-1]] == [None] * (len(lines) - 1)
    assert parser.in_reply
    reply = parser.feed_line(lines[-1])
    assert reply == AgiReply(
        code=520,
        text="Invalid command syntax.  Proper usage follows:\n"
        "Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
        "Returns the digits received from the channel at the other end.\n"
        "End of proper usage.",
    )
    assert parser.feed_line(b"200 result=0\n") == SINGLE_LINES[b"200 result=0\n"]


def test_unsolicited_hangup_after_a_reply() -> None:
    """After WAIT FOR DIGIT's -1, the HANGUP line Asterisk adds is a reply of its own."""
    exchanges = dict(load("redirect-during-fastagi.txt").exchanges())
    parser = AgiReplyParser()
    first, second = (parser.feed_line(line) for line in exchanges[b"WAIT FOR DIGIT 20000\n"])
    assert first == SINGLE_LINES[b"200 result=-1\n"]
    assert second is not None and second.is_hangup


def test_endless_usage_text_is_refused() -> None:
    """A 520 reply that never ends is cut off instead of growing memory without bound."""
    parser = AgiReplyParser()
    parser.feed_line(b"520-Invalid command syntax.  Proper usage follows:\n")

    def feed_usage_lines() -> None:
        for _ in range(1000):
            parser.feed_line(b"more usage\n")

    with pytest.raises(AgiProtocolError, match="multi-line"):
        feed_usage_lines()


@pytest.mark.parametrize(
    "line",
    [
        b"\n",
        b"200\n",
        b"200 \n",
        b"200 result\n",
        b"200 Result=1\n",
        b"200 result=1 (unclosed\n",
        b"200 result=1 (x)y\n",
        b"200 result=1 garbage\n",
        b"hangup\n",
        b"\xd9\xa2\xd9\xa0\xd9\xa0 result=1\n",  # Arabic-Indic digits are not a status code
        b"\x00\xff\x00\n",
        b"520-Invalid command syntax.  Proper usage follows:\n",  # not a single line
    ],
)
def test_reply_rejects(line: bytes) -> None:
    """Lines that are not an AGI reply are protocol errors."""
    with pytest.raises(AgiProtocolError):
        parse_reply(line)


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=120), max_size=20))
def test_reply_parser_fails_only_with_protocol_errors(lines: list[bytes]) -> None:
    """Whatever bytes arrive, the reply parser returns replies or raises AgiProtocolError."""
    parser = AgiReplyParser()
    for line in lines:
        try:
            parser.feed_line(line + b"\n")
        except AgiProtocolError:
            parser = AgiReplyParser()


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=120), max_size=20))
def test_environment_parser_fails_only_with_protocol_errors(lines: list[bytes]) -> None:
    """Whatever bytes arrive, the environment parser returns or raises AgiProtocolError."""
    with contextlib.suppress(AgiProtocolError):
        parse_environment(b"".join(line.replace(b"\n", b"") + b"\n" for line in lines))


# Lines near the environment's shape: good keys, bad keys, colons, CRLF, bad UTF-8, repeats.
_ENV_LINE = st.one_of(
    st.builds(
        lambda key, value: b"agi_%s: %s\n" % (key, value),
        st.sampled_from([b"channel", b"uniqueid", b"callerid", b"arg_1", b"x-y", b""]),
        st.binary(max_size=12).map(lambda v: v.replace(b"\n", b"")),
    ),
    st.sampled_from([b"agi_type:SIP\n", b"agi_a: b\r\n", b"GET / HTTP/1.1\n", b"\xe4\xb8\n"]),
)


@settings(max_examples=500)
@given(st.lists(_ENV_LINE, max_size=12), st.integers(min_value=16, max_value=400))
def test_a_block_parses_as_its_lines_do(lines: list[bytes], max_bytes: int) -> None:
    """feed_block gives what feeding the same lines one by one gives: the environment, or
    the same error."""
    block = [*lines, b"\n"]

    def outcome(feed: Callable[[EnvironmentParser], AgiEnvironment | None]) -> object:
        try:
            env = feed(EnvironmentParser(max_bytes=max_bytes))
        except AgiProtocolError as exc:
            return str(exc)
        return dict(env) if env is not None else None

    def one_by_one(parser: EnvironmentParser) -> AgiEnvironment | None:
        for line in block:
            env = parser.feed_line(line)
            if env is not None:
                return env
        return None

    assert outcome(lambda parser: parser.feed_block(b"".join(block))) == outcome(one_by_one)


def test_a_reply_line_is_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reply parser reads a single-line reply's text and code once, not again in
    parse_reply (they run for every reply of every call)."""
    from ivr.agi import _parser

    decoded: list[bytes] = []
    decode = _parser._decode_line

    def counting(line: bytes) -> str:
        decoded.append(line)
        return decode(line)

    monkeypatch.setattr(_parser, "_decode_line", counting)
    reply = AgiReplyParser().feed_line(b"200 result=1 (96119)\n")
    assert reply == AgiReply(code=200, result="1", data="96119", text="result=1 (96119)")
    assert decoded == [b"200 result=1 (96119)\n"]


@settings(max_examples=300)
@given(
    st.from_regex(rb"\A200 result=(-?[0-9]{0,4})?( endpos=[0-9]{1,6})?[ \r]?\n\Z"),
)
def test_a_usual_reply_reads_as_any_reply_does(line: bytes) -> None:
    """The reply parser's shortcut for ``200 result=N [endpos=N]`` gives what the general
    parse gives, and takes only what it gives the same."""
    general = parse_reply(line)
    assert AgiReplyParser().feed_line(line) == general
    assert type(general.extras) is MappingProxyType or general.extras == {}
    # Read again, it is the same reply (shared, being immutable), and still what parse gives.
    again = AgiReplyParser().feed_line(line)
    assert again == general


def test_usual_replies_are_shared_and_bounded() -> None:
    """A usual reply read twice is one object; the table of them stays within its bound, and
    a line never seen is parsed, not taken for another."""
    from ivr.agi import _parser

    line = b"200 result=49 endpos=8000\n"
    first = AgiReplyParser().feed_line(line)
    assert AgiReplyParser().feed_line(line) is first
    assert first == parse_reply(line)
    for offset in range(_parser._MAX_USUAL_REPLIES + 10):
        reply = AgiReplyParser().feed_line(b"200 result=0 endpos=%d\n" % offset)
        assert reply is not None and reply.extras["endpos"] == str(offset)
        assert len(_parser._USUAL_REPLIES) <= _parser._MAX_USUAL_REPLIES
    assert AgiReplyParser().feed_line(b"200 result=50 endpos=8000\n") == parse_reply(
        b"200 result=50 endpos=8000\n"
    )


def test_the_c_environment_reader_is_built_and_used() -> None:
    """The package was built with its C reader of environment blocks, and uses it."""
    from ivr.agi import _parser, _speedups

    assert _parser._layout_values is _speedups.layout_values


_ENV_PREFIXES = (b"agi_network: ", b"agi_channel: ", b"agi_arg_1: ")
_ENV_LINE = st.one_of(
    st.sampled_from([b"agi_network: yes", b"agi_channel: PJSIP/a-1", b"agi_arg_1: 12345",
                     b"agi_arg_1: ", b"agi_arg_1: \xe5\xbc\xa0\xff", b"agi_channel:x",
                     b"agi_network: a: b", b"", b"agi_", b"agi_network: yes\r"]),
    st.binary(max_size=12).filter(lambda line: b"\n" not in line),
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(_ENV_LINE, max_size=5), st.booleans())
def test_both_environment_readers_agree(lines: list[bytes], blank_line: bool) -> None:
    """For any lines (with or without the closing blank line) and the layout's prefixes, the
    C reader gives what the Python reference gives."""
    from ivr.agi import _parser, _speedups

    block = b"".join(line + b"\n" for line in lines) + (b"\n" if blank_line else b"")
    expected = _parser.layout_values(block, _ENV_PREFIXES)
    assert _speedups.layout_values(block, _ENV_PREFIXES) == expected
    if expected is not None:
        assert len(expected) == len(_ENV_PREFIXES) == len(lines)
