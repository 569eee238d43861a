"""Generate ``docs/PARAMETERS.md`` from the catalog and the family schemas, so the page cannot drift.

    python -m airflow_provider_aihubmix.schemas.docs --write   # rewrite docs/PARAMETERS.md
    python -m airflow_provider_aihubmix.schemas.docs --check   # exit 1 if it is out of date

Every cell is computed: the parameters a model takes (:func:`model_parameters`), the field they
go out as (the schema's own wire mapping), what is allowed (the validator's own message, asked
with a value no validator accepts) and the public source (the catalog row's ``limits.sources``,
else the family's). A test compares :func:`render` with the committed page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from airflow_provider_aihubmix.catalog.limits import SOURCES
from airflow_provider_aihubmix.catalog.models import CATALOG, Family, ModelSpec
from airflow_provider_aihubmix.generated_docs import page_command
from airflow_provider_aihubmix.schemas import model_parameters, schema_for
from airflow_provider_aihubmix.schemas._base import Reject, SchemaContext

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "PARAMETERS.md"

# Where a family's rules come from when the model's row names no source for a parameter.
FAMILY_SOURCES: dict[Family, str] = {
    Family.OPENAI: "aihubmix-doc; openai-openapi",
    Family.IMAGEN: "aihubmix-doc; aihubmix-gemini-doc",
    Family.QWEN: "aihubmix-doc",
    Family.SEEDREAM: "aihubmix-doc; ark-seedream",
    Family.FLUX: "aihubmix-doc; bfl-openapi",
    Family.IRAG: "aihubmix-doc; qianfan-image",
    Family.IDEOGRAM: "aihubmix-doc; ideogram-openapi",
    Family.GEMINI: "aihubmix-gemini-doc; gemini-api",
    Family.GENERIC: "aihubmix-doc (general parameters)",
}

HEADER = """# Parameters per model

<!-- Generated from the catalog and the family schemas by
     `python -m airflow_provider_aihubmix.schemas.docs --write`; do not edit by hand. -->

What each catalog model accepts, as the provider checks it **before** any request, the field it
goes out as, and the public source of the rule. Where sources disagree the union is accepted and
the value is sent as written (Qwen sizes keep `x` or `*`). Prompt limits in tokens are the
vendor's tokenizer's: listed, not counted. Parameters not listed here can still be sent through
`extra_input` (unchecked). Source names:
"""


def allowed_text(spec: ModelSpec, name: str) -> str:
    """What the parameter's validator allows, in its own words (it is asked with a value it refuses)."""
    schema = schema_for(spec.family)
    try:
        schema.model_validate({name: object()}, context=SchemaContext(spec, final=False))
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            cause = (error.get("ctx") or {}).get("error")
            if isinstance(cause, Reject):
                return cause.allowed
    return "any JSON value (passed through)"


def wire_text(spec: ModelSpec, name: str) -> str:
    """The ``input`` field(s) a set parameter goes out as, from the schema's own wire mapping."""
    schema = schema_for(spec.family)
    placed = getattr(schema, "sent_as", {}).get(name)  # a body built beyond the flat input (Gemini)
    if placed is not None:
        return str(placed)
    sample: Any = ["<ref>"] * max(spec.max_reference_images, 1) if name == "image" else 1
    try:
        keys = [key for _, key, _ in schema.model_construct(**{name: sample}).wire_items(spec)]
    except Exception:  # a family that builds its body elsewhere (Gemini): its declared names
        keys = [schema.wire_names.get(name, name)]
    if not keys:
        return "(checked, not sent)"
    if len(keys) > 3:
        return f"`{keys[0]}` … `{keys[-1]}`"
    return " + ".join(f"`{key}`" for key in dict.fromkeys(keys))


def source_text(spec: ModelSpec, name: str) -> str:
    return spec.limits.source(name) or FAMILY_SOURCES.get(spec.family, "aihubmix-doc")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def model_section(spec: ModelSpec) -> list[str]:
    limit = spec.limits.prompt
    facts = [
        f"endpoint `{spec.endpoint.value}`",
        "async (task id, polled)" if spec.is_async else "sync",
        f"prompt at most {limit.length:,} {limit.unit}",
    ]
    if spec.default_n != 1:
        facts.append(f"makes {spec.default_n} images when no count is sent")
    lines = [f"### `{spec.path}`", "", "; ".join(facts) + ".", ""]
    lines += ["| parameter | sent as | allowed | source |", "|---|---|---|---|"]
    for name in model_parameters(spec):
        cells = [f"`{name}`", wire_text(spec, name), allowed_text(spec, name), source_text(spec, name)]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return [*lines, ""]


def render() -> str:
    """The whole ``docs/PARAMETERS.md`` text for the shipped catalog."""
    lines = [HEADER.rstrip("\n"), ""]
    lines += [f"- `{short}`: {where}" for short, where in SOURCES.items()]
    lines.append("")
    for family in Family:
        specs = [spec for spec in CATALOG.values() if spec.family is family]
        if not specs:
            continue
        lines += [f"## {family.value}", ""]
        for spec in sorted(specs, key=lambda s: s.path):
            lines += model_section(spec)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    description = __doc__.splitlines()[0] if __doc__ else None
    return page_command(
        argv,
        render=render,
        path=DOC_PATH,
        module="airflow_provider_aihubmix.schemas.docs",
        description=description,
    )


if __name__ == "__main__":
    raise SystemExit(main())
