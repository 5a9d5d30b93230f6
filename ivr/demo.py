"""``hotline-ivr demo``: the service and a simulated Asterisk on loopback, with sample calls.

Everything is real but the PBX: real FastAGI and AMI over TCP on 127.0.0.1, the shipped
dialplans, the SQLite ticket store. Each call prints where it went and the ticket it made.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from ivr.app import FASTAGI, LINKS, build_app, start
from ivr.config import AmiNodeConfig, FastAgiConfig, HttpConfig, ServiceConfig, TicketsConfig
from ivr.dialplan.loader import load_dialplan
from ivr.simpbx.pbx import CallRecord, SimulatedPbx
from ivr.simpbx.script import CallScript
from ivr.tickets.model import Ticket, ticket_id_for
from ivr.tickets.sqlite import SqliteTicketStore

_AMI_SECRET = "demo-secret"  # the simulated PBX's own, on loopback only
# The demo's calls happen on a working Monday morning in Beijing, so that lines with business
# hours are open and the output is the same whenever the demo runs.
_DEMO_START = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@dataclass(frozen=True, slots=True)
class SampleCall:
    """A scripted caller and what the demo says about it."""

    title: str
    script: CallScript


def sample_calls() -> tuple[SampleCall, ...]:
    """The demo's callers: each kind of line and each way a call can end."""
    return (
        SampleCall(
            "12345, consult (key 1)",
            CallScript(caller_number="13900001111", caller_name="曹女士", keys=("1",)),
        ),
        SampleCall(
            "96119 dialled, fire now (key 1)",
            CallScript(
                caller_number="13700003333", caller_name="张三丰", dialled="96119", keys=("1",)
            ),
        ),
        SampleCall(
            "96119 forwarded by the carrier, hazard report (key 2)",
            CallScript(
                caller_number="13600002222",
                caller_name="李女士",
                dialled="12345",
                forwarded_from="96119",
                keys=("2",),
            ),
        ),
        SampleCall(
            "12312, commerce complaint",
            CallScript(
                caller_number="13500005555", caller_name="王先生", dialled="12312", keys=("1",)
            ),
        ),
        SampleCall(
            "12345, emergency 119 with the first route busy (keys 9, 2)",
            CallScript(
                caller_number="13800008888",
                caller_name="赵女士",
                keys=("9", "2"),
                dial_outcomes={"Local/119@emergency-routes": "BUSY"},
            ),
        ),
        SampleCall(
            "12345, an agent (key 0), then the satisfaction survey (key 1)",
            CallScript(
                caller_number="13400006666", caller_name="周先生", keys=("0",), survey_keys=("1",)
            ),
        ),
        SampleCall("12345, a silent caller", CallScript(caller_number="13300004444")),
        SampleCall(
            "12345, hangs up mid-menu (key 2, then hangs up)",
            CallScript(caller_number="13200007777", caller_name="孙先生", keys=("2", "hangup")),
        ),
    )


async def run_demo(dialplans: Path, out: TextIO, workdir: Path | None = None) -> int:
    """Run the demo; returns the process exit code."""
    plan = load_dialplan([dialplans])
    with tempfile.TemporaryDirectory(prefix="hotline-demo-") as scratch:
        folder = workdir if workdir is not None else Path(scratch)
        tickets_path = folder / "tickets.sqlite3"
        pbx = SimulatedPbx(agi_port=0, ami_secret=_AMI_SECRET)
        await pbx.start()
        try:
            config = ServiceConfig(
                fastagi=FastAgiConfig(
                    host="127.0.0.1", port=0, allowed_peers=frozenset({"127.0.0.1"})
                ),
                ami=(
                    AmiNodeConfig(
                        node="sim",
                        host="127.0.0.1",
                        port=pbx.ami_port,
                        username="hotline",
                        secret=_AMI_SECRET,
                        ping_interval=5,
                        send_filter=True,
                    ),
                ),
                http=HttpConfig(host="127.0.0.1", port=0),
                tickets=TicketsConfig(path=tickets_path),
                dialplans=dialplans,
            )
            app = build_app(config, plan, clock=_demo_clock())
            runner = await start(app, "127.0.0.1", 0)
            try:
                pbx.agi_port = app[FASTAGI].port
                for link in app[LINKS]:
                    await link.wait_connected(5.0)
                print(
                    f"hotline-ivr demo: dialplan {plan.version}, FastAGI on 127.0.0.1:"
                    f"{pbx.agi_port}, simulated AMI on 127.0.0.1:{pbx.ami_port}; "
                    f"calls placed at {_DEMO_START:%Y-%m-%d %H:%M} Beijing time",
                    file=out,
                )
                calls = sample_calls()
                records = [await pbx.place_call(call.script) for call in calls]
            finally:
                await runner.cleanup()  # sessions finish, the store flushes, links close
            # The service is down now: the dialplan fallback still puts a caller through.
            down = SampleCall(
                "12345 while the service is down",
                CallScript(caller_number="13100009999", keys=("1",)),
            )
            down_record = await pbx.place_call(down.script)
        finally:
            await pbx.close()
        store = SqliteTicketStore(tickets_path)
        await store.start()
        try:
            tickets = {r.linkedid: await store.get(ticket_id_for(r.linkedid)) for r in records}
            total = await store.count()
        finally:
            await store.close()
    print(file=out)
    for call, record in zip(calls, records, strict=True):
        _print_call(out, call, record, tickets[record.linkedid])
    _print_call(out, down, down_record, None)
    missing = [r.linkedid for r in records if tickets[r.linkedid] is None]
    print(file=out)
    print(
        f"{len(records) + 1} calls, {total} tickets written, "
        f"{len(missing)} service calls without a ticket; the service-down call reached "
        f"{down_record.destination} through the dialplan fallback.",
        file=out,
    )
    return 0 if not missing and down_record.fallback else 1


def _demo_clock() -> Callable[[], datetime]:
    origin = time.monotonic()
    return lambda: _DEMO_START + timedelta(seconds=time.monotonic() - origin)


def _print_call(out: TextIO, call: SampleCall, record: CallRecord, ticket: Ticket | None) -> None:
    keys = ",".join(call.script.keys) or "-"
    print(f"* {call.title}", file=out)
    print(
        f"    caller {call.script.caller_number} {call.script.caller_name}".rstrip()
        + f"  dialled {call.script.dialled}"
        + (f" (forwarded from {call.script.forwarded_from})" if call.script.forwarded_from else "")
        + f"  keys {keys}",
        file=out,
    )
    attempts = " -> ".join(f"{target} {status}" for target, status in record.dial_attempts)
    print(
        f"    went to {record.destination}"
        + (f"  [{attempts}]" if attempts else "")
        + ("  (dialplan fallback)" if record.fallback else ""),
        file=out,
    )
    if ticket is None:
        print("    no ticket: the service never saw this call", file=out)
    else:
        print(
            f"    ticket {ticket.ticket_id}: line {ticket.dialled_line} {ticket.source_label}, "
            f"{ticket.request_kind}/{ticket.urgency}, {ticket.disposition.value}, "
            f"path {' > '.join(ticket.ivr_path) or '-'}"
            + _reason(ticket.extra.get("route_reason", ""))
            + (f", survey: {ticket.satisfaction}" if ticket.satisfaction else ""),
            file=out,
        )


def _reason(reason: str) -> str:
    return {
        "timeout": " (no key pressed: retries used up)",
        "invalid": " (wrong keys: retries used up)",
        "closed": " (outside business hours)",
    }.get(reason, "")
