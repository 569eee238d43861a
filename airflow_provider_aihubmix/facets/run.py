"""``AIHubMixRunFacet``: which prompt, model and parameters made a run's images, and what they cost."""

from __future__ import annotations

from typing import Any

from attrs import Factory, define
from openlineage.client.facet_v2 import RunFacet

from airflow_provider_aihubmix.facets import SCHEMA_URL


@define
class AIHubMixRunFacet(RunFacet):
    """
    What one task instance asked AIHubMix for and got back; field by field in ``docs/LINEAGE.md``.

    ``prompt`` is filled only with ``lineage_include_prompt=True``: prompts can hold unreleased
    campaign copy, so by default only their sha256 leaves the worker.
    """

    model: str
    family: str | None = None
    # OpenLineage facet fields are camelCase.
    promptSha256: str | None = None
    prompt: str | None = None
    parameters: dict[str, Any] = Factory(dict)
    seed: int | None = None
    referenceImages: int = 0
    inlineReferenceImages: int = 0
    remoteTaskIds: list[str] = Factory(list)
    usage: dict[str, Any] | None = None
    commentary: list[str] | None = None
    # {"currency", "estimated", "actual", "basis", "priceSource", "priceRead", ..., "images": [...]}
    cost: dict[str, Any] | None = None
    imagesCount: int = 0
    # Asked for, where known: imagesCount below it means an upstream filter dropped some.
    imagesAsked: int | None = None
    costOverCap: bool | None = None
    # Sends whose answer was lost and that on_possibly_billed="resend_once" sent again (both counted):
    # [{"status", "requestId", "sentAt", "estimatedCostUsd", "manifestUri"}].
    possiblyBilledSends: list[dict[str, Any]] | None = None
    moderation: str | None = None
    manifestUri: str | None = None
    reused: bool | None = None
    error: dict[str, Any] | None = None

    _additional_skip_redact = ["model", "family", "promptSha256", "manifestUri", "cost"]

    @staticmethod
    def _get_schema() -> str:
        return SCHEMA_URL


__all__ = ["AIHubMixRunFacet"]
