"""Fuzz the AMI parser: the same bytes fed whole and in random cuts must give the same messages.

Run: ``python fuzz/fuzz_ami.py -atheris_runs=100000``. A crash is any exception other than
``AmiProtocolError``, messages that depend on how the input was split, or a read's cut into
messages, the messages made of it or a header lookup on which the C code
(``ivr/ami/_speedups.c``) and its Python reference disagree.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from ivr.ami import _speedups
    from ivr.ami._parser import (
        _EVENT_NAMES,
        AmiMessage,
        AmiParser,
        header_value,
        read_events,
        split_messages,
    )
    from ivr.ami.errors import AmiProtocolError

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
LIMIT = 4096  # small, so that the size check is reached too


def check_lookups(message: AmiMessage) -> None:
    """Both searches give the same answer for each key of the message, and one it lacks."""
    raw = message.raw
    if not raw:
        return
    lower = b"\n" + raw.lower() + b"\n"
    keys = {key.lower().encode("utf-8", "replace") for key, _ in message.headers[:8]}
    for key in (*keys, b"uniqueid"):
        needle = b"\n" + key + b":"
        c, python = _speedups.header_value(raw, lower, needle), header_value(raw, lower, needle)
        if c != python:
            raise AssertionError(f"{needle!r} in {raw!r}: C {c!r}, Python {python!r}")


def parse(chunks: list[bytes]) -> tuple[list[object], bool]:
    """The messages (as comparable tuples) from feeding ``chunks``, and whether it refused."""
    parser = AmiParser(max_message_size=LIMIT)
    messages: list[object] = []
    try:
        for chunk in chunks:
            for message in parser.feed(chunk):
                check_lookups(message)
                messages.append(message.headers)
    except AmiProtocolError:
        return messages, True
    return messages, False


def test_one_input(data: bytes) -> None:
    """One input: a cut list and a body, with and without the banner."""
    fdp = atheris.FuzzedDataProvider(data)
    cuts = sorted(fdp.ConsumeIntListInRange(fdp.ConsumeIntInRange(0, 16), 0, 1 << 16))
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    split = _speedups.split_messages(body)
    if split != split_messages(body):
        raise AssertionError(f"the C and Python cuts of {body!r} differ")
    if split is not None:
        blocks, lowered, plain = split
        made: tuple[list[AmiMessage], list[AmiMessage]] = ([], [])
        names = dict(_EVENT_NAMES)
        stops = [read(blocks[:-1], 0, 0, lowered, plain, names, out)
                 for read, out in zip((_speedups.read_events, read_events), made, strict=True)]
        if stops[0] != stops[1] or [m.raw for m in made[0]] != [m.raw for m in made[1]]:
            raise AssertionError(f"the C and Python messages of {body!r} differ")
    for stream in (BANNER + body, body):
        points = sorted({c % (len(stream) + 1) for c in cuts})
        chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
        whole, whole_refused = parse([stream])
        split, split_refused = parse(chunks)
        if not whole_refused and not split_refused and whole != split:
            raise AssertionError(f"messages depend on the cuts {points}: {whole!r} != {split!r}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
