"""No hidden local state: a worker-local ``file://`` output warns when the DAG is parsed.

The dag-processor of the Celery cluster parses ``dags/distributed_local_output.py``, whose
operator writes to a directory on the worker's own disk. The DAG still loads (a warning, not
an import error), and the parse log says why that breaks on two workers and how to fix it.
"""

from __future__ import annotations

import pytest

from tests.distributed.evidence import Deployment
from tests.e2e.harness import wait_for

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(300)]


def test_worker_local_file_output_warns_at_parse_time_with_the_fix(cluster_ready: Deployment) -> None:
    cluster = cluster_ready.cluster
    cluster.wait_for_dag("distributed_local_output", timeout=180)
    assert cluster.api("GET", "/importErrors")["import_errors"] == []

    def parse_log() -> str:
        for path in (cluster.home / "logs").rglob("distributed_local_output.py*.log"):
            text = path.read_text(errors="replace")
            if "AIHubMixLocalOutputWarning" in text or "find these images" in text:
                return text
        return ""

    text = wait_for(parse_log, 180, "the parse-time warning in the dag-processor's log", interval=1.0)
    assert "CeleryExecutor" in text and "s3://" in text and "shared_output_dirs" in text
