"""Log lines carry the date, the level, the logger and a request id that follows the request into the Celery
tasks it queues (a real worker process reads it from the message); LOG_FORMAT=json writes JSON lines."""

import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings

from config.celery import app as celery_app
from its_camera.logs import HEADER, JsonFormatter, RequestIdFilter, request_id_context
from its_camera.tasks import PING


@pytest.fixture
def captured():
    """A handler on django.request (which logs every 4xx) with the project's filter and a chosen formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)

    def use(formatter: logging.Formatter) -> io.StringIO:
        handler.setFormatter(formatter)
        return stream

    yield use
    logger.removeHandler(handler)


def test_a_request_gets_an_id_that_its_log_lines_and_response_carry(client, captured):
    stream = captured(logging.Formatter(settings.LOGGING["formatters"]["text"]["format"], "%Y-%m-%d %H:%M:%S"))

    response = client.get("/no-such-page")  # a 404: django.request logs a warning

    request_id = response[HEADER]
    assert len(request_id) == 32
    line = stream.getvalue().strip()
    # date and time, level, logger, request id, message
    date, clock, level, logger, tag, *message = line.split()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", date)
    assert re.fullmatch(r"\d{2}:\d{2}:\d{2}", clock)
    assert (level, logger, tag) == ("WARNING", "django.request", f"[{request_id}]")
    assert "Not Found" in " ".join(message)


@pytest.mark.parametrize(
    ("given", "kept"),
    [("lb-7f3a.19", True), ("x" * 64, True), ("x" * 65, False), ("bad id", False), ("<script>", False), ("", False)],
)
def test_the_callers_request_id_is_kept_only_when_it_is_safe(client, given, kept):
    response = client.get("/health/live", HTTP_X_REQUEST_ID=given)
    assert (response[HEADER] == given) is kept
    assert len(response[HEADER]) <= 64


def test_json_lines(client, captured):
    stream = captured(JsonFormatter())
    response = client.get("/no-such-page", HTTP_X_REQUEST_ID="trace-42")
    entry = json.loads(stream.getvalue().strip())
    assert response[HEADER] == "trace-42"
    assert entry["request_id"] == "trace-42"
    assert (entry["level"], entry["logger"]) == ("WARNING", "django.request")
    assert entry["time"].endswith("+00:00")
    assert "Not Found" in entry["message"]


def test_a_log_format_other_than_text_or_json_refuses_to_start():
    result = subprocess.run(
        [sys.executable, "-c", "import django, os; django.setup()"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "LOG_FORMAT": "xml"},
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        timeout=60,
    )
    assert result.returncode != 0
    assert "LOG_FORMAT must be 'text' or 'json'" in result.stderr


def test_the_request_id_follows_into_a_task_run_by_a_real_worker():
    # Given a real Celery worker on its own queue, logging JSON lines to a file
    queue = f"its-logs-{uuid.uuid4().hex[:8]}"
    log = Path(tempfile.mkstemp(prefix="its-worker-", suffix=".log")[1])
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "LOG_FORMAT": "json"}
    with log.open("w") as output:
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-l", "INFO",
                "-Q", queue, "-n", f"{queue}@%h", "--without-mingle", "--without-gossip",
            ],
            cwd=settings.BASE_DIR, env=environment, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        # When a request (its id in context) queues the ping task
        token = uuid.uuid4().hex
        with request_id_context("req-7f3a19"):
            # Through the project's app explicitly: another test may have left a different app "current".
            celery_app.send_task(PING, args=[token], queue=queue)

        # Then the worker runs it, and its log line carries the request's id and the task's id and name
        client = redis.Redis.from_url(settings.REDIS_URL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not client.get(f"its:ping:{token}"):
            time.sleep(0.2)
        assert client.get(f"its:ping:{token}") == b"pong", log.read_text()[-3000:]
        entries = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        pinged = [entry for entry in entries if entry["message"] == f"ping {token}"]
        assert len(pinged) == 1, log.read_text()[-3000:]
        assert pinged[0]["request_id"] == "req-7f3a19"
        assert pinged[0]["task_name"] == "its_camera.tasks.ping"
        assert len(pinged[0]["task_id"]) == 36
        assert pinged[0]["logger"] == "its_camera.tasks"
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.unlink(missing_ok=True)


def test_lines_after_the_request_belong_to_no_request(client):
    from its_camera.logs import current_request_id

    client.get("/health/live")
    assert current_request_id() == "-"
