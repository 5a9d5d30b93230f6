"""The ``hotline-ivr`` command."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Entry point; filled in by the wiring."""
    raise SystemExit(0)
