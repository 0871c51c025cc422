"""Frames as text for rulers, labels and the status bar (Qt-free)."""
from __future__ import annotations

import math


def timecode(frame: float, fps: float, frames: bool = True) -> str:
    """`m:ss.ff` (frames within the second) or `h:mm:ss.ff` past an hour; `frames=False`: `m:ss`."""
    fps = fps if fps and fps > 0 else 25.0
    sign = "-" if frame < 0 else ""
    frame = abs(frame)
    per_second = max(1, int(round(fps)))
    seconds = int(math.floor(frame / fps + 1e-9))
    ff = int(round(frame - seconds * fps))
    if ff >= per_second:  # rounding at a second's edge
        seconds, ff = seconds + 1, 0
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    text = f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
    return sign + (f"{text}.{ff:02d}" if frames else text)


def duration_text(seconds: float | None) -> str:
    """A short human duration for ETAs: `42 s`, `3 min 05 s`, `1 h 02 min`; `--` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"
