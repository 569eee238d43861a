"""Run-time settings of the sandbox, changeable live through ``POST /_sandbox/config``.

Kept as a plain dataclass so ``reset`` can restore the start-up values by copying it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from airflow_provider_aihubmix.sandbox.shapes import SHAPES

#: Task status spellings. ``bfl`` is the upstream (Black Forest Labs) vocabulary the
#: reference documents; the other two are the variants seen from other gateways.
STATUS_STYLES = ("bfl", "lower", "completed")

#: What a Flux task ends as when nothing else selects an outcome.
TASK_OUTCOMES = ("ready", "error", "failed", "request_moderated", "content_moderated", "never")

MIB = 1024 * 1024

#: Image models AIHubMix's public sources show (its clients, a 2026-06 write-up of real calls, the
#: public model list) that the shipped catalog has no row for: the sandbox serves them by default,
#: so the model-list command has drift to show. Bailian through predictions (bare ``*`` sizes) and
#: the newest Gemini and gpt-image variants.
EXTRA_MODELS = (
    "bailian/wan2.7-image-pro",
    "bailian/wan2.7-image",
    "bailian/wan2.6-t2i",
    "bailian/qwen-image-2.0-pro",
    "bailian/qwen-image-2.0",
    "bailian/qwen-image-max",
    "gemini-3.1-flash-lite-image",
    "openai/gpt-image-2.5-sunburst",
)


@dataclass
class SandboxConfig:
    """Every knob of the sandbox.

    ``max_side`` caps the longer side of generated images (aspect kept) so tests and
    benchmarks stay fast; ``0`` means honest sizes (up to 8192). ``api_key`` ``None``
    accepts any bearer key. ``huge_bytes`` is the body size the ``huge`` fault serves.
    ``inline_image_bytes`` pads every inline (base64) PNG to at least that many bytes with
    chunks decoders skip, so benchmarks get answers as big as real gpt-image ones; 0 is off.
    ``extra_models`` are served (``/v1/models``, ``/api/v1/models``, predictions) beside the
    catalog. ``thought_signature_chars`` is the length of the ``thoughtSignature`` a Gemini 3 image
    part carries (real ones are ~1.5 M base64 characters); it starts with
    ``thought_signature_marker`` so a test can prove it is stored nowhere.
    """

    task_delay_s: float = 2.0
    api_key: str | None = None
    max_side: int = 1024
    status_style: str = "bfl"
    generating_status: bool = True
    task_outcome: str = "ready"
    url_ttl_s: float = 24 * 3600.0
    task_url_ttl_s: float = 600.0
    huge_bytes: int = 8 * MIB
    inline_image_bytes: int = 0
    balance_usd: float = 1000.0
    fault_seed: int = 0
    max_prompt_chars: int = 32000
    task_unknown_s: float = 0.0
    shapes: dict[str, str] = dataclasses.field(default_factory=dict)
    extra_models: list[str] = dataclasses.field(default_factory=lambda: list(EXTRA_MODELS))
    thought_signature_chars: int = 4096
    thought_signature_marker: str = "SandboxThoughtSignature"

    def copy(self) -> SandboxConfig:
        return dataclasses.replace(self, shapes=dict(self.shapes), extra_models=list(self.extra_models))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, values: dict[str, Any]) -> None:
        """Apply ``values`` after checking every name and type; nothing changes on error."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        staged: dict[str, Any] = {}
        for name, value in values.items():
            if name not in fields:
                raise ValueError(f"unknown sandbox setting {name!r}; known: {', '.join(sorted(fields))}")
            staged[name] = _coerce(name, value)
        for name, value in staged.items():
            setattr(self, name, value)


def _coerce(name: str, value: Any) -> Any:
    if name == "api_key":
        if value is not None and not isinstance(value, str):
            raise ValueError("api_key must be a string or null")
        return value or None
    if name == "status_style":
        if value not in STATUS_STYLES:
            raise ValueError(f"status_style must be one of {STATUS_STYLES}")
        return value
    if name == "task_outcome":
        value = str(value).replace("-", "_").lower()
        if value not in TASK_OUTCOMES:
            raise ValueError(f"task_outcome must be one of {TASK_OUTCOMES}")
        return value
    if name == "shapes":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v in SHAPES for k, v in value.items()
        ):
            raise ValueError(
                f"shapes must map model paths to shape names; shapes: {', '.join(sorted(SHAPES))}"
            )
        return dict(value)
    if name == "extra_models":
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ValueError("extra_models must be a list of model ids or provider/model_id paths")
        return [v.strip() for v in value]
    if name == "thought_signature_marker":
        if not isinstance(value, str) or not value.isalnum():
            raise ValueError("thought_signature_marker must be letters and digits (base64 characters)")
        return value
    if name == "generating_status":
        if not isinstance(value, bool):
            raise ValueError("generating_status must be a boolean")
        return value
    if name in (
        "max_side",
        "huge_bytes",
        "inline_image_bytes",
        "fault_seed",
        "max_prompt_chars",
        "thought_signature_chars",
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a non-negative number")
    return float(value)
