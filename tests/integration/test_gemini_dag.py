"""Gemini "Nano Banana" through ``dag.test()``: the sandbox over HTTP, moto S3 or local disk.

Counted in the sandbox's request log: one request per image, none for a refusal's retry,
exactly one more for a retry after a failure between request 2 and 3.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from PIL import Image

from airflow_provider_aihubmix.exceptions import (
    AIHubMixBadRequestError,
    AIHubMixRefusalError,
    AIHubMixTextOnlyError,
)
from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook
from airflow_provider_aihubmix.operators.images import (
    AIHubMixGeminiImageOperator,
    AIHubMixGenerateImageOperator,
)
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.sandbox.gemini import COMMENTARY
from airflow_provider_aihubmix.schemas.wire import WireRequest
from tests.compat import needs_callback_exception
from tests.fixtures.airflow_db import DagTest, raw_xcom_json, task_states, try_numbers, xcom_values
from tests.integration.operator_checks import (
    api_posts,
    check_no_secrets,
    check_record,
    manifest_beside,
    read_stored,
)

pytestmark = pytest.mark.timeout(180)

START = pendulum.datetime(2026, 1, 1, tz="UTC")
GEMINI_PATH = r"^/gemini/v1beta/models/"
MODELS = {
    "flash": "gemini-2.5-flash-image",
    "pro": "gemini-3-pro-image-preview",
    "flash_3": "gemini-3.1-flash-image-preview",
}

# Output tokens of one default-size image, as the sandbox reports them (Google's published counts).
IMAGE_TOKENS = {MODELS["flash"]: 1290, MODELS["flash_3"]: 1120}


def test_each_model_generates_and_an_edit_sends_the_upstream_image_inline(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, output: tuple[str, Any]
) -> None:
    output_uri, s3_client = output
    scheme = output_uri.split(":", 1)[0]
    with DAG(f"gemini_models_{scheme}", schedule=None, start_date=START) as dag:
        AIHubMixGeminiImageOperator(
            task_id="flash", prompt="a fox mascot", aspect_ratio="16:9", output_uri=output_uri
        )
        AIHubMixGeminiImageOperator(
            task_id="pro", model=MODELS["pro"], prompt="a fox mascot", image_size="2K", output_uri=output_uri
        )
        flash_3 = AIHubMixGeminiImageOperator(
            task_id="flash_3",
            model="nano-banana-2",
            prompt="a fox mascot",
            aspect_ratio="1:4",
            image_size="512",
            output_uri=output_uri,
        )
        edit = AIHubMixGeminiImageOperator(
            task_id="edit",
            model=MODELS["pro"],
            prompt="give the fox a red scarf",
            image="{{ ti.xcom_pull(task_ids='flash_3') }}",
            output_uri=output_uri,
        )
        flash_3 >> edit
        # The generic operator takes the family too: size is image_size, Google's names via extra_input.
        AIHubMixGenerateImageOperator(
            task_id="generic",
            model="nano-banana-pro",
            prompt="a fox mascot",
            size="1K",
            extra_input={"aspectRatio": "9:16", "responseModalities": ["IMAGE"]},
            output_uri=output_uri,
        )

    run = dag_test(dag)

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    xcom = xcom_values(dag.dag_id, run.run_id)
    for task_id, model in {**MODELS, "edit": MODELS["pro"], "generic": MODELS["pro"]}.items():
        (record,) = xcom[task_id][-1]
        check_record(record, model=model, map_index=-1, s3_client=s3_client)
        manifest = manifest_beside(record, s3_client)
        assert manifest["status"] == "complete" and manifest["family"] == "gemini"
        assert manifest["usage"]["candidatesTokenCount"] > 0  # token usage, for cost
        assert manifest["cost"]["actual"] > 0  # priced from the usage
        commentary = manifest["received"][0]["commentary"]
        assert commentary == (None if task_id == "generic" else "Here is the image you asked for.")
        assert [a["status"] for a in manifest["attempts"]] == ["submitting", "received", "complete"]
        assert (manifest["requests_total"], manifest["requests_answered"], manifest["in_flight"]) == (
            1,
            1,
            None,
        )
    assert (xcom["flash"][-1][0]["width"], xcom["flash"][-1][0]["height"]) == (1024, 576)
    assert (xcom["flash_3"][-1][0]["width"], xcom["flash_3"][-1][0]["height"]) == (128, 512)
    posts = api_posts(sandbox, GEMINI_PATH)
    assert len(posts) == 5  # one request per image, nothing else
    (generic_post,) = [p for p in posts if "responseModalities" in json.dumps(p["json"])]
    assert generic_post["json"]["generationConfig"] == {
        "responseModalities": ["IMAGE"],
        "imageConfig": {"aspectRatio": "9:16", "imageSize": "1K"},
    }
    (edit_post,) = [p for p in posts if "scarf" in p["json"]["contents"][0]["parts"][0]["text"]]
    upstream, _, _ = read_stored(xcom["flash_3"][-1][0]["uri"], s3_client)
    inline = edit_post["json"]["contents"][0]["parts"][1]["inlineData"]
    assert base64.b64decode(inline["data"]) == upstream and inline["mimeType"] == "image/png"
    check_no_secrets(raw_xcom_json(dag.dag_id, run.run_id))


REFUSALS = {
    "blocked": ("sandbox:block=SAFETY", AIHubMixRefusalError, "blockReason = SAFETY"),
    "image_safety": ("sandbox:finish=IMAGE_SAFETY", AIHubMixRefusalError, "finishReason = IMAGE_SAFETY"),
    "prohibited": ("sandbox:finish=PROHIBITED_CONTENT", AIHubMixRefusalError, "PROHIBITED_CONTENT"),
    "no_image": ("sandbox:finish=NO_IMAGE", AIHubMixRefusalError, 'NO_IMAGE: "I can\'t draw that for you."'),
    "text_only": ("sandbox:text-only", AIHubMixTextOnlyError, "text only, no image: \"I can't draw that"),
}


@needs_callback_exception
def test_each_refusal_fails_cleanly_with_one_request_and_no_airflow_retry(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, tmp_path: Path
) -> None:
    errors: dict[str, BaseException] = {}

    def remember(context: Any) -> None:
        errors[context["ti"].task_id] = context["exception"]

    args = {"retries": 2, "retry_delay": timedelta(0), "on_failure_callback": remember}
    with DAG("gemini_refusals", schedule=None, start_date=START, default_args=args) as dag:
        for task_id, (token, _, _) in REFUSALS.items():
            AIHubMixGeminiImageOperator(
                task_id=task_id, prompt=f"a poster {token}", n=2, output_uri=tmp_path.as_uri()
            )

    run = dag_test(dag)

    assert set(task_states(run).values()) == {"failed"}, task_states(run)
    assert set(try_numbers(run).values()) == {1}  # retries=2, yet no retry: the verdict would repeat
    posts = api_posts(sandbox, GEMINI_PATH)
    assert len(posts) == len(REFUSALS)  # one request each, n=2 notwithstanding
    for task_id, (_, error_type, fragment) in REFUSALS.items():
        assert type(errors[task_id]) is error_type and fragment in str(errors[task_id]), errors[task_id]
        (manifest_path,) = tmp_path.rglob(f"task_id={task_id}/**/manifest.json")
        manifest = json.loads(manifest_path.read_text())
        assert manifest["status"] == "failed" and fragment in manifest["attempts"][-1]["error"]
        assert manifest["attempts"][-1]["error_type"] == error_type.__name__
        assert (
            manifest["requests_answered"] == 0 and manifest["records"] == [] and manifest["in_flight"] is None
        )


@needs_callback_exception
def test_n_images_are_n_requests_and_a_retry_buys_only_the_missing_one(
    dag_test: DagTest,
    sandbox: SandboxServer,
    sandbox_conn: str,
    s3_bucket: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = AIHubMixHook.send
    sent: list[int] = []

    def third_request_fails_once(self: AIHubMixHook, spec: Any, request: WireRequest) -> Any:
        index = request.index
        if index == 2 and 2 not in sent:
            # The real sandbox refuses the third request once, over HTTP (not retried by the hook).
            sandbox.client.inject(
                kind="status", status=400, count=1, path="gemini", message="upstream hiccup"
            )
        sent.append(index)
        return original(self, spec, request)

    monkeypatch.setattr(AIHubMixHook, "send", third_request_fails_once)
    errors: list[BaseException] = []
    args = {
        "retries": 1,
        "retry_delay": timedelta(0),
        "on_retry_callback": lambda context: errors.append(context["exception"]),
    }
    with DAG("gemini_series", schedule=None, start_date=START, default_args=args) as dag:
        AIHubMixGeminiImageOperator(task_id="plain", prompt="a lantern", n=3, output_uri=s3_bucket.uri)
        AIHubMixGeminiImageOperator(
            task_id="seeded",
            model=MODELS["flash_3"],
            prompt="a lantern, seeded",
            n=3,
            seed=40,
            output_uri=s3_bucket.uri,
        )

    run = dag_test(dag)

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    assert sorted(try_numbers(run).values()) == [1, 2]  # one of the two tasks met the failure
    (error,) = errors
    assert isinstance(error, AIHubMixBadRequestError) and "upstream hiccup" in str(error)
    xcom = xcom_values(dag.dag_id, run.run_id)
    for task_id in ("plain", "seeded"):
        records = xcom[task_id][-1]
        assert [r["index"] for r in records] == [0, 1, 2]
        model = MODELS["flash"] if task_id == "plain" else MODELS["flash_3"]
        images = [check_record(r, model=model, map_index=-1, s3_client=s3_bucket.client) for r in records]
        assert len(set(images)) == 3  # three different images
        manifest = manifest_beside(records[0], s3_bucket.client)
        assert manifest["status"] == "complete" and manifest["records"] == records
        assert [item["request_index"] for item in manifest["received"]] == [0, 1, 2]
        # usageMetadata of the three answers, added up in Google's shape (image + commentary tokens).
        per_answer = IMAGE_TOKENS[model] + len(COMMENTARY) // 4
        assert manifest["usage"]["candidatesTokenCount"] == 3 * per_answer
    assert [r["seed"] for r in xcom["seeded"][-1]] == [40, 41, 42]
    posts = api_posts(sandbox, GEMINI_PATH)
    # 3 + 3 images: 6 billed requests, plus the one refused request; the retry sent exactly one.
    assert len(posts) == 7 and sandbox.client.billed_count("gemini") == 6
    assert sorted(sent) == [0, 0, 1, 1, 2, 2, 2]
    failed_task = next(t for t, n in try_numbers(run).items() if n == 2).split("[")[0]
    manifest = manifest_beside(xcom[failed_task][-1][0], s3_bucket.client)
    trail = [(a["try_number"], a["status"]) for a in manifest["attempts"]]
    # Each request recorded before the next; the retry resumed at the failed third request.
    assert trail == [
        (1, "submitting"),
        (1, "deferred"),
        (1, "submitting"),
        (1, "deferred"),
        (1, "submitting"),
        (1, "failed"),
        (2, "submitting"),
        (2, "received"),
        (2, "complete"),
    ]


def test_character_example_stores_three_consistent_steps_and_a_contact_sheet(
    dag_test: DagTest,
    sandbox: SandboxServer,
    sandbox_conn: str,
    output: tuple[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.integration.test_examples import load_example

    output_uri, s3_client = output
    dag = load_example("aihubmix_gemini_character", "aihubmix_gemini_character", output_uri, monkeypatch)

    run = dag_test(dag)

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    xcom = xcom_values(dag.dag_id, run.run_id)
    steps = {"character": MODELS["pro"], "scarf": MODELS["flash"], "poster": MODELS["flash"]}
    stored = {}
    for task_id, model in steps.items():
        (record,) = xcom[task_id][-1]
        stored[task_id] = check_record(record, model=model, map_index=-1, s3_client=s3_client)
        assert record["height"] > record["width"]  # 4:5 throughout
    assert len(set(stored.values())) == 3
    # Each edit sent its upstream images inline: the character, then the character and the scarf.
    posts = api_posts(sandbox, GEMINI_PATH)
    assert len(posts) == 3
    inline = [
        [base64.b64decode(p["inlineData"]["data"]) for p in post["json"]["contents"][0]["parts"][1:]]
        for post in posts
    ]
    assert inline == [[], [stored["character"]], [stored["character"], stored["scarf"]]]
    summary = xcom["contact_sheet"][-1]
    assert summary["images"] == [xcom[t][-1][0]["uri"] for t in steps]
    sheet, _, _ = read_stored(summary["contact_sheet"], s3_client)
    with Image.open(io.BytesIO(sheet)) as image:
        assert image.format == "PNG" and image.width >= 3 * 256
    check_no_secrets(raw_xcom_json(dag.dag_id, run.run_id))
