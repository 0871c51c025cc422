#!/usr/bin/env bash
# Build the one-folder application with PyInstaller, then smoke-test the built binary.
#
#     bash installers/build.sh            # Linux or macOS: build/dist/lipsmith/ (+ Lipsmith.app on macOS)
#
# Uses the source set-up (.venv, scripts/setup.sh) plus PyInstaller. The smoke test runs the
# binary offline: --version, doctor, and the demo render; it prints the folder's size and
# the start-up times. Windows: installers/windows/build.ps1; macOS .app + .dmg: installers/macos/build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pip install -q "pyinstaller==${PYINSTALLER_VERSION:-6.22.3}"
started=$(date +%s)
.venv/bin/pyinstaller --noconfirm --clean --log-level WARN \
  --distpath build/dist --workpath build/work installers/pyinstaller/lipsmith.spec
echo "built build/dist/lipsmith in $(( $(date +%s) - started )) s"
bash installers/smoke_test.sh build/dist/lipsmith/lipsmith
