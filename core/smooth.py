"""Temporal smoothing of a take's mouth: each frame's lower face becomes the mean of its neighbours'.

A generated mouth can flicker from frame to frame (each frame is generated on its own). Averaging
N consecutive frames steadies it; it is done only through the feathered lower-face mask the render
pasted the mouth through (core.blend), so the rest of the frame stays exactly as it was rendered.
The take is streamed with N frames in memory; the new file appears only when complete (VideoWriter
writes a temp file and renames it), and keeps the take's frame rate, frame count and audio.
"""
from collections import deque
from itertools import islice

import numpy as np

from core.blend import BlendSettings, paste_weight
from core.errors import Cancelled
from core.hparams import HP
from core.video import VideoSource, VideoWriter


def mouth_regions(track, sources, pads=HP.pads) -> list:
    """(crop box, landmarks) of each take frame, whose source frames are `sources`, as the renderer
    cut and pasted them; None where it found no face (that frame was left as it was)."""
    out = []
    for src in sources:
        box = track.crop_box(int(src), tuple(pads))
        out.append(None if box is None else (box, track.landmarks_at(int(src))))
    return out


def clamped_windows(frames, half: int):
    """(frame i, [frames i-half .. i+half]) for each frame, the first and last repeated past the
    edges; reads `half` frames ahead."""
    source = iter(frames)
    ahead = deque(islice(source, half + 1))  # frames i .. i+half
    behind = deque(maxlen=half)  # frames i-half .. i-1
    while ahead:
        centre = ahead[0]
        before, after = list(behind), list(ahead)[1:]
        before = [before[0] if before else centre] * (half - len(before)) + before
        after += [after[-1] if after else centre] * (half - len(after))
        yield centre, before + [centre] + after
        behind.append(ahead.popleft())
        following = next(source, None)
        if following is not None:
            ahead.append(following)


def smooth_frame(frame: np.ndarray, window: list, region, blend: BlendSettings) -> np.ndarray:
    """`frame` with its mouth region (box, landmarks) blended towards the window's mean through the
    paste mask; returned as is without a region."""
    if region is None:
        return frame
    box, landmarks = region
    x1, y1, x2, y2 = (int(v) for v in box)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return frame
    weight = paste_weight(box, landmarks, (HP.img_size, HP.img_size), blend)[..., None]
    mean = np.mean([f[y1:y2, x1:x2] for f in window], axis=0, dtype=np.float32)
    base = frame[y1:y2, x1:x2].astype(np.float32)
    out = frame.copy()
    out[y1:y2, x1:x2] = (base + weight * (mean - base) + 0.5).astype(np.uint8)
    return out


def smooth_video(take, output, regions: list, window: int = 5, blend: BlendSettings = BlendSettings(),
                 crf: int = 0, preset: str = "veryfast", progress=None, cancel=None) -> int:
    """Write `take` smoothed over `window` (odd) frames inside each frame's mouth region (`regions`,
    one per take frame: see mouth_regions) into `output`; returns the frames written. Nothing is
    left at `output` when it fails or `cancel()` turns true (core.errors.Cancelled)."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the smoothing window must be an odd number of frames, not {window}")
    progress = progress or (lambda done, total: None)
    cancel = cancel or (lambda: False)
    with VideoSource(take) as source:
        total = source.frame_count
        if len(regions) < total:
            raise ValueError(f"{len(regions)} mouth regions for the {total} frames of {take}")
        with VideoWriter(output, source.width, source.height, source.fps, audio_path=take if source.has_audio
                         else None, crf=crf, preset=preset, protect=(take,)) as writer:
            frames = (frame for _, frame in source.frames())
            for done, (frame, neighbours) in enumerate(clamped_windows(frames, window // 2)):
                if cancel():
                    raise Cancelled("smoothing cancelled")
                writer.write(smooth_frame(frame, neighbours, regions[done], blend))
                progress(done + 1, total)
        return writer.frame_count
