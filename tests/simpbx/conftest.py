"""Test doubles on raw sockets: a minimal FastAGI responder and an AMI client, plus transcript
readers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ivr.simpbx import SimulatedPbx

Commands = Callable[[dict[str, str]], Sequence[str]]


@dataclass
class AgiSession:
    """What the responder saw in one FastAGI session."""

    env_lines: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    exchanges: list[tuple[str, list[str]]] = field(default_factory=list)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def replies(self) -> list[list[str]]:
        return [reply for _, reply in self.exchanges]


class FastAgiResponder:
    """A FastAGI server written on raw streams: reads the env, sends scripted commands, records
    replies."""

    def __init__(self, commands: Sequence[str] | Commands = ()) -> None:
        self._commands = commands
        self.sessions: list[AgiSession] = []
        self.env_received = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=4096)
        return int(self._server.sockets[0].getsockname()[1])

    async def session(self, index: int = 0) -> AgiSession:
        """The index-th session, once the responder has read it to its end."""
        session = self.sessions[index]
        await asyncio.wait_for(session.finished.wait(), 5)
        return session

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        if self._tasks:  # sessions end when the PBX closes its side
            await asyncio.wait(list(self._tasks), timeout=5)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        session = AgiSession()
        self.sessions.append(session)
        try:
            while (line := (await reader.readline()).decode()) not in ("\n", ""):
                session.env_lines.append(line)
                key, _, value = line.rstrip("\n").partition(": ")
                session.env[key] = value
            self.env_received.set()
            commands = self._commands(session.env) if callable(self._commands) else self._commands
            for command in commands:
                writer.write(f"{command}\n".encode())
                lines = await _read_reply(reader)
                while lines == ["HANGUP"] and session.exchanges:
                    session.exchanges[-1][1].append("HANGUP")
                    lines = await _read_reply(reader)
                session.exchanges.append((command, lines))
            writer.write_eof()
            rest = (await reader.read()).decode().splitlines()
            if rest and session.exchanges:
                session.exchanges[-1][1].extend(rest)
        finally:
            session.finished.set()
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _read_reply(reader: asyncio.StreamReader) -> list[str]:
    first = (await reader.readline()).decode().rstrip("\n")
    lines = [first]
    if first.startswith("520-"):
        while not lines[-1].startswith("520 "):
            lines.append((await reader.readline()).decode().rstrip("\n"))
    return lines


def read_agi_transcript(path: Path) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """A recorded FastAGI transcript: its env lines and (command, reply lines) pairs."""
    env: list[str] = []
    exchanges: list[tuple[str, list[str]]] = []
    mode = ""
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line.startswith("### "):
            mode = line[4:]
            if mode == "env":
                env = []
            continue
        if mode == "env" and line:
            env.append(line)
        elif mode == "cmd":
            exchanges.append((line, []))
        elif mode == "resp" and line:
            exchanges[-1][1].append(line)
    return env, exchanges


def read_ami_blocks(path: Path) -> list[str]:
    """The CRLF blocks of a recorded AMI transcript (banner excluded)."""
    text = path.read_bytes().decode("utf-8")
    return [block for block in text.split("\r\n\r\n")[1:] if block]


def header_names(block: str) -> list[str]:
    """The header names of one AMI block, in order."""
    return [line.split(":", 1)[0] for line in block.split("\r\n") if line]


def headers(block: str) -> dict[str, str]:
    """An AMI block's headers (first value wins)."""
    result: dict[str, str] = {}
    for line in block.split("\r\n"):
        key, _, value = line.partition(": ")
        result.setdefault(key, value)
    return result


class AmiClient:
    """A raw-socket AMI client: sends CRLF actions, reads blank-line-ended blocks."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, banner: bytes
    ) -> None:
        self.reader, self.writer, self.banner = reader, writer, banner

    @classmethod
    async def connect(cls, port: int) -> AmiClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        banner = await reader.readline()
        return cls(reader, writer, banner)

    def send(self, **fields: str) -> None:
        text = "".join(f"{key.replace('_', '-')}: {value}\r\n" for key, value in fields.items())
        self.writer.write(f"{text}\r\n".encode())

    async def block(self) -> str:
        data = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        return data.decode("utf-8")[:-4]

    async def until(self, predicate: Callable[[str], bool]) -> list[str]:
        """Blocks up to and including the first one ``predicate`` accepts."""
        blocks = []
        while True:
            blocks.append(await self.block())
            if predicate(blocks[-1]):
                return blocks

    async def login(self, secret: str = "hotline-secret", events: str | None = None) -> str:
        fields = {"Action": "Login", "ActionID": "1", "Username": "hotline", "Secret": secret}
        if events is not None:
            fields["Events"] = events
        self.send(**fields)
        return await self.block()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


@pytest.fixture
async def responder_factory() -> AsyncIterator[Callable[..., FastAgiResponder]]:
    """Builds started-later responders and closes them all at the end."""
    made: list[FastAgiResponder] = []

    def make(commands: Sequence[str] | Commands = ()) -> FastAgiResponder:
        responder = FastAgiResponder(commands)
        made.append(responder)
        return responder

    yield make
    for responder in made:
        if responder._server is not None:
            await responder.close()


@pytest.fixture
async def pbx_for() -> AsyncIterator[Callable[..., object]]:
    """Starts a SimulatedPbx pointed at a responder; closes every PBX at the end."""
    made: list[SimulatedPbx] = []

    async def make(responder: FastAgiResponder | None = None, **options: object) -> SimulatedPbx:
        port = await responder.start() if responder is not None else options.pop("agi_port")
        pbx = SimulatedPbx(agi_port=int(port), **options)  # type: ignore[arg-type]
        await pbx.start()
        made.append(pbx)
        return pbx

    yield make
    for pbx in made:
        await pbx.close()
