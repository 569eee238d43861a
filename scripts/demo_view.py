"""What the demo shows a person: one line per finished task, then a summary.

A task listener (Airflow's listener API, called in-process by ``dag.test()``) times each
task instance and, when it ends, reads the manifest beside its images -- the record of
what was bought: model, images, cost. Lines go to the terminal the demo started in, while
Airflow's own log goes to a file.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from airflow_provider_aihubmix.gallery.manifests import task_cost
from airflow_provider_aihubmix.storage import manifest_key, task_prefix

try:  # the Task SDK's listener manager (Airflow >= 3.2) runs the hooks dag.test() calls
    from airflow.sdk.listener import get_listener_manager
except ImportError:  # Airflow 3.1
    from airflow.listeners.listener import get_listener_manager  # type: ignore[no-redef]
from airflow.listeners import hookimpl


@dataclass
class TaskLine:
    task: str
    state: str
    seconds: float
    model: str | None = None
    images: int | None = None
    cost_usd: float | None = None
    has_manifest: bool = False


@dataclass(eq=False)  # hashable: the listener manager keeps it in a set
class Progress:
    """Listener: prints a line per finished task instance and keeps them for the summary."""

    out: TextIO
    images_dir: Path
    started: dict[tuple[str, int], float] = field(default_factory=dict)
    lines: list[TaskLine] = field(default_factory=list)

    def register(self) -> None:
        get_listener_manager().add_listener(self)

    def unregister(self) -> None:
        manager = get_listener_manager()
        if hasattr(manager, "clear"):
            manager.clear()

    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        self.started[(task_instance.task_id, _map_index(task_instance))] = time.monotonic()

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        self.finished(task_instance, "success")

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any = None) -> None:
        self.finished(task_instance, "failed")

    def finished(self, ti: Any, state: str) -> None:
        index = _map_index(ti)
        began = self.started.pop((ti.task_id, index), time.monotonic())
        line = TaskLine(
            task=ti.task_id if index < 0 else f"{ti.task_id}[{index}]",
            state=state,
            seconds=time.monotonic() - began,
        )
        manifest = self.manifest(ti.dag_id, ti.run_id, ti.task_id, index)
        if manifest is not None:
            line.has_manifest = True
            line.model = manifest.get("model")
            line.images = len(manifest.get("records") or [])
            line.cost_usd = task_cost(manifest)
        self.lines.append(line)
        print(format_line(line), file=self.out, flush=True)

    def manifest(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> dict[str, Any] | None:
        path = self.images_dir / manifest_key(task_prefix(dag_id, run_id, task_id, map_index))
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return None


def _map_index(ti: Any) -> int:
    index = getattr(ti, "map_index", -1)
    return index if isinstance(index, int) else -1


def _usd(value: float | None) -> str:
    return "cost unknown" if value is None else f"${value:.4f}"


def format_line(line: TaskLine) -> str:
    mark = "✓" if line.state == "success" else "✗"
    head = f"  {mark} {line.task:<18}"
    if not line.has_manifest:
        return f"{head} {'':<46} {line.seconds:6.1f} s"
    images = f"{line.images} image" + ("s" if line.images != 1 else "")
    return f"{head} {line.model or '?':<36} {images:<9} {line.seconds:6.1f} s   {_usd(line.cost_usd)}"


def summary(lines: list[TaskLine]) -> str:
    """``9 images from 9 generation tasks · 3 models · cost $0.06 (+6 task(s) without a price)``."""
    bought = [line for line in lines if line.has_manifest]
    images = sum(line.images or 0 for line in bought)
    models = {line.model for line in bought if line.model}
    known = [line.cost_usd for line in bought if line.cost_usd is not None]
    unknown = len(bought) - len(known)
    cost = f"cost ${sum(known):.4f}" if known else "cost unknown"
    if known and unknown:
        cost += f" (+{unknown} task(s) without a published price)"
    failed = [line.task for line in lines if line.state != "success"]
    text = f"{images} images from {len(bought)} generation tasks · {len(models)} models · {cost}"
    return text + (f" · failed: {', '.join(failed)}" if failed else "")
