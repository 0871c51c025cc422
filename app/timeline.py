"""The timeline: a time ruler with the playhead, then lanes sharing one time axis (in frames):

  Dub     the dub's waveform (placed at the dub offset)
  Sync    one bar per segment, as tall as its confidence (LSE-C) and coloured by its verdict
          against the threshold — the horizontal line, which can be dragged (an undoable edit);
          unscored speech is grey at full height, silence low and dark
  Takes   rendered takes over the frames they cover; the chosen ones highlighted

Click or drag anywhere to move the playhead; Ctrl+wheel zooms around the pointer, the wheel
scrolls, and so does the scroll bar. Built on pyqtgraph (one PlotItem per lane, x-linked).
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QScrollBar, QVBoxLayout, QWidget

from core.project import SetThreshold

from .theme import DARK, Colours
from .timecode import timecode

AXIS_WIDTH = 34
LABEL_WIDTH = 64
MIN_SPAN = 12  # frames visible at the deepest zoom
ZOOM_STEP = 1.5
MAX_TAKE_ROWS = 3
LANES = {"ruler": 34, "dub": 78, "sync": 92, "takes": 46}


class TimeAxis(pg.AxisItem):
    """Frames labelled as time; ticks on whole frames, seconds and minutes."""

    def __init__(self, fps: float = 25.0):
        super().__init__("top")
        self.fps = fps

    def tickSpacing(self, minVal, maxVal, size):
        span = maxVal - minVal
        if span <= 0 or size <= 0:
            return super().tickSpacing(minVal, maxVal, size)
        per_frame = size / span
        seconds = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
        candidates = sorted({1, 2, 5, 10, *(s * self.fps for s in seconds)})
        major = next((c for c in candidates if c * per_frame >= 90), candidates[-1])
        divides = lambda c: abs(major / c - round(major / c)) < 1e-6  # noqa: E731
        minor = next((c for c in candidates if c * per_frame >= 14 and divides(c)), major)
        return [(major, 0), (minor, 0)]

    def tickStrings(self, values, scale, spacing):
        with_frames = spacing < self.fps - 1e-6
        return [timecode(v, self.fps, frames=with_frames) if v >= 0 else "" for v in values]


class LaneBox(pg.ViewBox):
    """A lane's view: no built-in pan/zoom; clicks, drags and wheel turns become signals."""
    clicked = Signal(float, float)  # x, y in data coordinates
    dragged = Signal(float, bool)  # x, finished
    wheel_zoom = Signal(float, float)  # factor, around x
    wheel_scroll = Signal(float)  # steps (positive: later)
    hovered = Signal(float, float)

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
            self.clicked.emit(p.x(), p.y())
            ev.accept()
        else:
            ev.ignore()

    def mouseDragEvent(self, ev, axis=None):
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        self.dragged.emit(self.mapSceneToView(ev.scenePos()).x(), ev.isFinish())

    def hoverEvent(self, ev):
        if not ev.isExit():
            p = self.mapSceneToView(ev.scenePos())
            self.hovered.emit(p.x(), p.y())


def verdict_colour(segment, threshold: float, c: Colours) -> str:
    if segment.kind == "silence":
        return c.silence
    if segment.lse_c is None:
        return c.unscored
    return c.good if segment.lse_c >= threshold else c.poor


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


class Timeline(QWidget):
    seek_requested = Signal(int)

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
            label = self.glw.addLabel("" if name == "ruler" else name.capitalize(), row=row, col=0,
                                      justify="left")
            self.labels[name] = label
            self.glw.ci.layout.setRowFixedHeight(row, height)
            box.clicked.connect(lambda x, y, name=name: self._on_click(name, x, y))
            box.dragged.connect(self._on_drag)
            box.wheel_zoom.connect(self.zoom)
            box.wheel_scroll.connect(self._on_wheel_scroll)
            box.hovered.connect(lambda x, y, name=name, box=box: self._on_hover(name, box, x, y))
            box.disableAutoRange()
            if name != "ruler":
                plot.setXLink(self.plots["ruler"])
            self.plots[name] = plot
        self.glw.ci.layout.setColumnFixedWidth(0, LABEL_WIDTH)
        self.plots["ruler"].setYRange(0, 1, padding=0)
        self.plots["dub"].setYRange(-1.05, 1.05, padding=0)
        self.plots["takes"].setYRange(0, 1, padding=0)
        self.plots["ruler"].vb.sigXRangeChanged.connect(self._on_range_changed)

        self.wave = pg.PlotDataItem()
        self.wave.setDownsampling(auto=True, method="peak")
        self.wave.setClipToView(True)
        self.plots["dub"].addItem(self.wave)
        self.bars = pg.BarGraphItem(x0=[], x1=[], y0=[], height=[])
        self.plots["sync"].addItem(self.bars)
        self.selection = pg.BarGraphItem(x0=[], x1=[], y0=[], height=[])
        self.plots["sync"].addItem(self.selection)
        self.take_bars = pg.BarGraphItem(x0=[], x1=[], y0=[], height=[])
        self.plots["takes"].addItem(self.take_bars)
        self.take_labels: list[pg.TextItem] = []
        self.threshold = pg.InfiniteLine(pos=5.0, angle=0, movable=True, label="threshold {value:.1f}",
                                         labelOpts={"position": 0.98, "anchors": [(1, 1), (1, 1)]})
        self.threshold.setZValue(10)
        self.threshold.sigPositionChanged.connect(self._recolour)
        self.threshold.sigPositionChangeFinished.connect(self._threshold_done)
        self.plots["sync"].addItem(self.threshold)
        self.regions = {}
        for name in ("ruler", "dub", "sync", "takes"):
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
        self.playheads["ruler"].sigDragged.connect(lambda line: self._seek(line.value()))
        self._segments_shown = None
        self.set_colours(colours)
        self.setMinimumHeight(sum(LANES.values()) + 40)
        self.set_document(None)

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
        inout = pg.mkColor(colours.inout)
        inout.setAlpha(60)
        for region in self.regions.values():
            region.setBrush(pg.mkBrush(inout))
            for line in region.lines:
                line.setPen(pg.mkPen(colours.inout, width=1))
        for name, label in self.labels.items():
            label.setAttr("color", colours.text)
            label.setText(label.text)
        self.refresh()

    # -- document

    def set_document(self, document):
        if self.document is not None:
            self.document.changed.disconnect(self.refresh)
            self.document.frame_changed.disconnect(self._on_frame)
            self.document.marks_changed.disconnect(self._on_marks)
            self.document.models_changed.disconnect(self._on_models)
        self.document = document
        self._segments_shown = None
        if document is not None:
            self.axis.fps = document.fps
            document.changed.connect(self.refresh)
            document.frame_changed.connect(self._on_frame)
            document.marks_changed.connect(self._on_marks)
            document.models_changed.connect(self._on_models)
        self.setEnabled(document is not None)
        self.refresh()
        self.zoom_all()
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
            self.bars.setOpts(x0=[], x1=[], y0=[], height=[], brushes=None, pens=None)
            self.selection.setOpts(x0=[], x1=[], y0=[], height=[])
            self._set_takes([])
            self.threshold.hide()
            return
        self.threshold.show()
        self._draw_waveform()
        self._draw_segments()
        self._draw_takes()
        self._update_range_bar()

    def _draw_waveform(self):
        doc = self.document
        w = doc.waveform
        key = (id(w), doc.project.dub_offset, doc.fps)
        if key == getattr(self, "_wave_key", None):
            return  # unchanged: an hour of dub is a million points, not redrawn on every edit
        self._wave_key = key
        if w is None or w.lo.size == 0:
            self.wave.setData([], [])
            return
        x = np.arange(w.lo.size) / w.rate * doc.fps + doc.project.dub_offset
        self.wave.setData(np.repeat(x, 2), np.stack([w.lo, w.hi], axis=1).ravel())

    def _y_max(self) -> float:
        project = self.document.project
        scores = [s.lse_c for s in project.segments if s.lse_c is not None]
        return max([10.0, project.threshold * 1.25, *(1.15 * v for v in scores)])

    def _draw_segments(self):
        project = self.document.project
        top = self._y_max()
        self.plots["sync"].setYRange(0, top, padding=0)
        self.threshold.setBounds((0, top))
        if abs(self.threshold.value() - project.threshold) > 1e-9:
            self.threshold.blockSignals(True)
            self.threshold.setValue(project.threshold)
            self.threshold.blockSignals(False)
        segments = project.segments
        self._segments_shown = segments
        heights = [top * 0.12 if s.kind == "silence" else (top if s.lse_c is None else max(s.lse_c, top * 0.02))
                   for s in segments]
        self.bars.setOpts(x0=[s.start for s in segments], x1=[s.end for s in segments],
                          y0=[0] * len(segments), height=heights,
                          pens=[pg.mkPen(self.c.lane, width=2)] * len(segments) or None)
        self._recolour()
        self._draw_selection()

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

    def zoom_all(self):
        n = self.length
        self.plots["ruler"].setXRange(-0.01 * n, n * 1.01, padding=0)

    def _on_wheel_scroll(self, steps: float):
        x0, x1 = self.view_range()
        shift = steps * 0.1 * (x1 - x0)
        self.set_view(x0 + shift, x1 + shift)

    def _on_range_changed(self, *_):
        self._update_range_bar()

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

    def _on_drag(self, x: float, finished: bool):
        self._seek(x)

    def _threshold_done(self, *_):
        doc = self.document
        if doc is None:
            return
        value = round(float(self.threshold.value()), 2)
        if abs(value - doc.project.threshold) > 1e-9:
            doc.execute(lambda: SetThreshold(doc.project, value))

    def _on_hover(self, lane: str, box, x: float, y: float):
        doc = self.document
        if doc is None:
            return
        frame = int(math.floor(x))
        tip = ""
        if lane == "sync":
            s = doc.project.segment_at(frame)
            if s is not None:
                score = "not scored" if s.lse_c is None else f"LSE-C {s.lse_c:.2f}"
                tip = (f"{s.id} · {s.kind} · {timecode(s.start, doc.fps)}–{timecode(s.end, doc.fps)} · {score} · "
                       f"{doc.project.verdict(s)}")
        elif lane == "takes":
            hits = [t for t, row in getattr(self, "_takes_shown", []) if t.start <= frame < t.end
                    and row <= y < row + 1]
            if hits:
                t = hits[0]
                tip = f"{t.label} · frames {t.start}–{t.end} · {t.created}"
        else:
            tip = f"{timecode(frame, doc.fps)} · frame {frame}"
        box.setToolTip(tip)
