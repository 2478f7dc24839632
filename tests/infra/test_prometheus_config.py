"""promtool on the Prometheus configs, the alert rules and the rules' unit tests."""

from __future__ import annotations

import subprocess

import pytest

from tests.infra.conftest import INFRA, run, tool

PROMETHEUS = INFRA / "prometheus"


def test_static_config_is_valid() -> None:
    # Also loads every rule file the config names, so a broken rule fails here too.
    out = run(tool("promtool"), "check", "config", "prometheus.yml", cwd=PROMETHEUS)
    assert "1 rule files found" in out.stdout


def test_kubernetes_config_is_valid() -> None:
    promtool = tool("promtool")
    result = subprocess.run([promtool, "check", "config", "prometheus-kubernetes.yml"], cwd=PROMETHEUS,
                            capture_output=True, text=True, timeout=60)
    if "field kubernetes_sd_configs not found" in result.stdout + result.stderr:
        # Debian builds Prometheus without the Kubernetes discovery (its client-go is not packaged).
        pytest.skip("this promtool is built without kubernetes_sd_configs (Debian's build); upstream's has it")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_are_valid() -> None:
    out = run(tool("promtool"), "check", "rules", *map(str, sorted((PROMETHEUS / "rules").glob("*.yml"))))
    assert "SUCCESS" in out.stdout


def test_rules_unit_tests_pass() -> None:
    tests = sorted(str(path.relative_to(PROMETHEUS)) for path in (PROMETHEUS / "tests").glob("*.yml"))
    assert tests, "no promtool rule tests found"
    run(tool("promtool"), "test", "rules", *tests, cwd=PROMETHEUS)


def test_every_alert_has_a_unit_test() -> None:
    import yaml

    rules = yaml.safe_load((PROMETHEUS / "rules" / "retouch-alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    tested: set[str] = set()
    for path in (PROMETHEUS / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {check["alertname"] for check in case.get("alert_rule_test", []) if check["exp_alerts"]}
    assert alerts - tested == set(), "alerts never shown to fire in a unit test"


def test_every_alert_has_severity_and_summary() -> None:
    import yaml

    rules = yaml.safe_load((PROMETHEUS / "rules" / "retouch-alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]
