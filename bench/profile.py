"""Profile the service's call path: py-spy on the service process while the PBX places calls.

    .venv/bin/python -m bench.profile [--calls 4000] [--held 1000] [--loop uvloop]
                                      [--rate 200] [--out profile.txt] [--gil]

The service runs as in ``python -m bench`` (pinned to core 0, this driver to core 1); with
``--held`` callers silent in the first menu, ``--calls`` two-level menu calls are placed
``--concurrency`` at a time while ``py-spy record -f raw`` samples the service. The output is
py-spy's collapsed stacks; ``--top`` prints the share of samples by function, own and total.
It also prints the calls per CPU-second of the service over the sampled run (py-spy's own
sampling costs the service a little, so read the figure from ``python -m bench`` instead).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import _proc, calls
from bench._timing import Stamps, timed_pbx
from ivr.simpbx import SimulatedPbx


async def drive(args: argparse.Namespace) -> None:
    """Start the service, hold callers, profile a batch of menu calls."""
    stamps = Stamps()
    with timed_pbx(stamps):
        async with calls.pbx_and_service(args.loop) as (pbx, service):
            await calls.place_many(pbx, calls.menu_call, 300, 20)
            async with calls.held_callers(pbx, stamps, args.held):
                await _measure(args, pbx, service)


async def _measure(args: argparse.Namespace, pbx: SimulatedPbx, service: calls.Target) -> None:
    """Place the menu calls, py-spy sampling the service unless told not to; print figures."""
    spy = None
    if not args.no_spy:
        command = [_py_spy(), "record", "-r", str(args.rate),
                   "-f", "raw", "-o", str(args.out), "-p", str(service.pid),
                   "--nonblocking"]  # fmt: skip
        if args.gil:
            command.append("--gil")
        spy = await asyncio.create_subprocess_exec(
            *command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        await asyncio.sleep(1.0)  # py-spy attaches; nothing to wait on but its start
    began = time.perf_counter()
    user_before, system_before = calls.cpu_split(service.pid)
    loop_before = calls.main_thread_cpu_seconds(service.pid)
    driver_before, dropped_before = time.process_time(), pbx.dropped_events
    records = await calls.place_many(pbx, calls.menu_call, args.calls, args.concurrency)
    wall = time.perf_counter() - began
    driver = time.process_time() - driver_before
    user_after, system_after = calls.cpu_split(service.pid)
    cpu = max(user_after + system_after - user_before - system_before, 1e-9)
    kernel_share = (system_after - system_before) / cpu
    loop_share = (calls.main_thread_cpu_seconds(service.pid) - loop_before) / cpu
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        await asyncio.wait_for(spy.wait(), 30)
    ok = sum(1 for r in records if r.destination == calls.MENU_DESTINATION)
    print(f"{ok} calls ok in {wall:.2f} s: {ok / wall:,.0f}/s, "
          f"{ok / cpu:,.0f} per CPU-second of the service; the service's core "
          f"{100 * cpu / wall:.0f} % busy, the driver's {100 * driver / wall:.0f} %; "
          f"{pbx.dropped_events - dropped_before} AMI events dropped; "
          f"{100 * kernel_share:.0f} % of the service's CPU in the kernel, "
          f"{100 * loop_share:.0f} % on the event loop's thread",
          file=sys.stderr)

_LINE = re.compile(r":\d+\)$")


def _py_spy() -> str:
    """py-spy from this environment's scripts, else from PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else (shutil.which("py-spy") or "py-spy")


def top(path: Path, count: int) -> None:
    """Print the functions with the largest share of samples, total (inclusive) and own.

    Frames are counted by function (py-spy's line numbers dropped), once per stack.
    """
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        weight = int(n)
        samples += weight
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
        own[frames[-1]] += weight
        for frame in set(frames):
            total[frame] += weight
    print(f"{samples} samples")
    for title, counter in (("total", total), ("own", own)):
        print(f"-- {title}")
        for frame, hits in counter.most_common(count):
            print(f"{100 * hits / samples:5.1f} %  {frame}")


def main() -> None:
    """Parse the command line, pin, run, summarise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--held", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("profile.txt"))
    parser.add_argument("--gil", action="store_true", help="sample only the thread with the GIL")
    parser.add_argument("--no-spy", action="store_true", help="measure without profiling")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    _proc.pin_to_core(1)
    _proc.run(drive(args), "uvloop" if _proc.uvloop_available() else "asyncio")
    if not args.no_spy:
        top(args.out, args.top)


if __name__ == "__main__":
    main()
