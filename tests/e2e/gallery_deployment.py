"""One real Airflow deployment with the gallery plugin and one finished run, for the gallery tests.

The api-server loads the plugin from the installed package's ``airflow.plugins`` entry
point, as a user's would. The auth manager has three users: ``admin``, ``viewer``
(read-only, so it may look) and ``outsider`` (no role: no DAG access at all).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import AirflowCluster
from tests.fixtures.clouds import gcs_connection_json
from tests.fixtures.s3 import aws_connection_json, make_s3_client

DAG_ID = "e2e_gallery"
REVIEW_DAG_ID = "aihubmix_review_and_publish"
COMPARE_DAG_ID = "e2e_gallery_compare"
DAGS = Path(__file__).resolve().parent / "gallery_dags"
EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
USERS = {"admin": "admin", "viewer": "viewer", "outsider": ""}
PASSWORDS = {name: f"pw-{name}-gallery" for name in USERS}


@dataclass
class GalleryDeployment:
    cluster: AirflowCluster
    run_id: str
    bucket: str
    s3_uri: str
    file_dir: Path
    s3: Any  # boto3 client for the moto server
    tokens: dict[str, str]
    review_run_id: str
    compare_run_id: str

    @property
    def base_url(self) -> str:
        return self.cluster.base_url

    def get(self, path: str, user: str | None = "admin", **kwargs: Any) -> httpx.Response:
        """GET ``path`` on the api-server as ``user`` (None: no credentials at all)."""
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return self.cluster.client.get(path, headers=headers, **kwargs)


def start_gallery_deployment(
    home: Path,
    work: Path,
    moto_endpoint: str,
    sandbox_url: str,
    *,
    gcs_endpoint: str,
    timeout: float = 300,
) -> GalleryDeployment:
    """Start the deployment, run ``e2e_gallery`` to its end, log every user in."""
    dags = work / "dags"
    shutil.copytree(DAGS, dags)
    # The human-review example as a user deploys it: beside the module and briefs it reads.
    for name in ("_common.py", "aihubmix_review_and_publish.py", ".airflowignore"):
        shutil.copy(EXAMPLES / name, dags / name)
    shutil.copytree(EXAMPLES / "briefs", dags / "briefs")
    file_dir = work / "images"
    file_dir.mkdir()
    bucket = f"gallery-{os.getpid()}-{abs(hash(str(work))) % 10**8}"
    s3 = make_s3_client(moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    # A GCS bucket on fake-gcs-server for the e2e_gallery_gcs DAG (run by its own test).
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    storage.Client(
        credentials=AnonymousCredentials(),
        project="aihubmix-test",
        client_options={"api_endpoint": gcs_endpoint},
    ).create_bucket(bucket)
    passwords = work / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    env = {
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection_json(moto_endpoint),
        "AIRFLOW_CONN_AIHUBMIX_DEFAULT": json.dumps(
            {
                "conn_type": "aihubmix",
                "host": sandbox_url,
                "password": "sk-gallery",
                "extra": {"tasks_base_url": sandbox_url},
            }
        ),
        "GALLERY_S3_URI": f"s3://{bucket}/images",
        "GALLERY_GCS_URI": f"gs://{bucket}/images",
        "STORAGE_EMULATOR_HOST": gcs_endpoint,
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": gcs_connection_json(),
        "GALLERY_FILE_URI": file_dir.as_uri(),
        "AIHUBMIX_OUTPUT_URI": f"s3://{bucket}/review",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
    }
    cluster = AirflowCluster(dags, extra_env=env, home=home, credentials=("admin", PASSWORDS["admin"]))
    cluster.start()
    try:
        run_id = cluster.trigger_dag(DAG_ID, conf={})
        review_run_id = cluster.trigger_dag(REVIEW_DAG_ID, conf={})
        compare_run_id = cluster.trigger_dag(COMPARE_DAG_ID, conf={})
        observer = cluster.observe(DAG_ID, run_id, interval=0.5)
        # The moderated task fails, so the run does too; every other task must succeed.
        observer.wait_for_finish(timeout=timeout)
        states = cluster.task_states(DAG_ID, run_id)
        expected = {"on_s3[0]": "success", "on_s3[1]": "success", "on_disk": "success", "moderated": "failed"}
        if states != expected:
            raise AssertionError(f"unexpected task states {states}; logs under {cluster.home}")
        cluster.observe(COMPARE_DAG_ID, compare_run_id, interval=0.5).wait_for_finish(timeout=timeout)
        compared = cluster.task_states(COMPARE_DAG_ID, compare_run_id)
        if set(compared.values()) != {"success"}:
            raise AssertionError(f"unexpected compare task states {compared}; logs under {cluster.home}")
        tokens = {user: cluster.login(user, PASSWORDS[user]) for user in USERS}
    except BaseException:
        cluster.stop()
        raise
    return GalleryDeployment(
        cluster=cluster,
        run_id=run_id,
        bucket=bucket,
        s3_uri=f"s3://{bucket}/images",
        file_dir=file_dir,
        s3=s3,
        tokens=tokens,
        review_run_id=review_run_id,
        compare_run_id=compare_run_id,
    )
