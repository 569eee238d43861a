"""Reading AIHubMix's answers: every response shape to images, a task handle or a clear error.

* :mod:`.shapes` -- every prediction and task shape, normalised (:func:`parse_prediction`,
  :func:`parse_task`);
* :mod:`.image_data` -- inline images: base64 and ``data:`` URIs decoded once, MIME labels;
* :mod:`.answer_scan` -- the last-resort reading of a body nothing else recognised;
* :mod:`.gemini` -- Gemini ``generateContent``: its request body and how its answer is read;
* :mod:`.task_status` -- :class:`TaskStatus` with ``is_terminal``, folded from every spelling;
* :mod:`.gemini_stream` -- a Gemini answer read as it streams, one image's base64 at a time;
* :mod:`.balance` -- the account's balance (``/dashboard/billing/remain``);
* :mod:`.usage` -- token usage of several requests added up.

Pure functions over bodies already received: no I/O, no Airflow.
"""

from __future__ import annotations

from airflow_provider_aihubmix.responses.answer_scan import ScanResult, scan
from airflow_provider_aihubmix.responses.image_data import decode_base64_image, normalise_mime
from airflow_provider_aihubmix.responses.shapes import (
    GeneratedImage,
    PredictionResult,
    TaskHandle,
    TaskState,
    parse_prediction,
    parse_task,
)
from airflow_provider_aihubmix.responses.task_status import TaskStatus, status_from_string
from airflow_provider_aihubmix.responses.usage import merge_usage

__all__ = [
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
]
