"""Async Flux at scale: a deferrable fan-out, and the submit-then-sense pattern.

``flux-2-pro`` answers with a task id; with ``deferrable=True`` the wait runs in the
triggerer, so hundreds of prompts hold no worker slot while they generate. The second
branch submits with ``wait_for_completion=False`` and waits in a deferrable sensor.
"""

from __future__ import annotations

import pendulum
from _common import OUTPUT_URI, POLL_INTERVAL
from airflow.sdk import DAG

from airflow_provider_aihubmix.operators.images import AIHubMixFluxOperator
from airflow_provider_aihubmix.sensors.aihubmix import AIHubMixTaskSensor

PROMPTS = [
    "A paper-craft fox in an autumn forest, studio lighting",
    "Isometric cutaway of a tiny bakery at dawn, soft pastel colours",
]

with DAG(
    dag_id="aihubmix_flux_async",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aihubmix", "example"],
    default_args={"retries": 2},
) as dag:
    generate = AIHubMixFluxOperator.partial(
        task_id="flux_generate",
        model="flux-2-pro",
        aspect_ratio="16:9",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=900,
        output_uri=OUTPUT_URI,
    ).expand(prompt=PROMPTS)

    submit = AIHubMixFluxOperator(
        task_id="flux_submit",
        model="flux-2-flex",
        prompt="A lighthouse made of stacked books, storm clouds parting",
        wait_for_completion=False,
        output_uri=OUTPUT_URI,
    )
    wait = AIHubMixTaskSensor(
        task_id="flux_wait",
        aihubmix_task_id="{{ ti.xcom_pull(task_ids='flux_submit')[0]['remote_task_id'] }}",
        model="{{ ti.xcom_pull(task_ids='flux_submit')[0]['model'] }}",
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=900,
        output_uri=OUTPUT_URI,
    )
    submit >> wait
