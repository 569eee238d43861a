"""OpenLineage for image generation, kept apart from the operators (the provider is optional)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_aihubmix.generation import GenerationRun


class AIHubMixLineageMixin:
    """State the lineage methods read: the run being made and the records it stored."""

    _lineage_run: GenerationRun | None = None
    _lineage_records: list[dict[str, Any]] | None = None
