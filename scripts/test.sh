#!/usr/bin/env bash
# Install the locked environment (and the Debian packages the real parts need), then run the
# whole test suite (unit, integration, end-to-end).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
source scripts/_system_packages.sh
uv run --no-sync pytest "$@"
