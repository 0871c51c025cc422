"""`Transport`: play / pause and J-K-L shuttle over the document's playhead; play in to out; loop.

A timer moves the playhead by wall-clock time × speed (frames the preview cannot decode in time
are skipped, never queued). At 1× forwards the dub plays through QtMultimedia, when it is there
and an audio output exists (the dub as the editor slipped it: Document.playback_dub); the picture
then follows the audio's clock. Played from before the dub's start (a dub nudged later), the audio
starts when the playhead reaches it; a playhead moved by something else while playing (a click in
the timeline, a weak segment) plays on from there, the audio with it. `play_range` plays [start, end)
and stops at its last frame; with `loop` on, playback at an end (the range's, else the clip's) starts
again from the other.
"""
from __future__ import annotations

import os
import time

from PySide6.QtCore import QObject, QTimer, QUrl, Signal

SHUTTLE_SPEEDS = (1, 2, 4, 8)


class _Audio:
    """The dub through QMediaPlayer, created on first use; None-safe when QtMultimedia is missing."""

    def __init__(self):
        self.player = None
        self.source = None
        self.available = os.environ.get("QT_QPA_PLATFORM") != "offscreen"  # no sound device in headless runs

    def ready(self) -> bool:
        """Whether it can play (the player made on first use)."""
        if self.player is not None:
            return True
        if not self.available:
            return False
        try:
            from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer

            if not QMediaDevices.audioOutputs():
                self.available = False
                return False
            self.output = QAudioOutput()
            self.player = QMediaPlayer()
            self.player.setAudioOutput(self.output)
        except Exception:  # noqa: BLE001 - silent playback is better than none
            self.available = False
            return False
        return True

    def play(self, path, seconds: float):
        if seconds < 0 or not self.ready():
            return
        if self.source != str(path):
            self.player.setSource(QUrl.fromLocalFile(str(path)))
            self.source = str(path)
        self.player.setPosition(int(seconds * 1000))
        self.player.play()

    def position(self) -> float | None:
        if self.player is None or self.player.playbackState() != self.player.PlaybackState.PlayingState:
            return None
        return self.player.position() / 1000.0

    def stop(self):
        if self.player is not None:
            self.player.pause()


class Transport(QObject):
    state_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.document = None
        self.speed = 0  # frames per frame-time; negative: backwards; 0: stopped
        self._timer = QTimer(self)
        self._timer.setInterval(15)
        self._timer.timeout.connect(self._tick)
        self._origin = (0.0, 0)  # (time, frame) when the current speed began
        self._audio = _Audio()
        self._audio_offset = 0.0
        self._audio_waiting = False  # at 1×, the playhead not yet at the dub's start
        self._ticking = False  # the playhead moving by the transport's own hand
        self.loop = False  # at an end, start again from the other
        self.range: tuple[int, int] | None = None  # [start, end) being played in to out; None: the clip

    def set_document(self, document):
        self.stop()
        if self.document is not None:
            try:
                self.document.frame_changed.disconnect(self._on_frame_changed)
            except (RuntimeError, TypeError):  # already gone
                pass
        self.document = document
        if document is not None:
            document.frame_changed.connect(self._on_frame_changed)

    @property
    def playing(self) -> bool:
        return self.speed != 0

    def bounds(self) -> tuple[int, int]:
        """[first, last] frames playback runs between: the range played in to out, else the clip."""
        if self.range is not None:
            return self.range[0], self.range[1] - 1
        return 0, max(self.document.length - 1, 0)

    def play_range(self, start: int, end: int):
        """Play frames [start, end) from `start`: it stops on the last one (with `loop`: again from `start`)."""
        doc = self.document
        if doc is None or end - start < 1:
            return
        self.stop()
        self.range = (start, end)
        doc.set_frame(start)
        self.play(1, keep_range=True)

    def set_loop(self, on: bool):
        self.loop = bool(on)
        self.state_changed.emit()

    def play(self, speed: int = 1, keep_range: bool = False):
        doc = self.document
        if doc is None or doc.length <= 1:
            return
        if not keep_range:
            self.range = None
        first, last = self.bounds()
        if speed > 0 and doc.frame >= last:
            doc.set_frame(first)  # play from the start again
        elif speed < 0 and doc.frame <= first and self.loop:
            doc.set_frame(last)
        self.speed = speed
        self._origin = (time.monotonic(), doc.frame)
        self._audio.stop()
        self._start_audio()
        self._timer.start()
        self.state_changed.emit()

    def _start_audio(self):
        """At 1× forwards, the dub (as slipped: Document.playback_dub) from the playhead's time; before the
        dub's start, wait for it."""
        doc = self.document
        dub = doc.project.dub
        self._audio_waiting = self.speed == 1 and dub is not None and not dub.missing
        if self._audio_waiting and doc.frame >= doc.project.dub_offset:
            self._audio_waiting = False
            path = doc.playback_dub() if self._audio.ready() else None  # no slipped dub made for no player
            if path is not None:
                self._audio.play(path, (doc.frame - doc.project.dub_offset) / doc.fps)
            self._audio_offset = doc.project.dub_offset / doc.fps

    def _on_frame_changed(self, frame: int):
        """The playhead moved by another hand while playing: play on from there, the audio too (to the
        clip's end: a seek leaves the in–out range)."""
        if self._ticking or not self.speed:
            return
        self.range = None
        self._origin = (time.monotonic(), frame)
        self._audio.stop()
        self._start_audio()

    def stop(self):
        self._timer.stop()
        self._audio.stop()
        self.range = None
        if self.speed:
            self.speed = 0
            self.state_changed.emit()

    def toggle(self):
        self.stop() if self.playing else self.play(1)

    def forward(self):
        """L: play forwards; again: faster."""
        self.play(_faster(self.speed) if self.speed > 0 else 1)

    def reverse(self):
        """J: play backwards; again: faster."""
        self.play(-_faster(-self.speed) if self.speed < 0 else -1)

    def _tick(self):
        doc = self.document
        if doc is None:
            self.stop()
            return
        audio_t = self._audio.position() if self.speed == 1 else None
        if audio_t is not None:
            target = int((audio_t + self._audio_offset) * doc.fps)
        else:
            t0, f0 = self._origin
            target = f0 + int((time.monotonic() - t0) * doc.fps * self.speed)
        first, last = self.bounds()
        # at an end: stop on it, or (looping) start again from the other end once it has been shown
        wrap = self.loop and ((self.speed > 0 and target > last) or (self.speed < 0 and target < first))
        end = not self.loop and ((self.speed > 0 and target >= last) or (self.speed < 0 and target <= first))
        if wrap:
            target = first if self.speed > 0 else last
        elif end:
            target = last if self.speed > 0 else first
        self._ticking = True
        try:
            doc.set_frame(target)
        finally:
            self._ticking = False
        if wrap:
            self._origin = (time.monotonic(), doc.frame)
            self._audio.stop()
            self._start_audio()
        elif end:
            self.stop()
        elif self._audio_waiting and doc.frame >= doc.project.dub_offset:
            self._start_audio()


def _faster(speed: int) -> int:
    return next((s for s in SHUTTLE_SPEEDS if s > speed), SHUTTLE_SPEEDS[-1])
