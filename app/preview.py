"""The frame preview: the frame under the playhead, original or result, fit or 100 %, and the
mask overlay.

"Result" shows the chosen take of the segment under the playhead (its frame k − take.start);
where a segment has no take the original frame is shown, and the overlay says so; so it does
where the take's render found no face. While the document compares two takes of a segment
(Document.compare), that segment shows take A or B instead, and the overlay names it. "Mask"
draws, over the frame, the face box the renderer crops (detected face + pads, dashed: the
detected box) and the feathered blend mask the mouth is pasted through (app.overlay, from the
document's face track and the segment's settings: a segment that dubs another face shows that face's).
"Faces" (the face picker) draws every face detected in the frame with its number (face_index's:
core.faces.FaceChoices), the segment's own highlighted; a click on one makes it the face of the
segment under the playhead (core.project.choose_face: one undo step).
Frames are decoded by app.frames.FrameReader, off the UI thread.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap, QTransform
from PySide6.QtWidgets import (QButtonGroup, QGraphicsItem, QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene,
                               QGraphicsSimpleTextItem, QGraphicsView, QHBoxLayout, QLabel, QLineEdit, QToolButton,
                               QVBoxLayout, QWidget)

from core.faces import build_track
from core.plan import source_of
from core.project import EditError, choose_face

from .document import take_caption
from .frames import FrameReader
from .overlay import MaskOverlay, mask_overlay

MASK_RGB = (64, 220, 255)  # the mask's tint
FACE_RGB = (255, 196, 64)  # the face picker's boxes; the segment's own face in CHOSEN_RGB
CHOSEN_RGB = (120, 255, 120)

FIT, ACTUAL = "fit", "actual"


class TimecodeEntry(QLineEdit):
    """The playhead's timecode, to type over: a timecode (or its last fields, or digits alone), or +N / -N
    frames, and Enter jumps there; Escape, or leaving the field, puts the playhead's back."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.document = None
        self.setObjectName("timecodeEntry")
        self.setToolTip("Timecode: type one (01:00:10:00, or 10:00 within this minute, or 1000), or +N / -N "
                        "frames, and press Enter to go there")
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.TypeWriter)
        self.setFont(font)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setFixedWidth(self.fontMetrics().horizontalAdvance("00:00:00:00") + 16)
        self.returnPressed.connect(self._commit)

    def show_playhead(self):
        """The playhead's timecode, unless the user is typing one."""
        if not self.hasFocus() or not self.isModified():
            self.setText(self.document.time_text() if self.document is not None else "")

    def _commit(self):
        if self.document is not None and self.document.jump(self.text()):
            self._revert()  # shows where it went, and gives the keys back to the transport
        else:
            self.selectAll()  # the status bar says why; the next try replaces this one

    def keyPressEvent(self, event):
        if event.key() == Qt.Key.Key_Escape:
            self._revert()
            return
        super().keyPressEvent(event)

    def focusOutEvent(self, event):
        super().focusOutEvent(event)
        self._revert()

    def _revert(self):
        self.setModified(False)
        self.show_playhead()
        self.clearFocus()


class InfoLabel(QLabel):
    """The frame under the playhead, and the last one; only the frame where the bar is too narrow for both
    (the status bar shows them too), rather than the text cut off mid-word."""

    def __init__(self, parent=None):
        super().__init__("", parent)
        self._full = self._short = ""

    def set_texts(self, full: str, short: str = ""):
        self._full, self._short = full, short or full
        self.setToolTip(full)
        self._fit()
        self.updateGeometry()

    def _fit(self):
        fits = self.fontMetrics().horizontalAdvance(self._full) <= self.contentsRect().width()
        text = self._full if fits else self._short
        if text != self.text():
            self.setText(text)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._fit()

    def _for(self, hint, text: str):
        metrics = self.fontMetrics()
        hint.setWidth(hint.width() - metrics.horizontalAdvance(self.text()) + metrics.horizontalAdvance(text))
        return hint

    def sizeHint(self):
        return self._for(super().sizeHint(), self._full)

    def minimumSizeHint(self):
        return self._for(super().minimumSizeHint(), self._short)


class FaceLabel(QGraphicsRectItem):
    """A face's number on a dark tab, the same size at any zoom (ignores the view's scaling)."""

    def __init__(self, parent):
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setBrush(QColor(0, 0, 0, 170))
        self.setPen(QPen(Qt.PenStyle.NoPen))
        self.text = QGraphicsSimpleTextItem(self)
        font = QFont()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.text.setFont(font)

    def show_number(self, number: int, colour: QColor, chosen: bool):
        self.text.setText(f"{number} ✓" if chosen else str(number))
        self.text.setBrush(colour)
        r = self.text.boundingRect()
        self.setRect(QRectF(0, -r.height() - 6, r.width() + 10, r.height() + 6))
        self.text.setPos(5, -r.height() - 3)


class FrameView(QGraphicsView):
    """A pixmap in a scene: fit-to-window or 1:1 (scrollable), with a text overlay in a corner. With the
    face picker on, a left click on the frame says where, in image pixels (`clicked_at`)."""
    clicked_at = Signal(float, float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self.item)
        self.setBackgroundBrush(QColor("#0b0f14"))
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setRenderHints(QPainter.RenderHint.SmoothPixmapTransform | QPainter.RenderHint.Antialiasing)
        self.setAcceptDrops(False)  # drops go to the main window
        self.zoom = FIT
        self.overlay = ""
        self.placeholder = "Drop a video and its dub here, or File ▸ New from video…"
        self.mask_item = QGraphicsPixmapItem(self.item)
        self.mask_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.crop_item = QGraphicsRectItem(self.item)
        self.face_item = QGraphicsRectItem(self.item)
        self.mask_shown: MaskOverlay | None = None
        self.set_mask(None)
        self.face_items: list[tuple[QGraphicsRectItem, FaceLabel]] = []
        self.faces_shown: list = []  # the core.faces.FaceChoice drawn
        self.picking = False

    def set_faces(self, faces, chosen: int | None):
        """Draw each face's box (image coordinates) with its number; `chosen` (a face's number) highlighted."""
        self.faces_shown = list(faces or ())
        while len(self.face_items) < len(self.faces_shown):
            self.face_items.append((QGraphicsRectItem(self.item), FaceLabel(self.item)))
        for n, (box_item, label) in enumerate(self.face_items):
            face = self.faces_shown[n] if n < len(self.faces_shown) else None
            box_item.setVisible(face is not None)
            label.setVisible(face is not None)
            if face is None:
                continue
            is_chosen = face.index == chosen
            colour = QColor(*(CHOSEN_RGB if is_chosen else FACE_RGB))
            pen = QPen(colour, 3 if is_chosen else 2)
            pen.setCosmetic(True)
            box_item.setPen(pen)
            x1, y1, x2, y2 = face.box
            box_item.setRect(QRectF(x1, y1, x2 - x1, y2 - y1))
            label.show_number(face.index, colour, is_chosen)
            label.setPos(x1, y1)
            label.setZValue(1)

    def set_picking(self, on: bool):
        """Clicks choose faces (a pointing hand over the frame)."""
        self.picking = on
        self.viewport().setCursor(Qt.CursorShape.PointingHandCursor if on else Qt.CursorShape.ArrowCursor)

    def mousePressEvent(self, event):
        if self.picking and event.button() == Qt.MouseButton.LeftButton and not self.item.pixmap().isNull():
            point = self.item.mapFromScene(self.mapToScene(event.position().toPoint()))
            self.clicked_at.emit(point.x(), point.y())
            event.accept()
            return
        super().mousePressEvent(event)

    def set_mask(self, overlay: MaskOverlay | None):
        """Draw `overlay` (image coordinates) over the frame; None hides it."""
        self.mask_shown = overlay
        for item in (self.mask_item, self.crop_item, self.face_item):
            item.setVisible(overlay is not None)
        if overlay is None:
            return
        x1, y1, x2, y2 = overlay.crop_box
        rgba = np.zeros((*overlay.mask.shape, 4), np.uint8)
        rgba[..., 0], rgba[..., 1], rgba[..., 2] = MASK_RGB
        rgba[..., 3] = np.clip(overlay.mask * 170, 0, 255).astype(np.uint8)
        h, w = rgba.shape[:2]
        image = QImage(rgba.data, w, h, w * 4, QImage.Format.Format_RGBA8888).copy()
        self.mask_item.setPixmap(QPixmap.fromImage(image))
        self.mask_item.setPos(x1, y1)
        self.mask_item.setTransform(QTransform.fromScale((x2 - x1) / w, (y2 - y1) / h))
        colour = QColor(*MASK_RGB)
        pen = QPen(colour, 2)
        pen.setCosmetic(True)
        self.crop_item.setPen(pen)
        self.crop_item.setRect(QRectF(x1, y1, x2 - x1, y2 - y1))
        dashed = QPen(QColor(255, 255, 255, 190), 1, Qt.PenStyle.DashLine)
        dashed.setCosmetic(True)
        self.face_item.setPen(dashed)
        fx1, fy1, fx2, fy2 = overlay.face_box
        self.face_item.setRect(QRectF(fx1, fy1, fx2 - fx1, fy2 - fy1))

    def set_image(self, image):
        first = self.item.pixmap().isNull()
        self.item.setPixmap(QPixmap.fromImage(image))
        self.scene().setSceneRect(QRectF(self.item.pixmap().rect()))
        if first or self.zoom == FIT:
            self._apply_zoom()
        self.viewport().update()

    def clear(self, placeholder: str | None = None):
        self.item.setPixmap(QPixmap())
        if placeholder is not None:
            self.placeholder = placeholder
        self.overlay = ""
        self.viewport().update()

    def set_overlay(self, text: str):
        if text != self.overlay:
            self.overlay = text
            self.viewport().update()

    def set_zoom(self, mode: str):
        self.zoom = mode
        self._apply_zoom()

    def _apply_zoom(self):
        if self.item.pixmap().isNull():
            return
        if self.zoom == FIT:
            self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            self.fitInView(self.item, Qt.AspectRatioMode.KeepAspectRatio)
        else:
            self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
            self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
            self.resetTransform()

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self.zoom == FIT:
            self._apply_zoom()

    def drawForeground(self, painter, rect):
        painter.save()
        painter.resetTransform()
        font = QFont(self.font())
        if self.item.pixmap().isNull():
            font.setPointSizeF(font.pointSizeF() * 1.2)
            painter.setFont(font)
            painter.setPen(QColor("#8a949e"))
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self.placeholder)
        elif self.overlay:
            font.setBold(True)
            painter.setFont(font)
            metrics = painter.fontMetrics()
            box = metrics.boundingRect(self.overlay).adjusted(-8, -4, 8, 4)
            box.moveTopLeft(QPoint(10, 10))
            painter.fillRect(box, QColor(0, 0, 0, 150))
            painter.setPen(QColor("#f0f0f0"))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self.overlay)
        painter.restore()


class PreviewPanel(QWidget):
    """FrameView with its bar: Original | Result, Fit | 100 %, the timecode entry and the frame readout."""
    zoom_changed = Signal(str)

    def __init__(self, reader: FrameReader, parent=None):
        super().__init__(parent)
        self.reader = reader
        self.document = None
        self.view = FrameView(self)
        self.shown: tuple | None = None  # (what, path, index) of the frame on screen
        self.wanted: tuple | None = None  # … and of the one asked for last

        self.original_button = self._button("Original", "Show the source frames (T toggles)")
        self.result_button = self._button("Result", "Show each segment's chosen take (T toggles)")
        self.fit_button = self._button("Fit", "Fit the frame to the window (Ctrl+0)")
        self.actual_button = self._button("100 %", "Show the frame pixel for pixel (Ctrl+1)")
        self.mask_button = self._button("Mask", "Draw the face box and the blend mask over the frame (Shift+M)")
        self.mask_button.setCheckable(True)
        self.mask_button.clicked.connect(lambda on: self.document and self.document.set_show_mask(on))
        self.faces_button = self._button("Faces", "Number every face found in the frame; click one to make it the "
                                         "face this segment dubs (Shift+F)")
        self.faces_button.setCheckable(True)
        self.faces_button.clicked.connect(lambda on: self.document and self.document.set_show_faces(on))
        self.view.clicked_at.connect(self.pick_face)
        for group, buttons in ((QButtonGroup(self), (self.original_button, self.result_button)),
                               (QButtonGroup(self), (self.fit_button, self.actual_button))):
            for b in buttons:
                b.setCheckable(True)
                group.addButton(b)
            group.setExclusive(True)
        self.original_button.setChecked(True)
        self.fit_button.setChecked(True)
        self.original_button.clicked.connect(lambda: self.document and self.document.set_show_result(False))
        self.result_button.clicked.connect(lambda: self.document and self.document.set_show_result(True))
        self.fit_button.clicked.connect(lambda: self.set_zoom("fit"))
        self.actual_button.clicked.connect(lambda: self.set_zoom("actual"))
        self.timecode = TimecodeEntry(self)
        self.info = InfoLabel(self)
        self.info.setObjectName("frameInfo")

        self.controls = QHBoxLayout()
        self.controls.setSpacing(0)
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 4)
        bar.addLayout(self.controls)
        bar.addSpacing(16)
        bar.addWidget(self.original_button)
        bar.addWidget(self.result_button)
        bar.addSpacing(16)
        bar.addWidget(self.fit_button)
        bar.addWidget(self.actual_button)
        bar.addSpacing(16)
        bar.addWidget(self.mask_button)
        bar.addWidget(self.faces_button)
        bar.addStretch(1)
        bar.addWidget(self.timecode)
        bar.addSpacing(8)
        bar.addWidget(self.info)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.view, 1)
        layout.addLayout(bar)
        reader.frame_ready.connect(self._on_frame)
        reader.failed.connect(self._on_failed)
        self._set_enabled(False)

    def add_control(self, widget):
        """Put a transport button at the bar's left (the window owns the actions behind them)."""
        self.controls.addWidget(widget)

    def _button(self, text, tip):
        b = QToolButton(self)
        b.setText(text)
        b.setToolTip(tip)
        b.setAutoRaise(True)
        return b

    def _set_enabled(self, on: bool):
        for b in (self.original_button, self.result_button, self.fit_button, self.actual_button, self.mask_button,
                  self.faces_button, self.timecode):
            b.setEnabled(on)

    def set_document(self, document):
        if self.document is not None:
            for signal in (self.document.frame_changed, self.document.changed, self.document.view_changed,
                           self.document.media_changed):
                signal.disconnect(self.refresh)
        self.document = self.timecode.document = document
        self.shown = self.wanted = None
        self.timecode.show_playhead()
        if document is None:
            self.view.clear("Drop a video and its dub here, or File ▸ New from video…")
            self.view.set_mask(None)
            self.view.set_faces(None, None)
            self.view.set_picking(False)
            self.mask_button.setChecked(False)
            self.faces_button.setChecked(False)
            self.info.set_texts("")
            self._set_enabled(False)
            return
        self._set_enabled(True)
        self.view.clear("Loading…")
        document.frame_changed.connect(self.refresh)
        document.changed.connect(self.refresh)
        document.view_changed.connect(self.refresh)
        document.media_changed.connect(self.refresh)
        self.refresh()

    def set_zoom(self, mode: str):
        (self.fit_button if mode == "fit" else self.actual_button).setChecked(True)
        self.view.set_zoom(mode)
        self.zoom_changed.emit(mode)

    def source_for(self, frame: int) -> tuple[str, object, int, str]:
        """(what, file, index in it, overlay text) for output frame `frame` in the current view."""
        doc = self.document
        project = doc.project
        if doc.show_result:
            take = self._compared_take(frame)
            if take is not None:
                caption = take_caption(doc.compare.side, take, project.segment(doc.compare.segment_id))
                return "result", project.take_path(take), frame - take.start, caption
            segment = project.segment_at(frame)
            take = project.takes.get(segment.take_id) if segment is not None and segment.take_id else None
            if take is not None:
                return "result", project.take_path(take), frame - take.start, f"RESULT · {take.label}"
        facts = project.video.facts
        index = source_of(frame, facts.frame_count, project.settings["length_policy"], facts.is_image)
        label = "RESULT · no take here: original frames" if doc.show_result else "ORIGINAL"
        return "original", project.video.path, index, label

    def refresh(self, *_):
        doc = self.document
        if doc is None:
            return
        self.original_button.setChecked(not doc.show_result)
        self.result_button.setChecked(doc.show_result)
        self.timecode.show_playhead()
        self.info.set_texts(f"frame {doc.frame} / {max(doc.length - 1, 0)}", f"{doc.frame}")
        self.mask_button.setChecked(doc.show_mask)
        self.faces_button.setChecked(doc.show_faces)
        what, path, index, label = self.source_for(doc.frame)
        if doc.project.video.missing and what == "original":
            self.view.clear(f"Video missing: {path}")
            return
        if what == "result" and self._marked_at(doc.frame, "no_face_ranges"):
            label += " · no face found here: original frame"
        elif what == "result" and self._marked_at(doc.frame, "generated_mouth_ranges"):
            label += " · generated mouth here: no actor's mouth alike"
        label += self._mask_note() + self._faces_note()
        self.view.set_overlay(label)
        wanted = (what, Path(path), index)
        if wanted != self.wanted:
            self.wanted = wanted
            self.reader.request(("preview", *wanted), path, index)

    def _compared_take(self, frame: int):
        """The compared take on screen at `frame`, or None where the document compares none there."""
        compare = self.document.compare
        segment = self.document.project.segment_at(frame)
        if compare is None or segment is None or segment.id != compare.segment_id:
            return None
        return self.document.project.takes[compare.shown]

    def _marked_at(self, frame: int, marks: str) -> bool:
        """Whether the take on screen has `frame` among its `marks`: "no_face_ranges" (its render left the
        frame as it was) or "generated_mouth_ranges" (the actor's mouth asked, the generated one pasted)."""
        compared = self._compared_take(frame)
        ranges = getattr(compared if compared is not None else self.document, marks)
        return any(a <= frame < b for a, b in ranges)

    def _mask_note(self) -> str:
        """Update the mask overlay for the current frame; the words the overlay adds."""
        doc = self.document
        if not doc.show_mask:
            self.view.set_mask(None)
            return ""
        if doc.track is None:
            self.view.set_mask(None)
            return " · MASK: finding the face…"
        s = doc.selected_segment()
        settings = doc.project.effective_settings(s.id if s else None)
        track = self._track_for(settings["face_index"] or 0, int(settings["smooth_window"]))
        overlay = mask_overlay(track, doc.source_frame(doc.frame), settings)
        self.view.set_mask(overlay)
        if overlay is None:
            return " · MASK: no face in this frame (left as it is)"
        return " · MASK" + (" (face box filled in over a gap)" if overlay.interpolated else "")

    def _track_for(self, face: int, window: int):
        """The document's face track as a segment's own face and smoothing make it (kept for the next frame)."""
        doc = self.document
        track = doc.track
        if (track.params["face_index"], track.smooth_window) == (face, window):
            return track
        cache = getattr(self, "_track_cache", None)
        if cache is None or cache[0] is not track or cache[1:3] != (face, window):
            if track.params["face_index"] == face:  # only the smoothing differs: no new ranking
                own = track.with_smoothing(window)
            else:
                own = build_track(doc.detections, face_index=face, smooth_window=window)
            cache = self._track_cache = (track, face, window, own)
        return cache[3]

    def _faces_note(self) -> str:
        """Update the face picker's boxes for the current frame; the words the overlay adds."""
        doc = self.document
        self.view.set_picking(doc.show_faces)
        if not doc.show_faces or doc.faces is None:
            self.view.set_faces(None, None)
            return " · FACES: finding the faces…" if doc.show_faces else ""
        source = doc.source_frame(doc.frame)
        faces = doc.faces.at(source)
        chosen = doc.segment_face(doc.selected_segment())
        self.view.set_faces(faces, chosen)
        if faces is None:
            return " · FACES: faces not detected yet here"
        found = doc.faces.found(source)
        return f" · FACES: {found} found, face {chosen} dubbed · click a face to choose it"

    def pick_face(self, x: float, y: float):
        """A click at image pixel (x, y) with the face picker on: the face there becomes the face of the
        segment under the playhead (one undo step); the status bar says what happened."""
        doc = self.document
        if doc is None or not doc.show_faces:
            return
        if doc.faces is None:
            doc.message.emit("Still finding the faces: click again when they are numbered")
            return
        source = doc.source_frame(doc.frame)
        if doc.faces.at(source) is None:
            doc.message.emit("Faces not detected yet here")
            return
        face = doc.faces.hit(source, x, y)
        if face is None:
            doc.message.emit("No face there: click inside a numbered box")
            return
        segment = doc.selected_segment()
        if segment is None:
            doc.message.emit(f"No segment here: a face is chosen per segment (face {face}); Project ▸ Settings "
                             "sets the project's")
            return
        try:
            command, text = choose_face(doc.project, segment.id, face)
        except EditError as e:
            doc.message.emit(str(e))
            return
        if command is None or doc.execute(command) is not None:
            doc.message.emit(text)

    def _on_frame(self, key, index, image):
        if not (isinstance(key, tuple) and key[0] == "preview") or self.document is None:
            return
        if key[1:] != self.wanted:
            return  # an answer to an older request: its successor is on the way
        self.shown = key[1:]
        self.view.set_image(image)

    def _on_failed(self, key, message):
        if isinstance(key, tuple) and key[0] == "preview" and key[1:] == self.wanted:
            self.shown = self.wanted = None
            self.view.clear(f"Cannot show this frame: {message}")
