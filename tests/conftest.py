"""Shared test set-up: an isolated AIRFLOW_HOME and the fixture plugins for the real parts."""

from __future__ import annotations

import os
import tempfile

# Airflow reads its configuration at import time: point it at a throw-away home first.
_HOME = tempfile.mkdtemp(prefix="aihubmix-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")

pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.s3",
    "tests.fixtures.clouds",
    "tests.fixtures.airflow",
    "tests.fixtures.airflow_db",
    "tests.fixtures.statsd",
    "tests.fixtures.otlp",
]
