"""Property tests of the dialplan loader: whatever text it is given, it raises nothing but
``DialplanError``, and every problem it reports names the file and a line of it."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.dialplan import load_dialplan
from ivr.dialplan.errors import DialplanError

SHIPPED = Path(__file__).parents[2] / "dialplans"
SHIPPED_TEXT = (SHIPPED / "hotline.yaml").read_text(encoding="utf-8")
SHIPPED_LINES = SHIPPED_TEXT.splitlines(keepends=True)

# The pieces YAML and our schema are made of, so that random text gets past the YAML parser
# often enough to reach the schema checks.
TOKENS = (
    ": ", ":", "- ", "-", " ", "  ", "\n", "\t", "{", "}", "[", "]", ", ", "#", "'", '"', "|",
    ">", "&a ", "*a", "<<: ", "!!str ", "!!python/object:os.system ", "!x ", "---\n", "...\n",
    "%YAML 1.1\n", "? ", "~", "null", "true", "1", "07", "0x1f", "1e9", "12345", '"96119"',
    "settings", "menus", "lines", "queues", "emergency", "schedules", "prompts", "departments",
    "main_line", "default_queue", "menu", "keys", "prompt", "timeout", "retries", "queue",
    "root", "general", "zh", "en", "09:00-17:00", "\u0000", "\ufeff", "\u2028", "张三", "\x85",
)
yamlish = st.lists(st.sampled_from(TOKENS) | st.text(max_size=6), max_size=60).map("".join)
PROFILE = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)


def check_problems(folder: Path, file: Path) -> None:
    """Load ``folder``; if refused, only with DialplanError whose problems are placed."""
    try:
        load_dialplan([folder])
    except DialplanError as exc:
        problems = exc.problems
    else:
        return
    assert problems, "a refusal names at least one problem"
    for problem in problems:
        assert problem.file in (str(file), str(folder)) or problem.file.startswith(
            str(folder)
        ), problem
        assert problem.line >= 1 and problem.column >= 1, problem


def load_text(text: str | bytes, *, with_shipped: bool) -> None:
    """Write ``text`` as a dialplan file (beside the other shipped files, if asked) and check."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if with_shipped:
            for other in SHIPPED.glob("*.yaml"):
                shutil.copy(other, folder / other.name)
        file = folder / "hotline.yaml"
        if isinstance(text, bytes):
            file.write_bytes(text)
        else:
            file.write_text(text, encoding="utf-8", newline="")
        check_problems(folder, file)


@PROFILE
@given(text=yamlish)
def test_yamlish_text_raises_only_placed_dialplan_errors(text: str) -> None:
    """Arbitrary YAML-like text is refused with DialplanError naming the file and a line >= 1."""
    load_text(text, with_shipped=False)


@PROFILE
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_placed_dialplan_errors(data: bytes) -> None:
    """Arbitrary bytes (invalid UTF-8 included) are refused the same way."""
    load_text(data, with_shipped=False)


@st.composite
def mutated_shipped(draw: st.DrawFn) -> str:
    """The shipped dialplan with a few random line edits: deleted, duplicated, swapped,
    re-indented, cut short, or a token spliced in."""
    lines = list(SHIPPED_LINES)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        at = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(("delete", "duplicate", "swap", "indent", "cut", "splice")))
        if edit == "delete" and len(lines) > 1:
            del lines[at]
        elif edit == "duplicate":
            lines.insert(at, lines[at])
        elif edit == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif edit == "indent":
            lines[at] = draw(st.sampled_from(("", " ", "   ", "\t"))) + lines[at].lstrip(" ")
        elif edit == "cut":
            lines = lines[:at]
        else:
            line = lines[at]
            where = draw(st.integers(0, len(line)))
            lines[at] = line[:where] + draw(st.sampled_from(TOKENS)) + line[where:]
    return "".join(lines)


@PROFILE
@given(text=mutated_shipped())
def test_mutated_shipped_file_raises_only_placed_dialplan_errors(text: str) -> None:
    """Random edits of the shipped file load or are refused with placed DialplanErrors only."""
    load_text(text, with_shipped=True)


def test_the_shipped_file_itself_loads() -> None:
    """The unmutated starting point is valid, so the mutations are what the loader judges."""
    load_text(SHIPPED_TEXT, with_shipped=True)
    assert load_dialplan([SHIPPED]).version
