"""The model catalog: which models AIHubMix serves, how each is called, and what each allows.

:mod:`.models` holds one :class:`ModelSpec` row per model (path, family, endpoint, sync or
async, capabilities); :mod:`.limits` holds what differs per model (pixel bounds, prompt limits,
allowed values) with the public source of every rule. A new model is a catalog row.

Import-light and free of Airflow: the sandbox reads the catalog without importing Airflow.
"""

from __future__ import annotations

from airflow_provider_aihubmix.catalog.limits import ModelLimits, PixelBounds, PromptLimit
from airflow_provider_aihubmix.catalog.models import (
    CATALOG,
    Endpoint,
    Family,
    ModelSpec,
    UnknownModelError,
    catalog_models,
    models_in_family,
    resolve_model,
)

__all__ = [
    "CATALOG",
    "Endpoint",
    "Family",
    "ModelLimits",
    "ModelSpec",
    "PixelBounds",
    "PromptLimit",
    "UnknownModelError",
    "catalog_models",
    "models_in_family",
    "resolve_model",
]
