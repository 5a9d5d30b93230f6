"""What the benchmark's child processes share: core pinning, the event loop, the handshake.

A child prints one JSON line (its ports) on stdout once it serves, then runs until its stdin
closes: the parent ends it by closing the pipe, never by a signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import sys
from collections.abc import Coroutine
from typing import Any


def pin_to_core(core: int | None) -> list[int]:
    """Run this process (and every thread it starts later) on ``core``; the cores it may use.

    The request is checked against the machine's cores, not this process's current affinity:
    a child inherits its parent's pinning, and must still be able to move to its own core.
    A core the machine lacks (or an affinity refused) leaves the process where it is.
    """
    if core is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {core})
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def uvloop_available() -> bool:
    """True when uvloop is installed in this environment."""
    return importlib.util.find_spec("uvloop") is not None


def run(main: Coroutine[Any, Any, None], loop: str) -> None:
    """Run ``main`` on the named event loop (``asyncio`` or ``uvloop``)."""
    if loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def announce(**ports: int) -> None:
    """Tell the parent where this child listens."""
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()


async def until_stdin_closes() -> None:
    """Return when the parent closes our stdin (its way of saying: stop)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass
