"""Lineage through each task class's own code path: every operator and the sensor.

Each case stores a real image through the engine, ends the task with its shared finishing tail
(``finish_task``) and reads the facets the OpenLineage listener would read. Renaming an
attribute a task records for lineage breaks these tests, not the lineage events in production.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aihubmix.catalog.models import resolve_model
from airflow_provider_aihubmix.engine.collection import ImageCollector
from airflow_provider_aihubmix.engine.manifest import Manifest, ManifestStatus, RemoteTask, TaskIdentity
from airflow_provider_aihubmix.engine.run import GenerationRun
from airflow_provider_aihubmix.exceptions import AIHubMixModerationError
from airflow_provider_aihubmix.operators import images as operators
from airflow_provider_aihubmix.operators.images import AIHubMixGenerateImageOperator
from airflow_provider_aihubmix.responses.shapes import GeneratedImage, PredictionResult
from airflow_provider_aihubmix.sensors.aihubmix import AIHubMixTaskSensor
from airflow_provider_aihubmix.storage import LocalObjectStore
from tests.unit.test_lineage import facet_dict, png_bytes

OPERATORS = sorted(
    (
        cls
        for cls in vars(operators).values()
        if isinstance(cls, type) and issubclass(cls, AIHubMixGenerateImageOperator)
    ),
    key=lambda cls: cls.__name__,
)
PROMPT = "a lighthouse at dawn, poster style"


def _operator(cls: type[AIHubMixGenerateImageOperator]) -> AIHubMixGenerateImageOperator:
    model = cls.default_model or "gpt-image-1.5"
    if not resolve_model(model).text_to_image:
        pytest.skip("edit-only default model")
    kwargs: dict[str, Any] = {"model": model} if cls.default_model is None else {}
    return cls(task_id="gen", prompt=PROMPT, lineage_include_prompt=True, **kwargs)


def _stored_by(run: ImageCollector, manifest: Manifest) -> list[dict[str, Any]]:
    return run.store_result(manifest, PredictionResult(images=[GeneratedImage(data=png_bytes())]))


@pytest.mark.parametrize("cls", OPERATORS, ids=lambda c: c.__name__)
def test_every_operator_reports_what_its_run_stored(cls: type, tmp_path: Path) -> None:
    operator = _operator(cls)
    spec = operator.resolve_spec()
    run = GenerationRun(
        hook=None,  # type: ignore[arg-type]  # inline images: no API call
        store=LocalObjectStore(tmp_path.as_uri()),
        spec=spec,
        params=operator.request_params(),
        extra_input=operator.extra_input,
        identity=TaskIdentity("dag", "manual__1", "gen", -1, 1),
        aws_conn_id=None,
    )
    records = operator.finish_task(run, _stored_by(run, run.new_manifest()))

    lineage = operator.get_openlineage_facets_on_complete(None)
    facet = facet_dict(lineage)
    assert (facet["model"], facet["family"], facet["prompt"]) == (spec.path, spec.family.value, PROMPT)
    assert facet["imagesCount"] == 1 and facet["moderation"] == "passed"
    assert facet["manifestUri"] == run.manifest_uri
    assert [o.name for o in lineage.outputs] == [
        Path(records[0]["uri"].removeprefix("file://")).as_posix(),
        run.manifest_uri.removeprefix("file://"),
    ]

    operator._lineage_error = AIHubMixModerationError("refused")
    failed = facet_dict(operator.get_openlineage_facets_on_failure(None))
    assert (
        failed["moderation"] == "request_moderated" and failed["error"]["type"] == "AIHubMixModerationError"
    )


def test_the_sensor_reports_the_task_it_collected(tmp_path: Path) -> None:
    sensor = AIHubMixTaskSensor(task_id="wait", aihubmix_task_id="task-123", model="flux-2-pro")
    collector = ImageCollector(
        hook=None,  # type: ignore[arg-type]
        store=LocalObjectStore(tmp_path.as_uri()),
        model="bfl/flux-2-pro",
        identity=TaskIdentity("dag", "manual__1", "wait", -1, 1),
    )
    manifest = Manifest.for_task(
        collector.identity,
        status=ManifestStatus.SUBMITTED,
        fingerprint="f" * 64,
        model="bfl/flux-2-pro",
        family="unknown",
        input={"remote_task_id": "task-123"},
        remote_tasks=[RemoteTask(task_id="task-123", submitted_at="2026-01-01T00:00:00+00:00")],
    )
    records = sensor.finish_task(collector, _stored_by(collector, manifest))

    lineage = sensor.get_openlineage_facets_on_complete(None)
    facet = facet_dict(lineage)
    assert facet["model"] == "flux-2-pro" and facet["family"] == resolve_model("flux-2-pro").family.value
    assert facet["remoteTaskIds"] == ["task-123"]
    assert facet["imagesCount"] == 1 and facet["manifestUri"] == collector.manifest_uri
    assert len(lineage.outputs) == 2 and records[0]["uri"].endswith(lineage.outputs[0].name)
