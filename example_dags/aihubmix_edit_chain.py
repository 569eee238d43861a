"""Generate with one model, then edit the result with qwen-image-edit: nothing passes but XCom.

The edit task's ``image`` is the first task's output: its XCom records carry the stored
image's URI, which the operator reads with the same connection and sends inline.
"""

from __future__ import annotations

import pendulum
from _common import OUTPUT_URI
from airflow.sdk import DAG

from airflow_provider_aihubmix.operators.images import AIHubMixImagenOperator, AIHubMixQwenImageOperator

with DAG(
    dag_id="aihubmix_edit_chain",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aihubmix", "example"],
    params={"subject": "a minimalist ceramic coffee mug on a plain background, product photo"},
) as dag:
    generate = AIHubMixImagenOperator(
        task_id="generate",
        model="imagen-4.0-fast-generate-001",
        prompt="{{ params.subject }}",
        output_uri=OUTPUT_URI,
    )
    edit = AIHubMixQwenImageOperator(
        task_id="edit",
        model="qwen-image-edit",
        prompt="Turn the scene into autumn: warm orange light and a few falling leaves",
        image=generate.output,
        output_uri=OUTPUT_URI,
    )
    generate >> edit
