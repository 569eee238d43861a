"""The custom OpenLineage run facet ``aihubmix`` and the JSON schema that ships beside it.

Only :mod:`airflow_provider_aihubmix.facets.run` imports ``openlineage``; nothing imports it
unless an OpenLineage listener asks an operator for its lineage, so the provider stays optional.

``_schemaURL`` follows OpenLineage's convention for custom facets: a stable https URL of the
schema file at the release tag of the package that produced the event (as the in-tree Airflow
providers point at their repository at a release tag). The file at that URL is byte for byte the
one shipped in the wheel (``SCHEMA_FILE``); its ``$id`` is the same URL, checked by the tests.
"""

from __future__ import annotations

from pathlib import Path

from airflow_provider_aihubmix.version import __version__

FACET_NAME = "aihubmix"
SCHEMA_FILE = Path(__file__).with_name("AIHubMixRunFacet.json")
#: Where released source files are served; the one place to change if the repository moves.
SOURCE_BASE_URL = "https://raw.githubusercontent.com/airflow-provider-aihubmix/airflow-provider-aihubmix"
SCHEMA_PATH = "airflow_provider_aihubmix/facets/AIHubMixRunFacet.json"
SCHEMA_ID = f"{SOURCE_BASE_URL}/v{__version__}/{SCHEMA_PATH}"
SCHEMA_URL = f"{SCHEMA_ID}#/$defs/AIHubMixRunFacet"

__all__ = ["FACET_NAME", "SCHEMA_FILE", "SCHEMA_ID", "SCHEMA_PATH", "SCHEMA_URL", "SOURCE_BASE_URL"]
