"""Alert rules: valid for promtool, unit-tested alert by alert, in Ceph's style, documented."""

import re
import subprocess

import pytest
import yaml

from tests.conftest import require_tool
from tests.deploy.conftest import DEPLOY, ROOT, exported_metrics, referenced_metrics

RULES = DEPLOY / "prometheus" / "osd-watchdog.rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "tests" / "osd-watchdog.rules.test.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_check_rules_accepts_the_rules():
    out = run(require_tool("promtool"), "check", "rules", str(RULES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in out.stdout


def test_promtool_rule_unit_tests_pass():
    out = run(require_tool("promtool"), "test", "rules", str(RULE_TESTS))
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_unit_test_in_which_it_fires():
    fired = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {a["alert"] for a in alerts()} <= fired


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_alerts_follow_cephs_style(alert):
    assert alert["labels"]["severity"] in {"critical", "warning"}
    assert alert["labels"]["type"] == "ceph_default"
    assert set(alert["annotations"]) == {"summary", "description", "documentation"}


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_each_alert_links_to_its_runbook_section(alert):
    anchor = alert["annotations"]["documentation"].rsplit("#", 1)[1]
    headings = re.findall(r"^## (\S+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    assert anchor in {h.lower() for h in headings}
    assert anchor == alert["alert"].lower()


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_alerts_use_only_metrics_the_watchdog_exports(alert):
    used = referenced_metrics(alert["expr"])
    assert used or "up{" in alert["expr"]
    assert used <= exported_metrics()


def test_the_example_scrape_config_is_valid_for_prometheus(tmp_path):
    config = yaml.safe_load((DEPLOY / "prometheus" / "scrape-config.yml").read_text())
    config["rule_files"] = [str(RULES)]  # the example points at /etc/prometheus/rules
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    out = run(require_tool("promtool"), "check", "config", str(path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert [job["job_name"] for job in config["scrape_configs"]] == ["osd-watchdog"]


def test_the_example_alertmanager_config_pages_for_a_zombie_only():
    amtool = require_tool("amtool")
    config = str(DEPLOY / "alertmanager" / "alertmanager.yml")
    out = run(amtool, "check-config", config)
    assert out.returncode == 0, out.stdout + out.stderr

    def route(*labels: str) -> str:
        result = run(amtool, "config", "routes", "test", f"--config.file={config}", *labels)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert route("alertname=CephOSDZombie", "severity=critical", "type=ceph_default") == (
        "ceph-pager"
    )
    assert route("alertname=CephOSDFdPressure", "severity=warning", "type=ceph_default") == (
        "ceph-chat"
    )
