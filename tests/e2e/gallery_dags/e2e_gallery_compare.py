"""A run for the gallery's compare view (issue 25): the same two prompts bought from three models."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_aihubmix.operators.images import (
    AIHubMixImagenOperator,
    AIHubMixOpenAIImageOperator,
    AIHubMixSeedreamOperator,
)

FILE_URI = os.environ.get("GALLERY_FILE_URI", "file:///tmp/gallery-unset")
PROMPTS = ["a paper boat on a puddle, macro photo", "a mountain cabin under stars, poster"]
MODELS = ("doubao-seedream-4-0", "imagen-4.0-fast-generate-001", "gpt-image-1-mini")

with DAG(
    "e2e_gallery_compare", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False
):
    common = {"output_uri": f"{FILE_URI}/compare", "lineage_include_prompt": True}
    AIHubMixSeedreamOperator.partial(task_id="seedream", model=MODELS[0], size="1K", seed=7, **common).expand(
        prompt=PROMPTS
    )
    AIHubMixImagenOperator.partial(task_id="imagen", model=MODELS[1], **common).expand(prompt=PROMPTS)
    AIHubMixOpenAIImageOperator.partial(task_id="openai", model=MODELS[2], quality="low", **common).expand(
        prompt=PROMPTS
    )
