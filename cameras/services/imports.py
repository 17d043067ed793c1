"""Import cameras and zones from a CSV or XLSX file: every row validated, a dry run to preview, nothing written
if any row fails. The admin's Import button runs the same resources (cameras/resources.py)."""

from dataclasses import dataclass, field
from typing import Any

import tablib
from django.core.exceptions import ValidationError
from import_export.formats.base_formats import CSV, XLSX

from cameras.resources import MAX_IMPORT_ROWS, CameraResource, ZoneResource

FORMATS = {"csv": CSV, "xlsx": XLSX}
MAX_IMPORT_BYTES = 5 * 1024 * 1024


@dataclass
class ImportOutcome:
    dry_run: bool
    written: bool
    totals: dict[str, int]
    row_errors: list[dict[str, Any]] = field(default_factory=list)  # {"row": n, "errors": {...}}


def dataset_load(*, content: bytes, file_format: str) -> tablib.Dataset:
    """Parse an uploaded file (size- and row-limited) into a dataset; ValidationError when it cannot be read."""
    if file_format not in FORMATS:
        raise ValidationError({"format": f"Use one of: {', '.join(FORMATS)}."})
    if len(content) > MAX_IMPORT_BYTES:
        raise ValidationError({"file": f"The file is larger than {MAX_IMPORT_BYTES // 1024 // 1024} MB."})
    reader = FORMATS[file_format]()
    try:
        data = content.decode("utf-8-sig") if not reader.is_binary() else content
        dataset = reader.create_dataset(data)
    except Exception as error:  # tablib/openpyxl raise many kinds for a malformed file
        raise ValidationError({"file": f"Could not read the {file_format.upper()} file: {error}"[:300]}) from error
    if dataset.height > MAX_IMPORT_ROWS:
        raise ValidationError({"file": f"At most {MAX_IMPORT_ROWS} rows per file ({dataset.height} given)."})
    return dataset


def _import(resource: Any, *, dataset: tablib.Dataset, dry_run: bool) -> ImportOutcome:
    result = resource.import_data(
        dataset, dry_run=dry_run, raise_errors=False, use_transactions=True, rollback_on_validation_errors=True
    )
    row_errors: list[dict[str, Any]] = []
    for invalid in result.invalid_rows:
        row_errors.append({"row": invalid.number, "errors": invalid.error_dict})
    for number, errors in result.row_errors():
        row_errors.append({"row": number, "errors": {"__all__": [str(error.error) for error in errors]}})
    if result.base_errors:
        row_errors.append({"row": None, "errors": {"__all__": [str(error.error) for error in result.base_errors]}})
    failed = bool(row_errors)
    return ImportOutcome(
        dry_run=dry_run,
        written=not dry_run and not failed,
        totals={key: int(value) for key, value in result.totals.items()},
        row_errors=sorted(row_errors, key=lambda entry: entry["row"] or 0),
    )


def cameras_import(*, dataset: tablib.Dataset, dry_run: bool) -> ImportOutcome:
    """Create or update cameras by name from `dataset`. With any bad row nothing is written."""
    return _import(CameraResource(), dataset=dataset, dry_run=dry_run)


def zones_import(*, dataset: tablib.Dataset, dry_run: bool) -> ImportOutcome:
    """Create or update zones by name from `dataset`. With any bad row nothing is written."""
    return _import(ZoneResource(), dataset=dataset, dry_run=dry_run)
