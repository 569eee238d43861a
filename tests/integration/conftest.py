"""Fixtures the integration tests share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.s3 import S3Bucket


@pytest.fixture(params=["s3", "file"])
def output(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Any]:
    """``(output_uri, s3 client or None)``: a fresh moto bucket, or a local folder."""
    if request.param == "s3":
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        return bucket.uri, bucket.client
    return (tmp_path / "images").as_uri(), None


@pytest.fixture(scope="session")
def example_output_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One output folder for every run of the example marketing DAG in a session: its outlet Asset's
    URI is built from it, and the same Asset name with another URI is an inactive asset to Airflow
    (the task fails). Each run writes under its own run prefix."""
    return (tmp_path_factory.mktemp("example-images")).as_uri()
