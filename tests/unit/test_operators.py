"""Operators at DAG parse time: literal values validated, templates and XComArgs left for run time."""

from __future__ import annotations

import json
import logging
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG, task

from airflow_provider_aihubmix.catalog.models import Family, resolve_model
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.operators.images import (
    AIHubMixFluxOperator,
    AIHubMixGeminiImageOperator,
    AIHubMixGenerateImageOperator,
    AIHubMixIdeogramOperator,
    AIHubMixImagenOperator,
    AIHubMixIRAGOperator,
    AIHubMixOpenAIImageOperator,
    AIHubMixQwenImageOperator,
    AIHubMixSeedreamOperator,
)

FAMILY_OPERATORS = (
    AIHubMixOpenAIImageOperator,
    AIHubMixImagenOperator,
    AIHubMixQwenImageOperator,
    AIHubMixSeedreamOperator,
    AIHubMixFluxOperator,
    AIHubMixGeminiImageOperator,
    AIHubMixIRAGOperator,
    AIHubMixIdeogramOperator,
    AIHubMixGeminiImageOperator,
)


@pytest.mark.parametrize("operator", FAMILY_OPERATORS, ids=lambda o: o.__name__)
def test_family_operator_defaults_to_a_flagship_of_its_family(operator: Any) -> None:
    op = operator(task_id="t", prompt="a kite")
    spec = resolve_model(op.model)
    assert spec.known and spec.family is operator.family
    assert {"model", "prompt", "size", "image", "output_uri", "extra_input"} <= set(op.template_fields)


def test_families_are_all_covered() -> None:
    assert {o.family for o in FAMILY_OPERATORS} == set(Family) - {Family.GENERIC}


def test_generic_operator_needs_a_model_and_passes_unknown_paths_through() -> None:
    with pytest.raises(AIHubMixValidationError, match="'model' is required"):
        AIHubMixGenerateImageOperator(task_id="t", prompt="x")
    op = AIHubMixGenerateImageOperator(task_id="t", model="acme/new-model", prompt="x", size="1536x640")
    assert op.resolve_spec().path == "acme/new-model" and not op.resolve_spec().known


@pytest.mark.parametrize("operator", [AIHubMixGenerateImageOperator, AIHubMixSeedreamOperator])
def test_an_empty_model_fails_when_the_dag_is_parsed(operator: Any) -> None:
    # A family operator checked "" as its default model, then looked up "" at run time.
    for blank in ("", "  "):
        with pytest.raises(AIHubMixValidationError, match="'model' is empty"):
            operator(task_id="t", model=blank, prompt="x")
        with pytest.raises(AIHubMixValidationError, match="'model' is empty"):
            operator.partial(task_id="t", model=blank)


def test_family_model_mismatch_is_refused_naming_what_is_allowed() -> None:
    with pytest.raises(AIHubMixValidationError) as err:
        AIHubMixSeedreamOperator(task_id="t", model="flux-2-pro", prompt="x")
    message = str(err.value)
    assert "'flux-2-pro' is a flux model, not a seedream one" in message
    assert "doubao-seedream-4-5" in message
    # A new model of the family's own provider goes through (issue 28); another provider's path only
    # through the generic operator, which the message names.
    AIHubMixSeedreamOperator(task_id="t2", model="doubao/seedream-next", prompt="x")
    with pytest.raises(AIHubMixValidationError, match="AIHubMixGenerateImageOperator passes any"):
        AIHubMixSeedreamOperator(task_id="t3", model="bytedance/seedream-next", prompt="x")


@pytest.mark.parametrize(
    ("operator", "kwargs", "field"),
    [
        (AIHubMixImagenOperator, {"size": "banana"}, "'size'"),
        (AIHubMixImagenOperator, {"n": 9}, "'n'"),
        (AIHubMixOpenAIImageOperator, {"quality": "ultra"}, "'quality'"),
        (AIHubMixFluxOperator, {"safety_tolerance": 99}, "'safety_tolerance'"),
        (
            AIHubMixQwenImageOperator,
            {"model": "qwen-image-edit", "image": ["/a.png"] * 4},
            "too many references",
        ),
        (AIHubMixImagenOperator, {"image": "/a.png"}, "'image'"),
        (AIHubMixQwenImageOperator, {"image": [{"no": "uri"}]}, "without a 'uri'"),
        (AIHubMixImagenOperator, {"output_uri": "ftp://bucket/x"}, "unsupported scheme"),
        (AIHubMixImagenOperator, {"output_uri": "file:///tmp/../etc"}, "'..'"),
        # Per-model rules from the catalog (bfl-openapi, ark-seedream, openai-openapi).
        (AIHubMixFluxOperator, {"model": "flux-kontext-max", "width": 1024, "height": 1024}, "'width'"),
        (AIHubMixFluxOperator, {"model": "flux-2-pro", "safety_tolerance": 6}, "0..5"),
        (AIHubMixSeedreamOperator, {"model": "doubao-seedream-4-5", "size": "1024x1024"}, "3,686,400"),
        (AIHubMixOpenAIImageOperator, {"model": "gpt-image-1", "style": "vivid"}, "'style'"),
        # A lone UTF-16 surrogate (text cut mid-emoji by a browser or a JSON API).
        (AIHubMixImagenOperator, {"prompt": "a cat \ud83d"}, "surrogate"),
    ],
)
def test_literal_invalid_values_fail_when_the_dag_is_parsed(
    operator: Any, kwargs: dict[str, Any], field: str
) -> None:
    kwargs = {"prompt": "a kite", **kwargs}
    with pytest.raises(AIHubMixValidationError, match=field.replace("(", r"\(")):
        operator(task_id="t", **kwargs)


def test_templated_values_are_left_for_run_time() -> None:
    op = AIHubMixImagenOperator(
        task_id="t",
        prompt="{{ params.brief }}",
        size="{{ params.size }}",
        n="{{ params.n }}",  # type: ignore[arg-type]
        image="{{ ti.xcom_pull('up') }}",
        output_uri="{{ var.value.bucket }}",
    )
    assert op.size == "{{ params.size }}"


def test_xcomarg_and_mapped_values_are_left_for_run_time() -> None:
    with DAG("parse_xcomarg", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):

        @task
        def upstream() -> list[str]:
            return ["a", "b"]

        prompts = upstream()
        AIHubMixQwenImageOperator(task_id="edit", model="qwen-image-edit", prompt="x", image=prompts)
        mapped = AIHubMixImagenOperator.partial(task_id="mapped", size="1K").expand(prompt=prompts)
    assert mapped.partial_kwargs["size"] == "1K"
    # A literal that is wrong is still caught where a sibling value is an XComArg.
    with pytest.raises(AIHubMixValidationError, match="'size'"):
        AIHubMixImagenOperator(task_id="bad", prompt=prompts, size="banana")  # type: ignore[arg-type]


def test_invalid_timing_parameters_are_refused() -> None:
    with pytest.raises(AIHubMixValidationError, match="poll_interval"):
        AIHubMixFluxOperator(task_id="t", prompt="x", poll_interval=0)
    with pytest.raises(AIHubMixValidationError, match="timeout"):
        AIHubMixFluxOperator(task_id="t", prompt="x", timeout=-1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # Deferring builds timedelta(seconds=timeout) after an async task was bought: NaN,
        # infinity and overflowing values would fail only then, on every retry.
        ({"timeout": float("nan")}, "'timeout' must be a number of seconds > 0"),
        ({"timeout": float("inf")}, "'timeout' must be a number of seconds > 0"),
        ({"timeout": 1e15}, "at most 31,622,400"),
        ({"timeout": "600"}, "'timeout' must be a number of seconds"),
        ({"poll_interval": float("nan")}, "'poll_interval' must be a number of seconds > 0"),
        ({"poll_interval": "5"}, "'poll_interval' must be a number of seconds > 0"),
        ({"poll_interval": True}, "'poll_interval' must be a number of seconds > 0"),
        ({"not_found_grace": float("nan")}, "'not_found_grace' must be a number of seconds >= 0"),
        # A NaN cap compares false with every estimate: it would never refuse.
        ({"max_cost_usd": float("nan")}, "'max_cost_usd' must be a number of USD >= 0"),
        ({"max_cost_usd": -1}, "'max_cost_usd' must be a number of USD >= 0"),
        ({"max_cost_usd": "0.50"}, "'max_cost_usd' must be a number of USD >= 0"),
        # A string switch is truthy: regenerate="False" would buy the request again.
        ({"regenerate": "False"}, "'regenerate' must be True or False, got 'False' \\(str\\)"),
        ({"deferrable": "false"}, "'deferrable' must be True or False"),
        ({"wait_for_completion": "False"}, "'wait_for_completion' must be True or False"),
        ({"allow_unknown_cost": "no"}, "'allow_unknown_cost' must be True or False"),
        ({"lineage_include_prompt": 1}, "'lineage_include_prompt' must be True or False"),
    ],
)
def test_settings_no_run_could_honour_fail_when_the_dag_is_parsed(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(AIHubMixValidationError, match=message):
        AIHubMixFluxOperator(task_id="t", prompt="x", **kwargs)


def test_usable_settings_at_their_edges_are_accepted() -> None:
    op = AIHubMixFluxOperator(
        task_id="t",
        prompt="x",
        timeout=366 * 24 * 3600,
        poll_interval=0.5,
        not_found_grace=0,
        max_cost_usd=float("inf"),
        regenerate=False,
        deferrable=True,
    )
    assert op.timeout == 366 * 24 * 3600 and op.max_cost_usd == float("inf")


def test_family_parameters_reach_the_request() -> None:
    op = AIHubMixFluxOperator(task_id="t", prompt="x", aspect_ratio="16:9", raw=True, seed=3)
    assert op.request_params() == {"prompt": "x", "seed": 3, "aspect_ratio": "16:9", "raw": True}
    flux_2 = AIHubMixFluxOperator(task_id="f", prompt="x", width=1440, height=816)
    assert flux_2.request_params() == {"prompt": "x", "width": 1440, "height": 816}
    edit = AIHubMixIRAGOperator(
        task_id="e", model="ernie-irag-edit", prompt="x", image="/a.png", feature="variation"
    )
    assert edit.request_params()["feature"] == "variation"
    dalle = AIHubMixOpenAIImageOperator(task_id="d", model="dall-e-3", prompt="x", style="natural")
    assert dalle.request_params()["style"] == "natural"


# -- output_uri resolution: parameter, then the connection's extra, then AIRFLOW_HOME -------------


def set_connection(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    connection = {
        "conn_type": "aihubmix",
        "host": "http://127.0.0.1:9",
        "password": "sk-unit",
        "extra": extra,
    }
    monkeypatch.setenv("AIRFLOW_CONN_AIHUBMIX_UNIT", json.dumps(connection))


@pytest.fixture
def task_log(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> Any:
    """What the operator logged: its task logger is structlog (stdout) or stdlib, depending on set-up."""
    caplog.set_level(logging.INFO)

    def read() -> str:
        return caplog.text + capsys.readouterr().out

    read()
    return read


def resolve(op: AIHubMixImagenOperator, task_log: Any) -> tuple[str, str]:
    task_log()
    uri = op.resolve_output_uri()
    messages = [line for line in task_log().splitlines() if "Storing images under" in line]
    assert messages, "the chosen output_uri and its source are logged"
    return uri, messages[0]


def test_output_uri_parameter_wins(monkeypatch: pytest.MonkeyPatch, task_log: Any) -> None:
    set_connection(monkeypatch, output_uri="s3://from-connection/prefix")
    op = AIHubMixImagenOperator(
        task_id="t", prompt="x", aihubmix_conn_id="aihubmix_unit", output_uri="s3://from-param/p"
    )
    uri, message = resolve(op, task_log)
    assert uri == "s3://from-param/p" and "the output_uri parameter" in message


def test_output_uri_falls_back_to_the_connection_extra(
    monkeypatch: pytest.MonkeyPatch, task_log: Any
) -> None:
    set_connection(monkeypatch, output_uri="s3://from-connection/prefix")
    op = AIHubMixImagenOperator(task_id="t", prompt="x", aihubmix_conn_id="aihubmix_unit")
    uri, message = resolve(op, task_log)
    assert uri == "s3://from-connection/prefix" and "'aihubmix_unit' extra output_uri" in message


def test_output_uri_defaults_under_airflow_home(
    monkeypatch: pytest.MonkeyPatch, task_log: Any, tmp_path: Any
) -> None:
    set_connection(monkeypatch)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    op = AIHubMixImagenOperator(task_id="t", prompt="x", aihubmix_conn_id="aihubmix_unit")
    uri, message = resolve(op, task_log)
    assert uri == (tmp_path / "aihubmix-images").as_uri() and "default under AIRFLOW_HOME" in message


def test_partial_checks_literal_arguments_when_the_dag_is_parsed() -> None:
    from airflow_provider_aihubmix.operators.images import AIHubMixFluxOperator, AIHubMixSeedreamOperator

    with pytest.raises(AIHubMixValidationError, match="'size' = '1K'") as info:
        AIHubMixSeedreamOperator.partial(task_id="bad", size="1K", n=99)
    assert "'n' = 99" in str(info.value) and "doubao-seedream-4-5" in str(info.value)
    with pytest.raises(AIHubMixValidationError, match="safety_tolerance"):
        AIHubMixFluxOperator.partial(task_id="bad_flux", safety_tolerance=9)
    with pytest.raises(AIHubMixValidationError, match="not a flux"):
        AIHubMixFluxOperator.partial(task_id="wrong_family", model="imagen-4.0-generate-001")
    # Templated and mapped values wait for the run; valid literals pass.
    mapped = AIHubMixSeedreamOperator.partial(task_id="ok", size="{{ params.size }}", watermark=False)
    assert mapped.expand(prompt=["a", "b"]) is not None
