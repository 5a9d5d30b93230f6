"""Fuzz the AMI parser: the same bytes fed whole and in random cuts must give the same messages.

Run: ``python fuzz/fuzz_ami.py -atheris_runs=100000``. A crash is any exception other than
``AmiProtocolError``, or messages that depend on how the input was split.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from ivr.ami._parser import AmiParser
    from ivr.ami.errors import AmiProtocolError

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
LIMIT = 4096  # small, so that the size check is reached too


def parse(chunks: list[bytes]) -> tuple[list[object], bool]:
    """The messages (as comparable tuples) from feeding ``chunks``, and whether it refused."""
    parser = AmiParser(max_message_size=LIMIT)
    messages: list[object] = []
    try:
        for chunk in chunks:
            messages += [message.headers for message in parser.feed(chunk)]
    except AmiProtocolError:
        return messages, True
    return messages, False


def test_one_input(data: bytes) -> None:
    """One input: a cut list and a body, with and without the banner."""
    fdp = atheris.FuzzedDataProvider(data)
    cuts = sorted(fdp.ConsumeIntListInRange(fdp.ConsumeIntInRange(0, 16), 0, 1 << 16))
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
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
