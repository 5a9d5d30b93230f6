"""The service under test, in its own process: ``hotline-ivr``'s own wiring on loopback.

    python -m bench.service --ami-port PORT [--loop asyncio|uvloop] [--core 0] [--db DIR]

It is built as ``ivr.demo`` builds it (``ivr.app.build_app`` + ``ivr.app.start``, the shipped
dialplans, the SQLite ticket store, the AMI link with call tracking and the event filter of
the generated manager.conf, sent as a ``Filter`` action), logs JSON lines at
``info`` as ``hotline-ivr run`` does (to /dev/null, the formatting cost is kept), and judges
business hours by a fixed working Monday morning so that every line is open.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from bench import _proc
from ivr.app import FASTAGI, LINKS, build_app, freeze_startup_objects, http_port, start
from ivr.config import AmiNodeConfig, FastAgiConfig, HttpConfig, ServiceConfig, TicketsConfig
from ivr.dialplan.loader import load_dialplan
from ivr.logs import configure_logging

DIALPLANS = Path(__file__).resolve().parents[1] / "dialplans"
AMI_SECRET = "bench-secret"  # the simulated PBX's own, on loopback only
WORKING_HOURS = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


async def serve(
    ami_port: int, db_dir: Path, log_level: str, event_filter: bool, sink: TextIO
) -> None:
    """Run the service until the parent closes our stdin; logs go to ``sink``."""
    configure_logging(level=log_level, json=True, stream=sink, secrets=(AMI_SECRET,))
    config = ServiceConfig(
        fastagi=FastAgiConfig(host="127.0.0.1", port=0, allowed_peers=frozenset({"127.0.0.1"})),
        ami=(AmiNodeConfig(node="sim", host="127.0.0.1", port=ami_port, username="hotline",
                           secret=AMI_SECRET, ping_interval=5,
                           send_filter=event_filter),),
        http=HttpConfig(host="127.0.0.1", port=0),
        tickets=TicketsConfig(path=db_dir / "tickets.sqlite3"),
        dialplans=DIALPLANS,
    )
    app = build_app(config, load_dialplan([DIALPLANS]), clock=lambda: WORKING_HOURS)
    runner = await start(app, "127.0.0.1", 0)
    try:
        for link in app[LINKS]:
            await link.wait_connected(10.0)
        freeze_startup_objects()  # as hotline-ivr run does
        _proc.announce(agi_port=app[FASTAGI].port, http_port=http_port(runner))
        await _proc.until_stdin_closes()
    finally:
        await runner.cleanup()


def main() -> None:
    """Parse the command line, pin, run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ami-port", type=int, required=True)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--core", type=int, default=None)
    parser.add_argument("--db", type=Path, default=None, help="folder of the ticket database")
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--no-event-filter", action="store_true",
        help="take every AMI event, not only the service's (as manager.conf's eventfilter does)",
    )
    args = parser.parse_args()
    _proc.pin_to_core(args.core)
    # The log sink is opened here, before the loop runs: no blocking open inside it.
    with (
        open(os.devnull, "w", encoding="utf-8") as sink,
        tempfile.TemporaryDirectory(prefix="hotline-bench-", dir=args.db) as folder,
    ):
        _proc.run(
            serve(args.ami_port, Path(folder), args.log_level, not args.no_event_filter, sink),
            args.loop,
        )


if __name__ == "__main__":
    main()
