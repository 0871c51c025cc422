"""Video thumbnails for the timeline, decoded in their own thread and cached.

`Thumbnails.request(indices)` replaces whatever is still waiting (the latest view wins: a fast
zoom or scroll decodes only what it will show); frames already cached are never decoded again.
Close indices are read in one forward pass of the decoder, far ones by seeking. Each image comes
back as `ready(index)`; `image(index)` then returns it. Nothing here ever blocks the UI thread.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import cv2
from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QImage

from .frames import OpenVideo, start_decoder_thread, to_qimage

THUMB_HEIGHT = 72  # pixels: drawn smaller, sharp on high-DPI screens
CACHE_LIMIT = 3000  # thumbnails kept (≈ 128 × 72 × 3 bytes each: ~80 MB at most)
FORWARD_GAP = 48  # decode forward instead of seeking when the next wanted frame is this close


def scaled(frame, height: int = THUMB_HEIGHT):
    h, w = frame.shape[:2]
    width = max(1, round(w * height / h))
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


class _Decoder(QObject):
    ready = Signal(object, int, QImage)  # path, index, image
    failed = Signal(object, str)

    def __init__(self, owner: "Thumbnails"):
        super().__init__()
        self._owner = owner
        self._video: OpenVideo | None = None

    def _close(self):
        if self._video is not None:
            self._video.close()
            self._video = None

    @Slot()
    def serve(self):
        while True:
            job = self._owner._next()
            if job is None:
                return
            path, index, height = job
            try:
                if self._video is None or self._video.path != path:
                    self._close()
                    self._video = OpenVideo(path)
                image = to_qimage(scaled(self._video.read(index, ahead=FORWARD_GAP), height))
            except Exception as e:  # noqa: BLE001 - a bad file leaves the lane empty, never crashes
                self._close()
                self.failed.emit(path, str(e))
                self._owner._drop(path)
                return
            self.ready.emit(path, index, image)

    @Slot()
    def close(self):
        self._close()


class Thumbnails(QObject):
    """Thumbnails of one video at a fixed height: request, cache, `ready(index)`."""
    ready = Signal(int)
    failed = Signal(str)
    _wake = Signal()
    _stop = Signal()

    def __init__(self, height: int = THUMB_HEIGHT, limit: int = CACHE_LIMIT, parent=None):
        super().__init__(parent)
        self.height = height
        self.limit = limit
        self.path: Path | None = None
        self.decoded = 0  # frames decoded so far (tests and the cache's effect)
        self._cache: OrderedDict[int, QImage] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: list[int] = []
        self._decoder = _Decoder(self)
        self._thread = start_decoder_thread(self, self._decoder, "thumbnails")

    def set_source(self, path):
        """Thumbnails of another video (None: none); the cache starts over."""
        path = Path(path) if path is not None else None
        if path == self.path:
            return
        with self._lock:
            self.path = path
            self._pending = []
        self._cache.clear()

    def image(self, index: int) -> QImage | None:
        image = self._cache.get(index)
        if image is not None:
            self._cache.move_to_end(index)
        return image

    def request(self, indices):
        """Decode these source frames (those not cached yet), in order; replaces the last request."""
        if self.path is None:
            return
        wanted = sorted({int(i) for i in indices if int(i) not in self._cache})
        with self._lock:
            self._pending = wanted
        if wanted:
            self._wake.emit()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- the decoder's side (its thread)

    def _next(self):
        with self._lock:
            if self.path is None or not self._pending:
                return None
            return self.path, self._pending.pop(0), self.height

    def _drop(self, path):
        with self._lock:
            if self.path == path:
                self._pending = []

    # -- back on the UI thread

    @Slot(object, int, QImage)
    def _on_ready(self, path, index, image):
        if path != self.path:
            return  # decoded for a video no longer shown
        self.decoded += 1
        self._cache[index] = image
        self._cache.move_to_end(index)
        while len(self._cache) > self.limit:
            self._cache.popitem(last=False)
        self.ready.emit(index)

    @Slot(object, str)
    def _on_failed(self, path, message):
        if path == self.path:
            self.failed.emit(message)

    def shutdown(self):
        if self._thread.isRunning():
            with self._lock:
                self._pending = []
            self._stop.emit()
            self._thread.quit()
            self._thread.wait(3000)
