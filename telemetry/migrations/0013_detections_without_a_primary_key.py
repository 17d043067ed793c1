"""Drop the database's primary key of `detections` (camera_id, id, timestamp): the largest index of a hot day
and one no query reads.

Measured (docs/storage.md): rows arrive interleaved across cameras, so a unique B-tree led by camera_id is
written in the middle of its pages and splits them half full; being unique, it cannot deduplicate the five
detections of a frame either. It cost ~85 B a detection row (~430 B a frame, more than the frame's own heap row)
against 27 B for the (camera_id, timestamp) index that serves a frame's detections. Nothing needs the
uniqueness: detections are written only with their frame in one transaction, and the frame's unique
(camera_id, timestamp) refuses a repeated batch (409) before any of its detections is kept; detections are never
updated one by one. Citus distributes a table without a primary key as well as with one.

Django keeps (camera, id, timestamp) as the model's composite key (its identity for a row); the database
enforces none. Dropping the parent's key drops each partition's with it: a catalog change and an unlink per
partition under a short ACCESS EXCLUSIVE lock (the session's lock_timeout makes it fail fast; run again). The
reverse builds the key back without blocking writes, as telemetry 0012 does (one index build per partition).
"""

import importlib

from django.db import migrations

TABLE = "detections"
KEY = ("camera_id", "id", "timestamp")

keys = importlib.import_module("telemetry.migrations.0012_camera_in_telemetry_keys")


def forward(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        name, _columns = keys._primary_key(cursor, TABLE)
        if name is not None:
            cursor.execute(
                f"ALTER TABLE {schema_editor.quote_name(TABLE)} DROP CONSTRAINT {schema_editor.quote_name(name)}"
            )


def backward(apps, schema_editor):
    keys._set_primary_key(schema_editor, TABLE, KEY)


class Migration(migrations.Migration):
    atomic = False  # the reverse builds indexes CONCURRENTLY

    dependencies = [("telemetry", "0012_camera_in_telemetry_keys")]

    operations = [migrations.RunPython(forward, backward)]
