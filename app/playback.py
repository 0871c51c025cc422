"""`Transport`: play / pause and J-K-L shuttle over the document's playhead; play in to out; loop; what
is heard (core.monitor: the dub, the video's own audio or both, each at its level).

A timer moves the playhead by wall-clock time × speed (frames the preview cannot decode in time
are skipped, never queued). At 1× forwards each monitored track plays through QtMultimedia, when it
is there and an audio output exists, a player and an output of its own per track (so a level changes
at once); the picture then follows the audio's clock (the dub's, else the original's), and a second
track that drifts from it is put back; the dub is heard as the editor slipped it (Document.playback_dub).
Played from before the dub's start (a dub nudged later), the dub starts when the playhead reaches it; a
playhead moved by something else while playing (a click in the timeline, a weak segment) plays on
from there, the audio with it. Backwards, faster and slower,
the picture plays silent. `play_range` plays [start, end) and stops at its last frame; with `loop`
on, playback at an end (the range's, else the clip's) starts again from the other.

J / L shuttle backwards / forwards, faster at each press; K stops. With K held, a tap of L or J steps
one frame, and holding it plays at half speed until it is let go: the window reports K and the
releases (`hold_stop`, `release_jog`), which an action triggered on a press cannot see.
"""
from __future__ import annotations

import os
import time

from PySide6.QtCore import QObject, QTimer, QUrl, Signal

from core.monitor import Monitor, cues

SHUTTLE_SPEEDS = (1, 2, 4, 8)
JOG_SPEED = 0.5  # K held with L / J held down
DRIFT_S = 0.08  # a second track further than this from the clock's is put back (seeking is audible:
RESYNC_S = 1.0  # not more often than this)


class _Track:
    """One file through its own QMediaPlayer and QAudioOutput, created on first use; None-safe when
    QtMultimedia is missing."""

    def __init__(self):
        self.player = None
        self.output = None
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

    def play(self, path, seconds: float, gain: float):
        if not self.ready():
            return
        if self.source != str(path):
            self.player.setSource(QUrl.fromLocalFile(str(path)))
            self.source = str(path)
        self.set_gain(gain)
        self.seek(seconds)
        self.player.play()

    def seek(self, seconds: float):
        self.player.setPosition(int(seconds * 1000))

    def set_gain(self, gain: float):
        if self.output is not None:
            self.output.setVolume(gain)

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
        self.monitor = Monitor()
        self._tracks = {"dub": _Track(), "original": _Track()}
        self._cued = {}  # track → core.monitor.Cue, for the tracks started since playback (re)started
        self._resynced = 0.0  # when a drifting track was last put back
        self._ticking = False  # the playhead moving by the transport's own hand
        self.loop = False  # at an end, start again from the other
        self.range: tuple[int, int] | None = None  # [start, end) being played in to out; None: the clip
        self.stop_held = False  # K is down: L / J jog
        self._jogging = 0  # the direction of the L / J key down while K is held; 0: none

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

    def set_monitor(self, monitor: Monitor):
        """Hear `monitor` from now on: new levels at once; other tracks from the playhead."""
        other_tracks = monitor.tracks != self.monitor.tracks
        self.monitor = monitor
        if other_tracks:
            self._restart_audio()
        else:
            for track in self._cued:
                self._tracks[track].set_gain(monitor.gain(track))

    def play(self, speed: float = 1, keep_range: bool = False):
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
        self._restart_audio()
        self._timer.start()
        self.state_changed.emit()

    def _start_audio(self):
        """At 1× forwards, each monitored track not yet started, from the playhead's time in it; one that
        has not begun there (a dub nudged later) is tried again at each tick."""
        if self.speed != 1:
            return
        for cue in cues(self.monitor, self.document.project, self.document.frame):
            if cue.track not in self._cued and self._tracks[cue.track].ready():
                # the dub as the editor slipped it (Document.playback_dub), made only for a player
                path = self.document.playback_dub() if cue.track == "dub" else cue.path
                if path is not None:
                    self._tracks[cue.track].play(path, cue.seconds, cue.gain)
                self._cued[cue.track] = cue

    def _stop_audio(self):
        for track in self._tracks.values():
            track.stop()
        self._cued.clear()

    def _restart_audio(self):
        self._stop_audio()
        self._start_audio()

    def _clock(self) -> float | None:
        """The playhead's time by the audio (the first playing track's, dub first); put back any other
        track that has drifted from it. None while no track plays."""
        times = {track: position + self._cued[track].offset for track in self.monitor.tracks
                 if track in self._cued and (position := self._tracks[track].position()) is not None}
        if not times:
            return None
        clock = next(iter(times.values()))
        now = time.monotonic()
        if now - self._resynced >= RESYNC_S:
            for track, t in times.items():
                if abs(t - clock) > DRIFT_S:
                    self._tracks[track].seek(clock - self._cued[track].offset)
                    self._resynced = now
        return clock

    def _on_frame_changed(self, frame: int):
        """The playhead moved by another hand while playing: play on from there, the audio too (to the
        clip's end: a seek leaves the in–out range)."""
        if self._ticking or not self.speed:
            return
        self.range = None
        self._origin = (time.monotonic(), frame)
        self._restart_audio()

    def stop(self):
        self._timer.stop()
        self._stop_audio()
        self.range = None
        if self.speed:
            self.speed = 0
            self.state_changed.emit()

    def toggle(self):
        self.stop() if self.playing else self.play(1)

    def forward(self):
        """L: play forwards; again: faster. With K held: one frame on; held down too: half speed."""
        if self.stop_held or self._jogging == 1:  # K let go first: the jog lasts while the key is down
            self._jog(1)
        else:
            self.play(_faster(self.speed) if self.speed > 0 else 1)

    def reverse(self):
        """J: play backwards; again: faster. With K held: one frame back; held down too: half speed."""
        if self.stop_held or self._jogging == -1:  # K let go first: the jog lasts while the key is down
            self._jog(-1)
        else:
            self.play(-_faster(-self.speed) if self.speed < 0 else -1)

    def hold_stop(self, down: bool):
        """K went down (True) or up: while it is down, L and J jog."""
        self.stop_held = down

    def _jog(self, direction: int):
        """The first press steps a frame; the key pressed again before it is let go (it repeats: held)
        plays slowly that way."""
        if self.document is None:
            return
        if self._jogging == direction:
            if self.speed != direction * JOG_SPEED:
                self.play(direction * JOG_SPEED)
            return
        self.stop()
        self._jogging = direction
        self.document.step(direction)

    def release_jog(self, direction: int):
        """L (1) or J (-1) let go: a jog that way ends, and its slow play stops."""
        if self._jogging != direction:
            return
        self._jogging = 0
        if self.speed == direction * JOG_SPEED:
            self.stop()

    def release_keys(self):
        """The window lost the keyboard: no key is held any more."""
        self.stop_held = False
        for direction in (1, -1):
            self.release_jog(direction)

    def _tick(self):
        doc = self.document
        if doc is None:
            self.stop()
            return
        audio_t = self._clock() if self.speed == 1 else None
        if audio_t is not None:
            target = int(audio_t * doc.fps)
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
            self._restart_audio()
        elif end:
            self.stop()
        elif self.speed == 1 and len(self._cued) < len(self.monitor.tracks):
            self._start_audio()


def _faster(speed: float) -> int:
    return next((s for s in SHUTTLE_SPEEDS if s > speed), SHUTTLE_SPEEDS[-1])
