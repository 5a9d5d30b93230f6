"""Fuzz the dialplan loader: any file content is loaded or refused with ``DialplanError`` whose
every problem names the file and a line >= 1.

Run: ``python fuzz/fuzz_dialplan.py -atheris_runs=100000``. Seed it with the shipped files for
deeper coverage: ``python fuzz/fuzz_dialplan.py corpus/ dialplans/`` (libFuzzer reads seeds from
the folders given and writes new ones into the first).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from ivr.dialplan import load_dialplan
    from ivr.dialplan.errors import DialplanError

FOLDER = Path(tempfile.mkdtemp(prefix="fuzz-dialplan-"))
FILE = FOLDER / "plan.yaml"


def test_one_input(data: bytes) -> None:
    """One input, written as the only dialplan file of a folder, then loaded."""
    FILE.write_bytes(data)
    try:
        load_dialplan([FOLDER])
    except DialplanError as exc:
        for problem in exc.problems:
            if problem.line < 1 or not problem.file.startswith(str(FOLDER)):
                raise AssertionError(f"a problem without its place: {problem!r}") from exc


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
