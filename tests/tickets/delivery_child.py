"""The delivery side of the service as its own process, for the kill -9 test.

``python delivery_child.py sqlite|postgres <path or conninfo> <open311 base url>`` delivers the
store's outbox until SIGTERM (then it stops cleanly) or SIGKILL (then it just dies).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp

from ivr.tickets.delivery import DeliveryWorker
from ivr.tickets.open311 import Open311Config, Open311Receiver, ServiceCodes


async def main(backend: str, where: str, url: str) -> None:
    """Run a store and a worker until SIGTERM."""
    if backend == "sqlite":
        from ivr.tickets.sqlite import SqliteTicketStore

        store: object = SqliteTicketStore(Path(where))
    else:
        from ivr.tickets.postgres import PostgresTicketStore

        store = PostgresTicketStore(where)
    await store.start()  # type: ignore[attr-defined]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    config = Open311Config(base_url=url, api_key="k3y", service_codes=ServiceCodes("000"),
                           timeout_s=0.5)  # fmt: skip
    async with aiohttp.ClientSession() as http:
        worker = DeliveryWorker(store, Open311Receiver(http, config), concurrency=4,  # type: ignore[arg-type]
                                lease_s=1.0, poll_s=0.05, backoff_base_s=0.05,
                                backoff_cap_s=0.2)  # fmt: skip
        await worker.start()
        print("ready", flush=True)
        await stop.wait()
        await worker.close()
    await store.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
