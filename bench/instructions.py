"""Instructions per call of the service, counted by callgrind: a figure for comparing two
versions of the code that this shared machine's noise does not move.

    .venv/bin/python -m bench.instructions [--calls 300] [--loop asyncio|uvloop] [--held 0]
                                           [--per-thread]

The service runs as in ``python -m bench`` but under ``valgrind --tool=callgrind`` with
instrumentation off; after a warm-up it is switched on (``callgrind_control``) for ``--calls``
two-level menu calls placed 20 at a time, then off again. The count covers every thread of the
service (the ticket writer's too) and the C code it runs (the interpreter, SQLite, the
kernel-call wrappers), not the time spent in the kernel. Valgrind runs the threads one at a
time, so the count is the same work whatever the machine does meanwhile; it is not a speed:
read it as a ratio between two versions, measured by the same command.

``--per-thread`` (callgrind's ``--separate-threads``) also prints each thread's count: the
event loop's thread, then the ticket writer's.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import _proc, calls
from bench._timing import Stamps, timed_pbx

_TOTALS = re.compile(r"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


async def run_calls(args: argparse.Namespace, out: Path) -> None:
    """Start the service under callgrind, which writes its count to ``out`` at exit."""
    stamps = Stamps()
    under = ("valgrind", "-q", "--tool=callgrind", "--instr-atstart=no",
             f"--separate-threads={'yes' if args.per_thread else 'no'}",
             f"--callgrind-out-file={out}")  # fmt: skip
    with timed_pbx(stamps):
        async with calls.pbx_and_service(args.loop, under=under, start_s=300) as (pbx, service):
            await calls.place_many(pbx, calls.menu_call, args.warmup, 20)
            async with calls.held_callers(pbx, stamps, args.held, within_s=300):
                await _control("--instr=on", service.pid)
                records = await calls.place_many(pbx, calls.menu_call, args.calls, 20)
                await _control("--instr=off", service.pid)
            ok = sum(1 for r in records if r.destination == calls.MENU_DESTINATION)
            if ok != args.calls:
                raise RuntimeError(f"only {ok} of {args.calls} calls reached the agents")

def instructions(out: Path) -> int:
    """The instructions counted while instrumentation was on."""
    totals = _TOTALS.findall(out.read_text(errors="replace"))
    if not totals:
        raise RuntimeError(f"no totals in {out}")
    return int(totals[-1])


async def _control(option: str, pid: int) -> None:
    process = await asyncio.create_subprocess_exec(
        "callgrind_control", option, str(pid),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    if await process.wait() != 0:
        raise RuntimeError(f"callgrind_control {option} {pid} failed")


def main() -> None:
    """Parse the command line, count, print instructions per call."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--held", type=int, default=0)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument(
        "--keep", type=Path, help="copy callgrind's output here (for callgrind_annotate)"
    )
    parser.add_argument("--per-thread", action="store_true", help="also count each thread")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind (with callgrind_control) is needed: apt-get install valgrind")
    _proc.pin_to_core(1)
    with tempfile.TemporaryDirectory(prefix="hotline-callgrind-") as folder:
        out = Path(folder) / "callgrind.out"
        asyncio.run(run_calls(args, out))
        # With --separate-threads callgrind writes one file per thread (out-01, out-02 ...),
        # the event loop's thread first.
        files = sorted(Path(folder).glob("callgrind.out-*")) if args.per_thread else [out]
        counts = [instructions(path) for path in files]
        total = sum(counts)
        if args.keep:
            for path in files:
                shutil.copyfile(path, f"{args.keep}{path.name.removeprefix('callgrind.out')}")
    print(f"{total / args.calls:,.0f} instructions per call ({args.calls} calls, {args.loop})")
    if args.per_thread:
        for path, count in zip(files, counts, strict=True):
            if not count:
                continue  # a thread that ran nothing while counting
            thread = path.name.removeprefix("callgrind.out-")
            print(f"  thread {thread}: {count / args.calls:,.0f} per call ({count / total:.0%})")


if __name__ == "__main__":
    main()
