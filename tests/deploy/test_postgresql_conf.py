"""deploy/postgresql.conf must be accepted by the PostgreSQL this machine runs (`make check-deploy`)."""

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.deploy.postgres_tools import as_server_user, postgres_bindir

CONFIG = Path(settings.BASE_DIR) / "deploy" / "postgresql.conf"


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # Not under pytest's tmp_path: that is private to root, and the server runs as another user.
    directory = Path(tempfile.mkdtemp(prefix="its-pgconf-"))
    directory.chmod(0o777)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def data_dir(workdir: Path) -> Path:
    result = subprocess.run(
        [*as_server_user(), str(postgres_bindir() / "initdb"), "-D", str(workdir / "data"), "-A", "trust"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return workdir / "data"


def settings_in(path: Path) -> dict[str, str]:
    pattern = re.compile(r"^\s*([a-z_.]+)\s*=\s*('[^']*'|\S+)")
    return {m.group(1): m.group(2).strip("'") for line in path.read_text().splitlines() if (m := pattern.match(line))}


def show(data_dir: Path, config: Path, name: str) -> subprocess.CompletedProcess[str]:
    command = [*as_server_user(), str(postgres_bindir() / "postgres"), "-D", str(data_dir), f"--config-file={config}"]
    return subprocess.run([*command, "-C", name], capture_output=True, text=True)


def test_every_setting_parses_with_the_installed_postgresql(data_dir, workdir):
    config = workdir / "postgresql.conf"
    shutil.copy(CONFIG, config)
    config.chmod(0o644)

    for name in settings_in(config):
        result = show(data_dir, config, name)
        assert result.returncode == 0, f"{name}: {result.stderr}"
    assert show(data_dir, config, "shared_buffers").stdout.strip() == "262144"  # 2GB in 8kB pages


def test_a_broken_file_is_caught(data_dir, workdir):
    config = workdir / "broken.conf"
    config.write_text(CONFIG.read_text() + "\nwork_mem = 32XB\n")
    config.chmod(0o644)

    result = show(data_dir, config, "work_mem")
    assert result.returncode != 0
    assert "work_mem" in result.stderr


def test_the_seed_settings_are_all_there():
    seed = {
        "shared_buffers": "2GB",
        "effective_cache_size": "6GB",
        "work_mem": "32MB",
        "maintenance_work_mem": "512MB",
        "max_connections": "200",
        "checkpoint_completion_target": "0.9",
        "wal_buffers": "64MB",
        "default_statistics_target": "500",
        "random_page_cost": "1.1",
        "effective_io_concurrency": "200",
        "constraint_exclusion": "partition",
        "enable_partition_pruning": "on",
        "enable_partitionwise_join": "on",
        "enable_partitionwise_aggregate": "on",
    }
    configured = settings_in(CONFIG)
    assert {name: configured.get(name) for name in seed} == seed
