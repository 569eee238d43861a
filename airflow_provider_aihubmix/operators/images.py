"""Image operators, the public face: the generic operator and every family operator.

Users, the example DAGs and the provider info (``get_provider_info``) import the operators from
this module; it only re-exports them, so its path stays what Airflow and DAG files name:

* :mod:`.generic` -- :class:`AIHubMixGenerateImageOperator`, one engine for every model;
  validation, storage, idempotency, deferral and lineage live there and in
  :mod:`airflow_provider_aihubmix.engine.run`;
* :mod:`.families` -- the thin family classes: typed parameters and a default flagship model.
"""

from __future__ import annotations

from airflow_provider_aihubmix.operators.families import (
    AIHubMixFluxOperator,
    AIHubMixGeminiImageOperator,
    AIHubMixIdeogramOperator,
    AIHubMixImagenOperator,
    AIHubMixIRAGOperator,
    AIHubMixOpenAIImageOperator,
    AIHubMixQwenImageOperator,
    AIHubMixSeedreamOperator,
)
from airflow_provider_aihubmix.operators.generic import AIHubMixGenerateImageOperator

__all__ = [
    "AIHubMixFluxOperator",
    "AIHubMixGeminiImageOperator",
    "AIHubMixGenerateImageOperator",
    "AIHubMixIRAGOperator",
    "AIHubMixIdeogramOperator",
    "AIHubMixImagenOperator",
    "AIHubMixOpenAIImageOperator",
    "AIHubMixQwenImageOperator",
    "AIHubMixSeedreamOperator",
]
