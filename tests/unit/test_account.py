"""The account's view: the balance body as public clients read it, and catalog drift."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_aihubmix.catalog.drift import compare
from airflow_provider_aihubmix.responses.balance import parse_remain


@pytest.mark.parametrize(
    ("body", "remaining", "unlimited"),
    [
        ({"object": "billing_remain", "total_usage": 12.5}, 12.5, False),
        ({"data": {"total_usage": "3.25"}}, 3.25, False),
        ({"total_usage": -0.000002}, None, True),
        ({"total_usd": 10}, None, False),
        ({"total_usage": float("nan")}, None, False),
        ([], None, False),
    ],
)
def test_remain_body(body: Any, remaining: float | None, unlimited: bool) -> None:
    balance = parse_remain(body)
    assert (balance.remaining_usd, balance.unlimited) == (remaining, unlimited)
    assert "public clients" in balance.as_dict()["source"]


def test_drift_from_the_model_list_and_the_public_catalog() -> None:
    listed = ["gpt-image-2", "gpt-image-1", "wan2.7-image-pro", "gpt-4o-mini", "doubao-seedream-4-5-251128"]
    public = [
        {"model_id": "gpt-image-2", "types": "image_generation", "input_modalities": "text"},
        {"model_id": "wan2.7-image-pro", "types": "image_generation", "input_modalities": "text,image"},
        {"model_id": "gpt-4o-mini", "types": "llm", "input_modalities": "text,image"},
    ]
    drift = compare(listed, public)
    assert drift.lacking == ("wan2.7-image-pro",)  # the dated id is an alias; gpt-4o-mini is no image model
    assert drift.image_models == 2 and drift.typed_by == "the public catalog's types"
    assert drift.differs == (
        "openai/gpt-image-2: catalog takes reference images, the public list says input_modalities='text'",
    )
    assert "qianfan/qwen-image" in drift.unlisted and "openai/gpt-image-2" not in drift.unlisted
    assert "1 image model(s) the catalog lacks: wan2.7-image-pro" in drift.summary()


def test_drift_without_the_public_catalog_tells_image_models_by_name() -> None:
    drift = compare(["gpt-4o-mini", "flux-3-pro", "wan2.6-t2i", "imagen-4.0-generate-001"])
    assert drift.lacking == ("flux-3-pro", "wan2.6-t2i") and drift.typed_by == "names"
