"""Prices, estimates before the call, actual costs after it, budgets and run summaries.

* :mod:`.table` -- the price rows (``prices.json`` shipped in the package, plus user overrides);
* :mod:`.estimate` -- what a request will cost before it is sent;
* :mod:`.actual` -- what the stored images cost, from usage tokens or the answer;
* :mod:`.budget` -- the per-task and DAG-level guards (``max_cost_usd``);
* :mod:`.reservations`, :mod:`.reservation_chain` -- the DAG budget's per-run reservation ledger
  (its guarantees and layout), read by :mod:`.summary`;
* :mod:`.summary` -- a run's cost summary from its manifests and its reservation ledger;
* :mod:`.docs` -- the generated ``docs/PRICES.md``.

Everything is USD; the data file names each price's public source and the date it was read.
"""

from __future__ import annotations

from airflow_provider_aihubmix.pricing.actual import Actual, actual_cost
from airflow_provider_aihubmix.pricing.estimate import Estimate, estimate, requested_images
from airflow_provider_aihubmix.pricing.table import (
    CURRENCY,
    PRICES_FILE,
    PriceRow,
    PriceTable,
    package_prices,
    parse_overrides,
)

__all__ = [
    "CURRENCY",
    "PRICES_FILE",
    "Actual",
    "Estimate",
    "PriceRow",
    "PriceTable",
    "actual_cost",
    "estimate",
    "package_prices",
    "parse_overrides",
    "requested_images",
]
