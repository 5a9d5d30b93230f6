"""structlog set-up: JSON lines for machines, readable lines on a terminal.

Per-call context (call id, line, caller) is bound on the call's logger; contextvars are merged
so anything logged inside a call's task carries it too.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure_logging(*, level: str = "info", json: bool | None = None, stream: TextIO | None = None) -> None:
    """Route structlog (and stdlib logging, e.g. panoramisk's) to ``stream``.

    ``json=None`` picks JSON unless the stream is a terminal.
    """
    out = stream if stream is not None else sys.stderr
    as_json = not out.isatty() if json is None else json
    numeric = logging.getLevelName(level.upper())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=numeric, stream=out, format="%(levelname)s %(name)s %(message)s", force=True)
