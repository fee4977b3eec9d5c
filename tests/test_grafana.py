"""The Grafana dashboard in docs/grafana/ asks only for metrics the appliance exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from appliance.llm.types import EngineInfo
from appliance.ops.metrics import Metrics

DASHBOARDS = sorted((Path(__file__).parent.parent / "docs" / "grafana").glob("*.json"))
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"),
             "gauge": ("",), "info": ("_info",)}  # fmt: skip


def exported() -> set[str]:
    """Every series name an app's registry can export, its collectors' included."""
    metrics = Metrics()
    metrics.watch_engine(lambda: EngineInfo(
        model="m", ready=True, load_error=None, queued=0, busy=False, pending=0,
        gpu_offload_supported=False, gpu_layers=0, completed=0, cancelled=0))  # fmt: skip
    metrics.watch_files(dict)
    names = set()
    for family in metrics.registry.collect():
        names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
    return names


def asked(dashboard: dict[str, object]) -> set[str]:
    panels = dashboard["panels"]
    assert isinstance(panels, list)
    exprs = [t["expr"] for panel in panels for t in panel["targets"]]
    assert exprs
    return {name for e in exprs for name in re.findall(r"\bappliance_[a-z_]+", e)}


def test_there_is_a_dashboard() -> None:
    assert DASHBOARDS


def test_every_query_names_a_metric_that_exists() -> None:
    names = exported()
    assert "appliance_http_requests_total" in names  # the test's own view of the registry
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        unknown = asked(dashboard) - names
        assert unknown == set(), f"{path.name} asks for metrics nobody exports: {unknown}"


def test_the_dashboard_covers_what_an_operator_watches() -> None:
    wanted = {"appliance_http_requests_total", "appliance_time_to_first_token_seconds_bucket",
              "appliance_inter_token_latency_seconds_bucket", "appliance_engine_queue_length",
              "appliance_answers_total", "appliance_documents",
              "appliance_process_resident_memory_bytes"}  # fmt: skip
    for path in DASHBOARDS:
        assert wanted <= asked(json.loads(path.read_text())), path.name
