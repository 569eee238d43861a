"""A run for the gallery's GCS test: two images in a gs:// bucket (fake-gcs-server), n=2."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_aihubmix.operators.images import AIHubMixImagenOperator

GCS_URI = os.environ.get("GALLERY_GCS_URI", "gs://gallery-unset/images")

with DAG("e2e_gallery_gcs", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    AIHubMixImagenOperator(
        task_id="on_gcs",
        model="imagen-4.0-fast-generate-001",
        prompt="a paper lantern festival at night, illustration",
        n=2,
        output_uri=GCS_URI,
        output_conn_id="google_cloud_default",
        lineage_include_prompt=True,
    )
