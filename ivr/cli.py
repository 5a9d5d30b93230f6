"""The ``hotline-ivr`` command: run the service, or try it with the simulated PBX."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from ivr.config import ConfigError, load_config
from ivr.dialplan.errors import DialplanError
from ivr.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(prog="hotline-ivr", description=__doc__)
    parser.add_argument("--log-level", default=None, help="debug, info, warning (default per command)")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the service against a simulated PBX with sample calls")
    demo.add_argument("--dialplans", type=Path, default=Path("dialplans"))

    run = commands.add_parser("run", help="run the service against a real Asterisk")
    run.add_argument("--config", type=Path, default=Path("config/hotline.yaml"))

    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            configure_logging(level=args.log_level or "warning")
            from ivr.demo import run_demo

            return asyncio.run(run_demo(args.dialplans, sys.stdout))
        configure_logging(level=args.log_level or "info")
        return asyncio.run(_run(args.config))
    except (ConfigError, DialplanError) as exc:
        print(f"hotline-ivr: {exc}", file=sys.stderr)
        return 2


async def _run(config_path: Path) -> int:
    from ivr.app import build_app, start
    from ivr.dialplan.loader import load_dialplan

    config = load_config(config_path)
    plan = load_dialplan([config.dialplans])
    app = build_app(config, plan)
    runner = await start(app, config.http.host, config.http.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
