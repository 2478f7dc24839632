"""The Grafana dashboard is current, well-formed, and the provisioning files point where compose mounts it."""

from __future__ import annotations

import importlib.util
import json

import yaml

from tests.infra.conftest import INFRA

GRAFANA = INFRA / "grafana"


def _generator():
    spec = importlib.util.spec_from_file_location("make_dashboard", GRAFANA / "make_dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_committed_json_is_what_the_generator_writes() -> None:
    committed = (GRAFANA / "dashboards" / "retouch.json").read_text()
    assert committed == _generator().render(), "run: python infra/grafana/make_dashboard.py"


def test_dashboard_is_well_formed() -> None:
    board = json.loads((GRAFANA / "dashboards" / "retouch.json").read_text())
    panels = board["panels"]
    assert board["uid"] and len(board["uid"]) <= 40
    assert len({panel["id"] for panel in panels}) == len(panels)
    # Every query goes through the $datasource variable, so the board works against any Prometheus.
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
    # No two panels overlap on the grid.
    cells = [(x, y) for p in panels for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
             for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])]
    assert len(cells) == len(set(cells))


def test_dashboard_covers_what_operators_ask() -> None:
    titles = {panel["title"] for panel in json.loads((GRAFANA / "dashboards" / "retouch.json").read_text())["panels"]}
    for needed in ("Tasks by outcome", "Stage duration p95", "Engine duration p95", "Failures by reason",
                   "Upload to output lag", "Source SQS backlog", "GPU memory used", "GPU utilisation"):
        assert needed in titles


def test_provisioning_matches_compose_mounts() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "retouch.yml").read_text())
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    compose = yaml.safe_load((INFRA / "compose" / "docker-compose.yml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert f"../grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in volumes
    assert "../grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]
