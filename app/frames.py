"""`FrameReader`: decodes preview frames in its own thread, so scrubbing never blocks the UI.

`request(key, path, index)` replaces any request not yet served (the latest wins: a fast
scrub decodes only the frames it can show). Reading frame i+1 right after frame i continues
the open decoder (playback); anything else seeks (`OpenVideo`, which the timeline's thumbnails
read through too). Frames come back as QImages (`frame_ready(key, index, image)`), with
`failed(key, message)` when a file cannot be read.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtGui import QImage

OPEN_SOURCES = 4  # video files kept open (the source and a few takes)


def to_qimage(frame: np.ndarray) -> QImage:
    """A BGR uint8 (H, W, 3) frame as a QImage that owns its pixels."""
    frame = np.ascontiguousarray(frame)
    h, w = frame.shape[:2]
    return QImage(frame.data, w, h, frame.strides[0], QImage.Format.Format_BGR888).copy()


class OpenVideo:
    """A video file and the forward pass its decoder is in: a frame from the pass's last one to
    `ahead` frames past it continues the pass (playback, nearby thumbnails); any other seeks."""

    def __init__(self, path):
        from core.video import VideoSource

        self.source = VideoSource(path)
        self.path = self.source.path
        self._next = 0
        self._last = None  # the pass's last frame: a VFR source's picture shows some frames twice
        self._pass = None  # the frames iterator of the open forward pass

    def read(self, index: int, ahead: int = 0) -> np.ndarray:
        """Frame `index` of the picture (clamped to it): the source frame shown then."""
        source = self.source
        if source.is_image:
            return source.read(0)
        index = source.picture_source(min(max(index, 0), source.picture_count - 1))
        if self._pass is not None and index == self._next - 1:
            return self._last
        if self._pass is not None and self._next <= index <= self._next + ahead:
            for i, frame in self._pass:
                if i >= index:
                    self._next, self._last = i + 1, frame
                    return frame
        self._end_pass()
        self._pass = source.frames(index)
        i, frame = next(self._pass)
        self._next, self._last = i + 1, frame
        return frame

    def _end_pass(self):
        if self._pass is not None:
            self._pass.close()
            self._pass = self._last = None

    def close(self):
        self._end_pass()
        self.source.close()


class _Decoder(QObject):
    ready = Signal(object, int, QImage)
    failed = Signal(object, str)

    def __init__(self, reader: "FrameReader"):
        super().__init__()
        self._reader = reader
        self._open: OrderedDict[Path, OpenVideo] = OrderedDict()

    def _video(self, path: Path) -> OpenVideo:
        if path in self._open:
            self._open.move_to_end(path)
            return self._open[path]
        video = self._open[path] = OpenVideo(path)
        while len(self._open) > OPEN_SOURCES:
            self._open.popitem(last=False)[1].close()
        return video

    @Slot()
    def serve(self):
        job = self._reader._take()
        if job is None:
            return
        key, path, index = job
        try:
            image = to_qimage(self._video(path).read(index))
        except Exception as e:  # noqa: BLE001 - a bad file shows a message in the preview, never a crash
            if path in self._open:
                self._open.pop(path).close()
            self.failed.emit(key, str(e))
            return
        self.ready.emit(key, index, image)

    @Slot()
    def close(self):
        for video in self._open.values():
            video.close()
        self._open.clear()


def start_decoder_thread(owner, decoder, name: str) -> QThread:
    """Run `decoder` (serve/close slots, ready/failed signals) in its own QThread, wired to
    `owner`'s _wake/_stop signals and _on_ready/_on_failed slots; returns the started thread."""
    thread = QThread()
    thread.setObjectName(name)
    decoder.moveToThread(thread)
    owner._wake.connect(decoder.serve)
    owner._stop.connect(decoder.close)
    decoder.ready.connect(owner._on_ready)
    decoder.failed.connect(owner._on_failed)
    thread.start()
    return thread


class FrameReader(QObject):
    frame_ready = Signal(object, int, QImage)  # key, index in its file, image
    failed = Signal(object, str)
    _wake = Signal()
    _stop = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending = None
        self._decoder = _Decoder(self)
        self._thread = start_decoder_thread(self, self._decoder, "frame reader")

    def request(self, key, path, index: int):
        """Decode frame `index` of `path`; `key` comes back with it (e.g. which view asked)."""
        with self._lock:
            self._pending = (key, Path(path), int(index))
        self._wake.emit()

    def _take(self):
        with self._lock:
            job, self._pending = self._pending, None
        return job

    @Slot(object, int, QImage)
    def _on_ready(self, key, index, image):
        self.frame_ready.emit(key, index, image)

    @Slot(object, str)
    def _on_failed(self, key, message):
        self.failed.emit(key, message)

    def shutdown(self):
        if self._thread.isRunning():
            self._stop.emit()
            self._thread.quit()
            self._thread.wait(3000)
