"""Cold face detection: every frame against every second frame (core.faces.detections.DETECT_EVERY).

    python -m bench.bench_detection [--clips PATH ...] [--seconds 20] [--workdir /tmp/lipsmith-bench]

For each clip (default: bench_render's 720p25 clip and the six held-out talks of the README), in one
run: RetinaFace on every frame, then on every second frame with the frames between interpolated
where their neighbours' faces pair up; frames/s and the real-time factor of each, and how far the
chosen face's box moves between the two, as a share of the face's height (the largest corner
displacement): raw (per frame, before smoothing) and smoothed (the track the renderer crops with).
Beside it, how far smoothing itself moves the every-frame boxes: the tolerance the interpolation
must stay inside.
"""
import argparse
import time
from pathlib import Path

import numpy as np

from core.threads import let_idle_torch_threads_sleep

let_idle_torch_threads_sleep()  # as the product's commands do

import core.faces.detections as detections  # noqa: E402
from core.faces import build_track, get_detector  # noqa: E402
from core.video import VideoSource  # noqa: E402
from tests.conftest import DATA  # noqa: E402

TALKS = ["talks/dfrf_french.mp4", "talks/dfrf_cnn2_25fps.mp4", "talks/styletalk_styletalk_KristiNoem_muxed.mp4",
         "talks/styletalk_styletalk_reagan_clip1_muxed.mp4", "talks/styletalk_styletalk_andrew_clip_1_muxed.mp4",
         "talks/styletalk_styletalk_feifeili_clip2_short_muxed.mp4"]


class FirstFrames:
    """The first `count` frames of a VideoSource, as detect_video reads a source."""

    def __init__(self, video: VideoSource, count: int):
        self.video, self.path = video, None  # no path: nothing is cached
        self.frame_count = min(count, video.frame_count)
        self.width, self.height = video.width, video.height

    def frames(self, start=0, stop=None, size=None):
        return self.video.frames(start, self.frame_count if stop is None else min(stop, self.frame_count), size=size)


def detect(source, every: int):
    detections.DETECT_EVERY = every
    started = time.perf_counter()
    dets = detections.detect_video(source, get_detector("retinaface"), use_cache=False)
    return dets, time.perf_counter() - started


def displacement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Largest corner displacement between boxes (N, 4), as a share of a's height."""
    corners = np.abs(a - b).max(axis=1)
    return corners / np.maximum(a[:, 3] - a[:, 1], 1.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", nargs="+", help="videos (default: the 720p bench clip and six talks)")
    parser.add_argument("--seconds", type=float, default=20.0, help="frames from each clip's start")
    parser.add_argument("--workdir", default="/tmp/lipsmith-bench", help="where bench_render made its 720p clip")
    args = parser.parse_args()
    if args.clips:
        clips = [Path(c) for c in args.clips]
    else:
        from bench.bench_render import make_inputs

        clips = [make_inputs(Path(args.workdir), 20)[0], *[DATA / t for t in TALKS]]

    print(f"{'clip':<44} {'size':>9} {'every frame':>17} {'every 2nd':>17}   box moved, raw: mean / p99 / max"
          f"   smoothed: mean / p99 / max   smoothing itself: mean / p99")
    totals = np.zeros(3)
    for clip in clips:
        with VideoSource(clip) as video:
            source = FirstFrames(video, int(args.seconds * video.fps))
            full, t_full = detect(source, 1)
            sparse, t_sparse = detect(source, 2)
            n = source.frame_count
            totals += (n, t_full, t_sparse)
            track_full, track_sparse = build_track(full), build_track(sparse)
            both = track_full.has_face & track_sparse.has_face
            raw = displacement(track_full.raw_boxes[both], track_sparse.raw_boxes[both])
            smooth = displacement(track_full.boxes[both], track_sparse.boxes[both])
            smoothing = displacement(track_full.raw_boxes[both], track_full.boxes[both])
            rate = lambda seconds: f"{n / seconds:5.1f} fps {n / seconds / video.fps:4.2f}x"
            print(f"{clip.name[:44]:<44} {video.width:>4}x{video.height:<4} {rate(t_full):>17} {rate(t_sparse):>17}"
                  f"   {raw.mean():.4f} / {np.percentile(raw, 99):.4f} / {raw.max():.4f}"
                  f"   {smooth.mean():.4f} / {np.percentile(smooth, 99):.4f} / {smooth.max():.4f}"
                  f"   {smoothing.mean():.4f} / {np.percentile(smoothing, 99):.4f}"
                  f"   (faces in {int(both.sum())} of {n} frames both ways"
                  f"{'' if (track_full.has_face == track_sparse.has_face).all() else '; differ in some'})", flush=True)
    n, t_full, t_sparse = totals
    print(f"all clips: every frame {n / t_full:.1f} frames/s, every second frame {n / t_sparse:.1f} frames/s "
          f"({t_full / t_sparse:.2f}x faster)")


if __name__ == "__main__":
    main()
