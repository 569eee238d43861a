"""Benchmark 1: many AIHubMixTaskTriggers in one event loop vs the http provider's triggers.

What a triggerer pays to wait for N image tasks, per poll and per trigger, compared with
waiting on the same endpoint through ``apache-airflow-providers-http``:

* ``ours``: ``AIHubMixTaskTrigger`` polling ``GET /v1/tasks/<id>`` of tasks that never end;
* ``sensor``: ``HttpSensorTrigger`` on ``/v1/tasks/missing-<i>``, which the sandbox answers 404
  (a fault rule) because that trigger keeps polling only while it sees 404;
* ``httptrigger``: ``HttpTrigger.run()`` once per poll on the same ``/v1/tasks/<id>``, the body
  decoded and its status checked (what re-deferring an ``HttpOperator`` per poll amounts to).

The sandbox runs as its own process (the CLI), so only the triggers' process is measured.
Each measurement is a fresh child process; implementations are interleaved per repetition.
CPU is ``time.process_time()`` of the child over a window after a warm-up, per 1,000 polls.
Memory is what N more triggers add (tracemalloc, and RSS) divided by N, once all are polling.
The capacity run starts 5,000 triggers at a fixed 5 s interval (starts spread over one
interval, as a triggerer picks them up) and measures event-loop lag with a 50 ms ticker.

    uv run --no-sync python benchmarks/bench_triggers.py [--reps 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import logging
import os
import random
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib as common

IMPLS = ("ours", "sensor", "httptrigger", "rawhttpx")
LABELS = {
    "ours": "AIHubMixTaskTrigger",
    "sensor": "HttpSensorTrigger",
    "httptrigger": "HttpTrigger per poll",
    "rawhttpx": "raw httpx loop (floor)",
}
TERMINAL = {"ready", "succeeded", "completed", "error", "failed"}
FLUX_PATH = "/v1/models/bfl/flux-2-pro/predictions"


# --------------------------------------------------------------------------------------------
# child side: triggers in one event loop
# --------------------------------------------------------------------------------------------


class Counter:
    polls = 0
    errors = 0


def _quiet_logging() -> None:
    # Every per-poll log line is formatted and written, as in a triggerer, but to /dev/null.
    handler = logging.FileHandler(os.devnull)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _count_ours() -> None:
    from airflow_provider_aihubmix.hooks.aihubmix import AIHubMixHook

    original = AIHubMixHook.aget_task

    async def counted(self: AIHubMixHook, task_id: str) -> Any:
        try:
            state = await original(self, task_id)
        except Exception:
            Counter.errors += 1
            raise
        Counter.polls += 1
        return state

    AIHubMixHook.aget_task = counted  # type: ignore[method-assign]


def _count_http() -> None:
    from airflow.providers.http.hooks.http import HttpAsyncHook

    original = HttpAsyncHook.run

    async def counted(self: HttpAsyncHook, *args: Any, **kwargs: Any) -> Any:
        Counter.polls += 1  # a 404 raises, and is the poll the sensor wants
        return await original(self, *args, **kwargs)

    HttpAsyncHook.run = counted  # type: ignore[method-assign]


def _factory(
    impl: str, task_ids: list[str], interval: float, fixed: bool = True
) -> Callable[[int], Awaitable[None]]:
    """An ``async (i) -> None`` running trigger ``i`` the way the triggerer consumes it.

    ``fixed`` pins our trigger's schedule to ``interval`` (no back-off), the rate the others poll at.
    """
    if impl == "ours":
        from airflow_provider_aihubmix.engine.polling import PollSchedule
        from airflow_provider_aihubmix.triggers.aihubmix import AIHubMixTaskTrigger

        _count_ours()

        async def run_ours(i: int) -> None:
            trigger = AIHubMixTaskTrigger(
                task_ids[i % len(task_ids)], end_time=time.time() + 86400, poll_interval=interval
            )
            if fixed:
                # No back-off: the harshest steady load, and the same rate as the other implementations.
                trigger.schedule = PollSchedule(interval, max_interval=interval)
            async for event in trigger.run():
                raise RuntimeError(f"trigger {i} fired: {event.payload}")

        return run_ours

    if impl == "sensor":
        from airflow.providers.http.triggers.http import HttpSensorTrigger

        _count_http()

        async def run_sensor(i: int) -> None:
            trigger = HttpSensorTrigger(
                endpoint=f"/v1/tasks/missing-{i}",
                http_conn_id="http_bench",
                method="GET",
                poke_interval=interval,
            )
            async for event in trigger.run():
                raise RuntimeError(f"trigger {i} fired: {event.payload}")

        return run_sensor

    if impl == "rawhttpx":
        import httpx

        conn = json.loads(os.environ["AIRFLOW_CONN_AIHUBMIX_DEFAULT"])
        client = httpx.AsyncClient(
            base_url=conn["host"], headers={"Authorization": f"Bearer {conn['password']}"}, timeout=30
        )

        # Without it httpcore's pool stalls under a burst exactly as ours did (see AIHubMixHook._asend).
        gate = asyncio.Semaphore(20)

        async def run_raw(i: int) -> None:
            path = f"/v1/tasks/{task_ids[i % len(task_ids)]}"
            while True:
                try:
                    async with gate:
                        response = await client.get(path)
                    response.raise_for_status()
                    status = str(response.json().get("status", "")).lower()
                except httpx.HTTPError:
                    Counter.errors += 1
                else:
                    Counter.polls += 1
                    if status in TERMINAL:
                        raise RuntimeError(f"task {path} ended")
                await asyncio.sleep(interval * random.uniform(0.9, 1.1))

        return run_raw

    from airflow.providers.http.triggers.http import HttpTrigger

    async def run_httptrigger(i: int) -> None:
        trigger = HttpTrigger(
            http_conn_id="http_bench", method="GET", endpoint=f"/v1/tasks/{task_ids[i % len(task_ids)]}"
        )
        while True:
            event = await anext(aiter(trigger.run()))
            payload = event.payload
            if payload.get("status") != "success":
                Counter.errors += 1
            else:
                Counter.polls += 1
                body = json.loads(base64.b64decode(payload["response"]["content"]))
                if str(body.get("status", "")).lower() in TERMINAL:
                    raise RuntimeError(f"task {body.get('id')} ended")
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))

    return run_httptrigger


async def _start(run: Callable[[int], Awaitable[None]], n: int, spread: float) -> list[asyncio.Task[None]]:
    """Start ``n`` triggers, their first polls spread evenly over ``spread`` seconds."""

    async def delayed(i: int) -> None:
        await asyncio.sleep(spread * i / n)
        await run(i)

    return [asyncio.create_task(delayed(i)) for i in range(n)]


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    fired = [r for r in results if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError)]
    if fired:
        raise RuntimeError(f"{len(fired)} triggers ended early, e.g. {fired[0]!r}")


async def _child_cpu(
    impl: str, task_ids: list[str], n: int, interval: float, warmup: float, seconds: float
) -> dict[str, Any]:
    run = _factory(impl, task_ids, interval)
    tasks = await _start(run, n, interval)
    await asyncio.sleep(warmup)
    polls0, cpu0, wall0 = Counter.polls, time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    polls1, cpu1, wall1 = Counter.polls, time.process_time(), time.perf_counter()
    await _stop(tasks)
    polls = polls1 - polls0
    return {
        "polls": polls,
        "errors": Counter.errors,
        "polls_per_s": polls / (wall1 - wall0),
        "cpu_ms_per_1000": 1000 * 1000 * (cpu1 - cpu0) / max(polls, 1),
    }


async def _child_mem(impl: str, task_ids: list[str], n: int, interval: float) -> dict[str, Any]:
    run = _factory(impl, task_ids, interval)
    # Warm up on one trigger: imports, the connection read, the shared pool and its first socket.
    warm = await _start(run, 1, 0)
    while Counter.polls < 2:
        await asyncio.sleep(0.05)
    await _stop(warm)
    gc.collect()
    tracemalloc.start()
    traced0 = tracemalloc.get_traced_memory()[0]
    rss0 = common.rss_bytes()
    polls0 = Counter.polls
    tasks = await _start(run, n, interval)
    # Every trigger has started and polled at least twice.
    deadline = time.monotonic() + 30 * interval + 60
    while Counter.polls - polls0 < 2 * n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {Counter.polls - polls0} polls from {n} triggers")
        await asyncio.sleep(0.1)
    await asyncio.sleep(interval)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - traced0
    rss = common.rss_bytes() - rss0
    tracemalloc.stop()
    await _stop(tasks)
    return {
        "traced_bytes_per_trigger": traced / n,
        "rss_bytes_per_trigger": rss / n,
        "errors": Counter.errors,
    }


async def _child_lag(
    impl: str, task_ids: list[str], n: int, interval: float, seconds: float, fixed: bool
) -> dict[str, Any]:
    run = _factory(impl, task_ids, interval, fixed)
    tick = 0.05
    lags: list[float] = []
    measuring = False

    async def ticker() -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(tick)
            if measuring:
                lags.append(time.perf_counter() - start - tick)

    ticking = asyncio.create_task(ticker())
    tasks = await _start(run, n, interval)
    await asyncio.sleep(interval + 2)  # every trigger started and polled once
    measuring = True
    polls0, cpu0, wall0 = Counter.polls, time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    polls1, cpu1, wall1 = Counter.polls, time.process_time(), time.perf_counter()
    measuring = False
    ticking.cancel()
    alive = sum(not t.done() for t in tasks)
    return {
        "alive": alive,
        "polls_per_s": (polls1 - polls0) / (wall1 - wall0),
        "errors": Counter.errors,
        "cpu_share": (cpu1 - cpu0) / (wall1 - wall0),
        "lag_p50_ms": 1000 * common.percentile(lags, 50),
        "lag_p99_ms": 1000 * common.percentile(lags, 99),
        "lag_max_ms": 1000 * max(lags),
        "ticks": len(lags),
    }


def child_main(opts: argparse.Namespace) -> None:
    _quiet_logging()
    task_ids = os.environ["BENCH_TASK_IDS"].split(",")
    result: dict[str, Any] = {}
    if opts.child == "cpu":
        result = asyncio.run(
            _child_cpu(opts.impl, task_ids, opts.n, opts.interval, opts.warmup, opts.seconds)
        )
    elif opts.child == "mem":
        result = asyncio.run(_child_mem(opts.impl, task_ids, opts.n, opts.interval))
    else:

        async def lag_then_exit() -> None:
            common.emit(
                await _child_lag(opts.impl, task_ids, opts.n, opts.interval, opts.seconds, opts.fixed)
            )
            # Tearing thousands of in-flight requests down costs more than the run, which is over.
            os._exit(0)

        asyncio.run(lag_then_exit())
    common.emit(result)


# --------------------------------------------------------------------------------------------
# parent side
# --------------------------------------------------------------------------------------------


def _prepare(sandbox: common.Sandbox, tasks: int) -> dict[str, str]:
    import httpx

    with httpx.Client(
        base_url=sandbox.base_url, headers={"Authorization": f"Bearer {common.API_KEY}"}
    ) as http:
        ids = []
        for i in range(tasks):
            answer = http.post(FLUX_PATH, json={"input": {"prompt": f"bench {i}", "seed": i}})
            answer.raise_for_status()
            ids.append(answer.json()["output"][0]["taskId"])
    with sandbox.client() as control:
        # HttpSensorTrigger polls only while it gets 404.
        control.inject(kind="status", status=404, path="^/v1/tasks/missing-", host="api")
    http_conn = json.dumps(
        {
            "conn_type": "http",
            "host": sandbox.base_url,
            "extra": {"Authorization": f"Bearer {common.API_KEY}"},
        }
    )
    return {
        "AIRFLOW_CONN_AIHUBMIX_DEFAULT": common.aihubmix_conn_json(sandbox.base_url),
        "AIRFLOW_CONN_HTTP_BENCH": http_conn,
        "BENCH_TASK_IDS": ",".join(ids),
    }


def _child(env: dict[str, str], *args: Any) -> dict[str, Any]:
    result: dict[str, Any] = common.run_child("bench_triggers.py", [str(a) for a in args], env=env)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions per implementation")
    parser.add_argument("--n", type=int, default=200, help="triggers in the CPU runs")
    parser.add_argument("--interval", type=float, default=0.5, help="poll interval of the CPU runs")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured window of a CPU run")
    parser.add_argument("--mem-n", type=int, default=500, help="triggers in the memory runs")
    parser.add_argument(
        "--mem-interval",
        type=float,
        default=1.0,
        help="poll interval of the memory runs (5: every trigger asleep between polls, none queued)",
    )
    parser.add_argument("--lag-n", type=int, default=5000)
    parser.add_argument("--lag-interval", type=float, default=5.0)
    parser.add_argument("--lag-seconds", type=float, default=30.0)
    parser.add_argument("--lag-reps", type=int, default=3)
    parser.add_argument("--skip-lag", action="store_true")
    parser.add_argument("--lag-fixed", action="store_true", help="also one capacity run with no back-off")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs (smoke test)")
    # child options
    parser.add_argument("--child", choices=("cpu", "mem", "lag"))
    parser.add_argument("--impl", choices=IMPLS, default="ours")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--fixed", action="store_true", help="lag run: pin the interval (no back-off)")
    opts = parser.parse_args()
    if opts.child:
        child_main(opts)
        return 0
    if opts.quick:
        opts.reps, opts.seconds, opts.mem_n, opts.lag_n, opts.lag_seconds, opts.lag_reps = (
            1,
            3,
            100,
            1000,
            8,
            1,
        )

    common.print_machine()
    cpu: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    rate: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    traced: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    rss: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    lag: list[dict[str, Any]] = []
    with common.sandbox_process("--task-delay", "1000000000") as sandbox:
        env = _prepare(sandbox, 64)
        print(
            f"CPU: {opts.n} triggers each, {opts.interval} s interval, {opts.seconds} s window; "
            f"memory: {opts.mem_n} triggers, {opts.mem_interval} s interval; "
            f"{opts.reps} repetitions, interleaved"
        )
        for rep in range(opts.reps):
            for impl in random.sample(IMPLS, len(IMPLS)):
                run = _child(
                    env,
                    "--child",
                    "cpu",
                    "--impl",
                    impl,
                    "--n",
                    opts.n,
                    "--interval",
                    opts.interval,
                    "--seconds",
                    opts.seconds,
                    "--warmup",
                    opts.warmup,
                )
                cpu[impl].append(run["cpu_ms_per_1000"])
                rate[impl].append(run["polls_per_s"])
                mem = _child(
                    env, "--child", "mem", "--impl", impl, "--n", opts.mem_n, "--interval", opts.mem_interval
                )
                traced[impl].append(mem["traced_bytes_per_trigger"])
                rss[impl].append(mem["rss_bytes_per_trigger"])
                print(
                    f"  rep {rep + 1} {LABELS[impl]:22s} CPU {run['cpu_ms_per_1000']:7.0f} ms/1000 polls "
                    f"({run['polls_per_s']:.0f} polls/s, {run['errors']} errors); "
                    f"memory {mem['traced_bytes_per_trigger'] / 1024:6.1f} KiB/trigger traced, "
                    f"{mem['rss_bytes_per_trigger'] / 1024:6.1f} KiB RSS",
                    flush=True,
                )
        if not opts.skip_lag:
            modes = [("shipped back-off", [])] + ([("fixed interval", ["--fixed"])] if opts.lag_fixed else [])
            for label, extra in modes:
                print(
                    f"capacity: {opts.lag_n} AIHubMixTaskTriggers, "
                    f"poll_interval {opts.lag_interval} s ({label}), "
                    f"{opts.lag_seconds} s window, 50 ms ticker"
                )
                for rep in range(opts.lag_reps if not extra else 1):
                    run = _child(
                        env,
                        "--child",
                        "lag",
                        "--impl",
                        "ours",
                        "--n",
                        opts.lag_n,
                        "--interval",
                        opts.lag_interval,
                        "--seconds",
                        opts.lag_seconds,
                        *extra,
                    )
                    run["mode"] = label
                    lag.append(run)
                    print(
                        f"  rep {rep + 1}: lag p50 {run['lag_p50_ms']:.1f} ms, "
                        f"p99 {run['lag_p99_ms']:.1f} ms, "
                        f"max {run['lag_max_ms']:.1f} ms; {run['polls_per_s']:.0f} polls/s, "
                        f"{run['cpu_share'] * 100:.0f}% of a core, {run['alive']}/{opts.lag_n} alive, "
                        f"{run['errors']} failed polls",
                        flush=True,
                    )

    print("\nresults (medians)")
    ours_cpu, ours_traced, ours_rss = (common.median(x["ours"]) for x in (cpu, traced, rss))
    print(f"  {'':24s} {'CPU ms/1000 polls':>18s} {'KiB/trigger (traced)':>21s} {'KiB/trigger (RSS)':>18s}")
    for impl in IMPLS:
        print(
            f"  {LABELS[impl]:24s} {common.median(cpu[impl]):18.0f} "
            f"{common.median(traced[impl]) / 1024:21.1f} "
            f"{common.median(rss[impl]) / 1024:18.1f}"
        )
    ok = True
    for impl in ("sensor", "httptrigger", "rawhttpx"):
        cpu_ratio = common.ratio(ours_cpu, common.median(cpu[impl]))
        mem_ratio = common.ratio(ours_traced, common.median(traced[impl]))
        rss_ratio = common.ratio(ours_rss, common.median(rss[impl]))
        line = (
            f"  ours / {LABELS[impl]}: CPU {cpu_ratio:.2f}x, "
            f"memory {mem_ratio:.2f}x traced ({rss_ratio:.2f}x RSS)"
        )
        if impl != "rawhttpx":  # the raw loop is the floor httpx sets, not a target
            met = cpu_ratio <= 0.5 and mem_ratio <= 0.5
            ok = ok and met
            line += (
                f"  target <= 0.5x: CPU {common.verdict(cpu_ratio <= 0.5)}, "
                f"memory {common.verdict(mem_ratio <= 0.5)}"
            )
        print(line)
    shipped = [r for r in lag if r["mode"] == "shipped back-off"]
    if shipped:
        p99 = common.median([r["lag_p99_ms"] for r in shipped])
        rate = common.median([r["polls_per_s"] for r in shipped])
        print(
            f"  {opts.lag_n} triggers, poll_interval {opts.lag_interval} s: event-loop lag p99 {p99:.1f} ms "
            f"(median of {len(shipped)}, {rate:.0f} polls/s), target < 100 ms: {common.verdict(p99 < 100)}"
        )
        ok = ok and p99 < 100
    for run in lag:
        if run["mode"] != "shipped back-off":
            print(
                f"  {opts.lag_n} triggers, {run['mode']} {opts.lag_interval} s: "
                f"lag p99 {run['lag_p99_ms']:.1f} ms "
                f"at {run['polls_per_s']:.0f} polls/s ({run['cpu_share'] * 100:.0f}% of a core)"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
