"""Fixtures of the fault-injection suite, and the collector of its measured figures.

Every scenario records one row (what was expected, what happened, requests sent, objects
stored, duplicates) through the ``report`` fixture; at the end of the session the rows and
each test's outcome go to a JSON file: ``$AIHUBMIX_RELIABILITY_JSON`` when set (that is how
``scripts/reliability_report.py`` regenerates ``docs/RELIABILITY.md``), else a file in the
temporary directory.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aihubmix.sandbox import SandboxServer

REPORT_ENV = "AIHUBMIX_RELIABILITY_JSON"
FULL_ENV = "AIHUBMIX_RELIABILITY_FULL"

_ROWS: dict[str, dict[str, Any]] = {}
_OUTCOMES: dict[str, str] = {}
_STARTED = time.time()


class ScenarioReport:
    """Rows of one test; ``row()`` may be called more than once (one row per scenario id)."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid

    def row(
        self,
        scenario_id: str,
        *,
        area: str,
        scenario: str,
        expected: str,
        result: str,
        **figures: Any,
    ) -> None:
        _ROWS[scenario_id] = {
            "id": scenario_id,
            "area": area,
            "scenario": scenario,
            "expected": expected,
            "result": result,
            "figures": figures,
            "test": self.nodeid,
        }


@pytest.fixture
def report(request: pytest.FixtureRequest) -> ScenarioReport:
    return ScenarioReport(request.node.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" or (rep.when == "setup" and not rep.passed):
        _OUTCOMES[item.nodeid] = rep.outcome


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _ROWS:
        return
    path = os.environ.get(REPORT_ENV) or os.path.join(tempfile.gettempdir(), "aihubmix-reliability.json")
    rows = [{**row, "outcome": _OUTCOMES.get(row["test"], "unknown")} for row in _ROWS.values()]
    Path(path).write_text(
        json.dumps(
            {
                "generated_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                "duration_s": round(time.time() - _STARTED, 1),
                "full": full_run(),
                "rows": rows,
            },
            indent=2,
            default=str,
        )
    )


def full_run() -> bool:
    """The report script's run: the load scenario at full size (CI runs it scaled down)."""
    return os.environ.get(FULL_ENV, "") not in ("", "0", "false")


# -- the API connection, with a canary key -------------------------------------------------------


class ApiConnection:
    """Points ``aihubmix_default`` at the sandbox with a canary key that only it accepts."""

    def __init__(self, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sandbox = sandbox
        self.monkeypatch = monkeypatch
        self.key = f"sk-canary-{uuid.uuid4()}"
        sandbox.client.configure(api_key=self.key)
        self.connect()

    def connect(self, *, host: str | None = None, **extra: Any) -> None:
        base = host or self.sandbox.base_url
        connection = {
            "conn_type": "aihubmix",
            "host": base,
            "password": self.key,
            "extra": {"tasks_base_url": base, **extra},
        }
        self.monkeypatch.setenv("AIRFLOW_CONN_AIHUBMIX_DEFAULT", json.dumps(connection))

    def assert_clean(self, *texts: Any) -> None:
        """No text (an exception with its whole chain, a record, a log) holds the key."""
        for text in texts:
            if isinstance(text, BaseException):
                text = "".join(traceback.format_exception(text)) + repr(text)
            elif not isinstance(text, str):
                text = json.dumps(text, default=str)
            assert self.key not in text, "the API key leaked"
            assert self.key[len("sk-canary-") :] not in text, "part of the API key leaked"


@pytest.fixture
def api(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> ApiConnection:
    return ApiConnection(sandbox, monkeypatch)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    path = tmp_path / "images"
    path.mkdir()
    return path


@pytest.fixture
def operator_factory(out_dir: Path) -> Callable[..., Callable[[], Any]]:
    """``operator_factory(**kwargs)`` -> a builder of a fresh generic operator per try."""
    from airflow_provider_aihubmix.operators.images import AIHubMixGenerateImageOperator

    def factory(**kwargs: Any) -> Callable[[], Any]:
        kwargs.setdefault("task_id", "generate")
        kwargs.setdefault("output_uri", out_dir.as_uri())
        kwargs.setdefault("poll_interval", 0.2)
        hook_kwargs = kwargs.pop("hook_kwargs", None)

        def build() -> Any:
            operator = AIHubMixGenerateImageOperator(**kwargs)
            if hook_kwargs is not None:
                from tests.reliability.helpers import with_hook

                with_hook(operator, **hook_kwargs)
            return operator

        return build

    return factory
