"""A 1,000-task run for the gallery at campaign scale (issue 25): its tasks never run.

Every mapped task waits in a pool without slots; the test (or the benchmark) writes each one's
manifest, images and location itself (``tests/e2e/gallery_scale.py``), so the run holds 1,000
images without 1,000 purchases.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_aihubmix.operators.images import AIHubMixImagenOperator

FILE_URI = os.environ.get("GALLERY_FILE_URI", "file:///tmp/gallery-unset")
TASKS = 1000
POOL = "gallery_scale_closed"

with DAG(
    "e2e_gallery_scale", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False
):
    AIHubMixImagenOperator.partial(
        task_id="gen",
        model="imagen-4.0-fast-generate-001",
        output_uri=f"{FILE_URI}/scale",
        lineage_include_prompt=True,
        pool=POOL,
    ).expand(prompt=[f"campaign asset {i}" for i in range(TASKS)])
