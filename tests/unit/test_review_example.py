"""The human-review example parses where Airflow has the human-in-the-loop operators, and says why
it defines nothing where it has not (its run end to end is in tests/e2e/test_gallery_e2e.py)."""

from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path

import pytest
from airflow.sdk import DAG

EXAMPLE = Path(__file__).resolve().parents[2] / "example_dags" / "aihubmix_review_and_publish.py"
HITL_MODULE = "airflow.providers.standard.operators.hitl"


def load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, object]:
    monkeypatch.setenv("AIHUBMIX_OUTPUT_URI", (tmp_path / "out").as_uri())
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    monkeypatch.delitem(sys.modules, "_common", raising=False)
    return runpy.run_path(str(EXAMPLE), run_name="example_review")


def test_the_example_asks_between_generating_and_publishing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip(HITL_MODULE, reason="needs the human-in-the-loop operators (Airflow >= 3.1)")
    dags = [v for v in load(monkeypatch, tmp_path).values() if isinstance(v, DAG)]
    (dag,) = dags
    assert dag.dag_id == "aihubmix_review_and_publish"
    assert dag.get_task("review").upstream_task_ids == {"generate"}
    assert dag.get_task("publish").upstream_task_ids == {"generate", "review"}
    assert [o.name for o in dag.get_task("publish").outlets] == ["aihubmix_published"]


def test_without_the_operators_the_example_defines_no_dag_and_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, HITL_MODULE, None)  # as with a standard provider that predates them
    with caplog.at_level(logging.WARNING):
        namespace = load(monkeypatch, tmp_path)
    assert not [v for v in namespace.values() if isinstance(v, DAG)]
    assert "aihubmix_review_and_publish is skipped: no human-in-the-loop operators" in caplog.text
