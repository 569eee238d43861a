"""The custom OpenLineage run facet ``aihubmix`` and the JSON schema that ships beside it.

Only :mod:`airflow_provider_aihubmix.facets.run` imports ``openlineage``; nothing imports it
unless an OpenLineage listener asks an operator for its lineage, so the provider stays optional.
"""

from __future__ import annotations

from pathlib import Path

FACET_NAME = "aihubmix"
SCHEMA_FILE = Path(__file__).with_name("AIHubMixRunFacet.json")
# The facet's schemaURL: the copy installed with the package (no public URL is published yet).
SCHEMA_URL = f"{SCHEMA_FILE.as_uri()}#/$defs/AIHubMixRunFacet"

__all__ = ["FACET_NAME", "SCHEMA_FILE", "SCHEMA_URL"]
