"""The example DAGs, run as shipped with ``dag.test()`` on the sandbox.

``aihubmix_marketing_assets`` on local disk, as ``bash scripts/demo.sh`` runs it: images,
manifests and a contact sheet PIL can open. ``aihubmix_edit_chain`` on moto S3: the edit
reads the generated image through nothing but the upstream XCom record.
"""

from __future__ import annotations

import base64
import io
import json
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG
from PIL import Image

from airflow_provider_aihubmix.catalog.models import resolve_model
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.storage.uris import file_uri_to_path
from tests.fixtures.airflow_db import DagTest, raw_xcom_json, task_states, xcom_values
from tests.fixtures.s3 import S3Bucket
from tests.integration.operator_checks import api_posts, check_no_secrets, check_record, manifest_beside

pytestmark = pytest.mark.timeout(240)

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
BRIEFS = json.loads((EXAMPLES / "briefs" / "campaign_briefs.json").read_text())["briefs"]


def load_example(file_stem: str, dag_id: str, output_uri: str, monkeypatch: pytest.MonkeyPatch) -> DAG:
    """Import an example file as the dag-processor would, with its output under ``output_uri``."""
    monkeypatch.setenv("AIHUBMIX_OUTPUT_URI", output_uri)
    monkeypatch.setenv("AIHUBMIX_POLL_INTERVAL", "0.2")
    monkeypatch.syspath_prepend(str(EXAMPLES))
    # ``_common`` reads the environment when imported: import it afresh for this output.
    monkeypatch.delitem(sys.modules, "_common", raising=False)
    namespace = runpy.run_path(str(EXAMPLES / f"{file_stem}.py"), run_name=f"example_{file_stem}")
    dags = [v for v in namespace.values() if isinstance(v, DAG) and v.dag_id == dag_id]
    assert len(dags) == 1, f"no DAG {dag_id} in {file_stem}"
    return dags[0]


def test_marketing_example_leaves_images_manifests_and_contact_sheet(
    dag_test: DagTest,
    sandbox: SandboxServer,
    sandbox_conn: str,
    example_output_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    output_uri = example_output_uri
    dag = load_example("aihubmix_marketing_assets", "aihubmix_marketing_assets", output_uri, monkeypatch)

    run = dag_test(dag)

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    xcom = xcom_values(dag.dag_id, run.run_id)
    families = {"gpt_image": "gpt-image-1-mini", "imagen": "imagen-4.0-fast-generate-001"}
    families["seedream"] = "doubao-seedream-4-0"
    records: list[dict[str, Any]] = []
    for task_id, model in families.items():
        assert sorted(xcom[task_id]) == list(range(len(BRIEFS))), task_id
        for map_index, task_records in sorted(xcom[task_id].items()):
            for record in task_records:
                check_record(record, model=resolve_model(model).path, map_index=map_index)
                assert manifest_beside(record)["status"] == "complete"
                records.append(record)
    assert len(api_posts(sandbox)) == len(families) * len(BRIEFS)
    summary = xcom["contact_sheet"][-1]
    assert summary["images"] == [r["uri"] for r in records]
    for manifest_uri in summary["manifests"]:
        manifest = json.loads(Path(file_uri_to_path(manifest_uri)).read_text())
        assert manifest["status"] == "complete" and manifest["dag_id"] == dag.dag_id
    assert len(summary["manifests"]) == len(families) * len(BRIEFS)
    # The contact sheet sits beside the images and opens: one cell per image, a row per brief.
    sheet_path = Path(file_uri_to_path(summary["contact_sheet"]))
    assert sheet_path.parent.parent.parent == Path(file_uri_to_path(records[0]["uri"])).parents[2]
    with Image.open(sheet_path) as sheet:
        sheet.load()
        assert sheet.format == "PNG"
        width, height = sheet.size
    assert width >= len(BRIEFS) * 256 and height >= len(families) * 256
    check_no_secrets(raw_xcom_json(dag.dag_id, run.run_id))


def test_edit_chain_example_on_s3_passes_only_xcom(
    dag_test: DagTest,
    sandbox: SandboxServer,
    sandbox_conn: str,
    s3_bucket: S3Bucket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dag = load_example("aihubmix_edit_chain", "aihubmix_edit_chain", s3_bucket.uri, monkeypatch)

    run = dag_test(dag)

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    xcom = xcom_values(dag.dag_id, run.run_id)
    (generated,) = xcom["generate"][-1]
    (edited,) = xcom["edit"][-1]
    source = check_record(
        generated,
        model=resolve_model("imagen-4.0-fast-generate-001").path,
        map_index=-1,
        s3_client=s3_bucket.client,
    )
    check_record(
        edited, model=resolve_model("qwen-image-edit").path, map_index=-1, s3_client=s3_bucket.client
    )
    assert generated["uri"].startswith(f"s3://{s3_bucket.name}/") and edited["uri"] != generated["uri"]
    # The edit request carried the generated image, read from S3 by the worker and sent inline.
    edit_request = next(r["json"] for r in api_posts(sandbox) if "qwen-image-edit" in r["path"])
    (reference,) = edit_request["input"]["image"]
    assert reference.startswith("data:image/png;base64,")
    assert base64.b64decode(reference.split(",", 1)[1]) == source
    with Image.open(io.BytesIO(source)) as image:
        assert image.size == (generated["width"], generated["height"])
    # The edit's manifest records the reference by location and hash, never its bytes.
    manifest = manifest_beside(edited, s3_bucket.client)
    assert manifest["input"]["image"] == [generated["uri"]]
    check_no_secrets(raw_xcom_json(dag.dag_id, run.run_id))
