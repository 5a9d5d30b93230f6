"""The group-commit writer both ticket stores share, on an in-memory backend it can hold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ivr.tickets._group_commit import GroupCommitWriter
from ivr.tickets._rows import INSERT_COLUMNS, encode_batch, outcomes
from ivr.tickets.errors import TicketStoreError
from ivr.tickets.model import Disposition, Ticket
from tests.tickets.conftest import MakeTicket


class BackendDown(Exception):
    """What the in-memory backend raises when told to fail a batch."""


class MemoryBackend:
    """A backend whose commits can be held at a gate and made to fail, one batch at a time."""

    def __init__(self) -> None:
        self.linkedids: set[str] = set()
        self.batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()
        self.fail_next: BackendDown | None = None
        self.instance = "node-a"
        self.rows: list[dict[str, str | int | None]] = []  # by column name

    async def insert(self, tickets: list[Ticket]) -> list[bool | TicketStoreError]:
        """Commit ``tickets`` once the gate is open; for each, whether its Linkedid was new."""
        rows, errors = encode_batch(tickets, self.instance)
        named = [dict(zip(INSERT_COLUMNS, row, strict=True)) for row in rows]
        self.rows.extend(named)
        self.entered.set()
        await self.gate.wait()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        batch = [str(row["linkedid"]) for row in named]
        self.batches.append(batch)
        new = []
        for linkedid in batch:
            new.append(linkedid not in self.linkedids)
            self.linkedids.add(linkedid)
        return outcomes(errors, new)


@pytest.fixture
def backend() -> MemoryBackend:
    """An empty in-memory backend with its gate open."""
    return MemoryBackend()


@pytest.fixture
async def writer(backend: MemoryBackend) -> AsyncIterator[GroupCommitWriter]:
    """A started writer over ``backend``: batches of at most 3, no wait for a batch to fill."""
    writer = GroupCommitWriter(
        backend.insert, failure=BackendDown, batch_max=3, max_delay_s=0,
        task_name="test-writer", log_fields={"backend": "memory"},
    )  # fmt: skip
    writer.start()
    yield writer
    backend.gate.set()
    await writer.close()


async def test_batches_are_bounded_and_in_order(
    writer: GroupCommitWriter, backend: MemoryBackend, make_ticket: MakeTicket
) -> None:
    """While a batch is held, later tickets queue; they go in order, at most batch_max a time."""
    backend.gate.clear()
    first = writer.submit(make_ticket(0))
    await backend.entered.wait()
    later = [writer.submit(make_ticket(n)) for n in range(1, 8)]
    assert (writer.pending, writer.in_flight) == (8, 1)
    backend.gate.set()
    await writer.flush()
    assert all(f.result() for f in [first, *later])
    assert [len(batch) for batch in backend.batches] == [1, 3, 3, 1]
    flat = [linkedid for batch in backend.batches for linkedid in batch]
    assert flat == [make_ticket(n).linkedid for n in range(8)]
    assert (writer.commits, writer.pending) == (4, 0)


async def test_failed_batch_fails_its_tickets_then_recovers(
    writer: GroupCommitWriter, backend: MemoryBackend, make_ticket: MakeTicket
) -> None:
    """A backend error fails each ticket of the batch and clears writable until a write works."""
    backend.fail_next = BackendDown("disk on fire")
    failed = writer.submit(make_ticket(0))
    await writer.flush()
    with pytest.raises(TicketStoreError, match="not written: disk on fire") as caught:
        failed.result()
    assert isinstance(caught.value.__cause__, BackendDown)
    assert not writer.writable
    assert await writer.submit(make_ticket(0)) is True
    assert writer.writable and writer.commits == 1


async def test_listeners_hear_only_new_final_tickets(
    writer: GroupCommitWriter, make_ticket: MakeTicket
) -> None:
    """A commit wakes listeners if it wrote a new final ticket; a duplicate or provisional not."""
    heard: list[int] = []
    writer.add_commit_listener(lambda: heard.append(writer.commits))
    await writer.submit(make_ticket(0, disposition=Disposition.IN_PROGRESS))
    await writer.submit(make_ticket(1))
    await writer.submit(make_ticket(1))
    assert heard == [2]


async def test_rows_carry_the_instance(backend: MemoryBackend, make_ticket: MakeTicket) -> None:
    """Every row of a batch is encoded under the backend's instance name."""
    backend.instance = "node-b"
    writer = GroupCommitWriter(
        backend.insert, failure=BackendDown, batch_max=8, max_delay_s=0,
        task_name="test-writer", log_fields={},
    )  # fmt: skip
    writer.start()
    await writer.submit(make_ticket(0))
    await writer.close()
    assert [row["instance"] for row in backend.rows] == ["node-b"]


async def test_close_commits_what_was_submitted(
    writer: GroupCommitWriter, backend: MemoryBackend, make_ticket: MakeTicket
) -> None:
    """close() writes every queued ticket; afterwards submit fails its future, never the caller."""
    backend.gate.clear()
    futures = [writer.submit(make_ticket(n)) for n in range(5)]
    await backend.entered.wait()
    closing = asyncio.ensure_future(writer.close())
    backend.gate.set()
    await closing
    assert all(f.result() for f in futures)
    late = writer.submit(make_ticket(9))
    with pytest.raises(TicketStoreError, match="not running"):
        late.result()
    with pytest.raises(TicketStoreError, match="started once"):
        writer.start()


async def test_cancelled_writer_leaves_nobody_waiting(
    backend: MemoryBackend, make_ticket: MakeTicket
) -> None:
    """If the writer task is cancelled mid-write, the batch and the queue fail at once."""
    writer = GroupCommitWriter(
        backend.insert, failure=BackendDown, batch_max=8, max_delay_s=0,
        task_name="doomed-writer", log_fields={},
    )  # fmt: skip
    writer.start()
    backend.gate.clear()
    held = writer.submit(make_ticket(0))
    await backend.entered.wait()
    queued = writer.submit(make_ticket(1))
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "doomed-writer"]
    task.cancel()
    await asyncio.wait([task])
    with pytest.raises(TicketStoreError, match="mid-write"):
        held.result()
    with pytest.raises(TicketStoreError, match="stopped"):
        queued.result()
    assert writer.pending == 0


def test_bad_settings_are_refused(backend: MemoryBackend) -> None:
    """A batch of less than one ticket, or a negative delay, is a configuration error."""
    for batch_max, max_delay_s, problem in (
        (0, 0.0, "batch_max must be at least 1"),
        (1, -0.1, "delays must not be negative"),
    ):
        with pytest.raises(ValueError, match=problem):
            GroupCommitWriter(
                backend.insert, failure=BackendDown, batch_max=batch_max,
                max_delay_s=max_delay_s, task_name="test-writer", log_fields={},
            )  # fmt: skip


async def test_final_ticket_takes_a_queued_provisional_ones_place(
    writer: GroupCommitWriter, backend: MemoryBackend, make_ticket: MakeTicket
) -> None:
    """A final ticket submitted while its provisional one waits is written once, in its place."""
    backend.gate.clear()
    writer.submit(make_ticket(0))
    await backend.entered.wait()  # batch one is held; what follows queues
    provisional = writer.submit(make_ticket(1, disposition=Disposition.IN_PROGRESS))
    between = writer.submit(make_ticket(2))
    final = writer.submit(make_ticket(1))
    assert writer.pending == 3
    backend.gate.set()
    await writer.flush()
    assert (provisional.result(), between.result(), final.result()) == (True, True, True)
    assert [row["disposition"] for row in backend.rows[1:]] == ["agent", "agent"]
    flat = [linkedid for batch in backend.batches for linkedid in batch]
    assert flat == [make_ticket(n).linkedid for n in (0, 1, 2)]


async def test_provisional_ticket_in_flight_is_not_replaced(
    writer: GroupCommitWriter, backend: MemoryBackend, make_ticket: MakeTicket
) -> None:
    """A provisional ticket already being written stays; its final ticket follows as a row."""
    backend.gate.clear()
    provisional = writer.submit(make_ticket(1, disposition=Disposition.IN_PROGRESS))
    await backend.entered.wait()
    final = writer.submit(make_ticket(1))
    backend.gate.set()
    await writer.flush()
    assert provisional.result() is True and final.result() is False  # the memory has no upsert
    assert [row["disposition"] for row in backend.rows] == ["in_progress", "agent"]


async def test_failed_batch_fails_the_superseded_provisional_too(
    writer: GroupCommitWriter, backend: MemoryBackend, make_ticket: MakeTicket
) -> None:
    """When the final ticket that replaced a provisional one fails, both futures fail."""
    backend.fail_next = BackendDown("disk on fire")
    provisional = writer.submit(make_ticket(1, disposition=Disposition.IN_PROGRESS))
    final = writer.submit(make_ticket(1))
    assert writer.pending == 1
    await writer.flush()
    for future in (provisional, final):
        with pytest.raises(TicketStoreError, match="disk on fire"):
            future.result()


async def test_a_batch_waits_to_fill_until_full_closed_or_late(
    backend: MemoryBackend, make_ticket: MakeTicket
) -> None:
    """The writer waits up to max_delay_s for a batch to fill: a full batch or close ends it
    at once, and the wait is a timer, not a task per batch."""
    writer = GroupCommitWriter(
        backend.insert, failure=BackendDown, batch_max=3, max_delay_s=60,
        task_name="filling-writer", log_fields={},
    )  # fmt: skip
    writer.start()
    tasks = len(asyncio.all_tasks())
    first = writer.submit(make_ticket(0))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not first.done() and backend.batches == []  # waiting for the batch to fill
    assert len(asyncio.all_tasks()) == tasks
    rest = [writer.submit(make_ticket(n)) for n in (1, 2)]
    assert await asyncio.wait_for(asyncio.gather(first, *rest), 5) == [True] * 3
    last = writer.submit(make_ticket(3))
    await asyncio.sleep(0)
    await asyncio.wait_for(writer.close(), 5)
    assert last.result() is True
    assert [len(batch) for batch in backend.batches] == [3, 1]

    late = GroupCommitWriter(
        backend.insert, failure=BackendDown, batch_max=3, max_delay_s=0.05,
        task_name="late-writer", log_fields={},
    )  # fmt: skip
    late.start()
    assert await asyncio.wait_for(late.submit(make_ticket(4)), 5) is True
    await late.close()
