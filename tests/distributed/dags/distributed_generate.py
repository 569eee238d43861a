"""The DAG every distributed scenario runs: a mapped fan-out of generations, then a reader.

``dag_run.conf["requests"]`` is the list of mapped requests, each ``{"model", "prompt"}`` plus
optional ``deferrable`` and ``timeout`` (the plan fills the defaults in, so every mapped
instance sets the same arguments). ``distributed_generate`` retries a failed generation
twice; ``distributed_generate_once`` never does (for scenarios that watch one try end).
``read_back`` runs on whichever worker Celery picks and reads every image through S3, proving
that the images a task stored on one worker are where a downstream task on another worker
finds them.
"""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task

from airflow_provider_aihubmix.operators.images import AIHubMixGenerateImageOperator

OUTPUT_URI = os.environ["AIHUBMIX_OUTPUT_URI"]
DEFAULTS: dict[str, Any] = {"deferrable": False, "timeout": 600.0}


def generate_dag(dag_id: str, retries: int) -> None:
    @dag(
        dag_id=dag_id,
        schedule=None,
        catchup=False,
        max_active_tasks=64,
        tags=["distributed"],
        default_args={"retries": retries, "retry_delay": timedelta(seconds=5)},
    )
    def body() -> None:
        fan_out_and_read_back()

    body()


def fan_out_and_read_back() -> None:
    @task
    def plan(**context: Any) -> list[dict[str, Any]]:
        requests = context["dag_run"].conf.get("requests") or []
        return [{**DEFAULTS, **request} for request in requests]

    images = AIHubMixGenerateImageOperator.partial(
        task_id="generate",
        output_uri=OUTPUT_URI,
        poll_interval=1.0,
        allow_unknown_cost=True,
    ).expand_kwargs(plan())

    @task
    def read_back(records: Any) -> dict[str, int]:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        client = S3Hook(aws_conn_id="aws_default").get_conn()
        count = 0
        for per_task in records:
            for record in per_task:
                bucket, _, key = record["uri"].removeprefix("s3://").partition("/")
                body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
                if hashlib.sha256(body).hexdigest() != record["sha256"]:
                    raise ValueError(f"{record['uri']} does not match its recorded sha256")
                count += 1
        return {"images": count}

    read_back(images.output)


generate_dag("distributed_generate", retries=2)
generate_dag("distributed_generate_once", retries=0)
