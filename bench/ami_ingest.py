"""AMI ingest: recorded Asterisk events replayed through the service's AMI path.

Three figures over the same bytes (the ``tests/fixtures/*-ami.txt`` recordings, events only,
repeated), fed in 64 KiB reads as a socket delivers them:

- ``ours``: :class:`~ivr.ami.protocol.AmiProtocol` on a real socket transport, with the link's
  panoramisk ``Manager`` registry, the ``*`` subscription the service makes, the events counter,
  :class:`~ivr.ami.tracker.CallTracker` (call tracking on) and the queue figures, each given
  only the events it reads: ``ivr.app.event_consumers``, the service's own handler;
- ``parser``: :class:`~ivr.ami._parser.AmiParser` alone;
- ``panoramisk``: panoramisk's own framing (split on the blank line) and
  ``Message.from_line`` over the same events, the baseline.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from panoramisk import utils as panoramisk_utils
from panoramisk.message import Message
from prometheus_client import CollectorRegistry

from ivr.ami._parser import AmiParser
from ivr.ami.link import AmiLink
from ivr.ami.protocol import AmiProtocol
from ivr.ami.tracker import CallEnd, CallTracker
from ivr.app import event_consumers
from ivr.metrics import Metrics

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
READ_SIZE = 65536


def recorded_events() -> list[bytes]:
    """Every event of the recorded AMI transcripts, each with its closing blank line."""
    events: list[bytes] = []
    for path in sorted(FIXTURES.glob("*-ami.txt")):
        for block in path.read_bytes().split(b"\r\n\r\n"):
            if block.startswith(b"Event: "):
                events.append(block + b"\r\n\r\n")
    return events


def replay_stream(target_events: int) -> tuple[bytes, int]:
    """The recorded events repeated to about ``target_events``; returns (bytes, event count)."""
    events = recorded_events()
    rounds = max(1, target_events // len(events))
    return b"".join(events) * rounds, len(events) * rounds


def chunks(data: bytes) -> Iterator[bytes]:
    """``data`` cut as socket reads of ``READ_SIZE`` bytes (cuts fall inside messages)."""
    view = memoryview(data)
    for start in range(0, len(data), READ_SIZE):
        yield bytes(view[start : start + READ_SIZE])


async def ingest_ours(data: bytes) -> tuple[float, int]:
    """Seconds to ingest ``data`` through the service's AMI path; returns (seconds, events seen)."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    tracker = CallTracker("bench")
    link = AmiLink(host="127.0.0.1", port=5038, username="bench", secret="bench", node="bench")
    ended: list[CallEnd] = []  # the service gives these to its abandoned-call tickets
    # ivr.app's own handler: every event counted, then given to the consumers of its name.
    on_event = event_consumers(metrics, tracker, ended.append, "bench")
    link.subscribe("*", on_event)
    protocol = AmiProtocol(factory=link.manager)
    ours, theirs = socket.socketpair()
    try:
        transport, _ = await asyncio.get_running_loop().connect_accepted_socket(
            lambda: protocol, ours
        )
        pieces = list(chunks(b"Asterisk Call Manager/11.0.0\r\n" + data))
        began = time.process_time()
        for piece in pieces:
            protocol.data_received(piece)
            # A large read is handled a slice per loop turn, reading paused: let it finish
            # before the next read, as the transport would.
            # sleep(0) is one loop turn, in which the protocol handles its next slice; it has
            # no event to await, and adding one would add work to the path being measured.
            while protocol.backlog:  # noqa: ASYNC110 - yields loop turns, waits on nothing
                await asyncio.sleep(0)
        elapsed = time.process_time() - began
        transport.close()
    finally:
        theirs.close()
    # The events the handler counted, as Prometheus would scrape them.
    seen = registry.get_sample_value("hotline_ami_events_total", {"node": "bench"})
    return elapsed, int(seen or 0)


def ingest_parser(data: bytes) -> tuple[float, int]:
    """Seconds for :class:`AmiParser` alone over ``data``; returns (seconds, events)."""
    parser = AmiParser()
    pieces = list(chunks(data))
    began = time.process_time()
    count = 0
    for piece in pieces:
        count += len(parser.feed(piece))
    return time.process_time() - began, count


def ingest_panoramisk(data: bytes) -> tuple[float, int]:
    """Seconds for panoramisk's framing and ``Message.from_line``; returns (seconds, events).

    The framing is that of panoramisk's ``AMIProtocol.data_received``: decode, split on the
    blank line, keep the unfinished tail for the next read.
    """
    eol = panoramisk_utils.EOL
    separator = eol + eol
    pieces = list(chunks(data))
    began = time.process_time()
    count = 0
    tail = ""
    for piece in pieces:
        text = tail + piece.decode("utf-8", errors="replace")
        blocks = text.split(separator)
        tail = blocks.pop()
        for block in blocks:
            if Message.from_line(block) is not None:
                count += 1
    return time.process_time() - began, count


def run(target_events: int, repeats: int) -> dict[str, object]:
    """Each figure ``repeats`` times over the same stream; events/s of every run."""
    data, events = replay_stream(target_events)
    results: dict[str, list[float]] = {"ours": [], "parser": [], "panoramisk": []}
    measure: dict[str, Callable[[], tuple[float, int]]] = {
        "ours": lambda: asyncio.run(ingest_ours(data)),
        "parser": lambda: ingest_parser(data),
        "panoramisk": lambda: ingest_panoramisk(data),
    }
    for _ in range(repeats):
        for name, once in measure.items():
            elapsed, seen = once()
            if seen != events:
                raise AssertionError(f"{name} saw {seen} events of {events}")
            results[name].append(events / elapsed)
    return {"events": events, "bytes": len(data), "runs": results}


def main() -> None:
    """``python -m bench.ami_ingest``: print the runs as JSON."""
    import argparse
    import json

    from bench import _proc

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--core", type=int, default=None)
    args = parser.parse_args()
    _proc.pin_to_core(args.core)
    print(json.dumps(run(args.events, args.repeats)))


if __name__ == "__main__":
    main()
