"""A DAG whose only interesting property is that its first task defers to the triggerer.

The e2e harness test uses it to prove the round trip worker -> triggerer -> worker, and that a
triggerer killed mid-deferral hands its trigger to the next one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseOperator, Context, dag, task, timezone

DEFAULT_WAIT_SECONDS = 20


class DeferForSeconds(BaseOperator):
    """Defer to the triggerer for ``dag_run.conf["wait_seconds"]`` seconds from the moment it defers.

    Unlike ``TimeDeltaSensor`` (measured from the run's ``run_after``), the wait starts when the
    task defers, so a slow worker start on a busy machine cannot eat the window the test needs.
    The trigger is a standard-provider class: the triggerer must import it, and it does not
    import from the dags folder.
    """

    def execute(self, context: Context) -> None:
        conf: dict[str, Any] = dict(context["dag_run"].conf or {})
        seconds = float(conf.get("wait_seconds", DEFAULT_WAIT_SECONDS))
        moment = timezone.utcnow() + timedelta(seconds=seconds)
        self.log.info("deferring for %s seconds", seconds)
        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="execute_complete")

    def execute_complete(self, context: Context, event: Any = None) -> str:
        self.log.info("resumed after deferral; trigger event %s", event)
        return str(event)


@dag(dag_id="e2e_deferrable", schedule=None, catchup=False, tags=["e2e"])
def e2e_deferrable() -> None:
    wait = DeferForSeconds(task_id="wait")

    @task
    def after_wait(**context: Any) -> str:
        # Runs on a worker only if the deferred task resumed and succeeded.
        return f"resumed {context['run_id']}"

    wait >> after_wait()


e2e_deferrable()
