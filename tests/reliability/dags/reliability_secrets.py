"""Successful and failing tasks, run with a canary API key by ``tests/reliability/test_secrets.py``.

Every way a task can end is here -- stored, deferred and collected, refused by moderation,
moderated upstream, 5xx past the retry budget, an unreadable answer, invalid templated input
-- and Gemini's own route (key in ``x-goog-api-key``: a series, an edit, a refusal), so that
the leak scan covers the logs, XCom, rendered fields, manifests and lineage of each.
The parent test injects the faults by model path (``imagen`` answers 500, ``seedream`` half a
JSON body) before the run.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_aihubmix.operators.images import (
    AIHubMixFluxOperator,
    AIHubMixGeminiImageOperator,
    AIHubMixGenerateImageOperator,
    AIHubMixImagenOperator,
    AIHubMixOpenAIImageOperator,
    AIHubMixQwenImageOperator,
    AIHubMixSeedreamOperator,
)
from airflow_provider_aihubmix.sensors.aihubmix import AIHubMixTaskSensor

OUTPUT_URI = os.environ["AIHUBMIX_OUTPUT_URI"]

with DAG(
    dag_id="reliability_secrets",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"bad_n": "{'n': 'many'}", "subject": "a lighthouse"},
    default_args={"retries": 0},
):
    AIHubMixQwenImageOperator(task_id="ok_url", prompt="{{ params.subject }} at dawn", output_uri=OUTPUT_URI)
    AIHubMixOpenAIImageOperator(
        task_id="ok_inline", model="gpt-image-1-mini", prompt="a harbour", output_uri=OUTPUT_URI
    )
    AIHubMixFluxOperator(
        task_id="ok_deferred", prompt="a kite", deferrable=True, poll_interval=0.3, output_uri=OUTPUT_URI
    )
    submit = AIHubMixFluxOperator(
        task_id="submit", prompt="a pier", wait_for_completion=False, output_uri=OUTPUT_URI
    )
    collect = AIHubMixTaskSensor(
        task_id="collect",
        aihubmix_task_id="{{ ti.xcom_pull(task_ids='submit')[0]['remote_task_id'] }}",
        model="flux-2-pro",
        output_uri=OUTPUT_URI,
        poll_interval=0.3,
        mode="poke",
    )
    submit >> collect
    AIHubMixOpenAIImageOperator(
        task_id="fail_moderated", model="gpt-image-1-mini", prompt="sandbox:moderated", output_uri=OUTPUT_URI
    )
    AIHubMixFluxOperator(
        task_id="fail_content_moderated",
        prompt="a poster sandbox:content-moderated",
        poll_interval=0.3,
        output_uri=OUTPUT_URI,
    )
    AIHubMixImagenOperator(
        task_id="fail_upstream", model="imagen-4.0-fast-generate-001", prompt="a bay", output_uri=OUTPUT_URI
    )
    AIHubMixSeedreamOperator(task_id="fail_unreadable", prompt="a cove", output_uri=OUTPUT_URI)
    AIHubMixGenerateImageOperator(
        task_id="fail_invalid_template",
        model="qwen-image",
        prompt="a reef",
        n="{{ params.bad_n }}",
        output_uri=OUTPUT_URI,
    )
    # Gemini's route takes the key in x-goog-api-key: a series of two, an edit of it, a refusal.
    gemini = AIHubMixGeminiImageOperator(
        task_id="ok_gemini", prompt="a fox mascot", n=2, output_uri=OUTPUT_URI
    )
    gemini >> AIHubMixGeminiImageOperator(
        task_id="ok_gemini_edit",
        prompt="the fox mascot with a scarf",
        image="{{ ti.xcom_pull(task_ids='ok_gemini')[0] }}",
        output_uri=OUTPUT_URI,
    )
    AIHubMixGeminiImageOperator(
        task_id="fail_gemini_blocked", prompt="a poster sandbox:block=SAFETY", output_uri=OUTPUT_URI
    )
