"""The manifest's cost object, usage totals and the per-task budget guard (pure functions; no HTTP)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_aihubmix.catalog.models import CATALOG, resolve_model
from airflow_provider_aihubmix.exceptions import AIHubMixBudgetExceededError, AIHubMixValidationError
from airflow_provider_aihubmix.pricing import PriceTable, estimate, package_prices
from airflow_provider_aihubmix.pricing.cost import (
    check_budget,
    cost_record,
    estimate_request,
    expected_image_count,
    settle,
    token_counts,
    total_usage,
    totals_line,
)

UNPRICED = [spec for spec in CATALOG.values() if not package_prices()[spec.path].is_priced]
OPENAI_USAGE = {
    "input_tokens": 50,
    "output_tokens": 4160,
    "total_tokens": 4210,
    "input_tokens_details": {"text_tokens": 40, "image_tokens": 10},
}


def _records(n: int, model: str = "google/imagen-4.0-generate-001") -> list[dict]:
    return [
        {"uri": f"s3://b/p/image-{i:03d}.png", "model": model, "index": i, "width": 1024, "height": 1024}
        for i in range(n)
    ]


def test_per_image_model_settles_every_stored_image_at_its_price():
    spec = resolve_model("imagen-4.0-ultra-generate-001")
    found = estimate_request(spec, {"numberOfImages": 2})
    cost = settle(found, _records(2), usage=None)
    assert cost["estimated"] == pytest.approx(0.12) and cost["actual"] == pytest.approx(0.12)
    assert [i["actual"] for i in cost["images"]] == [0.06, 0.06]
    assert cost["price"]["source"].startswith("AIHubMix Imagen guide") and cost["price"]["read"]
    assert cost["basis"] == {"estimated": "per_image", "actual": "per_image"}


def test_imagen_without_a_count_is_estimated_at_the_upstream_default_of_four():
    # AIHubMix's Imagen guide: numberOfImages defaults to 4, so an unset n buys four.
    found = estimate_request(resolve_model("imagen-4.0-generate-001"), {"prompt": "x"})
    assert found.images == 4 and found.total_usd == pytest.approx(0.16)


def test_token_billed_actual_comes_from_usage_times_token_prices():
    found = estimate_request(resolve_model("gpt-image-1"), {"quality": "high", "size": "1024x1024"})
    cost = settle(found, _records(1, "openai/gpt-image-1"), usage=OPENAI_USAGE)
    # 40 text x $5/1M + 10 image x $10/1M + 4160 image out x $40/1M
    assert cost["actual"] == pytest.approx(40 * 5e-6 + 10 * 10e-6 + 4160 * 40e-6)
    assert cost["estimated"] == pytest.approx(4160 * 40e-6)
    assert cost["basis"]["actual"] == "usage_tokens"


def test_gemini_actual_prices_image_and_text_tokens_apart():
    found = estimate("gemini-2.5-flash-image", {})
    usage = {
        "promptTokenCount": 10,
        "candidatesTokenCount": 1300,
        "candidatesTokensDetails": [
            {"modality": "IMAGE", "tokenCount": 1290},
            {"modality": "TEXT", "tokenCount": 10},
        ],
    }
    cost = settle(found, _records(1), usage=usage)
    assert cost["actual"] == pytest.approx(10 * 0.3e-6 + 1290 * 30e-6 + 10 * 2.5e-6)


def test_token_billed_without_usage_falls_back_to_the_estimate_and_says_so():
    found = estimate_request(resolve_model("gpt-image-1-mini"), {"quality": "low", "size": "1024x1024"})
    cost = settle(found, _records(3, "openai/gpt-image-1-mini"), usage=None)
    assert cost["actual"] == pytest.approx(0.015)
    assert cost["basis"]["actual"] == "estimate_per_image"


def test_flux_actual_counts_the_stored_megapixels():
    found = estimate("bfl/flux-2-pro", {"prompt": "x"})
    assert found.total_usd == pytest.approx(0.075)  # size unknown: the 4 MP upper bound
    records = [{"index": 0, "uri": "s3://b/i.png", "width": 2048, "height": 1024}]
    assert settle(found, records, usage=None)["actual"] == pytest.approx(0.03 + 0.015)


@pytest.mark.parametrize("spec", UNPRICED, ids=lambda s: s.name)
def test_unpriced_models_stay_unknown_with_their_reason(spec):
    found = estimate_request(spec, {})
    assert found.total_usd is None and "No public" in (found.reason or "")
    cost = settle(found, _records(1, spec.path), usage=None)
    assert cost["estimated"] is None and cost["actual"] is None
    assert cost["price"]["unit"] == "unknown"


def test_passed_through_and_unnamed_models_are_unknown_not_invented():
    assert estimate("someone/new-model", {}).total_usd is None
    assert estimate("unknown", {}).total_usd is None


def test_cost_record_is_json_for_the_manifest():
    found = estimate_request(resolve_model("imagen-4.0-fast-generate-001"), {"numberOfImages": 2})
    data = settle(found, _records(2), usage=None)
    assert json.loads(json.dumps(data)) == data
    before = cost_record(found)
    assert before["estimated"] == pytest.approx(0.04) and before["actual"] is None and before["images"] == []


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
    line = totals_line(images=3, estimated_cost_usd=0.06, usage={"total_tokens": 12}, actual_cost_usd=0.05)
    assert line == (
        'AIHubMix totals: 3 image(s), estimated 0.0600 USD, actual 0.0500 USD, usage {"total_tokens": 12}'
    )
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


def test_budget_refuses_over_budget_names_the_numbers_and_is_not_retried():
    spec = resolve_model("imagen-4.0-ultra-generate-001")
    with pytest.raises(AIHubMixBudgetExceededError) as err:
        check_budget(spec, {"numberOfImages": 4}, max_cost_usd=0.1, allow_unknown_cost=False)
    message = str(err.value)
    assert "max_cost_usd" in message and "0.2400" in message and "nothing was submitted" in message
    from airflow_provider_aihubmix.version_compat import AirflowFailException

    assert isinstance(err.value, AirflowFailException)


@pytest.mark.parametrize(
    ("model", "input_", "cap"),
    [
        ("gpt-image-1", {"quality": "high", "size": "1536x1024"}, 0.2),
        ("flux-2-pro", {}, 0.05),
        ("V3", {"rendering_speed": "QUALITY", "n": 2}, 0.1),
        ("doubao-seedream-4-5", {"sequential_image_generation": "auto"}, 0.5),
        ("dall-e-3", {"quality": "hd", "size": "1792x1024"}, 0.1),
    ],
)
def test_budget_guards_every_pricing_unit(model, input_, cap):
    with pytest.raises(AIHubMixBudgetExceededError, match="max_cost_usd"):
        check_budget(resolve_model(model), input_, max_cost_usd=cap, allow_unknown_cost=False)


def test_budget_allows_within_budget_and_returns_the_estimate():
    spec = resolve_model("imagen-4.0-fast-generate-001")
    found = check_budget(spec, {"numberOfImages": 2}, max_cost_usd=0.04, allow_unknown_cost=False)
    assert found.total_usd == pytest.approx(0.04)
    unset = check_budget(spec, {}, max_cost_usd=None, allow_unknown_cost=False)
    assert unset.total_usd == pytest.approx(0.08)


@pytest.mark.parametrize("cap", [float("nan"), -0.01, "0.5", True])
def test_a_cap_that_cannot_refuse_is_itself_refused(cap):
    # NaN compares false with every estimate: it would let any request through.
    spec = resolve_model("imagen-4.0-ultra-generate-001")
    with pytest.raises(AIHubMixValidationError, match="'max_cost_usd' must be a number of USD >= 0"):
        check_budget(spec, {"numberOfImages": 4}, max_cost_usd=cap, allow_unknown_cost=False)


@pytest.mark.parametrize("spec", UNPRICED[:3], ids=lambda s: s.name)
def test_budget_refuses_unknown_price_unless_allowed(spec):
    with pytest.raises(AIHubMixValidationError, match="allow_unknown_cost"):
        check_budget(spec, {}, max_cost_usd=1.0, allow_unknown_cost=False)
    assert check_budget(spec, {}, max_cost_usd=1.0, allow_unknown_cost=True).total_usd is None


def test_a_price_override_makes_an_unpriced_model_guardable():
    table = PriceTable.build(("test", {"qwen-image": 0.05}))
    found = check_budget(
        resolve_model("qwen-image"), {"n": 2}, max_cost_usd=0.1, allow_unknown_cost=False, table=table
    )
    assert found.total_usd == pytest.approx(0.1) and found.row is not None and found.row.origin == "test"
