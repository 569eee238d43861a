"""A triggerer SIGKILLed while it holds deferred Flux waits: the other triggerer takes them over.

Flux tasks defer to the triggerers; once every wait is running, the triggerer holding the
most of them is SIGKILLed. The surviving triggerer adopts its triggers when the dead one's
heartbeat goes stale and the waits complete -- each task submitted once. Two tasks never
finish on the sandbox: they must time out at the deadline fixed when they were submitted
(``timeout`` from the original submit, carried in the trigger as a wall-clock time), not a
fresh ``timeout`` counted from the takeover.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from datetime import datetime, timezone

import pytest

from tests.distributed.cluster import TRIGGERERS
from tests.distributed.evidence import DAG_ID_ONCE, Deployment, Run, request
from tests.e2e.harness import wait_for

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]

FLUX = "bfl/flux-2-pro"
# Long enough that every wait is still running when the triggerer dies and is adopted
# (adoption takes the 15 s health-check threshold plus a loop), short enough for CI.
TASK_DELAY_S = 75.0
NEVER_TIMEOUT_S = 110.0
_UNTIL = re.compile(r"Waiting for AIHubMix task \S+ \(model [^)]*\) until (\S+?);")


def waiting_deadlines(run: Run, node: str, map_index: int) -> dict[int, datetime]:
    """``{triggerer job id: deadline it logged}`` for one task's trigger on one triggerer node."""
    found = {}
    for job, text in run.trigger_logs(node, map_index).items():
        match = _UNTIL.search(text)
        if match:
            found[job] = datetime.fromisoformat(match.group(1))
    return found


def logged_at(text: str, needle: str) -> datetime | None:
    """The time of the first JSON log line whose event contains ``needle``."""
    for line in text.splitlines():
        if needle in line:
            with contextlib.suppress(ValueError, KeyError):
                stamp = datetime.fromisoformat(json.loads(line)["timestamp"].replace("Z", "+00:00"))
                return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
    return None


def test_killed_triggerer_hands_its_waits_over_and_deadlines_hold(cluster_ready: Deployment) -> None:
    deployment = cluster_ready
    cluster = deployment.cluster
    deployment.sandbox.client.configure(task_delay_s=TASK_DELAY_S)
    requests = [request(FLUX, i, deferrable=True) for i in range(6)]
    never = {6, 7}
    for index in sorted(never):
        never_request = request(FLUX, index, tokens="sandbox:never", deferrable=True, timeout=NEVER_TIMEOUT_S)
        requests.append(never_request)
    run = deployment.run(requests, dag_id=DAG_ID_ONCE)
    indexes = range(len(requests))

    # Every wait deferred, assigned to a triggerer, and running there (its first log line written).
    def all_waiting() -> bool:
        triggers = run.triggers()
        if sorted(triggers) != list(indexes) or any(t["triggerer"] is None for t in triggers.values()):
            return False
        return all(waiting_deadlines(run, t["triggerer"], i) for i, t in triggers.items())

    wait_for(all_waiting, 300, "every Flux wait to run in a triggerer", interval=1.0)
    holders = run.triggers()
    by_node = {name: [i for i, t in holders.items() if t["triggerer"] == name] for name in TRIGGERERS}
    victim = max(by_node, key=lambda name: len(by_node[name]))
    survivor = next(name for name in TRIGGERERS if name != victim)
    victim_jobs = {t["triggerer_id"] for t in holders.values() if t["triggerer"] == victim}
    assert not [i for i, t in holders.items() if run.task_instances()[i]["state"] != "deferred"]

    killed_at = time.time()
    cluster.kill(victim)  # SIGKILL to its process group: no clean hand-over
    assert run.wait(timeout=420) == "failed", run.observer.task_states  # the never-tasks fail

    tis = run.task_instances()
    states = {i: tis[i]["state"] for i in indexes}
    assert states == {i: "failed" if i in never else "success" for i in indexes}, states
    posts = run.billable_posts()
    assert {i: len(p) for i, p in posts.items()} == dict.fromkeys(indexes, 1)
    for index in indexes:
        if index not in never:
            writes = run.image_writes(index)
            assert len(writes) == 1 and set(writes.values()) == {1}, (index, writes)

    # The victim's waits were adopted by the survivor, which fired their one event.
    for index in by_node[victim]:
        assert set(run.trigger_logs(victim, index)) <= victim_jobs
        assert not any("Trigger fired event" in text for text in run.trigger_logs(victim, index).values())
        adopted = run.trigger_logs(survivor, index)
        assert adopted, f"map_index {index} was not taken over by {survivor}"
        assert sum(text.count("Trigger fired event") for text in adopted.values()) == 1
        assert run.events()[index].count("deferred") == 1, run.events()[index]

    # Deadlines: the same wall-clock deadline before and after the takeover, fixed at submit.
    for index in never:
        manifest = run.manifest(index) or {}
        submitted = datetime.fromisoformat(manifest["remote_tasks"][-1]["submitted_at"])
        deadlines = {
            **waiting_deadlines(run, victim, index),
            **waiting_deadlines(run, survivor, index),
        }
        assert len(set(deadlines.values())) == 1, deadlines
        (deadline,) = set(deadlines.values())
        assert abs((deadline - submitted).total_seconds() - NEVER_TIMEOUT_S) < 5, (submitted, deadline)
        # The survivor timed it out at that deadline -- not at a deadline counted afresh from
        # the moment it adopted the wait, which would be (adopted - submitted) later.
        (adopted_text,) = run.trigger_logs(survivor, index).values()
        adopted = logged_at(adopted_text, "Waiting for AIHubMix task")
        timed_out = logged_at(adopted_text, "was not finished at its deadline")
        assert adopted is not None and timed_out is not None, adopted_text[-2000:]
        assert adopted.timestamp() > killed_at
        assert deadline <= timed_out < deadline + (adopted - submitted), (deadline, timed_out, adopted)

    row = run.figures(
        "triggerer SIGKILLed holding deferred waits",
        kills=f"1 triggerer ({len(by_node[victim])} waits)",
        notes=f"2 tasks time out at the original deadline ({NEVER_TIMEOUT_S:.0f} s from submit), by design",
    )
    assert (row.duplicate_posts, row.images_lost) == (0, 0)
