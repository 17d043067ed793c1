"""What the benchmarks share: a database of their own beside DATABASE_URL's, a free port, a percentile.

Imported by the scripts in bench/ (run as `python bench/<name>.py`, so this folder is on sys.path); `make bench`
skips files whose name starts with an underscore.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))


@dataclass(frozen=True)
class BenchDatabase:
    """A database named `<DATABASE_URL's database>_bench_<suffix>` on the same server."""

    name: str
    url: str
    admin_url: str

    def recreate(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def bench_database(suffix: str, **environment: str) -> BenchDatabase:
    """Point this process (and the servers it starts) at the benchmark's own database, with Django's dev
    settings and DEBUG off (no per-query logging in the timed process); `environment` adds more variables."""
    parts = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/its_camera"))
    name = f"{parts.path.lstrip('/') or 'its_camera'}_bench_{suffix}"
    database = BenchDatabase(
        name=name,
        url=urlunsplit(parts._replace(path=f"/{name}")),
        admin_url=urlunsplit(parts._replace(path="/postgres")),
    )
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.dev", DATABASE_URL=database.url, DEBUG="False", **environment
    )
    return database


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (NaN for none)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else float("nan")
