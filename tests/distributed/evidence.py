"""What the distributed scenarios assert from: the metadata DB, S3 and the sandbox request log.

Each mapped request carries its map index in its prompt (``... #7``), so a POST in the
sandbox's log is tied to the task instance that sent it. The bucket is versioned, so the
number of times an image key was written is countable ("stored once"). Figures of every
scenario go into :class:`ScenarioFigures`, printed at the end of the session and copied
into ``docs/DEPLOYMENT.md``.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_provider_aihubmix.sandbox import SandboxServer
from airflow_provider_aihubmix.storage.keys import MANIFEST_NAME, task_prefix
from tests.distributed.cluster import CeleryCluster
from tests.e2e.harness import RunObserver
from tests.fixtures.s3 import OutageProxy

DAG_ID = "distributed_generate"
DAG_ID_ONCE = "distributed_generate_once"
TASK_ID = "generate"
_TAG = re.compile(r"#(\d+)$")
_BILLABLE = re.compile(r"/predictions$|/images/generations$")


def request(model: str, index: int, *, tokens: str = "", **kwargs: Any) -> dict[str, Any]:
    """One mapped request whose prompt carries its map index (and any sandbox prompt tokens)."""
    prompt = f"a lighthouse at dawn, poster {index} {tokens} #{index}".replace("  ", " ")
    return {"model": model, "prompt": prompt, **kwargs}


@dataclass
class ScenarioFigures:
    """One row of the table in docs/DEPLOYMENT.md."""

    scenario: str
    tasks: int
    kills: str
    succeeded: int
    images_stored: int
    billable_posts: int
    duplicate_posts: int
    images_lost: int
    wall_s: float
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def table(rows: Sequence[ScenarioFigures]) -> str:
        head = (
            "| scenario | tasks | kills | succeeded | images stored | billable POSTs | duplicate POSTs "
            "| images lost | wall time | notes |"
        )
        lines = [head, "|" + "---|" * 10]
        for r in rows:
            lines.append(
                f"| {r.scenario} | {r.tasks} | {r.kills} | {r.succeeded} | {r.images_stored} | "
                f"{r.billable_posts} | {r.duplicate_posts} | {r.images_lost} | {r.wall_s:.0f} s | {r.notes} |"
            )
        return "\n".join(lines)


@dataclass
class Run:
    """One triggered run of the scenario DAG and the evidence about it."""

    deployment: Deployment
    dag_id: str
    run_id: str
    requests: list[dict[str, Any]]
    began: float
    observer: RunObserver
    wall_s: float | None = None

    @property
    def cluster(self) -> CeleryCluster:
        return self.deployment.cluster

    def wait(self, timeout: float) -> str:
        state = self.observer.wait_for_finish(timeout)
        self.wall_s = time.monotonic() - self.began
        return state

    # -- metadata DB ----------------------------------------------------------------------
    def task_instances(self) -> dict[int, dict[str, Any]]:
        """``{map_index: task_instance row}`` of the mapped generation task."""
        rows = self.cluster.query_db(
            "SELECT map_index, state, try_number, hostname, start_date, end_date FROM task_instance "
            "WHERE dag_id = %s AND run_id = %s AND task_id = %s",
            (self.dag_id, self.run_id, TASK_ID),
        )
        return {int(row["map_index"]): row for row in rows}

    def tries(self) -> dict[int, list[dict[str, Any]]]:
        """``{map_index: [one row per try, oldest first]}``: earlier tries from the history table."""
        history = self.cluster.query_db(
            "SELECT map_index, try_number, state, hostname FROM task_instance_history "
            "WHERE dag_id = %s AND run_id = %s AND task_id = %s",
            (self.dag_id, self.run_id, TASK_ID),
        )
        found: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in [*history, *self.task_instances().values()]:
            found[int(row["map_index"])].append(row)
        for rows in found.values():
            rows.sort(key=lambda row: int(row["try_number"]))
        return dict(found)

    def events(self) -> dict[int, list[str]]:
        """``{map_index: audit-log events in order}`` (running, deferred, failed...)."""
        rows = self.cluster.query_db(
            "SELECT map_index, event FROM log WHERE dag_id = %s AND run_id = %s AND task_id = %s ORDER BY id",
            (self.dag_id, self.run_id, TASK_ID),
        )
        found: dict[int, list[str]] = defaultdict(list)
        for row in rows:
            found[int(row["map_index"])].append(str(row["event"]))
        return dict(found)

    def triggers(self) -> dict[int, dict[str, Any]]:
        """``{map_index: {state, trigger_id, triggerer_id, triggerer}}`` of the deferred tasks."""
        rows = self.cluster.query_db(
            "SELECT ti.map_index, ti.state, t.id AS trigger_id, t.triggerer_id, j.hostname AS triggerer "
            "FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
            "LEFT JOIN job j ON j.id = t.triggerer_id "
            "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = %s",
            (self.dag_id, self.run_id, TASK_ID),
        )
        return {int(row["map_index"]): row for row in rows}

    def trigger_logs(self, node: str, map_index: int) -> dict[int, str]:
        """``{triggerer job id: text}`` of the trigger logs one triggerer node wrote for a task."""
        folder = self.cluster.node_logs(node) / f"dag_id={self.dag_id}" / f"run_id={self.run_id}"
        found: dict[int, str] = {}
        for path in (folder / f"task_id={TASK_ID}" / f"map_index={map_index}").glob("*.log.trigger.*.log"):
            found[int(path.name.rsplit(".", 2)[-2])] = path.read_text(errors="replace")
        return found

    # -- sandbox --------------------------------------------------------------------------
    def billable_posts(self) -> dict[int, list[dict[str, Any]]]:
        """``{map_index: [billed POST records]}`` from the sandbox's request log."""
        found: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for record in self.deployment.sandbox.client.requests(host="api"):
            if record["method"] != "POST" or not _BILLABLE.search(record["path"]) or not record["billed"]:
                continue
            prompt = str((record.get("json") or {}).get("input", {}).get("prompt", ""))
            match = _TAG.search(prompt)
            if match:
                found[int(match.group(1))].append(record)
        return dict(found)

    # -- S3 -------------------------------------------------------------------------------
    def prefix(self, map_index: int) -> str:
        return f"images/{task_prefix(self.dag_id, self.run_id, TASK_ID, map_index)}/"

    def image_writes(self, map_index: int) -> Counter[str]:
        """``{image key: how many versions were written}`` for one task instance (images only)."""
        s3 = self.deployment.s3
        response = s3.list_object_versions(Bucket=self.deployment.bucket, Prefix=self.prefix(map_index))
        writes: Counter[str] = Counter()
        for version in response.get("Versions", []):
            # Only the images: the manifest (and a deferred request's stored body) change by design,
            # and the thumbnail beside each image is not what was bought.
            name = version["Key"].rsplit("/", 1)[-1]
            if name.startswith("image-") and not name.endswith(".thumb.webp"):
                writes[version["Key"]] += 1
        return writes

    def manifest(self, map_index: int) -> dict[str, Any] | None:
        s3 = self.deployment.s3
        key = self.prefix(map_index) + MANIFEST_NAME
        try:
            body = s3.get_object(Bucket=self.deployment.bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        return dict(json.loads(body))

    def images_lost(self) -> int:
        """Images the API answered with (recorded in a manifest) that are not in S3."""
        lost = 0
        for index in range(len(self.requests)):
            manifest = self.manifest(index) or {}
            stored = self.image_writes(index)
            for item in manifest.get("received") or []:
                name = f"image-{int(item['index']):03d}."
                if not any(name in key for key in stored):
                    lost += 1
        return lost

    def figures(self, scenario: str, kills: str, notes: str = "") -> ScenarioFigures:
        tis = self.task_instances()
        posts = self.billable_posts()
        stored = sum(len(self.image_writes(i)) for i in range(len(self.requests)))
        row = ScenarioFigures(
            scenario=scenario,
            tasks=len(self.requests),
            kills=kills,
            succeeded=sum(1 for ti in tis.values() if ti["state"] == "success"),
            images_stored=stored,
            billable_posts=sum(len(p) for p in posts.values()),
            duplicate_posts=sum(len(p) - 1 for p in posts.values() if len(p) > 1),
            images_lost=self.images_lost(),
            wall_s=self.wall_s if self.wall_s is not None else time.monotonic() - self.began,
            notes=notes,
        )
        self.deployment.figures.append(row)
        print(ScenarioFigures.table([row]))
        return row


@dataclass
class Deployment:
    """The running cluster and the real parts around it (see ``conftest.py``)."""

    cluster: CeleryCluster
    sandbox: SandboxServer
    proxy: OutageProxy
    bucket: str
    s3: Any
    figures: list[ScenarioFigures] = field(default_factory=list)

    def run(
        self, requests: list[dict[str, Any]], dag_id: str = DAG_ID, conf: dict[str, Any] | None = None
    ) -> Run:
        """Trigger a scenario DAG with these mapped requests (and ``conf``: params such as
        ``max_cost_usd``); return its :class:`Run`."""
        began = time.monotonic()
        run_id = self.cluster.trigger_dag(dag_id, conf={"requests": requests, **(conf or {})}, timeout=180)
        observer = self.cluster.observe(dag_id, run_id, interval=1.0)
        return Run(self, dag_id, run_id, requests, began, observer)
