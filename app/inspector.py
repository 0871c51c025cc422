"""The inspector: the segment under the playhead — its name, range, kind and confidence, its
render settings (overrides of the project's: model — the bundled generator or a speaker-adapted
one —, smoothing, pads, feather; which face it dubs, of how many found, chosen in the preview's
face picker), its slip (the window's actions: Alt+, / Alt+.), Re-render, and its takes (those rendered
before a slip say so) — and the dub's offset with the nudge buttons (the window's actions: Alt+←/→ one
frame, Alt+Shift+←/→ one second).

Compare A/B puts two takes of the segment side by side in time: A the chosen take, B the one
selected in the list; the preview shows one, the A | B buttons (or the window's flip key, the
backslash by default) switch at the same frame, "Choose shown take" makes the one on screen
the chosen take. Comparing is a view (Document.compare): only choosing is an edit.

A take's menu (right-click it in the list, or in the timeline's takes lane) chooses it, compares it
A/B with the chosen take, or removes it from the project.

Every change is a command (RenameSegment; SetSegmentSettings, a spin box's run of steps merging
into one undo step; ChooseTake; RemoveTake; NudgeDub), so the Edit menu undoes it.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QMenu, QPushButton,
                               QSpinBox, QToolButton, QVBoxLayout, QWidget)

from core.adapt import checkpoint_key, model_choices
from core.project import ChooseTake, RemoveTake, RenameSegment, SetSegmentSettings

from .document import take_caption
from .project_settings import FRACTION_DECIMALS, typed

PAD_NAMES = ("top", "bottom", "left", "right")


VERDICT_WORDS = {"good": "good", "poor": "weak", "unscored": "not scored", "silence": "silence, not judged"}
CONFIDENCE_TIP = ("Lip-sync confidence is LSE-C, measured by Lipsmith's SyncNet sync expert: how clearly the mouth "
                  "matches the dub at the best offset (higher is better). Below the threshold — the dashed line in "
                  "the timeline's Sync lane, which you can drag — a segment is weak: worth another take.")


def score_text(project, segment) -> str:
    """A segment's confidence in plain words, as the inspector and the status bar say it (its chosen
    take's, over it): "good (0.081; threshold 0.0734)", "weak (…)", "not scored"."""
    words = VERDICT_WORDS[project.verdict(segment)]
    if segment.lse_c is None:
        return words
    return f"{words} ({segment.lse_c:.3g}; threshold {project.threshold:g})"


def score_tip(segment) -> str:
    """What the plain words stand for: the metric's name and, where measured, both numbers."""
    if segment.lse_c is None:
        return CONFIDENCE_TIP
    numbers = f"LSE-C {segment.lse_c:.3g}" + (f", LSE-D {segment.lse_d:.2f} (lower is better)"
                                              if segment.lse_d is not None else "")
    return f"{CONFIDENCE_TIP}\n\nThis segment: {numbers}."


def slip_text(segment, fps: float) -> str:
    """"Slip: +2 frames (+80 ms, heard later)", or that the line's dub is where it was recorded."""
    if segment.kind != "speech":
        return ""
    if not segment.slip:
        return "Slip: none (Alt+, / Alt+. move this line's dub by a frame)"
    return (f"Slip: {segment.slip:+d} frames ({segment.slip / fps * 1000:+.0f} ms, heard "
            f"{'later' if segment.slip > 0 else 'earlier'})")


def face_text(document, segment) -> str:
    """"Face: 1 (of 2 found)": the face the segment dubs and the most faces its shots offer (once the
    faces are found: the mask overlay or the face picker finds them)."""
    face = document.segment_face(segment)
    own = "" if "face_index" in segment.settings else ", the project's"
    if document.faces is None:
        return f"Face: {face}{own} (faces not found yet: Shift+F numbers them)"
    found = document.faces.found_in(document.source_frames(segment.start, segment.end))
    if found is None:
        return f"Face: {face}{own} (faces not detected yet here)"
    return f"Face: {face}{own} (of {found} found)"


class Inspector(QWidget):
    render_requested = Signal(str)  # segment id

    def __init__(self, parent=None):
        super().__init__(parent)
        self.document = None
        self.segment = None
        self._shown_key = None
        self.title = QLabel("No segment", self)
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.title.setFont(font)
        self.title.setWordWrap(True)  # a long name wraps rather than widening the dock
        self.name = QLineEdit(self)
        self.name.setPlaceholderText("Name this segment")
        self.name.setToolTip("The segment's name in the timeline (Enter applies; empty: its id). F2 or a "
                             "double-click on the segment in the timeline edits it too.")
        self.name.setMaxLength(80)
        self.name.editingFinished.connect(self._rename)
        self.range_label = QLabel("", self)
        self.range_label.setWordWrap(True)
        self.slip_label = QLabel("", self)
        self.slip_label.setWordWrap(True)
        self.slip_label.setToolTip("This line's own dub moved by whole frames, the rest of the dub as it is: "
                                   "Alt+, / Alt+. (or Alt+drag in the timeline's Dub lane)")
        self.confidence_label = QLabel("", self)
        self.confidence_label.setWordWrap(True)
        self.hint = QLabel("", self)
        self.hint.setObjectName("hint")
        self.hint.setWordWrap(True)

        self.model = QComboBox(self)
        self.model.setToolTip("The generator this segment renders with: the project's, the bundled one, or a "
                              "model adapted to the speaker (Render ▸ Adapt to Speaker…; Render ▸ Remove Adapted "
                              "Model… forgets one)")
        self.model.activated.connect(self._choose_model)
        self.smooth = typed(QSpinBox(self))
        self.smooth.setRange(0, 99)
        self.smooth.setSuffix(" frames")
        self.smooth.setToolTip("Face box smoothing window (0: off)")
        self.smooth.valueChanged.connect(lambda v: self._set({"smooth_window": int(v)}))
        self.pads = []
        pads_row = QGridLayout()  # two by two, each named: the dock stays narrow enough beside the preview
        pads_row.setSpacing(4)
        for n, name in enumerate(PAD_NAMES):
            spin = typed(QSpinBox(self))
            spin.setRange(-100, 200)
            spin.setToolTip(f"Pixels added at the face box's {name}")
            spin.valueChanged.connect(lambda _: self._set({"pads": [s.value() for s in self.pads]}))
            self.pads.append(spin)
            spin.setPrefix(f"{name[0].upper()} ")
            pads_row.addWidget(spin, n // 2, n % 2)
        self.feather = typed(QDoubleSpinBox(self))
        self.feather.setDecimals(FRACTION_DECIMALS)
        self.feather.setRange(0.01, 1.0)
        self.feather.setSingleStep(0.01)
        self.feather.setToolTip("Mask feather, as a fraction of the face size")
        self.feather.valueChanged.connect(lambda v: self._set({"feather": round(float(v), 3)}))
        self.face_label = QLabel("", self)
        self.face_label.setWordWrap(True)
        self.face_label.setToolTip("The face this segment dubs (0: the largest, most central one) and how many "
                                   "faces its shots offer. View ▸ Preview: Face Picker (Shift+F) numbers them in "
                                   "the preview: click one to choose it.")
        self.overridden = QLabel("", self)
        self.overridden.setObjectName("hint")
        self.overridden.setWordWrap(True)
        self.reset_button = QPushButton("Use project defaults", self)
        self.reset_button.clicked.connect(self._reset)

        settings = QGroupBox("Render settings", self)
        form = QFormLayout(settings)
        form.addRow("Model", self.model)
        form.addRow("Smoothing", self.smooth)
        form.addRow("Pads", pads_row)
        form.addRow("Feather", self.feather)
        form.addRow(self.face_label)
        form.addRow(self.overridden)
        form.addRow(self.reset_button)

        self.render_button = QPushButton("Re-render segment", self)
        self.render_button.setToolTip("Render this segment with its settings into a new take (Ctrl+R)")
        self.render_button.clicked.connect(lambda: self.segment and self.render_requested.emit(self.segment.id))

        takes = QGroupBox("Takes", self)
        self.takes = QListWidget(self)
        self.takes.setWordWrap(True)
        self.takes.itemDoubleClicked.connect(lambda item: self._choose(item.data(Qt.ItemDataRole.UserRole)))
        self.takes.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.takes.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.takes.customContextMenuRequested.connect(self._on_takes_menu)
        self.use_button = QPushButton("Use take", self)
        self.use_button.clicked.connect(self._choose_current)
        self.original_button = QPushButton("Use original", self)
        self.original_button.setToolTip("Export this segment with the source frames")
        self.original_button.clicked.connect(lambda: self._choose(None))
        buttons = QHBoxLayout()
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.original_button)
        takes_layout = QVBoxLayout(takes)
        takes_layout.addWidget(self.takes)
        takes_layout.addLayout(buttons)
        takes_layout.addWidget(self._build_compare())

        dub = QGroupBox("Dub", self)
        self.offset_label = QLabel("", self)
        self.offset_label.setWordWrap(True)
        self.dub_controls = QHBoxLayout()
        self.dub_controls.setSpacing(2)
        dub_layout = QVBoxLayout(dub)
        dub_layout.addWidget(self.offset_label)
        dub_layout.addLayout(self.dub_controls)
        self.dub_box = dub

        layout = QVBoxLayout(self)
        layout.addWidget(dub)
        layout.addWidget(self.title)
        layout.addWidget(self.name)
        layout.addWidget(self.range_label)
        layout.addWidget(self.slip_label)
        layout.addWidget(self.confidence_label)
        layout.addWidget(self.hint)
        layout.addWidget(settings)
        layout.addWidget(self.render_button)
        self.takes.setMinimumHeight(90)
        self.takes.setMaximumHeight(180)
        layout.addWidget(takes)
        layout.addStretch(1)
        self.set_document(None)

    def _build_compare(self) -> QWidget:
        """Compare A/B (a toggle), and while comparing: which side the preview shows, and choosing it."""
        self.compare_button = QPushButton("Compare A/B", self)
        self.compare_button.setCheckable(True)
        self.compare_button.setToolTip("Flip the preview between two takes at the same frame: A the chosen take, "
                                       "B the one selected in the list. Changes nothing in the project.")
        self.compare_button.clicked.connect(self._toggle_compare)
        self.side_buttons = {}
        sides = QButtonGroup(self)
        for side in ("A", "B"):
            button = QToolButton(self)
            button.setCheckable(True)
            button.setToolTip("Show this take in the preview (the flip key, backslash by default, switches; "
                              "Help ▸ Keyboard Shortcuts rebinds it)")
            button.clicked.connect(lambda _=False, side=side: self.document and self.document.show_compare_side(side))
            sides.addButton(button)
            self.side_buttons[side] = button
        self.choose_shown_button = QPushButton("Choose shown take", self)
        self.choose_shown_button.setToolTip("Make the take on screen the segment's chosen take (one undo step)")
        self.choose_shown_button.clicked.connect(lambda: self._choose(self.document.compare.shown))
        self.compare_row = QWidget(self)
        row = QGridLayout(self.compare_row)  # the two sides over the button: the dock stays narrow
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.side_buttons["A"], 0, 0)
        row.addWidget(self.side_buttons["B"], 0, 1)
        row.addWidget(self.choose_shown_button, 1, 0, 1, 2)
        box = QWidget(self)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.compare_button)
        layout.addWidget(self.compare_row)
        return box

    def add_dub_control(self, widget):
        """A nudge button (the window owns the actions behind them)."""
        self.dub_controls.addWidget(widget)

    def set_document(self, document):
        if self.document is not None:
            for signal in (self.document.changed, self.document.frame_changed, self.document.models_changed,
                           self.document.view_changed, self.document.media_changed):
                signal.disconnect(self.refresh)
        self.document = document
        self._shown_key = None
        if document is not None:
            for signal in (document.changed, document.frame_changed, document.models_changed,
                           document.view_changed, document.media_changed):
                signal.connect(self.refresh)
        self.refresh()

    # -- showing

    def refresh(self, *_):
        doc = self.document
        segment = doc.selected_segment() if doc is not None else None
        project = doc.project if doc is not None else None
        # rebuild only when what is shown changed (segments and takes are replaced, never mutated)
        key = (id(segment), segment, id(project.takes) if project else None, project.threshold if project else None,
               doc.models if doc else None, project.dub_offset if project else None,
               tuple((k, str(v)) for k, v in project.settings.items()) if project else None,
               project.adapted_models if project else None, doc.compare if doc else None,
               id(doc.faces) if doc else None)
        if key == self._shown_key:
            return
        self._shown_key = key
        self.segment = segment
        self._show_dub()
        enabled = segment is not None
        for w in (self.name, self.model, self.smooth, self.feather, self.reset_button, self.render_button, self.takes,
                  self.original_button, *self.pads):
            w.setEnabled(enabled)
        if not self.name.hasFocus() or segment is None:
            self.name.setText(segment.name if segment is not None else "")
            self.name.setPlaceholderText(f"Name segment {segment.id}" if segment is not None else "")
        if segment is None:
            self.title.setText("No segment" if doc is None or doc.project.segments else "No segments yet")
            self.range_label.setText("")
            self.slip_label.setText("")
            self.confidence_label.setText("")
            self.confidence_label.setToolTip("")
            self.hint.setText("" if doc is None else "Speech detection marks the segments; the inspector shows "
                                                      "the one under the playhead.")
            self.overridden.setText("")
            self.face_label.setText("")
            self.model.clear()
            self.takes.clear()
            self._update_buttons()
            return
        self.title.setText(f"{segment.title} · {segment.kind}" if segment.name
                           else f"Segment {segment.id} · {segment.kind}")
        self.range_label.setText(f"{doc.span_text(segment.start, segment.end)}  ({segment.frames} frames)")
        self.slip_label.setText(slip_text(segment, project.fps))
        self.confidence_label.setText(f"Lip-sync confidence: {score_text(project, segment)}")
        self.confidence_label.setToolTip(score_tip(segment))
        models = doc.models or {}
        hints = []
        if models.get("expert"):
            hints.append("No sync expert installed: confidence cannot be measured yet.")
        if models.get("generator"):
            hints.append("No generator model found: choose one with Render ▸ Generator model… to render.")
        self.hint.setText(" ".join(hints))
        settings = project.effective_settings(segment.id)
        self._fill(settings)
        self._fill_models(project, segment)
        self.face_label.setText(face_text(doc, segment))
        own = sorted(segment.settings)
        self.overridden.setText(f"Overrides the project: {', '.join(own)}" if own else "Project defaults")
        self.reset_button.setEnabled(bool(own))
        self._fill_takes(segment)

    def _fill(self, settings: dict):
        widgets = [self.smooth, self.feather, *self.pads]
        for w in widgets:
            w.blockSignals(True)
        self.smooth.setValue(int(settings["smooth_window"]))
        self.feather.setValue(float(settings["feather"]))
        for spin, value in zip(self.pads, settings["pads"]):
            spin.setValue(int(value))
        for w in widgets:
            w.blockSignals(False)

    def _fill_models(self, project, segment):
        """The project's default first (no override), then every model the segment could render with."""
        own = segment.settings.get("checkpoint")
        default = project.settings["checkpoint"]
        self.model.blockSignals(True)
        self.model.clear()
        choices = model_choices(project, own, default)
        default_text = next((t for t, v in choices if checkpoint_key(v) == checkpoint_key(str(default))), str(default))
        self.model.addItem(f"Project default: {default_text}", "")
        for text, value in choices:
            self.model.addItem(text, value)
        index = 0
        if own is not None:
            index = next((i for i in range(1, self.model.count())
                          if checkpoint_key(self.model.itemData(i)) == checkpoint_key(str(own))), 0)
        self.model.setCurrentIndex(index)
        self.model.blockSignals(False)

    def _choose_model(self, index: int):
        if self.segment is None or self.document is None:
            return
        value = self.model.itemData(index)
        if not value:
            if "checkpoint" in self.segment.settings:
                project, sid = self.document.project, self.segment.id
                self.document.execute(lambda: SetSegmentSettings(project, sid, reset=["checkpoint"]))
            return
        self._set({"checkpoint": value})

    def _fill_takes(self, segment):
        project = self.document.project
        self.takes.clear()
        for take in reversed(project.takes_for(segment.id)):  # newest first
            chosen = take.id == segment.take_id
            score = (take.segment_score(segment) or (None,))[0]  # over this segment: what it would show
            parts = [("✓ " if chosen else "   ") + take.label, f"frames {take.start}–{take.end}",
                     take.created.replace("T", " ")[:16]]
            if score is not None:
                parts.append(f"LSE-C {score:.3g}")
            missing = sum(b - a for a, b in take.no_face_ranges)
            if missing:
                parts.append(f"no face in {missing} frames")
            fallback = sum(b - a for a, b in take.generated_mouth_ranges)
            if fallback:
                parts.append(f"generated mouth in {fallback} frames (no actor's mouth alike)")
            parts += [f"⚠ {text}" for text in take.report.get("warnings", ())]
            offset = take.settings.get("dub_offset_frames")
            if offset is not None and offset != project.dub_offset:
                parts.append(f"rendered with the dub at {offset:+d} (now {project.dub_offset:+d})")
            slip = take.slip_for(segment)
            if slip != segment.slip:
                parts.append(f"rendered before a slip of {segment.slip:+d} frames" if slip == 0 else
                             f"rendered with the dub slipped {slip:+d} frames (now {segment.slip:+d})")
            item = QListWidgetItem("  ·  ".join(parts))
            item.setToolTip(item.text())  # the whole line, should the list be narrower than it
            item.setData(Qt.ItemDataRole.UserRole, take.id)
            if chosen:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            self.takes.addItem(item)
        if not self.takes.count():
            made = sum(t.segment_id == segment.id for t in project.takes.values())
            item = QListWidgetItem(f"{made} take(s) of this segment no longer fit it (the dub or the segment moved): "
                                   "Re-render (Ctrl+R) makes one" if made else "No takes yet: Re-render (Ctrl+R) makes one")
            item.setToolTip(item.text())
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.takes.addItem(item)
        self._update_buttons()

    def _update_buttons(self):
        item = self.takes.currentItem()
        take_id = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        segment = self.segment
        self.use_button.setEnabled(bool(take_id) and segment is not None and take_id != segment.take_id)
        self.original_button.setEnabled(segment is not None and segment.take_id is not None)
        self._show_compare()

    def _show_compare(self):
        doc, segment = self.document, self.segment
        compare = doc.compare if doc is not None else None
        self.compare_button.setEnabled(segment is not None and len(doc.project.takes_for(segment.id)) >= 2)
        self.compare_button.setChecked(compare is not None)
        self.compare_row.setVisible(compare is not None)
        if compare is None:
            return
        for side, button in self.side_buttons.items():
            take = doc.project.takes[compare.a if side == "A" else compare.b]
            button.setText(take_caption(side, take, doc.project.segment(compare.segment_id)))
            button.setChecked(side == compare.side)
        self.choose_shown_button.setEnabled(compare.shown != segment.take_id)

    def _show_dub(self):
        doc = self.document
        project = doc.project if doc is not None else None
        has_dub = project is not None and project.dub is not None
        self.dub_box.setEnabled(has_dub)
        if not has_dub:
            self.offset_label.setText("No dub" if project is not None else "")
            return
        frames = project.dub_offset
        when = "later" if frames > 0 else "earlier"
        self.offset_label.setText(f"Offset {frames:+d} frames ({frames / project.fps:+.3f} s)"
                                  + (f": the dub plays {when} than recorded" if frames else ": as recorded"))

    # -- editing

    def _rename(self):
        if self.segment is None or self.document is None:
            return
        name = self.name.text()
        if " ".join(name.split()) == self.segment.name:
            return
        project, sid = self.document.project, self.segment.id
        self.document.execute(lambda: RenameSegment(project, sid, name))

    def _set(self, changes: dict):
        if self.segment is None or self.document is None:
            return
        project, sid = self.document.project, self.segment.id
        self.document.execute(lambda: SetSegmentSettings(project, sid, changes))

    def _reset(self):
        if self.segment is None or not self.segment.settings:
            return
        project, sid, keys = self.document.project, self.segment.id, list(self.segment.settings)
        self.document.execute(lambda: SetSegmentSettings(project, sid, reset=keys))

    def _toggle_compare(self, on: bool):
        if self.segment is None or self.document is None:
            return
        if on:
            self.document.start_compare(self.segment.id, *self._compare_pair())
        else:
            self.document.stop_compare()

    def _compare_pair(self) -> tuple[str, str]:
        """A: the chosen take (else the newest other); B: the one selected in the list (else the newest other)."""
        ids = [t.id for t in reversed(self.document.project.takes_for(self.segment.id))]  # newest first
        item = self.takes.currentItem()
        selected = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        a = self.segment.take_id if self.segment.take_id in ids else None
        b = selected if selected in ids and selected != a else None
        a = a or next(i for i in ids if i != b)
        b = b or next(i for i in ids if i != a)
        return a, b

    def _choose_current(self):
        item = self.takes.currentItem()
        if item is not None and item.data(Qt.ItemDataRole.UserRole):
            self._choose(item.data(Qt.ItemDataRole.UserRole))

    def take_menu(self, take_id: str) -> QMenu:
        """Choose, Compare A/B (with the chosen take) and Remove for a take, which becomes the list's current
        one: the list's own buttons. A take that cannot serve the segment under the playhead (it is not in
        the list) can only be removed."""
        row = next((i for i in range(self.takes.count())
                    if self.takes.item(i).data(Qt.ItemDataRole.UserRole) == take_id), None)
        if row is not None:
            self.takes.setCurrentRow(row)
        menu = QMenu(self)
        menu.addAction("&Choose", self._choose_current).setEnabled(row is not None and self.use_button.isEnabled())
        menu.addAction("Compare &A/B", lambda: self._toggle_compare(True)).setEnabled(
            row is not None and self.compare_button.isEnabled())
        menu.addAction("&Remove", lambda: self._remove(take_id))
        return menu

    def _on_takes_menu(self, at):
        item = self.takes.itemAt(at)
        take_id = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if take_id:
            menu = self.take_menu(take_id)
            menu.exec(self.takes.viewport().mapToGlobal(at))
            menu.deleteLater()

    def _remove(self, take_id: str):
        doc = self.document
        if doc is None or take_id not in doc.project.takes:
            return
        label = doc.project.takes[take_id].label or take_id
        if doc.execute(lambda: RemoveTake(doc.project, take_id)):
            doc.message.emit(f"Removed {label}: a segment that chose it exports the original frames (Undo brings "
                             "it back)")

    def _choose(self, take_id):
        if self.segment is None or self.document is None:
            return
        doc, sid = self.document, self.segment.id
        if doc.execute(lambda: ChooseTake(doc.project, sid, take_id)):
            s = doc.project.segment(sid)
            what = doc.project.takes[take_id].label if take_id else "the original frames"
            doc.message.emit(f"Segment {s.title} exports {what}: lip-sync confidence {score_text(doc.project, s)}")
