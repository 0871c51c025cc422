#!/usr/bin/env bash
# Register Lipsmith with the Linux desktop for this user: menu entry, icons, and the
# .lipsmith project MIME type (double-click opens the editor). Needs `lipsmith` on PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
icons=$(cd "$here/../../resources/icons" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
install -Dm644 "$here/lipsmith.desktop" "$data/applications/lipsmith.desktop"
install -Dm644 "$here/lipsmith-mime.xml" "$data/mime/packages/lipsmith.xml"
for size in 16 32 48 64 128 256 512; do
  install -Dm644 "$icons/lipsmith-$size.png" "$data/icons/hicolor/${size}x${size}/apps/lipsmith.png"
done
command -v update-mime-database >/dev/null && update-mime-database "$data/mime" || true
command -v update-desktop-database >/dev/null && update-desktop-database "$data/applications" || true
echo "Lipsmith registered in $data"
