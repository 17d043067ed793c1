"""Long commands show what they do and how far: one line rewritten in place on a terminal, a bounded number of
whole lines otherwise (a log file is not flooded)."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command

from its_camera.progress import ProgressReporter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_without_a_terminal_lines_come_per_stage_and_at_most_every_interval():
    # Given a reporter on a pipe with a 10 s interval, and a 10,000-step stage taking 100 s
    out, clock = io.StringIO(), FakeClock()
    reporter = ProgressReporter(out, is_tty=False, log_interval=10.0, unit=" hour(s)", clock=clock)

    for step in range(10_001):
        clock.now = 1000.0 + step / 100
        reporter("rollups rebuild (up to …)", step, 10_000)
    reporter("retention frames (export p20260101)", 0, 2)
    reporter("retention frames (export p20260101)", 1, 2)  # same stage, within the interval: held back
    reporter.finish()

    # Then 11 lines for the long stage (start + every 10 s), one for the new stage, one for the last state
    lines = out.getvalue().splitlines()
    assert len(lines) == 13
    assert lines[0] == "rollups rebuild (up to …): 0/10000 hour(s) (0%), 0 s"
    assert lines[1] == "rollups rebuild (up to …): 1000/10000 hour(s) (10%), 10 s"
    assert lines[10] == "rollups rebuild (up to …): 10000/10000 hour(s) (100%), 100 s"
    assert lines[11].startswith("retention frames (export p20260101): 0/2")
    assert lines[12].startswith("retention frames (export p20260101): 1/2 hour(s) (50%)")
    assert "\r" not in out.getvalue()


def test_on_a_terminal_one_line_is_rewritten_in_place():
    out, clock = io.StringIO(), FakeClock()
    reporter = ProgressReporter(out, is_tty=True, tty_interval=0.1, clock=clock)
    for step in range(1001):
        clock.now = 1000.0 + step / 1000  # 1 s in all: ~10 redraws
        reporter("partitions frame_metadata", step, 1000)
    reporter.finish()
    text = out.getvalue()
    assert text.count("\n") == 1  # the line is ended once, at the end
    assert 10 <= text.count("\r") <= 13
    assert text.rstrip().endswith("1000/1000 (100%), 1 s")


def test_an_unknown_total_shows_the_count_only():
    out = io.StringIO()
    reporter = ProgressReporter(out, is_tty=False, unit=" B")
    reporter("restore p1 (loading)", 4096, None)
    assert out.getvalue().startswith("restore p1 (loading): 4096 B, ")


@pytest.mark.django_db
def test_partitions_apply_reports_each_table():
    out = io.StringIO()
    call_command("partitions", "apply", stdout=out)
    text = out.getvalue()
    for table in ("frame_metadata", "detections", "system_metrics"):
        assert f"partitions {table}: 0/" in text
    assert "(100%)" in text
    assert "\r" not in text  # not a terminal: whole lines


@pytest.mark.django_db
def test_rollups_rebuild_reports_its_windows():
    from django.utils import timezone

    until = timezone.now().replace(minute=0, second=0, microsecond=0)
    out = io.StringIO()
    call_command(
        "rollups", "rebuild", "--since", (until - timedelta(hours=6)).isoformat(), "--until", until.isoformat(),
        stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    assert "rollups rebuild: 0/" in text
    assert "(100%)" in text
    assert len(text.splitlines()) <= 4  # start, one stage line at most per 10 s, the last state, the summary
