# Shared set-up for the README commands: uv from pip, the locked environment, compiled bytecode.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export UV_COMPILE_BYTECODE=1
PY=${PYTHON:-python3}
UV=("$PY" -m uv)
if ! "${UV[@]}" --version >/dev/null 2>&1; then
  echo "Installing uv with pip..." >&2
  # A system Python may refuse installs (PEP 668): fall back to a user install, then to a
  # private virtual environment for uv alone.
  if ! "$PY" -m pip install --quiet --disable-pip-version-check uv 2>/dev/null \
    && ! "$PY" -m pip install --quiet --disable-pip-version-check --user uv 2>/dev/null; then
    "$PY" -m venv .uv-bootstrap
    .uv-bootstrap/bin/python -m pip install --quiet --disable-pip-version-check uv
    UV=(.uv-bootstrap/bin/python -m uv)
  fi
fi
uv() { "${UV[@]}" "$@"; }
uv sync --frozen --quiet
