"""
Airflow-version differences, in one place.

The provider supports every Airflow 3 minor from 3.1 on. Between 3.1 and 3.3 several names moved
from Airflow core into the Task SDK (``airflow.sdk``). Each shim below imports the newest home
first and falls back to the older one, with a comment naming the Airflow versions that need the
fallback; the rest of the package imports these names from here, never from the moving originals.
When the floor rises past a version, delete its fallbacks. The matrix that proves every branch is
``scripts/compat.sh`` (results in ``docs/COMPATIBILITY.md``).

Version flags follow the in-tree providers' ``version_compat`` modules: ``AIRFLOW_V_3_2_PLUS`` is
true on Airflow 3.2.0 and later (pre-releases included), so tests can skip features a version lacks
with a clear reason instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any, cast

from airflow import __version__ as _airflow_version_text
from packaging.version import Version

if TYPE_CHECKING:
    from airflow.sdk.definitions.connection import Connection
    from airflow.sdk.lineage import HookLineageCollector


def _base_version(text: str) -> tuple[int, int, int]:
    """``"3.2.0rc1"`` -> ``(3, 2, 0)``: pre-releases count as the release they lead to."""
    release = Version(text).release
    major, minor, micro = (*release, 0, 0)[:3]
    return major, minor, micro


AIRFLOW_VERSION: tuple[int, int, int] = _base_version(_airflow_version_text)
AIRFLOW_V_3_2_PLUS: bool = AIRFLOW_VERSION >= (3, 2, 0)
AIRFLOW_V_3_3_PLUS: bool = AIRFLOW_VERSION >= (3, 3, 0)

# Airflow 3.1: `conf` is not exported by airflow.sdk yet (added in 3.2).
try:
    from airflow.sdk import conf
except ImportError:  # Airflow 3.1
    from airflow.configuration import conf  # type: ignore[no-redef,assignment]

# Airflow 3.1: task-control exceptions live in airflow.exceptions; 3.2 moved them to the Task SDK
# (airflow.exceptions keeps deprecated aliases of the same classes there).
try:
    from airflow.sdk.exceptions import (
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
except ImportError:  # Airflow 3.1
    from airflow.exceptions import (  # type: ignore[no-redef,assignment]
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )


def get_hook_lineage_collector() -> HookLineageCollector:
    """
    Airflow's hook lineage collector for the running task.

    Imported on first use: lineage is off the import path of a DAG file.
    """
    try:
        from airflow.sdk.lineage import get_hook_lineage_collector as collector
    except ImportError:  # Airflow 3.1: the collector lives in core (moved to the Task SDK in 3.2)
        from airflow.lineage.hook import get_hook_lineage_collector as collector  # type: ignore[no-redef]
    return collector()


def mask_secret(secret: Any) -> None:
    """Mask ``secret`` in this process's logs and, inside a task, in the supervisor's too."""
    from airflow.sdk.log import mask_secret as sdk_mask_secret

    sdk_mask_secret(secret)


async def amask_secret(secret: Any) -> None:
    """
    ``mask_secret`` for code running on the triggerer's event loop.

    The synchronous version talks to the supervisor through a blocking bridge that cannot run
    inside the event loop, so in a trigger it would mask locally only.
    """
    try:
        from airflow.sdk.log import amask_secret as sdk_amask_secret
    except ImportError:  # Airflow 3.1 and 3.2: no async variant; same two steps, awaited
        await _amask_secret_before_3_3(secret)
        return
    await sdk_amask_secret(secret)


async def _amask_secret_before_3_3(secret: Any) -> None:
    from airflow.sdk.log import mask_secret as sdk_mask_secret

    try:
        from airflow.sdk._shared.secrets_masker import _secrets_masker
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import MaskSecret
    except ImportError:  # a layout this shim does not know: mask locally at least
        sdk_mask_secret(secret)
        return
    _secrets_masker().add_mask(secret, None)
    comms: Any = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is not None and hasattr(comms, "asend"):
        # The local mask is in place; the supervisor's copy is best effort, as in Airflow itself.
        with contextlib.suppress(Exception):
            await comms.asend(MaskSecret(value=secret, name=None))


async def aextra_dejson(conn: Connection) -> dict[str, Any]:
    """
    A connection's extra as a dict, its values masked without blocking the event loop.

    Returns ``{}`` for an empty or unparsable extra, as ``Connection.extra_dejson`` does.
    """
    if hasattr(conn, "aextra_dejson"):
        return cast("dict[str, Any]", await conn.aextra_dejson())
    # Airflow 3.1 and 3.2: only the blocking ``extra_dejson`` (its masking can deadlock the loop).
    try:
        extra = json.loads(conn.extra) if conn.extra else {}
    except json.JSONDecodeError:
        return {}
    if not isinstance(extra, dict):
        return {}
    await amask_secret(extra)
    return extra


# How a trigger's cancellation says why (TriggerRunner.run_trigger / cancel_triggers / arun):
# Airflow 3.3 cancels a trigger for a user action (task cleared, marked, deleted) with this message;
# 3.1 and 3.2 cancel it with no message, exactly as the triggerer's shutdown does. On every version a
# shutdown first sets the runner's ``stop`` (its SIGINT/SIGTERM handler), leaves ``arun`` and lets
# ``asyncio.run`` cancel every task still running (no message) and wait for them.
TRIGGER_USER_ACTION_CANCEL = "__airflow_user_action__"
TRIGGER_RUNNER_LOOP = "TriggerRunner.arun"


def trigger_runner_task() -> asyncio.Task[Any] | None:
    """The task running the triggerer's main loop (``TriggerRunner.arun``) on this event loop.

    ``None`` outside a triggerer (``dag.test``, a unit test awaiting ``trigger.run()``).
    """
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if code is not None and getattr(code, "co_qualname", code.co_name) in (TRIGGER_RUNNER_LOOP, "arun"):
            frame = getattr(task.get_coro(), "cr_frame", None)
            owner = frame.f_locals.get("self") if frame is not None else None
            if type(owner).__name__ == "TriggerRunner":
                return task
    return None


def triggerer_stopping(runner: asyncio.Task[Any] | None) -> bool:
    """Has the triggerer that runs ``runner`` (from :func:`trigger_runner_task`) begun to shut down?

    True once its main loop ended or its ``stop`` flag is set (the signal handler's first act);
    always False outside a triggerer.
    """
    if runner is None:
        return False
    if runner.done():
        return True
    frame = getattr(runner.get_coro(), "cr_frame", None)
    owner = frame.f_locals.get("self") if frame is not None else None
    return bool(getattr(owner, "stop", False))


def cancelled_by_shutdown(error: asyncio.CancelledError, runner: asyncio.Task[Any] | None) -> bool:
    """Tell the triggerer's shutdown from a user action, for a trigger that was just cancelled.

    Airflow 3.3+: a user action carries :data:`TRIGGER_USER_ACTION_CANCEL`; 3.1 and 3.2 send no
    message for either, so a cancellation while the triggerer is stopping counts as its
    shutdown -- a user action in the same second as the shutdown is then taken for it (its
    request is finished and recorded, not abandoned). Outside a triggerer: never a shutdown.
    """
    if error.args and error.args[0] == TRIGGER_USER_ACTION_CANCEL:
        return False
    return triggerer_stopping(runner)


def serialize(value: Any) -> Any:
    """Airflow's serde ``serialize`` (what trigger events and XCom go through)."""
    try:
        from airflow.sdk.serde import serialize as serde_serialize
    except ImportError:  # Airflow 3.1: serde lives in core (moved to the Task SDK in 3.2)
        from airflow.serialization.serde import serialize as serde_serialize  # type: ignore[no-redef]
    return serde_serialize(value)


def deserialize(value: Any) -> Any:
    """Airflow's serde ``deserialize``, the inverse of :func:`serialize`."""
    try:
        from airflow.sdk.serde import deserialize as serde_deserialize
    except ImportError:  # Airflow 3.1: serde lives in core (moved to the Task SDK in 3.2)
        from airflow.serialization.serde import deserialize as serde_deserialize  # type: ignore[no-redef]
    return serde_deserialize(value)


__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "TRIGGER_USER_ACTION_CANCEL",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "TaskDeferred",
    "aextra_dejson",
    "amask_secret",
    "cancelled_by_shutdown",
    "conf",
    "deserialize",
    "get_hook_lineage_collector",
    "mask_secret",
    "serialize",
    "trigger_runner_task",
    "triggerer_stopping",
]
