"""Issue 28: gpt-image-2, Seedream 5.0 lite, dated Seedream ids, and new models of known providers."""

from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_aihubmix.catalog import passthrough
from airflow_provider_aihubmix.catalog.limits import SOURCES
from airflow_provider_aihubmix.catalog.models import CATALOG, Family, resolve_model
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.pricing import PriceTable
from airflow_provider_aihubmix.pricing.cost import estimate_request
from airflow_provider_aihubmix.schemas import build_input, request_body

P = "a lighthouse at dawn"


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    passthrough._warned.clear()


def test_new_rows_carry_their_sources() -> None:
    for path in ("openai/gpt-image-2", "doubao/doubao-seedream-5.0-lite"):
        spec = CATALOG[path]
        assert spec.limits.sources, path
        for _, text in spec.limits.sources:
            assert any(name in text for name in SOURCES), (path, text)


@pytest.mark.parametrize(
    ("dated", "path"),
    [
        ("doubao-seedream-4-5-251128", "doubao/doubao-seedream-4-5"),
        ("doubao-seedream-4-0-250828", "doubao/doubao-seedream-4-0"),
        ("doubao/doubao-seedream-4-5-251128", "doubao/doubao-seedream-4-5"),
    ],
)
def test_dated_seedream_ids_are_aliases_of_their_rows(dated: str, path: str) -> None:
    assert resolve_model(dated).path == path


def test_gpt_image_2_sizes_follow_its_pixel_bounds() -> None:
    spec = CATALOG["openai/gpt-image-2"]
    assert build_input(spec, {"prompt": P, "size": "3840x2160"})["size"] == "3840x2160"
    for bad in ("3856x2160", "1000x1000", "3840x1024", "4096x4096"):
        with pytest.raises(AIHubMixValidationError, match="size"):
            build_input(spec, {"prompt": P, "size": bad})
    with pytest.raises(AIHubMixValidationError, match="background"):
        build_input(spec, {"prompt": P, "background": "transparent"})


def test_seedream_5_lite_sizes_and_tools() -> None:
    lite = CATALOG["doubao/doubao-seedream-5.0-lite"]
    extra = {"tools": [{"type": "web_search"}]}
    body = request_body(lite, build_input(lite, {"prompt": P, "size": "3K"}, extra))
    assert body == {"input": {"prompt": P, "size": "3K", "tools": [{"type": "web_search"}]}}
    with pytest.raises(AIHubMixValidationError, match="1K"):
        build_input(lite, {"prompt": P, "size": "1K"})
    wire = build_input(lite, {"prompt": P, "output_format": "PNG", "tools": '[{"type": "web_search"}]'})
    assert wire == {"prompt": P, "output_format": "png", "tools": [{"type": "web_search"}]}
    with pytest.raises(AIHubMixValidationError, match=r"Seedream 5\.0 lite"):
        build_input(CATALOG["doubao/doubao-seedream-4-5"], {"prompt": P, "output_format": "png"})
    with pytest.raises(AIHubMixValidationError, match="tools"):
        build_input(lite, {"prompt": P, "tools": ["web_search"]})


def test_gemini_stream_chooses_the_route_and_is_not_sent() -> None:
    from airflow_provider_aihubmix.schemas.wire import wire_request

    spec = CATALOG["gemini-3-pro-image-preview"]
    wire = wire_request(spec, build_input(spec, {"prompt": P, "stream": "true"}))
    assert wire.path.endswith(":streamGenerateContent") and "stream" not in json.dumps(wire.body)
    plain = wire_request(spec, build_input(spec, {"prompt": P}))
    assert plain.path.endswith(":generateContent")


def test_unknown_model_of_a_known_provider_takes_the_family_schema(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        spec = resolve_model("gpt-image-3", family=Family.OPENAI)
    assert spec.path == "openai/gpt-image-3" and spec.family is Family.OPENAI and not spec.known
    assert resolve_model("openai/gpt-image-3", family=Family.OPENAI).path == spec.path
    warnings = [r for r in caplog.records if "gpt-image-3" in r.getMessage()]
    assert len(warnings) == 1 and "limits are not known" in warnings[0].getMessage()
    # The family's parameters and wire names, validated by the family's rules.
    assert build_input(spec, {"prompt": P, "moderation": "low", "quality": "high"})["moderation"] == "low"
    with pytest.raises(AIHubMixValidationError, match="quality"):
        build_input(spec, {"prompt": P, "quality": "ultra"})
    seedream = resolve_model("doubao-seedream-6-0", family=Family.SEEDREAM)
    wire = build_input(seedream, {"prompt": P, "max_images": 3})
    assert wire["sequential_image_generation_options"] == {"max_images": 3}
    assert resolve_model("bfl/flux-3-pro", family=Family.FLUX).is_async


def test_unknown_provider_is_not_a_family_model() -> None:
    assert resolve_model("acme/gpt-image-3", family=Family.OPENAI, warn=False).family is Family.GENERIC
    assert resolve_model("openai/gpt-image-3", warn=False).family is Family.GENERIC


def test_unknown_family_model_cost_is_unknown_unless_priced() -> None:
    spec = resolve_model("openai/gpt-image-3", family=Family.OPENAI, warn=False)
    input_ = build_input(spec, {"prompt": P})
    assert not estimate_request(spec, input_).known
    priced = PriceTable.build(("operator parameter 'prices'", {"openai/gpt-image-3": 0.05}))
    assert estimate_request(spec, input_, priced).total_usd == 0.05
    bare = PriceTable.build(("operator parameter 'prices'", {"gpt-image-3": 0.07}))
    assert estimate_request(spec, input_, bare).total_usd == 0.07
