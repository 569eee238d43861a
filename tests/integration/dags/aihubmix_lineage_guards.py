"""Tasks that must fail cleanly -- over budget, unpriced, moderated -- and a submit/collect pair.

Run by ``tests/integration/test_lineage_dag.py`` with ``dag.test()`` against the sandbox: the
budget guard must refuse before any request, moderation must show in the lineage facet, and
the sensor must report the images it collected.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_aihubmix.operators.images import (
    AIHubMixFluxOperator,
    AIHubMixImagenOperator,
    AIHubMixOpenAIImageOperator,
    AIHubMixQwenImageOperator,
)
from airflow_provider_aihubmix.sensors.aihubmix import AIHubMixTaskSensor

OUTPUT_URI = os.environ["AIHUBMIX_OUTPUT_URI"]
PROMPTS = ["spring sale banner", "summer sale banner", "autumn sale banner"]

with DAG(
    dag_id="aihubmix_lineage_guards",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
):
    # 4 images x 0.06 USD = 0.24 USD per mapped task, each over its 0.10 USD budget.
    AIHubMixImagenOperator.partial(
        task_id="over_budget",
        model="imagen-4.0-ultra-generate-001",
        n=4,
        max_cost_usd=0.10,
        output_uri=OUTPUT_URI,
    ).expand(prompt=PROMPTS)

    # No published price and no allow_unknown_cost: refused as well.
    AIHubMixQwenImageOperator.partial(task_id="unpriced", max_cost_usd=1.0, output_uri=OUTPUT_URI).expand(
        prompt=PROMPTS
    )

    AIHubMixOpenAIImageOperator(
        task_id="request_moderated",
        model="gpt-image-1-mini",
        prompt="sandbox:moderated poster",
        output_uri=OUTPUT_URI,
    )

    AIHubMixFluxOperator(
        task_id="content_moderated",
        prompt="a poster sandbox:content-moderated",
        poll_interval=0.2,
        output_uri=OUTPUT_URI,
    )

    submit = AIHubMixFluxOperator(
        task_id="submit",
        prompt="a lighthouse at dawn",
        wait_for_completion=False,
        output_uri=OUTPUT_URI,
        lineage_include_prompt=True,
    )
    collect = AIHubMixTaskSensor(
        task_id="collect",
        aihubmix_task_id="{{ ti.xcom_pull(task_ids='submit')[0]['remote_task_id'] }}",
        model="flux-2-pro",
        output_uri=OUTPUT_URI,
        poll_interval=0.2,
        mode="poke",
    )
    submit >> collect
