"""The Airflow-version shims, and a guard that nothing imports a moved name around them.

The guard runs on every Airflow version: an import of ``airflow.sdk.exceptions`` works on 3.3 and
breaks every DAG on 3.1, so it must fail here, in the locked environment, before it lands.
"""

from __future__ import annotations

import ast
import asyncio
import json
from pathlib import Path

import pytest

from airflow_provider_aihubmix import version_compat
from airflow_provider_aihubmix.version_compat import (
    AIRFLOW_V_3_2_PLUS,
    AIRFLOW_V_3_3_PLUS,
    AIRFLOW_VERSION,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
    aextra_dejson,
    amask_secret,
    conf,
    deserialize,
    get_hook_lineage_collector,
    mask_secret,
    serialize,
)

REPO = Path(__file__).resolve().parents[2]
# benchmarks/ run on the locked environment only.
SCANNED = ["airflow_provider_aihubmix", "tests", "example_dags", "scripts"]
ALLOWED = {REPO / "airflow_provider_aihubmix" / "version_compat.py", REPO / "tests" / "compat.py"}

# module -> (names, or None for "any name"), why: what Airflow 3.1 lacks.
MOVED: dict[str, tuple[frozenset[str] | None, str]] = {
    "airflow.sdk": (frozenset({"conf"}), "airflow.sdk exports conf from Airflow 3.2"),
    "airflow.sdk.exceptions": (None, "task exceptions are in airflow.sdk.exceptions from Airflow 3.2"),
    "airflow.sdk.lineage": (None, "airflow.sdk.lineage exists from Airflow 3.2"),
    "airflow.sdk.serde": (None, "airflow.sdk.serde exists from Airflow 3.2"),
    "airflow.sdk.log": (frozenset({"amask_secret"}), "amask_secret exists from Airflow 3.3"),
    "airflow.dag_processing.dagbag": (None, "DagBag is in airflow.dag_processing from Airflow 3.2"),
}
MOVED_METHODS = {"aextra_dejson": "Connection.aextra_dejson exists from Airflow 3.3"}


def _moved_uses(path: Path, root: Path = REPO) -> list[str]:
    found = []
    where = path.relative_to(root)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module in MOVED:
            names, why = MOVED[node.module]
            bad = [a.name for a in node.names if names is None or a.name in names]
            if bad:
                found.append(f"{where}:{node.lineno} {node.module} {bad}: {why}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MOVED and MOVED[alias.name][0] is None:
                    found.append(f"{where}:{node.lineno} {alias.name}: {MOVED[alias.name][1]}")
        elif isinstance(node, ast.Attribute) and node.attr in MOVED_METHODS:
            found.append(f"{where}:{node.lineno} .{node.attr}: {MOVED_METHODS[node.attr]}")
    return found


def test_no_module_imports_a_name_airflow_3_1_lacks() -> None:
    files = [p for folder in SCANNED for p in (REPO / folder).rglob("*.py") if p not in ALLOWED]
    assert len(files) > 50
    found = [use for path in files for use in _moved_uses(path)]
    assert not found, (
        "Import these through airflow_provider_aihubmix.version_compat (tests: tests/compat.py), "
        "which falls back for older Airflow:\n" + "\n".join(found)
    )


def test_the_guard_sees_each_kind_of_moved_use(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from airflow.sdk import DAG, conf\n"
        "from airflow.sdk.exceptions import TaskDeferred\n"
        "import airflow.sdk.lineage\n"
        "async def f(conn):\n    return await conn.aextra_dejson()\n"
    )
    found = _moved_uses(sample, root=tmp_path)
    assert [use.split(" ", 1)[0] for use in found] == [
        "sample.py:1",
        "sample.py:2",
        "sample.py:3",
        "sample.py:5",
    ]
    assert "['conf']" in found[0] and "DAG" not in found[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3.1.8", (3, 1, 8)), ("3.2.0rc1", (3, 2, 0)), ("3.3", (3, 3, 0)), ("3.3.2.dev0+abc", (3, 3, 2))],
)
def test_versions_count_pre_releases_as_their_release(text: str, expected: tuple[int, int, int]) -> None:
    assert version_compat._base_version(text) == expected


def test_version_flags_agree_with_the_installed_airflow() -> None:
    import airflow

    assert version_compat._base_version(airflow.__version__) == AIRFLOW_VERSION
    assert AIRFLOW_VERSION >= (3, 1, 0)
    assert (AIRFLOW_VERSION >= (3, 2, 0)) == AIRFLOW_V_3_2_PLUS
    assert (AIRFLOW_VERSION >= (3, 3, 0)) == AIRFLOW_V_3_3_PLUS


def test_conf_reads_airflow_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert conf.getboolean("operators", "default_deferrable", fallback=False) is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert conf.getboolean("operators", "default_deferrable", fallback=True) is False


def test_exceptions_are_the_classes_airflow_raises_and_handles() -> None:
    import airflow.exceptions as core

    # Airflow's task runner catches these by class: the shims must be the very same classes.
    for cls in (AirflowFailException, AirflowSensorTimeout, AirflowSkipException, TaskDeferred):
        assert getattr(core, cls.__name__) is cls
    assert AirflowNotFoundException is core.AirflowNotFoundException


def test_serde_round_trips_a_trigger_event_payload() -> None:
    payload = {
        "status": "success",
        "remote_task_id": "t-1",
        "polls": 3,
        "images": [{"url": "https://x/a.png"}],
    }
    assert deserialize(serialize(payload)) == payload


def test_hook_lineage_collector_takes_asset_uris() -> None:
    collector = get_hook_lineage_collector()
    assert callable(collector.add_output_asset) and callable(collector.add_input_asset)


def _masked(secret: str) -> bool:
    from airflow.sdk.log import mask_secret as _  # noqa: F401 - the masker the SDK configures

    try:
        from airflow.sdk._shared.secrets_masker import redact
    except ImportError:  # pragma: no cover - layouts without the shared masker
        pytest.skip("this Airflow has no airflow.sdk._shared.secrets_masker")
    return secret not in str(redact(f"token={secret}"))


def test_mask_secret_masks_in_this_process() -> None:
    secret = "sk-sync-compat-4b1f9e0c7d"
    mask_secret(secret)
    assert _masked(secret)


def test_amask_secret_masks_without_blocking_the_loop() -> None:
    secret = "sk-async-compat-7c2a11f3e8"
    asyncio.run(amask_secret(secret))
    assert _masked(secret)


def test_aextra_dejson_parses_and_masks_the_extra() -> None:
    from airflow.sdk.definitions.connection import Connection

    extra = {"output_uri": "s3://bucket/x", "api_token": "tok-compat-91ae53d0"}
    conn = Connection(conn_id="c", conn_type="aihubmix", extra=json.dumps(extra))
    assert asyncio.run(aextra_dejson(conn)) == extra
    assert _masked("tok-compat-91ae53d0")
    broken = Connection(conn_id="c", conn_type="aihubmix", extra="{not json")
    assert asyncio.run(aextra_dejson(broken)) == {}
