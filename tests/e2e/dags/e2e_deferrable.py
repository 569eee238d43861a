"""A DAG whose only interesting property is that its first task defers to the triggerer.

The e2e harness test uses it to prove the round trip worker -> triggerer -> worker, and that a
triggerer killed mid-deferral hands its trigger to the next one.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import dag, task

# Measured from the run's run_after, not from the task's start: long enough for the test to see
# the task deferred, kill the triggerer and start another before the moment passes.
WAIT = timedelta(seconds=25)


@dag(dag_id="e2e_deferrable", schedule=None, catchup=False, tags=["e2e"])
def e2e_deferrable() -> None:
    wait = TimeDeltaSensor(task_id="wait", delta=WAIT, deferrable=True, poke_interval=1)

    @task
    def after_wait(**context: object) -> str:
        # Runs on a worker only if the deferred sensor resumed and succeeded.
        return f"resumed {context['run_id']}"

    wait >> after_wait()


e2e_deferrable()
