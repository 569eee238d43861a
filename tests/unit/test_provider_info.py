"""The provider metadata Airflow reads through the entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from importlib.resources import files

import jsonschema

from airflow_provider_aihubmix.get_provider_info import get_provider_info


def test_entry_point_resolves_to_get_provider_info() -> None:
    eps = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_provider_")
    ]
    assert len(eps) == 1
    assert eps[0].load() is get_provider_info


def test_provider_info_validates_against_airflow_schema() -> None:
    schema = json.loads(files("airflow").joinpath("provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "airflow-provider-aihubmix"
    assert {c["connection-type"] for c in info["connection-types"]} == {"aihubmix"}


def test_modules_named_in_provider_info_import() -> None:
    import importlib

    info = get_provider_info()
    modules = [
        m
        for section in ("operators", "sensors", "hooks", "triggers")
        for e in info[section]
        for m in e["python-modules"]
    ]
    for name in modules:
        importlib.import_module(name)
    for dotted in [c["hook-class-name"] for c in info["connection-types"]] + info["extra-links"]:
        module, _, attr = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), dotted


def test_airflow_providers_list_shows_the_provider() -> None:
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW__CORE__UNIT_TEST_MODE"}
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    # The CLI may print warnings before the JSON document.
    rows = json.loads(out[out.index("[") :])
    assert any(r["package_name"] == "airflow-provider-aihubmix" for r in rows), rows
