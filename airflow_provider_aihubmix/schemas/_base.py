"""Shared machinery for the per-family request schemas.

Validators here raise :class:`Reject` (a reason and what is allowed) instead of letting
pydantic word the error: a user needs the parameter, the model and the allowed values in
one sentence, and only :mod:`airflow_provider_aihubmix.schemas` knows how the user spelled
the parameter (a keyword, a wire name, an ``extra_input`` key).

Coercion is deliberately narrow. Airflow renders templated values to strings unless
``render_template_as_native_obj`` is set, so a clean integer string (``"3"``) is accepted
for an integer and ``"true"``/``"false"`` for a boolean; anything looser (``"3.0"``,
``"yes"``, ``1`` for a boolean) is more likely a mistake than a rendering artefact.
Choice values are matched case-insensitively and sent in their canonical spelling.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo, model_validator

from airflow_provider_aihubmix.catalog.limits import PixelBounds
from airflow_provider_aihubmix.catalog.models import Family, ModelSpec
from airflow_provider_aihubmix.storage.uris import OBJECT_SCHEMES

MAX_PROMPT_LENGTH = 32_000
INT32_MAX = 2_147_483_647
INT64_MAX = 9_223_372_036_854_775_807

# At most 30 digits: int() of a longer string is slow or refused (Python's 4300-digit limit).
_INT_RE = re.compile(r"[+-]?[0-9]{1,30}")
_FLOAT_RE = re.compile(r"[+-]?([0-9]{1,30}(\.[0-9]{0,30})?|\.[0-9]{1,30})([eE][+-]?[0-9]{1,3})?")
_PIXELS_RE = re.compile(r"([0-9]{1,6})\s*[xX*\u00d7]\s*([0-9]{1,6})")
_RATIO_RE = re.compile(r"([0-9]{1,3})\s*[:xX]\s*([0-9]{1,3})")
_DATA_URI_RE = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+")

RESOLVED_REFERENCES = "https:// (or http://) URLs or data:image/...;base64 URIs"
RESOLVABLE_REFERENCES = (
    "https:// (or http://) URLs, data:image/...;base64 URIs, s3:// / gs:// / abfs:// / wasb:// URIs "
    "or local paths"
)


class Reject(ValueError):
    """A single parameter's value is wrong; the caller adds the name, the value and the model."""

    def __init__(self, reason: str, allowed: str) -> None:
        super().__init__(f"{reason}; allowed: {allowed}")
        self.reason = reason
        self.allowed = allowed


@dataclass(frozen=True)
class SchemaContext:
    """What validators may consult besides the value: the model and how final the input is.

    ``final`` is False at DAG parse time, where required parameters may still come from
    templates and references are not checked beyond being strings. ``require_resolved``
    admits only what the API itself takes (URLs, ``data:`` URIs); without it ``s3://`` URIs
    and local paths pass too, since the provider reads them and sends them inline.
    """

    spec: ModelSpec
    final: bool = True
    require_resolved: bool = False

    @property
    def reference_forms(self) -> str:
        return RESOLVED_REFERENCES if self.require_resolved else RESOLVABLE_REFERENCES


def context_of(info: ValidationInfo) -> SchemaContext:
    ctx = info.context
    if not isinstance(ctx, SchemaContext):
        raise TypeError("family schemas are validated with a SchemaContext; use schemas.build_input")
    return ctx


def show(value: Any, limit: int = 60) -> str:
    """A short, log-safe rendering of a user value: no signed-URL query, no base64 payload."""
    try:
        if isinstance(value, str):
            if value[:5].lower() == "data:":
                return f"'{value[:24]}…' ({len(value)} characters)"
            if "://" in value and "?" in value:
                value = value.split("?", 1)[0] + "?…"
            text = repr(value)
        elif isinstance(value, (list, tuple)):
            inner = ", ".join(show(item, 40) for item in list(value)[:3])
            text = f"[{inner}{', …' if len(value) > 3 else ''}]"
        else:
            text = repr(value)
    except Exception:  # a value whose repr fails must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_templated(value: Any) -> bool:
    """True for a Jinja template (or a list holding one) that Airflow renders later."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, (list, tuple)):
        return any(isinstance(item, str) and ("{{" in item or "{%" in item) for item in value)
    return False


# --- scalar coercion -------------------------------------------------------------------


def as_int(value: Any, lo: int, hi: int, allowed: str | None = None) -> int:
    allowed = allowed or f"integers {lo}..{hi}"
    if isinstance(value, bool):
        raise Reject("is a boolean, not an integer", allowed)
    if isinstance(value, int):
        number = int(value)
    elif isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise Reject("is not an integer", allowed)
    if not lo <= number <= hi:
        raise Reject("is out of range", allowed)
    return number


def as_float(value: Any, lo: float, hi: float) -> float:
    allowed = f"numbers {lo:g}..{hi:g}"
    if isinstance(value, bool):
        raise Reject("is a boolean, not a number", allowed)
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            raise Reject("is out of range", allowed) from None
    elif isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        raise Reject("is not a number", allowed)
    if not math.isfinite(number) or not lo <= number <= hi:
        raise Reject("is out of range", allowed)
    return number


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise Reject("is not a boolean", "true or false")


def unsendable_text(text: str) -> str | None:
    """Why ``text`` cannot go out as UTF-8 JSON, or ``None``.

    A lone UTF-16 surrogate (``json.loads('"\\ud83d"')``, text cut mid-emoji by a browser or a
    JSON API) is a valid Python ``str`` but has no UTF-8 encoding: httpx would fail inside the
    request, after the manifest says "submitting".
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"holds an unpaired UTF-16 surrogate at character {exc.start} ({text[exc.start]!a})"
    return None


def as_text(value: Any, max_length: int | None, what: str = "a non-empty string") -> str:
    allowed = f"{what} of at most {max_length} characters" if max_length else what
    if not isinstance(value, str):
        raise Reject("is not a string", allowed)
    if not value.strip():
        raise Reject("is empty", allowed)
    if max_length is not None and len(value) > max_length:
        raise Reject(f"is too long ({len(value)} characters)", allowed)
    problem = unsendable_text(value)
    if problem:
        raise Reject(problem, f"{allowed}, in valid Unicode (UTF-8 encodable)")
    return str(value)


def _fold(text: str) -> str:
    """Case- and separator-insensitive key: '1024*1024', '1024X1024' and '1024x1024' are one size."""
    return re.sub(r"\s+", "", text).lower().replace("*", "x").replace("\u00d7", "x")


def as_choice(value: Any, choices: tuple[str, ...]) -> str:
    allowed = ", ".join(choices)
    if not isinstance(value, str):
        raise Reject("is not a string", allowed)
    folded = _fold(value)
    for choice in choices:
        if _fold(choice) == folded:
            return choice
    raise Reject("is not allowed", allowed)


def one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        return as_choice(value, choices)

    return check


def int_range(lo: int, hi: int, allowed: str | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        return as_int(value, lo, hi, allowed)

    return check


def float_range(lo: float, hi: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        return as_float(value, lo, hi)

    return check


def as_size(
    value: Any, presets: tuple[str, ...], pixels: PixelBounds | None = None, *, sep: str | None = "x"
) -> str:
    """A preset (matched like :func:`as_choice`) or, where the model allows, explicit pixels.

    ``sep`` is how explicit pixels go on the wire; ``None`` sends them exactly as written
    (where sources disagree on ``x`` and ``*``, both are accepted and the user's choice is kept).
    """
    allowed = ", ".join(presets)
    if pixels is not None:
        allowed = f"{allowed} or {pixels.describe()}" if presets else pixels.describe()
    if not isinstance(value, str):
        raise Reject("is not a string", allowed)
    folded = _fold(value)
    for preset in presets:
        if _fold(preset) == folded:
            return value.strip() if sep is None else preset
    match = _PIXELS_RE.fullmatch(value.strip())
    if pixels is None or not match:
        raise Reject("is not allowed", allowed)
    width, height = int(match.group(1)), int(match.group(2))
    problem = pixels.problem(width, height) if width and height else "a side is zero"
    if problem:
        raise Reject(f"is out of range: {problem}", allowed)
    return value.strip() if sep is None else f"{width}{sep}{height}"


def as_ratio(value: Any, choices: tuple[str, ...] | None, sep: str, max_ratio: float = 21 / 9) -> str:
    """An aspect ratio 'W:H' / 'WxH' (either separator accepted), sent with ``sep``."""
    if choices is not None:
        allowed = ", ".join(choices)
    else:
        allowed = f"'W{sep}H' with whole numbers, between 9{sep}21 and 21{sep}9 (e.g. 16{sep}9, 1{sep}1)"
    if not isinstance(value, str):
        raise Reject("is not a string", allowed)
    match = _RATIO_RE.fullmatch(value.strip())
    if not match:
        raise Reject("is not an aspect ratio", allowed)
    width, height = int(match.group(1)), int(match.group(2))
    text = f"{width}{sep}{height}"
    if choices is not None:
        if text not in choices:
            raise Reject("is not allowed", allowed)
    elif not (width and height and max(width, height) / min(width, height) <= max_ratio):
        raise Reject("is out of range", allowed)
    return text


# --- image references ------------------------------------------------------------------


def parse_listed(text: str) -> Any:
    """A list rendered to a string by a template (JSON or Python repr) back into a list."""
    # Any failure (bad syntax, deep nesting) leaves the text as one reference to be judged.
    try:
        return json.loads(text)
    except Exception:
        pass
    try:
        return ast.literal_eval(text)
    except Exception:
        return text


def check_reference(item: Any, ctx: SchemaContext) -> str:
    allowed = ctx.reference_forms
    if not isinstance(item, str) or not item.strip():
        raise Reject("holds a reference that is not a non-empty string", allowed)
    ref = item.strip()
    if not ctx.final or _DATA_URI_RE.fullmatch(ref):
        return ref
    if ref[:5].lower() == "data:":
        raise Reject("holds a data: URI that is not a base64-encoded image", allowed)
    if "://" not in ref:  # a local path
        if ctx.require_resolved:
            raise Reject("holds a local path; read it and send a data: URI", allowed)
        return ref
    try:
        parts = urlsplit(ref)
    except ValueError:
        raise Reject("holds a reference that is not a valid URL", allowed) from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and parts.netloc:
        return ref
    if not ctx.require_resolved and (scheme == "file" or (scheme in OBJECT_SCHEMES and parts.netloc)):
        return ref
    if scheme in (*OBJECT_SCHEMES, "file") and ctx.require_resolved:
        raise Reject(f"holds an unresolved {scheme}:// reference; read it and send a data: URI", allowed)
    raise Reject(f"holds a reference this provider cannot send ({scheme}://)", allowed)


def as_references(value: Any, ctx: SchemaContext) -> list[str] | None:
    """One reference or a list of them, counted against ``spec.max_reference_images``."""
    limit = ctx.spec.max_reference_images
    allowed = f"1..{limit} {ctx.reference_forms}"
    if isinstance(value, str) and value.strip().startswith("["):
        value = parse_listed(value.strip())
    if isinstance(value, str):
        if not value.strip():  # the vendor's own examples send "refer_image": "" for "none"
            return None
        items: list[Any] = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise Reject("is not a string or a list of strings", allowed)
    if not items:
        return None
    refs = [check_reference(item, ctx) for item in items]
    if len(refs) > limit:
        raise Reject(f"has too many references ({len(refs)})", allowed)
    return refs


def references(value: Any, info: ValidationInfo) -> list[str] | None:
    return as_references(value, context_of(info))


def single_reference(value: Any, info: ValidationInfo) -> str:
    return check_reference(value, context_of(info))


def prompt_text(value: Any, info: ValidationInfo) -> str:
    """The prompt, within the model's character limit (token limits are documented, not counted)."""
    limit = context_of(info).spec.limits.prompt
    return as_text(value, limit.length if limit.checked else MAX_PROMPT_LENGTH)


def image_count(value: Any, info: ValidationInfo) -> int:
    return as_int(value, 1, context_of(info).spec.max_n)


JSON_VALUES = "strings, numbers, booleans, lists and objects (finite numbers, valid Unicode)"


def unsendable(value: Any) -> str | None:
    """Why ``value`` cannot go on the wire as UTF-8 JSON (NaN/inf, objects, lone surrogates), or None."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        if isinstance(exc, ValueError) and "Out of range float" in str(exc):
            return "holds a non-finite number (NaN or infinity), which JSON cannot carry"
        return "is not JSON-serialisable"
    return unsendable_text(text)


def json_value(value: Any) -> Any:
    """A value sent unchanged: it only has to be JSON that UTF-8 can carry."""
    problem = unsendable(value)
    if problem:
        raise Reject(problem, JSON_VALUES)
    return value


Prompt = Annotated[str | None, BeforeValidator(prompt_text)]
Count = Annotated[int | None, BeforeValidator(image_count)]
Images = Annotated[list[str] | None, BeforeValidator(references)]
Flag = Annotated[bool | None, BeforeValidator(as_bool)]
Seed32 = Annotated[int | None, BeforeValidator(int_range(0, INT32_MAX))]


class FamilyInput(BaseModel):
    """Base of the family schemas: the user-facing parameters and how they go on the wire.

    ``wire_names`` maps a parameter to its ``input`` key where they differ; wire names and
    ``aliases`` are accepted as spellings of the parameter, so ``extra_input`` keys that a
    family models are validated rather than passed through blind.
    """

    model_config = ConfigDict(extra="forbid")

    family: ClassVar[Family]
    wire_names: ClassVar[Mapping[str, str]] = {}
    aliases: ClassVar[Mapping[str, str]] = {}
    passes_unknown: ClassVar[bool] = False  # unknown keys go to the wire (passed-through models)
    # Fields modelled only to refuse them with a clear message: no operator takes them.
    refused: ClassVar[frozenset[str]] = frozenset()

    prompt: Prompt = None

    @classmethod
    def parameters(cls) -> tuple[str, ...]:
        return tuple(cls.model_fields)

    @classmethod
    def parameters_for(cls, spec: ModelSpec) -> tuple[str, ...]:
        """The family's parameters this particular model takes."""
        return tuple(name for name in cls.parameters() if cls.unsupported_reason(spec, name) is None)

    @classmethod
    def unsupported_reason(cls, spec: ModelSpec, name: str) -> str | None:
        if name == "image" and spec.max_reference_images == 0:
            return "it is a text-to-image model that takes no reference images"
        return None

    @classmethod
    def canonical(cls, key: str) -> str | None:
        """The parameter ``key`` spells (itself, a wire name or an alias), or None if unknown."""
        if key in cls.model_fields:
            return key
        for name, wire in cls.wire_names.items():
            if key == wire:
                return name
        return cls.aliases.get(key)

    @classmethod
    def split_extra(cls, key: str, value: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """An ``extra_input`` item as (modelled parameters, keys passed through verbatim)."""
        name = cls.canonical(key)
        return ({name: value}, {}) if name is not None else ({}, {key: value})

    @model_validator(mode="after")
    def _required(self, info: ValidationInfo) -> FamilyInput:
        ctx = context_of(info)
        if not ctx.final:  # at parse time prompt and images may still come from templates
            return self
        if self.prompt is None:
            raise ValueError(
                f"Parameter 'prompt' is required for model {ctx.spec.name}; allowed: a non-empty "
                f"string of at most {MAX_PROMPT_LENGTH} characters"
            )
        if not ctx.spec.text_to_image and not getattr(self, "image", None):
            raise ValueError(
                f"Parameter 'image' is required for model {ctx.spec.name}: it edits images and does "
                f"not generate from text alone; allowed: 1..{ctx.spec.max_reference_images} "
                f"{ctx.reference_forms}"
            )
        return self

    def wire_image(self, refs: list[str], spec: ModelSpec) -> Iterator[tuple[str, Any]]:
        """Reference images on the wire; one image as a string, several as a list."""
        yield "image", refs[0] if len(refs) == 1 else list(refs)

    def wire_items(self, spec: ModelSpec) -> Iterator[tuple[str, str, Any]]:
        """(parameter, wire key, value) for every parameter that is set."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if name == "image":
                for key, wire_value in self.wire_image(value, spec):
                    yield name, key, wire_value
            else:
                yield name, self.wire_names.get(name, name), value
