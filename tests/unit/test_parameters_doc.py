"""docs/PARAMETERS.md is generated from the catalog and the schemas, and the committed page is current."""

from __future__ import annotations

import re

from airflow_provider_aihubmix.catalog.limits import SOURCES
from airflow_provider_aihubmix.catalog.models import CATALOG
from airflow_provider_aihubmix.schemas import model_parameters
from airflow_provider_aihubmix.schemas.docs import DOC_PATH, main, render


def test_the_committed_page_is_up_to_date() -> None:
    assert DOC_PATH.read_text(encoding="utf-8") == render(), (
        "docs/PARAMETERS.md is out of date: python -m airflow_provider_aihubmix.schemas.docs --write"
    )
    assert main(["--check"]) == 0


def test_every_model_and_parameter_has_a_row_with_a_known_source() -> None:
    page = render()
    for spec in CATALOG.values():
        section = page.split(f"### `{spec.path}`", 1)[1].split("\n### ", 1)[0]
        for name in model_parameters(spec):
            (row,) = [line for line in section.splitlines() if line.startswith(f"| `{name}` |")]
            source = row.rstrip(" |").rsplit(" | ", 1)[1]
            # Every short source name on the page is one the page defines.
            cited = {word for word in re.findall(r"[a-z][a-z0-9-]+", source) if word in SOURCES}
            assert cited, (spec.path, name, source)


def test_the_page_shows_per_model_rules_and_wire_names() -> None:
    page = render()

    def row(model: str, name: str) -> str:
        section = page.split(f"### `{model}`", 1)[1].split("\n### ", 1)[0]
        return next(line for line in section.splitlines() if line.startswith(f"| `{name}` |"))

    assert "3,686,400" in row("doubao/doubao-seedream-4-5", "size")
    assert "921,600" in row("doubao/doubao-seedream-4-0", "size")
    assert "`image`" in row("qianfan/ernie-irag-edit", "image")
    assert "`refer_image`" in row("qianfan/irag-1.0", "image")
    assert "`feature`" in row("qianfan/ernie-irag-edit", "feature")
    assert "`sampleCount` + `numberOfImages`" in row("google/imagen-4.0-generate-001", "n")
    assert "0..5" in row("bfl/flux-2-pro", "safety_tolerance")
    assert "0..6" in row("bfl/flux-kontext-max", "safety_tolerance")
    assert "makes 4 images when no count is sent" in page.split("### `google/imagen-3.0-generate-002`")[1]
