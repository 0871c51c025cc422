"""The transport bar's monitor button: what playback lets you hear (the window's Playback ▸ Monitor
actions: dub, original or both) and each track's level, in the menu that drops from it. The
rule is core.monitor's; the window applies a change to the transport and the settings."""
from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QMenu, QToolButton, QWidget, QWidgetAction

from core.monitor import MAX_DB, SILENT_DB, SOURCES, Monitor

from .project_settings import typed


class LevelBox(QDoubleSpinBox):
    """A level in dB, SILENT_DB (shown −∞: off) to MAX_DB; a typed one arrives on Enter (app.project_settings.typed)."""

    def __init__(self, tip: str, parent=None):
        super().__init__(parent)
        typed(self)
        self.setRange(SILENT_DB, MAX_DB)
        self.setDecimals(1)
        self.setSingleStep(1.0)
        self.setSuffix(" dB")
        self.setSpecialValueText("−∞")
        self.setToolTip(tip)

    def db(self) -> float:
        return float("-inf") if self.value() <= SILENT_DB else self.value()

    def set_db(self, db: float):
        self.setValue(max(db, SILENT_DB))


class MonitorButton(QToolButton):
    levels_changed = Signal(float, float)  # the dub's, the original's (dB; -inf: off)

    def __init__(self, choices, parent=None):
        super().__init__(parent)
        self.setToolTip("What playback lets you hear, and each track's level")
        self.setAutoRaise(True)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space and J / K / L stay the transport's
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self)
        for action in choices:
            menu.addAction(action)
        menu.addSeparator()
        tip = "0 dB is the file as recorded; an output cannot amplify, so lower the other track to hear this one over it"
        self.dub_level = LevelBox(f"The dub's level. {tip}", menu)
        self.original_level = LevelBox(f"The video's own audio's level. {tip}", menu)
        panel = QWidget(menu)
        form = QFormLayout(panel)
        form.addRow("Dub level", self.dub_level)
        form.addRow("Original level", self.original_level)
        levels = QWidgetAction(menu)
        levels.setDefaultWidget(panel)
        menu.addAction(levels)
        self.setMenu(menu)
        for box in (self.dub_level, self.original_level):
            box.valueChanged.connect(lambda _: self.levels_changed.emit(self.dub_level.db(), self.original_level.db()))

    def show_monitor(self, monitor: Monitor):
        self.setText(f"♪ {SOURCES[monitor.source]}")
        for box, db in ((self.dub_level, monitor.dub_db), (self.original_level, monitor.original_db)):
            with QSignalBlocker(box):
                box.set_db(db)
