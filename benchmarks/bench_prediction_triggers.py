"""Benchmark 7: 1,000 synchronous generations sent at once from one triggerer event loop.

Each of ``--n`` deferrable gpt-image tasks is prepared as a worker does it (validated, request
stored beside the manifest, ``deferred``; a child process, so its garbage is not counted), and
the serialized trigger kwargs are handed to a fresh "triggerer" child. That child re-creates
every :class:`AIHubMixPredictionTrigger` from its kwargs, as a triggerer does from its rows, and
runs all of them concurrently on one event loop against the sandbox (its own process), which
holds every answer ``--latency`` seconds and answers with one ~1 MB base64 PNG each.

Measured in the triggerer child: event-loop lag (a 10 ms ticker, from the first send to the
last event), peak RSS growth over the loaded-and-ready baseline (sampled every 50 ms), and that
growth per request; afterwards the parent checks that every manifest is ``received`` and every
stored image hashes to what the manifest records.

    uv run --no-sync python benchmarks/bench_prediction_triggers.py [--n 1000] [--latency 30]

``--graceful-stop``: the triggers run under Airflow's own ``TriggerRunner`` main-loop logic
(``tests.triggerer_fake``); once every request is on the wire the runner gets its stop signal,
as a triggerer's runner does on SIGTERM, and the benchmark measures the time from that signal
to the end of ``asyncio.run`` (every request kept, stored and recorded ``received``).
The in-flight cap is lifted to ``--n`` for both modes (``[aihubmix] triggerer_max_requests_in_flight``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib as common

MODEL = "gpt-image-1-mini"
PATH = r"^/v1/models/openai/gpt-image-1-mini/predictions$"
ANSWER_IMAGE_BYTES = 786_432  # 1 MiB of base64 in the answer
LAG_TARGET_MS = 100.0


def _quiet_logging() -> None:
    # Every log line is formatted and written, as in a triggerer, but to /dev/null.
    handler = logging.FileHandler(os.devnull)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def prepare_main(opts: argparse.Namespace) -> None:
    """The workers' part: validate, store each request and defer; emit the trigger rows."""
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider_aihubmix.operators.images import AIHubMixOpenAIImageOperator

    sys.path.insert(0, common.ROOT)
    from tests.task_fakes import FakeTaskInstance, context_for

    _quiet_logging()
    rows = []
    for index in range(opts.n + 1):  # one more, for the triggerer's warm-up
        operator = AIHubMixOpenAIImageOperator(
            task_id="banner",
            model=MODEL,
            prompt="a lighthouse at dusk, poster",
            output_format="png",
            deferrable=True,
            timeout=3600,
            output_uri=opts.output_uri,
        )
        ti = FakeTaskInstance(dag_id="bench_predictions", task_id="banner", map_index=index)
        try:
            operator.execute(context_for(ti))
        except TaskDeferred as deferred:
            rows.append(deferred.trigger.serialize())
        else:
            raise SystemExit("the operator did not defer")
    common.emit(rows)


async def _run_all(rows: list[Any]) -> dict[str, Any]:
    from airflow.sdk.module_loading import import_string

    from airflow_provider_aihubmix.http.clients import aclose_shared_clients

    triggers = [import_string(classpath)(**kwargs) for classpath, kwargs in rows]
    # A triggerer that has run one such trigger before: imports and the TLS context are paid.
    warm_up, triggers = triggers[0], triggers[1:]
    async for _ in warm_up.run():
        pass
    baseline = common.rss_bytes()
    peak = baseline
    lags: list[float] = []
    running = True

    async def ticker() -> None:
        tick = 0.01
        while running:
            start = time.perf_counter()
            await asyncio.sleep(tick)
            lags.append(time.perf_counter() - start - tick)

    async def sampler() -> None:
        nonlocal peak
        while running:
            peak = max(peak, common.rss_bytes())
            await asyncio.sleep(0.05)

    async def one(trigger: Any) -> dict[str, Any]:
        (payload,) = [event.payload async for event in trigger.run()]
        return payload

    helpers = [asyncio.create_task(ticker()), asyncio.create_task(sampler())]
    began, cpu0 = time.perf_counter(), time.process_time()
    events = await asyncio.gather(*(one(t) for t in triggers))
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu0
    running = False
    await asyncio.gather(*helpers)
    await aclose_shared_clients()
    statuses: dict[str, int] = {}
    for event in events:
        statuses[event["status"]] = statuses.get(event["status"], 0) + 1
    return {
        "n": len(triggers),
        "statuses": statuses,
        "images": sum(event["images"] for event in events),
        "wall_s": wall,
        "cpu_s": cpu,
        "lag_p50_ms": 1000 * common.percentile(lags, 50),
        "lag_p99_ms": 1000 * common.percentile(lags, 99),
        "lag_max_ms": 1000 * max(lags),
        "ticks": len(lags),
        "rss_baseline_mb": baseline / 2**20,
        "rss_peak_growth_mb": (peak - baseline) / 2**20,
        "per_request_kib": (peak - baseline) / len(triggers) / 1024,
        "event_bytes_max": max(len(json.dumps(event)) for event in events),
        "row_bytes_max": max(len(json.dumps(row)) for row in rows),
    }


def graceful_stop_main(opts: argparse.Namespace) -> None:
    """Send every request, stop the runner once all are out, time the stop until the loop ends."""
    _quiet_logging()
    from airflow.sdk.module_loading import import_string

    from airflow_provider_aihubmix.http.clients import aclose_shared_clients
    from airflow_provider_aihubmix.sandbox.client import SandboxClient

    sys.path.insert(0, common.ROOT)
    from tests.triggerer_fake import TriggerRunner, shutdown

    with open(opts.rows) as handle:
        rows = json.load(handle)
    triggers = [import_string(classpath)(**kwargs) for classpath, kwargs in rows[1:]]  # no warm-up
    sandbox = SandboxClient(opts.sandbox, timeout=120)
    stopped: list[float] = []
    held: list[int] = []

    async def all_triggers() -> None:
        async def one(trigger: Any) -> None:
            async for _ in trigger.run():
                pass

        try:
            await asyncio.gather(*(one(t) for t in triggers))
        finally:
            await aclose_shared_clients()

    from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook

    sent = [0]
    send = AIHubMixHook.asend_prediction

    async def counted(self: AIHubMixHook, *args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return await send(self, *args, **kwargs)

    AIHubMixHook.asend_prediction = counted  # type: ignore[method-assign]

    async def stop_when_all_sent(runner: TriggerRunner) -> None:
        while sent[0] < len(triggers):
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # the last POSTs leave
        out = await asyncio.to_thread(sandbox.requests, "api", PATH)
        held.append(sum(1 for r in out if r["status"] is None))
        stopped.append(time.perf_counter())
        shutdown(runner)

    asyncio.run(TriggerRunner(all_triggers, stop_when_all_sent).arun())
    common.emit(
        {"n": len(triggers), "in_flight": held[0], "stop_to_exit_s": time.perf_counter() - stopped[0]}
    )


def triggerer_main(opts: argparse.Namespace) -> None:
    _quiet_logging()
    # Imported before the baseline, as in a triggerer that already runs other triggers.
    import airflow_provider_aihubmix.triggers.aihubmix  # noqa: F401

    with open(opts.rows) as handle:
        rows = json.load(handle)
    common.emit(asyncio.run(_run_all(rows)))


def verify(output_dir: Path) -> tuple[int, int]:
    """(manifests received, images whose stored bytes hash to the manifest's sha256), warm-up excluded."""
    received = verified = 0
    for path in output_dir.rglob("manifest.json"):
        if "map_index=0/" in path.as_posix():
            continue  # the warm-up
        manifest = json.loads(path.read_text())
        received += manifest["status"] == "received"
        for record in manifest["records"]:
            stored = Path(record["uri"][len("file://") :])
            verified += hashlib.sha256(stored.read_bytes()).hexdigest() == record["sha256"]
    return received, verified


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=30.0, help="seconds the sandbox holds each answer")
    parser.add_argument("--child", choices=("prepare", "triggerer", "graceful-stop"))
    parser.add_argument("--graceful-stop", action="store_true", help="stop the runner with all requests out")
    parser.add_argument("--sandbox")
    parser.add_argument("--output-uri")
    parser.add_argument("--rows")
    opts = parser.parse_args()
    if opts.child == "prepare":
        prepare_main(opts)
        return 0
    if opts.child == "triggerer":
        triggerer_main(opts)
        return 0
    if opts.child == "graceful-stop":
        graceful_stop_main(opts)
        return 0

    common.print_machine()
    with (
        tempfile.TemporaryDirectory(prefix="bench-pred-out-") as out,
        common.sandbox_process() as sandbox,
    ):
        client = sandbox.client()
        client.configure(inline_image_bytes=ANSWER_IMAGE_BYTES)
        env = {
            "AIRFLOW_CONN_AIHUBMIX_DEFAULT": common.aihubmix_conn_json(sandbox.base_url),
            "AIRFLOW__AIHUBMIX__TRIGGERER_MAX_REQUESTS_IN_FLIGHT": str(opts.n),
        }
        output_uri = Path(out).as_uri()
        print(f"preparing {opts.n} deferred gpt-image tasks (the workers' part)", flush=True)
        args = ["--child", "prepare", "--n", str(opts.n), "--output-uri", output_uri]
        rows = common.run_child("bench_prediction_triggers.py", args, env=env)
        client.clear_requests()
        # The triggerer's warm-up run (not measured) is answered at once (rules match in order).
        if not opts.graceful_stop:
            client.inject(kind="slow", delay_s=0, path=PATH, count=1)
        client.inject(kind="slow", delay_s=opts.latency, path=PATH)
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="bench-rows-") as handle:
            json.dump(rows, handle)
            handle.flush()
            if opts.graceful_stop:
                print(
                    f"{opts.n} triggers, answers held {opts.latency:g} s; stop once all are out", flush=True
                )
                child = ["--child", "graceful-stop", "--rows", handle.name, "--sandbox", sandbox.base_url]
                stop = common.run_child("bench_prediction_triggers.py", child, env=env)
            else:
                print(
                    f"running {opts.n} triggers in one event loop; answers held {opts.latency:g} s",
                    flush=True,
                )
                result = common.run_child(
                    "bench_prediction_triggers.py", ["--child", "triggerer", "--rows", handle.name], env=env
                )
        posts = sum(1 for r in client.requests(host="api", path=PATH) if r["method"] == "POST") - 1
        received, verified = verify(Path(out))
        client.close()

    if opts.graceful_stop:
        posts += 1  # no warm-up run in this mode
        print("\nresults")
        seconds = stop["stop_to_exit_s"]
        flying = f"{stop['in_flight']} of {stop['n']}"
        print(f"  graceful stop, {flying} requests in flight: loop ended {seconds:.1f} s")
        print(f"  after the stop signal (answers held {opts.latency:g} s); {received} manifests received,")
        print(f"  {verified} images hash to their record, POSTs {posts}")
        return 0 if received == opts.n and verified == opts.n and posts == opts.n else 1

    print(json.dumps(result, indent=1))
    print("\nresults")
    print(f"  {result['n']} triggers: events {result['statuses']}, {result['images']} images, POSTs {posts}")
    print(f"  stored and verified: {received} manifests received, {verified} images hash to their record")
    print(f"  wall {result['wall_s']:.1f} s (latency {opts.latency:g} s), CPU {result['cpu_s']:.1f} s")
    lag_ok = result["lag_p99_ms"] < LAG_TARGET_MS
    print(
        f"  event-loop lag p50 {result['lag_p50_ms']:.1f} ms, p99 {result['lag_p99_ms']:.1f} ms, "
        f"max {result['lag_max_ms']:.1f} ms; target p99 < {LAG_TARGET_MS:.0f} ms: {common.verdict(lag_ok)}"
    )
    print(
        f"  peak RSS growth {result['rss_peak_growth_mb']:.1f} MiB over {result['rss_baseline_mb']:.1f} MiB; "
        f"{result['per_request_kib']:.0f} KiB per request in flight"
    )
    print(f"  largest trigger row {result['row_bytes_max']} B, largest event {result['event_bytes_max']} B")
    all_stored = received == opts.n and verified == opts.n and posts == opts.n
    return 0 if lag_ok and all_stored else 1


if __name__ == "__main__":
    sys.exit(main())
