"""The logging fast paths write exactly what structlog's own processors wrote.

ivr.logs replaces structlog's merge_contextvars, TimeStamper, format_exc_info and
JSONRenderer with cheaper equivalents and gives RedactSecrets a one-pass check for the usual
line: these tests compare them, byte for byte, with the originals.
"""

from __future__ import annotations

import contextvars
import io
import json
import logging
import math
import random
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
import structlog

from ivr.logs import (
    REDACTED,
    RedactSecrets,
    _json_renderer,
    _merge_contextvars,
    _utc_timestamper,
    bind_call,
    call_fields,
    configure_logging,
)

SECRET = "s3cr3t-ami-Zq81"
TOKEN = "adm1n\"tok\\en"  # JSON escapes both quote and backslash: masked all the same
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# Each test configures logging itself: the defaults come back afterwards.
pytestmark = pytest.mark.usefixtures("reset_logging")


# --- timestamps -------------------------------------------------------------------------


def _instants() -> list[int]:
    """Nanosecond instants: whole seconds, .000000 after flooring, second and day and year
    rollovers, a leap day, far past and future, random ones, and time going backwards."""
    base = 1_795_382_136 * 10**9  # 2026-11-22T21:15:36Z
    edges = [
        0, 1, 999, 1_000, 999_999, 1_000_000, 10**9 - 1, 10**9, 10**9 + 999,
        base, base + 1, base + 999, base + 1_000, base + 999_999_999, base + 10**9,
        base + 123_456_789, base - 1, base - 1_000, base + 500_000_000,
        951_782_400 * 10**9 - 1, 951_782_400 * 10**9,  # 2000-02-29T00:00:00Z
        1_704_067_199 * 10**9 + 999_999_999, 1_704_067_200 * 10**9,  # 2024 new year
        4_102_444_800 * 10**9 + 7_000,  # 2100
    ]
    rng = random.Random(12345)
    walk = [base]
    for _ in range(3000):  # lines close together: many in one second, some rollovers
        walk.append(walk[-1] + rng.choice((1, 999, 1_000, 123_457, 999_999, 3_000_000,
                                           333_333_333, -5_000)))
    spread = [rng.randrange(0, 4_102_444_800 * 10**9) for _ in range(2000)]
    zeros = [rng.randrange(0, 4_102_444_800) * 10**9 + rng.randrange(1_000) for _ in range(200)]
    return edges + walk + spread + zeros + edges[::-1]


def _structlog_stamps(monkeypatch: pytest.MonkeyPatch, instants: Iterable[int]) -> list[str]:
    """What structlog's TimeStamper(fmt="iso", utc=True) writes when datetime.now gives the
    instant, floored to microseconds as datetime.now does."""
    stamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    current: list[datetime] = []
    clock = SimpleNamespace(now=lambda tz: current[-1])
    monkeypatch.setattr(structlog.processors, "datetime",
                        SimpleNamespace(datetime=clock, timezone=timezone))
    stamps = []
    for ns in instants:
        current.append(_EPOCH + timedelta(microseconds=ns // 1000))
        stamps.append(stamper(None, "info", {})["timestamp"])
    return stamps


def test_timestamps_are_byte_identical_to_structlogs(monkeypatch: pytest.MonkeyPatch) -> None:
    """One stamper, fed instants in order (its per-second cache in use), writes for each
    exactly what structlog's stamper writes, .000000 and rollovers included."""
    instants = _instants()
    clock_values = iter(instants)
    stamp = _utc_timestamper(lambda: next(clock_values))
    ours = [stamp(None, "info", {})["timestamp"] for _ in instants]
    expected = _structlog_stamps(monkeypatch, instants)
    assert ours == expected
    assert "1970-01-01T00:00:00Z" in ours and "2000-02-29T00:00:00Z" in ours
    assert "2026-11-22T21:15:36.000001Z" in ours and "2026-11-22T21:15:35.999999Z" in ours


def test_datetime_now_floors_the_clock_the_stamper_reads() -> None:
    """datetime.now (structlog's source) and time.time_ns (ours) are one clock, floored to
    microseconds: structlog's stamp taken between two of ours lies between them."""
    stamp = _utc_timestamper()
    theirs = structlog.processors.TimeStamper(fmt="iso", utc=True)
    pattern = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")
    for _ in range(2000):
        before = stamp(None, "info", {})["timestamp"]
        middle = theirs(None, "info", {})["timestamp"]
        after = stamp(None, "info", {})["timestamp"]
        assert pattern.fullmatch(before) and pattern.fullmatch(after), (before, after)
        first, last = datetime.fromisoformat(before), datetime.fromisoformat(after)
        if first <= last:  # else the system clock was set back meanwhile: nothing to learn
            assert first <= datetime.fromisoformat(middle) <= last, (before, middle, after)


# --- JSON -------------------------------------------------------------------------------


class _Thing:
    def __repr__(self) -> str:
        return "<Thing 市民 \"quoted\">"


class _Structlogged:
    def __structlog__(self) -> dict[str, object]:
        return {"as": "structlog wants", "n": [1, 2]}


class _Tagged(str):
    pass


_VARIED: dict[str, Any] = {
    "event": "call.summary",
    "path": ["root", "root:2", "complaint", "complaint:1"],
    "text": "市民热线 12345 “投诉” — 谢谢 😀",
    "controls": "tab\tnew\nline\rquote\"back\\slash\x00\x1f\u2028",
    "ints": [0, -1, 2**70, True, False],
    "floats": [0.1, 0.012, -0.0, 1e-7, 1e22, 123456789.125, math.pi, float("nan"),
               float("inf"), float("-inf")],
    "nested": {"a": [1, 2.5, {"b": None, "c": ("x", "y")}], "中文": {"深": ["层"]}},
    "tuple": ("t", 1, None),
    "empty": [[], {}, (), ""],
    "thing": _Thing(),
    "structlogged": _Structlogged(),
    "error": ValueError("bad 输入"),
    "a_set": {"only"},
    "tagged": _Tagged("sub"),
    "none": None,
    "flag": True,
    "seconds": 0.012,
    "level": "info",
    "timestamp": "2026-11-23T01:47:38.123456Z",
}


def test_json_reads_as_structlogs_renderer() -> None:
    """The same values as JSONRenderer(ensure_ascii=False) writes, key for key and in order:
    text in Chinese, escapes, floats, big ints, nested lists and dicts, objects through
    __structlog__ or their repr; a float that is not a number reads as null (valid JSON)."""
    ours, theirs = _json_renderer(), structlog.processors.JSONRenderer(ensure_ascii=False)
    finite = {**_VARIED, "floats": [f for f in _VARIED["floats"] if math.isfinite(f)]}
    for event_dict in (finite, {}, {"event": "x"}, {"nested": finite}):
        line = ours(None, "info", dict(event_dict))
        assert "\n" not in line
        read, expected = json.loads(line), json.loads(theirs(None, "info", dict(event_dict)))
        assert read == expected and list(read) == list(expected)
    assert "市民热线" in ours(None, "info", dict(_VARIED))  # not \u-escaped
    assert json.loads(ours(None, "info", {"floats": [float("nan"), -math.inf]})) == {
        "floats": [None, None]}


def test_json_fails_as_structlogs_renderer_on_a_cycle() -> None:
    """A structure that contains itself raises the same error, and the next line is fine."""
    ours, theirs = _json_renderer(), structlog.processors.JSONRenderer(ensure_ascii=False)
    cycle: list[object] = []
    cycle.append(cycle)
    errors = []
    for render in (ours, theirs):
        with pytest.raises(ValueError, match="Circular reference") as caught:
            render(None, "info", {"cycle": cycle})
        errors.append(str(caught.value))
    assert errors[0] == errors[1]
    assert json.loads(ours(None, "info", {"list": [1]})) == {"list": [1]}


# --- context ----------------------------------------------------------------------------


def test_context_merges_as_structlogs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The call's ids (bind_call) first, then the same keys, values and order as structlog's
    merge_contextvars: a key given on the line wins, an unbound key is left out, a context
    variable not structlog's is ignored."""
    other: contextvars.ContextVar[str] = contextvars.ContextVar("not_structlog", default="x")

    def both(event_dict: dict[str, Any]) -> dict[str, Any]:
        expected = dict(event_dict)
        for key, value in call_fields().items():
            expected.setdefault(key, value)
        expected = structlog.contextvars.merge_contextvars(None, "info", expected)
        merged = _merge_contextvars(None, "info", dict(event_dict))
        assert list(merged.items()) == list(expected.items())
        return merged

    both({"event": "empty context"})
    token = other.set("theirs")
    with bind_call(linkedid="1.1", uniqueid="1.2", line="12345", caller="13800001234",
                   line_source="agi_arg"):
        assert both({"event": "call"})["line_source"] == "agi_arg"
        assert both({"event": "line given", "line": "96119", "linkedid": None})["line"] == "96119"
        structlog.contextvars.bind_contextvars(uniqueid="structlog's")
        assert both({"event": "both bound"})["uniqueid"] == "1.2"  # the call's wins
        structlog.contextvars.unbind_contextvars("uniqueid")
        structlog.contextvars.bind_contextvars(extra=[1, 2], structlog_x="odd")
        structlog.contextvars.unbind_contextvars("caller")  # bound to Ellipsis: left out
        both({"event": "after unbind"})
        structlog.contextvars.unbind_contextvars("extra", "structlog_x")
    other.reset(token)
    both({"event": "after the call"})


# --- redaction --------------------------------------------------------------------------


class _Login:
    def __repr__(self) -> str:
        return f"Login(secret={SECRET!r})"


def _learned(keys: Iterable[str]) -> RedactSecrets:
    """A RedactSecrets that has already seen lines with these keys (the fast path on)."""
    redact = RedactSecrets([SECRET, TOKEN, "12345678"])
    redact(None, "info", dict.fromkeys(keys, "plain"))
    return redact


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        (f"pw={SECRET}!", f"pw={REDACTED}!"),
        (f"{TOKEN} then {SECRET}", f"{REDACTED} then {REDACTED}"),
        (["a", f"b{SECRET}", "c"], ["a", f"b{REDACTED}", "c"]),
        (("a", f"b{SECRET}"), ["a", f"b{REDACTED}"]),
        ([1, f"x{SECRET}"], [1, f"x{REDACTED}"]),
        ({"k": f"v{SECRET}", "n": 1}, {"k": f"v{REDACTED}", "n": 1}),
        ({"Authorization": "Bearer nothing known"}, {"Authorization": REDACTED}),
        ([{"password": "p"}], [{"password": REDACTED}]),
        ({f"{SECRET}"}, [REDACTED]),
        (_Login(), f"Login(secret='{REDACTED}')"),
        (_Tagged(f"x{SECRET}"), f"x{REDACTED}"),
        (12345678, 12345678),  # a number is no text: not masked, as before
    ],
)
def test_a_secret_is_masked_wherever_it_is_on_a_learned_line(value: Any, masked: Any) -> None:
    """Once the line's keys are known innocent (the one-pass check), a secret in a text, a
    list or tuple item, a dict value, a set, a repr or a str subclass is still masked, and a
    value under a credential key is masked inside a dict."""
    redact = _learned(["event", "detail"])
    line = redact(None, "info", {"event": "ami.login", "detail": value})
    assert line == {"event": "ami.login", "detail": masked}


def test_a_credential_key_is_masked_on_a_learned_line() -> None:
    redact = _learned(["event", "route"])
    line = redact(None, "info", {"event": "x", "route": "queue", "api_key": "k", "Secret": ""})
    assert line == {"event": "x", "route": "queue", "api_key": REDACTED, "Secret": ""}


def test_the_usual_line_goes_on_unchanged_and_uncopied() -> None:
    """No secret, known keys: the same dict comes back; a secret across two fields (the
    texts are searched joined) masks nothing, as no field holds it."""
    redact = RedactSecrets([SECRET, "b\nc"])
    line = {"event": "call.summary", "path": ["root", "a", "b"], "route": "c", "seconds": 0.2,
            "ticket": None, "flag": True, "count": 3}
    assert redact(None, "info", dict(line)) == line  # learns the keys
    same = dict(line)
    assert redact(None, "info", same) is same
    assert redact(None, "info", {"path": ["a", "b"], "route": "c"}) == {
        "path": ["a", "b"], "route": "c"}


def test_the_one_pass_check_agrees_with_the_careful_way() -> None:
    """For many lines, learned or not, the fast path gives what field-by-field masking gives."""
    redact = RedactSecrets([SECRET, TOKEN])
    values: list[Any] = [
        "plain", f"has {SECRET}", TOKEN, 1, 2.5, None, True, ["a", "b"], ["a", SECRET],
        ("x", 1), [], {"k": "v"}, {"token": "t"}, _Login(), _Thing(), {"a"}, _Tagged("s"),
    ]
    rng = random.Random(7)
    keys = ["event", "route", "path", "detail", "password", "line"]
    for _ in range(500):
        line = {key: rng.choice(values) for key in rng.sample(keys, rng.randrange(1, 5))}
        assert redact(None, "info", dict(line)) == redact._mask(dict(line)), line


def test_a_usual_line_costs_no_call_per_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every line goes through redaction: the usual one (known keys; texts, numbers, lists
    of texts; no secret) calls no method per field."""
    redact = RedactSecrets([SECRET])
    line = {"event": "call.summary", "path": ["root", "complaint"], "route": "queue",
            "seconds": 0.2, "ticket": None}
    assert redact(None, "info", dict(line)) == line  # learns the keys
    calls: list[object] = []
    monkeypatch.setattr(RedactSecrets, "_field", lambda *args: calls.append(args))
    monkeypatch.setattr(RedactSecrets, "_scrub", lambda *args: calls.append(args))
    assert redact(None, "info", dict(line)) == line
    assert calls == []


# --- whole lines, as configure_logging writes them --------------------------------------


def _configure_stock(stream: io.StringIO, secrets: Iterable[str]) -> None:
    """configure_logging as it was, with structlog's own processors (after the call's ids,
    which bind_call keeps in a variable of its own): the reference."""
    def merge_call(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        for key, value in call_fields().items():
            event_dict.setdefault(key, value)
        return event_dict

    def enrich() -> list[Any]:
        return [merge_call, structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True)]

    redact = RedactSecrets(secrets)
    renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    structlog.configure(
        processors=[*enrich(), structlog.processors.format_exc_info, redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*enrich(), structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, redact, renderer],
    ))
    logging.basicConfig(level=logging.DEBUG, handlers=[handler], force=True)


_THING, _LOGIN = _Thing(), _Login()


def _emit() -> None:
    """Lines of every kind, structlog's and the standard library's."""
    log = structlog.get_logger("ivr.call").bind()
    with bind_call(linkedid="1795382136.123", uniqueid="1795382136.124", line="12345",
                   caller="13800001234", line_source="agi_arg"):
        log.info("call.summary", path=["root", "root:2", "complaint"], route="queue",
                 target="complaints", reason="key", disposition="agent",
                 ticket="T-1795382136.123", seconds=0.012)
        log.info("中文", **{k: v for k, v in _VARIED.items()
                          if k not in ("event", "level", "timestamp")})
        log.warning("secret.inside", msg=f"pw={SECRET}", items=["a", f"b{SECRET}"],
                    d={"k": f"v{SECRET}"}, password="p", what=_LOGIN, thing=_THING)
        log.debug("ivr.ask", menu="root", prompts=["welcome", "menu"], line="96119")
        try:
            raise ValueError(f"bad credentials {SECRET}")
        except ValueError:
            log.exception("ami.failed", attempt=2)
        log.error("not.raised", exc_info=False)
        stdlib = logging.getLogger("panoramisk.manager")
        stdlib.info("Adding action to awaiting list: %s", {"secret": SECRET, "n": 1})
        stdlib.warning("plain 标准库 line")
        try:
            raise ZeroDivisionError(f"inside {SECRET}")
        except ZeroDivisionError:
            stdlib.exception("stdlib failure")
    log.info("after.call", x=1)


_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?Z")


def _lines(text: str) -> list[str]:
    return text.split("\n")[:-1]  # not splitlines(): a value may hold U+2028


def _lines_without_time(text: str) -> list[list[tuple[str, Any]]]:
    """Each line's keys and values in order, its timestamp checked and left out."""
    read = [json.loads(line) for line in _lines(text)]
    assert all(_TIMESTAMP.fullmatch(line.pop("timestamp")) for line in read), text
    return [list(line.items()) for line in read]


def test_configured_lines_read_as_structlogs_chain() -> None:
    """Every line configure_logging writes (context, levels, tracebacks, redaction, stdlib
    records) holds what structlog's own processors wrote, key for key and in order, the time
    aside; and twice over, so the second round runs with every cache warm."""
    secrets = (SECRET, TOKEN)
    ours = io.StringIO()
    configure_logging(level="debug", json=True, stream=ours, secrets=secrets)
    _emit()
    _emit()
    stock = io.StringIO()
    _configure_stock(stock, secrets)
    _emit()
    _emit()
    assert _lines_without_time(ours.getvalue()) == _lines_without_time(stock.getvalue())
    assert SECRET not in ours.getvalue() and TOKEN not in ours.getvalue()
    assert len(_lines(ours.getvalue())) == 2 * 10
    for line in _lines(ours.getvalue()):
        json.loads(line)


def test_console_lines_are_structlogs_console_lines() -> None:
    """On a terminal the lines are ConsoleRenderer's, with our stamper's time."""
    ours = io.StringIO()
    configure_logging(level="info", json=False, stream=ours)
    structlog.get_logger().info("hello", line="12345")
    (line,) = ours.getvalue().splitlines()
    stamp, rest = line.split(" ", 1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", stamp)
    assert rest.split() == ["[info", "]", "hello", "line=12345"]
