# Shared set-up for the README commands: uv from pip, the locked environment, compiled bytecode.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export UV_COMPILE_BYTECODE=1
PY=${PYTHON:-python3}
if ! "$PY" -m uv --version >/dev/null 2>&1; then
  echo "Installing uv with pip..." >&2
  "$PY" -m pip install --quiet --disable-pip-version-check uv
fi
uv() { "$PY" -m uv "$@"; }
uv sync --frozen --quiet
