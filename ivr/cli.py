"""The ``hotline-ivr`` command: run the service, try it with the simulated PBX, and the
admin tools over the YAML dialplans (validate, simulate, graph, asterisk-config, prompts)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import structlog

from ivr.config import ConfigError, load_config
from ivr.dialplan.errors import DialplanError
from ivr.logs import configure_logging
from ivr.tools.errors import ToolError

_DIALPLANS = Path("dialplans")
_RECORDINGS = Path("recordings")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(prog="hotline-ivr", description=__doc__)
    parser.add_argument(
        "--log-level", default=None, help="debug, info, warning (default per command)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="run the service against a simulated PBX with sample calls"
    )
    demo.add_argument("--dialplans", type=Path, default=Path("dialplans"))

    run = commands.add_parser("run", help="run the service against a real Asterisk")
    run.add_argument("--config", type=Path, default=Path("config/hotline.yaml"))
    run.add_argument(
        "--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
        help="the event loop: auto (the default) is uvloop when it is installed "
        "(pip install 'hotline-ivr[fast]'), else asyncio's own",
    )

    _add_tool_commands(commands)

    args = parser.parse_args(argv)
    try:
        if args.command in _TOOLS:
            return _TOOLS[args.command](args)
        if args.command == "demo":
            configure_logging(level=args.log_level or "warning")
            from ivr.demo import run_demo

            return asyncio.run(run_demo(args.dialplans, sys.stdout))
        return _run_loop(_run(args.config, args.log_level or "info"), args.loop)
    except (ConfigError, DialplanError, ToolError) as exc:
        print(f"hotline-ivr: {exc}", file=sys.stderr)
        return 2


def _run_loop(main: Coroutine[Any, Any, int], loop: str) -> int:
    """Run the service on uvloop or on asyncio's own loop; ``auto``: uvloop when installed.

    The service is correct on both. uvloop is preferred because it costs this service less:
    1.68M against 2.03M instructions a menu call, and 2,123 against 1,873 call sessions per
    CPU-second in the same benchmark run (bench/README.md, round six).
    """
    if loop == "auto":
        loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    if loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            main.close()
            raise ConfigError(
                "--loop uvloop: uvloop is not installed (pip install 'hotline-ivr[fast]')"
            ) from None
        return uvloop.run(main)
    return asyncio.run(main)


def _add_tool_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    validate = commands.add_parser(
        "validate", help="check dialplans: every problem, with file and line; exit 1 on errors"
    )
    validate.add_argument(
        "paths",
        nargs="*",
        type=Path,
        default=[_DIALPLANS],
        help="dialplan files or folders (default: dialplans/)",
    )
    validate.add_argument(
        "--recordings",
        type=Path,
        default=_RECORDINGS,
        help="where prompt recordings live (default: recordings/)",
    )
    validate.add_argument(
        "--no-recordings",
        action="store_true",
        help="do not check that each prompt has its recording",
    )

    simulate = commands.add_parser("simulate", help="walk a line's menus without a PBX")
    simulate.add_argument("--dialplans", type=Path, default=_DIALPLANS)
    simulate.add_argument("--line", required=True, help="the number dialled, e.g. 96119")
    simulate.add_argument(
        "--keys",
        default=None,
        help="keys pressed, e.g. 2,1 (t: timeout); default: ask on the terminal",
    )
    simulate.add_argument(
        "--at",
        default=None,
        help='when, in the line\'s timezone, e.g. "2026-10-01 09:00" (default: now)',
    )

    graph = commands.add_parser("graph", help="draw the menu tree of each line")
    graph.add_argument("--dialplans", type=Path, default=_DIALPLANS)
    graph.add_argument("--format", default="mermaid", choices=("mermaid", "dot", "png", "svg"))
    graph.add_argument("--line", default=None, help="only this line (default: every line)")
    graph.add_argument("-o", "--output", type=Path, default=None, help="file (default: stdout)")

    asterisk = commands.add_parser(
        "asterisk-config", help="write extensions.conf and manager.conf pieces from the dialplans"
    )
    asterisk.add_argument("--dialplans", type=Path, default=_DIALPLANS)
    asterisk.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("deploy/asterisk"),
        help="folder to write into (default: deploy/asterisk)",
    )
    asterisk.add_argument("--agi-host", default="127.0.0.1", help="where the service listens")
    asterisk.add_argument("--agi-port", type=int, default=4573)
    asterisk.add_argument(
        "--ami-permit",
        action="append",
        default=None,
        metavar="CIDR",
        help="network allowed to log in to AMI (repeatable; default 127.0.0.1/32)",
    )
    asterisk.add_argument(
        "--legacy-eventfilter",
        action="store_true",
        help="whole-event regex filters in manager.conf, for an Asterisk older than "
        "18.26/20.11/21.6/22.1 (no advanced eventfilter)",
    )

    prompts = commands.add_parser(
        "prompts", help="render missing prompt recordings from their text (espeak-ng and sox)"
    )
    prompts.add_argument("--dialplans", type=Path, default=_DIALPLANS)
    prompts.add_argument("--recordings", type=Path, default=_RECORDINGS)
    prompts.add_argument(
        "--language",
        choices=("zh", "en"),
        default=None,
        help="only this language (default: every language of the dialplan)",
    )
    prompts.add_argument("--force", action="store_true", help="render existing files again")


def _validate(args: argparse.Namespace) -> int:
    from ivr.tools.validate import format_problems, validate_paths

    recordings = None if args.no_recordings else args.recordings
    plan, problems = validate_paths(args.paths, recordings)
    print(format_problems(problems))
    return 0 if plan is not None else 1


def _simulate(args: argparse.Namespace) -> int:
    from ivr.dialplan.loader import load_dialplan
    from ivr.tools import simulate

    plan = load_dialplan([args.dialplans])
    line = plan.line_for(args.line)
    if line is None:
        raise ToolError(f"no line has the number {args.line!r} (lines: {', '.join(plan.lines)})")
    when = simulate.parse_when(args.at, simulate.line_timezone(plan, line))
    if args.keys is not None:
        next_key = simulate.scripted(simulate.parse_keys(args.keys))
    else:
        next_key = _ask_terminal
    simulate.simulate(plan, args.line, when, next_key, print)
    return 0


def _ask_terminal(_ask: object) -> str:
    """One key from the terminal: empty or ``t`` is a timeout, ``q`` (or end of input) hangs up."""
    from ivr.tools.simulate import HANG_UP, TIMEOUT, parse_keys

    while True:
        try:
            answer = input("key (0-9 * #, t = timeout, q = hang up)> ")
        except EOFError:
            return HANG_UP
        try:
            return parse_keys(answer)[0] if answer.strip() else TIMEOUT
        except ToolError as exc:
            print(exc)


def _graph(args: argparse.Namespace) -> int:
    from ivr.dialplan.loader import load_dialplan
    from ivr.tools.graph import render

    plan = load_dialplan([args.dialplans])
    drawing = render(plan, args.format, args.line)
    if args.output is not None:
        args.output.write_bytes(drawing)
    elif args.format in ("png", "svg") and sys.stdout.isatty():
        raise ToolError(f"give -o FILE for a {args.format.upper()} drawing")
    else:
        sys.stdout.buffer.write(drawing)
        sys.stdout.flush()
    return 0


def _asterisk_config(args: argparse.Namespace) -> int:
    from ivr.dialplan.loader import load_dialplan
    from ivr.tools.asterisk_config import AsteriskOptions, parse_permits, write_config

    plan = load_dialplan([args.dialplans])
    options = AsteriskOptions(
        args.agi_host,
        args.agi_port,
        parse_permits(args.ami_permit),
        legacy_event_filters=args.legacy_eventfilter,
    )
    for path in write_config(plan, options, args.output):
        print(f"wrote {path}")
    return 0


def _prompts(args: argparse.Namespace) -> int:
    from ivr.dialplan.loader import load_dialplan
    from ivr.tools.prompts import missing_prompts, render_prompts, synthesizer

    plan = load_dialplan([args.dialplans])
    languages = [args.language] if args.language else None
    todo = missing_prompts(plan, args.recordings, languages, args.force)
    if not todo:
        print("every prompt has its recording")
        return 0
    for path in render_prompts(todo, synthesizer()):
        print(f"rendered {path}")
    return 0


_TOOLS = {
    "validate": _validate,
    "simulate": _simulate,
    "graph": _graph,
    "asterisk-config": _asterisk_config,
    "prompts": _prompts,
}


async def _run(config_path: Path, log_level: str) -> int:
    from ivr.app import ACTIVE, build_app, freeze_startup_objects, start
    from ivr.dialplan.loader import load_dialplan

    configure_logging(level=log_level)  # until the config names the secrets to redact
    config = load_config(config_path)
    secrets = [node.secret for node in config.ami] + [config.http.token, config.tickets.dsn]
    configure_logging(level=log_level, secrets=[s for s in secrets if s])
    plan = load_dialplan([config.dialplans])
    app = build_app(config, plan)
    runner = await start(app, config.http.host, config.http.port)
    frozen = freeze_startup_objects()
    structlog.get_logger("ivr").info(
        "service.started",
        loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
        frozen_objects=frozen,
        gc_thresholds=gc.get_threshold(),
    )
    stop = asyncio.Event()
    reload_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    # SIGHUP (systemctl reload) asks for a dialplan reload; one reloader task owns them all.
    loop.add_signal_handler(signal.SIGHUP, reload_requested.set)

    async def reloader() -> None:
        while True:
            await reload_requested.wait()
            reload_requested.clear()
            await app[ACTIVE].reload()

    reloads = asyncio.create_task(reloader(), name="dialplan-reloader")
    try:
        await stop.wait()
    finally:
        reloads.cancel()
        await asyncio.gather(reloads, return_exceptions=True)
        await runner.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
