"""Short durations for ETAs (Qt-free); frames as SMPTE timecode are core.timecode's, a project's
labelling is `Project.timecode`."""
from __future__ import annotations

import math


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
