#!/usr/bin/env bash
# Install the locked environment and run the example marketing DAG end to end on the local sandbox.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
uv run --no-sync python scripts/run_example.py "$@"
