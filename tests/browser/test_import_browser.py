"""Importing cameras in Chromium: a file with a bad row shows the row's error and writes nothing; a good file
shows a dry-run preview, and confirming it imports. Screenshots 50-52."""

import pytest
from django.urls import reverse

from cameras.models import Camera
from tests.cameras.factories import make_zone

from .support import CHROMIUM, sign_in, snap

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (.ci/run installs it)")

HEADER = "name,status,is_active,location,latitude,longitude,zone,tags,config\n"
GOOD = (
    HEADER
    + 'Quay St,online,1,Harbour Rd,59.91,10.72,Harbour,junction,"{""fps"": 25}"\n'
    + "Pier 4,offline,1,Pier,59.905,10.71,Harbour,,\n"
)


def upload(page, text: str) -> None:
    page.goto(reverse("admin:cameras_camera_import"))
    file = {"name": "cameras.csv", "mimeType": "text/csv", "buffer": text.encode()}
    page.set_input_files("#id_import_file", files=[file])
    page.select_option("#id_format", label="csv")
    with page.expect_navigation():
        page.click("input[type=submit]")


def test_an_operator_imports_cameras_from_a_csv_file(page):
    make_zone(name="Harbour")
    sign_in(page)

    upload(page, GOOD + "Bad,online,1,x,200,10,Nowhere,,\n")
    page.wait_for_selector("text=Unknown zone 'Nowhere'")
    assert page.locator("input[name=confirm], form#confirm-import-form, [name=import_file_name]").count() == 0
    assert Camera.objects.count() == 0
    snap(page, "50-import-bad-row")

    upload(page, GOOD)
    page.wait_for_selector("text=Quay St")
    assert Camera.objects.count() == 0  # the preview is a dry run
    snap(page, "51-import-preview")
    page.click("form[action$='process_import/'] input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    assert set(Camera.objects.values_list("name", flat=True)) == {"Quay St", "Pier 4"}
    snap(page, "52-import-done")
