"""Project ▸ Settings…: the project-wide render choices — generator (the bundled one, a
speaker-adapted one, a file chosen with Render ▸ Generator Model…), length policy, face detector,
which face, device, the mouth renders paste (the actor's own or the generated one) — and the
defaults every segment starts from (pads, smoothing, mask feather and size, colour match). OK
applies the changed ones as one undoable SetProjectSettings; a value the project refuses is named
in the dialog, which then stays open.
"""
from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget)

from core.adapt import checkpoint_key, model_choices
from core.hparams import LENGTH_POLICIES
from core.project import EditError, SetProjectSettings

_LENGTH_WORDS = {
    "cut": "Cut to the shorter of video and dub",
    "loop": "Loop the video to the dub's length",
    "bounce": "Bounce the video (forwards, backwards) to the dub's length",
    "pad": "Pad: the original frames after the dub ends",
}
LENGTH_TEXT = {p: _LENGTH_WORDS.get(p, p) for p in LENGTH_POLICIES}
DETECTORS = {"retinaface": "RetinaFace (bundled)", "face-alignment": "face-alignment (S3FD; its weight files locally)"}
DEVICES = ("auto", "cpu", "cuda", "mps")
DEVICE_TEXT = {"auto": "Automatic (CUDA, then MPS, then CPU)", "cpu": "CPU", "cuda": "CUDA GPU",
               "mps": "Apple GPU (MPS)"}
PAD_NAMES = ("top", "bottom", "left", "right")
MOUTH_TEXT = {"actor": "Actor's own (lips, teeth and skin from the footage, in the generated shape)",
              "actor-closing": "Actor's own, shut where the dub shuts real lips (more closures, less steady)",
              "generated": "Generated"}
MOUTH_TIP = ("The mouth a render pastes. Actor's own: the actor's lips, teeth and skin from frames at least 1 s "
             "away, aligned to the generated mouth's shape; where the footage has nothing alike (or the video is a "
             "still) the generated mouth is used, and the takes mark those frames")
FRACTION_DECIMALS = 3  # the project keeps fractions to 3 decimals: what can be typed is what is stored


def typed(spin):
    """A spin box that takes what is typed: its value arrives (valueChanged) on Enter, focus-out or a
    step, not per keystroke, so an edit applied per value never reformats the text being typed."""
    spin.setKeyboardTracking(False)
    return spin


FRACTIONS = (("feather", "Mask feather", "Softness of the mask's edge, as a fraction of the face size"),
             ("mask_width", "Mask width", "Width of the mouth-and-jaw ellipse, as a fraction of the face box"),
             ("mask_height", "Mask height", "Height of the ellipse, as a fraction of the face box"))


def _combo(parent, items: dict, current: str) -> QComboBox:
    combo = QComboBox(parent)
    for value, text in items.items():
        combo.addItem(text, value)
    if current not in items:  # a value this dialog does not list (set in the file, or by a newer version)
        combo.addItem(str(current), current)
    combo.setCurrentIndex(combo.findData(current))
    return combo


class ProjectSettingsDialog(QDialog):
    def __init__(self, document, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Project settings")
        self.document = document
        project = document.project
        s = self.initial = dict(project.settings)

        self.generator = QComboBox(self)
        for text, value in model_choices(project, s["checkpoint"]):
            self.generator.addItem(text, value)
        self.generator.setCurrentIndex(next(i for i in range(self.generator.count())
                                            if checkpoint_key(self.generator.itemData(i))
                                            == checkpoint_key(s["checkpoint"])))
        self.generator.setToolTip("The generator renders use unless a segment chooses another (inspector ▸ Model); "
                                  "Render ▸ Adapt to Speaker… adds one fine-tuned on this video, Render ▸ Remove "
                                  "Adapted Model… forgets one")
        self.length_policy = _combo(self, LENGTH_TEXT, s["length_policy"])
        self.length_policy.setToolTip("What a render does when the dub and the video differ in length")
        if project.video.facts.is_image:
            self.length_policy.setEnabled(False)
            self.length_policy.setToolTip("The video is a still: it always follows the dub")
        self.detector = _combo(self, DETECTORS, s["detector"])
        self.face = typed(QSpinBox(self))
        self.face.setRange(0, 19)
        self.face.setSpecialValueText("Largest, most central")
        self.face.setPrefix("Face ")
        self.face.setValue(int(s["face_index"] or 0))
        self.face.setToolTip("Which face to dub when several are visible: 0 is the largest, most central one, "
                             "1 the next, …")
        self.device = _combo(self, DEVICE_TEXT, s["device"])
        self.device.setEditable(True)  # cuda:1 and the like
        self.device.setToolTip("Where renders run: auto, cpu, cuda, cuda:N or mps")
        self.mouth = _combo(self, MOUTH_TEXT, s["mouth"])
        self.mouth.setToolTip(MOUTH_TIP + " (a render can choose otherwise: Render ▸ Render…)")

        self.pads = []
        pads_row = QHBoxLayout()
        pads_row.setContentsMargins(0, 0, 0, 0)
        for name, value in zip(PAD_NAMES, s["pads"]):
            spin = typed(QSpinBox(self))
            spin.setRange(-100, 200)
            spin.setValue(int(value))
            spin.setToolTip(f"Pixels added at the face box's {name}")
            self.pads.append(spin)
            pads_row.addWidget(spin)
        pads = QWidget(self)
        pads.setLayout(pads_row)
        self.smooth = typed(QSpinBox(self))
        self.smooth.setRange(0, 99)
        self.smooth.setSuffix(" frames")
        self.smooth.setSpecialValueText("Off")
        self.smooth.setValue(int(s["smooth_window"]))
        self.smooth.setToolTip("Face box smoothing window (resets at scene cuts)")
        self.fractions: dict[str, QDoubleSpinBox] = {}
        for key, _, tip in FRACTIONS:
            spin = typed(QDoubleSpinBox(self))
            spin.setDecimals(FRACTION_DECIMALS)
            spin.setRange(0.01, 1.0)
            spin.setSingleStep(0.01)
            spin.setValue(float(s[key]))
            spin.setToolTip(tip)
            self.fractions[key] = spin
        self.color_match = QCheckBox("Match the generated mouth's colour to the face", self)
        self.color_match.setChecked(bool(s["color_match"]))

        clip = QGroupBox("Whole clip", self)
        form = QFormLayout(clip)
        form.addRow("Generator", self.generator)
        form.addRow("Length policy", self.length_policy)
        form.addRow("Face detector", self.detector)
        form.addRow("Which face", self.face)
        form.addRow("Device", self.device)
        form.addRow("Mouth", self.mouth)
        defaults = QGroupBox("Segment defaults", self)
        form = QFormLayout(defaults)
        form.addRow("Pads (T B L R)", pads)
        form.addRow("Smoothing", self.smooth)
        for key, text, _ in FRACTIONS:
            form.addRow(text, self.fractions[key])
        form.addRow(self.color_match)
        own = sum(1 for seg in project.segments if seg.settings)
        note = QLabel("New renders use these settings; existing takes keep what they were rendered with."
                      + (f" {own} segment(s) override some of the defaults in the inspector." if own else ""), self)
        note.setObjectName("hint")
        note.setWordWrap(True)
        self.error = QLabel("", self)
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #f85149;")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        layout = QVBoxLayout(self)
        layout.addWidget(clip)
        layout.addWidget(defaults)
        layout.addWidget(note)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(520, self.sizeHint().height())

    def values(self) -> dict:
        """Every setting as the dialog shows it."""
        text = self.device.currentText().strip()
        index = self.device.findText(text)  # a listed item shows its description: store its value
        device = self.device.itemData(index) if index >= 0 else text
        face = self.face.value()
        initial_face = self.initial["face_index"]
        return {
            "checkpoint": self.generator.currentData(),
            "length_policy": self.length_policy.currentData(),
            "detector": self.detector.currentData(),
            # 0 and None both mean the main face: keep whichever the project had
            "face_index": initial_face if face == (initial_face or 0) else (face or None),
            "device": device,
            "mouth": self.mouth.currentData(),
            "pads": [spin.value() for spin in self.pads],
            "smooth_window": self.smooth.value(),
            **{key: round(spin.value(), 3) for key, spin in self.fractions.items()},
            "color_match": self.color_match.isChecked(),
        }

    def changes(self) -> dict:
        same = {"checkpoint": lambda a, b: checkpoint_key(a) == checkpoint_key(b)}
        return {k: v for k, v in self.values().items() if not same.get(k, lambda a, b: a == b)(v, self.initial[k])}

    def accept(self):
        changes = self.changes()
        if changes:
            project = self.document.project
            try:
                command = SetProjectSettings(project, changes, merge=False, text="Project settings")
            except EditError as e:
                self.error.setText(str(e))
                return
            project.execute(command)
        super().accept()
