"""Run the fault-injection suite and regenerate docs/RELIABILITY.md from what it measured.

    uv run --no-sync python scripts/reliability_report.py            # full run (more hypothesis examples)
    uv run --no-sync python scripts/reliability_report.py --ci       # the CI sizes
    uv run --no-sync python scripts/reliability_report.py --from-json results.json   # render only

The figures in the document are written by the tests themselves (``report.row(...)`` in
``tests/reliability``), collected into a JSON file, and rendered here: nothing in the table is
typed by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "RELIABILITY.md"
AREAS = ("API", "Async", "Download", "Storage", "Load", "Bad input", "Secrets", "Hostile")

INTRO = """\
# Reliability: faults, restarts, hostile input

A pipeline that buys images has to behave like a payments client: survive the usual failures,
never lose an image it paid for, never pay twice, never let a key escape. `tests/reliability/`
proves it against the local sandbox (`airflow_provider_aihubmix.sandbox`, faults injected with
`sandbox.client.inject(...)`) and a real S3 API (moto server, behind a TCP proxy that can refuse
connections). Every scenario below is one test; the figures are measured by the test itself
(the sandbox's request log says what was sent and billed; objects are counted in storage) and
this file is generated from them by `scripts/reliability_report.py`.
"""

METHOD = """\
## How the scenarios run

* **Task instances** run through `tests/reliability/helpers.py::TaskRunner`: a fresh operator
  per try (a fresh worker), `try_number` counting up to `retries + 1`, a deferral resumed after
  the trigger ran to its single event (the triggerer). "Worker killed" is an exception that is
  not an `Exception`, raised at the chosen point, so no code in the provider can catch it.
* **Counts**: *requests* are those the sandbox logged (API host, plus the storage host where a
  download matters), *billed* are the POSTs the sandbox processed (a lost answer included),
  *objects* are images actually present in storage, *duplicates* are billed POSTs beyond one
  per purchase.
* **Scaled down for CI** (same code paths, smaller numbers): the rate-limit period is 3 s
  instead of 30 s; backoff uses a fixed jitter (0.05 of the 1 s base where speed matters, 0.5
  where the schedule itself is asserted); the S3 retry budget in the past-the-budget scenarios
  is 3 tries 0.1-0.2 s apart instead of 9 tries 1-8 s apart; async task deadlines are 2 s.
* **Load**: `dag.test()` runs a mapped task instance in about 1.2 s here (20 mapped tasks took
  24.8 s), so 200 would take about four minutes, more than the whole suite's budget. The 200
  task instances run instead on 8 threads (8 workers), each map index executing a fresh
  operator with its own context and Airflow-style retries; sandbox, HTTP stack, engine and
  store are the real ones. The full 200 run in CI as well.
* **Triggerer restart** is tested at trigger level here (cancel mid-poll, re-create from
  `serialize()`); the real-Airflow version, SIGKILL of the triggerer process, is
  `tests/e2e/test_harness.py::test_deferred_task_resumes_after_triggerer_is_killed`.
* **Secrets**: the canary DAG runs with `dag.test()` in a child process with the OpenLineage
  file transport (as in `tests/integration/test_lineage_dag.py`); every other scenario also
  checks its exceptions (whole chain, formatted) and manifests for the key.
"""

# (where, what was wrong, fix): the bugs this suite found, each fixed in the file named.
FIXES: tuple[tuple[str, str, str], ...] = (
    (
        "`engine/run.py` (`GenerationRun.submit`)",
        "an HTTP 200 whose body was unreadable (malformed JSON, unknown shape) after the gateway had "
        'processed and billed the POST was recorded as `failed` ("nothing billed"), so the Airflow '
        "retry bought the image again (2 billed POSTs)",
        "recorded as `ambiguous`, like a lost answer: the retry refuses to resubmit",
    ),
    (
        "`exceptions.py` (`DownloadTruncatedError`)",
        "a truncated image body raised an error not marked retryable, so the engine never downloaded "
        "it again and the task failed",
        "truncation is retryable by default; the engine re-downloads (never storing the short file)",
    ),
    (
        "`engine/collection.py` (`ImageCollector.collect`), `exceptions.py`",
        "a task that ended `Request Moderated` / `Content Moderated` was retried by Airflow: each "
        "retry submitted (and paid for) the same prompt again for the same verdict",
        "new `AIHubMixTaskModeratedError` (an `AIHubMixTaskFailedError` and an "
        "`AirflowFailException`): moderated tasks fail without retries",
    ),
    (
        "`operators/generic.py`",
        "the download size cap (`max_image_bytes` of the engine) could not be set from a DAG",
        "new operator parameter `max_image_bytes`",
    ),
    (
        "`engine/run.py` (`GenerationRun.__init__`)",
        "`extra_input` rendered to a non-mapping (an object, a list, a string) raised `TypeError` "
        "instead of a validation error",
        "left for `build_input`, which raises `AIHubMixValidationError`",
    ),
    (
        "`storage/stores.py` (`read_uri_bytes`)",
        "a reference image at a local path that does not exist raised `FileNotFoundError`",
        "`InvalidOutputURIError` (an `AIHubMixValidationError`) naming the path, before any request",
    ),
    (
        "`hooks/aihubmix.py` (`_call`, `_acall`)",
        "errors named the request by its relative path, so an unreachable API read "
        "`POST :///v1/models/...`: no host",
        "the exchange is labelled with the absolute request URL (`POST http://host/v1/...`)",
    ),
    (
        "`catalog/models.py`",
        "Seedream allowed `n` up to 15 (the `max_images` limit); the API reference allows 1-10, so "
        "`n=11..15` reached the API and came back 400",
        "`max_n=10` for both Seedream models",
    ),
)


DESIGN_NOTES = """\
## Behaviour worth knowing

* A connection dropped or reset on the billable POST is indistinguishable, for the client, from
  an answer lost after processing. Both raise `AIHubMixPossiblyBilledError`, mark the manifest
  `ambiguous`, and Airflow retries refuse to resubmit (`regenerate=True` overrides). The
  `dropped-before-processing` row shows the cost: a task fails that the sandbox had not billed.
  That is why the load scenario drops connections on GETs only.
* A task that ends `Error` upstream delivered nothing: the Airflow retry is a new purchase.
* If S3 is unreachable from the moment the answer arrives until after the store's retry
  budget, nothing about the answer can be recorded: the retry refuses to buy again
  (possibly billed) and the image is not stored. Once the answer is recorded (`received`), a
  later S3 failure is recovered by the retry without buying again.
"""


def run_suite(json_path: Path, *, full: bool, pytest_args: list[str]) -> tuple[int, float]:
    env = {**os.environ, "AIHUBMIX_RELIABILITY_JSON": str(json_path)}
    if full:
        env["AIHUBMIX_RELIABILITY_FULL"] = "1"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/reliability", *pytest_args],
        cwd=REPO,
        env=env,
    )
    return proc.returncode, time.monotonic() - started


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render(data: dict[str, Any], *, runtime_s: float | None) -> str:
    # Areas in a fixed order; within one, the order the tests ran in (sorted() is stable).
    rows = sorted(data["rows"], key=lambda r: AREAS.index(r["area"]) if r["area"] in AREAS else len(AREAS))
    figures = [r["figures"] for r in rows]
    duplicates = sum(int(f.get("duplicates", 0)) for f in figures)
    leaks = sum(int(f.get("leaks", 0)) for f in figures)
    invalid = sum(int(f.get("invalid_inputs", 0)) for f in figures)
    lost = sum(int(f.get("lost", 0)) for f in figures)
    failing = [r["id"] for r in rows if r["outcome"] != "passed"]
    load = next((r for r in rows if r["area"] == "Load"), None)
    mode = "full run (`scripts/reliability_report.py`)" if data.get("full") else "CI sizes"

    out = [INTRO]
    out.append("## Summary\n")
    out.append(
        f"Generated {data['generated_at']} from a {mode}; suite runtime {data['duration_s']} s"
        + (f" (wall clock with start-up {runtime_s:.0f} s)" if runtime_s else "")
        + ".\n"
    )
    out.append("| figure | measured |\n|---|---|")
    out.append(f"| scenarios | {len(rows)} ({len(rows) - len(failing)} passing) |")
    if load:
        out.append(
            f"| lost images (load: {load['figures'].get('objects')} stored of the tasks run) | {lost} |"
        )
    out.append(
        f"| duplicate submissions (billed POSTs beyond one per purchase, all scenarios) | {duplicates} |"
    )
    out.append(f"| leaked secrets (canary key outside an API Authorization header) | {leaks} |")
    out.append(f"| invalid inputs tried (all refused with AIHubMixValidationError, 0 requests) | {invalid} |")
    if failing:
        out.append(f"| **failing scenarios** | {', '.join(failing)} |")
    out.append("")
    out.append("## Scenarios\n")
    for area in [a for a in AREAS if any(r["area"] == a for r in rows)]:
        out.append(f"### {area}\n")
        out.append(
            "| scenario | expected | measured result | requests | billed | objects | duplicates | test |"
        )
        out.append("|---|---|---|---|---|---|---|---|")
        for row in (r for r in rows if r["area"] == area):
            f = row["figures"]
            verdict = "" if row["outcome"] == "passed" else f" **({row['outcome'].upper()})**"
            test = row["test"].split("::", 1)[1] if "::" in row["test"] else row["test"]
            out.append(
                "| "
                + " | ".join(
                    _cell(x)
                    for x in (
                        row["scenario"],
                        row["expected"],
                        row["result"] + verdict,
                        f.get("requests", "-"),
                        f.get("billed", "-"),
                        f.get("objects", "-"),
                        f.get("duplicates", "-"),
                        f"`{test}`",
                    )
                )
                + " |"
            )
        out.append("")
    out.append(METHOD)
    out.append("## Bugs the suite found (fixed)\n")
    out.append("| where | what was wrong | fix |\n|---|---|---|")
    out.extend(f"| {where} | {what} | {fix} |" for where, what, fix in FIXES)
    out.append("")
    out.append(DESIGN_NOTES)
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ci", action="store_true", help="CI sizes instead of the full run")
    parser.add_argument("--from-json", type=Path, help="render this results file; do not run the suite")
    parser.add_argument("--output", type=Path, default=DOC, help="where to write the document")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = parser.parse_args()

    runtime: float | None = None
    code = 0
    if args.from_json:
        json_path = args.from_json
    else:
        json_path = Path(tempfile.mkdtemp(prefix="aihubmix-reliability-")) / "results.json"
        code, runtime = run_suite(json_path, full=not args.ci, pytest_args=args.pytest_args)
        if not json_path.exists():
            print("The suite wrote no results; nothing rendered.", file=sys.stderr)
            return code or 1
    data = json.loads(json_path.read_text())
    args.output.write_text(render(data, runtime_s=runtime))
    print(f"Wrote {args.output} from {json_path} ({len(data['rows'])} scenarios)")
    return code


if __name__ == "__main__":
    sys.exit(main())
