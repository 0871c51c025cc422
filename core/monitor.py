"""What the editor's playback lets you hear (Playback ▸ Monitor): the dub, the video's own audio (the
original) or both, each at a level in dB; and, for a frame, where in each file its sound is.

Qt-free: app.playback plays each track through an output of its own at the gain given here, so a
level changes at once, without mixing anything. An output attenuates and cannot amplify, so a level
runs from SILENT_DB (and below: off, shown as −∞) to 0 dB, the file as recorded; to hear one track
over the other, lower the other. A view setting, not a project edit (app.settings remembers it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

SOURCES = {"dub": "Dub", "original": "Original", "both": "Both"}  # what can be monitored → its name
TRACKS = {"dub": ("dub",), "original": ("original",), "both": ("dub", "original")}
SILENT_DB = -60.0  # a level at or below this is off
MAX_DB = 0.0


@dataclass(frozen=True)
class Monitor:
    source: str = "dub"  # a SOURCES key
    dub_db: float = 0.0
    original_db: float = 0.0

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"monitor source {self.source!r}: one of {', '.join(SOURCES)}")
        for name, db in (("dub", self.dub_db), ("original", self.original_db)):
            if math.isnan(db) or db > MAX_DB:
                raise ValueError(f"{name} level {db} dB: at most {MAX_DB:g} dB (an output cannot amplify)")

    @property
    def tracks(self) -> tuple[str, ...]:
        """The tracks that play: "dub", "original" or both, dub first."""
        return TRACKS[self.source]

    def gain(self, track: str) -> float:
        """A track's level as a linear amplitude (0 where it is off)."""
        db = self.dub_db if track == "dub" else self.original_db
        return 0.0 if db <= SILENT_DB else 10.0 ** (db / 20.0)


@dataclass(frozen=True)
class Cue:
    """Play `path` from `seconds` at `gain`; `offset` is the project time (s) of the file's start, so the
    file's position + offset is the playhead's time."""
    track: str
    path: Path
    seconds: float
    offset: float
    gain: float


def cues(monitor: Monitor, project, frame: int) -> list[Cue]:
    """The monitored tracks that have sound at output frame `frame`, dub first: the dub where the offset
    puts it (none before it begins or after it ends: it waits, or has ended), the video's own audio on
    the picture's clock; neither while its file is missing, nor the original of a still."""
    out = []
    t = frame / project.fps
    for track in monitor.tracks:
        media = project.dub if track == "dub" else project.video
        if media is None or (track == "original" and media.facts.is_image) or media.missing:
            continue
        offset = project.dub_offset / project.fps if track == "dub" else 0.0
        seconds = t - offset
        if seconds < 0 or (media.facts.duration is not None and seconds >= media.facts.duration):
            continue
        out.append(Cue(track, media.path, seconds, offset, monitor.gain(track)))
    return out
