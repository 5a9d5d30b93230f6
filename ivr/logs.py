"""structlog set-up: JSON lines for machines, readable lines on a terminal, secrets never shown.

Per-call context (Linkedid, Uniqueid, line, caller) is bound with :func:`bind_call` in
contextvars, so every line logged inside a call's task carries it, whoever logs it.
Lines from the standard library (panoramisk, asyncio, our AMI link) go through the same
processors: the same format, the same context and the same redaction.
"""

from __future__ import annotations

import contextvars
import json as jsonlib
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "REDACTED",
    "BoundOnce",
    "RedactSecrets",
    "bind_call",
    "bind_call_fields",
    "call_fields",
    "configure_logging",
]

REDACTED = "[redacted]"

# Keys whose value is a credential whatever it holds: AMI "Secret", "password", "token",
# "api_key", an HTTP "Authorization" header, "credentials" ...
_SECRET_KEY = re.compile(
    r"secret|passw(?:or)?d|token|api[-_]?key|authori[sz]ation|credential", re.IGNORECASE
)
_PLAIN = (int, float, bool, type(None))


class RedactSecrets:
    """A structlog processor that masks credentials before anything is rendered.

    Masks the value of every key that names a credential, and every occurrence of a known
    secret (the AMI secret, the admin token ...) inside any value: a secret quoted in an
    error message, an AMI action's repr or a traceback is masked as well.
    """

    # Distinct keys remembered as credential or not: log keys are a small fixed set in
    # practice, the bound only guards against keys made from data.
    _KEY_CACHE_SIZE = 1024

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first: a secret that contains another is masked whole, not half.
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        self._secret_keys: dict[str, bool] = {}
        self._innocent_keys: set[str] = set()  # the keys in _secret_keys known innocent

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        """Return ``event_dict`` with every credential masked."""
        # This runs for every line. The usual line (keys known innocent, values texts,
        # numbers or lists of texts) is checked in one pass with no call per field, and its
        # texts searched for the secrets all at once; any other line goes the careful way.
        if not self._innocent_keys.issuperset(event_dict):
            return self._mask(event_dict)
        texts: list[str] = []
        keep = texts.append
        for value in event_dict.values():
            cls = type(value)
            if cls is str:
                keep(value)
            elif cls is list or cls is tuple:
                try:
                    keep("\n".join(value))
                except TypeError:  # not texts only
                    return self._mask(event_dict)
            elif cls not in _PLAIN:
                return self._mask(event_dict)
        # A secret in none of the texts joined is in no text (one across a joint only
        # sends the line the careful way).
        text = "\n".join(texts)
        for secret in self._secrets:
            if secret in text:
                return self._mask(event_dict)
        return event_dict

    def _mask(self, event_dict: EventDict) -> EventDict:
        changed: dict[str, Any] = {}
        for key, value in event_dict.items():
            masked = self._field(key, value)
            if masked is not value:
                changed[key] = masked
        if not changed:
            return event_dict
        return {key: changed.get(key, value) for key, value in event_dict.items()}

    def _is_secret_key(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        known = self._secret_keys.get(key)
        if known is None:
            known = _SECRET_KEY.search(key) is not None
            if len(self._secret_keys) < self._KEY_CACHE_SIZE:
                self._secret_keys[key] = known
                if not known:
                    self._innocent_keys.add(key)
        return known

    def _field(self, key: object, value: Any) -> Any:
        if self._is_secret_key(key) and value not in (None, ""):
            return REDACTED
        return self._scrub(value)

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._scrub_text(value)
        if isinstance(value, _PLAIN):
            return value
        if isinstance(value, Mapping):
            return {key: self._field(key, item) for key, item in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            items = [self._scrub(item) for item in value]
            # Unchanged lists and tuples go on as they are (the JSON is the same); a set
            # becomes a list, as JSON has no sets.
            if isinstance(value, (list, tuple)) and all(
                new is old for new, old in zip(items, value, strict=True)
            ):
                return value
            return items
        # Any other object is rendered through its repr: mask the secret there too.
        text = repr(value)
        scrubbed = self._scrub_text(text)
        return value if scrubbed == text else scrubbed

    def _scrub_text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


class BoundOnce:
    """``structlog.get_logger(name).bind()``, made again only when logging is configured anew.

    A logger from ``get_logger`` is a lazy proxy that builds a logger for every method called
    on it, and ``bind()`` builds two; a bound logger of an empty context changes no more once
    made (``bind`` on it makes another), so one serves every call until ``structlog.configure``
    (``configure_logging``, ``structlog.testing.capture_logs``) gives new processors.
    """

    __slots__ = ("_made", "_made_for", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._made: Any = None
        self._made_for: tuple[object, ...] = ()

    def __call__(self) -> Any:
        """The bound logger for the configuration in force."""
        config = structlog.get_config()
        processors, factory = config["processors"], config["logger_factory"]
        wrapper, context = config["wrapper_class"], config["context_class"]
        known = self._made_for
        if (
            known
            and known[0] is processors
            and known[1] is factory
            and known[2] is wrapper
            and known[3] is context
        ):
            return self._made
        self._made = structlog.get_logger(self._name).bind()
        self._made_for = (processors, factory, wrapper, context)
        return self._made


def bind_call(
    *,
    linkedid: str,
    uniqueid: str | None = None,
    line: str | None = None,
    caller: str | None = None,
    **extra: str,
) -> AbstractContextManager[None]:
    """Bind a call's ids to every log line inside the ``with`` block (contextvars).

    ``with bind_call(linkedid=..., uniqueid=..., line="96119", caller=...):`` — tasks started
    inside inherit the binding; on exit the previous values come back.
    """
    fields = {"linkedid": linkedid, "uniqueid": uniqueid, "line": line, "caller": caller, **extra}
    return _Bound({key: value for key, value in fields.items() if value is not None})


def bind_call_fields(**fields: str) -> None:
    """Add ``fields`` to the call's ids in the current context, for good: what a task does
    in its own context (a copy), which ends with it."""
    _CALL_FIELDS.set(_with_call_fields(fields))


def _with_call_fields(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """The call's ids bound now, with ``fields`` added (a new dict: never changed in place)."""
    outer = _CALL_FIELDS.get()
    return {**outer, **fields} if outer else fields


def call_fields() -> Mapping[str, Any]:
    """The call's ids bound in the current context."""
    return _CALL_FIELDS.get()


#: The call's ids (Linkedid, Uniqueid, line, caller ...), all in one context variable: binding
#: them is one set and one reset, where a variable per key (structlog's bind_contextvars)
#: cost ten times as much. Never changed in place: a binding makes a new dict.
_CALL_FIELDS: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "hotline_call_fields", default=MappingProxyType({})
)


class _Bound:
    """Fields bound to the context for a ``with`` block, the previous values back after it."""

    __slots__ = ("_fields", "_token")

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields
        self._token: contextvars.Token[Mapping[str, Any]] | None = None

    def __enter__(self) -> None:
        self._token = _CALL_FIELDS.set(_with_call_fields(self._fields))

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _CALL_FIELDS.reset(self._token)
            self._token = None


def configure_logging(
    *,
    level: str = "info",
    json: bool | None = None,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Route structlog and stdlib logging (e.g. panoramisk's) to ``stream``.

    ``json=None`` picks JSON unless the stream is a terminal. ``secrets`` are values that must
    never be written (AMI secrets, the admin token): each is masked wherever it appears.
    """
    out = stream if stream is not None else sys.stderr
    as_json = not out.isatty() if json is None else json
    numeric = logging.getLevelName(level.upper())
    renderer: Processor = (
        _json_renderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    redact = RedactSecrets(secrets)
    structlog.configure(
        processors=[
            *_enrich(),
            # Tracebacks become text here, before redaction, so a secret in one is masked.
            _format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # WriteLogger: the same line and flush as PrintLogger, without print()'s overhead;
        # one for every bound logger (a call binds one), not one made (and its file's lock
        # looked up) each time.
        logger_factory=_SharedLogger(structlog.WriteLogger(out)),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_enrich(), structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _format_exc_info,
                redact,
                renderer,
            ],
        )
    )
    logging.basicConfig(level=numeric, handlers=[handler], force=True)


class _SharedLogger:
    """A structlog logger factory that gives every logger the same one."""

    __slots__ = ("_logger",)

    def __init__(self, logger: structlog.WriteLogger) -> None:
        self._logger = logger

    def __call__(self, *_args: object) -> structlog.WriteLogger:
        return self._logger


def _format_exc_info(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """structlog's ``format_exc_info``, not called for the usual line, which has no exc_info."""
    if "exc_info" in event_dict:
        return structlog.processors.format_exc_info(logger, method, event_dict)
    return event_dict


def _json_renderer() -> Processor:
    """JSON lines by orjson: the same values as structlog's ``JSONRenderer(ensure_ascii=False)``
    (UTF-8 text, other objects by their ``__structlog__()`` or ``repr()``), written without
    spaces. What orjson refuses (an integer past 64 bits, a key that is not text) goes to the
    standard library's encoder, so no line is lost."""
    fallback = structlog.processors._json_fallback_handler
    dumps = orjson.dumps
    encode = jsonlib.JSONEncoder(ensure_ascii=False, default=fallback).encode

    def render(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> str:
        try:
            return dumps(event_dict, default=fallback).decode()
        except orjson.JSONEncodeError:
            return encode(event_dict)

    return render


def _enrich() -> Iterator[Processor]:
    yield _merge_contextvars
    yield structlog.processors.add_log_level
    yield _utc_timestamper()


# Each context variable's log key: "linkedid" for structlog's "structlog_linkedid", None for
# a variable that is not structlog's (asyncio's, a library's).
_CONTEXT_KEYS: dict[contextvars.ContextVar[Any], str | None] = {}
_CONTEXT_KEYS_SIZE = 1024  # variables are made once each: this only guards against misuse
_PREFIX = structlog.contextvars.STRUCTLOG_KEY_PREFIX


def _merge_contextvars(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """The call's ids (:func:`bind_call`), then what structlog's ``merge_contextvars`` adds
    (the same keys in the same order), each variable's name read once rather than on every
    line. A key given on the line wins over both, the call's over structlog's."""
    setdefault = event_dict.setdefault
    for field, bound in _CALL_FIELDS.get().items():
        setdefault(field, bound)
    keys = _CONTEXT_KEYS
    for var, value in contextvars.copy_context().items():
        try:
            key = keys[var]
        except KeyError:
            name = var.name
            key = name[len(_PREFIX) :] if name.startswith(_PREFIX) else None
            if len(keys) < _CONTEXT_KEYS_SIZE:
                keys[var] = key
        if key is not None and value is not Ellipsis:
            setdefault(key, value)
    return event_dict


def _utc_timestamper(clock: Callable[[], int] = time.time_ns) -> Processor:
    """structlog's ``TimeStamper(fmt="iso", utc=True)``, the same text for the same instant
    (``2026-11-23T01:47:38.123456Z``, no fraction at .000000), the date and time of day
    formatted once a second rather than for every line.

    ``clock`` gives nanoseconds since the epoch: ``datetime.now`` reads the same clock and
    floors it to microseconds, as done here.
    """
    cache = (-1, "")  # (a second since the epoch, its "YYYY-MM-DDTHH:MM:SS")

    def stamp(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        nonlocal cache
        second, micro = divmod(clock() // 1000, 1_000_000)
        cached, prefix = cache  # read once: another thread may replace it
        if second != cached:
            # isoformat() of a whole second in UTC: "YYYY-MM-DDTHH:MM:SS+00:00".
            prefix = datetime.fromtimestamp(second, UTC).isoformat()[:19]
            cache = (second, prefix)
        # isoformat() writes no fraction at .000000; "%" is cheaper here than an f-string.
        event_dict["timestamp"] = "%s.%06dZ" % (prefix, micro) if micro else prefix + "Z"  # noqa: UP031
        return event_dict

    return stamp
