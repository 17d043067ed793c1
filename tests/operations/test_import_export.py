"""Cameras and zones from and to CSV and XLSX: row-level errors, a dry-run preview, nothing written if any row
fails (row counts before and after); alerts and archive runs exportable. Through the service, the API and the
admin's Import / Export buttons."""

import csv
import io
import re

import openpyxl
import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from archival.models import ArchiveRun
from cameras.choices import AlertKind
from cameras.models import Camera, Zone
from cameras.services.alerts import alert_raise
from cameras.services.imports import cameras_import, dataset_load, zones_import
from its_camera.choices import ApiScope
from tests.cameras.factories import make_camera, make_zone

pytestmark = pytest.mark.django_db

HEADER = "name,status,is_active,location,latitude,longitude,zone,tags,config\n"
GOOD_ROWS = (
    'Quay St,online,1,Harbour Rd,59.91,10.72,Harbour,"junction,school","{""fps"": 25}"\n'
    "Pier 4,offline,1,Pier,59.905,10.71,Harbour,,\n"
)


def counts() -> tuple[int, int]:
    return Camera.objects.count(), Zone.objects.count()


def load(text: str):
    return dataset_load(content=text.encode(), file_format="csv")


def test_a_good_file_previews_then_imports_and_updates_by_name():
    # Given a zone and an existing camera of the same name as a row
    harbour = make_zone(name="Harbour")
    existing = make_camera(name="Pier 4", location="old", config={"stream_url": "rtsp://user:pw@cam/1"})

    # When the file is previewed (dry run)
    preview = cameras_import(dataset=load(HEADER + GOOD_ROWS), dry_run=True)

    # Then it counts one new, one update, and writes nothing
    assert preview.row_errors == []
    assert (preview.totals["new"], preview.totals["update"]) == (1, 1)
    assert counts() == (1, 1)
    existing.refresh_from_db()
    assert existing.location == "old"

    # When it is imported for real
    outcome = cameras_import(dataset=load(HEADER + GOOD_ROWS), dry_run=False)

    # Then the new camera is there with its zone, tags and config, and the existing one updated
    assert outcome.written
    quay = Camera.objects.get(name="Quay St")
    assert (quay.zone, quay.tags, quay.config, quay.latitude) == (harbour, ["junction", "school"], {"fps": 25}, 59.91)
    existing.refresh_from_db()
    assert existing.location == "Pier"
    assert existing.zone == harbour


@pytest.mark.parametrize(
    ("bad_row", "field", "message"),
    [
        ("Bad,online,1,x,200,10,Harbour,,\n", "latitude", "less than or equal to 90"),
        ("Bad,online,1,x,59,10,Nowhere,,\n", "zone", "Unknown zone 'Nowhere'"),
        ("Bad,flying,1,x,59,10,Harbour,,\n", "status", "not a valid choice"),
        ("Bad,online,1,x,59,,Harbour,,\n", "__all__", "give both or neither"),
        ('Bad,online,1,x,59,10,Harbour,,"[1, 2]"\n', "config", "JSON object"),
        (",online,1,x,59,10,Harbour,,\n", "name", "cannot be blank"),
    ],
)
def test_a_file_with_one_bad_row_writes_nothing_and_names_the_row(bad_row, field, message):
    # Given the zone the good rows name, and counts before
    make_zone(name="Harbour")
    before = counts()

    # When a file with two good rows and one bad row is imported for real
    outcome = cameras_import(dataset=load(HEADER + GOOD_ROWS + bad_row), dry_run=False)

    # Then nothing is written, and the error names the row (3) and what is wrong
    assert not outcome.written
    assert counts() == before
    assert [error["row"] for error in outcome.row_errors] == [3]
    text = str(outcome.row_errors[0]["errors"])
    assert message in text, text
    assert field in outcome.row_errors[0]["errors"] or field == "__all__"


def test_masked_credentials_are_exported_masked_and_kept_on_reimport(admin_client):
    # Given a camera whose stream URL carries credentials
    camera = make_camera(name="Cam", config={"stream_url": "rtsp://user:secret@10.0.0.5/1", "fps": 10})

    # When the cameras are exported as CSV from the admin
    response = admin_client.post(
        reverse("admin:cameras_camera_export"), {"format": "0", "resource": "0", **_all_export_fields("camera")}
    )

    # Then the file has the camera with its credentials masked
    assert response.status_code == 200, response.content[:500]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [row["name"] for row in rows] == ["Cam"]
    assert "secret" not in response.content.decode()

    # When that file is imported back (location changed)
    rows[0]["location"] = "moved"
    outcome = cameras_import(dataset=tablib.Dataset(*[list(row.values()) for row in rows], headers=list(rows[0])),
                             dry_run=False)  # fmt: skip

    # Then the stored credentials survive
    assert outcome.written
    camera.refresh_from_db()
    assert camera.location == "moved"
    assert camera.config["stream_url"] == "rtsp://user:secret@10.0.0.5/1"


def _all_export_fields(model: str) -> dict[str, str]:
    from cameras.resources import AlertResource, CameraResource, ZoneResource

    resource = {"camera": CameraResource, "zone": ZoneResource, "alert": AlertResource}[model]
    return {f"{resource.__name__.lower()}_{name}": "on" for name in resource().get_export_order()}


def test_zones_import_from_xlsx_and_a_bad_zone_row_writes_nothing():
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["name", "description", "min_latitude", "min_longitude", "max_latitude", "max_longitude"])
    sheet.append(["Harbour", "by the sea", 59.9, 10.7, 59.92, 10.74])
    sheet.append(["Uptown", "", 59.96, 10.78, 59.98, 10.82])
    buffer = io.BytesIO()
    workbook.save(buffer)
    outcome = zones_import(dataset=dataset_load(content=buffer.getvalue(), file_format="xlsx"), dry_run=False)
    assert outcome.written
    assert set(Zone.objects.values_list("name", flat=True)) == {"Harbour", "Uptown"}

    sheet.append(["Inverted", "", 60.0, 10.0, 59.0, 11.0])  # min latitude above max
    buffer = io.BytesIO()
    workbook.save(buffer)
    before = counts()
    outcome = zones_import(dataset=dataset_load(content=buffer.getvalue(), file_format="xlsx"), dry_run=False)
    assert not outcome.written
    assert counts() == before
    assert outcome.row_errors[0]["row"] == 3
    assert "minimum latitude must not be greater" in str(outcome.row_errors[0]["errors"])


def test_the_api_previews_imports_and_refuses_a_bad_row_with_422(api_client_factory):
    client = api_client_factory(ApiScope.CAMERAS_WRITE)
    make_zone(name="Harbour")
    url = "/api/v1/cameras/import"

    preview = client.post(url, {"file": SimpleUploadedFile("c.csv", (HEADER + GOOD_ROWS).encode()), "dry_run": "true"})
    assert preview.status_code == 200, preview.content
    assert preview.json()["written"] is False
    assert preview.json()["totals"]["new"] == 2
    assert counts() == (0, 1)

    bad = HEADER + GOOD_ROWS + "Bad,online,1,x,59,10,Nowhere,,\n"
    response = client.post(url, {"file": SimpleUploadedFile("c.csv", bad.encode()), "dry_run": "false"})
    assert response.status_code == 422
    assert response.json()["detail"]["rows"][0]["row"] == 3
    assert counts() == (0, 1)

    done = client.post(url, {"file": SimpleUploadedFile("c.csv", (HEADER + GOOD_ROWS).encode()), "dry_run": "false"})
    assert done.status_code == 200
    assert counts() == (2, 1)

    unreadable = client.post(url, {"file": SimpleUploadedFile("c.xlsx", b"not a workbook"), "file_format": "xlsx"})
    assert unreadable.status_code == 422
    assert "Could not read the XLSX file" in str(unreadable.json()["detail"])
    assert client.post(url, {"file": SimpleUploadedFile("c.txt", b"x"), "file_format": "ods"}).status_code == 422


@pytest.fixture
def api_client_factory(make_api_key):
    from tests.conftest import ApiClient

    return lambda *scopes: ApiClient(make_api_key(*scopes).raw_key)


def test_the_admin_import_shows_row_errors_and_writes_nothing_then_imports_a_good_file(admin_client):
    make_zone(name="Harbour")
    before = counts()
    bad = HEADER + GOOD_ROWS + "Bad,online,1,x,200,10,Harbour,,\n"

    # When the operator uploads a file with a bad row
    response = admin_client.post(
        reverse("admin:cameras_camera_import"),
        {"import_file": SimpleUploadedFile("cameras.csv", bad.encode()), "format": "0", "resource": "0"},
    )

    # Then the preview shows the row's error, offers no confirmation, and nothing is written
    html = response.content.decode()
    assert response.status_code == 200
    assert "less than or equal to 90" in html
    assert "process_import" not in html
    assert counts() == before

    # When a good file is uploaded: a dry-run preview with a confirm form
    response = admin_client.post(
        reverse("admin:cameras_camera_import"),
        {
            "import_file": SimpleUploadedFile("cameras.csv", (HEADER + GOOD_ROWS).encode()),
            "format": "0",
            "resource": "0",
        },
    )
    html = response.content.decode()
    assert "Quay St" in html
    assert counts() == before
    confirm = {
        name: value
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
        if name != "csrfmiddlewaretoken"
    }
    # and confirming imports it
    response = admin_client.post(reverse("admin:cameras_camera_process_import"), confirm)
    assert response.status_code == 302
    assert counts() == (before[0] + 2, before[1])


def test_alerts_and_archive_runs_export_as_csv_and_xlsx(admin_client):
    from django.utils import timezone

    alert_raise(kind=AlertKind.JOB_FAILED, subject="job", message="it failed, with a comma")
    ArchiveRun.objects.create(action="export", table="frame_metadata", partition="p20260101", started_at=timezone.now())

    response = admin_client.post(
        reverse("admin:cameras_alert_export"), {"format": "0", "resource": "0", **_all_export_fields("alert")}
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [(row["kind"], row["message"]) for row in rows] == [("job_failed", "it failed, with a comma")]

    from archival.admin import ArchiveRunResource

    fields = {f"archiverunresource_{name}": "on" for name in ArchiveRunResource().get_export_order()}
    response = admin_client.post(
        reverse("admin:archival_archiverun_export"), {"format": "1", "resource": "0", **fields}
    )
    assert response.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    values = list(workbook.active.values)
    assert values[0][:3] == ("id", "action", "reason")
    assert values[1][5:7] == ("frame_metadata", "p20260101")
