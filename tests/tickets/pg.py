"""A throwaway PostgreSQL server for the tests: ``initdb`` into a temporary folder, started on a
free loopback port, stopped and removed at the end.

The server refuses to run as root, so when the tests run as root it is run as the ``postgres``
user (``runuser``). Absent binaries are reported as a reason to skip, not as a failure.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class PgServer:
    """A running throwaway server; ``conninfo(schema)`` connects into one schema of it."""

    host: str
    port: int
    user: str

    def conninfo(self, schema: str = "public") -> str:
        """A libpq connection string whose search path is ``schema``."""
        return (
            f"host={self.host} port={self.port} user={self.user} dbname=postgres "
            f"options='-c search_path={schema}'"
        )


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: Debian's newest, else the PATH."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def throwaway_server(timeout_s: float = 60.0) -> Iterator[PgServer]:
    """Start a fresh server; raise ``RuntimeError`` with the reason if that is not possible."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL binaries not found (install Debian's postgresql)")
    prefix: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            raise RuntimeError("running as root without runuser: cannot start PostgreSQL")
        prefix = [runuser, "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="hotline-pg-"))
    data = folder / "data"
    try:
        if prefix:
            shutil.chown(folder, "postgres", "postgres")
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                        "-U", "postgres", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True, timeout=timeout_s)  # fmt: skip
        port = _free_port()
        options = f"-k {folder} -p {port} -h 127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", options,
                        "-l", str(folder / "log"), "-w", "start"],
                       check=True, capture_output=True, timeout=timeout_s)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        raise RuntimeError(
            f"could not start PostgreSQL: {exc} {detail.decode(errors='replace')}"
        ) from exc
    try:
        yield PgServer("127.0.0.1", port, "postgres")
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "-w", "stop"],
                       check=False, capture_output=True, timeout=timeout_s)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)
