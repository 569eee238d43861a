"""
Airflow names the tests use that moved between Airflow versions.

The provider's own moving names live in ``airflow_provider_aihubmix.version_compat``; these are
the test-only ones (DAG parsing, the hook lineage collector class). Imported lazily by the tests
that need them: DAG parsing pulls in most of Airflow core.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_aihubmix.version_compat import AIRFLOW_V_3_3_PLUS

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 3.1: DagBag lives in airflow.models (moved in 3.2)
    from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

try:
    from airflow.sdk.lineage import HookLineageCollector
except ImportError:  # Airflow 3.1: the collector lives in core (moved to the Task SDK in 3.2)
    from airflow.lineage.hook import HookLineageCollector  # type: ignore[no-redef,assignment]


# Before Airflow 3.3, dag.test() runs tasks in process and calls their failure/retry callbacks
# without context["exception"] (only the task subprocess's entry point sets it; seen on 3.1.8 and
# 3.2.2). Tests that read the raised error back through a callback need 3.3; the provider does not.
needs_callback_exception = pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS,
    reason="dag.test() before Airflow 3.3 passes no context['exception'] to task callbacks",
)


# Airflow 3.2's async connection lookup (``Connection.async_get``) caches the connection's URI, and
# building it calls the blocking ``mask_secret`` on the event loop (``get_uri`` -> ``extra_dejson``;
# seen on 3.2.2). That call is Airflow's own; tests that forbid blocking calls on the loop let
# calls made inside this frame through before 3.3.
AIRFLOW_BLOCKING_FRAMES_ON_THE_LOOP: frozenset[str] = (
    frozenset() if AIRFLOW_V_3_3_PLUS else frozenset({"_async_get_connection"})
)


def install_hook_lineage_collector(monkeypatch: Any, factory: Any = None) -> Any:
    """
    Make the provider report hook lineage to a fresh, real collector and return it.

    Airflow hands out a no-op collector when no lineage reader is installed; the provider looks
    the collector up through ``version_compat.get_hook_lineage_collector`` on every call, so
    patching that one name works on every Airflow version. ``factory`` replaces the lookup
    itself (e.g. one that raises).
    """
    from airflow_provider_aihubmix import version_compat

    collector = HookLineageCollector()
    monkeypatch.setattr(version_compat, "get_hook_lineage_collector", factory or (lambda: collector))
    return collector


__all__ = [
    "AIRFLOW_BLOCKING_FRAMES_ON_THE_LOOP",
    "DagBag",
    "HookLineageCollector",
    "install_hook_lineage_collector",
    "needs_callback_exception",
]
