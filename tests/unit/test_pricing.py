"""The price table: every model has a sourced row, estimates match the vendors' published examples,
overrides from the connection and the operator change the estimate, and docs/PRICES.md is current."""

from __future__ import annotations

import json
import re

import pytest

from airflow_provider_aihubmix.catalog.models import CATALOG
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.pricing import PRICES_FILE, PriceTable, estimate, package_prices
from airflow_provider_aihubmix.pricing import docs as price_docs
from airflow_provider_aihubmix.pricing.table import parse_overrides

GEMINI_MODELS = (
    "gemini-2.5-flash-image",
    "gemini-3-pro-image-preview",
    "gemini-3.1-flash-image-preview",
)
ROWS = package_prices()
# Rows that carry the vendor's own per-image examples next to the token prices.
PUBLISHED = [
    (model, key, price)
    for model, row in ROWS.items()
    if row.output_tokens_per_image is not None
    for key, price in row.published_per_image.items()
]


@pytest.mark.parametrize("model", [*sorted(CATALOG), *GEMINI_MODELS])
def test_every_model_has_a_row_with_unit_source_and_date(model):
    row = ROWS[model]
    assert row.unit in ("image", "token", "megapixel", "unknown")
    assert len(row.source) > 30 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", row.read)
    if row.is_priced:
        assert estimate(model, {}).total_usd is not None or row.unit == "token"
    else:
        assert row.source.startswith("No public")


def test_the_data_file_is_plain_json_with_one_row_per_model():
    data = json.loads(PRICES_FILE.read_text())
    assert data["currency"] == "USD" and set(data["models"]) == set(ROWS)


@pytest.mark.parametrize(("model", "key", "published"), PUBLISHED, ids=lambda v: str(v))
def test_token_estimate_matches_the_published_per_image_example(model, key, published):
    row = ROWS[model]
    table = row.output_tokens_per_image
    assert table is not None
    input_ = {param.keys[0]: value for param, value in zip(table.params, key.split("/"), strict=True)}
    found = estimate(model, input_)
    # Vendors round their per-image tables: to the tenth of a cent (4160 x $40/1M = 0.1664 -> $0.167), and
    # OpenAI quotes one $0.20 for portrait (6240 tokens) and landscape (6208 tokens = $0.1987) gpt-image-1.5.
    assert found.total_usd == pytest.approx(published, abs=0.001, rel=0.01), found.detail
    assert found.basis == "output_tokens_per_image"


def test_published_examples_cover_every_size_and_quality_of_gpt_image():
    covered = {(m, k) for m, k, _ in PUBLISHED}
    for model in ("openai/gpt-image-1", "openai/gpt-image-1.5"):
        for quality in ("low", "medium", "high"):
            for size in ("1024x1024", "1024x1536", "1536x1024"):
                assert (model, f"{quality}/{size}") in covered


def test_unset_or_auto_options_estimate_the_dearest_published_combination():
    assert estimate("gpt-image-1", {"quality": "auto"}).total_usd == pytest.approx(6240 * 40e-6)
    assert estimate("gpt-image-1.5", {"quality": "low"}).total_usd == pytest.approx(408 * 32e-6)


def test_an_unpublished_option_is_unknown_not_guessed():
    found = estimate("gpt-image-1", {"quality": "high", "size": "4K"})
    assert found.total_usd is None and "4K" in (found.reason or "")


def test_override_number_is_a_per_image_price_keyed_by_any_model_name():
    table = PriceTable.build(("connection 'x' extra 'prices'", {"doubao-seedream-4-5": 0.035}))
    found = estimate("doubao/doubao-seedream-4-5", {"n": 2}, table)
    assert found.total_usd == pytest.approx(0.07)
    assert found.row is not None and found.row.origin == "connection 'x' extra 'prices'"


def test_later_overrides_win_and_json_text_is_accepted():
    table = PriceTable.build(
        ("connection", '{"imagen-4.0-generate-001": 0.03}'),
        ("operator", {"google/imagen-4.0-generate-001": {"per_image": 0.025, "source": "our deal"}}),
    )
    found = estimate("imagen-4.0-generate-001", {"numberOfImages": 2}, table)
    assert found.total_usd == pytest.approx(0.05) and found.row is not None and found.row.source == "our deal"


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ({"gpt-image-1": -1}, "number >= 0"),
        ({"gpt-image-1": {"unit": "bananas"}}, "'unit' must be one of"),
        ({"gpt-image-1": {"unit": "token"}}, "token_prices_per_million"),
        ("not json", "not valid JSON"),
        (["gpt-image-1"], "must be an object"),
    ],
)
def test_bad_overrides_name_the_parameter(prices, message):
    with pytest.raises(AIHubMixValidationError, match="prices") as err:
        parse_overrides(prices, origin="test")
    assert message in str(err.value)


def test_operator_refuses_a_bad_literal_prices_at_parse_time():
    from airflow_provider_aihubmix.operators.images import AIHubMixSeedreamOperator

    with pytest.raises(AIHubMixValidationError, match="prices"):
        AIHubMixSeedreamOperator(task_id="t", prompt="p", prices={"doubao-seedream-4-5": "cheap"})


def test_connection_extra_prices_change_the_estimate_and_the_operator_parameter_wins(monkeypatch):
    from airflow_provider_aihubmix.operators.images import AIHubMixSeedreamOperator

    extra = {"prices": {"doubao-seedream-4-5": 0.01}}
    conn = {"conn_type": "aihubmix", "password": "sk-test", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_AIHUBMIX_DISCOUNT", json.dumps(conn))
    input_ = {"n": 3}
    default = AIHubMixSeedreamOperator(task_id="a", prompt="p", aihubmix_conn_id="aihubmix_nowhere")
    assert estimate("doubao-seedream-4-5", input_, default.price_table()).total_usd == pytest.approx(0.12)
    discounted = AIHubMixSeedreamOperator(task_id="b", prompt="p", aihubmix_conn_id="aihubmix_discount")
    found = estimate("doubao-seedream-4-5", input_, discounted.price_table())
    assert found.total_usd == pytest.approx(0.03)
    assert found.row is not None and "aihubmix_discount" in found.row.origin
    mine = AIHubMixSeedreamOperator(
        task_id="c", prompt="p", aihubmix_conn_id="aihubmix_discount", prices={"doubao-seedream-4-5": 0.02}
    )
    assert estimate("doubao-seedream-4-5", input_, mine.price_table()).total_usd == pytest.approx(0.06)


def test_docs_price_page_is_generated_from_the_data_file():
    assert price_docs.DOC_PATH.read_text(encoding="utf-8") == price_docs.render(), (
        "docs/PRICES.md is out of date: python -m airflow_provider_aihubmix.pricing.docs --write"
    )
    text = price_docs.render()
    for model, row in ROWS.items():
        assert f"`{model}`" in text and row.read in text
