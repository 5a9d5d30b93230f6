"""The FastAGI side of the simulated PBX, checked against recorded Asterisk 22 sessions."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ivr.simpbx import CallScript
from ivr.simpbx._agi_syntax import parse_agi_command, split_agi_args

from .conftest import read_agi_transcript


def _recorded(fixtures_dir: Path, name: str) -> dict[str, list[str]]:
    first: dict[str, list[str]] = {}
    for command, reply in read_agi_transcript(fixtures_dir / name)[1]:
        first.setdefault(command, reply)
    return first


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (
            'STREAM FILE hotline/zh/welcome "0123456789*#"',
            ("STREAM", "FILE", "hotline/zh/welcome", "0123456789*#"),
        ),
        ('STREAM FILE beep ""', ("STREAM", "FILE", "beep", "")),
        ('SET VARIABLE X "a \\"b\\" c"', ("SET", "VARIABLE", "X", 'a "b" c')),
        ('GET FULL VARIABLE "${A}|${B}"', ("GET", "FULL", "VARIABLE", "${A}|${B}")),
        ("  NOOP\t ", ("NOOP",)),
    ],
)
def test_split_agi_args(line: str, words: tuple[str, ...]) -> None:
    """Command lines split on blanks, with double quotes grouping and escaping as res_agi does."""
    assert split_agi_args(line) == words


def test_parse_agi_command_matches_longest_known_words() -> None:
    """The command name is the longest registered word sequence; unknown commands have none."""
    assert parse_agi_command("get full variable x").name == "GET FULL VARIABLE"
    assert parse_agi_command("GET VARIABLE x").name == "GET VARIABLE"
    assert parse_agi_command("BOGUS COMMAND").name == ""


async def test_env_block_follows_recorded_order_and_format(
    responder_factory, pbx_for, fixtures_dir: Path
) -> None:
    """The agi_* environment has the recorded fields in the recorded order, then the three args."""
    responder = responder_factory()
    pbx = await pbx_for(responder)
    record = await pbx.place_call(CallScript("13900001111", "曹女士", dialled="96119"))
    recorded_env, _ = read_agi_transcript(fixtures_dir / "call-legacy-96119-fastagi.txt")
    session = await responder.session()
    names = [line.split(":", 1)[0] for line in session.env_lines]
    assert names == [line.split(":", 1)[0] for line in recorded_env] + [
        "agi_arg_1",
        "agi_arg_2",
        "agi_arg_3",
    ]
    assert all(line.endswith("\n") and ": " in line for line in session.env_lines)
    env = session.env
    assert env["agi_request"] == f"agi://127.0.0.1:{pbx.agi_port}/ivr"
    assert env["agi_channel"] == record.channel and record.channel.startswith("PJSIP/carrier-")
    assert env["agi_uniqueid"] == record.uniqueid == record.linkedid
    assert (env["agi_calleridname"], env["agi_extension"], env["agi_priority"]) == (
        "曹女士",
        "96119",
        "3",
    )
    assert (env["agi_arg_1"], env["agi_arg_2"], env["agi_arg_3"]) == ("96119", record.linkedid, "")
    assert (env["agi_dnid"], env["agi_rdnis"]) == ("96119", "unknown")


async def test_forwarded_call_matches_recorded_sip_session(
    responder_factory, pbx_for, fixtures_dir: Path
) -> None:
    """A carrier-forwarded 96119 call answers the recorded SIP session's commands byte for byte."""
    recorded = _recorded(fixtures_dir, "sip-forwarded-96119-fastagi.txt")
    commands = list(recorded)[:3]
    responder = responder_factory(commands)
    pbx = await pbx_for(responder)
    script = CallScript(
        "13900001111", "曹女士", dialled="12345", forwarded_from="96119", keys=("1",), tech="SIP"
    )
    record = await pbx.place_call(script)
    session = await responder.session()
    assert session.replies == [recorded[c] for c in commands]
    assert (session.env["agi_dnid"], session.env["agi_rdnis"], session.env["agi_arg_3"]) == (
        "12345",
        "96119",
        "96119",
    )
    assert record.variables["HOTLINE_DIALED"] == "12345"


async def test_replies_match_recorded_legacy_session(
    responder_factory, pbx_for, fixtures_dir: Path
) -> None:
    """ANSWER, GET (FULL) VARIABLE, WAIT FOR DIGIT, SET VARIABLE, EXEC, NOOP, 510 and HANGUP
    replies equal the recording."""
    recorded = _recorded(fixtures_dir, "call-legacy-96119-fastagi.txt")
    commands = [
        "ANSWER", "GET VARIABLE HOTLINE_DIALED",
        'GET FULL VARIABLE "${CALLERID(num)}|${REDIRECTING(from-num)}|${CALLERID(dnid)}"',
        "WAIT FOR DIGIT 3000", 'SET VARIABLE HOTLINE_TICKET "T-1"', 'EXEC Verbose "hello from agi"',
        "NOOP", "BOGUS COMMAND", "HANGUP",
    ]
    responder = responder_factory(commands)
    pbx = await pbx_for(responder)
    record = await pbx.place_call(
        CallScript("13900001111", "Cao", dialled="96119", keys=("1",), tech="Local")
    )
    got = dict((await responder.session()).exchanges)
    for command in commands[:-1]:
        assert got[command] == recorded[command], command
    assert got["HANGUP"] == ["200 result=1", "HANGUP"]
    assert record.variables["HOTLINE_TICKET"] == "T-1"
    assert (record.agi_status, record.destination) == ("HANGUP", "hangup")


async def test_usage_errors_and_utf8_name_match_recording(
    responder_factory, pbx_for, fixtures_dir: Path
) -> None:
    """Bad syntax answers the recorded 520 usage block; CALLERID(name) comes back as UTF-8."""
    recorded = _recorded(fixtures_dir, "redirect-during-fastagi.txt")
    commands = ["ANSWER", "GET DATA", "SAY NUMBER abc", "GET VARIABLE CALLERID(name)"]
    responder = responder_factory(commands)
    pbx = await pbx_for(responder)
    await pbx.place_call(CallScript("13900001111", "曹女士"))
    assert (await responder.session()).replies == [recorded[c] for c in commands]


async def test_scripted_keys_streams_and_timeouts(responder_factory, pbx_for) -> None:
    """Digits interrupt prompts that allow them, '-' times out a wait, GET DATA collects until
    '#'."""
    commands = [
        'STREAM FILE hotline/zh/welcome "12"',  # key "-": plays to the end, not consumed
        "WAIT FOR DIGIT 5000",  # consumes "-": timeout
        'STREAM FILE hotline/zh/menu "12"',  # key "9" is no escape digit: plays to the end
        "WAIT FOR DIGIT 5000",  # gets the 9
        'STREAM FILE hotline/zh/menu "0123456789*#"',  # "2" interrupts
        "GET DATA hotline/zh/enter-id 3000 10",  # "4", "5", "#"
        "GET DATA hotline/zh/enter-id 3000 10",  # "7" then "-": timeout with a partial entry
        "WAIT FOR DIGIT 5000",  # keys exhausted: timeout
    ]
    responder = responder_factory(commands)
    pbx = await pbx_for(responder)
    record = await pbx.place_call(CallScript("13800000000", keys=("-", "9", "2", "45#", "7", "-")))
    replies = (await responder.session()).replies
    assert replies == [
        ["200 result=0 endpos=16000"],
        ["200 result=0"],
        ["200 result=0 endpos=16000"],
        ["200 result=57"],
        ["200 result=50 endpos=8000"],
        ["200 result=45"],
        ["200 result=7 (timeout)"],
        ["200 result=0"],
    ]
    assert record.prompts == (
        "hotline/zh/welcome",
        "hotline/zh/menu",
        "hotline/zh/menu",
        "hotline/zh/enter-id",
        "hotline/zh/enter-id",
    )
    assert record.commands == tuple(commands)


async def test_caller_hangs_up_mid_menu(responder_factory, pbx_for) -> None:
    """A scripted hangup answers -1 then HANGUP; later media commands get 511, variables still
    work."""
    commands = [
        "WAIT FOR DIGIT 5000",
        "WAIT FOR DIGIT 5000",
        'STREAM FILE x ""',
        "GET VARIABLE HOTLINE_DIALED",
    ]
    responder = responder_factory(commands)
    pbx = await pbx_for(responder)
    record = await pbx.place_call(CallScript("13800000000", keys=("1", "hangup")))
    replies = (await responder.session()).replies
    assert replies == [
        ["200 result=49"],
        ["200 result=-1", "HANGUP"],
        ["511 Command Not Permitted on a dead channel or intercept routine"],
        ["200 result=1 (12345)"],
    ]
    assert (record.agi_status, record.destination, record.fallback) == (
        "HANGUP",
        "abandoned-in-ivr",
        False,
    )


async def test_dial_outcomes_with_failover(responder_factory, pbx_for, fixtures_dir: Path) -> None:
    """Failed dials answer result=0 and set DIALSTATUS/HANGUPCAUSE; the answered one ends the
    call."""
    recorded = read_agi_transcript(fixtures_dir / "dial-outcomes-fastagi.txt")[1]
    commands = [cmd for cmd, _ in recorded]
    responder = responder_factory(commands)
    pbx = await pbx_for(responder)
    outcomes = {
        "Local/119@emergency-routes": "BUSY", "Local/110@emergency-routes": "CONGESTION",
        "Local/120@emergency-routes": "NOANSWER",
    }
    record = await pbx.place_call(CallScript("13700003333", "张三丰", dial_outcomes=outcomes))
    got = (await responder.session()).exchanges
    for (command, reply), (_, recorded_reply) in zip(got, recorded, strict=True):
        if "HANGUPCAUSE" not in command:  # the recording's Local channels report cause 0
            assert reply[0] == recorded_reply[0], command
    causes = [reply[0] for command, reply in got if "HANGUPCAUSE" in command]
    assert causes == [f"200 result=1 ({c})" for c in (17, 34, 19, 66, 16)]
    assert got[-3][1] == ["200 result=-1", "HANGUP"]  # the answered Dial
    assert record.dial_attempts == (
        ("Local/119@emergency-routes", "BUSY"), ("Local/110@emergency-routes", "CONGESTION"),
        ("Local/120@emergency-routes", "NOANSWER"), ("Nonexistent/119", "CHANUNAVAIL"),
        ("Local/122@emergency-routes", "ANSWER"),
    )
    assert (record.destination, record.agi_status) == ("dial:Local/122@emergency-routes", "HANGUP")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_service_falls_back_to_default_queue(pbx_for) -> None:
    """With nothing listening, AGISTATUS is FAILURE and hotline-fallback queues the caller."""
    pbx = await pbx_for(agi_port=_closed_port())
    record = await pbx.place_call(CallScript("13800000000"))
    assert (record.agi_status, record.destination, record.fallback) == (
        "FAILURE",
        "queue:hotline-agents",
        True,
    )
    assert record.variables["AGISTATUS"] == "FAILURE"


@pytest.mark.parametrize(
    ("sets", "script_options", "destination", "fallback"),
    [
        ({"HOTLINE_ROUTE": "queue", "HOTLINE_TARGET": "complaints"}, {}, "queue:complaints", False),
        (
            {"HOTLINE_ROUTE": "queue", "HOTLINE_TARGET": "complaints"},
            {"queue_outcome": "abandoned"},
            "abandoned-in-queue:complaints",
            False,
        ),
        (
            {"HOTLINE_ROUTE": "department", "HOTLINE_TARGET": "PJSIP/health-bureau"},
            {},
            "department:PJSIP/health-bureau",
            False,
        ),
        (
            {"HOTLINE_ROUTE": "department", "HOTLINE_TARGET": "PJSIP/health-bureau"},
            {"dial_outcomes": {"PJSIP/health-bureau": "BUSY"}},
            "queue:hotline-agents",
            False,
        ),
        ({"HOTLINE_ROUTE": "hangup"}, {}, "hangup", False),
        ({"HOTLINE_ROUTE": "emergency"}, {}, "hangup", False),
        ({"HOTLINE_ROUTE": "info"}, {}, "queue:hotline-agents", False),
        ({}, {}, "queue:hotline-agents", True),
        ({"HOTLINE_ROUTE": "queue"}, {}, "queue:hotline-agents", True),
    ],
)
async def test_routes_after_the_agi(
    responder_factory, pbx_for, sets, script_options, destination, fallback
) -> None:
    """The hotline-route dialplan sends the caller where HOTLINE_ROUTE/HOTLINE_TARGET say."""
    responder = responder_factory(
        [f'SET VARIABLE {name} "{value}"' for name, value in sets.items()]
    )
    pbx = await pbx_for(responder)
    record = await pbx.place_call(CallScript("13800000000", **script_options))
    assert (record.agi_status, record.destination, record.fallback) == (
        "SUCCESS",
        destination,
        fallback,
    )


async def test_many_concurrent_calls(responder_factory, pbx_for) -> None:
    """Hundreds of calls placed at once each get their own channel, ids and answers."""
    responder = responder_factory(["WAIT FOR DIGIT 5000", 'SET VARIABLE HOTLINE_ROUTE "queue"',
                                   'SET VARIABLE HOTLINE_TARGET "hotline-agents"'])
    pbx = await pbx_for(responder)
    scripts = [CallScript(f"138{n:08d}", keys=(str(n % 10),)) for n in range(300)]
    from ivr.simpbx import place_calls

    records = await place_calls(pbx, scripts)
    assert len({r.uniqueid for r in records}) == len({r.channel for r in records}) == 300
    assert all(r.destination == "queue:hotline-agents" for r in records)
    sessions = [await responder.session(n) for n in range(300)]
    digits = [s.replies[0][0] for s in sessions]
    assert sorted(digits) == sorted(f"200 result={48 + n % 10}" for n in range(300))


async def test_mset_sets_each_variable_in_order(responder_factory, pbx_for) -> None:
    """EXEC MSet sets every name=value it is given, so the route dialplan follows them."""
    responder = responder_factory(
        [
            'EXEC MSet "HOTLINE_TICKET=T-1,HOTLINE_TARGET=PJSIP/health-bureau,'
            'HOTLINE_ROUTE=department"'
        ]
    )
    pbx = await pbx_for(responder)
    record = await pbx.place_call(CallScript("13800000000"))
    assert (await responder.session()).replies == [["200 result=0"]]
    assert (record.variables["HOTLINE_TICKET"], record.variables["HOTLINE_TARGET"]) == (
        "T-1", "PJSIP/health-bureau",
    )
    assert (record.agi_status, record.destination, record.fallback) == (
        "SUCCESS", "department:PJSIP/health-bureau", False,
    )
