"""Metrics (issue 27): what each recorded manifest move emits, with metrics off nothing at all, and
an emission error never fails a task. The StatsD wire is tested in tests/integration/test_metrics_dag.py."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aihubmix import metrics
from airflow_provider_aihubmix.engine.ledger import ManifestLedger
from airflow_provider_aihubmix.engine.manifest import Manifest, ManifestStatus, TaskIdentity
from airflow_provider_aihubmix.responses.shapes import TaskHandle
from airflow_provider_aihubmix.storage import LocalObjectStore

IDENTITY = TaskIdentity(dag_id="campaign", run_id="r", task_id="t", map_index=0, try_number=1)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any, dict[str, Any]]] = []

    def incr(self, stat: str, count: int = 1, rate: float = 1, *, tags: dict[str, Any] | None = None) -> None:
        self.calls.append(("incr", stat, count, tags or {}))

    def gauge(self, stat: str, value: float, *, tags: dict[str, Any] | None = None) -> None:
        self.calls.append(("gauge", stat, value, tags or {}))

    def timing(self, stat: str, dt: Any, *, tags: dict[str, Any] | None = None) -> None:
        self.calls.append(("timing", stat, dt, tags or {}))

    def names(self) -> list[str]:
        return [c[1] for c in self.calls]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    monkeypatch.setattr(metrics, "_airflow_stats", lambda: rec)
    return rec


def ledger_and_manifest(tmp_path: Path) -> tuple[ManifestLedger, Manifest]:
    ledger = ManifestLedger(LocalObjectStore(tmp_path.as_uri()), "campaign/r/t/0")
    manifest = Manifest.for_task(
        IDENTITY,
        status=ManifestStatus.SUBMITTING,
        fingerprint="f" * 64,
        model="openai/gpt-image-1-mini",
        family="openai",
        input={"prompt": "a secret prompt"},
    )
    return ledger, manifest


def test_a_paid_request_counts_once_and_its_purchase_adds_images_bytes_and_cost(
    tmp_path: Path, recorder: Recorder
) -> None:
    ledger, manifest = ledger_and_manifest(tmp_path)
    ledger.submitting(manifest)
    ledger.received(manifest, [], usage=None, request_id="req")
    records = [{"bytes": 100}, {"bytes": 23}]
    ledger.complete(manifest, records, cost={"estimated": 0.011, "actual": 0.0105}, request_id="req")

    counters = {(c[1], c[3].get("outcome")): c[2] for c in recorder.calls if c[0] == "incr"}
    assert counters == {
        ("aihubmix.requests", "success"): 1,
        ("aihubmix.images.stored", None): 2,
        ("aihubmix.images.bytes", None): 123,
        ("aihubmix.spend.estimated_microusd", None): 11_000,
        ("aihubmix.spend.actual_microusd", None): 10_500,
    }
    assert recorder.names().count("aihubmix.request.duration") == 1
    for _, _, _, tags in recorder.calls:
        assert tags["model"] == "openai/gpt-image-1-mini" and tags["dag_id"] == "campaign"
        assert "prompt" not in str(tags)


def test_an_unknown_actual_cost_is_counted_apart_never_as_zero(tmp_path: Path, recorder: Recorder) -> None:
    ledger, manifest = ledger_and_manifest(tmp_path)
    ledger.submitting(manifest)
    ledger.received(manifest, [], usage=None, request_id=None)
    ledger.complete(manifest, [{"bytes": 1}], cost={"estimated": None, "actual": None}, request_id=None)
    assert "aihubmix.spend.actual_microusd" not in recorder.names()
    assert ("incr", "aihubmix.spend.unknown", 1) in [c[:3] for c in recorder.calls]


@pytest.mark.parametrize(
    ("move", "error_type", "outcome"),
    [
        ("failed", "AIHubMixModerationError", "moderated"),
        ("failed", "AIHubMixRateLimitError", "rate_limited"),
        ("failed", "AIHubMixUpstreamError", "upstream_error"),
        ("failed", "AIHubMixBadRequestError", "refused"),
        ("ambiguous", "AIHubMixPossiblyBilledError", "possibly_billed"),
    ],
)
def test_a_request_without_images_is_counted_by_outcome(
    tmp_path: Path, recorder: Recorder, move: str, error_type: str, outcome: str
) -> None:
    ledger, manifest = ledger_and_manifest(tmp_path)
    ledger.submitting(manifest)
    getattr(ledger, move)(manifest, error="no", request_id=None, error_type=error_type)
    assert [c[3]["outcome"] for c in recorder.calls if c[1] == "aihubmix.requests"] == [outcome]
    assert not {"aihubmix.images.stored", "aihubmix.spend.actual_microusd"} & set(recorder.names())


def test_an_async_task_counts_its_request_when_accepted_and_its_wait_when_collected(
    tmp_path: Path, recorder: Recorder
) -> None:
    ledger, manifest = ledger_and_manifest(tmp_path)
    ledger.submitting(manifest)
    ledger.submitted(manifest, TaskHandle(task_id="t-1"), usage=None, request_id=None)
    ledger.received(manifest, [], usage=None, request_id=None)
    assert recorder.names().count("aihubmix.requests") == 1
    assert recorder.names().count("aihubmix.task.wait") == 1


def test_an_emission_error_is_swallowed_and_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            raise OSError("statsd down")

    monkeypatch.setattr(metrics, "_airflow_stats", Broken)
    monkeypatch.setattr(metrics, "_failed_once", False)
    ledger, manifest = ledger_and_manifest(tmp_path)
    ledger.submitting(manifest)
    ledger.failed(manifest, error="no", error_type="AIHubMixRateLimitError")  # recorded all the same
    assert ledger.load() is not None and ledger.load().status is ManifestStatus.FAILED  # type: ignore[union-attr]
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "statsd down" in caplog.text


def test_with_metrics_off_no_socket_is_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures.statsd import reinitialize_stats

    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "False")
    monkeypatch.setenv("AIRFLOW__METRICS__OTEL_ON", "False")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_DATADOG_ENABLED", "False")
    reinitialize_stats()
    opened: list[Any] = []
    real = socket.socket

    class Watched(real):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            opened.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(socket, "socket", Watched)
    ledger, manifest = ledger_and_manifest(tmp_path)
    ledger.submitting(manifest)
    ledger.received(manifest, [], usage=None, request_id=None)
    ledger.complete(manifest, [{"bytes": 5}], cost={"estimated": 0.01, "actual": 0.01}, request_id=None)
    metrics.budget_refused(model="m", family="f", dag_id="d")
    with metrics.running_trigger("prediction"):
        pass
    assert opened == []


def test_tag_values_keep_only_what_airflow_accepts() -> None:
    assert metrics.tag_value("openai/gpt-image-1-mini") == "openai/gpt-image-1-mini"
    assert metrics.tag_value("a b,c=d:e|f") == "a_b_c_d_e_f"


def test_the_docs_print_the_table() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "METRICS.md").read_text()
    assert metrics.metrics_table() in text


def test_the_dashboard_queries_only_documented_metrics() -> None:
    import json
    import re

    path = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
    dashboard = json.loads(path.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"airflow_aihubmix_[a-z_]+", e)}
    documented = {"airflow_" + m.name.replace(".", "_") for m in metrics.METRICS}
    assert used and used <= documented, used - documented
    assert {"airflow_aihubmix_spend_actual_microusd", "airflow_aihubmix_request_duration"} <= used
