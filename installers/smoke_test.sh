#!/usr/bin/env bash
# Smoke-test a built Lipsmith binary: version, doctor, and the demo render, with no network
# needed (run it offline to prove nothing is downloaded). Prints size and timings.
#
#     bash installers/smoke_test.sh build/dist/lipsmith/lipsmith
set -euo pipefail
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
folder=$(dirname "$bin")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$out"  # not the source tree: the binary must find everything inside its own folder
export LIPSMITH_CACHE="$out/cache"

t0=$(date +%s.%N)
version=$("$bin" --version)
t1=$(date +%s.%N)
echo "version: $version (start-up $(echo "$t1 - $t0" | bc) s)"
[[ "$version" == lipsmith\ * ]] || { echo "FAIL: --version printed '$version'"; exit 1; }

t0=$(date +%s.%N)
"$bin" doctor || { echo "FAIL: doctor reported a failure"; exit 1; }
t1=$(date +%s.%N)
echo "doctor: $(echo "$t1 - $t0" | bc) s (imports torch, onnxruntime, Qt)"

demo="$folder/_internal/resources/demo"
[ -d "$demo" ] || demo="$folder/resources/demo"
t0=$(date +%s.%N)
"$bin" render "$demo/portrait.png" "$demo/speech.wav" -o "$out/demo.mp4" --quiet
t1=$(date +%s.%N)
scored=$("$bin" score "$out/demo.mp4" --json >/dev/null 2>&1 && echo scored || echo "not scored (no bundled expert)")
size=$(stat -c %s "$out/demo.mp4" 2>/dev/null || stat -f %z "$out/demo.mp4")
[ "$size" -gt 10000 ] || { echo "FAIL: demo.mp4 is $size bytes"; exit 1; }
echo "demo render: $(echo "$t1 - $t0" | bc) s, demo.mp4 $size bytes, $scored"
# the editor: starts offscreen (no display needed) and is still running when stopped after 20 s
rc=0
QT_QPA_PLATFORM=offscreen timeout 20 "$bin" >"$out/editor.log" 2>&1 || rc=$?
[ "$rc" -eq 124 ] || { echo "FAIL: the editor exited with $rc:"; tail -5 "$out/editor.log"; exit 1; }
echo "editor: started and ran until stopped"
echo "bundle size: $(du -sh "$folder" | cut -f1) ($folder)"
echo "smoke test passed"
