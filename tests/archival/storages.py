"""Archive storage backends that misbehave the way real ones do, configured through STORAGES["archive"]."""

import errno
import threading
from typing import Any

from django.core.files.storage import FileSystemStorage

DATA_FILES = (".copy.gz", ".parquet")  # gzip archives and cold Parquet files; manifests are left alone


class TruncatingStorage(FileSystemStorage):
    """Loses the tail of every archive file it stores (a disk filling up, an interrupted upload)."""

    def _save(self, name: str, content: Any) -> str:
        saved = super()._save(name, content)
        if saved.endswith(DATA_FILES):
            path = self.path(saved)
            with open(path, "r+b") as handle:
                handle.truncate(max(1, self.size(saved) // 2))
        return saved


class CorruptingStorage(FileSystemStorage):
    """Flips one byte in the middle of every archive file it stores (bit rot, a bad copy)."""

    def _save(self, name: str, content: Any) -> str:
        saved = super()._save(name, content)
        if saved.endswith(DATA_FILES):
            path = self.path(saved)
            with open(path, "r+b") as handle:
                handle.seek(self.size(saved) // 2)
                byte = handle.read(1)
                handle.seek(-1, 1)
                handle.write(bytes([byte[0] ^ 0xFF]))
        return saved


class FullDiskStorage(FileSystemStorage):
    """Fails every archive write the way a full disk or a refused upload does."""

    def _save(self, name: str, content: Any) -> str:
        if name.endswith(DATA_FILES):
            raise OSError(errno.ENOSPC, "No space left on device", name)
        return super()._save(name, content)


class BlockingStorage(FileSystemStorage):
    """Holds the first archive save until the test says go, so a second run can be started meanwhile."""

    entered = threading.Event()
    release = threading.Event()

    def _save(self, name: str, content: Any) -> str:
        if name.endswith(DATA_FILES):
            type(self).entered.set()
            type(self).release.wait(timeout=30)
        return super()._save(name, content)
