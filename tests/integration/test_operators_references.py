"""Reference images through ``dag.test()``: local paths, data URIs, lists, rendered XCom, limits.

The sandbox logs each request body, so the test decodes the data URIs the edit model
actually received and compares them with the files they came from. (The ``s3://`` chain
through nothing but XCom is the edit-chain example, in ``test_examples.py``.)
"""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from PIL import Image

from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.operators.images import AIHubMixQwenImageOperator
from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.compat import needs_callback_exception
from tests.fixtures.airflow_db import DagTest, raw_xcom_json, task_states, xcom_values
from tests.integration.operator_checks import api_posts, check_no_secrets, check_record

pytestmark = pytest.mark.timeout(180)

EDIT_MODEL = "qianfan/qwen-image-edit"


def image_bytes(fmt: str, colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, format=fmt)
    return buffer.getvalue()


def sent_images(body: dict[str, Any]) -> list[bytes]:
    """The reference images a request carried, decoded from its data URIs."""
    refs = body["input"]["image"]
    assert isinstance(refs, list) and all(r.startswith("data:image/") for r in refs), refs
    return [base64.b64decode(r.split(",", 1)[1]) for r in refs]


@needs_callback_exception
def test_reference_images_from_paths_data_uris_lists_and_rendered_xcom(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, tmp_path: Path
) -> None:
    png = image_bytes("PNG", "red")
    jpeg = image_bytes("JPEG", "blue")
    png_path = tmp_path / "product.png"
    png_path.write_bytes(png)
    data_uri = f"data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}"
    output_uri = (tmp_path / "out").as_uri()
    errors: dict[str, BaseException] = {}

    def remember(context: Any) -> None:
        errors[context["ti"].task_id] = context["exception"]

    with DAG(
        "aihubmix_references",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        params={"ref": str(png_path)},
        default_args={"on_failure_callback": remember, "model": "qwen-image-edit", "output_uri": output_uri},
    ) as dag:
        from_path = AIHubMixQwenImageOperator(task_id="from_path", prompt="edit: path", image=str(png_path))
        AIHubMixQwenImageOperator(task_id="from_data_uri", prompt="edit: data uri", image=data_uri)
        AIHubMixQwenImageOperator(
            task_id="from_list", prompt="edit: list", image=[str(png_path), data_uri, png_path.as_uri()]
        )
        # A template renders the upstream records as text; they are read back as records.
        rendered = AIHubMixQwenImageOperator(
            task_id="from_rendered_xcom",
            prompt="edit: rendered xcom",
            image="{{ ti.xcom_pull(task_ids='from_path') }}",
        )
        AIHubMixQwenImageOperator(
            task_id="over_limit", prompt="edit: too many", image="{{ [params.ref] * 4 }}"
        )
        from_path >> rendered

    run = dag_test(dag)

    states = task_states(run)
    assert states.pop("over_limit[-1]") == "failed"
    assert set(states.values()) == {"success"}, states
    bodies = {r["json"]["input"]["prompt"]: r["json"] for r in api_posts(sandbox)}
    assert sorted(bodies) == ["edit: data uri", "edit: list", "edit: path", "edit: rendered xcom"]
    assert sent_images(bodies["edit: path"]) == [png]
    assert sent_images(bodies["edit: data uri"]) == [jpeg]
    assert sent_images(bodies["edit: list"]) == [png, jpeg, png]
    xcom = xcom_values(dag.dag_id, run.run_id)
    (first,) = xcom["from_path"][-1]
    assert sent_images(bodies["edit: rendered xcom"]) == [check_record(first, model=EDIT_MODEL, map_index=-1)]
    for task_id in ("from_path", "from_data_uri", "from_list", "from_rendered_xcom"):
        for record in xcom[task_id][-1]:
            check_record(record, model=EDIT_MODEL, map_index=-1)
    # Four references for a model that takes three: refused before any request, naming the limit.
    error = errors["over_limit"]
    assert isinstance(error, AIHubMixValidationError)
    assert "too many references (4)" in str(error) and "1..3" in str(error)
    # The manifests keep hashes of inline references, not the images.
    manifest_text = next((tmp_path / "out").rglob("task_id=from_list/*/manifest.json")).read_text()
    assert base64.b64encode(jpeg).decode()[:40] not in manifest_text
    assert hashlib.sha256(data_uri.split(",", 1)[1].encode()).hexdigest() in manifest_text
    check_no_secrets(raw_xcom_json(dag.dag_id, run.run_id))
