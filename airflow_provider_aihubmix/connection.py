"""The ``aihubmix`` connection form, kept import-light: provider discovery reads it."""

from __future__ import annotations

from typing import Any

DEFAULT_BASE_URL = "https://aihubmix.com"
DEFAULT_TASKS_BASE_URL = "https://api.aihubmix.com"

# Declared the Airflow 3.2+ way (provider info ``conn-fields`` / ``ui-field-behaviour``);
# the hook's class methods return the same for older UIs.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "tasks_base_url": {
        "label": "Tasks base URL",
        "description": "Where async tasks are polled (GET /v1/tasks/<id>). Default: https://api.aihubmix.com "
        "for the default host, else the Base URL itself.",
        "schema": {"type": ["string", "null"]},
    },
    "output_uri": {
        "label": "Default output URI",
        "description": "Where operators store images when they get no output_uri: s3://bucket/prefix "
        "or file:///dir.",
        "schema": {"type": ["string", "null"]},
    },
    "connect_timeout": {
        "label": "Connect timeout (s)",
        "description": "Seconds to open a connection. Default 10.",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "read_timeout": {
        "label": "Read timeout (s)",
        "description": "Seconds to wait for a response. Default 300: gpt-image at high quality takes ~90 s+.",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "max_retries": {
        "label": "Max retries",
        "description": "Retries on 429/5xx and connection failures (never on a billable request whose "
        "response was lost). Default 4.",
        "schema": {"type": ["integer", "null"], "minimum": 0},
    },
    "allow_private_image_hosts": {
        "label": "Allow private image hosts",
        "description": "Let image downloads reach private, link-local and metadata addresses "
        "(off: the SSRF guard refuses them).",
        "schema": {"type": ["boolean", "null"]},
    },
    "on_possibly_billed": {
        "label": "On possibly billed",
        "description": "When a request's answer was lost (a killed worker or triggerer): 'fail' "
        "(default) or 'resend_once' (send it once more, counting both). An operator's "
        "on_possibly_billed wins.",
        "schema": {
            "type": ["string", "null"],
            "enum": ["fail", "resend_once", None],
        },  # possibly_billed.ALLOWED
    },
}
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "login"],
    "relabeling": {"host": "Base URL", "password": "API Key"},
    "placeholders": {
        "host": DEFAULT_BASE_URL,
        "password": "sk-...",
        "tasks_base_url": DEFAULT_TASKS_BASE_URL,
        "output_uri": "s3://bucket/prefix",
        "connect_timeout": "10",
        "read_timeout": "300",
        "max_retries": "4",
    },
}
