"""Azure: Imagen banners stored in an Azure Blob Storage container, then a FLUX edit of the first.

Install ``airflow-provider-aihubmix[azure]``, add a ``wasb_default`` connection (a managed
identity, a service principal or an account key: the Azure provider's WasbHook reads it) and set
``AIHUBMIX_AZURE_OUTPUT_URI`` to ``abfs://container/prefix`` -- the scheme Airflow's object
storage uses for Azure (``wasb://container/prefix`` names the same place). Each image is checked
against the blob's ``Content-MD5`` after upload; manifests beside the images make a retry buy
nothing.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_aihubmix.operators.images import AIHubMixImagenOperator, AIHubMixQwenImageOperator

OUTPUT_URI = os.environ.get("AIHUBMIX_AZURE_OUTPUT_URI", "abfs://marketing/aihubmix")

with DAG(
    dag_id="aihubmix_azure_blob",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aihubmix", "example", "azure"],
) as dag:
    banner = AIHubMixImagenOperator(
        task_id="banner",
        model="imagen-4.0-fast-generate-001",
        prompt="a minimalist autumn sale banner, terracotta and cream, no text",
        output_uri=OUTPUT_URI,
        output_conn_id="wasb_default",
        max_cost_usd=0.20,
    )
    AIHubMixQwenImageOperator(
        task_id="edit",
        model="qwen-image-edit",
        prompt="add a few falling maple leaves",
        image=banner.output,
        output_uri=OUTPUT_URI,
        output_conn_id="wasb_default",
        max_cost_usd=0.20,
    )
