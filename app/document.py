"""`Document`: the open project as the widgets see it — the Project, the playhead, in/out marks,
the dub's and the video's own waveforms, which models are installed, the face track the mask
overlay draws and the faces the face picker numbers — with signals when any of it changes.

Every edit goes through `execute` (a core.project command; an EditError becomes a `message`
for the status bar and nothing changes). The project's History listener turns pushes, undos,
redos and saves into `changed`.
"""
from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.errors import LipsmithError
from core.jobs import Waveform, project_length
from core.plan import source_of
from core.project import Command, EditError, Project, Segment, Take
from core.timecode import Timecode, TimecodeError



@dataclass(frozen=True)
class Compare:
    """Two takes of one segment the preview flips between: a view, never an edit (no undo step)."""
    segment_id: str
    a: str  # take ids
    b: str
    side: str = "A"  # the one the preview shows: "A" or "B"

    @property
    def shown(self) -> str:
        return self.a if self.side == "A" else self.b


def take_caption(side: str, take: Take, segment) -> str:
    """"A · Take 2 · LSE-C 5.5": which side, which take, and its score over `segment` (the compared one)
    when it was scored there: the number the segment shows with that take chosen."""
    score = (take.segment_score(segment) or (None,))[0]
    return f"{side} · {take.label}" + (f" · LSE-C {score:.3g}" if score is not None else "")


class Document(QObject):
    changed = Signal()  # the project's state or its saved/modified state
    frame_changed = Signal(int)
    marks_changed = Signal()
    models_changed = Signal()
    view_changed = Signal()  # original / result, mask overlay on / off, takes compared
    media_changed = Signal()  # the original audio's waveform or the face track arrived
    message = Signal(str)  # one line for the status bar

    def __init__(self, project: Project, waveform: Waveform | None = None, parent=None):
        super().__init__(parent)
        self.project = project
        self.waveform = waveform
        self.frame = 0
        self.in_point: int | None = None
        self.out_point: int | None = None
        self.show_result = False
        self.show_mask = False
        self.compare: Compare | None = None
        # the video's own audio: None until read; `original_state` says why there is none
        self.original_waveform: Waveform | None = None
        self.original_state = "loading"  # "loading", "ready", "none" (no audio track), "still", "missing", "failed"
        self.show_faces = False  # the face picker: every face numbered over the preview, a click chooses one
        self.track = None  # core.faces.FaceTrack for the mask overlay (core.jobs.face_track), by source frame
        self.faces = None  # core.faces.FaceChoices from the same detections, for the face picker
        self.detections = None  # … and the detections (core.faces.Detections) they were made from
        self.track_timeline = None  # the video's: picture frame k shows source frame track_timeline[k]
        self.track_key = None  # the TrackRequest.key it was built for
        self.models: dict | None = None  # {"generator": problem or None, "expert": ...}; None: not checked yet
        self._length = project_length(project)
        self._marks()
        self._closed = False
        self._slipped_dub: Path | None = None  # the dub as slipped, for playback (playback_dub)
        self._slipped_folder: tempfile.TemporaryDirectory | None = None
        project.history.add_listener(self._on_history)

    # -- the project

    def _marks(self):
        """What the chosen takes mark, kept per change (the preview asks at every frame it shows): where
        a render found no face, and where the actor's mouth was asked for but the generated one pasted."""
        self.no_face_ranges = self.project.no_face_ranges()
        self.generated_mouth_ranges = self.project.generated_mouth_ranges()

    @property
    def fps(self) -> float:
        return self.project.fps

    @property
    def length(self) -> int:
        """Output frames (the timeline's extent)."""
        return self._length

    def close(self):
        """Stop following the project (History has no way to remove a listener); the slipped dub goes."""
        self._closed = True
        if self._slipped_folder is not None:
            self._slipped_folder.cleanup()
            self._slipped_folder = self._slipped_dub = None

    def playback_dub(self) -> Path | None:
        """The file playback plays: the dub, or where segments are slipped, the dub as slipped (core.slip,
        as the export delivers it), written when first played after a slip, into a temp folder of the
        document's. None (and a `message` saying why) when there is nothing to play."""
        from core.loudness import SAMPLE_RATE
        from core.slip import write_slipped_dub

        project = self.project
        dub = project.dub
        if dub is None or dub.missing:
            return None
        slips = project.slips()
        if not slips:
            return dub.path
        key = repr((str(dub.path), project.dub_offset, project.fps, slips)).encode()
        if self._slipped_folder is None:
            self._slipped_folder = tempfile.TemporaryDirectory(prefix="lipsmith-dub-")
        path = Path(self._slipped_folder.name) / f"slipped-{hashlib.sha1(key).hexdigest()[:12]}.wav"
        if path != self._slipped_dub:
            try:
                write_slipped_dub(dub.path, path, slips, project.fps, project.dub_offset, SAMPLE_RATE)
            except LipsmithError as e:
                self.message.emit(f"Cannot play the dub as slipped: {e}")
                return None
            if self._slipped_dub is not None:
                self._slipped_dub.unlink(missing_ok=True)  # one at a time: it is as long as the dub
            self._slipped_dub = path
        return path

    def _on_history(self):
        if self._closed:
            return
        self._length = project_length(self.project)
        self._marks()
        if self.frame >= self._length:
            self.set_frame(self._length - 1)
        self._end_stale_compare()
        self.changed.emit()

    def notify(self):
        """Tell the views about a change the History does not see (an export record, a save)."""
        self._on_history()

    def execute(self, command_or_factory) -> Command | None:
        """Run an edit. `command_or_factory`: a Command, or a callable building one (so a command whose
        constructor refuses the edit is reported the same way). Returns it, or None when refused."""
        try:
            command = command_or_factory() if callable(command_or_factory) and not isinstance(
                command_or_factory, Command) else command_or_factory
            return self.project.execute(command)
        except EditError as e:
            self.message.emit(str(e))
            return None

    def undo(self):
        self.project.undo()

    def redo(self):
        self.project.redo()

    def set_waveform(self, waveform: Waveform | None):
        self.waveform = waveform
        self.changed.emit()

    def set_original_waveform(self, waveform: Waveform | None, state: str | None = None):
        self.original_waveform = waveform
        self.original_state = state or ("ready" if waveform is not None else "none")
        self.media_changed.emit()

    def set_track(self, found, key):
        """The face track job's result (core.jobs.PictureTrack) for the settings `key`."""
        self.track, self.faces, self.detections = found.track, found.faces, found.detections
        self.track_key, self.track_timeline = key, found.timeline
        self.media_changed.emit()

    def set_show_mask(self, on: bool):
        if on != self.show_mask:
            self.show_mask = on
            self.view_changed.emit()

    def set_show_faces(self, on: bool):
        if on != self.show_faces:
            self.show_faces = on
            self.view_changed.emit()

    def source_frames(self, start: int, stop: int):
        """The source frames shown at output frames [start, stop) (a take's frames have the source's
        geometry): the picture frames the length policy plays there, through the video's timeline (a VFR
        video's conform repeats source frames), as the face track counts them. Needs the track's timeline."""
        facts = self.project.video.facts
        pictures = source_of(np.arange(start, stop), facts.frame_count, self.project.settings["length_policy"],
                             facts.is_image)
        return np.asarray(self.track_timeline)[pictures]

    def source_frame(self, frame: int) -> int:
        return int(self.source_frames(frame, frame + 1)[0])

    def segment_face(self, segment: Segment | None) -> int:
        """The face `segment` dubs (the project's where it has none, or no segment): face_index's number."""
        settings = self.project.effective_settings(segment.id if segment is not None else None)
        return settings["face_index"] or 0

    def set_models(self, models: dict | None):
        self.models = models
        self.models_changed.emit()

    # -- comparing two takes

    def start_compare(self, segment_id: str, a: str, b: str):
        """Show take `a` of the segment, ready to flip to `b`; the result view, so leaving shows the chosen take."""
        self.compare = Compare(segment_id, a, b)
        self.show_result = True
        self.view_changed.emit()

    def show_compare_side(self, side: str):
        if self.compare is not None and side != self.compare.side:
            self.compare = replace(self.compare, side=side)
            self.view_changed.emit()

    def flip_compare(self):
        if self.compare is not None:
            self.show_compare_side("B" if self.compare.side == "A" else "A")

    def stop_compare(self):
        if self.compare is not None:
            self.compare = None
            self.view_changed.emit()

    def _end_stale_compare(self):
        """Stop comparing once the playhead leaves the segment, or an edit (undo, split, nudge) leaves a take
        unable to serve it."""
        c = self.compare
        if c is None:
            return
        segment = self.selected_segment()
        if (segment is None or segment.id != c.segment_id
                or not {c.a, c.b} <= {t.id for t in self.project.takes_for(segment.id)}):
            self.stop_compare()

    # -- playhead and marks

    def set_frame(self, frame: int):
        frame = int(min(max(int(round(frame)), 0), max(self.length - 1, 0)))
        if frame != self.frame:
            self.frame = frame
            self._end_stale_compare()
            self.frame_changed.emit(frame)

    def step(self, frames: int):
        self.set_frame(self.frame + frames)

    def step_seconds(self, seconds: float):
        self.set_frame(self.frame + int(round(seconds * self.fps)))

    def mark_in(self):
        self.in_point = self.frame
        if self.out_point is not None and self.out_point <= self.in_point:
            self.out_point = None
        self.marks_changed.emit()

    def mark_out(self):
        self.out_point = self.frame + 1  # the out mark includes the frame under the playhead
        if self.in_point is not None and self.in_point >= self.out_point:
            self.in_point = None
        self.marks_changed.emit()

    def clear_marks(self):
        self.in_point = self.out_point = None
        self.marks_changed.emit()

    def marked_range(self) -> tuple[int, int] | None:
        """[in, out) when either mark is set (the other defaults to the clip's edge)."""
        if self.in_point is None and self.out_point is None:
            return None
        start = self.in_point or 0
        end = self.out_point if self.out_point is not None else self.length
        return (start, end) if end > start else None

    def set_show_result(self, on: bool):
        if on != self.show_result:
            self.show_result = on
            self.view_changed.emit()

    # -- lookups

    def selected_segment(self) -> Segment | None:
        """The segment under the playhead (the inspector's and Ctrl+R's subject)."""
        return self.project.segment_at(self.frame)

    @property
    def timecode(self) -> Timecode:
        return self.project.timecode

    def time_text(self, frame: int | None = None) -> str:
        """The timecode of `frame` (default: the playhead's)."""
        return self.timecode.text(self.frame if frame is None else frame)

    def span_text(self, start: int, end: int) -> str:
        """Frames [start, end) as in–out timecodes, the out point inclusive (its last frame)."""
        return self.timecode.span(start, end)

    def jump(self, entry: str) -> bool:
        """Move the playhead to a typed timecode, or +N / -N frames from it; a `message` says why not, or
        that it stopped at the clip's edge."""
        try:
            frame = self.timecode.jump(entry, self.frame)
        except TimecodeError as e:
            self.message.emit(str(e))
            return False
        if not 0 <= frame < self.length:
            edge = "first" if frame < 0 else "last"
            self.message.emit(f"{entry.strip()} is outside the clip ({self.span_text(0, self.length)}): "
                              f"went to its {edge} frame")
        self.set_frame(frame)
        return True

    @property
    def title(self) -> str:
        path = self.project.path
        return path.name if path is not None else "Untitled"
