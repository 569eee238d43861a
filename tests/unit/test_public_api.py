"""The public surface, written down so that a change to it is deliberate (issue 21).

Public are the names README, DESIGN and ``docs/`` document, the faces' ``__all__``, and every path
Airflow stores or publishes: the provider info's module paths, the entry points, the trigger class
paths in the database, the facet schema URL. Everything else may move. Changing a list below is a
change of the public API: say so in the commit and in the README.
"""

from __future__ import annotations

import importlib
import sys
from importlib import metadata
from types import SimpleNamespace
from typing import Any

import pytest

PACKAGE = "airflow_provider_aihubmix"

# Faces: module -> exactly its ``__all__`` (sorted).
FACES: dict[str, list[str]] = {
    "": ["__version__"],
    "hooks.aihubmix": [
        "AIHubMixHook",
        "AIHubMixSettings",
        "AsyncImageDownload",
        "DEFAULT_CHUNK_SIZE",
        "ImageDownload",
        "aclose_shared_clients",
        "default_ssl_context",
        "shared_async_client",
    ],
    "operators.images": [
        "AIHubMixFluxOperator",
        "AIHubMixGeminiImageOperator",
        "AIHubMixGenerateImageOperator",
        "AIHubMixIRAGOperator",
        "AIHubMixIdeogramOperator",
        "AIHubMixImagenOperator",
        "AIHubMixOpenAIImageOperator",
        "AIHubMixQwenImageOperator",
        "AIHubMixSeedreamOperator",
    ],
    "sensors.aihubmix": ["AIHubMixTaskSensor"],
    "triggers.aihubmix": ["AIHubMixPredictionTrigger", "AIHubMixTaskTrigger"],
    "links": ["AIHubMixImageLink"],
    "gallery": ["APP_PREFIX", "OUTPUT_LOCATION_XCOM_KEY", "gallery_path", "record_output_location"],
    "gallery.plugin": ["AIHubMixGalleryPlugin"],
    "gallery.urls": ["APP_PREFIX", "gallery_path", "gallery_url"],
    "facets": ["FACET_NAME", "SCHEMA_FILE", "SCHEMA_ID", "SCHEMA_PATH", "SCHEMA_URL", "SOURCE_BASE_URL"],
    "facets.run": ["AIHubMixRunFacet"],
    "catalog": [
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
    ],
    "responses": [
        "GeneratedImage",
        "PredictionResult",
        "ScanResult",
        "TaskHandle",
        "TaskState",
        "TaskStatus",
        "decode_base64_image",
        "merge_usage",
        "normalise_mime",
        "parse_prediction",
        "parse_task",
        "scan",
        "status_from_string",
    ],
    "http": [
        "AIHubMixSettings",
        "ApiKeyAuth",
        "AsyncSleep",
        "ByteBudget",
        "DEFAULT_BACKOFF_BASE",
        "DEFAULT_BACKOFF_CAP",
        "DEFAULT_BASE_URL",
        "DEFAULT_CONNECT_TIMEOUT",
        "DEFAULT_MAX_RETRIES",
        "DEFAULT_MAX_RETRY_AFTER",
        "DEFAULT_POOL_TIMEOUT",
        "DEFAULT_READ_TIMEOUT",
        "DEFAULT_TASKS_BASE_URL",
        "DEFAULT_WRITE_TIMEOUT",
        "DownloadTruncatedError",
        "GEMINI_KEY_HEADER",
        "GEMINI_PATH_MARKER",
        "NEVER_RETRY_ERRORS",
        "NOT_SENT_ERRORS",
        "RETRYABLE_STATUS",
        "Resolver",
        "RetryPolicy",
        "RetryState",
        "Sleep",
        "USER_AGENT",
        "api_client_kwargs",
        "check_download_url",
        "content_length_of",
        "default_tasks_base_url",
        "download_client_kwargs",
        "download_error_for_status",
        "error_for",
        "is_ip_literal",
        "is_loopback_host",
        "json_or_raise",
        "models_from_body",
        "normalise_base_url",
        "origin",
        "parse_retry_after",
        "predictions_path",
        "redact_url",
        "refused_address",
        "retryable_error_body",
        "scrub_text",
        "system_resolver",
        "task_url",
    ],
    "exceptions": [
        "AIHubMixAuthenticationError",
        "AIHubMixBadRequestError",
        "AIHubMixBudgetExceededError",
        "AIHubMixDownloadError",
        "AIHubMixError",
        "AIHubMixModerationError",
        "AIHubMixPossiblyBilledError",
        "AIHubMixQuotaError",
        "AIHubMixRateLimitError",
        "AIHubMixRefusalError",
        "AIHubMixResponseError",
        "AIHubMixStorageError",
        "AIHubMixTaskFailedError",
        "AIHubMixTaskModeratedError",
        "AIHubMixTaskNotFoundError",
        "AIHubMixTaskTimeoutError",
        "AIHubMixTextOnlyError",
        "AIHubMixUnreadableAnswerError",
        "AIHubMixUpstreamError",
        "AIHubMixValidationError",
        "AtomicCreateUnsupportedError",
        "DownloadTruncatedError",
        "ImageNotServedError",
        "ImageTooLargeError",
        "IncompleteImageError",
        "InvalidOutputURIError",
        "ManifestTransitionError",
        "NotAnImageError",
        "StoredImagesMissingError",
        "StoredObjectMismatchError",
        "UnknownModelError",
    ],
    "schemas": [
        "MAX_PROMPT_LENGTH",
        "SCHEMAS",
        "build_input",
        "family_parameters",
        "model_parameters",
        "request_body",
        "schema_for",
        "validate_params",
    ],
    "schemas.wire": [
        "GENERATIONS_PATH",
        "WireRequest",
        "predictions_path",
        "reference_keys",
        "wire_request",
        "with_references",
    ],
    "storage": [
        "AIHubMixStorageError",
        "ImageInfo",
        "ImageTooLargeError",
        "IncompleteImageError",
        "InvalidOutputURIError",
        "LocalObjectStore",
        "MANIFEST_NAME",
        "NotAnImageError",
        "ObjectStore",
        "OutputLocation",
        "SNIFF_HEAD_BYTES",
        "SPOOL_MEMORY_BYTES",
        "StoredObject",
        "check_key",
        "default_local_output_uri",
        "encode_key_part",
        "image_key_stem",
        "join_key",
        "manifest_key",
        "open_store",
        "parse_output_uri",
        "read_uri_bytes",
        "run_prefix",
        "sniff_image",
        "task_prefix",
    ],
    "pricing": [
        "Actual",
        "CURRENCY",
        "Estimate",
        "PRICES_FILE",
        "PriceRow",
        "PriceTable",
        "actual_cost",
        "estimate",
        "package_prices",
        "parse_overrides",
        "requested_images",
    ],
    "pricing.summary": [
        "SUMMARY_NAME",
        "budget_report",
        "run_cost_summary",
        "summarize_run",
        "task_entry",
        "total_line",
        "write_run_cost_summary",
    ],
    "lineage": [
        "AIHubMixLineageMixin",
        "DatasetId",
        "LineageRequest",
        "LineageSnapshot",
        "MODERATION_PASSED",
        "dataset_id",
        "error_info",
        "generation_totals",
        "lineage_on_complete",
        "lineage_on_failure",
        "lineage_on_start",
        "lineage_parameters",
        "moderation_outcome",
        "operator_lineage",
        "prompt_sha256",
        "request_of",
        "result_fields",
        "unique_datasets",
    ],
    "redaction": [
        "EXCERPT_LIMIT",
        "PROMPT_FIELDS",
        "SENSITIVE_MARKERS",
        "amask_secret",
        "is_sensitive_name",
        "mask_secret",
        "redact_input",
        "redact_url",
        "scrub_text",
        "without_secrets",
    ],
    "sandbox": ["FaultRule", "SandboxClient", "SandboxConfig", "SandboxServer"],
}

# Documented module paths without a face of their own: run as ``python -m`` or named in the docs.
DOCUMENTED_NAMES: dict[str, list[str]] = {
    "get_provider_info": ["get_provider_info"],
    "connection": ["CONN_FIELDS", "UI_FIELD_BEHAVIOUR"],
    "version_compat": ["conf"],
    "gallery.contact_sheet": [],
    "pricing.docs": [],
    "schemas.docs": [],
    "sandbox.__main__": ["main"],
    "cli.models": ["main"],
}

# What pyproject.toml publishes (installed metadata, so a packaging change shows here too).
ENTRY_POINTS = {
    ("apache_airflow_provider", "provider_info"): f"{PACKAGE}.get_provider_info:get_provider_info",
    ("airflow.plugins", "aihubmix_gallery"): f"{PACKAGE}.gallery.plugin:AIHubMixGalleryPlugin",
    ("console_scripts", "aihubmix-sandbox"): f"{PACKAGE}.sandbox.__main__:main",
    ("console_scripts", "aihubmix-models"): f"{PACKAGE}.cli.models:main",
}


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}" if name else PACKAGE)


@pytest.mark.parametrize("name", sorted(FACES))
def test_each_face_exports_exactly_its_public_names(name: str) -> None:
    module = _module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module.__name__} has no __all__"
    assert sorted(exported) == sorted(FACES[name])
    assert [n for n in exported if not hasattr(module, n)] == []


@pytest.mark.parametrize("name", sorted(DOCUMENTED_NAMES))
def test_documented_module_paths_import_with_their_names(name: str) -> None:
    module = _module(name)
    assert [n for n in DOCUMENTED_NAMES[name] if not hasattr(module, n)] == []


def test_provider_info_names_public_module_paths() -> None:
    from airflow_provider_aihubmix.get_provider_info import get_provider_info

    info = get_provider_info()
    modules = {
        kind: [m for group in info[kind] for m in group["python-modules"]]
        for kind in ("operators", "sensors", "hooks", "triggers")
    }
    assert modules == {
        "operators": [f"{PACKAGE}.operators.images"],
        "sensors": [f"{PACKAGE}.sensors.aihubmix"],
        "hooks": [f"{PACKAGE}.hooks.aihubmix"],
        "triggers": [f"{PACKAGE}.triggers.aihubmix"],
    }
    assert [c["hook-class-name"] for c in info["connection-types"]] == [
        f"{PACKAGE}.hooks.aihubmix.AIHubMixHook"
    ]
    assert info["extra-links"] == [f"{PACKAGE}.links.AIHubMixImageLink"]
    for path in [*info["extra-links"], *(c["hook-class-name"] for c in info["connection-types"])]:
        module, _, attr = path.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), path


def test_entry_points_point_at_public_paths() -> None:
    published = {
        (ep.group, ep.name): ep.value
        for ep in metadata.distribution("airflow-provider-aihubmix").entry_points
        if ep.value.startswith(PACKAGE)
    }
    assert published == ENTRY_POINTS
    for value in ENTRY_POINTS.values():
        module, _, attr = value.partition(":")
        assert hasattr(importlib.import_module(module), attr), value


def test_the_facet_schema_url_keeps_its_shape() -> None:
    from airflow_provider_aihubmix import facets
    from airflow_provider_aihubmix.version import __version__

    published = (
        "https://raw.githubusercontent.com/airflow-provider-aihubmix/airflow-provider-aihubmix"
        f"/v{__version__}/airflow_provider_aihubmix/facets/AIHubMixRunFacet.json#/$defs/AIHubMixRunFacet"
    )
    assert published == facets.SCHEMA_URL


# -- trigger rows stored before the layout change -----------------------------------------------

# Exactly what ``serialize()`` produced at f22e4a3 (before issue 21 moved the modules): a row a
# triggerer of that release wrote must load in this one and serialize back to the same row.
STORED_ROWS: list[tuple[str, dict[str, Any]]] = [
    (
        "airflow_provider_aihubmix.triggers.aihubmix.AIHubMixTaskTrigger",
        {
            "remote_task_id": "task-0b7c2f",
            "end_time": 1_900_000_000.25,
            "aihubmix_conn_id": "aihubmix_prod",
            "poll_interval": 2.5,
            "model": "bfl/flux-2-pro",
            "max_transient_failures": 5,
            "submitted_at": 1_899_999_000.5,
            "not_found_grace": 60.0,
        },
    ),
    (
        "airflow_provider_aihubmix.triggers.aihubmix.AIHubMixTaskTrigger",
        {
            "remote_task_id": "task-without-model",
            "end_time": 1_900_000_000.0,
            "aihubmix_conn_id": "aihubmix_default",
            "poll_interval": 5.0,
            "model": None,
            "max_transient_failures": 5,
            "submitted_at": None,
            "not_found_grace": 60.0,
        },
    ),
    (
        "airflow_provider_aihubmix.triggers.aihubmix.AIHubMixPredictionTrigger",
        {
            "model": "gpt-image-1.5",
            "output_uri": "s3://assets/campaigns",
            "prefix": "dag_id=banners/run_id=scheduled__2026-01-01/task_id=banner/map_index=0",
            "fingerprint": "3f1e9a0c5d7b2e4f6a8c0e1f3a5b7d9c2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b",
            "end_time": 1_900_000_000.75,
            "aihubmix_conn_id": "aihubmix_prod",
            "output_conn_id": "aws_default",
            "max_image_bytes": 52_428_800,
        },
    ),
    (
        "airflow_provider_aihubmix.triggers.aihubmix.AIHubMixPredictionTrigger",
        {
            "model": "gemini-3-pro-image-preview",
            "output_uri": "file:///tmp/aihubmix",
            "prefix": "dag_id=d/run_id=r/task_id=t/map_index=-1",
            "fingerprint": "0" * 64,
            "end_time": 1_900_000_000.0,
            "aihubmix_conn_id": "aihubmix_default",
            "output_conn_id": None,
            "max_image_bytes": None,
        },
    ),
]


@pytest.mark.parametrize(("classpath", "kwargs"), STORED_ROWS)
def test_a_trigger_row_stored_before_the_layout_change_loads_and_serializes_the_same(
    classpath: str, kwargs: dict[str, Any]
) -> None:
    """The row goes through Airflow's own code: the ``Trigger`` model encrypts the kwargs as the
    scheduler stores them, and the triggerer's steps (decrypt, decode, class by classpath) revive it."""
    from airflow.jobs.triggerer_job_runner import TriggerRunner
    from airflow.models.trigger import Trigger

    row = Trigger(classpath=classpath, kwargs=kwargs)
    stored = Trigger._decrypt_kwargs(row.encrypted_kwargs)
    try:  # Airflow >= 3.2: the triggerer cleans serialization artifacts before inflating
        from airflow.serialization.decoders import smart_decode_trigger_kwargs
    except ImportError:
        decoded = stored
    else:
        decoded = {key: smart_decode_trigger_kwargs(value) for key, value in stored.items()}
    # TriggerRunner.get_trigger_by_classpath only reads its class cache; no runner is started.
    trigger_class = TriggerRunner.get_trigger_by_classpath(SimpleNamespace(trigger_cache={}), row.classpath)  # type: ignore[arg-type]
    revived = trigger_class(**decoded)
    assert revived.serialize() == (classpath, kwargs)
    assert Trigger.from_object(revived).classpath == row.classpath
    assert Trigger._decrypt_kwargs(Trigger.from_object(revived).encrypted_kwargs) == stored
    assert classpath.rpartition(".")[0] in sys.modules
