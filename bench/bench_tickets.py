"""How many tickets per second the SQLite store writes durably (target: 5,000/s).

Each ticket counts once its future has resolved True, i.e. its transaction is committed with
``synchronous=FULL``. Two shapes of load: a burst (every ticket submitted at once, as after a
mass hang-up) and a steady stream of concurrent calls each awaiting its own ticket.

    python bench/bench_tickets.py [--count 20000] [--calls 1000] [--dir DIR]

Run it on the disk the service will use (``--dir``): fsync speed is the whole story.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.tickets.model import Disposition, Ticket, ticket_id_for
from ivr.tickets.sqlite import SqliteTicketStore

_START = datetime(2024, 5, 9, 14, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
_TEMPLATE = Ticket(
    ticket_id="",
    linkedid="",
    uniqueid="",
    caller_number="13800138000",
    caller_name="张三",
    dialled_line="96119",
    source_label="96119 消防隐患举报",
    ivr_path=("root", "root:2", "complaint", "complaint:1"),
    request_kind="report",
    urgency="urgent",
    sla_due=_START + timedelta(minutes=30),
    route_kind="queue",
    route_target="fire-hazard",
    disposition=Disposition.AGENT,
    started_at=_START,
    ended_at=_START + timedelta(minutes=3),
    extra={"survey": "5"},
)


def ticket(prefix: str, n: int) -> Ticket:
    """The ``n``th distinct ticket of a run."""
    linkedid = f"{prefix}.{n}"
    return replace(
        _TEMPLATE,
        ticket_id=ticket_id_for(linkedid),
        linkedid=linkedid,
        uniqueid=linkedid,
        started_at=_START + timedelta(milliseconds=n),
    )


async def burst(store: SqliteTicketStore, count: int) -> float:
    """Submit ``count`` tickets at once; seconds until all are committed."""
    began = time.perf_counter()
    outcomes = await asyncio.gather(*(store.submit(ticket("burst", n)) for n in range(count)))
    elapsed = time.perf_counter() - began
    assert all(outcomes), "every ticket is new"
    return elapsed


async def stream(store: SqliteTicketStore, count: int, calls: int) -> float:
    """``calls`` concurrent callers, each writing tickets one after another and awaiting each."""
    next_n = iter(range(count))

    async def caller() -> None:
        for n in next_n:
            assert await store.submit(ticket("stream", n)) is True

    began = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(calls):
            group.create_task(caller())
    return time.perf_counter() - began


async def main() -> None:
    """Run both shapes on a fresh database and print tickets per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=1_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the database")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        store = SqliteTicketStore(Path(folder) / "tickets.db")
        await store.start()
        try:
            for name, run in (
                ("burst", burst(store, args.count)),
                (f"stream ({args.calls} concurrent calls)", stream(store, args.count, args.calls)),
            ):
                commits = store.commits
                elapsed = await run
                print(
                    f"{name}: {args.count} tickets in {elapsed:.3f} s = "
                    f"{args.count / elapsed:,.0f} tickets/s durably written, "
                    f"{store.commits - commits} commits"
                )
            assert await store.count() == 2 * args.count
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
