"""Every query shipped for ops (alert rules, dashboard) reads metrics the service really exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import DASHBOARD, RULES, Hotline, Promtool, exported_names, metric_names_in

# Grafana's variables, replaced by what they stand for so promtool can parse the query.
_GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__range": "1h",
    "$__interval": "1m",
    "$instance": ".*",
}
_RECORDING_NAME = re.compile(r"(?<![\w:])([a-zA-Z_]\w*:[\w:]+)")


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels inside a collapsed row


def _dashboard_queries() -> list[str]:
    dashboard = _dashboard()
    queries = [
        target["expr"] for panel in _panels(dashboard) for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable.get("type") == "query":
            queries.append(variable["definition"])
    return queries


def _as_promql(query: str) -> str:
    for variable, value in _GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    return query


async def test_rules_and_dashboard_read_only_exported_metrics(hotline: Hotline) -> None:
    """Each hotline_/process_ name in the rules and the dashboard is on a live /metrics."""
    status, body = await hotline.http_get("/metrics", token=None)
    assert status == 200
    exported = exported_names(body)
    wanted = {
        (source, name)
        for source, queries in (
            ("rules", [rule["expr"] for rule in _rules()]),
            ("dashboard", _dashboard_queries()),
        )
        for query in queries
        for name in metric_names_in(query)
    }
    assert len(wanted) > 30  # the parser found the queries' names, not nothing
    assert sorted(item for item in wanted if item[1] not in exported) == []


def test_the_name_check_can_fail() -> None:
    """A misspelt metric in a query is found: the parser sees names, not functions or labels."""
    names = metric_names_in(
        'sum by (line) (rate(hotline_cals_total{line="hotline_x"}[5m])) / job:hotline_y:rate5m'
    )
    assert names == {"hotline_cals_total"}
    assert "hotline_cals_total" not in exported_names(
        "# HELP hotline_calls_total Calls.\n# TYPE hotline_calls_total counter\n"
    )


def test_recording_rules_used_are_defined() -> None:
    """Recording-rule names in alert expressions and the dashboard are recorded by the rules."""
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    used = {
        name
        for query in [rule["expr"] for rule in _rules()] + _dashboard_queries()
        for name in _RECORDING_NAME.findall(re.sub(r'"(?:[^"\\]|\\.)*"', '""', query))
    }
    assert used - recorded == set()


def test_dashboard_queries_parse_as_promql(promtool: Promtool, tmp_path: Path) -> None:
    """promtool parses every dashboard query (as recording rules, Grafana variables filled in)."""
    queries = [q for q in _dashboard_queries() if not q.startswith("label_values(")]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": _as_promql(q)}
                    for i, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    result = promtool.run("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(queries)} rules found" in result.stdout


def test_dashboard_is_importable() -> None:
    """The dashboard asks for a Prometheus datasource input and every panel uses it."""
    dashboard = _dashboard()
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert [(i["name"], i["pluginId"]) for i in dashboard["__inputs"]] == [
        ("DS_PROMETHEUS", "prometheus")
    ]
    panels = [panel for panel in _panels(dashboard) if panel["type"] != "row"]
    assert len({panel["id"] for panel in _panels(dashboard)}) == len(list(_panels(dashboard)))
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
            assert target["expr"].strip(), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


@pytest.mark.parametrize(
    "topic",
    ["hotline_calls_total", "hotline_active_calls", "hotline_ivr_selections_total",
     "hotline_ivr_timeouts_total", "hotline_emergency_handoffs_total",
     "hotline_emergency_handoff_seconds_bucket", "hotline_tickets_total",
     "hotline_ticket_outbox_pending", "hotline_ami_connected", "hotline_queue_calls_total",
     "hotline_queue_wait_seconds_bucket", "hotline_agi_session_seconds_bucket"],
)
def test_dashboard_covers(topic: str) -> None:
    """The dashboard has a panel on each figure ops asked for."""
    assert any(topic in metric_names_in(query) for query in _dashboard_queries())
