"""Migration archival 0007 corrects the seeded detections policy's description (detections are no longer a copy of
anything the frames keep) and leaves a description an operator wrote alone."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from archival.models import RetentionPolicy

BEFORE = ("archival", "0006_cold_ages_and_tiering_schedules")
AFTER = ("archival", "0007_detections_policy_description")
SEEDED = "Detections: 3 months (re-derivable from frames)."


def migrate(target: tuple[str, str]) -> None:
    MigrationExecutor(connection).migrate([target])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("before", "expected_after"),
    [
        (SEEDED, "Detections: 3 months, then deleted; frames keep their per-class counts"),
        ("Ours: kept as long as frames.", "Ours: kept as long as frames."),
    ],
    ids=["as seeded", "edited by an operator"],
)
def test_the_detections_description_is_corrected_only_where_still_as_seeded(before, expected_after):
    migrate(BEFORE)
    try:
        RetentionPolicy.objects.filter(table="detections").update(description=before)

        migrate(AFTER)

        assert RetentionPolicy.objects.get(table="detections").description.startswith(expected_after)
        migrate(BEFORE)
        assert RetentionPolicy.objects.get(table="detections").description == before
    finally:
        migrate(AFTER)
