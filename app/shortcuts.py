"""Keyboard shortcuts as data: every action's default key, the user's rebindings (saved in the
settings), and the dialog that shows and edits them (Help ▸ Keyboard shortcuts).

Action names are stable ids ("play.next_frame"); the main window creates one QAction per name
and `Shortcuts.apply` gives each its key. An empty key means no shortcut.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QHeaderView, QKeySequenceEdit, QLabel,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout)

# name → (default key, what it does)
SHORTCUTS: dict[str, tuple[str, str]] = {
    "file.new": ("Ctrl+N", "New project from a video"),
    "file.open": ("Ctrl+O", "Open a project"),
    "file.save": ("Ctrl+S", "Save"),
    "file.save_as": ("Ctrl+Shift+S", "Save as"),
    "file.export": ("Ctrl+E", "Export the result (H.264, ProRes or DNxHR, with a QC report)"),
    "file.quit": ("Ctrl+Q", "Quit"),
    "edit.undo": ("Ctrl+Z", "Undo"),
    "edit.redo": ("Ctrl+Shift+Z", "Redo"),
    "edit.split": ("Ctrl+K", "Split the segment at the playhead"),
    "edit.merge_next": ("Ctrl+J", "Merge the segment with the next one"),
    "edit.rename": ("F2", "Rename the selected segment"),
    "edit.slip_earlier": ("Alt+,", "Slip the selected segment's dub one frame earlier (that line only)"),
    "edit.slip_later": ("Alt+.", "Slip the selected segment's dub one frame later (that line only)"),
    "edit.nudge_earlier": ("Alt+Left", "Nudge the dub one frame earlier"),
    "edit.nudge_later": ("Alt+Right", "Nudge the dub one frame later"),
    "edit.nudge_earlier_second": ("Alt+Shift+Left", "Nudge the dub one second earlier"),
    "edit.nudge_later_second": ("Alt+Shift+Right", "Nudge the dub one second later"),
    "project.settings": ("Ctrl+,", "Project settings"),
    "play.toggle": ("Space", "Play / pause"),
    "play.reverse": ("J", "Shuttle backwards (again: faster; with K held: a frame back, held too: half speed)"),
    "play.stop": ("K", "Stop (held: J / L jog)"),
    "play.forward": ("L", "Shuttle forwards (again: faster; with K held: a frame on, held too: half speed)"),
    "play.prev_frame": ("Left", "One frame back"),
    "play.next_frame": ("Right", "One frame on"),
    "play.back_second": ("Shift+Left", "One second back"),
    "play.forward_second": ("Shift+Right", "One second on"),
    "play.start": ("Home", "Go to the start"),
    "play.end": ("End", "Go to the end"),
    "play.next_weak": ("Alt+Down", "Go to the next weak segment (LSE-C below the threshold)"),
    "play.prev_weak": ("Alt+Up", "Go to the previous weak segment"),
    "mark.in": ("I", "Mark in"),
    "mark.out": ("O", "Mark out"),
    "mark.clear": ("Alt+X", "Clear in and out"),
    "play.goto_in": ("Shift+I", "Go to the in mark"),
    "play.goto_out": ("Shift+O", "Go to the out mark"),
    "play.prev_edit": ("Up", "Go to the previous edit (a segment's edge or a marker)"),
    "play.next_edit": ("Down", "Go to the next edit (a segment's edge or a marker)"),
    "play.in_to_out": ("Ctrl+Shift+Space", "Play from the in mark to the out mark"),
    "play.loop": ("Ctrl+/", "Loop playback (in to out, or the whole clip)"),
    "play.monitor_dub": ("Alt+1", "Monitor the dub"),
    "play.monitor_original": ("Alt+2", "Monitor the original (the video's own audio)"),
    "play.monitor_both": ("Alt+3", "Monitor the dub and the original together, each at its level"),
    "marker.add": ("M", "Add a marker at the playhead (on a marker: name it)"),
    "marker.remove": ("Ctrl+Alt+M", "Remove the marker at the playhead"),
    "marker.prev": ("Shift+Up", "Go to the previous marker"),
    "marker.next": ("Shift+Down", "Go to the next marker"),
    "render.segment": ("Ctrl+R", "Re-render the selected segment"),
    "render.smooth": ("Ctrl+Shift+M", "Smooth the mouth of the selected segment's take over a few frames"),
    "render.range": ("Ctrl+Shift+R", "Render in–out (or the whole clip)"),
    "render.dialog": ("Ctrl+Alt+R", "Render with choices: the segment, in–out or the whole clip, and which mouth"),
    "render.clip": ("", "Render the whole clip"),
    "render.detect": ("", "Detect speech segments again"),
    "render.score": ("", "Score the chosen takes"),
    "render.checkpoint": ("", "Choose the generator model"),
    "render.adapt": ("", "Fine-tune the generator on this video's speaker"),
    "render.remove_adapted": ("", "Remove a speaker-adapted model from the project (its file stays)"),
    "view.result": ("T", "Show original / result"),
    "view.fit": ("Ctrl+0", "Preview: fit to window"),
    "view.actual": ("Ctrl+1", "Preview: 100 %"),
    "view.mask": ("Shift+M", "Preview: show the face box and blend mask"),
    "view.faces": ("Shift+F", "Preview: number the faces found; a click on one makes it the segment's face"),
    "view.compare_flip": ("\\", "Preview: flip between takes A and B (Compare A/B in the inspector)"),
    "view.zoom_in": ("Ctrl+=", "Timeline: zoom in"),
    "view.zoom_out": ("Ctrl+-", "Timeline: zoom out"),
    "view.zoom_all": ("Shift+Z", "Timeline: zoom to fit (the whole project)"),
    "view.zoom_selection": ("Alt+Z", "Timeline: zoom to the selected segment (the one under the playhead)"),
    "view.light": ("", "Light theme"),
    "help.shortcuts": ("F1", "Keyboard shortcuts"),
}
DEFAULT_SHORTCUTS = {name: key for name, (key, _) in SHORTCUTS.items()}


def markdown_table() -> str:
    """The default keys as the README lists them (`python -m app.shortcuts` prints it): one row per
    action, in the order of the Keyboard Shortcuts dialog."""
    rows = [f"| {key or '—'} | {what} |" for key, what in SHORTCUTS.values()]
    return "\n".join(["| key | action |", "|---|---|", *rows])


def normalised(key: str) -> str:
    """The portable text of a key sequence ("ctrl+shift+z" → "Ctrl+Shift+Z")."""
    return QKeySequence(key).toString(QKeySequence.SequenceFormat.PortableText) if key else ""


class Shortcuts:
    """The defaults with the user's overrides on top; persisted through app.settings.Settings."""

    def __init__(self, settings=None):
        self.settings = settings
        overrides = settings.shortcut_overrides() if settings is not None else {}
        self.overrides = {k: normalised(v) for k, v in overrides.items() if k in DEFAULT_SHORTCUTS}

    def key(self, name: str) -> str:
        return self.overrides.get(name, DEFAULT_SHORTCUTS[name])

    def as_dict(self) -> dict:
        return {name: self.key(name) for name in DEFAULT_SHORTCUTS}

    def bind(self, name: str, key: str):
        if name not in DEFAULT_SHORTCUTS:
            raise KeyError(f"no action {name!r}")
        key = normalised(key)
        if key == DEFAULT_SHORTCUTS[name]:
            self.overrides.pop(name, None)
        else:
            self.overrides[name] = key
        self._save()

    def reset(self):
        self.overrides.clear()
        self._save()

    def conflicts(self, keys: dict | None = None) -> dict[str, list[str]]:
        """{key: [actions]} for keys given to more than one action."""
        seen: dict[str, list[str]] = {}
        for name, key in (keys or self.as_dict()).items():
            if key:
                seen.setdefault(key, []).append(name)
        return {k: v for k, v in seen.items() if len(v) > 1}

    def apply(self, actions: dict):
        for name, action in actions.items():
            if name in DEFAULT_SHORTCUTS:
                key = self.key(name)
                action.setShortcut(QKeySequence(key) if key else QKeySequence())

    def _save(self):
        if self.settings is not None:
            self.settings.set_shortcut_overrides(self.overrides)


class ShortcutsDialog(QDialog):
    """All actions and their keys; click a key to record a new one. OK saves and applies."""

    def __init__(self, shortcuts: Shortcuts, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(560, 640)
        self.shortcuts = shortcuts
        self.table = QTableWidget(len(SHORTCUTS), 2, self)
        self.table.setHorizontalHeaderLabels(["Action", "Key"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.edits: dict[str, QKeySequenceEdit] = {}
        for row, (name, (_, text)) in enumerate(SHORTCUTS.items()):
            item = QTableWidgetItem(text)
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            item.setToolTip(name)
            self.table.setItem(row, 0, item)
            edit = QKeySequenceEdit(QKeySequence(shortcuts.key(name)), self)
            if hasattr(edit, "setMaximumSequenceLength"):  # Qt ≥ 6.5: one key, not a chord
                edit.setMaximumSequenceLength(1)
            edit.keySequenceChanged.connect(self._check)
            self.edits[name] = edit
            self.table.setCellWidget(row, 1, edit)
        self.warning = QLabel("", self)
        self.warning.setObjectName("hint")
        defaults = QPushButton("Restore defaults", self)
        defaults.clicked.connect(self._defaults)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        bottom = QHBoxLayout()
        bottom.addWidget(defaults)
        bottom.addStretch(1)
        bottom.addWidget(buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Click a key to change it; Backspace in the field clears it.", self))
        layout.addWidget(self.table, 1)
        layout.addWidget(self.warning)
        layout.addLayout(bottom)
        self._check()

    def keys(self) -> dict:
        return {name: normalised(edit.keySequence().toString(QKeySequence.SequenceFormat.PortableText))
                for name, edit in self.edits.items()}

    def _check(self, *_):
        clashes = self.shortcuts.conflicts(self.keys())
        self.warning.setText("; ".join(f"{key} is used by {', '.join(SHORTCUTS[n][1] for n in names)}"
                                       for key, names in clashes.items()))

    def _defaults(self):
        for name, edit in self.edits.items():
            edit.setKeySequence(QKeySequence(DEFAULT_SHORTCUTS[name]))

    def accept(self):
        for name, key in self.keys().items():
            self.shortcuts.bind(name, key)
        super().accept()


if __name__ == "__main__":
    print(markdown_table())
