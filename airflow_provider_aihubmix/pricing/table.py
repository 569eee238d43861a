"""The price table: one row per model, from ``prices.json`` shipped in the package plus user overrides.

A row says how a model is billed (``unit``): ``image`` (a flat price, or a price per request
option such as quality x size), ``token`` (USD per 1M tokens, with the published output tokens
per image used for the estimate), ``megapixel`` (Flux 2) or ``unknown`` (no public price: the
cost stays unknown). Every row names its public ``source`` and the date it was ``read``.

Overrides (connection extra ``prices``, operator parameter ``prices``) replace or add rows::

    {"doubao-seedream-4-5": 0.035,                       # a flat USD price per image
     "openai/gpt-image-1": {"unit": "token", "token_prices_per_million": {...}, ...}}

Keys are catalog names, aliases or ``provider/model_id`` paths; a bare number is a per-image price.
Errors are :class:`~airflow_provider_aihubmix.exceptions.AIHubMixValidationError` naming ``prices``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from airflow_provider_aihubmix.catalog.models import UnknownModelError, resolve_model
from airflow_provider_aihubmix.exceptions import AIHubMixValidationError

PRICES_FILE = Path(__file__).with_name("prices.json")
CURRENCY = "USD"
UNITS = ("image", "token", "megapixel", "unknown")
# Package rows come from the shipped file; the others say which override set them.
ORIGIN_PACKAGE = "package"


@dataclass(frozen=True)
class OptionParam:
    """One request option a price depends on, looked up under any of ``keys`` (dotted paths)."""

    name: str
    keys: tuple[str, ...]
    default: str | None = None
    # Values meaning "let the API choose" (e.g. quality ``auto``): estimated as the dearest option.
    unset: tuple[str, ...] = ()


@dataclass(frozen=True)
class OptionTable:
    """Numbers keyed by request options: ``values["low/1024x1024"]`` for params (quality, size)."""

    params: tuple[OptionParam, ...]
    values: Mapping[str, float]

    def lookup(self, input_: Mapping[str, Any]) -> tuple[float | None, str]:
        """The value for ``input_``'s options and the key used; ``None`` if an option is not listed.

        An option that is absent (or an ``unset`` value) without a default takes the largest value
        among the rows matching the other options: an upper bound, never a guess below the bill.
        """
        chosen: list[str | None] = []
        for param in self.params:
            value = _dig(input_, param.keys)
            text = None if value is None else str(value)
            if text is None or text.lower() in {u.lower() for u in param.unset}:
                text = param.default
            chosen.append(text)
        candidates = [
            (number, key) for key, number in self.values.items() if _matches(key.split("/"), chosen)
        ]
        if not candidates:
            return None, "/".join(c or "*" for c in chosen)
        number, key = max(candidates)
        return number, key


@dataclass(frozen=True)
class Megapixels:
    """Flux 2 prices: first output megapixel, each further one, each input megapixel (USD)."""

    first: float
    additional: float
    input: float
    max_output_megapixels: int

    def output_cost(self, megapixels: int) -> float:
        return self.first + self.additional * max(megapixels - 1, 0)


@dataclass(frozen=True)
class PriceRow:
    """How one model is billed, where that was read and when. Prices in USD."""

    model: str
    unit: str
    source: str
    read: str
    per_image: float | None = None
    per_image_by: OptionTable | None = None
    token_prices_per_million: Mapping[str, float] = field(default_factory=dict)
    output_tokens_per_image: OptionTable | None = None
    per_megapixel: Megapixels | None = None
    default_images: int | None = None
    published_per_image: Mapping[str, float] = field(default_factory=dict)
    note: str | None = None
    origin: str = ORIGIN_PACKAGE
    currency: str = CURRENCY

    @property
    def is_priced(self) -> bool:
        return self.unit != "unknown"

    def token_price(self, kind: str) -> float | None:
        """USD per single token of ``kind`` (``image_output``, ``text_input``, ``input``...)."""
        per_million = self.token_prices_per_million.get(kind)
        return None if per_million is None else per_million / 1_000_000

    def reference(self) -> dict[str, Any]:
        """What a manifest or lineage facet records about the row a figure came from."""
        return {
            "unit": self.unit,
            "source": self.source,
            "read": self.read,
            "origin": self.origin,
            "currency": self.currency,
        }


def megapixels(width: int, height: int) -> int:
    """Billable megapixels of a ``width`` x ``height`` image: 1024x1024 px each, rounded up (BFL)."""
    return max(math.ceil(width * height / (1024 * 1024)), 1)


def _matches(parts: list[str], chosen: list[str | None]) -> bool:
    return all(c is None or part.lower() == c.lower() for part, c in zip(parts, chosen, strict=True))


def _dig(input_: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value: Any = input_
        for part in key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is not None:
            return value
    return None


# -- parsing ----------------------------------------------------------------------------------


def _bad(where: str, problem: str) -> AIHubMixValidationError:
    return AIHubMixValidationError(f"Parameter 'prices' {where}: {problem}")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or math.isnan(value):
        raise _bad(where, f"expected a number >= 0 (USD), got {value!r}")
    return float(value)


def _table(raw: Any, where: str) -> OptionTable:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("values"), Mapping):
        raise _bad(where, "expected {'params': [...], 'values': {'option/option': number}}")
    params = []
    for spec in raw.get("params") or []:
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise _bad(where, f"each param needs a 'name', got {spec!r}")
        params.append(
            OptionParam(
                name=spec["name"],
                keys=tuple(spec.get("keys") or (spec["name"],)),
                default=spec.get("default"),
                unset=tuple(spec.get("unset") or ()),
            )
        )
    values = {str(k): _number(v, f"{where} value {k!r}") for k, v in raw["values"].items()}
    for key in values:
        if len(key.split("/")) != len(params):
            raise _bad(where, f"key {key!r} does not name one value per param {[p.name for p in params]}")
    return OptionTable(params=tuple(params), values=values)


def parse_row(model: str, raw: Any, *, origin: str, read: str = "") -> PriceRow:
    """One row from its JSON form (or a bare number: a flat per-image price)."""
    where = f"for model {model!r}"
    if not isinstance(raw, Mapping):
        return PriceRow(
            model=model,
            unit="image",
            per_image=_number(raw, where),
            source=f"override ({origin})",
            read=read,
            origin=origin,
        )
    unit = raw.get("unit", "image")
    if unit not in UNITS:
        raise _bad(where, f"'unit' must be one of {', '.join(UNITS)}, got {unit!r}")
    mp = raw.get("per_megapixel")
    row = PriceRow(
        model=model,
        unit=unit,
        source=str(raw.get("source") or f"override ({origin})"),
        read=str(raw.get("read") or read),
        per_image=None if raw.get("per_image") is None else _number(raw["per_image"], where),
        per_image_by=_table(raw["per_image_by"], where) if raw.get("per_image_by") else None,
        token_prices_per_million={
            str(k): _number(v, f"{where} token price {k!r}")
            for k, v in (raw.get("token_prices_per_million") or {}).items()
        },
        output_tokens_per_image=(
            _table(raw["output_tokens_per_image"], where) if raw.get("output_tokens_per_image") else None
        ),
        per_megapixel=(
            Megapixels(
                first=_number(mp.get("first"), where),
                additional=_number(mp.get("additional", mp.get("first")), where),
                input=_number(mp.get("input", 0), where),
                max_output_megapixels=int(mp.get("max_output_megapixels", 4)),
            )
            if isinstance(mp, Mapping)
            else None
        ),
        default_images=raw.get("default_images"),
        published_per_image=dict(raw.get("published_per_image") or {}),
        note=raw.get("note"),
        origin=origin,
    )
    _check_usable(row, where)
    return row


def _check_usable(row: PriceRow, where: str) -> None:
    if row.unit == "image" and row.per_image is None and row.per_image_by is None:
        raise _bad(where, "unit 'image' needs 'per_image' or 'per_image_by'")
    if row.unit == "megapixel" and row.per_megapixel is None:
        raise _bad(where, "unit 'megapixel' needs 'per_megapixel' {'first', 'additional', 'input'}")
    if row.unit == "token" and not row.token_prices_per_million:
        raise _bad(where, "unit 'token' needs 'token_prices_per_million'")


@functools.lru_cache(maxsize=1)
def package_prices() -> dict[str, PriceRow]:
    """The rows shipped in ``prices.json``, keyed by catalog path."""
    data = json.loads(PRICES_FILE.read_text(encoding="utf-8"))
    return {model: parse_row(model, raw, origin=ORIGIN_PACKAGE) for model, raw in data["models"].items()}


@dataclass(frozen=True)
class PriceTable:
    """The package rows with overrides applied; look rows up by any name a model is known by."""

    rows: Mapping[str, PriceRow]

    @classmethod
    def build(cls, *overrides: tuple[str, Any]) -> PriceTable:
        """Package rows, then each ``(origin, mapping)`` override in order (later ones win)."""
        rows = dict(package_prices())
        for origin, mapping in overrides:
            for model, row in parse_overrides(mapping, origin=origin).items():
                rows[model] = row
        return cls(rows=rows)

    def row_for(self, model: str) -> PriceRow | None:
        """The row for ``model``; a model the catalog does not list is also found by its bare id
        (``prices={"gpt-image-3": ...}`` prices ``openai/gpt-image-3``)."""
        path = canonical_model(model)
        row = self.rows.get(path)
        if row is None and "/" in path:
            row = self.rows.get(path.split("/", 1)[1])
        return row


def canonical_model(model: str) -> str:
    """The catalog path for a name or alias; an unknown ``provider/model_id`` stays as given."""
    try:
        return resolve_model(model, warn=False).path
    except UnknownModelError:
        return model


def parse_overrides(mapping: Any, *, origin: str) -> dict[str, PriceRow]:
    """Rows from a user's ``prices`` object (a dict, or its JSON text), keyed by catalog path."""
    if mapping is None or mapping == {}:
        return {}
    if isinstance(mapping, str):
        try:
            mapping = json.loads(mapping)
        except ValueError as err:
            raise _bad(f"from {origin}", f"is not valid JSON ({err})") from None
    if not isinstance(mapping, Mapping):
        raise _bad(
            f"from {origin}",
            f"must be an object mapping model names to a price row or a per-image USD number, "
            f"got {type(mapping).__name__}",
        )
    rows = {}
    for model, raw in mapping.items():
        path = canonical_model(str(model))
        rows[path] = replace(parse_row(str(model), raw, origin=origin), model=path)
    return rows


__all__ = [
    "CURRENCY",
    "PRICES_FILE",
    "Megapixels",
    "OptionParam",
    "OptionTable",
    "PriceRow",
    "PriceTable",
    "canonical_model",
    "megapixels",
    "package_prices",
    "parse_overrides",
    "parse_row",
]
