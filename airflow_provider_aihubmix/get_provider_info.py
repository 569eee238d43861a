"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_aihubmix.connection import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_aihubmix.version import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-aihubmix",
        "name": "AIHubMix",
        "description": "Generate images with every model AIHubMix serves (OpenAI gpt-image, Google Imagen, "
        "Qwen-Image, ByteDance Seedream, Flux, Baidu iRAG, Ideogram) from Airflow DAGs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "AIHubMix",
                "external-doc-url": "https://docs.aihubmix.com/",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "AIHubMix",
                "python-modules": ["airflow_provider_aihubmix.operators.images"],
            }
        ],
        "sensors": [
            {
                "integration-name": "AIHubMix",
                "python-modules": ["airflow_provider_aihubmix.sensors.aihubmix"],
            }
        ],
        "hooks": [
            {
                "integration-name": "AIHubMix",
                "python-modules": ["airflow_provider_aihubmix.hooks.aihubmix"],
            }
        ],
        "triggers": [
            {
                "integration-name": "AIHubMix",
                "python-modules": ["airflow_provider_aihubmix.triggers.aihubmix"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_aihubmix.hooks.aihubmix.AIHubMixHook",
                "connection-type": "aihubmix",
                "hook-name": "AIHubMix",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "extra-links": ["airflow_provider_aihubmix.links.AIHubMixImageLink"],
    }
