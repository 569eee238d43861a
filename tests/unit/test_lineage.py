"""OpenLineage methods of the operators and the sensor, the ``aihubmix`` facet, and hook lineage.

No HTTP here: completed runs are built from a real :class:`GenerationRun` over a local store
(images stored and the manifest written exactly as the operators do), so the outputs, costs
and manifest the lineage methods report are the ones the engine produced.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openlineage.client.serde import Serde
from PIL import Image
from referencing import Registry, Resource

from airflow_provider_aihubmix.catalog.models import Family, models_in_family, resolve_model
from airflow_provider_aihubmix.engine.run import GenerationRun, TaskIdentity
from airflow_provider_aihubmix.exceptions import (
    AIHubMixModerationError,
    AIHubMixTaskFailedError,
    AIHubMixUpstreamError,
    AIHubMixValidationError,
)
from airflow_provider_aihubmix.facets import FACET_NAME, SCHEMA_FILE, SCHEMA_URL
from airflow_provider_aihubmix.lineage import (
    AIHubMixLineageMixin,
    DatasetId,
    dataset_id,
    lineage_parameters,
    moderation_outcome,
)
from airflow_provider_aihubmix.operators import images as operators
from airflow_provider_aihubmix.operators.images import (
    AIHubMixGenerateImageOperator,
    AIHubMixImagenOperator,
    AIHubMixOpenAIImageOperator,
    AIHubMixSeedreamOperator,
)
from airflow_provider_aihubmix.responses.shapes import GeneratedImage, PredictionResult
from airflow_provider_aihubmix.sensors.aihubmix import AIHubMixTaskSensor
from airflow_provider_aihubmix.storage import LocalObjectStore

FAMILY_OPERATORS = [
    cls
    for cls in vars(operators).values()
    if isinstance(cls, type) and issubclass(cls, AIHubMixGenerateImageOperator) and cls.family is not None
]
PROMPT = "A red bicycle against a teal wall, campaign 'Spring Secret'"

# The OpenLineage spec is not shipped with the client; RunFacet is BaseFacet's two required fields.
_OL_SPEC = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "RunFacet": {
            "type": "object",
            "properties": {"_producer": {"type": "string"}, "_schemaURL": {"type": "string"}},
            "required": ["_producer", "_schemaURL"],
        }
    },
}


def facet_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    registry = Registry().with_resource(
        "https://openlineage.io/spec/2-0-2/OpenLineage.json", Resource.from_contents(_OL_SPEC)
    )
    facet_schema = {**schema, "$ref": "#/$defs/AIHubMixRunFacet"}
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(facet_schema, registry=registry)


def facet_dict(lineage: Any) -> dict[str, Any]:
    facet = Serde.to_dict(lineage.run_facets[FACET_NAME])
    facet_validator().validate(facet)
    return facet


def png_bytes(color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buffer, format="PNG")
    return buffer.getvalue()


def completed_run(
    operator: AIHubMixGenerateImageOperator, tmp_path: Path, *, images: int, usage: dict | None = None
) -> tuple[GenerationRun, list[dict[str, Any]]]:
    """What ``execute`` leaves on the operator after a sync generation: run, records, manifest."""
    run = GenerationRun(
        hook=None,  # type: ignore[arg-type] # storing inline images never calls the API
        store=LocalObjectStore((tmp_path / "out").as_uri()),
        spec=operator.resolve_spec(),
        params=operator.request_params(),
        extra_input=operator.extra_input,
        identity=TaskIdentity("dag", "manual__1", operator.task_id, -1, 1),
        aws_conn_id=None,
    )
    manifest = run.new_manifest()
    result = PredictionResult(images=[GeneratedImage(data=png_bytes()) for _ in range(images)], usage=usage)
    records = run.store_result(manifest, result)
    operator._lineage_run = run
    operator._lineage_records = records
    return run, records


# -- naming -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3://assets/campaigns/a/image-000.png", DatasetId("s3://assets", "campaigns/a/image-000.png")),
        # OpenLineage's GCS and Azure namings: gs://{bucket}, wasbs://{container}@{account host}.
        ("gs://assets/campaigns/image-000.png", DatasetId("gs://assets", "campaigns/image-000.png")),
        (
            "wasbs://assets@acct.blob.core.windows.net/c/image-000.png",
            DatasetId("wasbs://assets@acct.blob.core.windows.net", "c/image-000.png"),
        ),
        ("abfs://assets/c/image-000.png", DatasetId("abfs://assets", "c/image-000.png")),
        (
            "https://cdn.example.com/refs/logo.png?X-Amz-Signature=abc&X-Amz-Expires=60",
            DatasetId("https://cdn.example.com", "/refs/logo.png"),
        ),
        ("https://user:pw@cdn.example.com:8443/a.png", DatasetId("https://cdn.example.com:8443", "/a.png")),
        ("http://127.0.0.1:9000/x/y.webp#frag", DatasetId("http://127.0.0.1:9000", "/x/y.webp")),
        ("file:///data/refs/logo.png", DatasetId("file", "/data/refs/logo.png")),
        ("file://nas/share/logo.png", DatasetId("file://nas", "/share/logo.png")),
        ("/data/refs/logo.png", DatasetId("file", "/data/refs/logo.png")),
        ("data:image/png;base64,iVBORw0KGgo=", None),
    ],
)
def test_dataset_naming(location, expected):
    assert dataset_id(location) == expected


def test_relative_local_path_is_named_absolutely(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert dataset_id("refs/logo.png") == DatasetId("file", f"{tmp_path}/refs/logo.png")


# -- parameters and moderation ----------------------------------------------------------------


def test_parameters_drop_prompt_and_secrets_and_redact_inline_images():
    input_ = {
        "prompt": PROMPT,
        "negative_prompt": "blurry",
        "n": 2,
        "image": ["data:image/png;base64,AAAA", "https://u:pw@h.example/a.png?sig=1"],
        "extra": {"api_key": "sk-should-not-leak", "style": "flat"},
        "Authorization": "Bearer sk-x",
    }
    params = lineage_parameters(input_, include_prompt=False)
    text = json.dumps(params)
    assert "prompt" not in params and "negative_prompt" not in params
    assert "sk-" not in text and "pw@" not in text and "sig=1" not in text and "AAAA" not in text
    assert params["n"] == 2 and params["extra"] == {"style": "flat"}
    assert params["image"][0].startswith("data:image/png;sha256=")
    with_prompt = lineage_parameters(input_, include_prompt=True)
    assert with_prompt["prompt"] == PROMPT and with_prompt["negative_prompt"] == "blurry"


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (AIHubMixModerationError("refused", status_code=400), "request_moderated"),
        (AIHubMixTaskFailedError("task failed", code="content_moderated"), "content_moderated"),
        (AIHubMixTaskFailedError("task failed", code="request_moderated"), "request_moderated"),
        (AIHubMixTaskFailedError("task failed", code="error"), None),
        (AIHubMixUpstreamError("502", status_code=502), None),
        (None, None),
    ],
)
def test_moderation_outcome(error, outcome):
    assert moderation_outcome(error) == outcome


# -- start --------------------------------------------------------------------------------------


@pytest.mark.parametrize("operator_class", FAMILY_OPERATORS, ids=lambda c: c.__name__)
def test_every_family_operator_reports_its_request_on_start(operator_class):
    spec = resolve_model(operator_class.default_model)
    if not spec.text_to_image:
        pytest.skip("edit-only default model")
    operator = operator_class(task_id="gen", prompt=PROMPT)
    lineage = operator.get_openlineage_facets_on_start()
    facet = facet_dict(lineage)
    assert lineage.inputs == [] and lineage.outputs == []
    assert facet["model"] == spec.path and facet["family"] == spec.family.value
    assert facet["promptSha256"] == hashlib.sha256(PROMPT.encode()).hexdigest()
    assert "prompt" not in facet and PROMPT not in json.dumps(facet)
    assert facet["_schemaURL"] == SCHEMA_URL
    assert "error" not in facet and "moderation" not in facet


def test_schema_url_is_a_stable_versioned_https_url_of_the_shipped_schema():
    import airflow_provider_aihubmix
    from airflow_provider_aihubmix.facets import SCHEMA_ID, SCHEMA_PATH

    assert SCHEMA_URL.startswith("https://")
    assert f"{SCHEMA_ID}#/$defs/AIHubMixRunFacet" == SCHEMA_URL
    assert f"/v{airflow_provider_aihubmix.__version__}/" in SCHEMA_URL
    # The URL names the file's path in the source tree, which is where the wheel ships it from.
    package_root = Path(airflow_provider_aihubmix.__file__).parent.parent
    assert (package_root / SCHEMA_PATH).resolve() == SCHEMA_FILE.resolve()
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$id"] == SCHEMA_ID
    cost = schema["$defs"]["AIHubMixRunFacet"]["allOf"][1]["properties"]["cost"]["properties"]
    assert {"estimated", "actual", "currency", "priceSource", "priceRead"} <= set(cost)


def test_family_operators_cover_every_family():
    assert {cls.family for cls in FAMILY_OPERATORS} == {f for f in Family if models_in_family(f)}


def test_start_reports_reference_images_as_inputs_and_counts_inline_ones(tmp_path):
    local = tmp_path / "ref.png"
    operator = AIHubMixSeedreamOperator(
        task_id="edit",
        prompt=PROMPT,
        seed=42,
        image=[
            {"uri": "s3://assets/up/image-000.png", "model": "x"},  # an upstream XCom record
            "https://cdn.example.com/ref.png?X-Amz-Signature=s3cr3t",
            str(local),
            "data:image/png;base64,iVBORw0KGgo=",
        ],
        lineage_include_prompt=True,
    )
    lineage = operator.get_openlineage_facets_on_start()
    facet = facet_dict(lineage)
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        ("s3://assets", "up/image-000.png"),
        ("https://cdn.example.com", "/ref.png"),
        ("file", str(local)),
    ]
    assert facet["referenceImages"] == 4 and facet["inlineReferenceImages"] == 1
    assert facet["prompt"] == PROMPT and facet["seed"] == 42
    assert "s3cr3t" not in json.dumps(facet)


def test_start_estimates_cost_like_the_budget_guard():
    operator = AIHubMixImagenOperator(
        task_id="gen", prompt=PROMPT, model="imagen-4.0-ultra-generate-001", n=3
    )
    facet = facet_dict(operator.get_openlineage_facets_on_start())
    cost = facet["cost"]
    assert cost["estimated"] == pytest.approx(0.18) and "actual" not in cost
    assert cost["currency"] == "USD" and cost["priceUnit"] == "image" and cost["imagesRequested"] == 3
    assert cost["priceSource"].startswith("AIHubMix Imagen guide") and cost["priceRead"] == "2026-11-29"
    assert facet["parameters"] == {"numberOfImages": 3, "sampleCount": 3}


def test_start_with_an_invalid_rendered_request_still_emits_with_the_error():
    operator = AIHubMixImagenOperator(task_id="gen", prompt="{{ params.brief }}", n="{{ params.n }}")
    operator.n = 99  # as if the template rendered to a value the model refuses
    facet = facet_dict(operator.get_openlineage_facets_on_start())
    assert facet["model"] == "imagen-4.0-generate-001"
    assert facet["error"]["type"] == "AIHubMixValidationError"


# -- complete -----------------------------------------------------------------------------------


def test_complete_outputs_are_the_stored_images_and_the_manifest(tmp_path):
    operator = AIHubMixImagenOperator(task_id="gen", prompt=PROMPT, model="imagen-4.0-fast-generate-001", n=3)
    run, records = completed_run(operator, tmp_path, images=3)
    lineage = operator.get_openlineage_facets_on_complete(None)
    facet = facet_dict(lineage)

    expected = [dataset_id(r["uri"]) for r in records] + [dataset_id(run.manifest_uri)]
    assert [DatasetId(d.namespace, d.name) for d in lineage.outputs] == expected
    assert all(Path(d.name).exists() for d in lineage.outputs)
    assert facet["imagesCount"] == 3 and facet["moderation"] == "passed"
    cost = facet["cost"]
    assert cost["estimated"] == pytest.approx(0.06) and cost["actual"] == pytest.approx(0.06)
    assert cost["basis"] == {"estimated": "per_image", "actual": "per_image"}
    assert [c["uri"] for c in cost["images"]] == [r["uri"] for r in records]
    assert [c["actual"] for c in cost["images"]] == [0.02, 0.02, 0.02]
    assert facet["manifestUri"] == run.manifest_uri and facet["reused"] is False


def test_manifest_carries_per_image_cost_and_xcom_records_keep_their_keys(tmp_path):
    operator = AIHubMixImagenOperator(task_id="gen", prompt=PROMPT, model="imagen-4.0-generate-001", n=2)
    run, records = completed_run(operator, tmp_path, images=2)
    manifest = run.load_manifest()
    assert manifest is not None
    assert manifest.estimated_cost_usd == pytest.approx(0.08)
    assert manifest.actual_cost_usd == pytest.approx(0.08)
    assert manifest.cost is not None
    assert [c["estimated"] for c in manifest.cost["images"]] == [0.04, 0.04]
    assert [c["actual"] for c in manifest.cost["images"]] == [0.04, 0.04]
    assert manifest.cost["price"]["read"] == "2026-11-29"
    assert [c["uri"] for c in manifest.cost["images"]] == [r["uri"] for r in records]
    allowed = {"uri", "model", "index", "map_index", "content_type", "bytes", "sha256", "width", "height"}
    assert all(set(r) <= allowed | {"seed", "revised_prompt", "remote_task_id"} for r in records)


def test_token_billed_run_reports_usage_and_the_cost_from_it(tmp_path):
    usage = {
        "input_tokens": 20,
        "output_tokens": 272,
        "total_tokens": 292,
        "input_tokens_details": {"text_tokens": 20, "image_tokens": 0},
    }
    operator = AIHubMixOpenAIImageOperator(
        task_id="gen", prompt=PROMPT, model="gpt-image-1-mini", quality="low", size="1024x1024"
    )
    _, _ = completed_run(operator, tmp_path, images=1, usage=usage)
    facet = facet_dict(operator.get_openlineage_facets_on_complete(None))
    assert facet["usage"] == usage
    cost = facet["cost"]
    assert cost["estimated"] == pytest.approx(0.005)  # OpenAI's per-image table for mini
    assert cost["actual"] == pytest.approx(20 * 2e-6 + 272 * 8e-6)  # usage x token prices
    assert cost["basis"] == {"estimated": "per_image_by_option", "actual": "usage_tokens"}


def test_totals_are_logged_at_the_end_of_the_task(tmp_path, caplog):
    operator = AIHubMixImagenOperator(task_id="gen", prompt=PROMPT, model="imagen-4.0-generate-001", n=3)
    completed_run(operator, tmp_path, images=3, usage={"total_tokens": 7})
    with caplog.at_level(logging.INFO):
        operator.log_generation_totals()
    assert (
        'AIHubMix totals: 3 image(s), estimated 0.1200 USD, actual 0.1200 USD, usage {"total_tokens": 7}'
        in caplog.text
    )


def test_reused_run_says_so(tmp_path, caplog):
    operator = AIHubMixImagenOperator(task_id="gen", prompt=PROMPT, model="imagen-4.0-generate-001")
    run, records = completed_run(operator, tmp_path, images=1)
    again = GenerationRun(
        hook=None,  # type: ignore[arg-type]
        store=run.store,
        spec=run.spec,
        params=run.params,
        extra_input=None,
        identity=TaskIdentity("dag", "manual__1", "gen", -1, 2),
        aws_conn_id=None,
    )
    outcome = again.start()
    assert outcome.reused and outcome.records == records
    operator._lineage_run, operator._lineage_records = again, outcome.records
    facet = facet_dict(operator.get_openlineage_facets_on_complete(None))
    assert facet["reused"] is True and facet["imagesCount"] == 1
    with caplog.at_level(logging.INFO):
        operator.log_generation_totals()
    assert "nothing was bought" in caplog.text


# -- failure ------------------------------------------------------------------------------------


class _Probe(AIHubMixLineageMixin):
    """A task class defining execute/execute_complete: the mixin must wrap both."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def execute(self, context: Any) -> None:
        raise self.error

    def execute_complete(self, context: Any, event: Any) -> None:
        raise self.error


def test_task_methods_remember_the_error_but_not_a_deferral():
    from airflow_provider_aihubmix.version_compat import TaskDeferred

    error = AIHubMixModerationError("refused")
    probe = _Probe(error)
    with pytest.raises(AIHubMixModerationError):
        probe.execute({})
    assert probe._lineage_error is error

    later = AIHubMixTaskFailedError("x", code="content_moderated")
    probe.error = later
    with pytest.raises(AIHubMixTaskFailedError):
        probe.execute_complete({}, {})
    assert probe._lineage_error is later

    deferred = _Probe(TaskDeferred(trigger=None, method_name="execute_complete"))  # type: ignore[arg-type]
    with pytest.raises(TaskDeferred):
        deferred.execute({})
    assert deferred._lineage_error is None


@pytest.mark.parametrize("cls", [AIHubMixGenerateImageOperator, AIHubMixTaskSensor])
def test_operator_and_sensor_task_methods_are_wrapped(cls):
    assert getattr(cls.execute, "_aihubmix_remembers_failure", False)
    assert getattr(cls.execute_complete, "_aihubmix_remembers_failure", False)


def test_failure_by_moderation_reports_outcome_error_and_manifest(tmp_path):
    operator = AIHubMixOpenAIImageOperator(task_id="gen", prompt="sandbox:moderated")
    run, _ = completed_run(operator, tmp_path, images=1)
    operator._lineage_records = None  # the failing try stored nothing
    operator._lineage_error = AIHubMixModerationError(
        "AIHubMix refused the request on moderation grounds", status_code=400, request_id="req-1"
    )
    lineage = operator.get_openlineage_facets_on_failure(None)
    facet = facet_dict(lineage)
    assert facet["moderation"] == "request_moderated"
    assert facet["error"] == {
        "type": "AIHubMixModerationError",
        "message": "AIHubMix refused the request on moderation grounds",
        "statusCode": 400,
        "requestId": "req-1",
    }
    assert facet["imagesCount"] == 0
    assert [DatasetId(d.namespace, d.name) for d in lineage.outputs] == [dataset_id(run.manifest_uri)]


def test_failure_before_any_request_has_no_outputs_and_no_moderation():
    operator = AIHubMixImagenOperator(
        task_id="gen", prompt=PROMPT, model="imagen-4.0-ultra-generate-001", n=4, max_cost_usd=0.1
    )
    operator._lineage_error = AIHubMixValidationError("Parameter 'max_cost_usd' = 0.1: ... exceeds it")
    lineage = operator.get_openlineage_facets_on_failure(None)
    facet = facet_dict(lineage)
    assert lineage.outputs == []
    assert "moderation" not in facet
    assert facet["error"]["type"] == "AIHubMixValidationError"
    assert facet["cost"]["estimated"] == pytest.approx(0.24)


# -- sensor -------------------------------------------------------------------------------------


def test_sensor_reports_the_remote_task_it_waits_for():
    sensor = AIHubMixTaskSensor(task_id="wait", aihubmix_task_id="task-123", model="flux-2-pro")
    facet = facet_dict(sensor.get_openlineage_facets_on_start())
    assert facet["remoteTaskIds"] == ["task-123"]
    assert facet["model"] == "flux-2-pro" and facet["family"] == "flux"
    unnamed = AIHubMixTaskSensor(task_id="wait2", aihubmix_task_id="task-9")
    facet = facet_dict(unnamed.get_openlineage_facets_on_start())
    assert facet["model"] == "unknown" and facet["family"] == "unknown"


# -- hook lineage --------------------------------------------------------------------------------


@pytest.fixture
def hook_lineage_collector(monkeypatch):
    """A real collector in place of the no-op one Airflow uses when no lineage reader is installed."""
    from tests.compat import install_hook_lineage_collector

    return install_hook_lineage_collector(monkeypatch)


def test_local_writes_and_reference_reads_reach_the_hook_lineage_collector(tmp_path, hook_lineage_collector):
    from airflow_provider_aihubmix.storage import read_uri_bytes

    store = LocalObjectStore((tmp_path / "out").as_uri())
    stored = store.put_image_bytes("p/image-000", png_bytes(), metadata={"model": "m"})
    read_uri_bytes(stored.uri)

    collected = hook_lineage_collector.collected_assets
    assert [a.asset.uri for a in collected.outputs] == [stored.uri]
    assert collected.outputs[0].asset.extra["sha256"] == stored.sha256
    assert [a.asset.uri for a in collected.inputs] == [stored.uri]
