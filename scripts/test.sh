#!/usr/bin/env bash
# Set up, then run the whole test suite (tests needing ../shared/data skip without it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen LIPSMITH_CACHE="${LIPSMITH_CACHE:-$(mktemp -d)}"
exec .venv/bin/python -m pytest -q "$@"
