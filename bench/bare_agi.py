"""The baseline: a bare asyncio FastAGI responder that sends the IVR's command sequence.

    python -m bench.bare_agi --sequences FILE [--loop asyncio|uvloop] [--core 0]

No IVR, no ticket, no metrics, no logging: it reads the environment, picks the recorded
command sequence of the call's scenario by the caller's number (``agi_callerid``), and for each
command writes it and reads one reply line. It stops at ``HANGUP`` or when Asterisk closes.
What the service does beyond this is the IVR's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from bench import _proc


class BareResponder:
    """Serves each FastAGI connection with the command sequence of its scenario."""

    def __init__(self, sequences: dict[str, list[str]]) -> None:
        # Caller-number prefix -> the command lines, each ending in "\n", encoded once.
        self._sequences = {
            prefix: [f"{line}\n".encode() for line in lines] for prefix, lines in sequences.items()
        }

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One call: environment, then the scripted commands one reply at a time."""
        caller = ""
        try:
            while (line := await reader.readline()) not in (b"\n", b""):
                if line.startswith(b"agi_callerid: "):
                    caller = line[14:].decode().strip()
            commands = next(
                (seq for prefix, seq in self._sequences.items() if caller.startswith(prefix)), []
            )
            for command in commands:
                writer.write(command)
                reply = await reader.readline()
                if not reply or reply.startswith(b"HANGUP") or b"\nHANGUP" in reply:
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()


async def serve(sequences: dict[str, list[str]]) -> None:
    """Listen on a loopback port until the parent closes our stdin."""
    responder = BareResponder(sequences)
    server = await asyncio.start_server(responder.serve, "127.0.0.1", 0, backlog=1024)
    async with server:
        _proc.announce(agi_port=server.sockets[0].getsockname()[1], http_port=0)
        await _proc.until_stdin_closes()


def main() -> None:
    """Parse the command line, pin, run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=Path, required=True)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--core", type=int, default=None)
    args = parser.parse_args()
    _proc.pin_to_core(args.core)
    _proc.run(serve(json.loads(args.sequences.read_text())), args.loop)


if __name__ == "__main__":
    main()
