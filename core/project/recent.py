"""The File ▸ Recent menu's list: `recent.json` in the config folder."""
from __future__ import annotations

import json
import os
from pathlib import Path

from core.atomic import atomic_write_text

from .model import RECENT_LIMIT, _key


def config_dir() -> Path:
    """`$LIPSMITH_CONFIG` when set, else `~/.config/lipsmith`."""
    root = os.environ.get("LIPSMITH_CONFIG")
    return Path(root).expanduser() if root else Path.home() / ".config" / "lipsmith"


class RecentProjects:
    """Most recent first, at most `limit`, no duplicates, files that no longer exist left out.
    A damaged or unwritable list is never an error: the menu just shows less."""

    def __init__(self, file=None, limit: int = RECENT_LIMIT):
        self.file = Path(file) if file is not None else config_dir() / "recent.json"
        self.limit = limit

    def _read(self) -> list[Path]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
            return [Path(p) for p in data["projects"] if isinstance(p, str)]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def _write(self, paths: list[Path]):
        try:
            atomic_write_text(self.file, json.dumps({"projects": [str(p) for p in paths]}, indent=1) + "\n")
        except OSError:
            pass

    def paths(self) -> list[Path]:
        stored = self._read()
        present = [p for p in stored if p.is_file()]
        if len(present) != len(stored):
            self._write(present)
        return present[:self.limit]

    def add(self, path) -> list[Path]:
        path = Path(path).resolve()
        paths = [path] + [p for p in self._read() if _key(p) != _key(path)]
        paths = [p for p in paths if p.is_file()][:self.limit]
        self._write(paths)
        return paths

    def remove(self, path) -> list[Path]:
        paths = [p for p in self._read() if _key(p) != _key(Path(path).resolve())]
        self._write(paths)
        return self.paths()

    def clear(self):
        self._write([])
