"""Logs: JSON lines off a terminal, the call's ids on every line, secrets never written."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import pytest
import structlog

from ivr.logs import REDACTED, BoundOnce, bind_call, call_fields, configure_logging
from ivr.simpbx import CallScript
from tests.integration.conftest import ADMIN_TOKEN, SECRET

from .conftest import Hotline

AMI_SECRET = "s3cr3t-ami-Zq81"


# Each test configures logging itself: the defaults come back afterwards.
pytestmark = pytest.mark.usefixtures("reset_logging")


@pytest.fixture
def log_stream() -> io.StringIO:
    """JSON logs at debug level into a string, the test secrets registered."""
    stream = io.StringIO()
    configure_logging(level="debug", stream=stream, secrets=(AMI_SECRET, SECRET, ADMIN_TOKEN))
    return stream


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_a_configured_secret_never_appears(log_stream: io.StringIO) -> None:
    """A secret in a message, a nested action, a repr, a traceback or a stdlib line is masked."""
    log = structlog.get_logger("ivr.test")

    class Login:
        def __repr__(self) -> str:
            return f"Login(secret={AMI_SECRET!r})"

    log.info("ami.login", action={"Action": "Login", "Username": "hotline", "Key": AMI_SECRET},
             attempt=[f"Secret: {AMI_SECRET}"], what=Login())
    log.warning(f"login refused for {AMI_SECRET}")
    try:
        raise ValueError(f"bad credentials {AMI_SECRET}")
    except ValueError:
        log.exception("ami.failed")
    logging.getLogger("panoramisk.manager").info("Adding action to awaiting list: %s",
                                                 {"secret": AMI_SECRET})
    output = log_stream.getvalue()
    assert AMI_SECRET not in output
    assert output.count(REDACTED) >= 6
    assert len(_lines(log_stream)) == 4  # every line, stdlib included, is JSON


def test_credential_keys_are_masked_whatever_their_value(log_stream: io.StringIO) -> None:
    """Keys named like secret, password, token, api_key or Authorization never show their value."""
    structlog.get_logger("ivr.test").info(
        "request", secret="x1", password="x2", admin_token="x3", api_key="x4",
        headers={"Authorization": "Bearer x5"}, ticket="T-1", line="12345",
    )
    (line,) = _lines(log_stream)
    assert [line[key] for key in ("secret", "password", "admin_token", "api_key")] == [REDACTED] * 4
    assert line["headers"] == {"Authorization": REDACTED}
    assert (line["ticket"], line["line"]) == ("T-1", "12345")


async def test_every_line_of_a_call_carries_its_ids(log_stream: io.StringIO) -> None:
    """Inside bind_call every line (structlog, stdlib, a task started there) has the call's ids."""
    log = structlog.get_logger("ivr.test")
    with bind_call(linkedid="1764000000.17", uniqueid="1764000000.18", line="96119",
                   caller="13700003333"):
        log.info("ivr.ask", menu="root")
        logging.getLogger("ivr.ami.link").warning("AMI Ping unanswered")
        await asyncio.create_task(_log_in_task())
    log.info("after.call")
    *inside, after = [line for line in _lines(log_stream) if line.get("logger") != "asyncio"]
    assert len(inside) == 3
    for line in inside:
        assert (line["linkedid"], line["uniqueid"], line["line"], line["caller"]) == (
            "1764000000.17", "1764000000.18", "96119", "13700003333"), line
    assert "linkedid" not in after and after["event"] == "after.call"


def test_a_logger_bound_once_follows_each_new_configuration() -> None:
    """BoundOnce hands out one logger while logging stays as configured, and a new one after
    configure_logging or inside structlog's capture_logs."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging(level="info", json=True, stream=first)
    log = BoundOnce("ivr.call")
    assert log() is log()
    log().info("one")
    configure_logging(level="info", json=True, stream=second)
    log().info("two")
    with structlog.testing.capture_logs() as captured:
        log().info("three")
    log().info("four")
    assert [line["event"] for line in _lines(first)] == ["one"]
    assert [line["event"] for line in _lines(second)] == ["two", "four"]
    assert [entry["event"] for entry in captured] == ["three"]


def test_a_nested_binding_gives_the_outer_values_back() -> None:
    """After an inner bind_call the outer call's values are bound again, and keys only the
    inner one bound are gone."""
    with bind_call(linkedid="outer", uniqueid="outer.1"):
        with bind_call(linkedid="inner", line="96119"):
            assert call_fields() == {"linkedid": "inner", "uniqueid": "outer.1", "line": "96119"}
        assert call_fields() == {"linkedid": "outer", "uniqueid": "outer.1"}
    assert call_fields() == {}


async def _log_in_task() -> None:
    structlog.get_logger("ivr.test").info("in.task")


def test_json_unless_a_terminal_or_asked() -> None:
    """A stream that is not a terminal gets JSON; json=False gets readable key=value lines."""
    stream = io.StringIO()
    configure_logging(stream=stream)
    structlog.get_logger().info("hello", line="12345")
    assert json.loads(stream.getvalue())["line"] == "12345"
    readable = io.StringIO()
    configure_logging(stream=readable, json=False)
    structlog.get_logger().info("hello", line="12345")
    assert "line=12345" in readable.getvalue() and not readable.getvalue().startswith("{")


async def test_a_real_call_logs_no_secret(log_stream: io.StringIO, hotline: Hotline) -> None:
    """A debug-level run (AMI login included) never writes the AMI secret or admin token."""
    await hotline.call(CallScript(caller_number="13900001111", keys=("1",)))
    await hotline.http_get("/tickets")
    output = log_stream.getvalue()
    assert output  # the run did log
    assert SECRET not in output and ADMIN_TOKEN not in output


async def test_a_real_call_carries_its_linkedid_on_every_line(
    log_stream: io.StringIO, hotline: Hotline
) -> None:
    """Every line the call logs (ivr., call., emergency.) names its Linkedid and line."""
    record, _ = await hotline.call(CallScript(caller_number="13900001111", keys=("9", "2")))
    call_lines = [
        line for line in _lines(log_stream)
        if line.get("uniqueid") or str(line["event"]).startswith(("call.", "ivr.", "emergency."))
    ]
    assert any(line["event"] == "call.summary" for line in call_lines)
    for line in call_lines:
        assert (line.get("linkedid"), line.get("line")) == (record.linkedid, "12345"), line


def test_redaction_masks_only_what_it_must_and_keeps_the_rest() -> None:
    """A secret in a nested list or under a credential key is masked; other fields stay as given."""
    from ivr.logs import RedactSecrets

    redact = RedactSecrets([AMI_SECRET])
    path = ["root", "complaint"]
    plain = {"event": "call.summary", "path": path, "seconds": 0.2, "line": "12345"}
    assert redact(None, "info", plain) is plain  # nothing to mask: the same dict goes on
    masked = redact(None, "info", {
        "event": "ami.login", "args": ["user", f"pw={AMI_SECRET}"], "Secret": "x", "path": path,
    })
    assert list(masked) == ["event", "args", "Secret", "path"]
    assert masked["args"] == ["user", f"pw={REDACTED}"] and masked["Secret"] == REDACTED
    assert masked["path"] is path


def test_a_known_innocent_line_is_checked_without_a_call_per_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every line goes through redaction: once its keys are known innocent, a line of texts,
    numbers and lists of texts is checked in one pass (no method call per field), and a
    secret in one of its texts, or a credential key, is still masked."""
    from ivr.logs import RedactSecrets

    redact = RedactSecrets([AMI_SECRET])
    line = {"event": "call.summary", "route": "queue", "path": ["root"], "seconds": 0.2,
            "ticket": None}
    assert redact(None, "info", dict(line)) == line  # learns the keys
    calls: list[object] = []
    field = RedactSecrets._field

    def counting(self: RedactSecrets, key: object, value: Any) -> Any:
        calls.append(key)
        return field(self, key, value)

    monkeypatch.setattr(RedactSecrets, "_field", counting)
    assert redact(None, "info", dict(line)) == line
    assert calls == []
    leaked = redact(None, "info", {**line, "route": f"x{AMI_SECRET}y"})
    assert leaked == {**line, "route": f"x{REDACTED}y"}
    in_path = redact(None, "info", {**line, "path": ["root", AMI_SECRET], "token": "t"})
    assert in_path == {**line, "path": ["root", REDACTED], "token": REDACTED}
