"""Which faces there are to dub, frame by frame, numbered as `face_index` numbers them.

`FaceChoices` links a video's detections into tracks and ranks them per shot exactly as
`build_track` does (core.faces.track: `scene_cuts`, `link_tracks`, `shot_choices`), so the face
shown as number k in a frame is the face a render with face_index=k dubs there. It reads only
detections already made (the per-video cache): a frame not detected yet has no answer (None),
never a new detection. A face seen in too few frames to be chosen (`min_track_len`) gets no number.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .detections import Detections
from .track import link_tracks, scene_cuts, shot_bounds, shot_choices


@dataclass(frozen=True)
class FaceChoice:
    index: int  # the face_index that dubs this face
    box: tuple  # (x1, y1, x2, y2) float: where it was detected in this frame, in source pixels

    def contains(self, x: float, y: float) -> bool:
        x1, y1, x2, y2 = self.box
        return x1 <= x <= x2 and y1 <= y <= y2

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(x2 - x1, 0.0) * max(y2 - y1, 0.0)


class FaceChoices:
    """The faces of every detected frame and how many each shot offers (build_track's parameters)."""

    def __init__(self, detections: Detections, cuts=None, iou_threshold: float = 0.3, min_track_len: int = 3,
                 cut_threshold: float = 0.3):
        n = len(detections)
        cuts = scene_cuts(detections, cuts, cut_threshold)
        tracks = link_tracks(detections, cuts, iou_threshold)
        self.detected = np.asarray(detections.detected, dtype=bool).copy()
        self._faces: list[list[FaceChoice]] = [[] for _ in range(n)]
        self._shot_of = np.zeros(n, dtype=np.int64)
        self._found: list[int] = []  # per shot: how many faces face_index can choose from
        for shot, (a, b) in enumerate(shot_bounds(n, cuts)):
            self._shot_of[a:b] = shot
            choices = shot_choices(tracks, shot, b - a, min_track_len)
            self._found.append(len(choices))
            for k, track in enumerate(choices):
                for frame, box in zip(track.frames, track.boxes):
                    self._faces[int(frame)].append(FaceChoice(k, tuple(float(v) for v in box)))

    def __len__(self) -> int:
        return len(self._faces)

    def _known(self, frame: int) -> bool:
        return 0 <= frame < len(self._faces) and bool(self.detected[frame])

    def at(self, frame: int) -> list[FaceChoice] | None:
        """The numbered faces of source frame `frame`, by number; None where it was not detected yet."""
        return list(self._faces[frame]) if self._known(frame) else None

    def found(self, frame: int) -> int | None:
        """How many faces the shot of `frame` offers (face_index 0 … found − 1); None where not detected yet."""
        return self._found[self._shot_of[frame]] if self._known(frame) else None

    def found_in(self, frames) -> int | None:
        """The most faces any shot offers among source frames `frames` (detected ones); None: none detected."""
        known = [int(f) for f in frames if self._known(int(f))]
        if not known:
            return None
        return max(self._found[s] for s in np.unique(self._shot_of[known]))

    def hit(self, frame: int, x: float, y: float) -> int | None:
        """The number of the face at (x, y) in source frame `frame` (overlapping boxes: the smallest,
        the face in front); None where no face is there or the frame was not detected yet."""
        under = [f for f in self.at(frame) or () if f.contains(x, y)]
        return min(under, key=lambda f: f.area).index if under else None
