"""Report stored images and read reference images to Airflow's hook lineage collector."""

from __future__ import annotations

import logging
from typing import Any

from airflow_provider_aihubmix import version_compat

log = logging.getLogger(__name__)


def record_asset(direction: str, context: Any, uri: str, extra: dict[str, Any] | None = None) -> None:
    """
    Add ``uri`` as an input or output asset of the running task, with ``context`` as its producer.

    Lineage is a side channel: any failure here (no collector, an Airflow API change, a URI the
    asset factory rejects) is logged at debug level and never breaks the storage call that made it.
    """
    try:
        # Looked up on every call (not bound at import): tests/compat.py installs a collector there.
        collector = version_compat.get_hook_lineage_collector()
        add = collector.add_output_asset if direction == "output" else collector.add_input_asset
        add(context=context, uri=uri, asset_extra=extra or None)
    except Exception:
        log.debug("Could not record %s lineage for %s", direction, uri, exc_info=True)


__all__ = ["record_asset"]
