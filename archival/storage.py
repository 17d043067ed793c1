"""Where archives are written: Django's storage API, so the filesystem (default) and S3 (django-storages,
by configuration) work the same way.

    STORAGES = {..., "archive": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {"bucket_name": "..."}}}

Without an "archive" alias, a FileSystemStorage rooted at ARCHIVE_ROOT is used.
"""

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages

from archival.conf import archival_setting

ARCHIVE_STORAGE_ALIAS = "archive"


def archive_storage() -> Storage:
    if ARCHIVE_STORAGE_ALIAS in settings.STORAGES:
        return storages[ARCHIVE_STORAGE_ALIAS]
    return FileSystemStorage(location=str(archival_setting("ARCHIVE_ROOT")))
