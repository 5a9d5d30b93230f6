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
import platform
import sys
import sysconfig
from collections.abc import Coroutine
from pathlib import Path
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


#: The configure options of CPython that change its speed.
_BUILD_FLAGS = ("--enable-optimizations", "--with-lto", "--enable-shared")


def interpreter() -> dict[str, Any]:
    """The Python that runs this process, as far as it can tell, without its paths.

    The service's speed depends on how its interpreter was built (profile-guided and
    link-time optimisation, a static or a shared libpython) as much as on the machine, and
    ``sysconfig`` does not always say which: a distribution may build its static interpreter
    otherwise than the shared library whose configuration it reports. So whether libpython was
    loaded as a shared library is read off this process's memory map, and the configure
    options are given as reported.
    """
    maps = Path("/proc/self/maps")
    configured = sysconfig.get_config_var("CONFIG_ARGS") or ""
    return {
        "version": platform.python_version(),
        "build": " ".join(platform.python_build()),
        "compiler": platform.python_compiler(),
        "libpython_shared": "libpython" in maps.read_text() if maps.exists() else None,
        "configured_with": [flag for flag in _BUILD_FLAGS if flag in configured],
    }


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
