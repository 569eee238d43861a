"""Write docs/COMPATIBILITY.md from what ``scripts/compat.sh --all`` left under ``.compat/``.

Usage: ``python scripts/compat_report.py .compat lowest middle newest newest-py3.13 > docs/COMPATIBILITY.md``.
Every figure comes from the run: versions from ``uv pip freeze`` of each environment, counts
and times from pytest's JUnit XML, install and DAG-run times and results from ``result.env``.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import tomllib  # Python 3.11+: the report runs in the locked .venv (3.11), not in a combination

# Shown in the versions table, in this order: what the provider imports or Airflow pins tightly.
KEY_PACKAGES = [
    "apache-airflow",
    "apache-airflow-core",
    "apache-airflow-task-sdk",
    "apache-airflow-providers-amazon",
    "apache-airflow-providers-common-compat",
    "apache-airflow-providers-openlineage",
    "apache-airflow-providers-standard",
    "httpx",
    "pydantic",
    "pillow",
    "boto3",
    "sqlalchemy",
    "fastapi",
    "pytest",
    "moto",
]

HOW = {
    "lowest": "Airflow 3.1.8 (3.1's latest patch, released 2026-03-11) resolved as of that day; "
    "the provider's own dependencies at the lowest versions pyproject.toml allows "
    "(`--resolution lowest-direct`)",
    "middle": "Airflow 3.2.2 (3.2's latest patch, released 2026-05-29) resolved as of that day",
    "newest": "`uv.lock`, with the end-to-end tests (real scheduler, triggerer, api-server)",
    "newest-py3.13": "`uv.lock` on Python 3.13",
}


def read_env(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def read_freeze(path: Path) -> dict[str, str]:
    versions: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, version = line.partition("==")
            if sep:
                versions[name.strip().lower().replace("_", "-")] = version.strip()
    return versions


def read_junit(path: Path) -> tuple[Counter[str], list[str]]:
    """Outcome counts and the distinct skip reasons."""
    counts: Counter[str] = Counter()
    reasons: list[str] = []
    if not path.exists():
        return counts, reasons
    for case in ET.parse(path).getroot().iter("testcase"):
        child = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        outcome = {"failure": "failed", "error": "errors", "skipped": "skipped"}.get(
            child.tag if child is not None else "", "passed"
        )
        counts[outcome] += 1
        if outcome == "skipped" and child is not None:
            reason = (child.get("message") or "").strip()
            if reason and reason not in reasons:
                reasons.append(reason)
    return counts, reasons


def minutes(seconds: str | None) -> str:
    if not seconds:
        return "-"
    value = int(seconds)
    return f"{value // 60} min {value % 60:02d} s"


def verdict(env: dict[str, str], key: str) -> str:
    status = env.get(f"{key}_status")
    return "-" if status is None else ("pass" if status == "0" else f"FAIL ({status})")


def floors(pyproject: Path) -> list[tuple[str, str]]:
    """``(package, floor)`` for every ``>=`` requirement of the provider (extras included)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    found = []
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?\s*>=\s*([^,;\s]+).*", requirement)
        if match:
            found.append((match[1].lower().replace("_", "-"), match[2]))
    return found


def floors_section(resolved: dict[str, str] | None) -> list[str]:
    """Each floor against what the *lowest* combination resolved to (they should be equal)."""
    if resolved is None:
        return []
    out = [
        "## Floors",
        "",
        "`pyproject.toml`'s floors against what the *lowest* combination resolved to with",
        "`--resolution lowest-direct`: a floor below the tested version would claim an untested one.",
        "",
        "| requirement | floor | lowest resolved | |",
        "|---|---|---|---|",
    ]
    for package, floor in floors(Path("pyproject.toml")):
        got = resolved.get(package, "-")
        out.append(f"| {package} | {floor} | {got} | {'tested' if got == floor else 'NOT the floor'} |")
    out += [
        "",
        "Why these: with the earlier floors (amazon provider >= 9.0, openlineage provider >= 2.0) the",
        "lowest resolution picked 9.0.0 and 2.0.0, and on Airflow 3.1 neither imports",
        "(`airflow.utils.log.secrets_masker` and `airflow.models.Operator` are gone): every S3 write",
        "and every OpenLineage event failed. Amazon 9.14.0 and openlineage 2.7.1 were current when",
        "Airflow 3.1.0 came out. Airflow 3.1.8 itself needs pydantic >= 2.11.1. Test tools (pytest,",
        "moto...) are not part of the claim and install at their newest fitting versions: moto 5.1.22,",
        "current on 2026-03-11, answers multipart uploads with a checksum botocore 1.42.66 rejects (a",
        "fake-S3 defect, not a provider one).",
        "",
    ]
    return out


def run_day(rows: list[tuple[Any, ...]]) -> str:
    """When the first combination's environment was built (``compat.sh`` records it), else now."""
    stamps = sorted(r[1]["finished_install"] for r in rows if r[1].get("finished_install"))
    if stamps:
        return stamps[0].replace("T", " ").replace("Z", " UTC")
    return f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"


def run_commits(rows: list[tuple[Any, ...]]) -> str:
    """The commit each combination tested: one when they agree (the usual case)."""
    commits = {r[0]: r[1].get("commit") or git_commit() for r in rows}
    if len(set(commits.values())) == 1:
        return f"commit `{next(iter(commits.values()))}`"
    return "commits " + ", ".join(f"`{commit}` ({name})" for name, commit in commits.items())


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] in ("-h", "--help"):
        sys.stderr.write(__doc__ or "")
        return 0 if len(argv) > 1 and argv[1] in ("-h", "--help") else 2
    root, names = Path(argv[1]), argv[2:]
    rows = []
    for name in names:
        folder = root / name
        env = read_env(folder / "result.env")
        counts, reasons = read_junit(folder / "junit.xml")
        python = (folder / "python.txt").read_text().strip() if (folder / "python.txt").exists() else "?"
        versions = read_freeze(folder / "freeze.txt")
        rows.append((name, env, counts, reasons, python.replace("Python ", ""), versions))

    out = [
        "# Compatibility",
        "",
        "What the provider is tested on, measured by `bash scripts/compat.sh --all`, which wrote this",
        "page. Each combination gets a fresh environment under `.compat/` (git-ignored), runs the",
        "tests that touch Airflow (`tests/unit`, `tests/integration`; `tests/e2e` on *newest* only)",
        "and then the example marketing DAG end to end with `dag.test()` (`scripts/run_example.py`,",
        "what `scripts/demo.sh` runs).",
        "`.ci/run` runs the *lowest* combination on every change (`bash scripts/compat.sh`).",
        "",
        "Airflow's constraint files cannot be downloaded here; `uv pip install --exclude-newer <release",
        "day>` stands in for them, so a combination resolves to what was on PyPI when that Airflow was",
        "released. Release days are PyPI upload times of `apache-airflow`.",
        "",
        f"Run on {run_day(rows)} at {run_commits(rows)}.",
        "",
        "| combination | Python | Airflow | environment | tests | passed | failed | skipped | test time "
        "| example DAG (`dag.test`) | install |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, env, counts, _, python, versions in rows:
        failed = counts["failed"] + counts["errors"]
        out.append(
            f"| {name} | {python} | {versions.get('apache-airflow', '?')} | {HOW.get(name, '')} "
            f"| {verdict(env, 'tests')} | {counts['passed']} | {failed} | {counts['skipped']} "
            f"| {minutes(env.get('tests_seconds'))} "
            f"| {verdict(env, 'demo')} ({minutes(env.get('demo_seconds'))}) "
            f"| {verdict(env, 'install')} ({minutes(env.get('install_seconds'))}) |"
        )
    out += ["", "## Resolved versions", "", "| package | " + " | ".join(r[0] for r in rows) + " |"]
    out.append("|---|" + "---|" * len(rows))
    for package in KEY_PACKAGES:
        out.append(f"| {package} | " + " | ".join(r[5].get(package, "-") for r in rows) + " |")
    out += [
        "",
        "The whole list of each environment is in `.compat/<combination>/freeze.txt` after a run.",
        "",
        "## Skipped tests",
        "",
    ]
    for name, _, _, reasons, _, _ in rows:
        out.append(f"- **{name}**: " + ("; ".join(reasons) if reasons else "none"))
    lowest = next((r[5] for r in rows if r[0] == "lowest"), None)
    out += ["", *floors_section(lowest)]
    out += [
        "## How the differences are handled",
        "",
        "Names that moved between Airflow 3.1 and 3.3 (`conf`, the task exceptions, the hook lineage",
        "collector, async secret masking, async connection extras, serde) are imported through",
        "`airflow_provider_aihubmix/version_compat.py`, one shim per name with the Airflow version that",
        "needs it; tests import test-only moved names through `tests/compat.py`. The dependency floors",
        "in `pyproject.toml` are the versions the *lowest* combination resolves to.",
        "Before Airflow 3.3, Airflow's own async connection lookup (`Connection.async_get`) calls the",
        "blocking `mask_secret` once on the triggerer's event loop while caching the connection; the",
        "provider's trigger code makes no blocking call on any combination",
        "(`tests/integration/test_trigger_sandbox.py::test_run_makes_no_blocking_call`, which names",
        "that one Airflow frame in `tests/compat.py`).",
        "`tests/unit/test_version_compat.py` fails on any module that imports one of those names",
        "directly, so the locked environment catches a 3.1 break before `.ci/run`'s compatibility",
        "step does, and mypy checks the package against Python 3.10.",
        "",
    ]
    sys.stdout.write("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
