"""The ``input`` object of a prediction, built from user parameters and validated per family.

Everything here runs before any HTTP call: a wrong size or a typo fails the task (or the
DAG import) with a message naming the parameter, the model and what is allowed, instead
of a billed request coming back as an upstream 400.

Rules shared by every family:

* ``None`` means "not set": the parameter is left out of the wire.
* A parameter may be written as its user-facing name, its wire name (``numberOfImages``)
  or a documented alias (``refer_image``); writing it twice is an error.
* ``extra_input`` keys a family models are validated like parameters; other keys pass
  through verbatim (they only have to be JSON), so a new upstream option needs no release.
* Names of the wire fields follow the vendor doc: family-specific names where it shows
  them (Imagen ``numberOfImages``, Qwen/iRAG ``refer_image``, Flux ``input_image``),
  the gateway's general names (``n``, ``size``, ``image``) elsewhere.
* Values rendered to strings by templates are read back narrowly (``"3"``, ``"true"``, a
  list's repr for ``image``); choices match case- and separator-insensitively
  (``1024*1024`` = ``1024x1024``, ``16:9`` = ``16x9``) and go out in the family's spelling.
* Only :class:`AIHubMixValidationError` escapes, whatever the input types.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from airflow_provider_aihubmix.catalog.models import Endpoint, Family, ModelSpec
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError
from airflow_provider_aihubmix.responses import gemini as gemini_wire
from airflow_provider_aihubmix.schemas._base import (
    JSON_VALUES,
    MAX_PROMPT_LENGTH,
    FamilyInput,
    Reject,
    SchemaContext,
    is_templated,
    json_value,
    show,
    unsendable,
)
from airflow_provider_aihubmix.schemas.flux import FluxInput
from airflow_provider_aihubmix.schemas.gemini import GeminiInput
from airflow_provider_aihubmix.schemas.generic import GenericInput
from airflow_provider_aihubmix.schemas.ideogram import IdeogramInput
from airflow_provider_aihubmix.schemas.imagen import ImagenInput
from airflow_provider_aihubmix.schemas.irag import IRAGInput
from airflow_provider_aihubmix.schemas.openai import OpenAIInput
from airflow_provider_aihubmix.schemas.qwen import QwenInput
from airflow_provider_aihubmix.schemas.seedream import SeedreamInput

SCHEMAS: Mapping[Family, type[FamilyInput]] = {
    schema.family: schema
    for schema in (
        OpenAIInput,
        ImagenInput,
        QwenInput,
        SeedreamInput,
        FluxInput,
        IRAGInput,
        IdeogramInput,
        GeminiInput,
        GenericInput,
    )
}


def schema_for(family: Family | str) -> type[FamilyInput]:
    return SCHEMAS[Family(family)]


def family_parameters(family: Family | str) -> tuple[str, ...]:
    """The parameter names a family accepts, prompt first (operators build typed params from it)."""
    return schema_for(family).parameters()


def model_parameters(spec: ModelSpec) -> tuple[str, ...]:
    """The parameters this model takes: its family's, minus those the model lacks (e.g. dall-e-3)."""
    return schema_for(spec.family).parameters_for(spec)


def build_input(
    spec: ModelSpec,
    params: Mapping[str, Any],
    extra_input: Mapping[str, Any] | None = None,
    *,
    require_resolved: bool = False,
) -> dict[str, Any]:
    """Validate ``params`` for ``spec``'s family and return the JSON ``input`` object (wire names).

    ``image`` holds one reference or a list: URLs and ``data:`` URIs, and unless
    ``require_resolved`` also ``s3://`` URIs and local paths (the run validates before it
    reads them, then again with them inlined). Raises :class:`AIHubMixValidationError`
    naming every bad parameter, the model and what is allowed.
    """
    builder = _Builder(spec, final=True, skip_templated=False, require_resolved=require_resolved)
    return builder.run(params, extra_input)


def validate_params(
    spec: ModelSpec,
    params: Mapping[str, Any],
    extra_input: Mapping[str, Any] | None = None,
    *,
    skip_templated: bool = True,
) -> None:
    """Check at DAG parse time only what is literal.

    Jinja strings (``{{`` / ``{%``, or a list holding one) are skipped when ``skip_templated``;
    required parameters (prompt, the image of an edit-only model) are not demanded, since
    templates or the operator supply them at run time; image references are not required
    to be resolved yet (``s3://`` and local paths are fine), only counted. Parameter names
    are always checked: a typo is a typo whatever its value.
    """
    _Builder(spec, final=False, skip_templated=skip_templated, require_resolved=False).run(
        params, extra_input
    )


def request_body(spec: ModelSpec, input_: dict[str, Any]) -> dict[str, Any]:
    """The JSON body for ``spec``'s endpoint: ``{"input": ...}``, the flat OpenAI-style body, or
    Gemini's ``generateContent`` body (its first request; see
    :mod:`airflow_provider_aihubmix.responses.gemini`)."""
    if spec.endpoint is Endpoint.GENERATE_CONTENT:
        return gemini_wire.request_body(input_)
    if spec.endpoint is Endpoint.GENERATIONS:
        if "model" in input_:
            raise AIHubMixValidationError(
                f"Parameter 'model' cannot be set in the input for model {spec.name}: the "
                "/v1/images/generations body takes the model from the catalog; allowed: drop it from "
                "extra_input"
            )
        return {"model": spec.path, **input_}
    return {"input": dict(input_)}


class _Builder:
    """One validation run; collects every problem so a user fixes them all in one go."""

    def __init__(self, spec: ModelSpec, *, final: bool, skip_templated: bool, require_resolved: bool) -> None:
        if not isinstance(spec, ModelSpec):
            raise AIHubMixValidationError(
                f"Parameter 'spec' must be a catalog ModelSpec, got {type(spec).__name__}; "
                "allowed: catalog.resolve_model(<model>)"
            )
        self.spec = spec
        self.model = spec.name
        self.schema = schema_for(spec.family)
        self.context = SchemaContext(spec, final=final, require_resolved=require_resolved)
        self.skip_templated = skip_templated
        self.problems: list[str] = []
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}  # parameter -> how the user wrote it, for messages
        self.passthrough: dict[str, Any] = {}
        self.passthrough_labels: dict[str, str] = {}

    def run(self, params: Any, extra_input: Any) -> dict[str, Any]:
        for key, value in self._items(params, "params"):
            if value is None:
                continue
            name = self.schema.canonical(key)
            if name is not None:
                self._accept(name, value, show(key))
            elif self.schema.passes_unknown:
                self._pass_through(key, value, show(key))
            else:
                self.problems.append(self._unknown(key))
        for key, value in self._items(extra_input, "extra_input"):
            modelled, rest = self.schema.split_extra(key, value)
            for name, item in modelled.items():
                if item is not None:
                    self._accept(name, item, f"extra_input {show(key)}")
            for extra_key, item in rest.items():
                self._pass_through(extra_key, item, f"extra_input {show(extra_key)}")

        instance: FamilyInput | None = None
        try:
            instance = self.schema.model_validate(self.values, context=self.context)
        except ValidationError as exc:
            self.problems.extend(self._describe(exc))
        if instance is None or self.problems:
            raise self._error()

        wire: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for name, key, value in instance.wire_items(self.spec):
            wire[key] = value
            origin[key] = name
        for key, value in self.passthrough.items():
            built = wire.get(key)
            if key not in wire:
                wire[key] = value
            elif isinstance(built, dict) and isinstance(value, Mapping) and not set(built) & set(value):
                wire[key] = {**built, **value}  # e.g. Seedream's nested options object
            else:
                self.problems.append(
                    f"Parameter {self.passthrough_labels[key]} would overwrite the '{key}' field built from "
                    f"parameter '{origin[key]}' for model {self.model}; allowed: set it through "
                    f"'{origin[key]}' only"
                )
        for key, value in wire.items():
            # The last gate before the wire: what httpx would fail to encode after the manifest
            # says "submitting" is refused here, naming the field.
            problem = unsendable({key: value})
            if problem:
                label = self._label(origin[key]) if key in origin else self.passthrough_labels[key]
                self.problems.append(
                    f"Parameter {label} {problem} for model {self.model}; allowed: {JSON_VALUES}"
                )
        if self.problems:
            raise self._error()
        # A JSON round trip hands back plain, independent data: no tuples, no shared lists.
        return json.loads(json.dumps(wire, allow_nan=False))

    def _items(self, mapping: Any, what: str) -> Iterable[tuple[str, Any]]:
        if mapping is None:
            return []
        if not isinstance(mapping, Mapping):
            raise AIHubMixValidationError(
                f"Parameter '{what}' = {show(mapping)} is not a mapping for model {self.model}; allowed: "
                "a dict of parameter names to values"
            )
        items = []
        for key, value in list(mapping.items()):
            if isinstance(key, str):
                items.append((key, value))
            else:
                self.problems.append(
                    f"Parameter name {show(key)} in {what} is not a string for model {self.model}; "
                    f"allowed parameters: {', '.join(model_parameters(self.spec))}"
                )
        return items

    def _label(self, name: str) -> str:
        source = self.sources.get(name, show(name))
        return source if source == show(name) else f"'{name}' (given as {source})"

    def _accept(self, name: str, value: Any, source: str) -> None:
        if name in self.sources:
            self.problems.append(
                f"Parameter '{name}' is given twice for model {self.model}: as {self.sources[name]} and as "
                f"{source}; allowed: give it once"
            )
            return
        self.sources[name] = source
        label = self._label(name)
        reason = self.schema.unsupported_reason(self.spec, name)
        if reason is not None:
            self.problems.append(
                f"Parameter {label} is not supported by model {self.model}: {reason}; allowed parameters: "
                f"{', '.join(model_parameters(self.spec))}"
            )
        elif not (self.skip_templated and is_templated(value)):
            self.values[name] = value

    def _pass_through(self, key: str, value: Any, label: str) -> None:
        if key in self.passthrough_labels:
            self.problems.append(
                f"Parameter '{key}' is given twice for model {self.model}: as {self.passthrough_labels[key]} "
                f"and as {label}; allowed: give it once"
            )
            return
        self.passthrough_labels[key] = label
        if key == "model" and self.spec.endpoint is Endpoint.GENERATIONS:
            self.problems.append(
                f"Parameter {label} cannot be sent for model {self.model}: the /v1/images/generations "
                "body takes the model from the catalog; allowed: drop it"
            )
            return
        try:
            self.passthrough[key] = json_value(value)
        except Reject as exc:
            self.problems.append(
                f"Parameter {label} = {show(value)} {exc.reason} for model {self.model}; "
                f"allowed: {exc.allowed}"
            )

    def _unknown(self, key: str) -> str:
        allowed = ", ".join(model_parameters(self.spec))
        reason = self.schema.unsupported_reason(self.spec, key)  # e.g. 'image' for a text-only model
        if reason is not None:
            return (
                f"Parameter {show(key)} is not supported by model {self.model}: {reason}; "
                f"allowed parameters: {allowed}"
            )
        owners = [
            family.value
            for family, schema in SCHEMAS.items()
            if family is not Family.GENERIC and schema.canonical(key) is not None
        ]
        if owners:
            plural = "family" if len(owners) == 1 else "families"
            hint = f" (it is a parameter of the {', '.join(owners)} {plural})"
        else:
            close = difflib.get_close_matches(key.lower(), model_parameters(self.spec), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
        return (
            f"Unknown parameter {show(key)} for model {self.model}{hint}; allowed parameters: {allowed} "
            "(extra_input sends a key unchecked)"
        )

    def _describe(self, exc: ValidationError) -> list[str]:
        problems = []
        for error in exc.errors(include_url=False):
            loc = error.get("loc") or ()
            cause = (error.get("ctx") or {}).get("error")
            if loc:
                name = str(loc[0])
                label = self._label(name)
                shown = show(error.get("input"))
                if isinstance(cause, Reject):
                    problems.append(
                        f"Parameter {label} = {shown} {cause.reason} for model {self.model}; "
                        f"allowed: {cause.allowed}"
                    )
                else:
                    problems.append(
                        f"Parameter {label} = {shown} is not valid for model {self.model}: {error['msg']}"
                    )
            elif isinstance(cause, ValueError):
                problems.append(str(cause))  # cross-parameter rules word their own message
            else:
                problems.append(f"Invalid input for model {self.model}: {error['msg']}")
        return problems

    def _error(self) -> AIHubMixValidationError:
        if len(self.problems) == 1:
            return AIHubMixValidationError(self.problems[0])
        listed = "\n".join(f"- {problem}" for problem in self.problems)
        return AIHubMixValidationError(
            f"{len(self.problems)} problems with the input for model {self.model}:\n{listed}"
        )


__all__ = [
    "MAX_PROMPT_LENGTH",
    "SCHEMAS",
    "build_input",
    "family_parameters",
    "model_parameters",
    "request_body",
    "schema_for",
    "validate_params",
]
