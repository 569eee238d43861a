"""A DAG that keeps its images on the worker's own disk: on CeleryExecutor it must warn at parse time."""

from __future__ import annotations

from airflow.sdk import dag

from airflow_provider_aihubmix.operators.images import AIHubMixGenerateImageOperator


@dag(dag_id="distributed_local_output", schedule=None, catchup=False, tags=["distributed"])
def distributed_local_output() -> None:
    AIHubMixGenerateImageOperator(
        task_id="generate",
        model="qwen-image",
        prompt="a lighthouse at dawn",
        output_uri="file:///opt/airflow/aihubmix-images",
    )


distributed_local_output()
