"""The example DAGs end to end with ``dag.test()`` on GCS (fake-gcs-server) and Azure Blob (Azurite).

Marketing: images, manifests, records and the run's cost summary land in the cloud; run again
(an Airflow retry of the same run) it re-uses every manifest and sends 0 requests. Edit chain: the
edit reads its input image from the same store through the upstream XCom record.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import pendulum
import pytest

from airflow_provider_aihubmix.catalog.models import resolve_model
from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.storage import open_store
from tests.fixtures.airflow_db import DagTest, raw_xcom_json, task_states, xcom_values
from tests.integration.operator_checks import api_posts, check_no_secrets
from tests.integration.test_examples import BRIEFS, load_example

pytestmark = pytest.mark.timeout(300)

ASSET_NAME = "aihubmix_marketing_assets"


@pytest.fixture(params=["gcs", "azure"])
def cloud(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("gcs_bucket" if request.param == "gcs" else "azure_container")


@pytest.fixture
def fresh_marketing_asset(airflow_db: None) -> Iterator[None]:
    """The example's Asset is named once but its URI follows the output, and a DAG registered again
    keeps its first version here: delete the example DAGs (runs, versions) and retire the Asset's
    earlier URI before and after, so each store's run registers its own."""
    from airflow.api.common.delete_dag import delete_dag
    from airflow.exceptions import DagNotFound
    from airflow.models.asset import AssetActive, AssetModel
    from airflow.utils.session import create_session

    def forget() -> None:
        for dag_id in (ASSET_NAME, "aihubmix_marketing_review"):
            with contextlib.suppress(DagNotFound):
                delete_dag(dag_id, keep_records_in_log=False)
        with create_session() as session:
            session.query(AssetActive).filter(AssetActive.name == ASSET_NAME).delete()
            for asset in session.query(AssetModel).filter(AssetModel.name == ASSET_NAME):
                asset.name = f"{ASSET_NAME}-retired-{asset.id}"

    forget()
    yield
    forget()


def test_marketing_example_on_the_cloud_then_a_retry_buys_nothing(
    dag_test: DagTest,
    sandbox: SandboxServer,
    sandbox_conn: str,
    cloud: Any,
    fresh_marketing_asset: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dag = load_example("aihubmix_marketing_assets", ASSET_NAME, cloud.uri, monkeypatch)
    # A date of its own per store: the same date again is the same run, pinned to its DAG version.
    logical_date = pendulum.datetime(2026, 3, 1 if cloud.uri.startswith("gs://") else 2, tz="UTC")
    run = dag_test(dag, logical_date=logical_date)

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    store = open_store(cloud.uri)
    xcom = xcom_values(dag.dag_id, run.run_id)
    families = ("gpt_image", "imagen", "seedream")
    records = [r for family in families for _, recs in sorted(xcom[family].items()) for r in recs]
    assert len(records) == len(families) * len(BRIEFS)
    for record in records:
        assert record["uri"].startswith(f"{cloud.uri}/dag_id={ASSET_NAME}/")
        data = store.read_bytes(record["uri"])
        assert (len(data), hashlib.sha256(data).hexdigest()) == (record["bytes"], record["sha256"])
        manifest = store.read_json(store.key_for(record["uri"].rsplit("/", 1)[0] + "/manifest.json"))
        assert manifest["status"] == "complete" and manifest["dag_id"] == ASSET_NAME
    posts = len(api_posts(sandbox))
    assert posts == len(families) * len(BRIEFS)
    summary = xcom["contact_sheet"][-1]
    assert sorted(summary["images"]) == sorted(r["uri"] for r in records)
    assert summary["contact_sheet"].startswith(cloud.uri)
    cost = store.read_json(store.key_for(summary["cost_summary"]))
    assert cost["total"]["images"] == len(records) and cost["total"]["actual"] > 0
    check_no_secrets(raw_xcom_json(dag.dag_id, run.run_id))

    # The same run again (what an Airflow retry of every task does): each task finds its manifest
    # and stored images in the cloud and buys nothing.
    again = dag_test(dag, logical_date=logical_date)
    assert again.run_id == run.run_id
    assert set(task_states(again).values()) == {"success"}, task_states(again)
    assert len(api_posts(sandbox)) == posts
    again_xcom = xcom_values(dag.dag_id, again.run_id)
    again_records = [r for family in families for recs in again_xcom[family].values() for r in recs]
    assert sorted(r["uri"] for r in again_records) == sorted(r["uri"] for r in records)


def test_edit_chain_reads_its_input_from_the_same_store(
    dag_test: DagTest, sandbox: SandboxServer, sandbox_conn: str, cloud: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = load_example("aihubmix_edit_chain", "aihubmix_edit_chain", cloud.uri, monkeypatch)
    run = dag_test(dag)

    assert set(task_states(run).values()) == {"success"}, task_states(run)
    xcom = xcom_values(dag.dag_id, run.run_id)
    (generated,) = xcom["generate"][-1]
    (edited,) = xcom["edit"][-1]
    assert generated["uri"].startswith(cloud.uri) and edited["uri"].startswith(cloud.uri)
    store = open_store(cloud.uri)
    source = store.read_bytes(generated["uri"])
    edit_path = resolve_model("qwen-image-edit").path
    edit_request = next(r["json"] for r in api_posts(sandbox) if edit_path in r["path"])
    (reference,) = edit_request["input"]["image"]
    assert base64.b64decode(reference.split(",", 1)[1]) == source
    manifest = store.read_json(store.key_for(edited["uri"].rsplit("/", 1)[0] + "/manifest.json"))
    assert manifest["input"]["image"] == [generated["uri"]]
