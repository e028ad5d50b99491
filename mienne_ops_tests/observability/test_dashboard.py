"""The Grafana dashboard and the README are built on the metric names the code exports (the catalog)."""

import json
import re
from pathlib import Path

from mienne_ops.observability.catalog import EXPOSED_SERIES, METRICS

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bmienne_ops_[a-z0-9_]+\b")


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "mienne-ops.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_dashboard_query_uses_only_exported_metrics():
    exprs = dashboard_exprs()
    assert exprs
    for expr in exprs:
        used = set(NAME.findall(expr))
        assert used, expr
        assert used <= EXPOSED_SERIES, (expr, used - EXPOSED_SERIES)


def test_every_exported_metric_is_on_the_dashboard():
    used = {name for expr in dashboard_exprs() for name in NAME.findall(expr)}
    histogram_series = {f"{m.name}_bucket" for m in METRICS if m.kind == "histogram"}
    for metric in METRICS:
        assert metric.name in used or f"{metric.name}_bucket" in used & histogram_series, metric.name


def test_the_readme_documents_every_metric_and_no_other():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Metrics and SLOs") :]
    section = section[: section.find("\n## ", 1)] if "\n## " in section[1:] else section
    for metric in METRICS:
        assert f"`{metric.name}`" in section, metric.name
    assert set(NAME.findall(section)) <= EXPOSED_SERIES | {"mienne_ops_api_request_duration_seconds_bucket"}
