"""Every metric name in the dashboard's and the alert rules' PromQL is one the code really exports.

The names are pulled from the expressions with a small tokenizer (strings, label matchers, grouping
clauses, durations and function names removed); promtool then checks every dashboard expression's
syntax by loading them all as recording rules.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.infra._exposition import exported_series_names
from tests.infra.conftest import INFRA, run, tool

DASHBOARD = INFRA / "grafana" / "dashboards" / "retouch.json"
RULES = INFRA / "prometheus" / "rules" / "retouch-alerts.yml"

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "inf", "nan", "le",
}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def metric_names(expr: str) -> set[str]:
    """Metric names in one PromQL expression."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals (label values, regexes)
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range and subquery durations
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        token = match.group()
        following = expr[match.end():].lstrip()
        if following.startswith("(") or token.lower() in KEYWORDS:
            continue  # a function call or an operator keyword
        if re.fullmatch(r"\d+[smhdwy]", token) or match.start() and expr[match.start() - 1].isdigit():
            continue  # part of a number such as 1e9
        names.add(token)
    return names


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    nested = [child for panel in panels for child in panel.get("panels", [])]
    return [target["expr"] for panel in panels + nested for target in panel.get("targets", [])]


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_tokenizer_finds_names_and_only_names() -> None:
    expr = ('histogram_quantile(0.95, sum by (le, stage) (rate(retouch_stage_seconds_bucket{stage=~"a|b"}[5m])))'
            ' / ignoring(reason) group_left sum(up{job="x"} offset 1h) > 1e9 and on() vector(0) == bool 0')
    assert metric_names(expr) == {"retouch_stage_seconds_bucket", "up"}


@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_every_metric_used_is_exported(source: str) -> None:
    expressions = dashboard_expressions() if source == "dashboard" else rule_expressions()
    assert expressions
    used = set().union(*map(metric_names, expressions))
    unknown = used - exported_series_names()
    assert not unknown, f"{source} uses metrics the code does not export: {sorted(unknown)}"


def test_every_exported_metric_is_watched() -> None:
    # Not a hard rule of Prometheus, but a metric nobody graphs or alerts on is one nobody reads.
    used = set().union(*map(metric_names, dashboard_expressions() + rule_expressions()))
    exported = {re.sub(r"_(sum|count)$", "_bucket", name) for name in exported_series_names()}
    used = {re.sub(r"_(sum|count)$", "_bucket", name) for name in used}
    assert exported - used == set()


def test_dashboard_expressions_parse(tmp_path) -> None:
    # Given every dashboard expression as a recording rule, Grafana's variables given concrete values
    rules = [{"record": f"dashboard:expr{index}", "expr": expr.replace("$__rate_interval", "5m")}
             for index, expr in enumerate(dashboard_expressions())]
    path = tmp_path / "dashboard-exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    # Then promtool's parser accepts all of them
    run(tool("promtool"), "check", "rules", str(path))
