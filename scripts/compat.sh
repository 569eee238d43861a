#!/usr/bin/env bash
# Compatibility check: for each (Airflow, Python) combination the provider claims, a fresh
# environment under .compat/<name>, the tests that touch Airflow run in it, and the example
# marketing DAG run end to end with dag.test() (scripts/run_example.py, what the demo runs).
#
#   bash scripts/compat.sh                  the lowest combination (what .ci/run runs every time)
#   bash scripts/compat.sh middle newest    the named combinations
#   bash scripts/compat.sh --all            all four, then rewrite docs/COMPATIBILITY.md
#
# Combinations (release times are the PyPI upload times of apache-airflow; uv's --exclude-newer
# stands in for Airflow's constraint files, which cannot be downloaded here):
#   lowest         Airflow 3.1.8 (3.1's latest patch, 2026-03-11) on Python 3.10, resolved as of
#                  its release day, and the lowest versions pyproject.toml allows for the
#                  provider's own dependencies (httpx, pydantic, amazon provider, pillow, and the
#                  [openlineage], [google] and [azure] extras:
#                  --resolution lowest-direct). Test tools (the dev group): their newest
#                  versions that fit, every runtime version above held.
#   middle         Airflow 3.2.2 (3.2's latest patch, 2026-05-29) on Python 3.12, as of that day.
#   newest         uv.lock on Python 3.11, plus the end-to-end tests (scheduler, triggerer, api-server).
#   newest-py3.13  uv.lock on Python 3.13.
# Exit status: non-zero when any combination fails to install, to pass its tests or to run the DAG.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh" # uv, the locked .venv, cwd = the repository
source scripts/_system_packages.sh
set +e

COMPAT_DIR=${COMPAT_DIR:-.compat}
ALL=(lowest middle newest newest-py3.13)
# What every combination runs: the suites that touch Airflow (the example DAGs run with dag.test in
# tests/integration too). End-to-end tests only on newest; the whole suite runs in scripts/test.sh.
TEST_PATHS=(tests/unit tests/integration)

combination() { # name -> python, airflow pin, exclude-newer, resolution ("" = from uv.lock)
  case "$1" in
    lowest) echo "3.10 3.1.8 2026-03-12T00:00:00Z lowest-direct" ;;
    middle) echo "3.12 3.2.2 2026-05-30T00:00:00Z highest" ;;
    newest) echo "3.11 locked - -" ;;
    newest-py3.13) echo "3.13 locked - -" ;;
    *) return 1 ;;
  esac
}

find_python() { # "3.10" -> an interpreter path (pyenv's first, then PATH)
  local root candidate
  root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  for candidate in "$root"/versions/"$1".*/bin/python"$1"; do
    [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  candidate=$(command -v "python$1") && "$candidate" -c "" 2>/dev/null && { echo "$candidate"; return 0; }
  echo "No Python $1 found (pyenv install $1, or put python$1 on PATH)" >&2
  return 1
}

build_env() { # name dir -> a fresh environment in dir/venv
  local name=$1 dir=$2 py airflow date resolution interpreter
  read -r py airflow date resolution < <(combination "$name")
  interpreter=$(find_python "$py") || return 1
  rm -rf "$dir/venv"
  if [ "$airflow" = locked ]; then
    UV_PROJECT_ENVIRONMENT="$dir/venv" uv sync --frozen --quiet --python "$interpreter" --no-python-downloads
    return
  fi
  uv venv --quiet --python "$interpreter" --no-python-downloads "$dir/venv" || return 1
  # The provider and Airflow first, so the resolution strategy applies to the provider's own
  # dependencies only; then the test tools, holding every version already chosen.
  uv pip install --quiet --python "$dir/venv/bin/python" --exclude-newer "$date" \
    --resolution "$resolution" -e ".[openlineage,google,azure]" "apache-airflow==$airflow" || return 1
  uv pip freeze --python "$dir/venv/bin/python" | grep -v '^-e ' >"$dir/runtime-constraints.txt"
  # Test tools are not part of the claim: newest (older moto mis-checksums multipart objects).
  uv pip install --quiet --python "$dir/venv/bin/python" --group dev -c "$dir/runtime-constraints.txt"
}

run_one() { # name -> 0 when the environment builds, the tests pass and the DAG run succeeds
  local name=$1 dir="$COMPAT_DIR/$1" start status=0 paths marker
  rm -rf "$dir" && mkdir -p "$dir"
  echo "== $name: building the environment" >&2
  start=$SECONDS
  build_env "$name" "$dir" >"$dir/install.log" 2>&1
  local rc=$?
  echo "install_seconds=$((SECONDS - start))" >"$dir/result.env"
  # What was tested and when, for the report (the repository may move on while --all runs).
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" >>"$dir/result.env"
  echo "finished_install=$(date -u +%Y-%m-%dT%H:%MZ)" >>"$dir/result.env"
  echo "install_status=$rc" >>"$dir/result.env"
  if [ "$rc" -ne 0 ]; then
    cat "$dir/install.log" >&2
    echo "== $name: FAILED to build the environment" >&2
    return 1
  fi
  uv pip freeze --python "$dir/venv/bin/python" >"$dir/freeze.txt" 2>/dev/null
  "$dir/venv/bin/python" --version >"$dir/python.txt" 2>&1

  paths=("${TEST_PATHS[@]}")
  marker=(-m "not e2e")
  if [ "$name" = newest ]; then
    paths+=(tests/e2e)
    marker=()
  fi
  echo "== $name: tests (${paths[*]})" >&2
  start=$SECONDS
  "$dir/venv/bin/python" -m pytest "${paths[@]}" "${marker[@]}" -q -p no:cacheprovider \
    --junitxml="$dir/junit.xml" -o junit_family=xunit2 2>&1 | tee "$dir/tests.log" | tail -n 25 >&2
  rc=${PIPESTATUS[0]}
  echo "tests_seconds=$((SECONDS - start))" >>"$dir/result.env"
  echo "tests_status=$rc" >>"$dir/result.env"
  [ "$rc" -eq 0 ] || status=1

  echo "== $name: example marketing DAG with dag.test()" >&2
  start=$SECONDS
  rm -rf "$dir/demo"
  "$dir/venv/bin/python" scripts/run_example.py --output "$dir/demo" >"$dir/demo.log" 2>&1
  rc=$?
  tail -n 3 "$dir/demo.log" >&2
  echo "demo_seconds=$((SECONDS - start))" >>"$dir/result.env"
  echo "demo_status=$rc" >>"$dir/result.env"
  [ "$rc" -eq 0 ] || { status=1; tail -n 40 "$dir/demo.log" >&2; }
  echo "== $name: $([ $status -eq 0 ] && echo passed || echo FAILED)" >&2
  return $status
}

names=()
report=0
for arg in "$@"; do
  case "$arg" in
    --all) names=("${ALL[@]}") && report=1 ;;
    -h | --help) sed -n '2,21p' "$0" && exit 0 ;;
    *) combination "$arg" >/dev/null || { echo "unknown combination: $arg (${ALL[*]})" >&2; exit 2; }
       names+=("$arg") ;;
  esac
done
[ "${#names[@]}" -gt 0 ] || names=(lowest)

overall=0
for name in "${names[@]}"; do
  run_one "$name" || overall=1
done
if [ "$report" -eq 1 ]; then
  .venv/bin/python scripts/compat_report.py "$COMPAT_DIR" "${names[@]}" >docs/COMPATIBILITY.md
  echo "Wrote docs/COMPATIBILITY.md" >&2
fi
exit $overall
