"""Settings the example DAGs share; override them with environment variables."""

from __future__ import annotations

import os

from airflow_provider_aihubmix.storage import default_local_output_uri

# Where images go: s3://bucket/prefix (with an AWS connection) or file:///dir.
OUTPUT_URI = os.environ.get("AIHUBMIX_OUTPUT_URI") or default_local_output_uri()
# First poll interval for async models, in seconds.
POLL_INTERVAL = float(os.environ.get("AIHUBMIX_POLL_INTERVAL", "5"))
