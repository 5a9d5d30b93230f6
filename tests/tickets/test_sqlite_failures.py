"""The SQLite ticket store when the disk will not cooperate: calls must keep routing."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import stat
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ivr.tickets.errors import TicketStoreError
from ivr.tickets.model import Ticket
from ivr.tickets.sqlite import SqliteTicketStore

MakeTicket = Callable[..., Ticket]


@pytest.fixture
async def echo() -> AsyncIterator[Callable[[], asyncio.Future[None]]]:
    """One round trip through a real loopback echo server: proof the event loop is turning."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(64):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def round_trip() -> None:
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"

    try:
        yield lambda: asyncio.ensure_future(round_trip())
    finally:
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()


async def test_loop_stays_responsive_while_a_write_is_held(
    store: SqliteTicketStore,
    make_ticket: MakeTicket,
    db_path: Path,
    echo: Callable[[], asyncio.Future[None]],
) -> None:
    """While another process holds the write lock, the loop serves sockets and reads go on."""
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        future = store.submit(make_ticket(1))

        async def heartbeat() -> int:
            # Keep the loop busy with real I/O until the write has reached the disk thread,
            # then 50 more round trips while it is stuck there.
            beats_while_held = 0
            while beats_while_held < 50:
                await echo()
                if store.in_flight:
                    beats_while_held += 1
            return beats_while_held

        assert await asyncio.wait_for(heartbeat(), timeout=5) == 50
        assert not future.done()
        assert store.pending == 1
        assert await asyncio.wait_for(store.count(), timeout=5) == 0  # readers are not blocked
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert await asyncio.wait_for(future, timeout=5) is True
    assert store.writable


async def test_lock_held_past_busy_timeout_fails_then_recovers(
    db_path: Path, make_ticket: MakeTicket
) -> None:
    """A write that cannot get the lock in time fails its futures; the next one succeeds."""
    ticket_store = SqliteTicketStore(db_path, busy_timeout_s=0.02)
    await ticket_store.start()
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        stuck = [ticket_store.submit(make_ticket(n)) for n in range(3)]
        outcomes = await asyncio.gather(*stuck, return_exceptions=True)
        assert all(isinstance(o, TicketStoreError) for o in outcomes)
        assert "locked" in str(outcomes[0])
        assert not ticket_store.writable
        holder.execute("ROLLBACK")
        assert await ticket_store.submit(make_ticket(0)) is True
        assert ticket_store.writable
    finally:
        holder.close()
        await ticket_store.close()


async def test_unopenable_database_fails_futures_not_the_caller(
    tmp_path: Path, make_ticket: MakeTicket
) -> None:
    """A database the store cannot create fails tickets and clears writable; the caller goes on.

    Its folder is a regular file here, which no privilege can write into; once the folder
    exists, the store creates the database and writes again.
    """
    folder = tmp_path / "tickets"
    folder.write_text("not a folder")
    ticket_store = SqliteTicketStore(folder / "tickets.db")
    await ticket_store.start()  # the service starts even so
    try:
        assert not ticket_store.writable

        async def caller() -> str:
            future = ticket_store.submit(make_ticket(1))  # must not raise here
            with pytest.raises(TicketStoreError, match="not written"):
                await future
            return "call routed"

        assert await caller() == "call routed"
        assert not ticket_store.writable
        with pytest.raises(TicketStoreError):
            await ticket_store.count()

        folder.unlink()
        folder.mkdir()
        assert await ticket_store.submit(make_ticket(1)) is True
        assert ticket_store.writable
        assert await ticket_store.count() == 1
    finally:
        await ticket_store.close()


def permissions_enforced(folder: Path) -> bool:
    """Whether this process is stopped by a read-only folder (root, for one, is not)."""
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return True
    finally:
        folder.chmod(stat.S_IRWXU)
    return False


def make_read_only(db_path: Path, folder: Path) -> None:
    """Take write permission from the database file, then from its folder."""
    db_path.chmod(stat.S_IRUSR)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)


def make_writable(db_path: Path, folder: Path) -> None:
    """Give write permission back to the folder, then to the database file."""
    folder.chmod(stat.S_IRWXU)
    db_path.chmod(stat.S_IRUSR | stat.S_IWUSR)


async def test_read_only_directory_fails_futures(
    tmp_path: Path, db_path: Path, make_ticket: MakeTicket
) -> None:
    """A database in a read-only folder fails its tickets with TicketStoreError, writable False."""
    if not permissions_enforced(tmp_path / "probe"):
        pytest.skip("file permissions do not bind this process")
    seed = SqliteTicketStore(db_path)
    await seed.start()
    assert await seed.submit(make_ticket(0)) is True
    await seed.close()
    make_read_only(db_path, tmp_path)
    ticket_store = SqliteTicketStore(db_path)
    try:
        await ticket_store.start()
        with pytest.raises(TicketStoreError):
            await ticket_store.submit(make_ticket(1))
        assert not ticket_store.writable
    finally:
        await ticket_store.close()
        make_writable(db_path, tmp_path)


async def test_newer_schema_is_not_touched(db_path: Path, make_ticket: MakeTicket) -> None:
    """A database from a newer version of the service is refused, not rewritten."""
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    ticket_store = SqliteTicketStore(db_path)
    await ticket_store.start()
    try:
        with pytest.raises(TicketStoreError, match="newer"):
            await ticket_store.submit(make_ticket(1))
        assert not ticket_store.writable
    finally:
        await ticket_store.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 99
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


# The child confirms what the store confirmed to it, then idles until it is killed.
_WRITER_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import datetime, timezone, timedelta
    from pathlib import Path
    from ivr.tickets.model import Disposition, Ticket, ticket_id_for
    from ivr.tickets.sqlite import SqliteTicketStore

    def ticket(n):
        linkedid = f"killed.{n}"
        started = datetime(2024, 5, 9, 14, 30, tzinfo=timezone(timedelta(hours=8)))
        return Ticket(
            ticket_id_for(linkedid), linkedid, linkedid, "13800138000", "张三", "96119",
            "96119 消防隐患举报", ("root",), "report", "urgent", None, "queue", "fire-hazard",
            Disposition.AGENT, started + timedelta(seconds=n), started + timedelta(seconds=n),
        )

    async def main(path):
        store = SqliteTicketStore(Path(path))
        await store.start()
        confirmed = sum(await asyncio.gather(*(store.submit(ticket(n)) for n in range(500))))
        print(confirmed, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_confirmed_tickets_survive_kill_9(db_path: Path, tmp_path: Path) -> None:
    """Every ticket confirmed to a process that is then killed with SIGKILL is on disk after."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WRITER_CHILD, str(db_path), cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        confirmed = await asyncio.wait_for(child.stdout.readline(), timeout=20)
        assert confirmed == b"500\n"
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL

    survivor = SqliteTicketStore(db_path)
    await survivor.start()
    try:
        assert await survivor.count() == 500
        assert (await survivor.query(limit=1))[0].caller_name == "张三"
    finally:
        await survivor.close()


async def test_start_twice_is_refused(store: SqliteTicketStore) -> None:
    """A store is started once; a second start is a wiring bug and says so."""
    with pytest.raises(TicketStoreError, match="once"):
        await store.start()
