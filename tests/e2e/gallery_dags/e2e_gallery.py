"""A run for the gallery tests: images on S3 and on local disk, a hidden prompt, a moderated task."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_aihubmix.operators.images import (
    AIHubMixImagenOperator,
    AIHubMixOpenAIImageOperator,
    AIHubMixSeedreamOperator,
)

S3_URI = os.environ.get("GALLERY_S3_URI", "s3://gallery-unset/images")
FILE_URI = os.environ.get("GALLERY_FILE_URI", "file:///tmp/gallery-unset")
PROMPTS = ["a lighthouse at dawn, watercolour", "a red bicycle against a blue wall, photo"]

with DAG("e2e_gallery", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    # Mapped, on S3, prompt shown (lineage_include_prompt=True); two images each.
    AIHubMixSeedreamOperator.partial(
        task_id="on_s3",
        model="doubao-seedream-4-0",
        size="1K",
        n=2,
        seed=42,
        output_uri=S3_URI,
        lineage_include_prompt=True,
    ).expand(prompt=PROMPTS)
    # Unmapped, on local disk, prompt kept out of lineage: the gallery shows only its hash.
    AIHubMixImagenOperator(
        task_id="on_disk",
        model="imagen-4.0-fast-generate-001",
        prompt="a secret product launch poster",
        n=2,
        output_uri=FILE_URI,
    )
    # Refused by moderation: shown as such, with no image.
    AIHubMixOpenAIImageOperator(
        task_id="moderated",
        model="gpt-image-1-mini",
        quality="low",
        prompt="sandbox:moderated a poster",
        output_uri=FILE_URI,
        lineage_include_prompt=True,
        retries=0,
    )
