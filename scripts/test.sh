#!/usr/bin/env bash
# Install the locked environment and run the whole test suite (unit, integration, end-to-end).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
uv run --no-sync pytest "$@"
