import pytest

from cameras.choices import AlertKind, AlertSeverity, AlertState
from cameras.models import Alert
from cameras.services.alerts import alert_raise, alert_resolve_one
from its_camera.choices import ApiScope
from tests.cameras.factories import make_camera
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db


def test_alert_list_is_newest_first_with_filters_and_camera_names(api_client):
    camera = make_camera(name="Gate 4")
    offline = alert_raise(kind=AlertKind.CAMERA_OFFLINE, camera=camera, message="gone")
    failing = alert_raise(kind=AlertKind.JOB_FAILED, subject="rollups", message="boom", severity=AlertSeverity.CRITICAL)
    old = alert_raise(kind=AlertKind.ROLLUP_LAG, message="lag")
    alert_resolve_one(alert=old, resolved_by="ops")

    everything = api_client.get("/api/v1/alerts").json()["results"]
    open_only = api_client.get("/api/v1/alerts?state=open").json()["results"]
    critical = api_client.get("/api/v1/alerts?severity=critical").json()["results"]
    for_camera = api_client.get(f"/api/v1/alerts?camera={camera.pk}").json()["results"]
    by_kind = api_client.get("/api/v1/alerts?kind=job_failed&kind=rollup_lag").json()["results"]

    assert [alert["id"] for alert in everything] == [old.pk, failing.pk, offline.pk]
    assert [alert["id"] for alert in open_only] == [failing.pk, offline.pk]
    assert [alert["id"] for alert in critical] == [failing.pk]
    assert [(alert["id"], alert["camera_name"]) for alert in for_camera] == [(offline.pk, "Gate 4")]
    assert [alert["id"] for alert in by_kind] == [old.pk, failing.pk]


def test_acknowledge_then_resolve_through_the_api_records_the_key(make_api_key):
    client = ApiClient(make_api_key(ApiScope.ALERTS_WRITE, ApiScope.CAMERAS_READ, name="noc console").raw_key)
    alert = alert_raise(kind=AlertKind.METRIC_THRESHOLD, subject="gpu_temp", message="hot")

    acknowledged = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge")
    resolved = client.post(f"/api/v1/alerts/{alert.pk}/resolve")
    resolved_again = client.post(f"/api/v1/alerts/{alert.pk}/resolve")

    assert acknowledged.status_code == 200
    assert acknowledged.json()["state"] == "acknowledged"
    assert resolved.json()["state"] == "resolved"
    assert resolved_again.status_code == 200
    alert.refresh_from_db()
    assert (alert.state, alert.acknowledged_by, alert.resolved_by) == (
        AlertState.RESOLVED,
        "api:noc console",
        "api:noc console",
    )


def test_acknowledging_a_resolved_alert_is_409_and_changes_nothing(api_client):
    alert = alert_raise(kind=AlertKind.ROLLUP_LAG, message="lag")
    alert_resolve_one(alert=alert, resolved_by="ops")

    response = api_client.post(f"/api/v1/alerts/{alert.pk}/acknowledge")

    assert response.status_code == 409
    assert "already resolved" in response.json()["detail"]
    alert.refresh_from_db()
    assert (alert.state, alert.acknowledged_at) == (AlertState.RESOLVED, None)


def test_alert_actions_need_the_alerts_scope(make_api_key):
    reader = ApiClient(make_api_key(ApiScope.CAMERAS_READ, ApiScope.CAMERAS_WRITE).raw_key)
    alert = alert_raise(kind=AlertKind.ROLLUP_LAG, message="lag")

    assert reader.get("/api/v1/alerts").status_code == 200
    assert reader.post(f"/api/v1/alerts/{alert.pk}/acknowledge").status_code == 403
    assert reader.post(f"/api/v1/alerts/{alert.pk}/resolve").status_code == 403
    assert Alert.objects.get().state == AlertState.OPEN


def test_unknown_alert_is_404(api_client):
    assert api_client.post("/api/v1/alerts/999999/acknowledge").status_code == 404
    assert api_client.post("/api/v1/alerts/999999/resolve").status_code == 404


def test_alert_list_pages_follow_the_cursor(api_client):
    alerts = [alert_raise(kind=AlertKind.JOB_FAILED, subject=f"job {n}", message="x") for n in range(5)]

    first = api_client.get("/api/v1/alerts?page_size=2").json()
    second = api_client.get(first["next"]).json()
    third = api_client.get(second["next"]).json()

    ids = [alert["id"] for page in (first, second, third) for alert in page["results"]]
    assert ids == [alert.pk for alert in reversed(alerts)]
    assert third["next"] is None
