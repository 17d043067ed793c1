"""The archival app's settings, each overridable in Django settings or the environment (docs/archival.md).

They are read at call time (not import time) so tests and operators can change them without a restart
of anything but the worker.
"""

from pathlib import Path
from typing import Any

import environ
from django.conf import settings

env = environ.Env()

DEFAULTS: dict[str, Any] = {
    # Where archives go when STORAGES has no "archive" alias: a FileSystemStorage rooted here (git-ignored).
    "ARCHIVE_ROOT": env.path("ARCHIVE_ROOT", default=str(Path(settings.BASE_DIR) / "archive")),
    # gzip level of archive files: 1 is several times faster than 6 and only ~10 % larger on telemetry rows.
    "ARCHIVE_COMPRESSION_LEVEL": env.int("ARCHIVE_COMPRESSION_LEVEL", default=1),
    # A run exports or drops at most this many partitions per policy; the rest wait for the next run.
    "ARCHIVE_MAX_PARTITIONS_PER_RUN": env.int("ARCHIVE_MAX_PARTITIONS_PER_RUN", default=8),
    # Plain-table deletes: rows per batch (one short transaction each) and batches per run.
    "ARCHIVE_DELETE_BATCH_SIZE": env.int("ARCHIVE_DELETE_BATCH_SIZE", default=5_000),
    "ARCHIVE_DELETE_MAX_BATCHES": env.int("ARCHIVE_DELETE_MAX_BATCHES", default=20),
    # DETACH takes an ACCESS EXCLUSIVE lock on the parent: wait this long at most, then retry with backoff.
    "ARCHIVE_LOCK_TIMEOUT_MS": env.int("ARCHIVE_LOCK_TIMEOUT_MS", default=2_000),
    "ARCHIVE_DETACH_ATTEMPTS": env.int("ARCHIVE_DETACH_ATTEMPTS", default=5),
    # Exporting a big partition takes longer than the web's statement_timeout.
    "ARCHIVE_STATEMENT_TIMEOUT_MS": env.int("ARCHIVE_STATEMENT_TIMEOUT_MS", default=3_600_000),
    # A restored partition is kept this many days before retention may archive it again.
    "ARCHIVE_RESTORE_HOLD_DAYS": env.int("ARCHIVE_RESTORE_HOLD_DAYS", default=7),
    # The default-partition sweep creates at most this many partitions per run.
    "ARCHIVE_SWEEP_MAX_PARTITIONS": env.int("ARCHIVE_SWEEP_MAX_PARTITIONS", default=31),
    # How cold tiering reads a partition: "adbc" (binary COPY decoded into Arrow by the ADBC driver on a second
    # connection sharing the transaction's snapshot; not on Citus) or "csv" (COPY as CSV in the transaction).
    "ARCHIVE_COLD_READER": env.str("ARCHIVE_COLD_READER", default="adbc"),
}


def archival_setting(name: str) -> Any:
    """Django settings first, then the environment/default above."""
    return getattr(settings, name, DEFAULTS[name])
