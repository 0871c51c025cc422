"""Edges on the timeline, in frames and free of Qt: which segment edge the pointer is on, and where a
dragged edge or playhead snaps (segment edges, markers, the playhead). The timeline turns its few
pixels of reach into frames at the current zoom and asks here."""
from __future__ import annotations

from typing import Iterable


def edge_at(segments, x: float, reach: float) -> tuple[str, str] | None:
    """(segment id, "start" or "end") of the segment edge nearest `x` within `reach` frames, None when
    none is. A cut between two touching segments is the earlier one's end (moving it moves both)."""
    best = None
    for s in segments:
        for edge, frame in (("start", s.start), ("end", s.end)):
            distance = abs(frame - x)
            if distance <= reach and (best is None or distance < best[0]):  # a tie keeps the earlier: the end
                best = (distance, s.id, edge)
    return None if best is None else best[1:]


def snap_targets(project, playhead: int | None = None, leave_out: Iterable[int] = ()) -> list[int]:
    """Frames a dragged edge or playhead snaps to, sorted: every segment's edges, the markers and the
    playhead (None: not a target, e.g. when it is what is dragged), but not `leave_out` (what moves)."""
    frames = {f for s in project.segments for f in (s.start, s.end)} | {m.frame for m in project.markers}
    if playhead is not None:
        frames.add(playhead)
    return sorted(frames - set(leave_out))


def snap(x: float, targets: Iterable[int], reach: float) -> int | None:
    """The target nearest `x` within `reach` frames (the earlier of two as near), None when none is."""
    best = min(targets, key=lambda f: (abs(f - x), f), default=None)
    return best if best is not None and abs(best - x) <= reach else None
