"""The service at another revision or on another interpreter and at this tree, run in turn.

    .venv/bin/python -m bench.compare REV [--rounds 4] [--loop uvloop] [--calls 4000]
    .venv/bin/python -m bench.compare [REV] --python OTHER/bin/python

This machine's speed drifts by tens of per cent from one minute to the next, so two full
benchmark runs made apart say little about a change worth a few per cent. Here each round
runs both sides one after the other, the order swapped every round, with the benchmark's own
measurement (``bench.calls.one_run``: warm-up, 1,000 callers held, a second of paced probes,
then ``--calls`` menu calls 200 at a time), and prints each side's medians and their ratio:
call sessions per CPU-second of the service, key → next command and emergency key → Dial
p99, memory per held call.

REV is checked out into a temporary git worktree, removed after. Its service runs from there
(``python -m bench.service --ami-port --loop --core``, which REV must have: round four on);
both are driven by this tree's simulated PBX on core 1. ``--python`` runs the other side (REV,
or this tree when no REV is given) on another interpreter: the python of an environment made
from it with the project installed (``-m venv``, then ``pip install -e '.[fast]'``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import _proc, calls
from bench._timing import Stamps, timed_pbx

SERVICE_CORE, DRIVER_CORE = 0, 1
# The figures compared: (key in RunResult, title, format, whether more is better).
FIGURES = (
    ("calls_per_cpu_s", "call sessions per CPU-second", ",.0f", True),
    ("menu_p99_ms", "key -> next command p99 (ms)", ".2f", False),
    ("emergency_p99_ms", "emergency key -> EXEC Dial p99 (ms)", ".2f", False),
    ("kib_per_call", "memory per held call (KiB)", ".1f", False),
)


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """A checkout of ``revision`` in a temporary folder, removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix="hotline-compare-"))
    git = ("git", "-C", str(calls.ROOT))
    added = subprocess.run([*git, "worktree", "add", "--detach", str(folder), revision],
                           capture_output=True, text=True)  # fmt: skip
    if added.returncode != 0:
        folder.rmdir()
        sys.exit(f"cannot check {revision!r} out: {added.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(folder)],
                       check=False, capture_output=True)  # fmt: skip


async def rounds(
    sides: dict[str, tuple[Path, str]], count: int, loop: str, settings: calls.RunSettings
) -> dict[str, list[dict[str, Any]]]:
    """``count`` runs of each side (its source tree, its interpreter), in turn, the order
    swapped each round."""
    stamps = Stamps()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    with timed_pbx(stamps):
        pbx = calls.start_pbx()
        await pbx.start()
        try:
            for number in range(count):
                order = list(sides) if number % 2 == 0 else list(reversed(sides))
                for name in order:
                    root, python = sides[name]
                    service = await calls.start_target(
                        name, "bench.service", "--ami-port", str(pbx.ami_port),
                        "--loop", loop, "--core", str(SERVICE_CORE), root=root, python=python,
                    )  # fmt: skip
                    try:
                        figures = await calls.one_run(pbx, stamps, service, settings, service=True)
                    finally:
                        await service.stop()
                    results[name].append(asdict(figures))
                    brief = ", ".join(
                        f"{title} {format(getattr(figures, key), spec)}"
                        for key, title, spec, _ in FIGURES
                    )
                    print(f"  round {number + 1}: {name}: {brief}", file=sys.stderr)
        finally:
            await pbx.close()
    return results


def table(results: dict[str, list[dict[str, Any]]], before: str, after: str) -> list[str]:
    """Markdown rows: each figure's median on both sides and after / before."""
    lines = [f"| figure (median of {len(results[after])} runs) | {before} | {after} | ratio |",
             "|---|---|---|---|"]  # fmt: skip
    for key, title, spec, more_is_better in FIGURES:
        a = statistics.median(run[key] for run in results[before])
        b = statistics.median(run[key] for run in results[after])
        better = "higher is better" if more_is_better else "lower is better"
        ratio = f"{b / a:.3f} ({better})" if a else "-"
        lines.append(f"| {title} | {format(a, spec)} | {format(b, spec)} | {ratio} |")
    return lines


def main() -> None:
    """Check REV out, run both sides in turn, print the table, write the runs as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "revision", nargs="?", default=None,
        help="a git revision of this repository (tag, hash ...); this tree if not given",
    )
    parser.add_argument(
        "--python", default=None,
        help="the other side's interpreter: an environment's python with the project installed",
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default=None)
    parser.add_argument("--calls", type=int, default=4000, help="menu calls a run")
    parser.add_argument("--output", type=Path, default=None, help="write every run here (JSON)")
    args = parser.parse_args()
    if args.revision is None and args.python is None:
        parser.error("name a revision, an interpreter (--python), or both")
    loop = args.loop or ("uvloop" if _proc.uvloop_available() else "asyncio")
    settings = calls.RunSettings(calls=args.calls, probe_seconds=1.0)
    _proc.pin_to_core(DRIVER_CORE)
    before, after = args.revision or "this tree", "this tree"
    if args.python is not None:
        before, after = f"{before} on {args.python}", f"{after} on {sys.executable}"
    results: dict[str, list[dict[str, Any]]] = {}

    async def drive() -> None:
        checkout = worktree(args.revision) if args.revision else contextlib.nullcontext(calls.ROOT)
        with checkout as folder:
            sides = {
                before: (folder, args.python or sys.executable),
                after: (calls.ROOT, sys.executable),
            }
            results.update(await rounds(sides, args.rounds, loop, settings))

    driver_loop = "uvloop" if _proc.uvloop_available() else "asyncio"
    _proc.run(drive(), driver_loop)
    print("\n".join(table(results, before, after)))
    if args.output is not None:
        args.output.write_text(json.dumps(
            {"revision": args.revision, "python": args.python, "sides": [before, after],
             "loop": loop, "settings": {"calls": args.calls},
             "runs": results}, indent=1, default=str) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
