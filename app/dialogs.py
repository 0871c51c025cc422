"""Message boxes and small dialogs. Every message the editor shows goes through `message`, one
place to change (and for tests to watch: they patch QMessageBox.exec)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QInputDialog, QLabel, QLineEdit, QMessageBox, QPushButton,
                               QVBoxLayout, QWidget)

from core.export import EXPORT_PRESETS
from core.jobs import REPLACE_CHOSEN

from .project_settings import MOUTH_TEXT, MOUTH_TIP, typed

Icon = QMessageBox.Icon
Button = QMessageBox.StandardButton


def message(parent, icon, title: str, text: str, details: str = "", informative: str = "",
            buttons=Button.Ok, default=None, names: dict | None = None) -> Button:
    """`names`: {button: its text}, where a standard button's own (Yes, No) would not say what it does."""
    box = QMessageBox(icon, title, text, buttons, parent)
    for button, name in (names or {}).items():
        box.button(button).setText(name)
    if informative:
        box.setInformativeText(informative)
    if details:
        box.setDetailedText(details)
    if default is not None:
        box.setDefaultButton(default)
    return Button(box.exec())


def error(parent, title: str, text: str, details: str = "", informative: str = ""):
    message(parent, Icon.Critical, title, text, details, informative)


def warning(parent, title: str, text: str, informative: str = ""):
    message(parent, Icon.Warning, title, text, informative=informative)


def info(parent, title: str, text: str, informative: str = ""):
    message(parent, Icon.Information, title, text, informative=informative)


def ask_save_changes(parent, name: str) -> str:
    """"save", "discard" or "cancel"."""
    answer = message(parent, Icon.Warning, "Unsaved changes", f"Save the changes to {name}?",
                     informative="Your changes are lost if you don't save them.",
                     buttons=Button.Save | Button.Discard | Button.Cancel, default=Button.Save)
    return {Button.Save: "save", Button.Discard: "discard"}.get(answer, "cancel")


def ask_recover(parent, name: str, when: str) -> bool:
    answer = message(parent, Icon.Question, "Recover unsaved changes?",
                     f"{name} has unsaved changes from {when} (autosaved before Lipsmith closed).",
                     informative="Recover them? If you don't, the autosave is deleted and the project opens as "
                                 "it was last saved.",
                     buttons=Button.Yes | Button.No, default=Button.Yes)
    return answer == Button.Yes


def ask_picture_length(parent, keep: str, cut: str) -> str:
    """A new project whose dub and picture differ in length: "pad" (keep the whole picture, the
    default) or "cut" (to the dub); `keep` and `cut` state what each exports (Project.length_text)."""
    answer = message(parent, Icon.Question, "Picture and dub differ in length",
                     "Keep the whole picture? Frames with no dub under them pass through untouched.",
                     informative=f"Keep the whole picture: {keep}\nCut to the dub: {cut}\n\n"
                                 "Project ▸ Settings ▸ Length policy changes it later.",
                     buttons=Button.Yes | Button.No, default=Button.Yes,
                     names={Button.Yes: "Keep the whole picture", Button.No: "Cut to the dub"})
    return "cut" if answer == Button.No else "pad"


def ask_export_unrendered(parent, unrendered, total: int) -> bool:
    """Export although the `unrendered` segments (Project.unrendered_segments, of `total`) have no take?"""
    n = len(unrendered)
    shown = ", ".join(s.title for s in unrendered[:8]) + (", …" if n > 8 else "")
    text = (f"{n} of {total} segments is not rendered: it exports with the original mouth" if n == 1 else
            f"{n} of {total} segments are not rendered: they export with the original mouth")
    answer = message(parent, Icon.Warning, "Export", text,
                     informative=f"Not rendered: {shown}. Render ▸ Render… lip-syncs them first.",
                     buttons=Button.Yes | Button.Cancel, default=Button.Cancel, names={Button.Yes: "Export anyway"})
    return answer == Button.Yes


def ask(parent, title: str, text: str, informative: str = "") -> bool:
    return message(parent, Icon.Question, title, text, informative=informative,
                   buttons=Button.Yes | Button.No, default=Button.Yes) == Button.Yes


def choose(parent, title: str, text: str, items) -> int | None:
    """Which of `items` (texts) the user picks from a list; None when cancelled."""
    items = list(items)
    picked, ok = QInputDialog.getItem(parent, title, text, items, 0, False)
    return items.index(picked) if ok and picked in items else None


def _with_browse(dialog: QDialog, line: QLineEdit, browse) -> QWidget:
    """`line` with a Browse… button beside it (which calls `browse`), as one form field."""
    button = QPushButton("Browse…", dialog)
    button.clicked.connect(browse)
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(line, 1)
    row.addWidget(button)
    holder = QWidget(dialog)
    holder.setLayout(row)
    return holder


def _lay_out(dialog: QDialog, form: QFormLayout, summary: str, ok_text: str):
    """The dialogs' common frame: the form, a wrapped hint, then OK (named `ok_text`) / Cancel."""
    note = QLabel(summary, dialog)
    note.setObjectName("hint")
    note.setWordWrap(True)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, dialog)
    buttons.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addLayout(form)
    layout.addWidget(note)
    layout.addWidget(buttons)
    dialog.resize(560, dialog.sizeHint().height())


class ExportDialog(QDialog):
    """Where to write the video, in which format (the preset: H.264's quality), with which audio
    and loudness: the command line's `export` options. A name it proposes (a format's suffix) is never
    one of `inputs` (core.export.unused_output)."""

    def __init__(self, default_path: Path, summary: str, inputs=(), parent=None):
        from core.export import AUDIO_MODES, default_format
        from core.delivery import LOUDNESS_TARGETS
        from core.video import VIDEO_CODECS

        super().__init__(parent)
        self.setWindowTitle("Export")
        self.inputs = tuple(inputs)
        self.path = QLineEdit(str(default_path), self)
        holder = _with_browse(self, self.path, self._browse)
        self.format = QComboBox(self)
        for name, codec in VIDEO_CODECS.items():
            self.format.addItem(f"{codec.title} ({', '.join(codec.suffixes)})", name)
        self.format.setCurrentIndex(self.format.findData(default_format(default_path)))
        self.format.currentIndexChanged.connect(self._follow_format)
        self.preset = QComboBox(self)
        self.preset.addItems(list(EXPORT_PRESETS))
        self.audio = QComboBox(self)
        for name, what in AUDIO_MODES.items():
            self.audio.addItem(what[0].upper() + what[1:], name)
        self.loudness = QComboBox(self)
        self.loudness.addItem("As mixed", "off")
        for name, (lufs, standard) in LOUDNESS_TARGETS.items():
            self.loudness.addItem(f"{lufs:g} LUFS ({standard})", name)
        form = QFormLayout()
        form.addRow("File", holder)
        form.addRow("Format", self.format)
        form.addRow("Preset", self.preset)
        form.addRow("Audio", self.audio)
        form.addRow("Loudness", self.loudness)
        _lay_out(self, form, summary, "Export")
        self._follow_format()

    def _follow_format(self):
        """A name whose container cannot hold the format takes the format's first (ProRes: .mov), unless
        that names an input; the preset is H.264's only."""
        from core.export import unused_output
        from core.video import VIDEO_CODECS

        codec = VIDEO_CODECS[self.format.currentData()]
        path = Path(self.path.text())
        if path.suffix.lower() not in codec.suffixes:
            self.path.setText(str(unused_output(path.with_suffix(codec.suffixes[0]), self.inputs)))
        self.preset.setEnabled(self.format.currentData() == "h264")

    def _browse(self):
        from core.video import VIDEO_CODECS

        suffixes = VIDEO_CODECS[self.format.currentData()].suffixes
        path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text(),
                                              f"Video ({' '.join('*' + s for s in suffixes)})")
        if path:
            self.path.setText(path if Path(path).suffix.lower() in suffixes else path + suffixes[0])

    def values(self) -> tuple[Path, str, dict]:
        """(the file, the preset, export_request's format, audio and loudness)."""
        return (Path(self.path.text()).expanduser(), self.preset.currentText(),
                {"format": self.format.currentData(), "audio": self.audio.currentData(),
                 "loudness": self.loudness.currentData()})


class RenderDialog(QDialog):
    """Render ▸ Render…: what to render (`targets`: their texts, the first preselected), with which
    mouth (`mouth` preselected: the project's), and where the new take replaces a segment's chosen
    take (core.jobs.REPLACE_CHOSEN, "never" preselected: it is chosen only where there is none)."""

    def __init__(self, targets, mouth: str, summary: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Render")
        self.target = QComboBox(self)
        self.target.addItems(list(targets))
        self.mouth = QComboBox(self)
        for value, text in MOUTH_TEXT.items():
            self.mouth.addItem(text, value)
        self.mouth.setCurrentIndex(self.mouth.findData(mouth))
        self.mouth.setToolTip(MOUTH_TIP + " (the project's choice, in Project ▸ Settings, is preselected)")
        self.replace = QComboBox(self)
        for value, text in REPLACE_CHOSEN.items():
            self.replace.addItem(text, value)
        self.replace.setToolTip("The new take is added to every segment it covers and chosen where a segment has "
                                "none; where one is chosen, it replaces it only as this says. \"Scores better\": "
                                "once scoring has measured the new take, where its LSE-C is higher")
        form = QFormLayout()
        form.addRow("Render", self.target)
        form.addRow("Mouth", self.mouth)
        form.addRow("Replace chosen takes", self.replace)
        _lay_out(self, form, summary, "Render")

    def values(self) -> tuple[str, str, str]:
        """(the chosen target's text, "actor" or "generated", a REPLACE_CHOSEN key)."""
        return self.target.currentText(), self.mouth.currentData(), self.replace.currentData()


class AdaptDialog(QDialog):
    """Render ▸ Adapt to Speaker…: the time budget, whether to adapt the expert first, where the
    adapted weights go, and whether the project should render with them from now on."""

    def __init__(self, default_path: Path, summary: str, minutes: float = 5.0, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Adapt to speaker")
        self.minutes = typed(QDoubleSpinBox(self))
        self.minutes.setRange(0.5, 600.0)
        self.minutes.setDecimals(2)
        self.minutes.setSingleStep(1.0)
        self.minutes.setSuffix(" min")
        self.minutes.setValue(float(minutes))
        self.minutes.setToolTip("Training time budget (face detection of the clip comes first and is not counted)")
        self.path = QLineEdit(str(default_path), self)
        holder = _with_browse(self, self.path, self._browse)
        self.expert_minutes = typed(QDoubleSpinBox(self))
        self.expert_minutes.setRange(0.0, 600.0)
        self.expert_minutes.setDecimals(2)
        self.expert_minutes.setSingleStep(1.0)
        self.expert_minutes.setSuffix(" min")
        self.expert_minutes.setSpecialValueText("off")
        self.expert_minutes.setToolTip(
            "First teach the sync expert this voice for this long, then train the generator against it (its own "
            "budget, before the generator's). Saved beside the weights as <name>.expert.safetensors; scores keep "
            "using the bundled expert, so takes stay comparable")
        self.use = QCheckBox("Render with it from now on (the project's generator)", self)
        self.use.setToolTip("Otherwise choose it per segment in the inspector's Model, or in Project ▸ Settings")
        form = QFormLayout()
        form.addRow("Time budget", self.minutes)
        form.addRow("Adapt the expert first", self.expert_minutes)
        form.addRow("Save weights to", holder)
        form.addRow(self.use)
        _lay_out(self, form, summary, "Adapt")

    def _browse(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save the adapted model to", self.path.text(),
                                              "Generator weights (*.safetensors)")
        if path:
            self.path.setText(path if path.endswith(".safetensors") else path + ".safetensors")

    def values(self) -> tuple[Path, float, bool, float]:
        """(output, generator minutes, use it from now on, expert minutes: 0 is off)."""
        return (Path(self.path.text().strip()).expanduser(), float(self.minutes.value()), self.use.isChecked(),
                float(self.expert_minutes.value()))
