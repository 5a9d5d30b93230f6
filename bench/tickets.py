"""Tickets durably written per second: the SQLite store against raw ``sqlite3``.

The store's figures come from ``bench/bench_tickets.py`` (a burst, and a stream of concurrent
callers each awaiting its own commit). The baseline writes the same number of rows with the
standard library alone, in WAL mode with ``synchronous=FULL``, in transactions of the size the
store's group commit reached: what the disk allows, with nothing of ours on the way.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.bench_tickets import burst, stream
from ivr.tickets.sqlite import SqliteTicketStore


def raw_sqlite(folder: Path, count: int, batch: int) -> float:
    """Seconds to write ``count`` rows in committed transactions of ``batch`` rows."""
    conn = sqlite3.connect(folder / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
    rows = [(f"raw.{n}", json.dumps({"caller": "13800138000", "n": n})) for n in range(count)]
    began = time.perf_counter()
    for start in range(0, count, batch):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO t VALUES (?, ?)", rows[start : start + batch])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - began
    conn.close()
    return elapsed


async def measure(count: int, calls: int, folder: Path) -> dict[str, float]:
    """Tickets/s of the store (burst, stream) and of raw sqlite3 at the same batch size."""
    store = SqliteTicketStore(folder / "tickets.db")
    await store.start()
    try:
        commits = store.commits
        burst_s = await burst(store, count)
        stream_commits = store.commits
        stream_s = await stream(store, count, calls)
        batch = max(1, round(count / max(1, store.commits - stream_commits)))
        burst_batch = max(1, round(count / max(1, stream_commits - commits)))
    finally:
        await store.close()
    raw_s = raw_sqlite(folder, count, batch)
    return {
        "burst_per_s": count / burst_s,
        "stream_per_s": count / stream_s,
        "stream_batch": batch,
        "burst_batch": burst_batch,
        "raw_sqlite_per_s": count / raw_s,
    }


def run(count: int, calls: int, repeats: int, folder: Path | None = None) -> list[dict[str, float]]:
    """``repeats`` measurements, each on a fresh database."""
    results = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="hotline-bench-", dir=folder) as scratch:
            results.append(asyncio.run(measure(count, calls, Path(scratch))))
    return results
