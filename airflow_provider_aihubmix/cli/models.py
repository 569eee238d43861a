"""``aihubmix-models``: the image models this key can use that the catalog lacks, and the balance.

A console script rather than an Airflow CLI command: Airflow 3 lets providers add CLI commands only
for executors and auth managers, while ``aihubmix-sandbox`` already shows the provider's console
scripts are where its tools live. It reads the key from an Airflow connection (``--conn-id``, the
hook's usual lookup, so ``AIRFLOW_CONN_AIHUBMIX_DEFAULT`` works without a metadata database) or,
with ``--base-url``, from the ``AIHUBMIX_API_KEY`` environment variable; the key is never printed.

It calls ``GET /v1/models`` (what the key may use), ``GET /api/v1/models?type=image_generation``
(AIHubMix's public catalog, to tell image models from the rest) and, with ``--balance``,
``GET /dashboard/billing/remain``. Exit status: 0, or 1 with ``--fail-on-drift`` when the key can
use image models the catalog lacks, 2 when AIHubMix could not be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from airflow_provider_aihubmix.exceptions import AIHubMixError
from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook

API_KEY_ENV = "AIHUBMIX_API_KEY"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aihubmix-models",
        description="List the image models this AIHubMix key can use that the provider's catalog lacks.",
    )
    parser.add_argument(
        "--conn-id", default="aihubmix_default", help="Airflow connection (default %(default)s)"
    )
    parser.add_argument(
        "--base-url", help=f"call this API instead of the connection's, with the key in ${API_KEY_ENV}"
    )
    parser.add_argument("--balance", action="store_true", help="also report the account balance")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--fail-on-drift",
        action="store_true",
        help="exit 1 when the key can use image models the catalog lacks",
    )
    return parser


def _hook(args: argparse.Namespace) -> AIHubMixHook:
    if args.base_url:
        key = os.environ.get(API_KEY_ENV)
        if not key:
            raise SystemExit(f"aihubmix-models: --base-url needs the API key in ${API_KEY_ENV}")
        return AIHubMixHook(api_key=key, base_url=args.base_url)
    return AIHubMixHook(aihubmix_conn_id=args.conn_id)


def report(hook: AIHubMixHook, *, balance: bool) -> dict[str, Any]:
    """The drift (and balance) as one JSON-able object."""
    out: dict[str, Any] = {"base_url": hook.base_url, "drift": hook.model_drift().as_dict()}
    if balance:
        out["balance"] = hook.get_balance().as_dict()
    return out


def _lines(found: dict[str, Any]) -> list[str]:
    drift = found["drift"]
    lines = [
        f"AIHubMix at {found['base_url']}: {drift['listed']} models listed for this key, "
        f"{drift['image_models']} of them image models (told by {drift['typed_by']})."
    ]
    if drift["lacking"]:
        lines.append(f"Image models the catalog lacks ({len(drift['lacking'])}):")
        lines += [f"  {name}" for name in drift["lacking"]]
        lines.append("  (a new model of a known provider works today through its family operator; others")
        lines.append("   through AIHubMixGenerateImageOperator as 'provider/model_id')")
    else:
        lines.append("The catalog lists every image model this key can use.")
    if drift["differs"]:
        lines.append("Marked differently:")
        lines += [f"  {text}" for text in drift["differs"]]
    if drift["unlisted"]:
        lines.append(
            f"Catalog models not in this key's list ({len(drift['unlisted'])}; predictions-only models "
            "may be callable though unlisted): " + ", ".join(drift["unlisted"])
        )
    if "balance" in found:
        b = found["balance"]
        shown = "unlimited" if b["unlimited"] else b["remaining_usd"]
        lines.append(f"Balance: {shown} ({b['source']})")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    hook = _hook(args)
    try:
        found = report(hook, balance=args.balance)
    except AIHubMixError as exc:
        print(f"aihubmix-models: {exc}", file=sys.stderr)
        return 2
    finally:
        hook.close()
    print(json.dumps(found, indent=2) if args.json else "\n".join(_lines(found)))
    return 1 if args.fail_on_drift and found["drift"]["lacking"] else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
