"""The timeline: a time ruler with the playhead, then lanes sharing one time axis (in frames):

  (ruler)   time; the project's markers (coloured triangles: hover for the name and note); red marks under
            it where what exports has no face (the renders' reports)
  Video     thumbnails of the source frames, decoded in a background thread (app.thumbnails)
  Original  the video's own audio
  Dub       the dub's waveform (placed at the dub offset), each slipped segment's line moved by its slip
            and labelled with it ("slip +2")
  Sync      one bar per segment, as tall as its confidence (LSE-C) and coloured by its verdict
            against the threshold — the horizontal line, which can be dragged (an undoable edit);
            unscored speech is grey at full height, silence low and dark; over the bars the
            per-frame confidence curve of each segment's chosen take (stored when it was scored);
            segment names at their start. Double-click a segment to rename it; drag its edge (the
            pointer turns into a double arrow) to trim it — a cut between touching segments moves for
            both (core.project.TrimSegment), one undo step per drag
  Takes     rendered takes over the frames they cover; the chosen ones highlighted; red ticks
            where their render found no face

Alt+drag in the Dub lane slips the speech segment under the pointer's dub by whole frames (SlipSegment).
Click or drag anywhere to move the playhead; a dragged edge or playhead snaps to segment edges,
markers and the playhead within a few pixels (core.edges). Right-click: a segment (sync lane) offers
the window's segment actions, a take (takes lane) the inspector's take menu, anywhere else Add Marker
and Zoom to Fit; the playhead goes there first, so each item acts there. Ctrl+wheel zooms around the
pointer, the wheel scrolls, and so does the scroll bar. Built on pyqtgraph (one PlotItem per lane,
x-linked).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QMenu, QScrollBar, QVBoxLayout, QWidget

from core.edges import edge_at, snap, snap_targets
from core.plan import source_of
from core.project import DEFAULT_THRESHOLD, SetThreshold, SlipSegment, TrimSegment, trim_bounds, verdict
from core.slip import slip_audio
from core.timecode import Timecode

from .markers import MARKER_HEX
from .theme import DARK, Colours
from .thumbnails import Thumbnails

AXIS_WIDTH = 34
LABEL_WIDTH = 64
MIN_SPAN = 12  # frames visible at the deepest zoom
ZOOM_STEP = 1.5
MAX_TAKE_ROWS = 3
LANES = {"ruler": 40, "thumbs": 46, "original": 50, "dub": 58, "sync": 96, "takes": 46}
LABELS = {"ruler": "", "thumbs": "Video", "original": "Original", "dub": "Dub", "sync": "Sync", "takes": "Takes"}
THUMB_STEPS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300, 400, 500,
               600, 750, 1000, 1500, 2000, 3000, 4000, 5000, 7500, 10000, 15000, 20000, 30000, 50000, 100000)
MARKS_LEGEND = ("Marks on the ruler (and on each take): red, no face found there (the original frames show); "
                "violet, the generated mouth where the actor's own was asked for (the footage had nothing alike)")
NAME_CHAR_PX = 7  # rough width of a label character, to hide names that do not fit their segment
EDGE_PX = 5  # a press this near a segment's edge in the sync lane grabs the edge
SNAP_PX = 8  # a dragged edge or playhead this near a segment edge, a marker or the playhead snaps to it


class TimeAxis(pg.AxisItem):
    """Frames labelled with the video's timecode; ticks on whole frames and on its seconds and minutes."""

    def __init__(self):
        super().__init__("top")
        self.timecode = Timecode.of(25.0)  # until a document sets its own

    def tickSpacing(self, minVal, maxVal, size):
        span = maxVal - minVal
        if span <= 0 or size <= 0:
            return super().tickSpacing(minVal, maxVal, size)
        per_frame = size / span
        seconds = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
        candidates = sorted({1, 2, 5, 10, *(s * self.timecode.base for s in seconds)})  # timecode seconds
        major = next((c for c in candidates if c * per_frame >= 90), candidates[-1])
        divides = lambda c: abs(major / c - round(major / c)) < 1e-6  # noqa: E731
        minor = next((c for c in candidates if c * per_frame >= 14 and divides(c)), major)
        return [(major, 0), (minor, 0)]

    def tickStrings(self, values, scale, spacing):
        with_frames = spacing < self.timecode.base
        # ticks a timecode second or more apart are labelled hh:mm:ss
        return [self.timecode.text(v)[:None if with_frames else -3] if v >= 0 else "" for v in values]


class LaneBox(pg.ViewBox):
    """A lane's view: no built-in pan/zoom; clicks, drags and wheel turns become signals."""
    clicked = Signal(float, float)  # x, y in data coordinates
    double_clicked = Signal(float, float)
    dragged = Signal(float, float, bool, bool)  # x, x where the button went down, started, finished
    alt_dragged = Signal(float, float, bool, bool)  # with Alt held: x where the drag began, x now, started, finished
    wheel_zoom = Signal(float, float)  # factor, around x
    wheel_scroll = Signal(float)  # steps (positive: later)
    hovered = Signal(float, float)
    context_requested = Signal(float, float, QPoint)  # x, y, where on the screen (a right-click)

    def __init__(self):
        super().__init__(enableMenu=False)
        self.setMouseEnabled(x=False, y=False)
        self.setAcceptHoverEvents(True)

    def wheelEvent(self, ev, axis=None):
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        steps = delta / 120.0
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            x = self.mapSceneToView(ev.scenePos()).x()
            self.wheel_zoom.emit(ZOOM_STEP ** -steps, x)
        else:
            self.wheel_scroll.emit(-steps)
        ev.accept()

    def mouseClickEvent(self, ev):
        if ev.button() == Qt.MouseButton.LeftButton:
            p = self.mapSceneToView(ev.scenePos())
            (self.double_clicked if ev.double() else self.clicked).emit(p.x(), p.y())
            ev.accept()
        elif ev.button() == Qt.MouseButton.RightButton:
            p = self.mapSceneToView(ev.scenePos())
            self.context_requested.emit(p.x(), p.y(), ev.screenPos().toPoint())
            ev.accept()
        else:
            ev.ignore()

    def mouseDragEvent(self, ev, axis=None):
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        x, x0 = self.mapSceneToView(ev.scenePos()).x(), self.mapSceneToView(ev.buttonDownScenePos()).x()
        if ev.modifiers() & Qt.KeyboardModifier.AltModifier:
            self.alt_dragged.emit(x0, x, ev.isStart(), ev.isFinish())
        else:
            self.dragged.emit(x, x0, ev.isStart(), ev.isFinish())

    def hoverEvent(self, ev):
        if not ev.isExit():
            p = self.mapSceneToView(ev.scenePos())
            self.hovered.emit(p.x(), p.y())


def verdict_colour(segment, threshold: float, c: Colours) -> str:
    """The project's verdict as a colour, for a threshold that may be the line's while it is dragged."""
    return {"silence": c.silence, "unscored": c.unscored, "good": c.good, "poor": c.poor}[verdict(segment, threshold)]


def stack_rows(ranges, max_rows: int = MAX_TAKE_ROWS) -> list[int]:
    """A row per range so that ranges in one row do not overlap (greedy; the last row takes the rest)."""
    ends: list[float] = []
    rows = []
    for start, end in ranges:
        row = next((i for i, e in enumerate(ends) if e <= start), None)
        if row is None:
            row = len(ends) if len(ends) < max_rows else max_rows - 1
            if row == len(ends):
                ends.append(end)
        ends[row] = max(ends[row], end) if row < len(ends) else end
        rows.append(row)
    return rows


def thumb_step(frames_per_thumb: float) -> int:
    """Frames between thumbnails: the first step on a fixed ladder at least `frames_per_thumb`, so
    that scrolling (and zooming back) asks for frames already in the cache."""
    return next((s for s in THUMB_STEPS if s >= frames_per_thumb), THUMB_STEPS[-1])


class ThumbStrip(pg.GraphicsObject):
    """Paints cached thumbnails at their slots: (output frame, source frame) pairs `step` frames
    apart, each image at its own aspect from its frame on (the lane's y runs 0..1 downwards)."""

    def __init__(self, thumbnails: Thumbnails):
        super().__init__()
        self.thumbnails = thumbnails
        self.slots: list[tuple[int, int]] = []
        self.step = 1
        self.thumb_frames = 1.0  # a thumbnail's width in frames at the current zoom
        self.length = 1
        self.placeholder = QColor("#2a3745")

    def set_slots(self, slots, step: int, thumb_frames: float, length: int):
        self.prepareGeometryChange()
        self.slots, self.step, self.thumb_frames, self.length = list(slots), step, thumb_frames, max(1, length)
        self.update()

    def boundingRect(self):
        return QRectF(0, 0, float(self.length), 1.0)

    def paint(self, painter, *args):
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        width = min(self.thumb_frames, float(self.step))
        for frame, index in self.slots:
            target = QRectF(float(frame), 0.04, width, 0.92)
            image = self.thumbnails.image(index)
            if image is None:
                painter.fillRect(target, self.placeholder)
            else:
                painter.drawImage(target, image)


@dataclass(frozen=True)
class EdgeDrag:
    """A segment edge being dragged: where it may go and what it snaps to, both as they were when the
    drag began (its moves are worked out from there, one undo step: TrimSegment's `drag` token)."""
    segment_id: str
    edge: str  # "start" or "end"
    bounds: tuple[int, int | None]
    targets: list[int]
    token: int


class Timeline(QWidget):
    seek_requested = Signal(int)
    rename_requested = Signal(str)  # segment id (double-click in the sync lane)

    def __init__(self, colours: Colours = DARK, parent=None):
        super().__init__(parent)
        self.document = None
        self.c = colours
        pg.setConfigOptions(antialias=True)
        self.glw = pg.GraphicsLayoutWidget(self)
        self.glw.setAcceptDrops(False)
        self.glw.ci.setContentsMargins(0, 2, 8, 2)
        self.glw.ci.layout.setVerticalSpacing(3)
        self.glw.ci.layout.setHorizontalSpacing(0)
        self.scrollbar = QScrollBar(Qt.Orientation.Horizontal, self)
        self.scrollbar.valueChanged.connect(self._on_scrollbar)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.glw, 1)
        layout.addWidget(self.scrollbar)

        self.axis = TimeAxis()
        self.plots: dict[str, pg.PlotItem] = {}
        self.labels: dict[str, pg.LabelItem] = {}
        for row, (name, height) in enumerate(LANES.items()):
            box = LaneBox()
            plot = self.glw.addPlot(row=row, col=1, viewBox=box,
                                    axisItems={"top": self.axis} if name == "ruler" else None)
            plot.hideButtons()
            plot.setMenuEnabled(False)
            plot.showAxis("bottom", False)
            plot.showAxis("top", name == "ruler")
            left = plot.getAxis("left")
            left.setWidth(AXIS_WIDTH)
            if name != "sync":
                left.setStyle(showValues=False, tickLength=0)
                left.setTicks([[], []])
            label = self.glw.addLabel(LABELS[name], row=row, col=0, justify="left")
            self.labels[name] = label
            self.glw.ci.layout.setRowFixedHeight(row, height)
            box.clicked.connect(lambda x, y, name=name: self._on_click(name, x, y))
            box.double_clicked.connect(lambda x, y, name=name: self._on_double_click(name, x, y))
            box.dragged.connect(lambda x, x0, started, finished, name=name:
                                self._on_drag(name, x, x0, started, finished))
            box.alt_dragged.connect(lambda x0, x, started, finished, name=name:
                                    self._on_alt_drag(name, x0, x, started, finished))
            box.wheel_zoom.connect(self.zoom)
            box.context_requested.connect(lambda x, y, at, name=name: self._on_context(name, x, y, at))
            box.wheel_scroll.connect(self._on_wheel_scroll)
            box.hovered.connect(lambda x, y, name=name, box=box: self._on_hover(name, box, x, y))
            box.disableAutoRange()
            if name != "ruler":
                plot.setXLink(self.plots["ruler"])
            self.plots[name] = plot
        self.glw.ci.layout.setColumnFixedWidth(0, LABEL_WIDTH)
        self.plots["ruler"].setYRange(0, 1, padding=0)
        self.plots["dub"].setYRange(-1.05, 1.05, padding=0)
        self.plots["original"].setYRange(-1.05, 1.05, padding=0)
        self.plots["takes"].setYRange(0, 1, padding=0)
        self.plots["thumbs"].invertY(True)  # images draw upright
        self.plots["thumbs"].setYRange(0, 1, padding=0)
        self.plots["ruler"].vb.sigXRangeChanged.connect(self._on_range_changed)
        self.plots["thumbs"].vb.sigResized.connect(self._update_thumbs)

        self.thumbnails = Thumbnails(parent=self)
        self.thumbnails.ready.connect(self._on_thumb)
        self.thumb_strip = ThumbStrip(self.thumbnails)
        self.plots["thumbs"].addItem(self.thumb_strip)
        self._thumb_update_pending = False
        self.slip_labels: list[pg.TextItem] = []  # "slip +2" over each slipped segment's dub
        self.wave = pg.PlotDataItem()
        self.wave.setDownsampling(auto=True, method="peak")
        self.wave.setClipToView(True)
        self.plots["dub"].addItem(self.wave)
        self.original_wave = pg.PlotDataItem()
        self.original_wave.setDownsampling(auto=True, method="peak")
        self.original_wave.setClipToView(True)
        self.plots["original"].addItem(self.original_wave)
        self.original_note = pg.TextItem("", anchor=(0, 0.5))
        self.plots["original"].addItem(self.original_note)
        self.bars = pg.BarGraphItem(x0=[], x1=[], y0=[], height=[])
        self.plots["sync"].addItem(self.bars)
        self.curve = pg.PlotDataItem(connect="finite")
        self.curve.setZValue(5)
        self.plots["sync"].addItem(self.curve)
        self.name_labels: list[tuple[pg.TextItem, object]] = []
        self.no_face_bars = pg.BarGraphItem(x0=[], x1=[], y0=[], height=[])
        self.no_face_bars.setZValue(15)
        self.plots["ruler"].addItem(self.no_face_bars)
        self.take_no_face = pg.BarGraphItem(x0=[], x1=[], y0=[], height=[])
        self.take_no_face.setZValue(3)
        # where the actor's mouth was asked for but the generated one was pasted: above the no-face marks
        self.generated_mouth_bars = pg.BarGraphItem(x0=[], x1=[], y0=[], height=[])
        self.generated_mouth_bars.setZValue(15)
        self.plots["ruler"].addItem(self.generated_mouth_bars)
        self.take_generated_mouth = pg.BarGraphItem(x0=[], x1=[], y0=[], height=[])
        self.take_generated_mouth.setZValue(3)
        self.labels["ruler"].setToolTip(MARKS_LEGEND)
        self.marker_points = pg.ScatterPlotItem(size=11, symbol="t", pxMode=True)  # "t": a triangle, point down
        self.marker_points.setZValue(16)
        self.plots["ruler"].addItem(self.marker_points)
        self.selection = pg.BarGraphItem(x0=[], x1=[], y0=[], height=[])
        self.plots["sync"].addItem(self.selection)
        self.take_bars = pg.BarGraphItem(x0=[], x1=[], y0=[], height=[])
        self.plots["takes"].addItem(self.take_bars)
        self.plots["takes"].addItem(self.take_no_face)
        self.plots["takes"].addItem(self.take_generated_mouth)
        self.take_labels: list[pg.TextItem] = []
        self.threshold = pg.InfiniteLine(pos=DEFAULT_THRESHOLD, angle=0, movable=True, label="threshold {value:.3g}",
                                         labelOpts={"position": 0.98, "anchors": [(1, 1), (1, 1)]})
        self.threshold.setZValue(10)
        self.threshold.sigPositionChanged.connect(self._recolour)
        self.threshold.sigPositionChanged.connect(self._label_threshold)
        self.threshold.sigPositionChangeFinished.connect(self._threshold_done)
        self.plots["sync"].addItem(self.threshold)
        self.regions = {}
        for name in LANES:
            region = pg.LinearRegionItem(values=(0, 0), movable=False)
            region.setZValue(-5)
            region.hide()
            self.plots[name].addItem(region)
            self.regions[name] = region
        self.playheads = {}
        for name, plot in self.plots.items():
            line = pg.InfiniteLine(pos=0, angle=90, movable=(name == "ruler"))
            line.setZValue(20)
            plot.addItem(line)
            self.playheads[name] = line
        self.playheads["ruler"].sigDragged.connect(lambda line: self._seek_snapped(line.value()))
        self._edge_drag: EdgeDrag | None = None
        self._segment_actions, self._lane_actions, self._take_menu = [], [], None
        self._drag_tokens = itertools.count(1)
        self._segments_shown = None
        self._curve_shown = None
        self._original_key = None
        self._slip_drag = None  # (segment id, its slip when an Alt+drag in the dub lane began)
        self.set_colours(colours)
        self.setMinimumHeight(sum(LANES.values()) + 40)
        self.set_document(None)

    def set_menus(self, segment: list, lane: list, take):
        """What a right-click offers: the window's actions for a segment and for an empty lane (None: a
        separator), and `take(take id)`, the menu of a take."""
        self._segment_actions, self._lane_actions, self._take_menu = list(segment), list(lane), take

    # -- appearance

    def set_colours(self, colours: Colours):
        self.c = colours
        self.glw.setBackground(colours.background)
        for plot in self.plots.values():
            plot.vb.setBackgroundColor(colours.lane)
            for axis in ("left", "top"):
                plot.getAxis(axis).setPen(pg.mkPen(colours.grid))
                plot.getAxis(axis).setTextPen(pg.mkPen(colours.text))
        self.plots["ruler"].vb.setBackgroundColor(colours.background)
        for line in self.playheads.values():
            line.setPen(pg.mkPen(colours.playhead, width=2))
        self.playheads["ruler"].setHoverPen(pg.mkPen(colours.playhead, width=4))
        self.threshold.setPen(pg.mkPen(colours.threshold, width=1.5, style=Qt.PenStyle.DashLine))
        self.threshold.setHoverPen(pg.mkPen(colours.threshold, width=3))
        self.threshold.label.setColor(colours.threshold)
        self.wave.setPen(pg.mkPen(colours.waveform, width=1))
        self.original_wave.setPen(pg.mkPen(colours.original, width=1))
        self.original_note.setColor(colours.text)
        self.curve.setPen(pg.mkPen(colours.curve, width=1.6))
        self.thumb_strip.placeholder = QColor(colours.silence)
        self.plots["thumbs"].vb.setBackgroundColor(colours.background)
        inout = pg.mkColor(colours.inout)
        inout.setAlpha(60)
        for region in self.regions.values():
            region.setBrush(pg.mkBrush(inout))
            for line in region.lines:
                line.setPen(pg.mkPen(colours.inout, width=1))
        for name, label in self.labels.items():
            label.setAttr("color", colours.text)
            label.setText(label.text)
        for item in self.slip_labels:
            item.setColor(colours.text)
        self._original_key = None
        self.refresh()

    # -- document

    def set_document(self, document):
        if self.document is not None:
            self.document.changed.disconnect(self.refresh)
            self.document.frame_changed.disconnect(self._on_frame)
            self.document.marks_changed.disconnect(self._on_marks)
            self.document.models_changed.disconnect(self._on_models)
            self.document.media_changed.disconnect(self._draw_original)
        self.document = document
        self._segments_shown = None
        self._original_key = None
        self.thumbnails.set_source(None if document is None or document.project.video.missing
                                   else document.project.video.path)
        if document is not None:
            self.axis.timecode = document.timecode
            document.changed.connect(self.refresh)
            document.frame_changed.connect(self._on_frame)
            document.marks_changed.connect(self._on_marks)
            document.models_changed.connect(self._on_models)
            document.media_changed.connect(self._draw_original)
        self.setEnabled(document is not None)
        self.refresh()
        self.zoom_to_fit()
        self._on_frame()
        self._on_marks()
        self._on_models()

    @property
    def length(self) -> int:
        return self.document.length if self.document is not None else 250

    def refresh(self, *_):
        doc = self.document
        self.plots["ruler"].vb.setLimits(xMin=-0.02 * self.length, xMax=self.length * 1.02,
                                         minXRange=MIN_SPAN, maxXRange=self.length * 1.04)
        if doc is None:
            self._wave_key = None
            self.wave.setData([], [])
            self._set_slip_labels(())
            self.original_wave.setData([], [])
            self.original_note.setText("")
            self.curve.setData([], [])
            self._curve_shown = None
            self.bars.setOpts(x0=[], x1=[], y0=[], height=[], brushes=None, pens=None)
            self.selection.setOpts(x0=[], x1=[], y0=[], height=[])
            self._set_names([])
            self._set_takes([])
            self._draw_marks()
            self._draw_markers()
            self.thumb_strip.set_slots([], 1, 1.0, 1)
            self.threshold.hide()
            return
        self.threshold.show()
        self._draw_waveform()
        self._draw_original()
        self._draw_segments()
        self._draw_takes()
        self._draw_marks()
        self._draw_markers()
        self._update_range_bar()
        self._update_thumbs()

    def _draw_waveform(self):
        """The dub as heard: placed at the offset, each slipped segment's line moved (core.slip, on the
        envelope) and labelled with its slip."""
        doc = self.document
        w = doc.waveform
        project = doc.project
        slips = project.slips()
        key = (id(w), project.dub_offset, doc.fps, slips)
        if key == getattr(self, "_wave_key", None):
            return  # unchanged: an hour of dub is a million points, not redrawn on every edit
        self._wave_key = key
        self._set_slip_labels(slips)
        if w is None or w.lo.size == 0:
            self.wave.setData([], [])
            return
        x = np.arange(w.lo.size) / w.rate * doc.fps + project.dub_offset
        envelope = np.stack([w.lo, w.hi], axis=1)  # slipped as the audio is: the rule is core.slip's
        envelope = slip_audio(envelope, w.rate, doc.fps, project.dub_offset, slips) if slips else envelope
        self.wave.setData(np.repeat(x, 2), envelope.ravel())

    def _set_slip_labels(self, slips):
        for item in self.slip_labels:
            self.plots["dub"].removeItem(item)
        self.slip_labels = []
        for start, _, frames in slips:
            item = pg.TextItem(f"slip {frames:+d}", color=self.c.text, anchor=(0, 0))
            item.setPos(start, 1.05)
            item.setZValue(8)
            self.plots["dub"].addItem(item)
            self.slip_labels.append(item)

    def _draw_original(self, *_):
        """The video's own audio at source time (its first frame at frame 0)."""
        doc = self.document
        if doc is None:
            return
        w = doc.original_waveform
        key = (id(w), doc.original_state, doc.fps)
        if key == self._original_key:
            return
        self._original_key = key
        note = {"loading": "reading the video's audio…", "none": "the video has no audio track",
                "still": "a still image: no audio of its own", "missing": "the video is missing",
                "failed": "the video's audio could not be read"}.get(doc.original_state, "")
        self.original_note.setText(note)
        self.original_note.setPos(2, 0)
        if w is None or w.lo.size == 0:
            self.original_wave.setData([], [])
            return
        x = np.arange(w.lo.size) / w.rate * doc.fps
        self.original_wave.setData(np.repeat(x, 2), np.stack([w.lo, w.hi], axis=1).ravel())

    def _y_max(self) -> float:
        project = self.document.project
        scores = [s.lse_c for s in project.segments if s.lse_c is not None]
        curve = self._curve_shown
        if curve is not None and np.isfinite(curve[1]).any():
            scores.append(float(np.nanmax(curve[1])))
        return max([2 * project.threshold, *(1.15 * v for v in scores)])  # any scorer's scale

    def _draw_segments(self):
        project = self.document.project
        self._curve_shown = project.confidence_curve()
        if self._curve_shown is None:
            self.curve.setData([], [])
        else:
            self.curve.setData(*self._curve_shown)
        top = self._y_max()
        self.plots["sync"].setYRange(0, top, padding=0)
        self.threshold.setBounds((0, top))
        if abs(self.threshold.value() - project.threshold) > 1e-9:
            self.threshold.blockSignals(True)
            self.threshold.setValue(project.threshold)
            self.threshold.blockSignals(False)
        self._label_threshold()
        segments = project.segments
        self._segments_shown = segments
        heights = [top * 0.12 if s.kind == "silence" else (top if s.lse_c is None else max(s.lse_c, top * 0.02))
                   for s in segments]
        self.bars.setOpts(x0=[s.start for s in segments], x1=[s.end for s in segments],
                          y0=[0] * len(segments), height=heights,
                          pens=[pg.mkPen(self.c.lane, width=2)] * len(segments) or None)
        self._recolour()
        self._draw_selection()
        self._set_names([s for s in segments if s.kind == "speech" or s.name], top)

    def _set_names(self, segments, top: float = 1.0):
        for item, _ in self.name_labels:
            self.plots["sync"].removeItem(item)
        self.name_labels = []
        for s in segments[:400]:
            item = pg.TextItem(s.title, color=self.c.text, anchor=(0, 0))
            item.setPos(s.start, top)
            item.setZValue(8)
            self.plots["sync"].addItem(item)
            self.name_labels.append((item, s))
        self._fit_names()

    def _fit_names(self):
        """Show a segment's name only where it fits inside the segment at this zoom."""
        if not self.name_labels:
            return
        x0, x1 = self.view_range()
        px = self.plots["sync"].vb.width() / max(x1 - x0, 1e-9)
        for item, s in self.name_labels:
            item.setVisible(s.frames * px >= NAME_CHAR_PX * len(s.title) + 10)

    def _draw_marks(self):
        """The ruler's marks on what exports: no face found (the original frames), and the generated
        mouth where the actor's was asked for."""
        doc = self.document
        self._no_face_shown = doc.no_face_ranges if doc is not None else []
        self._generated_mouth_shown = doc.generated_mouth_ranges if doc is not None else []
        for bars, ranges, y, colour in ((self.no_face_bars, self._no_face_shown, 0.0, self.c.no_face),
                                        (self.generated_mouth_bars, self._generated_mouth_shown, 0.3,
                                         self.c.generated_mouth)):
            bars.setOpts(x0=[a for a, _ in ranges], x1=[b for _, b in ranges], y0=[y] * len(ranges),
                         height=[0.28] * len(ranges), brush=pg.mkBrush(colour), pen=pg.mkPen(colour, width=1))

    def _draw_markers(self):
        markers = self.document.project.markers if self.document is not None else ()
        self._markers_shown = markers
        self.marker_points.setData(x=[m.frame for m in markers], y=[0.8] * len(markers),
                                   brush=[pg.mkBrush(MARKER_HEX[m.colour]) for m in markers],
                                   pen=pg.mkPen(self.c.background, width=1))

    def _label_threshold(self, *_):
        """The line's label says where the line is: while it is dragged, and after an edit moved it
        (set with its signals blocked, or while the line was hidden, which the label does not follow)."""
        self.threshold.label.setText(f"threshold {self.threshold.value():.3g}")

    def _recolour(self, *_):
        if self.document is None or not self._segments_shown:
            return
        threshold = self.threshold.value()
        brushes = []
        for s in self._segments_shown:
            colour = pg.mkColor(verdict_colour(s, threshold, self.c))
            if s.kind == "speech" and s.lse_c is None:
                colour.setAlpha(110)
            brushes.append(pg.mkBrush(colour))
        self.bars.setOpts(brushes=brushes or None)

    def _draw_selection(self):
        doc = self.document
        s = doc.selected_segment() if doc is not None else None
        if s is None:
            self.selection.setOpts(x0=[], x1=[], y0=[], height=[])
            return
        self.selection.setOpts(x0=[s.start], x1=[s.end], y0=[0], height=[self._y_max()], brush=None,
                               brushes=None, pen=pg.mkPen(self.c.selection, width=2), pens=None)

    def _draw_takes(self):
        project = self.document.project
        chosen = {s.take_id for s in project.segments if s.take_id}
        takes = sorted(project.takes.values(), key=lambda t: (t.start, t.created))
        self._set_takes(takes, chosen)

    def _set_takes(self, takes, chosen=frozenset()):
        for item in self.take_labels:
            self.plots["takes"].removeItem(item)
        self.take_labels = []
        rows = stack_rows([(t.start, t.end) for t in takes])
        n_rows = max(rows, default=0) + 1
        self.plots["takes"].setYRange(0, n_rows, padding=0)
        self._takes_shown = list(zip(takes, rows))
        self.take_bars.setOpts(
            x0=[t.start for t in takes], x1=[t.end for t in takes], y0=[r + 0.1 for r in rows],
            height=[0.8] * len(takes),
            brushes=[pg.mkBrush(self.c.take_chosen if t.id in chosen else self.c.take) for t in takes],
            pens=[pg.mkPen(self.c.lane)] * len(takes) or None)
        for take, row in list(zip(takes, rows))[:200]:
            text = pg.TextItem(take.label + (" ✓" if take.id in chosen else ""), color="#10161d" if take.id in
                               chosen else self.c.text, anchor=(0, 0.5))
            text.setPos(take.start, row + 0.5)
            self.plots["takes"].addItem(text)
            self.take_labels.append(text)
        for bars, ranges_of, y, colour in ((self.take_no_face, lambda t: t.no_face_ranges, 0.1, self.c.no_face),
                                           (self.take_generated_mouth, lambda t: t.generated_mouth_ranges, 0.74,
                                            self.c.generated_mouth)):
            marks = [(a, b, row) for take, row in zip(takes, rows) for a, b in ranges_of(take)]
            bars.setOpts(x0=[a for a, _, _ in marks], x1=[b for _, b, _ in marks], y0=[r + y for _, _, r in marks],
                         height=[0.16] * len(marks), brush=pg.mkBrush(colour), pen=pg.mkPen(colour))

    # -- playhead, marks, models

    def _on_frame(self, *_):
        doc = self.document
        frame = doc.frame if doc is not None else 0
        for line in self.playheads.values():
            line.blockSignals(True)
            line.setValue(frame)
            line.blockSignals(False)
        self._draw_selection()
        x0, x1 = self.view_range()
        if doc is not None and not x0 <= frame <= x1:  # keep the playhead in view
            span = x1 - x0
            self.set_view(frame - 0.1 * span, frame + 0.9 * span)

    def _on_marks(self, *_):
        r = self.document.marked_range() if self.document is not None else None
        for region in self.regions.values():
            region.setVisible(r is not None)
            if r is not None:
                region.setRegion(r)

    def _on_models(self, *_):
        models = self.document.models if self.document is not None else None
        missing = bool(models and models.get("expert"))
        self.labels["sync"].setText("Sync<br><small>no expert</small>" if missing else "Sync")
        self.labels["sync"].setToolTip("No sync expert installed: segments cannot be scored yet"
                                       if missing else "Lip-sync confidence (LSE-C) per segment")

    # -- view range, zoom, scroll

    def view_range(self) -> tuple[float, float]:
        x0, x1 = self.plots["ruler"].vb.viewRange()[0]
        return x0, x1

    def set_view(self, x0: float, x1: float):
        span = min(max(x1 - x0, MIN_SPAN), self.length * 1.04)
        x0 = min(max(x0, -0.02 * self.length), self.length * 1.02 - span)
        self.plots["ruler"].setXRange(x0, x0 + span, padding=0)

    def zoom(self, factor: float, around: float | None = None):
        x0, x1 = self.view_range()
        if around is None:
            around = self.document.frame if self.document is not None else (x0 + x1) / 2
        span = min(max((x1 - x0) * factor, MIN_SPAN), self.length * 1.04)
        ratio = (around - x0) / (x1 - x0) if x1 > x0 else 0.5
        self.set_view(around - ratio * span, around - ratio * span + span)

    def zoom_in(self):
        self.zoom(1 / ZOOM_STEP)

    def zoom_out(self):
        self.zoom(ZOOM_STEP)

    def zoom_to_fit(self):
        """The whole project across the view."""
        n = self.length
        self.plots["ruler"].setXRange(-0.01 * n, n * 1.01, padding=0)

    def zoom_to(self, start: float, end: float):
        """Frames [start, end) across the view, a twentieth of them spare on either side."""
        spare = (end - start) / 20
        self.set_view(start - spare, end + spare)

    def zoom_to_selection(self) -> bool:
        """The selected segment (the one under the playhead) across the view; False when there is none."""
        s = self.document.selected_segment() if self.document is not None else None
        if s is not None:
            self.zoom_to(s.start, s.end)
        return s is not None

    def _on_wheel_scroll(self, steps: float):
        x0, x1 = self.view_range()
        shift = steps * 0.1 * (x1 - x0)
        self.set_view(x0 + shift, x1 + shift)

    def _on_range_changed(self, *_):
        self._update_range_bar()
        self._fit_names()
        self._update_thumbs()

    # -- thumbnails

    def thumb_slots(self) -> tuple[list[tuple[int, int]], int, float]:
        """([(output frame, source frame)] in view, step, a thumbnail's width in frames) for the lane's
        current width and zoom; the source frames follow the length policy, as the preview does."""
        doc = self.document
        if doc is None or doc.project.video.missing:
            return [], 1, 1.0
        facts = doc.project.video.facts
        vb = self.plots["thumbs"].vb
        x0, x1 = self.view_range()
        lane_px = max(vb.width(), 1.0)
        height_px = max(vb.height(), 8.0) * 0.92
        aspect = (facts.width or 16) / (facts.height or 9)
        thumb_frames = height_px * aspect * (x1 - x0) / lane_px
        step = thumb_step(max(thumb_frames, 1.0))
        first = max(0, int(math.floor(max(x0, 0) / step)) * step)
        last = min(self.length, int(math.floor(x1)) + 1)
        policy = doc.project.settings["length_policy"]
        slots = [(k, source_of(k, facts.frame_count, policy, facts.is_image)) for k in range(first, last, step)]
        return slots, step, thumb_frames

    def _update_thumbs(self, *_):
        """Coalesced: a burst of range changes (a drag, a zoom) asks the worker once, after it."""
        if not self._thumb_update_pending:
            self._thumb_update_pending = True
            QTimer.singleShot(0, self._do_update_thumbs)

    def _do_update_thumbs(self):
        self._thumb_update_pending = False
        slots, step, thumb_frames = self.thumb_slots()
        self.thumb_strip.set_slots(slots, step, thumb_frames, self.length)
        self.thumbnails.request([index for _, index in slots])

    def _on_thumb(self, index: int):
        self.thumb_strip.update()

    def shutdown(self):
        self.thumbnails.shutdown()

    def _update_range_bar(self):
        x0, x1 = self.view_range()
        span = max(1, int(math.ceil(x1 - x0)))
        bar = self.scrollbar
        bar.blockSignals(True)
        bar.setRange(0, max(0, self.length - span))
        bar.setPageStep(span)
        bar.setSingleStep(max(1, span // 10))
        bar.setValue(int(round(max(x0, 0))))
        bar.blockSignals(False)

    def _on_scrollbar(self, value: int):
        x0, x1 = self.view_range()
        self.plots["ruler"].setXRange(value, value + (x1 - x0), padding=0)

    # -- mouse

    def _seek(self, x: float):
        if self.document is not None:
            self.document.set_frame(int(math.floor(x)))

    def _on_click(self, lane: str, x: float, y: float):
        self._seek(x)

    def _on_double_click(self, lane: str, x: float, y: float):
        self._seek(x)
        if lane == "sync" and self.document is not None:
            s = self.document.project.segment_at(int(math.floor(x)))
            if s is not None:
                self.rename_requested.emit(s.id)

    def _frames_per_px(self) -> float:
        x0, x1 = self.view_range()
        return (x1 - x0) / max(self.plots["sync"].vb.width(), 1.0)

    def edge_near(self, x: float) -> tuple[str, str] | None:
        """(segment id, "start" / "end") of the segment edge within EDGE_PX pixels of `x`, None if none."""
        if self.document is None:
            return None
        return edge_at(self.document.project.segments, x, EDGE_PX * self._frames_per_px())

    def _seek_snapped(self, x: float):
        """The playhead to `x`, or to a segment edge or marker within SNAP_PX pixels of it."""
        if self.document is None:
            return
        frame = snap(x, snap_targets(self.document.project), SNAP_PX * self._frames_per_px())
        self._seek(x if frame is None else frame)

    def _on_drag(self, lane: str, x: float, press_x: float, started: bool, finished: bool):
        """A drag from a segment's edge in the sync lane trims it; any other drag moves the playhead."""
        if started:
            self._edge_drag = self._grab_edge(press_x) if lane == "sync" else None
        if self._edge_drag is None:
            self._seek_snapped(x)
        else:
            self._move_edge(self._edge_drag, x)
        if finished:
            self._edge_drag = None

    def _grab_edge(self, x: float) -> EdgeDrag | None:
        hit = self.edge_near(x)
        if hit is None:
            return None
        segment_id, edge = hit
        project = self.document.project
        moving = getattr(project.segment(segment_id), edge)
        return EdgeDrag(segment_id, edge, trim_bounds(project, project.segments, segment_id, edge),
                        snap_targets(project, self.document.frame, leave_out={moving}), next(self._drag_tokens))

    def _move_edge(self, drag: EdgeDrag, x: float):
        doc = self.document
        segment = next((s for s in doc.project.segments if s.id == drag.segment_id), None) if doc else None
        if segment is None:  # gone (the project changed under the drag)
            self._edge_drag = None
            return
        frame = snap(x, drag.targets, SNAP_PX * self._frames_per_px())
        frame = int(round(x)) if frame is None else frame
        lo, hi = drag.bounds
        frame = max(lo, frame if hi is None else min(frame, hi))
        if frame != getattr(segment, drag.edge):
            doc.execute(lambda: TrimSegment(doc.project, drag.segment_id, drag.edge, frame, drag=drag.token))

    def take_at(self, frame: int, y: float):
        """The take drawn at `frame` in the takes lane's row `y`, None where there is none."""
        return next((t for t, row in self._takes_shown if t.start <= frame < t.end and row <= y < row + 1), None)

    def context_menu(self, lane: str, x: float, y: float) -> QMenu | None:
        """The menu a right-click at (x, y) of `lane` opens, the playhead moved there first so that each
        item acts there: a take's (takes lane), a segment's (sync lane), else the lane's."""
        doc = self.document
        if doc is None:
            return None
        self._seek(x)
        frame = int(math.floor(x))
        take = self.take_at(frame, y) if lane == "takes" else None
        if take is not None and self._take_menu is not None:
            return self._take_menu(take.id)
        on_segment = lane == "sync" and doc.project.segment_at(frame) is not None
        menu = QMenu(self)
        for action in self._segment_actions if on_segment else self._lane_actions:
            menu.addSeparator() if action is None else menu.addAction(action)
        return menu

    def _on_context(self, lane: str, x: float, y: float, at: QPoint):
        menu = self.context_menu(lane, x, y)
        if menu is not None:
            if not menu.isEmpty():
                menu.exec(at)
            menu.deleteLater()

    def _on_alt_drag(self, lane: str, x0: float, x: float, started: bool, finished: bool):
        """Alt+drag in the dub lane slips the speech segment where the drag began by the whole frames
        dragged (one undo step: a drag's slips merge); elsewhere it is a drag."""
        doc = self.document
        s = doc.project.segment_at(int(math.floor(x0))) if doc is not None and lane == "dub" else None
        if s is None or s.kind != "speech":
            self._on_drag(lane, x, x0, started, finished)
            return
        if started or self._slip_drag is None or self._slip_drag[0] != s.id:
            self._slip_drag = (s.id, s.slip)  # the segment, and its slip when the drag began
        frames = self._slip_drag[1] + int(round(x - x0)) - s.slip
        if frames:
            doc.execute(lambda: SlipSegment(doc.project, s.id, frames))
        if finished:
            self._slip_drag = None

    def _threshold_done(self, *_):
        doc = self.document
        if doc is None:
            return
        value = float(f"{float(self.threshold.value()):.3g}")  # 3 significant digits: the scale is the scorer's
        if abs(value - doc.project.threshold) > 1e-9:
            doc.execute(lambda: SetThreshold(doc.project, value))

    def _on_hover(self, lane: str, box, x: float, y: float):
        doc = self.document
        if doc is None:
            return
        frame = int(math.floor(x))
        tip = ""
        if lane == "sync":
            if self.edge_near(x) is not None:
                box.setCursor(Qt.CursorShape.SizeHorCursor)
            else:
                box.unsetCursor()
            s = doc.project.segment_at(frame)
            if s is not None:
                score = "not scored" if s.lse_c is None else f"LSE-C {s.lse_c:.3g}"
                tip = (f"{s.title} · {s.kind} · {doc.span_text(s.start, s.end)} · {score} · "
                       f"{doc.project.verdict(s)}")
                at = self.curve_value(frame)
                if at is not None:
                    tip += f" · here {at:.3g}"
                tip += " (double-click to rename; drag an edge to trim)"
        elif lane == "takes":
            t = self.take_at(frame, y)
            if t is not None:
                tip = f"{t.label} · frames {t.start}–{t.end} · {t.created}"
                missing = sum(b - a for a, b in t.no_face_ranges)
                if missing:
                    tip += f" · no face in {missing} frames"
                fallback = sum(b - a for a, b in t.generated_mouth_ranges)
                if fallback:
                    tip += f" · the generated mouth in {fallback} frames (no actor's mouth alike)"
        else:
            tip = f"{doc.time_text(frame)} · frame {frame}"
            hit = next(((a, b) for a, b in getattr(self, "_no_face_shown", []) if a <= frame < b), None)
            if hit is not None:
                tip += (f" · no face found in frames {hit[0]}–{hit[1] - 1}: the result shows the original "
                        "frames there")
            hit = next(((a, b) for a, b in getattr(self, "_generated_mouth_shown", []) if a <= frame < b), None)
            if hit is not None:
                tip += (f" · the generated mouth in frames {hit[0]}–{hit[1] - 1}: the actor's mouth was asked for, "
                        "but the footage had nothing alike")
            x0, x1 = self.view_range()
            near = (x1 - x0) / max(box.width(), 1.0) * 6  # frames within 6 pixels of the pointer
            hit = min(getattr(self, "_markers_shown", ()), key=lambda m: abs(m.frame - x), default=None)
            if hit is not None and abs(hit.frame - x) <= max(near, 1.0):
                tip += f" · marker: {hit.title}" + (f" — {hit.note}" if hit.note else "")
        box.setToolTip(tip)

    def curve_value(self, frame: int) -> float | None:
        """The per-frame confidence drawn at `frame` (the nearest curve point), None where there is none."""
        curve = self._curve_shown
        if curve is None:
            return None
        x, y = curve
        i = int(np.searchsorted(x, frame))
        best = None
        for j in (i - 1, i):
            if 0 <= j < len(x) and np.isfinite(y[j]) and abs(x[j] - frame) < 1.0:
                if best is None or abs(x[j] - frame) < abs(x[best] - frame):
                    best = j
        return None if best is None else float(y[best])
