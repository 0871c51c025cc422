#!/usr/bin/env bash
# Build Lipsmith.app for macOS (Apple silicon or Intel) and a .dmg around it.
#
#     bash installers/macos/build.sh
#
# torch's macOS wheels include the MPS backend: on Apple silicon the editor and `render
# --device auto` use the GPU through MPS (macOS >= 12.3); Intel Macs render on the CPU.
# Signing and notarisation need the studio's Apple Developer ID: set CODESIGN_ID to sign.
# NOT run on our Linux build machines: the recipe is complete but unverified on macOS.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash installers/build.sh  # PyInstaller (the spec also makes build/dist/Lipsmith.app) + smoke test
app=build/dist/Lipsmith.app
if [ -n "${CODESIGN_ID:-}" ]; then
  codesign --deep --force --options runtime --sign "$CODESIGN_ID" "$app"
fi
version=$("$app/Contents/MacOS/lipsmith" --version | cut -d' ' -f2)
hdiutil create -volname Lipsmith -srcfolder "$app" -ov -format UDZO "build/Lipsmith-$version.dmg"
echo "build/Lipsmith-$version.dmg"
