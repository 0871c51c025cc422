"""Preferences in an INI file beside core.project's recent list (`$LIPSMITH_CONFIG` or
~/.config/lipsmith/settings.ini): theme, shortcut overrides, the audio monitor, last folders, window layout."""
from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from core.monitor import Monitor
from core.project import config_dir

THEMES = ("dark", "light")


class Settings:
    def __init__(self, file=None):
        self.file = Path(file) if file is not None else config_dir() / "settings.ini"
        self.q = QSettings(str(self.file), QSettings.Format.IniFormat)

    # -- theme

    @property
    def theme(self) -> str:
        value = self.q.value("ui/theme", "dark")
        return value if value in THEMES else "dark"

    @theme.setter
    def theme(self, value: str):
        if value not in THEMES:
            raise ValueError(f"theme must be one of {THEMES}")
        self.q.setValue("ui/theme", value)

    # -- shortcuts: only the user's changes are stored, as JSON {action: key sequence}

    def shortcut_overrides(self) -> dict:
        try:
            data = json.loads(self.q.value("shortcuts/overrides", "{}") or "{}")
        except (TypeError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def set_shortcut_overrides(self, overrides: dict):
        self.q.setValue("shortcuts/overrides", json.dumps(dict(sorted(overrides.items()))))

    # -- the audio monitor (a view setting: not the project's)

    @property
    def monitor(self) -> Monitor:
        """As last set; the default where unset or unreadable (a hand-edited file)."""
        try:
            return Monitor(str(self.q.value("monitor/source", "dub")), float(self.q.value("monitor/dub_db", 0.0)),
                           float(self.q.value("monitor/original_db", 0.0)))
        except (TypeError, ValueError):
            return Monitor()

    @monitor.setter
    def monitor(self, monitor: Monitor):
        self.q.setValue("monitor/source", monitor.source)
        for key, db in (("monitor/dub_db", monitor.dub_db), ("monitor/original_db", monitor.original_db)):
            self.q.setValue(key, str(db))  # text: "-inf" reads back as float("-inf")

    # -- folders, layout

    def last_dir(self, what: str) -> str:
        value = self.q.value(f"dirs/{what}", "")
        return value if value and Path(value).is_dir() else str(Path.home())

    def set_last_dir(self, what: str, path):
        folder = Path(path)
        self.q.setValue(f"dirs/{what}", str(folder if folder.is_dir() else folder.parent))

    def window_state(self) -> tuple[QByteArray | None, QByteArray | None]:
        return self.q.value("window/geometry"), self.q.value("window/state")

    def set_window_state(self, geometry: QByteArray, state: QByteArray):
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)

    def sync(self):
        self.q.sync()
