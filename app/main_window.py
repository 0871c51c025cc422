"""`MainWindow`: the editor's frame — menus and actions, the preview over the timeline, the
inspector, jobs, weak segments and markers docks — and the flows that tie them to the project:

  new project   video + dub → probe (job) → where they differ in length, keep the whole picture (the default)
                or cut it to the dub → saved project → speech segments (job)
  open          recovery offer for a newer autosave, relink of moved media, dub waveform (job)
  render        whole clip, in–out, or the segment under the playhead (job; Render ▸ Render… also picks the
                mouth: the actor's own or the generated one, the project's by default, and where the take
                replaces chosen ones: never, where it scores better, always) → a take named for its mouth and
                what changed, chosen where a segment had none (a re-rendered segment: there) → scored over its
                segments (job, when the sync expert is installed), in the render's undo step, which then
                chooses it where it scored better if asked; the renderer's warnings go to the status bar
  export        File ▸ Export… proposes a file that is no input (core.export.suggested_output) and, where
                segments have no chosen take, asks first (Project.unrendered_segments); original frames
                + chosen takes + dub → MP4 (job) → an export record
  score         the chosen takes with the sync expert (job) → segment confidence and per-frame curves
  adapt         Render ▸ Adapt to Speaker…: the generator fine-tuned on the project's video, its faces found
                with the project's detector (job) → an adapted model recorded in the project
                (AddAdaptedModel), a model choice for renders; Remove Adapted Model… forgets one
                (RemoveAdaptedModel: what chose it falls back to the bundled generator / the project's)
  settings      Project ▸ Settings… (app.project_settings) → one undoable SetProjectSettings
  nudge, name   the dub by a frame or a second, its segments with it (NudgeDub: takes rendered for the old
                timing are no longer chosen), a segment's name (RenameSegment)
  slip          one segment's dub by a frame (Alt+, / Alt+.; Alt+drag in the Dub lane), the rest of the dub as
                it is (SlipSegment: its takes rendered before the slip are no longer chosen; core.slip is what
                playback, renders and the export hear)
  timeline      a segment's edge dragged (TrimSegment, app.timeline); View ▸ Zoom to Fit / to Selection; its
                right-click menus hold this window's segment and lane actions and the inspector's take menu
  media lanes   the video's own audio (job) for the timeline; the face track (job) for the mask overlay and
                the face picker (View ▸ Preview: Face Picker: a click on a numbered face gives the segment
                under the playhead that face, core.project.choose_face)
  weak          the Weak Segments dock lists the speech scored below the threshold; Playback ▸ Next /
                Previous Weak Segment move the playhead to their starts
  markers       M adds a marker at the playhead (AddMarker; on one, M names it in the Markers dock, which
                lists, edits and removes them); Shift+↑/↓ walk them, ↑/↓ walk every edit (segment edges
                and markers); Shift+I/O go to the in / out mark; Ctrl+Shift+Space plays in to out; loop
  playback      J / K / L shuttle (K held: L / J jog a frame, held half speed; the key releases reach the
                transport through eventFilter); Playback ▸ Monitor and the transport bar's ♪ button choose
                the dub, the original or both and their levels (core.monitor; a view setting, kept in Settings)

Long work always runs as a Job (app.workers); its failure becomes a message box, its result is
applied on this thread as undoable commands. Autosave ticks every few seconds (core.project's
Autosaver decides when to write).
"""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QEvent, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QAbstractSpinBox, QApplication, QComboBox, QDockWidget, QFileDialog,
                               QInputDialog, QLabel, QLineEdit, QMainWindow, QScrollArea, QSplitter, QStyle,
                               QToolButton, QWidget)

import core.adapt
import core.export
import core.qc
from core import jobs
from core.errors import LipsmithError
from core.hparams import ACTOR_MOUTHS
from core.monitor import SOURCES, Monitor
from core.project import (SUFFIX, AddMarker, Autosaver, EditError, MergeSegments, NudgeDub, Project, ProjectError,
                          RecentProjects, RelinkAdaptedModel, RelinkMedia, RemoveAdaptedModel, RenameSegment,
                          SetProjectSettings, SlipSegment, SplitSegment, discard_autosave, recovery_candidate)

from . import dialogs
from .document import Document
from .filetypes import DUB_FILTER, PROJECT_FILTER, SUPPORTED_TEXT, VIDEO_FILTER, kind_of
from .frames import FrameReader
from .inspector import Inspector
from .jobs_panel import JobsPanel
from .markers import MarkersPanel
from .monitor import MonitorButton
from .playback import Transport
from .preview import PreviewPanel
from .project_settings import ProjectSettingsDialog
from .settings import Settings
from .shortcuts import SHORTCUTS, Shortcuts, ShortcutsDialog
from .theme import apply_theme, colours
from .timeline import Timeline
from .weak_segments import WeakSegmentsPanel
from .workers import Job, JobManager

APP_NAME = "Lipsmith"
WEAK_TITLE = "Weak Segments"
MARKERS_TITLE = "Markers"
AUTOSAVE_TICK_MS = 5000
CHECKPOINT_FILTER = "Generator checkpoints (*.safetensors *.pth *.pt *.ckpt)"
ADAPTED_FILTER = "Adapted generator weights (*.safetensors)"
SMOOTH_WINDOW = 5  # frames Render ▸ Smooth Segment's Take… offers to average a take's mouth over


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings | None = None, recent: RecentProjects | None = None):
        super().__init__()
        self.settings = settings or Settings()
        self.shortcuts = Shortcuts(self.settings)
        self.recent = recent or RecentProjects()
        self.colours = colours(self.settings.theme)
        self.document: Document | None = None
        self.autosaver: Autosaver | None = None
        self.jobs = JobManager(self)
        self.reader = FrameReader(self)
        self.transport = Transport(self)

        self.preview = PreviewPanel(self.reader, self)
        self.timeline = Timeline(self.colours, self)
        self.timeline.rename_requested.connect(self.rename_segment)
        self._track_job: Job | None = None
        self._track_failed = None  # the settings key a face track last failed for
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.preview)
        splitter.addWidget(self.timeline)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        self.setCentralWidget(splitter)

        self.inspector = Inspector(self)
        self.inspector.render_requested.connect(self.render_segment)
        scroll = QScrollArea(self)
        scroll.setWidget(self.inspector)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.inspector_dock = self._dock("Inspector", scroll, "inspector")
        self.jobs_panel = JobsPanel(self.jobs, self)
        self.jobs_dock = self._dock("Jobs", self.jobs_panel, "jobs")
        self.weak_panel = WeakSegmentsPanel(self)
        self.weak_dock = self._dock(WEAK_TITLE, self.weak_panel, "weak")
        self.tabifyDockWidget(self.jobs_dock, self.weak_dock)  # a third dock below would squeeze the inspector
        self.markers_panel = MarkersPanel(self)
        self.markers_dock = self._dock(MARKERS_TITLE, self.markers_panel, "markers")
        self.tabifyDockWidget(self.weak_dock, self.markers_dock)
        self.jobs_dock.raise_()
        self.weak_panel.count_changed.connect(
            lambda n: self.weak_dock.setWindowTitle(f"{WEAK_TITLE} ({n})" if n else WEAK_TITLE))
        self.markers_panel.count_changed.connect(
            lambda n: self.markers_dock.setWindowTitle(f"{MARKERS_TITLE} ({n})" if n else MARKERS_TITLE))

        self.frame_label = QLabel("", self)
        self.frame_label.setObjectName("frameInfo")
        self.statusBar().addPermanentWidget(self.frame_label)

        self.actions: dict[str, QAction] = {}
        self._build_actions()
        self._build_menus()
        self.apply_shortcuts()
        for name in ("play.start", "play.prev_frame", "play.toggle", "play.next_frame", "play.end"):
            self.preview.add_control(self._tool_button(name))
        self.monitor_button = MonitorButton([self.actions[f"play.monitor_{s}"] for s in SOURCES], self)
        self.monitor_button.levels_changed.connect(
            lambda dub, original: self.set_monitor(replace(self.transport.monitor, dub_db=dub, original_db=original)))
        self.preview.add_control(self.monitor_button)
        self.set_monitor(self.settings.monitor)
        for name, text in (("edit.nudge_earlier_second", "−1 s"), ("edit.nudge_earlier", "−1 frame"),
                           ("edit.nudge_later", "+1 frame"), ("edit.nudge_later_second", "+1 s")):
            self.inspector.add_dub_control(self._text_button(name, text))

        self.setAcceptDrops(True)
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(AUTOSAVE_TICK_MS)
        self.autosave_timer.timeout.connect(self._autosave_tick)
        self.autosave_timer.start()
        QApplication.instance().installEventFilter(self)  # Up / Down for a focused spin box or list: eventFilter
        self.resize(1400, 900)
        self.setMinimumSize(QSize(900, 600))
        geometry, state = self.settings.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        self._layout_docks = state is None  # first shown without a saved layout: see showEvent
        self.set_document(None)

    def _fit_inspector_width(self):
        """The inspector's dock is never narrower than its content (its texts wrap; the buttons and
        fields set it): with no horizontal scrolling, a narrower dock would cut widgets off. Known
        once the style sheet has sized them (shown; a theme change)."""
        scroll = self.inspector_dock.widget()
        scroll.setMinimumWidth(self.inspector.minimumSizeHint().width()
                               + scroll.verticalScrollBar().sizeHint().width() + 12)  # + the style's frame

    def eventFilter(self, watched, event):
        """Up and Down walk the edits, except in a focused spin box, list or combo box of this window,
        which steps through its own values with them (accepting the override gives it the key). K's
        press and release and L's and J's releases go to the transport (K held: L / J jog), and a
        window that loses the keyboard lets go of them."""
        kind = event.type()
        if (kind == QEvent.Type.ShortcutOverride and event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down)
                and event.modifiers() == Qt.KeyboardModifier.NoModifier
                and isinstance(watched, (QAbstractSpinBox, QAbstractItemView, QComboBox))
                and watched.window() is self):
            event.accept()
        if (kind in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyRelease) and not event.isAutoRepeat()
                and isinstance(watched, QWidget) and watched.window() is self):
            self._jog_keys(event)
        elif kind == QEvent.Type.WindowDeactivate and watched is self:
            self.transport.release_keys()
        return super().eventFilter(watched, event)

    def _jog_keys(self, event):
        """A press (its ShortcutOverride, before an action takes it) of play.stop's key holds the stop; a
        release of it lets go, of play.forward's or play.reverse's ends a jog. Releases match the key alone:
        a modifier may be let go first."""
        def key(name):
            bound = QKeySequence(self.shortcuts.key(name))
            return bound[0] if bound.count() else None

        if event.type() == QEvent.Type.ShortcutOverride:
            if event.keyCombination() == key("play.stop"):
                self.transport.hold_stop(True)
            return
        for name, release in (("play.stop", lambda: self.transport.hold_stop(False)),
                              ("play.forward", lambda: self.transport.release_jog(1)),
                              ("play.reverse", lambda: self.transport.release_jog(-1))):
            bound = key(name)
            if bound is not None and event.key() == bound.key():
                release()

    def showEvent(self, event):
        super().showEvent(event)
        self._fit_inspector_width()
        if self._layout_docks:  # once the docks have their sizes: the inspector (its takes list at the
            self._layout_docks = False  # bottom) gets the room, the jobs / weak segments tabs a few rows
            QTimer.singleShot(0, lambda: self.resizeDocks([self.inspector_dock, self.jobs_dock],
                                                          [max(self.height() - 200, 300), 140],
                                                          Qt.Orientation.Vertical))

    def _tool_button(self, name: str) -> QToolButton:
        icons = {"play.start": "SP_MediaSkipBackward", "play.prev_frame": "SP_MediaSeekBackward",
                 "play.next_frame": "SP_MediaSeekForward", "play.end": "SP_MediaSkipForward"}
        style = self.style()

        def icon():
            if name == "play.toggle":
                which = "SP_MediaPause" if self.transport.playing else "SP_MediaPlay"
            else:
                which = icons[name]
            return style.standardIcon(getattr(QStyle.StandardPixmap, which))

        action = self.actions[name]
        action.setIcon(icon())
        if name == "play.toggle":
            self.transport.state_changed.connect(lambda: action.setIcon(icon()))
        button = QToolButton(self)
        button.setDefaultAction(action)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        button.setAutoRaise(True)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        return button

    def _text_button(self, name: str, text: str) -> QToolButton:
        """A button for an action, with short text of its own (the action keeps its menu text)."""
        action = self.actions[name]
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(f"{action.toolTip()} ({self.shortcuts.key(name) or 'no key'})")
        button.clicked.connect(action.trigger)
        action.changed.connect(lambda: button.setEnabled(action.isEnabled()))
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        return button

    def _dock(self, title, widget, name) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        return dock

    # ------------------------------------------------------------------ actions and menus

    def _action(self, name: str, text: str, slot, checkable: bool = False) -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if name in SHORTCUTS:
            action.setToolTip(SHORTCUTS[name][1])
        action.setCheckable(checkable)
        action.triggered.connect(lambda checked=False: slot(checked) if checkable else slot())
        self.addAction(action)  # shortcuts work wherever the focus is in this window
        self.actions[name] = action
        return action

    def _build_actions(self):
        a = self._action
        a("file.new", "&New from Video…", self.new_project_dialog)
        a("file.open", "&Open…", self.open_dialog)
        a("file.save", "&Save", self.save)
        a("file.save_as", "Save &As…", self.save_as_dialog)
        a("file.export", "&Export…", self.export_dialog)
        a("file.quit", "&Quit", self.close)
        a("edit.undo", "&Undo", lambda: self.document and self.document.undo())
        a("edit.redo", "&Redo", lambda: self.document and self.document.redo())
        a("edit.split", "&Split Segment at Playhead", self.split_segment)
        a("edit.merge_next", "&Merge with Next Segment", self.merge_next)
        a("edit.rename", "Re&name Segment…", self.rename_segment)
        a("edit.slip_earlier", "Slip Segment's Dub 1 Frame Earlier", lambda: self.slip_segment(-1))
        a("edit.slip_later", "Slip Segment's Dub 1 Frame Later", lambda: self.slip_segment(1))
        a("edit.nudge_earlier", "Nudge Dub 1 Frame &Earlier", lambda: self.nudge_dub(-1))
        a("edit.nudge_later", "Nudge Dub 1 Frame &Later", lambda: self.nudge_dub(1))
        a("edit.nudge_earlier_second", "Nudge Dub 1 Second Earlier", lambda: self.nudge_dub(-self._second()))
        a("edit.nudge_later_second", "Nudge Dub 1 Second Later", lambda: self.nudge_dub(self._second()))
        a("project.settings", "&Settings…", self.project_settings_dialog)
        a("play.toggle", "&Play / Pause", self.transport.toggle)
        a("play.reverse", "Shuttle &Backwards", self.transport.reverse)
        a("play.stop", "S&top", self.transport.stop)
        a("play.forward", "Shuttle &Forwards", self.transport.forward)
        a("play.prev_frame", "Previous Frame", lambda: self._step(-1))
        a("play.next_frame", "Next Frame", lambda: self._step(1))
        a("play.back_second", "Back One Second", lambda: self._step_seconds(-1))
        a("play.forward_second", "Forward One Second", lambda: self._step_seconds(1))
        a("play.start", "Go to Start", lambda: self._goto(0))
        a("play.end", "Go to End", lambda: self._goto(None))
        a("play.next_weak", "Next &Weak Segment", lambda: self.goto_weak(1))
        a("play.prev_weak", "Previous Wea&k Segment", lambda: self.goto_weak(-1))
        a("mark.in", "Mark &In", lambda: self.document and self.document.mark_in())
        a("mark.out", "Mark &Out", lambda: self.document and self.document.mark_out())
        a("mark.clear", "&Clear In and Out", lambda: self.document and self.document.clear_marks())
        a("play.goto_in", "Go to I&n", lambda: self.goto_mark("in"))
        a("play.goto_out", "Go to O&ut", lambda: self.goto_mark("out"))
        a("play.prev_edit", "Previous &Edit", lambda: self.goto_edit(-1))
        a("play.next_edit", "Next E&dit", lambda: self.goto_edit(1))
        a("play.in_to_out", "Pla&y In to Out", self.play_in_to_out)
        a("play.loop", "&Loop Playback", self.transport.set_loop, True)
        monitor = QActionGroup(self)
        for source, text in SOURCES.items():
            action = a(f"play.monitor_{source}", f"Monitor &{text}",
                       lambda on, source=source: self.set_monitor(replace(self.transport.monitor, source=source)),
                       True)
            monitor.addAction(action)
        a("marker.add", "&Add Marker", self.add_marker)
        a("marker.remove", "Remo&ve Marker", self.remove_marker)
        a("marker.prev", "Previous &Marker", lambda: self.goto_marker(-1))
        a("marker.next", "Next Mar&ker", lambda: self.goto_marker(1))
        a("render.clip", "Render &Whole Clip", self.render_clip)
        a("render.range", "Render In–Out &Range", self.render_range)
        a("render.dialog", "Re&nder…", self.render_dialog)
        a("render.segment", "Re-render &Segment", self.render_segment)
        a("render.smooth", "S&mooth Segment's Take…", self.smooth_dialog)
        a("render.detect", "&Detect Segments Again", self.detect_segments)
        a("render.score", "Sc&ore Chosen Takes", self.score)
        a("render.checkpoint", "&Generator Model…", self.choose_checkpoint)
        a("render.adapt", "&Adapt to Speaker…", self.adapt_dialog)
        a("render.remove_adapted", "Remo&ve Adapted Model…", self.remove_adapted_model)
        a("view.result", "Show &Result", lambda on: self.document and self.document.set_show_result(on), True)
        a("view.fit", "Preview: &Fit", lambda: self.preview.set_zoom("fit"))
        a("view.actual", "Preview: &100 %", lambda: self.preview.set_zoom("actual"))
        a("view.mask", "Preview: &Mask Overlay", lambda on: self.document and self.document.set_show_mask(on), True)
        a("view.faces", "Preview: Face &Picker", lambda on: self.document and self.document.set_show_faces(on), True)
        a("view.compare_flip", "Preview: Flip Takes A/B", lambda: self.document and self.document.flip_compare())
        a("view.zoom_in", "Timeline: Zoom &In", self.timeline.zoom_in)
        a("view.zoom_out", "Timeline: Zoom &Out", self.timeline.zoom_out)
        a("view.zoom_all", "Timeline: &Zoom to Fit", self.timeline.zoom_to_fit)
        a("view.zoom_selection", "Timeline: Zoom to &Selection", self.zoom_to_selection)
        a("view.light", "&Light Theme", self.set_light_theme, True)
        a("help.shortcuts", "&Keyboard Shortcuts…", self.shortcuts_dialog)
        a("help.about", "&About Lipsmith", self.about)
        self.actions["view.light"].setChecked(self.settings.theme == "light")
        # right-clicks on the timeline: the segment's and the lane's actions, the inspector's take menu
        self.timeline.set_menus(
            segment=[self.actions[n] for n in ("render.segment", "edit.split", "edit.merge_next", "edit.rename")]
            + [None, self.actions["marker.add"]],
            lane=[self.actions["marker.add"], self.actions["view.zoom_all"]], take=self.inspector.take_menu)

    def apply_shortcuts(self):
        self.shortcuts.apply(self.actions)
        zoom_in = self.actions["view.zoom_in"]
        if self.shortcuts.key("view.zoom_in") == "Ctrl+=":  # Ctrl++ too: keyboards differ on which needs Shift
            zoom_in.setShortcuts([QKeySequence("Ctrl+="), QKeySequence("Ctrl++")])

    def _build_menus(self):
        bar = self.menuBar()
        m = bar.addMenu("&File")
        for name in ("file.new", "file.open"):
            m.addAction(self.actions[name])
        self.recent_menu = m.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        m.addSeparator()
        for name in ("file.save", "file.save_as"):
            m.addAction(self.actions[name])
        m.addSeparator()
        m.addAction(self.actions["file.export"])
        m.addSeparator()
        m.addAction(self.actions["file.quit"])

        m = bar.addMenu("&Edit")
        for name in ("edit.undo", "edit.redo", None, "edit.split", "edit.merge_next", "edit.rename", None,
                     "edit.slip_earlier", "edit.slip_later"):
            m.addSeparator() if name is None else m.addAction(self.actions[name])

        m = bar.addMenu("Pro&ject")
        for name in ("project.settings", "render.checkpoint", "render.remove_adapted", None, "edit.nudge_earlier",
                     "edit.nudge_later", "edit.nudge_earlier_second", "edit.nudge_later_second"):
            m.addSeparator() if name is None else m.addAction(self.actions[name])

        m = bar.addMenu("&Playback")
        for name in ("play.toggle", "play.reverse", "play.stop", "play.forward", None, "play.prev_frame",
                     "play.next_frame", "play.back_second", "play.forward_second", "play.start", "play.end", None,
                     "play.next_weak", "play.prev_weak", None, "marker.add", "marker.remove", "marker.prev",
                     "marker.next", None, "mark.in", "mark.out", "mark.clear", "play.goto_in", "play.goto_out", None,
                     "play.prev_edit", "play.next_edit", "play.in_to_out", "play.loop"):
            m.addSeparator() if name is None else m.addAction(self.actions[name])
        m.addSeparator()
        monitor = m.addMenu("&Monitor")
        for source in SOURCES:
            monitor.addAction(self.actions[f"play.monitor_{source}"])

        m = bar.addMenu("&Render")
        for name in ("render.segment", "render.smooth", "render.range", "render.clip", "render.dialog", None,
                     "render.detect", "render.score", None, "render.adapt", "render.remove_adapted",
                     "render.checkpoint"):
            m.addSeparator() if name is None else m.addAction(self.actions[name])

        m = bar.addMenu("&View")
        for name in ("view.result", "view.fit", "view.actual", "view.mask", "view.faces", None, "view.zoom_in",
                     "view.zoom_out", "view.zoom_all", "view.zoom_selection", None):
            m.addSeparator() if name is None else m.addAction(self.actions[name])
        m.addAction(self.inspector_dock.toggleViewAction())
        m.addAction(self.jobs_dock.toggleViewAction())
        m.addAction(self.weak_dock.toggleViewAction())
        m.addAction(self.markers_dock.toggleViewAction())
        m.addSeparator()
        m.addAction(self.actions["view.light"])

        m = bar.addMenu("&Help")
        m.addAction(self.actions["help.shortcuts"])
        m.addAction(self.actions["help.about"])

    def _fill_recent(self):
        menu = self.recent_menu
        menu.clear()
        paths = self.recent.paths()
        for path in paths:
            action = menu.addAction(f"{path.name}  —  {path.parent}")
            action.triggered.connect(lambda checked=False, p=path: self.open_project(p))
        if not paths:
            menu.addAction("No recent projects").setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear Recent", lambda: self.recent.clear())

    def _update_actions(self):
        doc = self.document
        has = doc is not None
        project = doc.project if has else None
        for name in ("file.save", "file.save_as", "file.export", "edit.split", "edit.merge_next", "play.toggle",
                     "play.reverse", "play.stop", "play.forward", "play.prev_frame", "play.next_frame",
                     "play.back_second", "play.forward_second", "play.start", "play.end", "play.next_weak",
                     "play.prev_weak", "mark.in", "mark.out", "play.goto_in", "play.goto_out", "play.prev_edit",
                     "play.next_edit", "play.in_to_out", "play.loop", "marker.add", "marker.remove", "marker.prev",
                     "marker.next",
                     "mark.clear", "render.clip", "render.range", "render.segment", "render.detect", "render.score",
                     "render.checkpoint", "render.adapt", "view.result", "view.fit", "view.actual", "view.zoom_in", "view.zoom_out",
                     "view.zoom_all", "view.zoom_selection", "view.mask", "view.faces", "project.settings",
                     "edit.rename", "edit.slip_earlier", "edit.slip_later", "edit.nudge_earlier",
                     "edit.nudge_later", "edit.nudge_earlier_second", "edit.nudge_later_second",
                     "render.remove_adapted", "render.smooth", "render.dialog"):
            self.actions[name].setEnabled(has)
        undo, redo = self.actions["edit.undo"], self.actions["edit.redo"]
        history = project.history if has else None
        undo.setEnabled(bool(history and history.can_undo))
        redo.setEnabled(bool(history and history.can_redo))
        undo.setText(f"&Undo {history.undo_text}" if history and history.can_undo else "&Undo")
        redo.setText(f"&Redo {history.redo_text}" if history and history.can_redo else "&Redo")
        if has:
            segments = bool(project.segments)
            for name in ("render.clip", "render.range", "render.segment", "render.dialog", "edit.split",
                         "edit.merge_next", "edit.rename", "edit.slip_earlier", "edit.slip_later"):
                self.actions[name].setEnabled(segments and project.dub is not None)
            for name in ("edit.nudge_earlier", "edit.nudge_later", "edit.nudge_earlier_second",
                         "edit.nudge_later_second"):
                self.actions[name].setEnabled(project.dub is not None)
            self.actions["view.mask"].setEnabled(not project.video.missing)
            self.actions["view.faces"].setEnabled(not project.video.missing)
            self.actions["render.adapt"].setEnabled(not project.video.missing and not project.video.facts.is_image)
            self.actions["render.remove_adapted"].setEnabled(bool(project.adapted_models))
            # which segment is the playhead's is known only when it is triggered: it says so there
            self.actions["render.smooth"].setEnabled(any(s.take_id for s in project.segments))
            self.actions["view.mask"].setChecked(doc.show_mask)
            self.actions["view.faces"].setChecked(doc.show_faces)
            self.actions["render.range"].setText("Render In–Out &Range" if doc.marked_range()
                                                 else "Render In–Out &Range (no marks: whole clip)")
            self.actions["view.result"].setChecked(doc.show_result)
        self._update_title()

    def _update_title(self):
        doc = self.document
        if doc is None:
            self.setWindowTitle(APP_NAME)
            self.setWindowModified(False)
            return
        self.setWindowTitle(f"{doc.title}[*] — {APP_NAME}")
        self.setWindowModified(doc.project.modified)

    def _update_frame_label(self, *_):
        doc = self.document
        if doc is None:
            self.frame_label.setText("")
            return
        text = f"{doc.time_text()}  frame {doc.frame}/{max(doc.length - 1, 0)}"
        r = doc.marked_range()
        if r is not None:
            text += f"   in {doc.time_text(r[0])}  out {doc.timecode.out_text(r[1])}"
        if self.transport.playing:
            text += f"   ▶ {self.transport.speed:+g}×" + (" in–out" if self.transport.range else "")
        if self.transport.loop:
            text += "   loop"
        self.frame_label.setText(text)
        self.actions["play.toggle"].setText("&Pause" if self.transport.playing else "&Play")

    def status(self, text: str, ms: int = 6000):
        self.statusBar().showMessage(text, ms)

    # ------------------------------------------------------------------ document

    def _document_links(self, document: Document) -> list:
        """The window's (signal, slot) pairs on a document, connected and disconnected together."""
        return [(document.changed, self._update_actions), (document.frame_changed, self._update_frame_label),
                (document.marks_changed, self._update_frame_label), (document.marks_changed, self._update_actions),
                (document.view_changed, self._update_actions), (document.message, self.status),
                (document.view_changed, self._ensure_track), (document.changed, self._ensure_track)]

    def set_document(self, document: Document | None):
        old = self.document
        if old is not None:
            for signal, slot in self._document_links(old):
                signal.disconnect(slot)
        self.transport.set_document(document)
        self.document = document
        self.autosaver = None
        if document is not None:
            for signal, slot in self._document_links(document):
                signal.connect(slot)
            self.autosaver = Autosaver(document.project)
            self.autosaver.reset(time.monotonic())
        self.transport.state_changed.connect(self._update_frame_label, Qt.ConnectionType.UniqueConnection)
        self.preview.set_document(document)
        self.timeline.set_document(document)
        self.inspector.set_document(document)
        self.weak_panel.set_document(document)
        self.markers_panel.set_document(document)
        self._update_actions()
        self._update_frame_label()
        if old is not None:
            old.close()
            old.deleteLater()

    def _set_project(self, project: Project, waveform=None):
        self.jobs.cancel_all()  # their results belong to the project being closed
        self._track_job = None
        self._track_failed = None
        self.set_document(Document(project, waveform, self))
        doc = self.document
        if waveform is None and project.dub is not None and not project.dub.missing:
            self.run_job("Read the dub", jobs.load_dub, project.dub.path, quiet=True, report=False,
                         on_success=lambda info: doc is self.document and doc.set_waveform(info.waveform))
        self.load_original_audio()
        self.check_models()

    def load_original_audio(self) -> Job | None:
        """The video's own audio for the timeline's Original lane (a quiet job; none is fine)."""
        doc = self.document
        if doc is None or doc.project.video.missing or doc.project.video.facts.is_image:
            if doc is not None:
                doc.set_original_waveform(None, "still" if doc.project.video.facts.is_image else "missing")
            return None
        job = self.run_job("Read the video's audio", jobs.load_original_audio, doc.project.video.path, quiet=True,
                           report=False,
                           on_success=lambda w: doc is self.document and doc.set_original_waveform(w))
        job.failed.connect(lambda *_: doc is self.document and doc.set_original_waveform(None, "failed"))
        return job

    def _ensure_track(self, *_):
        """With the mask overlay or the face picker on, get the face track the project's settings describe
        and the faces to choose from (a job: from the detection cache when a render made one, else it
        detects); a settings change rebuilds it."""
        doc = self.document
        if doc is None or not (doc.show_mask or doc.show_faces) or doc.project.video.missing:
            return None
        request = jobs.track_request(doc.project)
        if doc.track_key == request.key or self._track_failed == request.key:
            return None  # there, or it failed for these settings (reported once; change them to retry)
        running = self._track_job
        if running is not None and not running.finished and getattr(running, "key", None) == request.key:
            return running
        if running is not None and not running.finished:
            running.cancel()

        def done(found: jobs.PictureTrack):
            if doc is self.document:
                doc.set_track(found, request.key)

        job = self.run_job("Find the face", jobs.face_track, request, heavy=True, on_success=done)
        job.failed.connect(lambda *_: setattr(self, "_track_failed", request.key))
        job.key = request.key
        self._track_job = job
        return job

    def _second(self) -> int:
        return max(1, int(round(self.document.fps))) if self.document is not None else 25

    def nudge_dub(self, frames: int):
        """Move the dub by `frames` (undoable; a run of nudges is one undo step)."""
        doc = self.document
        if doc is None or doc.project.dub is None:
            return
        if doc.execute(lambda: NudgeDub(doc.project, int(frames))):
            run = self._last_step(NudgeDub)  # the run of nudges this one joined (or started): what it did to takes
            offset = doc.project.dub_offset
            text = f"Dub offset {offset:+d} frames ({offset / doc.fps:+.3f} s); segments moved with it"
            stale = len(run.unchosen) if run is not None else 0
            if stale:
                text += (f"; {stale} segment(s) show the original frames: their takes were rendered for the old "
                         "timing (re-render to lip-sync to the new one)")
            else:
                text += "; re-render to lip-sync to it"
            self.status(text, 10000)

    def _last_step(self, kind):
        """The project's last undoable step when it is a `kind` command (a run of nudges or slips merges into
        one), else None."""
        history = self.document.project.history
        top = history.commands[history.index - 1] if history.can_undo else None
        return top if isinstance(top, kind) else None

    def slip_segment(self, frames: int):
        """Slip the dub of the segment under the playhead by `frames` (+: later), that line only (undoable;
        a run of slips of one segment is one undo step)."""
        doc = self.document
        s = doc.selected_segment() if doc is not None else None
        if s is None:
            self.status("No segment under the playhead to slip")
            return
        command = doc.execute(lambda: SlipSegment(doc.project, s.id, int(frames)))
        if command is None:
            return
        run = self._last_step(SlipSegment)  # a run that ends where it began leaves no step (an earlier one's is on top)
        slip = doc.project.segment(s.id).slip
        text = (f"Segment {s.title}'s dub slipped {slip:+d} frames ({slip / doc.fps * 1000:+.0f} ms), the rest as it is"
                if slip else f"Segment {s.title}'s dub is back where it was recorded")
        if slip and run is not None and run.segment_id == s.id and run.unchosen:
            text += ("; it shows the original frames: its take was rendered before the slip (re-render to "
                     "lip-sync to it)")
        self.status(text, 10000)

    def rename_segment(self, segment_id: str | None = None):
        doc = self.document
        if doc is None:
            return
        s = doc.project.segment(segment_id) if isinstance(segment_id, str) else doc.selected_segment()
        if s is None:
            self.status("No segment under the playhead")
            return
        name, ok = QInputDialog.getText(self, "Rename segment", f"Name of segment {s.id} "
                                        f"({doc.span_text(s.start, s.end)}); empty: its id",
                                        QLineEdit.EchoMode.Normal, s.name)
        if ok and " ".join(name.split()) != s.name:
            doc.execute(lambda: RenameSegment(doc.project, s.id, name))

    def project_settings_dialog(self):
        doc = self.document
        if doc is None:
            return None
        dialog = ProjectSettingsDialog(doc, self)
        before = doc.project.settings["checkpoint"]
        accepted = dialog.exec()
        if accepted and doc.project.settings["checkpoint"] != before:
            self.check_models()
        return accepted

    def check_models(self):
        doc = self.document
        if doc is None:
            return
        self.run_job("Check installed models", jobs.installed_models, generator=str(doc.project.settings["checkpoint"]),
                     quiet=True, report=False, on_success=lambda models: doc is self.document and doc.set_models(models))

    def _step(self, frames: int):
        if self.document is not None:
            self.transport.stop()
            self.document.step(frames)

    def _step_seconds(self, seconds: float):
        if self.document is not None:
            self.transport.stop()
            self.document.step_seconds(seconds)

    def _goto(self, frame):
        if self.document is not None:
            self.transport.stop()
            self.document.set_frame(self.document.length - 1 if frame is None else frame)

    def goto_weak(self, step: int):
        """The playhead to the start of the next (`step` 1) or previous (-1) weak segment; inside a weak
        segment, "previous" is its own start first, as with markers."""
        doc = self.document
        if doc is None:
            return
        weak = doc.project.weak_segments()
        if step > 0:
            target = next((s for s in weak if s.start > doc.frame), None)
        else:
            target = next((s for s in reversed(weak) if s.start < doc.frame), None)
        if target is None:
            where = "after" if step > 0 else "before"
            self.status(f"No weak segment {where} the playhead" if weak else
                        f"No weak segments: no scored speech is below LSE-C {doc.project.threshold:g}")
            return
        self._goto(target.start)
        self.status(f"Weak segment {weak.index(target) + 1} of {len(weak)}: {target.title}, "
                    f"LSE-C {target.lse_c:.3g} (threshold {doc.project.threshold:g})")

    def goto_marker(self, step: int):
        """The playhead to the next (`step` 1) or previous (-1) marker."""
        doc = self.document
        if doc is None:
            return
        markers = doc.project.markers
        if step > 0:
            target = next((m for m in markers if m.frame > doc.frame), None)
        else:
            target = next((m for m in reversed(markers) if m.frame < doc.frame), None)
        if target is None:
            self.status(f"No marker {'after' if step > 0 else 'before'} the playhead" if markers else
                        "No markers yet: M adds one at the playhead")
            return
        self._goto(target.frame)
        self.status(f"Marker {markers.index(target) + 1} of {len(markers)}: {target.title}"
                    + (f" — {target.note}" if target.note else ""))

    def goto_edit(self, step: int):
        """The playhead to the next (`step` 1) or previous (-1) edit: a segment's first frame or the
        frame after its last, a marker, the clip's ends."""
        doc = self.document
        if doc is None:
            return
        last = max(doc.length - 1, 0)
        project = doc.project
        points = sorted({0, last, *(min(f, last) for s in project.segments for f in (s.start, s.end)),
                         *(m.frame for m in project.markers if m.frame <= last)})
        if step > 0:
            target = next((f for f in points if f > doc.frame), None)
        else:
            target = next((f for f in reversed(points) if f < doc.frame), None)
        if target is not None:
            self._goto(target)

    def goto_mark(self, which: str):
        """Shift+I / Shift+O: the playhead to the in mark, or to the out mark's frame (the last one in)."""
        doc = self.document
        if doc is None:
            return
        frame = doc.in_point if which == "in" else None if doc.out_point is None else doc.out_point - 1
        if frame is None:
            self.status(f"No {which} mark: {'I' if which == 'in' else 'O'} sets it at the playhead")
            return
        self._goto(frame)

    def play_in_to_out(self):
        """Play from the in mark to the out mark (either missing: the clip's edge), then stop there."""
        doc = self.document
        if doc is None:
            return
        marked = doc.marked_range()
        if marked is None:
            self.status("No in or out mark: playing the whole clip")
        self.transport.play_range(*(marked or (0, doc.length)))

    def add_marker(self):
        """M: a marker at the playhead; on a marker, the cursor in its name (the Markers tab)."""
        doc = self.document
        if doc is None:
            return
        if doc.project.marker_at(doc.frame) is not None:
            self.markers_dock.show()
            self.markers_dock.raise_()
            self.markers_panel.edit_name()
            return
        if doc.execute(lambda: AddMarker(doc.project, doc.frame)):
            self.status(f"Marker at {doc.time_text()} (M again to name it)")

    def remove_marker(self):
        doc = self.document
        if doc is None:
            return
        if doc.project.marker_at(doc.frame) is None:
            self.status("No marker at the playhead")
        else:
            self.markers_panel.remove_current()

    # ------------------------------------------------------------------ jobs

    def run_job(self, title: str, fn, *args, heavy: bool = False, quiet: bool = False, on_success=None,
                report: bool = True, **kwargs) -> Job:
        """Start `fn(progress, cancel, *args)` as a Job; a failure shows a message box (`report`) or
        the status bar; `on_success(result)` runs on this thread."""
        job = Job(title, fn, *args, heavy=heavy, quiet=quiet, **kwargs)
        if on_success is not None:
            job.succeeded.connect(lambda result: self._guard(title, on_success, result))
        job.failed.connect(lambda message, details: self._job_failed(title, message, details, report))
        job.cancelled.connect(lambda: self.status(f"{title}: cancelled; nothing was changed"))
        if not quiet:
            self.jobs_dock.raise_()  # its progress in view, should the weak segments' tab be in front
        return self.jobs.submit(job)

    def _guard(self, title, fn, *args):
        try:
            fn(*args)
        except (LipsmithError, EditError, OSError) as e:
            dialogs.error(self, APP_NAME, f"{title}: {e}")

    def _job_failed(self, title: str, message: str, details: str, report: bool = True):
        if not report:
            self.status(f"{title} failed: {message}", 10000)
            return
        dialogs.error(self, APP_NAME, f"{title} failed.", details=details, informative=message)

    # ------------------------------------------------------------------ new, open, save

    def _confirm_discard(self) -> bool:
        """Ask about unsaved changes before the project is closed; True when it may be closed."""
        doc = self.document
        if doc is None or not doc.project.modified:
            return True
        answer = dialogs.ask_save_changes(self, doc.title)
        if answer == "save":
            return self.save()
        if answer == "discard":
            if doc.project.path is not None:
                discard_autosave(doc.project.path)
            return True
        return False

    def new_project_dialog(self, video=None, dub=None):
        if not self._confirm_discard():
            return None
        if video is None:
            video, _ = QFileDialog.getOpenFileName(self, "New project: the video", self.settings.last_dir("media"),
                                                   VIDEO_FILTER)
            if not video:
                return None
            self.settings.set_last_dir("media", video)
        video = Path(video)
        if dub is None:
            dub, _ = QFileDialog.getOpenFileName(self, f"The dub for {video.name}", str(video.parent), DUB_FILTER)
            if not dub:
                return None
        dub = Path(dub)
        default = video.with_suffix(SUFFIX)
        path, _ = QFileDialog.getSaveFileName(self, "Save the new project as", str(default), PROJECT_FILTER)
        if not path:
            return None
        return self.create_project(video, dub, path)

    def create_project(self, video, dub, path) -> Job:
        """Probe the media (a job), then make, save and open the project, then detect its segments."""
        path = Path(path)
        if path.suffix.lower() != SUFFIX:
            path = path.with_name(path.name + SUFFIX)
        return self.run_job(f"Open {Path(video).name}", jobs.probe_media, Path(video), Path(dub),
                            on_success=lambda info: self._project_probed(info, path))

    def _project_probed(self, info: jobs.MediaInfo, path: Path):
        project = Project.new(info.video, info.video_facts, path=path, dub_path=info.dub.path,
                              dub_facts=info.dub.facts)
        # the picture is the master: cutting it to the dub is a choice made knowingly, never a default
        if project.length_text("pad") != project.length_text("cut"):
            policy = dialogs.ask_picture_length(self, project.length_text("pad"), project.length_text("cut"))
            project = Project.new(info.video, info.video_facts, path=path, dub_path=info.dub.path,
                                  dub_facts=info.dub.facts, settings={"length_policy": policy})
        project.save()
        self.recent.add(path)
        self._set_project(project, info.dub.waveform)
        self.status(f"Created {path.name}; detecting speech segments…")
        self.detect_segments(save_after=True)

    def open_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open project", self.settings.last_dir("projects"),
                                              PROJECT_FILTER)
        if path:
            self.open_project(path)

    def _offered_autosave(self, path: Path) -> Path | None:
        """recovery_candidate(path), telling the user about a damaged autosave it kept aside."""
        try:
            return recovery_candidate(path)
        except ProjectError as e:  # the autosave's, not the project's: the project is read next
            dialogs.warning(self, APP_NAME, f"The autosave of {path.name} is damaged; it was not recovered.",
                            informative=f"{e}\n\nThe project opens as it was last saved.")
            return None

    def open_project(self, path) -> bool:
        if not self._confirm_discard():
            return False
        path = Path(path)
        try:
            candidate = self._offered_autosave(path)
            if candidate is not None:
                when = datetime.fromtimestamp(candidate.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
                if dialogs.ask_recover(self, path.name, when):
                    project = Project.recover(path)
                else:
                    discard_autosave(path)
                    project = Project.load(path)
            else:
                project = Project.load(path)
        except (ProjectError, OSError) as e:
            dialogs.error(self, APP_NAME, f"Cannot open {path.name}.", informative=str(e))
            if not path.exists():
                self.recent.remove(path)
            return False
        self.settings.set_last_dir("projects", path)
        self._relink_missing(project)
        self._set_project(project)
        self.recent.add(path)
        self.status(f"Opened {path.name}")
        return True

    def _relink_missing(self, project: Project):
        """Moved media and adapted models: look beside the project first, then ask (relinking is an
        undoable edit)."""
        self._relink_adapted(project)
        if not project.missing_media():
            return
        for kind, found in project.locate_missing().items():
            try:
                project.relink(kind, found)
            except EditError:
                pass
        for kind in project.missing_media():
            ref = project.media[kind]
            if not dialogs.ask(self, "Missing media", f"The {kind} {ref.path.name} is not at {ref.path.parent}.",
                               informative="Locate it now? (Otherwise the project opens without it.)"):
                continue
            path, _ = QFileDialog.getOpenFileName(self, f"Locate {ref.path.name}", str(project.folder or ""),
                                                  VIDEO_FILTER if kind == "video" else DUB_FILTER)
            if path:
                try:
                    project.relink(kind, path)
                except EditError as e:
                    dialogs.warning(self, "Missing media", str(e))

    def _relink_adapted(self, project: Project):
        for model in project.missing_adapted_models():
            beside = project.folder / model.path.name if project.folder else None
            if beside is not None and beside.is_file():
                try:
                    project.execute(RelinkAdaptedModel(project, model.path, beside))
                    continue
                except EditError:
                    pass
            if not dialogs.ask(self, "Missing adapted model",
                               f"The adapted model {model.path.name} is not at {model.path.parent}.",
                               informative="Locate it now? (Otherwise renders that use it fail until it is back.)"):
                continue
            path, _ = QFileDialog.getOpenFileName(self, f"Locate {model.path.name}", str(project.folder or ""),
                                                  ADAPTED_FILTER)
            if path:
                try:
                    project.execute(RelinkAdaptedModel(project, model.path, path))
                except EditError as e:
                    dialogs.warning(self, "Missing adapted model", str(e))

    def save(self) -> bool:
        doc = self.document
        if doc is None:
            return False
        if doc.project.path is None:
            return self.save_as_dialog()
        try:
            doc.project.save()
        except (ProjectError, OSError) as e:
            dialogs.error(self, APP_NAME, "The project could not be saved.", informative=str(e))
            return False
        if self.autosaver is not None:
            self.autosaver.reset(time.monotonic())
        doc.notify()
        self.status(f"Saved {doc.project.path.name}")
        return True

    def save_as_dialog(self) -> bool:
        doc = self.document
        if doc is None:
            return False
        start = str(doc.project.path or Path(self.settings.last_dir("projects")) / f"untitled{SUFFIX}")
        path, _ = QFileDialog.getSaveFileName(self, "Save project as", start, PROJECT_FILTER)
        if not path:
            return False
        return self.save_as(path)

    def save_as(self, path) -> bool:
        doc = self.document
        path = Path(path)
        if path.suffix.lower() != SUFFIX:
            path = path.with_name(path.name + SUFFIX)
        try:
            doc.project.save_as(path)
        except (ProjectError, OSError) as e:
            dialogs.error(self, APP_NAME, "The project could not be saved.", informative=str(e))
            return False
        self.recent.add(path)
        self.autosaver = Autosaver(doc.project)
        self.autosaver.reset(time.monotonic())
        doc.notify()
        self.status(f"Saved as {path.name}")
        return True

    def _autosave_tick(self):
        if self.autosaver is None:
            return
        written = self.autosaver.tick(time.monotonic())
        if self.autosaver.last_error is not None:
            self.status(f"Autosave failed: {self.autosaver.last_error}", 10000)
        elif written is not None:
            self.status(f"Autosaved to {written.name}", 3000)

    # ------------------------------------------------------------------ drag and drop

    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls() and all(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event):
        self.dragEnterEvent(event)

    def dropEvent(self, event):
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        # after the drop returns: the dialogs below must not run inside the platform's drag loop
        QTimer.singleShot(0, lambda: self.open_paths(paths))

    def open_paths(self, paths):
        """What a drop (or the command line) does with files: a project opens; a video (with an audio
        file beside it, or asked for) starts a new project; an audio file replaces the open project's dub."""
        paths = [Path(p) for p in paths]
        kinds = {p: kind_of(p) for p in paths}
        unknown = [p for p, k in kinds.items() if k is None]
        if unknown:
            names = ", ".join(p.name for p in unknown)
            dialogs.warning(self, "Unsupported file", f"Lipsmith cannot use {names}: not a video, audio or "
                                                      "project file.", informative=f"It opens {SUPPORTED_TEXT}.")
            return
        missing = [p for p in paths if not p.is_file()]
        if missing:
            dialogs.warning(self, "File not found", ", ".join(str(p) for p in missing))
            return
        projects = [p for p in paths if kinds[p] == "project"]
        videos = [p for p in paths if kinds[p] == "video"]
        audios = [p for p in paths if kinds[p] == "audio"]
        if projects:
            self.open_project(projects[0])
        elif videos:
            self.new_project_dialog(videos[0], audios[0] if audios else (videos[1] if len(videos) > 1 else None))
        elif audios:
            if self.document is None:
                dialogs.warning(self, "No video yet", f"{audios[0].name} is audio: drop it together with its "
                                                       "video, or open a project first to make it the dub.")
            elif dialogs.ask(self, "Replace the dub?", f"Use {audios[0].name} as the dub of {self.document.title}?",
                             informative="Speech segments are detected again; takes stay in the project."):
                self.replace_dub(audios[0])

    def replace_dub(self, path) -> Job:
        doc = self.document

        def done(info: jobs.DubInfo):
            if doc is not self.document:
                return
            if doc.execute(lambda: RelinkMedia(doc.project, "dub", info.path, info.facts)):
                doc.set_waveform(info.waveform)
                self.detect_segments()

        return self.run_job(f"Read {Path(path).name}", jobs.load_dub, Path(path), on_success=done)

    # ------------------------------------------------------------------ segments

    def detect_segments(self, save_after: bool = False) -> Job | None:
        doc = self.document
        if doc is None or doc.project.dub is None:
            return None
        project = doc.project

        def done(ranges):
            if doc is not self.document:
                return
            jobs.commit_segments(project, ranges)  # an EditError becomes a message (run_job)
            speech = sum(r.kind == "speech" for r in ranges)
            self.status(f"{len(ranges)} segments, {speech} with speech")
            if save_after:
                self.save()

        return self.run_job("Detect speech segments", jobs.detect_segments, project.dub.path, project.fps,
                            jobs.media_length(project), project.dub_offset, on_success=done)

    def split_segment(self):
        doc = self.document
        s = doc.selected_segment() if doc else None
        if s is None:
            return
        if doc.frame == s.start:
            self.status("The playhead is at the segment's start: move it inside the segment to split there")
            return
        doc.execute(lambda: SplitSegment(doc.project, s.id, doc.frame))

    def merge_next(self):
        doc = self.document
        s = doc.selected_segment() if doc else None
        if s is None:
            return
        following = next((t for t in doc.project.segments if t.start == s.end), None)
        if following is None:
            self.status("No segment right after this one to merge with")
            return
        doc.execute(lambda: MergeSegments(doc.project, [s.id, following.id]))

    # ------------------------------------------------------------------ render, score, export

    def _render(self, start: int, end: int, segment_id: str | None, what: str, mouth: str | None = None,
                replace: str = "never") -> Job | None:
        """Render frames [start, end) into a take (`mouth`: this render's, None: the project's), chosen
        where a segment it covers has none and, where one is chosen, as `replace` says (REPLACE_CHOSEN)."""
        doc = self.document
        if doc is None:
            return None
        try:
            request = jobs.render_request(doc.project, start, end, segment_id, what, mouth, replace)
        except EditError as e:
            dialogs.warning(self, "Cannot render", str(e))
            return None

        def done(result: jobs.RenderResult):
            if doc is not self.document:  # the project was closed meanwhile: nothing refers to the file
                Path(result.file).unlink(missing_ok=True)
                return
            for text in result.warnings:
                job.warn(text)
            warned = "".join(f"; ⚠ {text}" for text in result.warnings)
            kept = [s.id for s in doc.project.segments if s.take_id and s.within(result.start, result.end)]
            take_id = jobs.commit_render(doc.project, result)
            if request.dub_offset != doc.project.dub_offset:
                self.status(f"Rendered {what} for the dub at {request.dub_offset:+d} frames, but it was nudged "
                            f"to {doc.project.dub_offset:+d} meanwhile: the take is kept, not chosen "
                            f"(re-render){warned}", 10000)
                return
            doc.set_show_result(True)
            note = ""
            if request.settings["mouth"] in ACTOR_MOUTHS:
                fallback = sum(b - a for a, b in result.generated_mouth_ranges)
                note += (f"; the generated mouth in {fallback} of them (no actor's mouth alike)" if fallback
                         else "; the actor's own mouth in all of them")
            if result.no_face_ranges:
                missing = sum(b - a for a, b in result.no_face_ranges)
                note += f"; no face in {missing} frames (left as they were)"
            kept = [sid for sid in kept if doc.project.segment(sid).take_id != take_id]
            if kept:
                note += (f"; {len(kept)} segment(s) keep their chosen take"
                         + (" unless the new one scores better" if replace == "better" else "")
                         + " (Render ▸ Render… replaces them)")
            note += self._score_new_take(doc, take_id, what, replace)
            self.status(f"Rendered {what}: {result.generated} frames lip-synced in {result.seconds:.1f} s on "
                        f"{result.device}{note}{warned}", 15000 if warned else 10000)

        job = self.run_job(f"Render {what}", jobs.render_take, request, heavy=True, on_success=done)
        return job  # `done` adds the render's warnings to it

    def render_dialog(self) -> Job | None:
        """Render ▸ Render…: the segment under the playhead, the in–out range or the whole clip, with
        the actor's own mouth or the generated one (the project's choice preselected)."""
        doc = self.document
        if doc is None:
            return None
        targets = {}
        s = doc.selected_segment()
        if s is not None:
            targets[f"Segment {s.title} (under the playhead)"] = (s.start, s.end, s.id, f"segment {s.id}")
        r = doc.marked_range()
        if r is not None:
            what = doc.span_text(*r)
            targets[f"In–out range {what}"] = (r[0], r[1], None, what)
        targets["Whole clip"] = (0, jobs.media_length(doc.project), None, "whole clip")
        dialog = dialogs.RenderDialog(list(targets), doc.project.settings["mouth"],
                                      "The render becomes a new take of every segment it covers, named for its "
                                      "mouth and what changed; it is chosen where a segment has no take, elsewhere "
                                      "as \"Replace chosen takes\" says. Compare A/B in the inspector sets two "
                                      "takes of a segment side by side.", self)
        if dialog.exec() != dialog.DialogCode.Accepted:
            return None
        target, mouth, replace = dialog.values()
        return self._render(*targets[target], mouth=mouth, replace=replace)

    def _score_new_take(self, doc: Document, take_id: str, what: str, replace: str = "never") -> str:
        """Queue the scoring of a new take over the segments it covers; what the status bar adds."""
        if (doc.models or {}).get("expert"):
            return "; not scored: no sync expert installed" + (
                ", so no chosen take was replaced" if replace == "better" else "")
        return "; scoring it…" if self.score(take_id, what, replace) is not None else ""

    def render_clip(self):
        doc = self.document
        return self._render(0, jobs.media_length(doc.project), None, "whole clip") if doc else None

    def render_range(self):
        doc = self.document
        if doc is None:
            return None
        r = doc.marked_range()
        if r is None:
            return self.render_clip()
        return self._render(r[0], r[1], None, doc.span_text(*r))

    def render_segment(self, segment_id: str | None = None):
        doc = self.document
        if doc is None:
            return None
        s = doc.project.segment(segment_id) if isinstance(segment_id, str) else doc.selected_segment()
        if s is None:
            self.status("No segment under the playhead")
            return None
        return self._render(s.start, s.end, s.id, f"segment {s.id}", replace="always")  # asked for this one

    def smooth_dialog(self):
        """Render ▸ Smooth Segment's Take…: ask how many frames to average, then run the job."""
        doc = self.document
        if doc is None:
            return None
        s = doc.selected_segment()
        if s is None or not s.take_id:
            dialogs.warning(self, "Cannot smooth", "The segment under the playhead has no chosen take to smooth."
                            if s is not None else "No segment under the playhead.",
                            informative="Render it first (Render ▸ Re-render Segment), or move the playhead.")
            return None
        window, ok = QInputDialog.getInt(self, "Smooth segment's take",
                                         f"Average the mouth of segment {s.title}'s take over (odd) frames:",
                                         SMOOTH_WINDOW, 3, 25, 2)
        return self.smooth_take(s.id, window) if ok else None

    def smooth_take(self, segment_id: str, window: int = SMOOTH_WINDOW) -> Job | None:
        """Smooth the mouth of a segment's chosen take into a new take, chosen and then scored as a render's."""
        doc = self.document
        if doc is None:
            return None
        try:
            request = jobs.smooth_request(doc.project, segment_id, window)
        except EditError as e:
            dialogs.warning(self, "Cannot smooth", str(e))
            return None
        what = f"smoothed {request.what}"

        def done(result: jobs.SmoothResult):
            if doc is not self.document:  # the project was closed meanwhile: nothing refers to the file
                Path(result.file).unlink(missing_ok=True)
                return
            take_id = jobs.commit_smooth(doc.project, result)
            if doc.project.segment(segment_id).take_id != take_id:
                self.status(f"Smoothed {request.what}, but the dub was nudged meanwhile: the take is kept, not "
                            "chosen", 10000)
                return
            doc.set_show_result(True)
            self.status(f"Smoothed {request.what} over {window} frames{self._score_new_take(doc, take_id, what)}",
                        10000)

        return self.run_job(f"Smooth {request.what}", jobs.smooth_take, request, heavy=True, on_success=done)

    def score(self, render: str | None = None, what: str = "chosen takes", replace: str = "never") -> Job | None:
        """Score the chosen takes with the sync expert (a heavy job): every speech segment's, or after a
        render its take over the segments it covers (`render`), their scores joining its undo step, with
        `replace` "better" its take chosen where it scores better; nothing when those are silence. A
        render's scoring reports a failure in the status bar: nobody asked for it."""
        doc = self.document
        if doc is None:
            return None
        request = jobs.score_request(doc.project, render=render, replace=replace)
        if render is not None and not request.rows:
            return None

        def done(result):
            if doc is self.document:
                earlier = doc.project.scorer
                chose = jobs.commit_scores(doc.project, result)
                text = self._scored_text(doc.project, result)
                if earlier is not None and earlier != doc.project.scorer:
                    text += (f"; earlier scores ({earlier['name']}) cleared: another expert's scale; threshold "
                             f"{doc.project.threshold:g}")
                if chose:
                    text += (f"; the new take scored better and is chosen for "
                             f"{', '.join(doc.project.segment(sid).title for sid in chose)}")
                self.status(text, 10000)
                if doc.project.weak_segments():
                    self.weak_dock.raise_()

        return self.run_job(f"Score {what}", jobs.score_takes, request, heavy=True, report=render is None,
                            on_success=done)

    @staticmethod
    def _scored_text(project: Project, result: dict) -> str:
        """How many segments were scored, and which of them read weak (below the threshold)."""
        scored = [s for s in project.segments if s.id in result["scores"] and s.lse_c is not None
                  and result.get("segments", {}).get(s.id, (s.take_id,))[0] == s.take_id]  # what they export
        weak = [s.title for s in scored if project.verdict(s) == "poor"]
        text = f"Scored {len(scored)} segment(s) with {result['scorer']}"
        if weak:
            text += f"; weak (LSE-C below {project.threshold:g}): {', '.join(weak)}"
        return text

    def choose_checkpoint(self):
        doc = self.document
        if doc is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Generator model", self.settings.last_dir("models"),
                                              CHECKPOINT_FILTER)
        if path:
            self.settings.set_last_dir("models", path)
            if doc.execute(lambda: SetProjectSettings(doc.project, {"checkpoint": path})):
                self.check_models()

    def adapt_dialog(self):
        """Render ▸ Adapt to Speaker…: ask for the time budget and the output, then run the job."""
        doc = self.document
        if doc is None:
            return None
        project = doc.project
        summary = (f"Fine-tunes the project's generator ({Path(str(project.settings['checkpoint'])).name}) on "
                   f"{project.video.path.name}'s own frames and audio, after detecting its faces with the project's "
                   f"detector ({project.settings['detector']}). The result is "
                   "added to the model choices (inspector ▸ Model, Project ▸ Settings); Cancel in the Jobs panel "
                   "leaves no file and the project as it was.")
        dialog = dialogs.AdaptDialog(core.adapt.default_adapted_output(project), summary, parent=self)
        if not dialog.exec():
            return None
        output, minutes, use, expert_minutes = dialog.values()
        existing = [p.name for p in (output, core.adapt.adapted_expert_output(output) if expert_minutes else None)
                    if p is not None and p.exists()]
        if existing and not dialogs.ask(self, "Replace the file?" if len(existing) == 1 else "Replace the files?",
                                        f"{' and '.join(existing)} {'exists' if len(existing) == 1 else 'exist'} already.",
                                        informative="Adapting writes over them when it finishes."):
            return None
        return self.adapt_speaker(output, minutes, use, expert_minutes=expert_minutes)

    def adapt_speaker(self, output=None, minutes: float = 5.0, use: bool = False, steps: int = 100_000,
                      expert: str | None = "expert", expert_minutes: float = 0.0) -> Job | None:
        """Fine-tune the generator on the project's video (a heavy job); on success the model is recorded
        in the project (one undo step) and, with `use`, becomes its generator."""
        doc = self.document
        if doc is None:
            return None
        try:
            request = core.adapt.adapt_request(doc.project, output, minutes, steps, expert, expert_minutes)
        except EditError as e:
            dialogs.warning(self, "Cannot adapt", str(e))
            return None

        def done(result: core.adapt.AdaptResult):
            if doc is not self.document:
                self.status(f"Adapted model saved to {result.output} (its project was closed: not recorded)", 10000)
                return
            core.adapt.commit_adapt(doc.project, result, use)
            if use:
                self.check_models()
            l1 = result.info.get("val_l1")
            fit = f", L1 on the clip {l1:.4f}" if isinstance(l1, float) else ""
            self.status(f"Adapted to the speaker: {result.info['steps']} steps on {result.info['frames']} frames"
                        f"{fit} → {result.output.name}", 10000)

        budget = f"{request.minutes:g} min" + (f" + expert {request.expert_minutes:g} min" if request.expert_minutes else "")
        return self.run_job(f"Adapt to speaker ({budget})", core.adapt.adapt_speaker, request, heavy=True,
                            on_success=done)

    def remove_adapted_model(self, path=None):
        """Render ▸ Remove Adapted Model…: pick one of the project's adapted models (or pass its `path`)
        and forget it, one undoable step. What chose it renders with the default model from now on;
        takes keep their record of what rendered them; the file stays on disk."""
        doc = self.document
        if doc is None:
            return None
        project = doc.project
        models = list(reversed(project.adapted_models))  # newest first, as the model menus list them
        if not models:
            self.status("The project has no adapted models")
            return None
        if path is None:
            index = dialogs.choose(self, "Remove adapted model",
                                   "Forget which adapted model? Segments that use it go back to the project's "
                                   "generator; its file stays on disk.",
                                   [f"{m.title}  —  {m.path.parent}" + ("  (missing)" if m.missing else "")
                                    for m in models])
            if index is None:
                return None
            path = models[index].path
        command = doc.execute(lambda: RemoveAdaptedModel(project, path))
        if command is None:
            return None
        falls = []
        if command.was_generator:
            falls.append("the project's generator is the bundled one again")
        if command.segment_ids:
            falls.append(f"{len(command.segment_ids)} segment(s) use the project's generator")
        self.status(f"Removed {command.path.name} from the project (the file is still in {command.path.parent})"
                    + (f"; {', '.join(falls)}" if falls else ""), 10000)
        if command.was_generator:
            self.check_models()
        return command

    def export_dialog(self):
        doc = self.document
        if doc is None:
            return None
        project = doc.project
        proposed = core.export.suggested_output(project, project.folder or self.settings.last_dir("exports"))
        unrendered, total = project.unrendered_segments(), len(project.segments)
        cut = "" if project.settings["length_policy"] == "cut" else (
            " To cut the picture to the dub, choose Project ▸ Settings ▸ Length policy ▸ Cut.")
        summary = (f"Length: {project.length_text()}.{cut} "
                   f"{total - len(unrendered)} of {total} segments use a take; the rest show the original frames.")
        dialog = dialogs.ExportDialog(proposed, summary, core.export.export_inputs(project), self)
        if not dialog.exec():
            return None
        if unrendered and not dialogs.ask_export_unrendered(self, unrendered, total):
            return None
        path, preset, options = dialog.values()
        return self.export(path, preset, **options)

    def export(self, path, preset: str = next(iter(core.export.EXPORT_PRESETS)), **options) -> Job | None:
        """Export to `path` with a preset; `options`: core.export.export_request's format, audio, loudness."""
        doc = self.document
        if doc is None:
            return None
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".mp4")
        try:
            request = core.export.export_request(doc.project, path, preset, **options)
            # the report describes the project the export was made of, whatever is edited while it runs
            report = core.qc.qc_request(doc.project, request)
        except (EditError, ProjectError) as e:
            dialogs.warning(self, "Cannot export", str(e))
            return None
        self.settings.set_last_dir("exports", path.parent)

        def done(result: core.export.ExportResult):
            if doc is self.document:
                core.export.commit_export(doc.project, result)
                doc.notify()
            loudness = "; ".join(f"{name} audio {after}" for name, _, after in result.loudness if after)
            exported = f"Exported {result.frames} frames to {path}" + (f" ({loudness})" if loudness else "")
            self.status(exported, 10000)
            if doc is not self.document:  # the project was closed meanwhile: the export stands, unreported
                return
            # measured on the export, beside it (OUT.qc.html); the export is complete whatever happens to its
            # report: a failure is a status-bar note, as on the CLI
            self.run_job(f"QC report {report.report.name}", core.qc.qc_report, report, result, heavy=True,
                         report=False,
                         on_success=lambda _: self.status(f"{exported}; QC report {report.report.name}", 10000))

        return self.run_job(f"Export {path.name}", core.export.export_video, request, heavy=True, on_success=done)

    # ------------------------------------------------------------------ view, help

    def zoom_to_selection(self):
        if self.document is not None and not self.timeline.zoom_to_selection():
            self.status("No segment under the playhead to zoom to")

    def set_monitor(self, monitor: Monitor):
        """Hear `monitor` from now on (the transport), and next time (the settings); the menu and the
        transport bar's button show it."""
        self.transport.set_monitor(monitor)
        self.settings.monitor = monitor
        self.actions[f"play.monitor_{monitor.source}"].setChecked(True)
        self.monitor_button.show_monitor(monitor)

    def set_light_theme(self, on: bool):
        self.settings.theme = "light" if on else "dark"
        self.colours = apply_theme(QApplication.instance(), self.settings.theme)
        self.timeline.set_colours(self.colours)
        self._fit_inspector_width()

    def shortcuts_dialog(self):
        if ShortcutsDialog(self.shortcuts, self).exec():
            self.apply_shortcuts()

    def about(self):
        dialogs.info(self, "About Lipsmith", "Lipsmith — lip-sync editing for dubbing.",
                     informative="Wav2Lip generation, SyncNet confidence, timeline editing, MP4 export.")

    # ------------------------------------------------------------------ closing

    def closeEvent(self, event):
        if not self._confirm_discard():
            event.ignore()
            return
        active = [j for j in self.jobs.active() if not j.quiet]
        if active and not dialogs.ask(self, "Jobs are running", f"{len(active)} job(s) still running.",
                                      informative="Cancel them and quit?"):
            event.ignore()
            return
        self.transport.stop()
        self.autosave_timer.stop()
        self.jobs.cancel_all()
        self.jobs.wait_all(10_000)
        self.reader.shutdown()
        self.timeline.shutdown()
        self.settings.set_window_state(self.saveGeometry(), self.saveState())
        self.settings.sync()
        event.accept()

