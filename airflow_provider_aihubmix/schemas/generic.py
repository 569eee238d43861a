"""A model not in the catalog, passed through: only the general parameters are checked.

The catalog trails upstream by weeks; a new model must work on day one, so every key but
``prompt``, ``n`` and ``image`` goes on the wire unchanged (it only has to be JSON).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator

from airflow_provider_aihubmix.catalog.models import Family
from airflow_provider_aihubmix.schemas._base import Count, FamilyInput, Images, Prompt, json_value

Unchecked = Annotated[Any, BeforeValidator(json_value)]


class GenericInput(FamilyInput):
    family = Family.GENERIC
    passes_unknown = True

    prompt: Prompt = None
    n: Count = None
    image: Images = None
    size: Unchecked = None
    quality: Unchecked = None
    seed: Unchecked = None
