"""Cloud Composer: a Gemini ("Nano Banana") product shot and an edit of it, stored in a GCS bucket.

Install ``airflow-provider-aihubmix[google]`` in the environment (PyPI packages), set the
``aihubmix_default`` connection (the API key), and point ``AIHUBMIX_GCS_OUTPUT_URI`` at a bucket
the environment's service account may write (``gs://bucket/prefix``). Composer's
``google_cloud_default`` connection (the environment's service account) is used: no key file.
Every image is verified against GCS's own ``md5Hash`` after upload; its manifest sits beside it,
so a retry buys nothing. The edit reads its input image from the bucket through the upstream
record, with the same connection.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_aihubmix.operators.images import AIHubMixGeminiImageOperator

OUTPUT_URI = os.environ.get("AIHUBMIX_GCS_OUTPUT_URI", "gs://my-composer-bucket/aihubmix")

with DAG(
    dag_id="aihubmix_composer_gemini",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aihubmix", "example", "gcs"],
) as dag:
    shot = AIHubMixGeminiImageOperator(
        task_id="product_shot",
        model="gemini-2.5-flash-image",
        prompt="a ceramic pour-over coffee set on a linen cloth, soft morning light, product photo",
        aspect_ratio="4:5",
        output_uri=OUTPUT_URI,
        output_conn_id="google_cloud_default",
        max_cost_usd=0.20,
    )
    AIHubMixGeminiImageOperator(
        task_id="autumn_edit",
        model="gemini-2.5-flash-image",
        prompt="the same scene in autumn: warm light, a few maple leaves on the cloth",
        image=shot.output,
        aspect_ratio="4:5",
        output_uri=OUTPUT_URI,
        output_conn_id="google_cloud_default",
        max_cost_usd=0.20,
    )
