#!/usr/bin/env bash
# Set up, then lip-sync the bundled portrait to the bundled speech track: out/demo.mp4
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
.venv/bin/python main.py render resources/demo/portrait.png resources/demo/speech.wav -o out/demo.mp4 "$@"
