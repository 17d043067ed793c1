"""deploy/prometheus/alerts.yml: valid rules that fire on the series they watch, checked with Prometheus's own
`promtool` (Debian's `prometheus` package; .ci/run installs it)."""

import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

RULES = Path(settings.BASE_DIR) / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=RULES, capture_output=True, text=True, timeout=60)


def test_the_rules_are_valid():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_each_rule_fires_on_its_series_and_not_before():
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_every_metric_the_rules_watch_is_one_the_platform_exports():
    import re

    from its_camera import metrics

    watched = set(re.findall(r"\b(its_[a-z_]+)\b(?![.\w])", (RULES / "alerts.yml").read_text()))
    exported = {name.removesuffix("_count") for name in watched}
    body = metrics.render_metrics().decode()
    missing = {name for name in exported if f"# TYPE {name} " not in body and f"# HELP {name} " not in body}
    assert not missing, f"rules watch metrics /metrics does not export: {missing}"
