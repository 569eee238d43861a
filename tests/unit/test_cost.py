"""Cost estimates, usage totals and the budget guard (pure functions; no HTTP)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_aihubmix.catalog import CATALOG, resolve_model
from airflow_provider_aihubmix.cost import (
    CostBasis,
    check_budget,
    cost_breakdown,
    expected_image_count,
    price_per_image_usd,
    token_counts,
    total_usage,
    totals_line,
)
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError

PRICED = [spec for spec in CATALOG.values() if spec.price_per_image_usd is not None]
UNPRICED = [spec for spec in CATALOG.values() if spec.price_per_image_usd is None]
OPENAI_USAGE = {
    "input_tokens": 50,
    "output_tokens": 4160,
    "total_tokens": 4210,
    "input_tokens_details": {"text_tokens": 40, "image_tokens": 10},
}


def _records(n: int, model: str = "google/imagen-4.0-generate-001") -> list[dict]:
    return [{"uri": f"s3://b/p/image-{i:03d}.png", "model": model, "index": i} for i in range(n)]


@pytest.mark.parametrize("spec", PRICED, ids=lambda s: s.name)
def test_breakdown_prices_every_image_at_the_catalog_price(spec):
    breakdown = cost_breakdown(spec.path, _records(3, spec.path))
    assert breakdown.basis is CostBasis.CATALOG_PRICE_PER_IMAGE
    assert [image["estimated_cost_usd"] for image in breakdown.images] == [spec.price_per_image_usd] * 3
    assert breakdown.total_usd == pytest.approx(3 * spec.price_per_image_usd)
    assert [image["uri"] for image in breakdown.images] == [r["uri"] for r in _records(3, spec.path)]


def test_breakdown_resolves_short_names_like_the_operators():
    assert cost_breakdown("imagen-4.0-ultra-generate-001", _records(2)).total_usd == pytest.approx(0.12)


def test_token_billed_model_has_usage_but_no_invented_price():
    breakdown = cost_breakdown("gpt-image-1", _records(1, "openai/gpt-image-1"), usage=OPENAI_USAGE)
    assert breakdown.basis is CostBasis.TOKEN_USAGE_UNPRICED
    assert breakdown.total_usd is None
    assert breakdown.images[0]["estimated_cost_usd"] is None


def test_unpriced_without_usage_and_unknown_models_are_unpriced():
    assert cost_breakdown("doubao-seedream-4-0", _records(1)).basis is CostBasis.UNPRICED
    # A sensor collecting a task of an unnamed model records model "unknown": no crash, no price.
    assert price_per_image_usd("unknown") is None
    assert cost_breakdown("unknown", _records(2)).total_usd is None
    # A passed-through provider/model path is not priced either.
    assert price_per_image_usd("someone/new-model") is None


def test_breakdown_is_json_for_the_manifest():
    data = cost_breakdown("imagen-4.0-fast-generate-001", _records(2)).as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["basis"] == "catalog_price_per_image"
    assert data["total_usd"] == pytest.approx(0.04)
    assert {image["index"] for image in data["images"]} == {0, 1}


def test_token_counts_flatten_nested_usage_and_skip_non_counts():
    counts = token_counts({**OPENAI_USAGE, "model": "x", "cached": True, "ratio": 0.5})
    assert counts == {
        "input_tokens": 50,
        "output_tokens": 4160,
        "total_tokens": 4210,
        "input_tokens_details.text_tokens": 40,
        "input_tokens_details.image_tokens": 10,
    }
    assert token_counts(None) == {}


def test_total_usage_sums_tasks_and_ignores_missing_usage():
    total = total_usage([OPENAI_USAGE, None, {"total_tokens": 90, "promptTokenCount": 7}])
    assert total["total_tokens"] == 4300
    assert total["input_tokens_details.image_tokens"] == 10
    assert total["promptTokenCount"] == 7


def test_totals_line_says_images_cost_and_usage():
    line = totals_line(images=3, estimated_cost_usd=0.06, usage={"total_tokens": 12})
    assert line == 'AIHubMix totals: 3 image(s), estimated 0.0600 USD, usage {"total_tokens": 12}'
    unknown = totals_line(images=1, estimated_cost_usd=None, usage=None, reused=True)
    assert "unknown" in unknown and "usage {}" in unknown and "nothing was bought" in unknown


@pytest.mark.parametrize(
    ("input_", "count"),
    [
        ({"prompt": "x"}, 1),
        ({"prompt": "x", "n": 3}, 3),
        ({"prompt": "x", "numberOfImages": 4}, 4),
        ({"prompt": "x", "sampleCount": 2}, 2),
        ({"prompt": "x", "sequential_image_generation": "auto"}, 15),
        (
            {
                "prompt": "x",
                "sequential_image_generation": "auto",
                "sequential_image_generation_options": {"max_images": 5},
            },
            5,
        ),
    ],
)
def test_expected_image_count(input_, count):
    assert expected_image_count(input_) == count


def test_budget_refuses_over_budget_and_names_the_numbers():
    spec = resolve_model("imagen-4.0-ultra-generate-001")
    with pytest.raises(AIHubMixValidationError) as err:
        check_budget(spec, {"numberOfImages": 4}, max_cost_usd=0.1, allow_unknown_cost=False)
    message = str(err.value)
    assert "max_cost_usd" in message and "0.2400" in message and "nothing was submitted" in message


def test_budget_allows_within_budget_and_returns_the_estimate():
    spec = resolve_model("imagen-4.0-fast-generate-001")
    assert check_budget(spec, {"numberOfImages": 2}, max_cost_usd=0.04, allow_unknown_cost=False) == (
        pytest.approx(0.04)
    )
    assert check_budget(spec, {}, max_cost_usd=None, allow_unknown_cost=False) == pytest.approx(0.02)


@pytest.mark.parametrize("spec", UNPRICED[:3], ids=lambda s: s.name)
def test_budget_refuses_unknown_price_unless_allowed(spec):
    with pytest.raises(AIHubMixValidationError, match="allow_unknown_cost"):
        check_budget(spec, {}, max_cost_usd=1.0, allow_unknown_cost=False)
    assert check_budget(spec, {}, max_cost_usd=1.0, allow_unknown_cost=True) is None
