"""``python -m bench.tickets_main``: the ticket figures as JSON (see :mod:`bench.tickets`)."""

from __future__ import annotations

import argparse
import json

from bench import _proc, tickets


def main() -> None:
    """Parse the command line, pin, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--core", type=int, default=None)
    args = parser.parse_args()
    _proc.pin_to_core(args.core)
    print(json.dumps(tickets.run(args.count, args.calls, args.repeats)))


if __name__ == "__main__":
    main()
