"""Apache Airflow provider for AIHubMix image generation."""

from airflow_provider_aihubmix.version import __version__

__all__ = ["__version__"]
