"""Generate ``docs/PRICES.md`` from the shipped price table, so the page cannot drift from the data.

    python -m airflow_provider_aihubmix.pricing.docs --write   # rewrite docs/PRICES.md
    python -m airflow_provider_aihubmix.pricing.docs --check   # exit 1 if it is out of date

A test runs ``render()`` and compares it with the committed page.
"""

from __future__ import annotations

from pathlib import Path

from airflow_provider_aihubmix.generated_docs import page_command
from airflow_provider_aihubmix.pricing.estimate import estimate
from airflow_provider_aihubmix.pricing.table import OptionTable, PriceRow, PriceTable, package_prices

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "PRICES.md"

HEADER = """# Prices

<!-- Generated from airflow_provider_aihubmix/pricing/prices.json by
     `python -m airflow_provider_aihubmix.pricing.docs --write`; do not edit by hand. -->

What each model costs, as the provider estimates it **before** a request (the budget guards use
this) and settles it **after** (the manifest's and the lineage facet's `cost.actual`). Every price
is a public list price in USD with the page it was read from and the date. Where no public price
was found the model says so and its cost stays *unknown*: `max_cost_usd` and the DAG budget then
refuse it unless `allow_unknown_cost=True`.

AIHubMix accounts differ in discounts: set your own rows with the connection extra `prices` or the
operator parameter `prices` (same format as the data file; a bare number is a USD price per image):

```json
{"prices": {"doubao-seedream-4-5": 0.035,
            "gpt-image-1": {"unit": "token", "token_prices_per_million": {"image_output": 32.0},
                            "output_tokens_per_image": {"params": ["quality", "size"],
                                                        "values": {"low/1024x1024": 272}}}}}
```

| model | unit | price (USD) | example estimate | source | read |
|---|---|---|---|---|---|
"""


def _table_text(table: OptionTable, scale: float = 1.0, suffix: str = "") -> str:
    return ", ".join(f"{key}: {value * scale:.6g}{suffix}" for key, value in table.values.items())


def price_text(row: PriceRow) -> str:
    """The row's prices in one table cell."""
    if not row.is_priced:
        return "no public price"
    parts = []
    if row.token_prices_per_million:
        tokens = ", ".join(f"{k} {v:g}" for k, v in row.token_prices_per_million.items())
        parts.append(f"per 1M tokens: {tokens}")
    if row.output_tokens_per_image is not None:
        parts.append(f"output tokens per image: {_table_text(row.output_tokens_per_image)}")
    if row.per_image_by is not None:
        names = " x ".join(p.name for p in row.per_image_by.params)
        parts.append(f"per image by {names}: {_table_text(row.per_image_by)}")
    if row.per_image is not None:
        parts.append(f"{row.per_image:g} per image")
    if row.per_megapixel is not None:
        mp = row.per_megapixel
        parts.append(
            f"{mp.first:g} first output MP, {mp.additional:g} each further MP, {mp.input:g} per input MP"
        )
    return "; ".join(parts)


def example_text(row: PriceRow, table: PriceTable) -> str:
    """The estimate for the model's default request (one image, default options)."""
    if not row.is_priced:
        return "unknown"
    found = estimate(row.model, {}, table)
    if found.total_usd is None:
        return "unknown"
    return f"{found.total_usd:.4f} ({found.detail})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The whole ``docs/PRICES.md`` text for the shipped table."""
    table = PriceTable.build()
    lines = [HEADER.rstrip("\n")]
    for model, row in sorted(package_prices().items()):
        cells = [f"`{model}`", row.unit, price_text(row), example_text(row, table), row.source, row.read]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    notes = [(m, r.note) for m, r in sorted(package_prices().items()) if r.note]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- `{model}`: {note}" for model, note in notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    description = __doc__.splitlines()[0] if __doc__ else None
    return page_command(
        argv,
        render=render,
        path=DOC_PATH,
        module="airflow_provider_aihubmix.pricing.docs",
        description=description,
    )


if __name__ == "__main__":
    raise SystemExit(main())
