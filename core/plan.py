"""Which source frame feeds each output frame when dub and video differ in length.

No torch, no media: the editor's UI thread, the renderer and the export all use this.
cut: stop at the shorter of video and dub. loop / bounce: follow the dub, repeating the
video forwards / back and forth. pad: the longer of the two; video past the dub passes
through unchanged, and a dub past the video holds its last frame. A still image (`is_image`)
follows the dub whatever the policy. `dub_seconds` is where the dub ends on the output's
clock: its length plus its offset.
"""
import numpy as np

from core.hparams import LENGTH_POLICIES


def frames_around(used_frames, seconds: float, fps: float, n_frames: int) -> tuple[int, int]:
    """[lo, hi): the source frames within `seconds` of `used_frames` (those a job shows), in the video."""
    reach = int(round(seconds * fps))
    return max(0, int(np.min(used_frames)) - reach), min(n_frames, int(np.max(used_frames)) + 1 + reach)


def _rule(n_video, policy: str, is_image: bool) -> tuple[int, str]:
    """(frames of the video, the policy that applies): a still loops its one frame to the dub."""
    if policy not in LENGTH_POLICIES:
        raise ValueError(f"length policy must be one of {', '.join(LENGTH_POLICIES)}, not {policy!r}")
    return max(1, int(n_video or 1)), "loop" if is_image else policy


def output_count(n_video: int, fps: float, dub_seconds: float | None, policy: str, is_image: bool = False) -> int:
    """Frames in the output (without a dub, `dub_seconds` None: the video's own)."""
    n_video, policy = _rule(n_video, policy, is_image)
    if dub_seconds is None:
        return n_video
    n_dub = max(1, int(round(dub_seconds * fps)))
    return {"cut": min(n_video, n_dub), "pad": max(n_video, n_dub)}.get(policy, n_dub)


def source_of(k, n_video: int, policy: str, is_image: bool = False):
    """Source frame of output frame(s) `k`: an int for an int, an array for an array."""
    n_video, policy = _rule(n_video, policy, is_image)
    if policy == "loop":
        index = k % n_video
    elif policy == "bounce":
        period = max(1, 2 * n_video - 2)
        phase = k % period
        index = np.where(phase < n_video, phase, period - phase)
    else:
        index = np.minimum(k, n_video - 1)
    return int(index) if np.ndim(k) == 0 else index


def plan_frames(n_video: int, fps: float, dub_seconds: float, policy: str, is_image: bool = False):
    """(source frame per output frame, whether that output frame has the dub under it)."""
    k = np.arange(output_count(n_video, fps, dub_seconds, policy, is_image))
    n_dub = max(1, int(round(dub_seconds * fps)))
    return np.asarray(source_of(k, n_video, policy, is_image), dtype=np.int64), k < n_dub


def conform(timestamps, fps: float, count: int) -> np.ndarray:
    """Source frame for each of `count` frames at a constant `fps`, from the source's own clock.

    Frame k of the constant-rate timeline takes the source frame whose timestamp is nearest
    to k / fps (the earlier one on a tie), so none is more than half a source frame off the
    source's clock: frames repeat where the source runs slower and drop where it runs faster.
    `timestamps` are the source frames' seconds, sorted, from 0.
    """
    timestamps = np.asarray(timestamps, dtype=np.float64)
    times = np.arange(count) / float(fps)
    after = np.minimum(np.searchsorted(timestamps, times, side="left"), len(timestamps) - 1)
    before = np.maximum(after - 1, 0)
    # 1 µs: a tie computed in floating point must still go to the earlier frame
    nearer_before = np.abs(times - timestamps[before]) <= np.abs(timestamps[after] - times) + 1e-6
    return np.where(nearer_before, before, after).astype(np.int64)
