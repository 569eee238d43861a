"""200 mapped generation tasks against the sandbox with ~20 % of requests faulted, retries=3.

``dag.test()`` runs a mapped task instance in about 1.2 s on the CI machine (20 mapped tasks
took 24.8 s), so 200 would take about four minutes: over the suite's whole budget. The task
instances are therefore run the way a pool of 8 workers runs them: each map index executes a
fresh operator with its own context (dag_id, run_id, task_id, map_index, try_number), and a
failed try is retried with ``try_number + 1`` up to ``retries``, as Airflow does. The sandbox,
the HTTP stack, the engine and the store are all the real ones.

Faults are the kinds that do not bill (429 and 5xx answered before processing, and connections
dropped) on every host the run talks to. A dropped connection is injected on GETs only (image
downloads and task polls): on the billable POST it is indistinguishable from a lost answer, so
the client refuses to resend it by design (``api-drop`` in docs/RELIABILITY.md).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.reliability.conftest import full_run
from tests.reliability.helpers import (
    PREDICT_PATH,
    TASK_PATH,
    TaskRunner,
    billed_per_prompt,
    billed_posts,
    fast_backoff,
    image_files,
    local_prefix,
    posts,
)

AREA = "Load"
TASKS = 200
WORKERS = 8
RETRIES = 3
MODELS = ("qwen-image", "gpt-image-1", "flux-2-pro")  # URL answer, inline base64, async task


def _inject_faults(client) -> None:
    # Rules are tried in order, each with its own draw, so each host sees about 19 % faulted.
    for rule in (
        {"kind": "status", "status": 429, "probability": 0.1, "path": PREDICT_PATH},
        {"kind": "status", "status": 503, "probability": 0.1, "path": PREDICT_PATH},
        {"kind": "drop", "probability": 0.1, "path": TASK_PATH},
        {"kind": "status", "status": 500, "probability": 0.1, "path": TASK_PATH},
        {"kind": "drop", "probability": 0.1, "host": "storage", "path": "^/images/"},
        {"kind": "status", "status": 502, "probability": 0.1, "host": "storage", "path": "^/images/"},
    ):
        client.inject(**rule)


def test_200_mapped_tasks_with_20_percent_faults(api, sandbox, operator_factory, out_dir: Path, report):
    # One hook retry only: a fault twice in a row fails the try, so Airflow's retries are exercised
    # too (a refused POST is bought again, a failed download is fetched again from the manifest).
    api.connect(max_retries=1)
    sandbox.client.configure(max_side=128, task_delay_s=0.3)
    _inject_faults(sandbox.client)
    prompts = [f"load test image {i}" for i in range(TASKS)]

    def run_one(index: int):
        build = operator_factory(
            model=MODELS[index % len(MODELS)],
            prompt=prompts[index],
            hook_kwargs=fast_backoff(),
            poll_interval=0.2,
        )
        return TaskRunner(build, map_index=index, retries=RETRIES).run()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        runs = list(pool.map(run_one, range(TASKS)))
    elapsed = time.monotonic() - started

    failed = {i: repr(r.error) for i, r in enumerate(runs) if not r.ok}
    assert not failed, failed
    # Every image stored exactly once, under its own task instance's prefix.
    per_task = [image_files(local_prefix(out_dir, "generate", i)) for i in range(TASKS)]
    assert all(len(files) == 1 for files in per_task), [i for i, f in enumerate(per_task) if len(f) != 1]
    assert all(
        Path(runs[i].records[0]["uri"].removeprefix("file://")) == per_task[i][0] for i in range(TASKS)
    )
    # Zero duplicate submissions: one billed POST per task, per prompt.
    billed = billed_per_prompt(sandbox.client)
    assert len(billed_posts(sandbox.client)) == TASKS
    assert sorted(billed) == sorted(prompts) and set(billed.values()) == {1}
    assert len(sandbox.client.tasks()) == sum(
        1 for i in range(TASKS) if MODELS[i % len(MODELS)] == "flux-2-pro"
    )

    logged = sandbox.client.requests()
    faulted = sum(1 for r in logged if r["fault"])
    share = faulted / len(logged)
    assert 0.12 <= share <= 0.3, share  # the faults really were about a fifth of the traffic
    retried_tasks = sum(1 for r in runs if r.tries > 1)
    report.row(
        "load-200",
        area=AREA,
        scenario=f"{TASKS} mapped tasks ({', '.join(MODELS)}), {WORKERS} parallel workers, "
        f"retries={RETRIES}, 1 HTTP retry per call, "
        "faults 429/503 on POST, 500/drop on polls, 502/drop on downloads",
        expected="every image stored exactly once; zero duplicate submissions (billed POSTs == tasks)",
        result=f"{TASKS}/{TASKS} succeeded in {elapsed:.1f} s; {faulted}/{len(logged)} requests faulted "
        f"({share:.0%}); {retried_tasks} task(s) needed an Airflow retry",
        requests=len(logged),
        posts=len(posts(sandbox.client)),
        billed=len(billed_posts(sandbox.client)),
        objects=sum(len(f) for f in per_task),
        duplicates=sum(v - 1 for v in billed.values()),
        lost=TASKS - sum(len(f) for f in per_task),
        faulted=faulted,
        full=full_run(),
    )
