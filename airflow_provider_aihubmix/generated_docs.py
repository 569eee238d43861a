"""The command line every generated docs page shares: print it, ``--write`` it, ``--check`` it.

Used by :mod:`airflow_provider_aihubmix.schemas.docs` (docs/PARAMETERS.md) and
:mod:`airflow_provider_aihubmix.pricing.docs` (docs/PRICES.md); CI runs ``--check`` through their
tests so a page never drifts from the data it is generated from.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def page_command(
    argv: list[str] | None, *, render: Callable[[], str], path: Path, module: str, description: str | None
) -> int:
    """Exit status of ``python -m <module> [--write | --check]``: 1 when ``--check`` finds the page
    at ``path`` out of date, else 0."""
    parser = argparse.ArgumentParser(description=description)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"rewrite {path}")
    group.add_argument("--check", action="store_true", help="exit 1 when the page is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        path.write_text(text, encoding="utf-8")
        return 0
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date: run python -m {module} --write")
            return 1
        return 0
    sys.stdout.write(text)
    return 0


__all__ = ["page_command"]
