"""``python -m bench``: every figure of issue #8 beside its baseline, printed and saved as JSON.

    .venv/bin/python -m bench [--runs 3] [--quick] [--loops asyncio,uvloop]

The measured side runs pinned to core 0 (the service, the bare FastAGI responder, the AMI and
ticket benchmarks); this process, the simulated PBX that drives the calls, to core 1. Results
go to ``bench/results/latest.json`` with the machine's facts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import _proc, calls
from bench._timing import Stamps, timed_pbx

RESULTS = Path(__file__).resolve().parent / "results"
SERVICE_CORE, DRIVER_CORE = 0, 1


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("panoramisk", "aiohttp", "uvloop", "prometheus-client", "structlog"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=calls.ROOT, capture_output=True, text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "interpreter": _proc.interpreter(),
        "sqlite": sqlite3.sqlite_version,
        "packages": versions,
        "commit": commit,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def pinned(module: str, *args: str) -> Any:
    """Run ``python -m bench.<module> --json`` pinned to the service core; its JSON output."""
    out = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--core", str(SERVICE_CORE), *args],
        cwd=calls.ROOT, capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out)


async def call_figures(
    loops: list[str], runs: int, settings: calls.RunSettings
) -> dict[str, list[dict[str, Any]]]:
    """Every call figure, ``runs`` times for the service and the bare responder on each loop."""
    stamps = Stamps()
    results: dict[str, list[dict[str, Any]]] = {}
    with timed_pbx(stamps), tempfile.TemporaryDirectory(prefix="hotline-bench-") as scratch:
        pbx = calls.start_pbx()
        await pbx.start()
        try:
            sequences_file = Path(scratch) / "sequences.json"
            for run in range(runs):
                for loop in loops:
                    service = await calls.start_target(
                        f"service/{loop}", "bench.service", "--ami-port", str(pbx.ami_port),
                        "--loop", loop, "--core", str(SERVICE_CORE),
                    )
                    try:
                        if not sequences_file.exists():
                            pbx.agi_port = service.agi_port
                            sequences = await calls.record_sequences(pbx, stamps)
                            sequences_file.write_text(json.dumps(sequences))
                        figures = await calls.one_run(pbx, stamps, service, settings, service=True)
                    finally:
                        await service.stop()
                    results.setdefault(service.name, []).append(asdict(figures))
                    print(f"  run {run + 1}: {service.name}: {_brief(figures)}", file=sys.stderr)
                    bare = await calls.start_target(
                        f"bare/{loop}", "bench.bare_agi", "--sequences", str(sequences_file),
                        "--loop", loop, "--core", str(SERVICE_CORE),
                    )
                    try:
                        figures = await calls.one_run(pbx, stamps, bare, settings, service=False)
                    finally:
                        await bare.stop()
                    results.setdefault(bare.name, []).append(asdict(figures))
                    print(f"  run {run + 1}: {bare.name}: {_brief(figures)}", file=sys.stderr)
        finally:
            await pbx.close()
    return results


def _brief(result: calls.RunResult) -> str:
    return (f"{result.calls_per_s:,.0f} calls/s ({result.calls_per_cpu_s:,.0f}/CPU-s), "
            f"key p99 {result.menu_p99_ms:.2f} ms, emergency p99 {result.emergency_p99_ms:.2f} ms, "
            f"{result.kib_per_call:.1f} KiB/call, core {100 * result.cpu_share:.0f} % busy, "
            f"AMI {result.ami_events_per_call:.1f} events/call, "
            f"{result.ami_events_dropped} dropped")


def median(runs: list[dict[str, Any]], key: str) -> float:
    """The median of one figure over runs."""
    return statistics.median(run[key] for run in runs)


def summary(report: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Rows of (figure, ours, baseline, ratio, target) from the medians."""
    rows: list[tuple[str, str, str, str, str]] = []
    call_runs = report["calls"]["runs"]
    for loop in report["loops"]:
        ours, bare = call_runs[f"service/{loop}"], call_runs[f"bare/{loop}"]

        def row(
            title: str, key: str, fmt: str, target: str, higher_is_better: bool = True,
            *, ours: list[dict[str, Any]] = ours, bare: list[dict[str, Any]] = bare,
            loop: str = loop,
        ) -> None:
            a, b = median(ours, key), median(bare, key)
            ratio = (a / b if higher_is_better else b / a) if a and b else float("nan")
            rows.append(
                (f"{title} [{loop}]", format(a, fmt), format(b, fmt), f"{ratio:.2f}", target)
            )

        row("call sessions/s, 2-level menu + ticket", "calls_per_s", ",.0f", ">= 2,000/s")
        row("  same, per CPU-second of the target", "calls_per_cpu_s", ",.0f", ">= 2,000/s")
        row("key -> next command p50 (ms), 1,000 held", "menu_p50_ms", ".2f", "", False)
        row("key -> next command p99 (ms), 1,000 held", "menu_p99_ms", ".2f", "<= 2 ms", False)
        row("emergency key -> EXEC Dial p99 (ms)", "emergency_p99_ms", ".2f", "<= 5 ms", False)
        row("memory per held call (KiB)", "kib_per_call", ".1f", "<= 16 KB", False)
        dropped = median(ours, "ami_events_dropped")
        per_call = median(ours, "ami_events_per_call")
        rows.append((f"  AMI events read per call / dropped by the PBX [{loop}]",
                     f"{per_call:.1f} / {dropped:,.0f}", "-", "-", "0 dropped"))
    ami = report["ami"]["runs"]
    for name, title in (("ours", "AMI events/s, parser+protocol+tracker"),
                        ("parser", "AMI events/s, parser alone")):
        a, b = statistics.median(ami[name]), statistics.median(ami["panoramisk"])
        rows.append((title, f"{a:,.0f}", f"{b:,.0f}", f"{a / b:.2f}", ">= 60,000/s"))
    ticket_runs = report["tickets"]
    raw = statistics.median(r["raw_sqlite_per_s"] for r in ticket_runs)
    for key, title in (("burst_per_s", "tickets/s durably written, burst"),
                       ("stream_per_s", "tickets/s durably written, 1,000 callers")):
        a = statistics.median(r[key] for r in ticket_runs)
        rows.append((title, f"{a:,.0f}", f"{raw:,.0f}", f"{a / raw:.2f}", ">= 5,000/s"))
    return rows


def print_table(rows: list[tuple[str, str, str, str, str]]) -> None:
    """The summary as a Markdown table (medians; ratio = ours / baseline, >1 is better)."""
    header = ("figure (median of runs)", "hotline-ivr", "baseline", "ratio", "target")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for line in [header, tuple("-" * w for w in widths), *rows]:
        cells = (cell.ljust(w) for cell, w in zip(line, widths, strict=True))
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    """Run everything and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run, less load: a smoke test")
    parser.add_argument("--loops", default=None, help="comma-separated: asyncio,uvloop")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    loops = args.loops.split(",") if args.loops else (
        ["asyncio", "uvloop"] if _proc.uvloop_available() else ["asyncio"]
    )
    settings = (
        calls.RunSettings(calls=2000, probe_seconds=1.0) if args.quick else calls.RunSettings()
    )
    cores = _proc.pin_to_core(DRIVER_CORE)
    report: dict[str, Any] = {"machine": machine(), "loops": loops, "driver_cores": cores,
                              "settings": asdict(settings)}
    print("AMI ingest ...", file=sys.stderr)
    report["ami"] = pinned("ami_ingest", "--events", "50000" if args.quick else "200000",
                           "--repeats", str(max(3, runs)))
    print("tickets ...", file=sys.stderr)
    report["tickets"] = pinned("tickets_main", "--repeats", str(runs))
    print("calls ...", file=sys.stderr)
    driver_loop = "uvloop" if _proc.uvloop_available() else "asyncio"
    report["driver_loop"] = driver_loop
    call_runs: dict[str, Any] = {}

    async def drive() -> None:
        call_runs.update(await call_figures(loops, runs, settings))

    _proc.run(drive(), driver_loop)
    report["calls"] = {"runs": call_runs}
    rows = summary(report)
    report["summary"] = [
        dict(zip(("figure", "ours", "baseline", "ratio", "target"), r, strict=True))
        for r in rows
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1, default=str) + "\n")
    python = report["machine"]["interpreter"]
    print(f"Python {python['version']} ({python['build']}): {sys.executable}\n")
    print_table(rows)
    written = (
        args.output.relative_to(calls.ROOT)
        if args.output.is_relative_to(calls.ROOT)
        else args.output
    )
    print(f"\nwritten: {written}")


if __name__ == "__main__":
    main()
