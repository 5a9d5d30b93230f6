"""structlog set-up: JSON lines for machines, readable lines on a terminal, secrets never shown.

Per-call context (Linkedid, Uniqueid, line, caller) is bound with :func:`bind_call` in
contextvars, so every line logged inside a call's task carries it, whoever logs it.
Lines from the standard library (panoramisk, asyncio, our AMI link) go through the same
processors: the same format, the same context and the same redaction.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["REDACTED", "RedactSecrets", "bind_call", "configure_logging"]

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

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        """Return ``event_dict`` with every credential masked."""
        # This runs for every line: the common field (a plain value under a known, innocent
        # key) costs one dict lookup and one type test, and the dict is rebuilt only if a
        # field had to change.
        changed: dict[str, Any] | None = None
        secret_keys = self._secret_keys
        for key, value in event_dict.items():
            # What _field does, inlined for the usual field (a text or a number under a key
            # already known to be innocent): no call per field.
            if secret_keys.get(key) is False:
                cls = value.__class__
                if cls is str:
                    masked = self._scrub_text(value)
                elif cls in _PLAIN:
                    continue
                else:
                    masked = self._scrub(value)
            else:
                masked = self._field(key, value)
            if masked is not value:
                if changed is None:
                    changed = {}
                changed[key] = masked
        if changed is None:
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


class _Bound:
    """Fields bound to the context for a ``with`` block, the previous values back after it.

    What structlog's ``bound_contextvars`` does, by resetting the variables it set with their
    tokens, without copying the whole context on entry and rebinding it on exit (twice per
    call, that was ~3 % of the service's CPU).
    """

    __slots__ = ("_fields", "_tokens")

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields
        self._tokens: Mapping[str, contextvars.Token[Any]] = {}

    def __enter__(self) -> None:
        self._tokens = structlog.contextvars.bind_contextvars(**self._fields)

    def __exit__(self, *exc_info: object) -> None:
        structlog.contextvars.reset_contextvars(**self._tokens)


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
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    redact = RedactSecrets(secrets)
    structlog.configure(
        processors=[
            *_enrich(),
            # Tracebacks become text here, before redaction, so a secret in one is masked.
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # WriteLogger: the same line and flush as PrintLogger, without print()'s overhead.
        logger_factory=structlog.WriteLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_enrich(), structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,
                renderer,
            ],
        )
    )
    logging.basicConfig(level=numeric, handlers=[handler], force=True)


def _enrich() -> Iterator[Processor]:
    yield structlog.contextvars.merge_contextvars
    yield structlog.processors.add_log_level
    yield structlog.processors.TimeStamper(fmt="iso", utc=True)
