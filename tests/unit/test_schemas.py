"""Request schemas: what reaches the wire, and what is refused before any HTTP call."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_aihubmix.catalog.models import (
    CATALOG,
    Endpoint,
    Family,
    ModelSpec,
    models_in_family,
    resolve_model,
)
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.schemas import (
    MAX_PROMPT_LENGTH,
    SCHEMAS,
    build_input,
    family_parameters,
    model_parameters,
    request_body,
    validate_params,
)
from tests.cases.invalid_inputs import INVALID_INPUTS, InvalidInput

P = "a lighthouse at dawn, watercolour"
CAT = "https://images.example.com/cat.png"
DOG = "https://images.example.com/dog.png"
PIXEL = "data:image/png;base64,iVBORw0KGgo="
GENERIC = "acme/new-image-model"


def spec(model: str) -> ModelSpec:
    return resolve_model(model, warn=False)


def refused(model: str, params: Any, extra_input: Any = None) -> str:
    with pytest.raises(AIHubMixValidationError) as info:
        build_input(spec(model), params, extra_input)
    return str(info.value)


# --- the shared table of invalid inputs -----------------------------------------------


@pytest.mark.parametrize("case", INVALID_INPUTS, ids=[case.id for case in INVALID_INPUTS])
def test_invalid_input_is_refused_with_a_helpful_message(case: InvalidInput) -> None:
    message = refused(case.model, case.params, case.extra_input)
    missing = [fragment for fragment in case.expected_fragments if fragment not in message]
    assert not missing, f"{missing} not in: {message}"


def test_invalid_table_covers_every_family_and_names_param_and_model() -> None:
    assert len(INVALID_INPUTS) >= 45
    assert len({case.id for case in INVALID_INPUTS}) == len(INVALID_INPUTS)
    families = {spec(case.model).family for case in INVALID_INPUTS}
    assert families == set(Family)
    for case in INVALID_INPUTS:
        assert spec(case.model).name in case.expected_fragments, case.id
        assert any(fragment.startswith("'") for fragment in case.expected_fragments), case.id


# --- valid input for every catalog model ----------------------------------------------

VALID: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "openai/gpt-image-1.5": (
        {
            "prompt": P,
            "size": "1024x1536",
            "n": 2,
            "quality": "high",
            "image": [CAT, DOG],
            "input_fidelity": "high",
            "output_format": "webp",
            "background": "transparent",
            "output_compression": 80,
        },
        {
            "prompt": P,
            "size": "1024x1536",
            "n": 2,
            "quality": "high",
            "image": [CAT, DOG],
            "input_fidelity": "high",
            "output_format": "webp",
            "background": "transparent",
            "output_compression": 80,
        },
    ),
    "openai/gpt-image-2": (
        {
            "prompt": P,
            "size": "2048x1152",
            "n": 1,
            "quality": "high",
            "moderation": "low",
            "background": "auto",
        },
        {
            "prompt": P,
            "size": "2048x1152",
            "n": 1,
            "quality": "high",
            "moderation": "low",
            "background": "auto",
        },
    ),
    "doubao/doubao-seedream-5.0-lite": (
        {"prompt": P, "size": "3K", "image": [CAT, DOG], "max_images": 3},
        {
            "prompt": P,
            "size": "3K",
            "image": [CAT, DOG],
            "sequential_image_generation": "auto",
            "sequential_image_generation_options": {"max_images": 3},
        },
    ),
    "openai/gpt-image-1": (
        {"prompt": P, "size": "auto", "image": CAT, "input_fidelity": "low"},
        {"prompt": P, "size": "auto", "image": CAT, "input_fidelity": "low"},
    ),
    "openai/gpt-image-1-mini": (
        {"prompt": P, "size": "1K", "moderation": "low", "quality": "low", "output_format": "jpeg"},
        {"prompt": P, "size": "1K", "moderation": "low", "quality": "low", "output_format": "jpeg"},
    ),
    "openai/dall-e-3": (
        {"prompt": P, "size": "1792x1024", "quality": "hd", "n": 1},
        {"prompt": P, "size": "1792x1024", "quality": "hd", "n": 1},
    ),
    "google/imagen-4.0-ultra-generate-001": (
        {"prompt": P, "n": 2, "aspect_ratio": "16:9", "size": "2K"},
        {"prompt": P, "numberOfImages": 2, "sampleCount": 2, "aspectRatio": "16:9", "size": "2K"},
    ),
    "google/imagen-4.0-generate-001": (
        {"prompt": P, "size": "1K", "aspect_ratio": "3:4"},
        {"prompt": P, "size": "1K", "aspectRatio": "3:4"},
    ),
    "google/imagen-4.0-fast-generate-001": (
        {"prompt": P, "n": 4},
        {"prompt": P, "numberOfImages": 4, "sampleCount": 4},
    ),
    "google/imagen-4.0-fast-generate-preview-06-06": (
        {"prompt": P, "aspect_ratio": "9:16"},
        {"prompt": P, "aspectRatio": "9:16"},
    ),
    "google/imagen-3.0-generate-002": (
        {"prompt": P, "n": 1, "aspect_ratio": "1:1"},
        {"prompt": P, "numberOfImages": 1, "sampleCount": 1, "aspectRatio": "1:1"},
    ),
    "qianfan/qwen-image": (
        {"prompt": P, "size": "768*1024", "n": 1, "image": CAT, "watermark": False, "seed": 2147483647},
        {"prompt": P, "size": "768*1024", "n": 1, "refer_image": CAT, "watermark": False, "seed": 2147483647},
    ),
    "qianfan/qwen-image-edit": (
        {"prompt": P, "image": CAT, "seed": 0},
        {"prompt": P, "image": [CAT], "seed": 0},
    ),
    "doubao/doubao-seedream-4-5": (
        {
            "prompt": P,
            "size": "4K",
            "image": [CAT, DOG],
            "sequential_image_generation": "auto",
            "max_images": 13,
            "watermark": True,
            "seed": -1,
            "response_format": "url",
            "stream": False,
        },
        {
            "prompt": P,
            "size": "4K",
            "image": [CAT, DOG],
            "sequential_image_generation": "auto",
            "sequential_image_generation_options": {"max_images": 13},
            "watermark": True,
            "seed": -1,
            "response_format": "url",
            "stream": False,
        },
    ),
    "doubao/doubao-seedream-4-0": (
        {"prompt": P, "size": "2048x1536", "image": PIXEL, "response_format": "base64_json", "n": 3},
        {"prompt": P, "size": "2048x1536", "image": PIXEL, "response_format": "base64_json", "n": 3},
    ),
    "bfl/flux-2-flex": (
        {
            "prompt": P,
            "image": [CAT, DOG, PIXEL],
            "aspect_ratio": "3:2",
            "safety_tolerance": 2,
            "seed": 7,
            "output_format": "png",
            "n": 1,
        },
        {
            "prompt": P,
            "input_image": CAT,
            "input_image_2": DOG,
            "input_image_3": PIXEL,
            "aspect_ratio": "3:2",
            "safety_tolerance": 2,
            "seed": 7,
            "output_format": "png",
        },
    ),
    "bfl/flux-2-pro": (
        {
            "prompt": P,
            "width": 1440,
            "height": 816,
            "safety_tolerance": 5,
            "raw": True,
            "prompt_upsampling": False,
        },
        {
            "prompt": P,
            "width": 1440,
            "height": 816,
            "safety_tolerance": 5,
            "raw": True,
            "prompt_upsampling": False,
        },
    ),
    "bfl/flux-kontext-max": (
        {"prompt": P, "image": CAT, "aspect_ratio": "2:3", "safety_tolerance": 0},
        {"prompt": P, "input_image": CAT, "aspect_ratio": "2:3", "safety_tolerance": 0},
    ),
    "FLUX.1-Kontext-pro": (
        {"prompt": P, "safety_tolerance": 6, "aspect_ratio": "1:1"},
        {"prompt": P, "safety_tolerance": 6, "aspect_ratio": "1:1"},
    ),
    "qianfan/irag-1.0": (
        {
            "prompt": P,
            "size": "1024x768",
            "n": 2,
            "image": CAT,
            "guidance": 7.5,
            "watermark": False,
            "seed": 42,
        },
        {
            "prompt": P,
            "size": "1024x768",
            "n": 2,
            "refer_image": CAT,
            "guidance": 7.5,
            "watermark": False,
            "seed": 42,
        },
    ),
    "qianfan/ernie-irag-edit": (
        {"prompt": P, "image": CAT, "feature": "repaint", "mask": PIXEL},
        {"prompt": P, "image": CAT, "feature": "repaint", "mask": PIXEL},
    ),
    "ideogram/V3": (
        {
            "prompt": P,
            "rendering_speed": "QUALITY",
            "aspect_ratio": "2x1",
            "style_type": "DESIGN",
            "negative_prompt": "blur",
            "magic_prompt": "OFF",
            "seed": 9,
            "n": 4,
            "image": [CAT, DOG],
        },
        {
            "prompt": P,
            "rendering_speed": "QUALITY",
            "aspect_ratio": "2x1",
            "style_type": "DESIGN",
            "negative_prompt": "blur",
            "magic_prompt": "OFF",
            "seed": 9,
            "n": 4,
            "image": [CAT, DOG],
        },
    ),
    "gemini-2.5-flash-image": (
        {"prompt": P, "n": 3, "image": [CAT, PIXEL], "aspect_ratio": "4x5", "seed": 3, "temperature": 0.4},
        {"prompt": P, "n": 3, "image": [CAT, PIXEL], "aspectRatio": "4:5", "seed": 3, "temperature": 0.4},
    ),
    "gemini-3-pro-image-preview": (
        {"prompt": P, "image": [CAT] * 14, "image_size": "4k", "response_modalities": ["image", "text"]},
        {"prompt": P, "image": [CAT] * 14, "imageSize": "4K", "responseModalities": ["TEXT", "IMAGE"]},
    ),
    "gemini-3.1-flash-image-preview": (
        {"prompt": P, "size": "512", "aspect_ratio": "1:8"},
        {"prompt": P, "imageSize": "512", "aspectRatio": "1:8"},
    ),
}


def test_every_catalog_model_has_a_valid_case() -> None:
    assert set(VALID) == set(CATALOG)


@pytest.mark.parametrize("path", sorted(VALID))
def test_valid_input_produces_the_wire_fields(path: str) -> None:
    params, expected = VALID[path]
    assert build_input(CATALOG[path], params) == expected


@pytest.mark.parametrize("path", sorted(VALID))
def test_valid_input_passes_the_parse_time_check(path: str) -> None:
    validate_params(CATALOG[path], VALID[path][0])


@pytest.mark.parametrize(
    ("model", "wire"),
    [  # the vendor doc's own example inputs, verbatim
        (
            "openai/gpt-image-1.5",
            {
                "prompt": P,
                "size": "1024x1024",
                "n": 1,
                "quality": "high",
                "moderation": "low",
                "background": "auto",
            },
        ),
        ("google/imagen-4.0-fast-generate-001", {"prompt": P, "numberOfImages": 1}),
        (
            "qianfan/qwen-image",
            {"prompt": P, "refer_image": "", "n": 1, "size": "1024x1024", "watermark": False},
        ),
        (
            "doubao/doubao-seedream-4-0",
            {
                "prompt": P,
                "size": "2K",
                "sequential_image_generation": "disabled",
                "stream": False,
                "response_format": "url",
                "watermark": True,
            },
        ),
        ("FLUX.1-Kontext-pro", {"prompt": P, "safety_tolerance": 6}),
        ("bfl/flux-kontext-max", {"prompt": P, "aspect_ratio": "2:3", "safety_tolerance": 6}),
        ("ideogram/V3", {"prompt": P, "rendering_speed": "QUALITY", "aspect_ratio": "2x1"}),
        (
            "qianfan/irag-1.0",
            {
                "prompt": P,
                "refer_image": "",
                "n": 1,
                "size": "1024x1024",
                "guidance": 7.5,
                "watermark": False,
            },
        ),
    ],
)
def test_vendor_doc_examples_are_accepted(model: str, wire: dict[str, Any]) -> None:
    out = build_input(spec(model), wire)
    assert out["prompt"] == P
    assert "refer_image" not in out  # the doc's "" means "no reference"
    assert set(out) - {"sampleCount"} <= set(wire)  # Imagen's count goes out under both names


def test_passed_through_model_checks_general_parameters_and_keeps_the_rest() -> None:
    params = {"prompt": P, "n": "2", "image": [CAT], "size": "1536x640", "style": {"preset": "anime"}}
    out = build_input(spec(GENERIC), params, {"cfg_scale": 4.5})
    assert out == {
        "prompt": P,
        "n": 2,
        "image": CAT,
        "size": "1536x640",
        "style": {"preset": "anime"},
        "cfg_scale": 4.5,
    }


def test_none_means_unset() -> None:
    common = {"prompt": P, "size": None, "n": None, "quality": None, "image": None, "seed": None}
    for path, model in CATALOG.items():
        params = dict(common, image=CAT) if not model.text_to_image else common
        out = build_input(model, params)
        assert set(out) <= {"prompt", "image", "refer_image"}, path


def test_every_problem_is_reported_at_once() -> None:
    message = refused("gpt-image-1", {"prompt": "", "n": 0, "quality": "best", "sizee": "1K"})
    assert message.startswith("4 problems with the input for model gpt-image-1")
    for name in ("'prompt'", "'n'", "'quality'", "'sizee'", "did you mean 'size'"):
        assert name in message


def test_unknown_parameter_names_its_owner_family() -> None:
    message = refused("gpt-image-1", {"prompt": P, "aspect_ratio": "16:9"})
    assert "'aspect_ratio'" in message
    assert "imagen, flux, ideogram, gemini families" in message
    assert "allowed parameters: prompt, size, n, quality" in message


def test_prompt_length_limit_is_inclusive() -> None:
    assert (
        build_input(spec("gpt-image-1"), {"prompt": "x" * MAX_PROMPT_LENGTH})["prompt"]
        == "x" * MAX_PROMPT_LENGTH
    )


def test_messages_never_show_signed_queries_or_base64_payloads() -> None:
    signed = "https://bucket.s3.amazonaws.com/cat.png?X-Amz-Signature=SECRETSIG"
    payload = "data:image/png;base64," + "QUJD" * 50 + "SECRETB64"
    message = refused("qwen-image-edit", {"prompt": P, "image": [signed, payload, signed, payload]})
    assert "too many references (4)" in message
    assert "SECRET" not in message


# --- extra_input -----------------------------------------------------------------------


def test_extra_input_unknown_keys_pass_through_verbatim_and_independent() -> None:
    extra = {"person_generation": "allow_adult", "options": {"safety": [1, 2]}}
    out = build_input(spec("imagen-4.0-generate-001"), {"prompt": P}, extra)
    assert out == {"prompt": P, "person_generation": "allow_adult", "options": {"safety": [1, 2]}}
    out["options"]["safety"].append(3)
    assert extra["options"] == {"safety": [1, 2]}


def test_extra_input_modelled_keys_are_validated_and_mapped() -> None:
    out = build_input(spec("imagen-4.0-generate-001"), {"prompt": P}, {"aspectRatio": "4:3", "n": "2"})
    assert out == {"prompt": P, "aspectRatio": "4:3", "numberOfImages": 2, "sampleCount": 2}
    assert "'watermark'" in refused("qwen-image", {"prompt": P}, {"watermark": "maybe"})


def test_extra_input_conflicts_with_params_but_not_with_unset_params() -> None:
    message = refused("qwen-image", {"prompt": P, "seed": 1}, {"seed": 2})
    assert "'seed' is given twice" in message
    assert "extra_input 'seed'" in message
    assert build_input(spec("qwen-image"), {"prompt": P, "seed": None}, {"seed": 2})["seed"] == 2
    assert "seed" not in build_input(spec("qwen-image"), {"prompt": P}, {"seed": None})


def test_extra_input_aliases_count_as_the_same_parameter() -> None:
    message = refused("qwen-image", {"prompt": P, "image": CAT}, {"refer_image": DOG})
    assert "'image' is given twice" in message


def test_seedream_nested_options_merge_with_passthrough_keys() -> None:
    out = build_input(
        spec("doubao-seedream-4-0"),
        {"prompt": P, "max_images": 3},
        {"sequential_image_generation_options": {"quality_hint": "fast"}},
    )
    assert out["sequential_image_generation_options"] == {"max_images": 3, "quality_hint": "fast"}
    assert out["sequential_image_generation"] == "auto"
    out = build_input(
        spec("doubao-seedream-4-0"),
        {"prompt": P},
        {"sequential_image_generation_options": {"max_images": "4"}},
    )
    assert out["sequential_image_generation_options"] == {"max_images": 4}


@pytest.mark.parametrize("extra", [["n", 2], "n=2", 5])
def test_extra_input_must_be_a_mapping(extra: Any) -> None:
    assert "'extra_input'" in refused("gpt-image-1", {"prompt": P}, extra)


def test_params_must_be_a_mapping_with_string_keys() -> None:
    assert "'params'" in refused("gpt-image-1", [("prompt", P)])
    assert "not a string" in refused("gpt-image-1", {"prompt": P, 3: "x"})


def test_generations_body_cannot_carry_a_model_from_extra_input() -> None:
    assert "'model'" in refused("FLUX.1-Kontext-pro", {"prompt": P}, {"model": "other"})


# --- coercion of template-rendered strings ---------------------------------------------


@pytest.mark.parametrize(
    ("model", "params", "field", "expected"),
    [
        ("gpt-image-1", {"n": "3"}, "n", 3),
        ("gpt-image-1", {"n": " 2 "}, "n", 2),
        ("gpt-image-1", {"quality": "HIGH"}, "quality", "high"),
        ("gpt-image-1", {"size": "1024*1024"}, "size", "1024x1024"),
        ("qwen-image", {"watermark": "false"}, "watermark", False),
        ("qwen-image", {"watermark": "True"}, "watermark", True),
        ("qwen-image", {"size": "1024x1024"}, "size", "1024x1024"),  # sent as written
        ("qwen-image", {"seed": "2147483647"}, "seed", 2147483647),
        ("doubao-seedream-4-0", {"size": "2048*2048"}, "size", "2048x2048"),
        ("doubao-seedream-4-0", {"size": "2k"}, "size", "2K"),
        ("doubao-seedream-4-0", {"seed": "-1"}, "seed", -1),
        ("irag-1.0", {"guidance": "7.5"}, "guidance", 7.5),
        ("irag-1.0", {"guidance": 7}, "guidance", 7.0),
        ("ideogram/V3", {"aspect_ratio": "16:9"}, "aspect_ratio", "16x9"),
        ("ideogram/V3", {"rendering_speed": "turbo"}, "rendering_speed", "TURBO"),
        ("flux-2-pro", {"aspect_ratio": "16x9"}, "aspect_ratio", "16:9"),
        ("flux-2-pro", {"raw": "true"}, "raw", True),
        ("imagen-4.0-generate-001", {"n": "4"}, "numberOfImages", 4),
    ],
)
def test_rendered_strings_are_coerced(model: str, params: dict[str, Any], field: str, expected: Any) -> None:
    out = build_input(spec(model), {"prompt": P, **params})
    assert out[field] == expected
    assert type(out[field]) is type(expected)


@pytest.mark.parametrize(
    ("model", "params", "fragment"),
    [
        ("gpt-image-1", {"n": "3.0"}, "'n' = '3.0' is not an integer"),
        ("gpt-image-1", {"n": 2.0}, "'n' = 2.0 is not an integer"),
        ("gpt-image-1", {"n": True}, "'n' = True is a boolean"),
        ("gpt-image-1", {"n": "abc"}, "'n' = 'abc' is not an integer"),
        ("qwen-image", {"watermark": 1}, "'watermark' = 1 is not a boolean"),
        ("qwen-image", {"watermark": "yes"}, "'watermark' = 'yes' is not a boolean"),
        ("irag-1.0", {"guidance": "nan"}, "'guidance' = 'nan' is not a number"),
        ("irag-1.0", {"guidance": float("inf")}, "'guidance' = inf is out of range"),
        ("qwen-image", {"seed": "9" * 40}, "'seed'"),
    ],
)
def test_loose_values_are_refused(model: str, params: dict[str, Any], fragment: str) -> None:
    assert fragment in refused(model, {"prompt": P, **params})


@pytest.mark.parametrize(
    "rendered",
    [f"['{CAT}', '{DOG}']", json.dumps([CAT, DOG])],
    ids=["python-repr", "json"],
)
def test_image_list_rendered_to_a_string_is_read_back(rendered: str) -> None:
    assert build_input(spec("qwen-image-edit"), {"prompt": P, "image": rendered})["image"] == [CAT, DOG]


# --- parse-time checks -----------------------------------------------------------------


def test_validate_params_skips_jinja_and_checks_literals() -> None:
    templated = {
        "prompt": "{{ params.prompt }}",
        "n": "{{ params.n }}",
        "size": "{% if x %}2K{% endif %}",
        "image": ["{{ ti.xcom_pull('refs') }}"],
    }
    validate_params(spec("gpt-image-1"), templated)
    validate_params(spec("gpt-image-1"), {}, {"moderation": "{{ var.value.moderation }}"})
    with pytest.raises(AIHubMixValidationError, match="'n' = 'abc'"):
        validate_params(spec("gpt-image-1"), {"prompt": "{{ p }}", "n": "abc"})
    with pytest.raises(AIHubMixValidationError, match=re.escape("'n' = '{{ params.n }}' is not an integer")):
        validate_params(spec("gpt-image-1"), templated, skip_templated=False)


def test_validate_params_checks_names_even_when_the_value_is_templated() -> None:
    with pytest.raises(AIHubMixValidationError, match="did you mean 'quality'"):
        validate_params(spec("gpt-image-1"), {"qualty": "{{ params.q }}"})
    with pytest.raises(AIHubMixValidationError, match="'background' is not supported by model dall-e-3"):
        validate_params(spec("dall-e-3"), {"background": "{{ params.background }}"})


def test_validate_params_leaves_required_and_unresolved_references_to_run_time() -> None:
    edit = spec("qwen-image-edit")
    validate_params(edit, {})  # prompt and image may come from templates or the operator
    validate_params(edit, {"prompt": P, "image": ["s3://bucket/cat.png", "/data/dog.png"]})
    with pytest.raises(AIHubMixValidationError, match="too many references"):
        validate_params(edit, {"image": ["s3://b/1.png", "s3://b/2.png", "s3://b/3.png", "s3://b/4.png"]})


@pytest.mark.parametrize("ref", ["s3://bucket/cat.png", "file:///data/cat.png", "/data/cat.png"])
def test_resolvable_references_pass_unless_resolved_ones_are_required(ref: str) -> None:
    # The run validates what the DAG gave before reading anything, then again with data: URIs.
    edit = spec("qwen-image-edit")
    assert build_input(edit, {"prompt": P, "image": [ref, CAT]})["image"] == [ref, CAT]
    with pytest.raises(AIHubMixValidationError, match=r"'image' = .* holds .*(unresolved|local path)"):
        build_input(edit, {"prompt": P, "image": [ref, CAT]}, require_resolved=True)
    assert build_input(edit, {"prompt": P, "image": PIXEL}, require_resolved=True)["image"] == [PIXEL]


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        ("ftp://bucket/cat.png", "cannot send (ftp://)"),
        ("gs:///no-bucket.png", "cannot send (gs://)"),
        ("s3:///no-bucket.png", "cannot send (s3://)"),
        ("data:text/plain;base64,aGk=", "not a base64-encoded image"),
        ("https://", "cannot send (https://)"),
    ],
)
def test_unsendable_references_are_refused(ref: str, fragment: str) -> None:
    message = refused("irag-1.0", {"prompt": P, "image": ref})
    assert fragment in message
    assert "'image'" in message


def test_mask_is_checked_like_a_reference() -> None:
    message = refused(
        "ernie-irag-edit", {"prompt": P, "image": CAT, "mode": "erase", "mask": "ftp://x/m.png"}
    )
    assert "'mask'" in message
    assert "ernie-irag-edit" in message


# --- request bodies and parameter lists ------------------------------------------------


def test_request_body_for_predictions_wraps_input() -> None:
    model = spec("gpt-image-1")
    assert model.endpoint is Endpoint.PREDICTIONS
    input_ = build_input(model, {"prompt": P, "n": 2})
    assert request_body(model, input_) == {"input": {"prompt": P, "n": 2}}


def test_request_body_for_generations_is_flat() -> None:
    model = spec("FLUX.1-Kontext-pro")
    assert model.endpoint is Endpoint.GENERATIONS
    input_ = build_input(model, {"prompt": P, "safety_tolerance": 6})
    assert request_body(model, input_) == {"model": "FLUX.1-Kontext-pro", "prompt": P, "safety_tolerance": 6}
    with pytest.raises(AIHubMixValidationError, match="'model'"):
        request_body(model, {"prompt": P, "model": "x"})


@pytest.mark.parametrize("family", list(Family))
def test_family_parameters_are_each_taken_by_some_model(family: Family) -> None:
    names = family_parameters(family)
    assert names[0] == "prompt"
    assert len(set(names)) == len(names)
    models = models_in_family(family) or [spec(GENERIC)]
    for name in names:
        assert any(name in model_parameters(model) for model in models), name


def test_model_parameters_drop_what_a_model_lacks() -> None:
    assert "image" not in model_parameters(spec("dall-e-3"))
    assert "background" not in model_parameters(spec("dall-e-3"))
    assert "size" in model_parameters(spec("qwen-image-edit"))  # Qianfan edits take a size
    assert "input_fidelity" not in model_parameters(spec("gpt-image-1-mini"))
    assert "width" in model_parameters(spec("flux-2-pro"))
    assert "width" not in model_parameters(spec("flux-kontext-max"))
    assert "style" in model_parameters(spec("dall-e-3"))
    assert "mask" in model_parameters(spec("ernie-irag-edit"))
    assert "mask" not in model_parameters(spec("irag-1.0"))


# --- robustness: only AIHubMixValidationError escapes ----------------------------------

SPECS = [*CATALOG.values(), spec(GENERIC)]
INTERESTING = [
    "", " ", "3", "-1", "0", "15", "true", "False", "auto", "1K", "4K", "1024x1024", "1024*1024",
    "16:9", "2x1", "QUALITY", "erase", "png", "jpeg", "transparent", "disabled", CAT, PIXEL,
    "s3://b/k.png", "{{ x }}", "[1, 2]", f"['{CAT}']", "[[[[", "nan", "1e999", "9" * 50,
]  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-3, max_value=20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.binary(max_size=6)
    | st.sampled_from(INTERESTING)
    | st.builds(object)
)
JUNK = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def junk_call(draw: st.DrawFn) -> tuple[ModelSpec, Any, Any]:
    model = draw(st.sampled_from(SPECS))
    schema = SCHEMAS[model.family]
    names = [*schema.parameters(), *schema.wire_names.values(), *schema.aliases, "input_image_2"]
    keys = st.sampled_from(names) | st.text(max_size=10)
    params: Any = draw(
        st.dictionaries(keys, JUNK, max_size=6).map(lambda d: {"prompt": P, **d})
        | st.dictionaries(keys, JUNK, max_size=6)
        | JUNK
    )
    extra = draw(st.none() | st.dictionaries(keys | st.integers(), JUNK, max_size=3) | JUNK)
    return model, params, extra


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=junk_call())
def test_build_input_raises_only_validation_errors(call: tuple[ModelSpec, Any, Any]) -> None:
    model, params, extra = call
    try:
        out = build_input(model, params, extra)
    except AIHubMixValidationError as exc:
        assert model.name in str(exc) or "'spec'" in str(exc)
        return
    assert isinstance(out["prompt"], str)
    json.dumps(request_body(model, out), allow_nan=False)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=junk_call())
def test_validate_params_raises_only_validation_errors(call: tuple[ModelSpec, Any, Any]) -> None:
    model, params, extra = call
    with contextlib.suppress(AIHubMixValidationError):
        validate_params(model, params, extra)


@settings(max_examples=150, deadline=None)
@given(
    model=st.sampled_from(SPECS),
    values=st.fixed_dictionaries(
        {},
        optional={
            "n": st.sampled_from([1, 2, 4, 15, "3"]),
            "size": st.sampled_from(["1K", "2K", "auto", "1024x1024", "1024*1024", "2048x2048"]),
            "image": st.lists(st.sampled_from([CAT, DOG, PIXEL]), max_size=4),
            "seed": st.integers(-2, 5),
            "aspect_ratio": st.sampled_from(["1:1", "16:9", "2x1"]),
            "safety_tolerance": st.integers(0, 6),
            "max_images": st.integers(1, 15),
            "sequential_image_generation": st.sampled_from(["auto", "disabled"]),
            "moderation": st.just("low"),
            "mode": st.sampled_from(["erase", "variation"]),
        },
    ),
)
def test_plausible_values_either_build_or_explain(model: ModelSpec, values: dict[str, Any]) -> None:
    # Near-valid inputs reach the cross-parameter rules, which junk rarely does.
    try:
        out = build_input(model, {"prompt": P, **values})
    except AIHubMixValidationError as exc:
        assert model.name in str(exc)
        return
    assert out["prompt"] == P
    json.dumps(out, allow_nan=False)
