"""Job runs now belong to the kernel's job runner (its_camera.JobRun, table `job_runs`), which records every
beat job, not only the archival ones. The history recorded so far is copied there; the old table
`archival_job_run` is left in place (no code reads it any more) so a rollback to the previous release still
works, and is dropped by a later release (docs/migrations.md: drop what running code reads in a later release)."""

from django.db import migrations

COPY = """
INSERT INTO job_runs (job, outcome, started_at, finished_at, duration_ms, rows, summary, error)
SELECT job, state, started_at, finished_at, duration_ms, 0, summary, error FROM archival_job_run
ORDER BY id
"""
FORGET_COPIES = "DELETE FROM job_runs WHERE job LIKE 'archival.%'"


class Migration(migrations.Migration):
    dependencies = [
        ("archival", "0003_beat_schedules"),
        ("its_camera", "0002_jobrun"),
    ]

    operations = [
        migrations.RunSQL(COPY, FORGET_COPIES),
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="JobRun")]),
    ]
