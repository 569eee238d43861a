"""A local AIHubMix-compatible server: develop and test DAGs offline, and run benchmarks.

Written from the API reference and the vendor documentation, never from the client's
parsers: a sandbox sharing the client's code would agree with the client's mistakes.

Two HTTP servers share one event loop:

* the **API** (``base_url``; stands for both ``aihubmix.com`` and ``api.aihubmix.com``):
  ``POST /v1/models/<provider>/<model>/predictions`` (answer shaped per family: OpenAI
  ``output.b64_json[].bytesBase64`` + ``usage``; Seedream ``output[].url`` or ``b64_json``
  with ``response_format=base64_json``; Qwen/Imagen/unknown models ``output[].url``; iRAG
  ``url`` or ``b64_json``; Ideogram ``output`` as bare URL strings; Flux (``bfl/``)
  ``output[].taskId`` + ``polling_url``), ``POST /v1/images/generations``,
  ``POST /v1/images/edits`` (multipart), ``GET /v1/tasks/<id>``, ``GET /v1/models``,
  ``POST /gemini/v1beta/models/<model>:generateContent`` (Google's native API: key in
  ``x-goog-api-key`` or ``?key=``, Google's error shape, refusal shapes; see
  :mod:`.gemini`), and the billing endpoints (with and without ``/v1``). Every other call
  needs ``Authorization: Bearer <key>`` (any key unless ``api_key`` is set); errors are
  ``{"error": {"message", "type", "param", "code"}}``; every answer has ``X-Request-Id``.
* the **storage** host (``storage_url``), like Baidu BCE / Volcengine TOS / BFL delivery:
  pre-signed ``GET /images/<w>x<h>-<seed>-<index>.<ext>?Expires=..&Signature=..`` (400 if
  the request carries ``Authorization``, 403 if unsigned, tampered or past ``Expires``) and
  the upstream task ``polling_url`` ``GET /v1/get_result?id=<taskId>``.

Images are real PNG/JPEG/WebP (Pillow), deterministic: the same prompt and seed give the
same bytes (no seed: the prompt alone decides), another index gives another image.
``max_side`` (default 1024; CLI ``--max-side`` / env ``AIHUBMIX_SANDBOX_MAX_SIDE``) caps the
longer side, aspect kept, so ``2K``/``4K`` come back 1024 px unless ``max_side=0``
(honest sizes up to 8192). Sizes: ``1K``/``2K``/``4K``/``auto`` (1024), ``WxH``, ``W*H``,
shaped by ``aspect_ratio``/``aspectRatio`` (``16:9``, ``2x1``); Flux defaults to 16:9.

Prompt tokens: ``sandbox:moderated`` (400 moderation); on the Gemini route
``sandbox:block=<REASON>``, ``sandbox:finish=<REASON>`` and ``sandbox:text-only``; for async models
``sandbox:error``, ``sandbox:failed``, ``sandbox:request-moderated``,
``sandbox:content-moderated``, ``sandbox:never`` (task outcome) and ``sandbox:delay=<s>``.
A task is ``Pending`` then ``Generating`` (with ``progress``) then its outcome after
``task_delay_s``; ``status_style`` ``lower``/``completed`` spell Ready as
``succeeded``/``completed`` and the rest in lower case.

The control API under ``/_sandbox/`` (no key, never faulted, not logged): ``requests``
(GET/DELETE), ``faults`` (GET/POST/DELETE, ``faults/<id>``), ``config`` (GET/POST),
``reset``, ``tasks`` and ``tasks/<id>`` (set ``outcome``/``delay_s``), ``stats``, ``health``.
Fault rules are described on :class:`~airflow_provider_aihubmix.sandbox.faults.FaultRule`;
a request header ``X-Sandbox-Fault: <kind>[;status=..;retry_after=..]`` faults one request.
The ``huge`` fault streams a valid PNG padded with skippable private chunks to exactly
``size_bytes`` (or ``huge_bytes``), so memory benchmarks cost the server one 1 MiB chunk.

Start it with ``aihubmix-sandbox`` or :class:`SandboxServer`; drive it with
:class:`SandboxClient` (``SandboxServer.client``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_aihubmix.sandbox.client import SandboxClient
    from airflow_provider_aihubmix.sandbox.config import SandboxConfig
    from airflow_provider_aihubmix.sandbox.faults import FaultRule
    from airflow_provider_aihubmix.sandbox.server import SandboxServer

__all__ = ["FaultRule", "SandboxClient", "SandboxConfig", "SandboxServer"]

_LAZY = {
    "SandboxServer": "airflow_provider_aihubmix.sandbox.server",
    "SandboxClient": "airflow_provider_aihubmix.sandbox.client",
    "SandboxConfig": "airflow_provider_aihubmix.sandbox.config",
    "FaultRule": "airflow_provider_aihubmix.sandbox.faults",
}


def __getattr__(name: str) -> Any:
    # Lazy: importing the package (e.g. for the CLI's --help) must not pull in FastAPI.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
