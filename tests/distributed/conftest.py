"""One production-shaped cluster for every distributed scenario (starting it costs 1-3 minutes).

The package fixture ``deployment`` starts PostgreSQL, Redis, the S3 test server behind an
outage proxy, the sandbox, and the :class:`~tests.distributed.cluster.CeleryCluster`. Each
scenario gets it through ``cluster_ready``, which first restarts any component an earlier
scenario killed and resets the sandbox, so scenarios stay independent of their order.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_aihubmix.sandbox import SandboxServer
from tests.distributed.cluster import NODES, CeleryCluster
from tests.distributed.evidence import Deployment, ScenarioFigures
from tests.distributed.services import PostgresServer, RedisServer
from tests.fixtures.s3 import MotoServer, OutageProxy, aws_connection_json, make_s3_client

DAGS = Path(__file__).resolve().parent / "dags"
API_KEY = "sk-distributed-test-key"


# Package scope: the cluster stops after the last distributed test instead of idling through
# the rest of the suite.
@pytest.fixture(scope="package")
def deployment(
    sandbox_server: SandboxServer, moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    bucket = f"aihubmix-cluster-{uuid.uuid4().hex[:12]}"
    client = make_s3_client(moto_server.endpoint_url)
    client.create_bucket(Bucket=bucket)
    # Versioning on: every write of a key is kept, so "stored once" is countable.
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    proxy = OutageProxy(moto_server.host, moto_server.port)
    postgres = PostgresServer()
    redis = RedisServer()
    cluster: CeleryCluster | None = None
    figures: list[ScenarioFigures] = []
    try:
        postgres.start()
        redis.start()
        connection = {
            "conn_type": "aihubmix",
            "host": sandbox_server.base_url,
            "password": API_KEY,
            "extra": {"tasks_base_url": sandbox_server.base_url},
        }
        # The workers reach S3 only through the proxy, so a scenario can take S3 away from them.
        aws = aws_connection_json(
            proxy.endpoint_url,
            config_kwargs={"retries": {"total_max_attempts": 2}, "connect_timeout": 3, "read_timeout": 30},
        )
        cluster = CeleryCluster(
            DAGS,
            postgres=postgres,
            redis=redis,
            home=tmp_path_factory.mktemp("celery-cluster"),
            extra_env={
                "AIRFLOW_CONN_AIHUBMIX_DEFAULT": json.dumps(connection),
                "AIRFLOW_CONN_AWS_DEFAULT": aws,
                "AIHUBMIX_OUTPUT_URI": f"s3://{bucket}/images",
            },
        )
        print(f"distributed cluster home: {cluster.home} (api {cluster.base_url})")
        cluster.start(timeout=300)
        print(f"distributed cluster timings: {cluster.timings}")
        yield Deployment(cluster, sandbox_server, proxy, bucket, client, figures)
    finally:
        if cluster is not None:
            cluster.stop()
        proxy.close()
        redis.stop()
        postgres.stop()
        _report(figures)


def _report(figures: list[ScenarioFigures]) -> None:
    """Print the scenarios' figures; also write them as JSON where AIHUBMIX_DISTRIBUTED_REPORT says."""
    if not figures:
        return
    print("\n" + ScenarioFigures.table(figures))
    target = os.environ.get("AIHUBMIX_DISTRIBUTED_REPORT")
    if target:
        Path(target).write_text(json.dumps([f.as_dict() for f in figures], indent=2) + "\n")


@pytest.fixture
def cluster_ready(deployment: Deployment) -> Deployment:
    """The deployment with every component running, S3 reachable and a clean sandbox."""
    deployment.proxy.down = False
    cluster = deployment.cluster
    dead = [name for name in NODES if cluster.components[name].process.poll() is not None]
    for name in dead:
        cluster.start_component(name)
    if dead:
        cluster.wait_until_healthy(dead, timeout=240)
    sandbox = deployment.sandbox.client
    sandbox.reset()
    sandbox.configure(api_key=API_KEY, task_delay_s=2.0)
    return deployment
