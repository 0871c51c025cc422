"""Which source frame feeds each output frame when dub and video differ in length.

No torch, no media: the editor's UI thread uses this as the renderer does.
cut: stop at the shorter of video and dub. loop / bounce: follow the dub, repeating the
video forwards / back and forth. pad: the longer of the two; video past the dub passes
through unchanged, and a dub past the video holds its last frame.
"""
import numpy as np

from core.hparams import LENGTH_POLICIES


def _check(policy: str):
    if policy not in LENGTH_POLICIES:
        raise ValueError(f"length policy must be one of {', '.join(LENGTH_POLICIES)}, not {policy!r}")


def output_count(n_video: int, fps: float, dub_seconds: float, policy: str) -> int:
    """Frames in the output."""
    _check(policy)
    n_dub = max(1, int(round(dub_seconds * fps)))
    return {"cut": min(n_video, n_dub), "pad": max(n_video, n_dub)}.get(policy, n_dub)


def source_of(k, n_video: int, policy: str):
    """Source frame of output frame(s) `k` (an int or an array)."""
    _check(policy)
    if policy == "loop":
        return k % n_video
    if policy == "bounce":
        period = max(1, 2 * n_video - 2)
        phase = k % period
        return np.where(phase < n_video, phase, period - phase)
    return np.minimum(k, n_video - 1)


def plan_frames(n_video: int, fps: float, dub_seconds: float, policy: str):
    """(source frame per output frame, whether that output frame has the dub under it)."""
    k = np.arange(output_count(n_video, fps, dub_seconds, policy))
    n_dub = max(1, int(round(dub_seconds * fps)))
    return np.asarray(source_of(k, n_video, policy), dtype=np.int64), k < n_dub
