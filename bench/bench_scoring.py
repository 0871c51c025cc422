"""Scoring speed (DESIGN §11): LSE-D / LSE-C of a whole clip, with cached face detection.

    python -m bench.bench_scoring [--clip PATH] [--dub PATH] [--width 0.25] [--expert PATH]
                                  [--official syncnet_v2.model] [--seconds S] [--device cpu]

Detects faces once (cached in --cache-dir, so a second run skips it), then scores the clip
against its own audio (or --dub) with each scorer, reusing the track:

* our expert: random weights at --width (the bundled width by default; speed does not depend
  on the weights), or a trained one with --expert;
* the official SyncNet v2, when --official points at syncnet_v2.model (224 px crops, 3D convs:
  much slower on a CPU).

For each it prints frames/s of the whole scoring pass (decode, crop, embed, protocol), the
real-time factor (25-fps frames per second ÷ 25) and where the time went. The default clip
is ../shared/data/news/German_20s.mp4 (512×512, 20 s).
"""
import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from core.faces import track_video
from core.models.syncnet import SyncNet, SyncNetDims
from core.sync import SCORE_FPS, ExpertScorer, load_scorer, score_video
from core.video import VideoSource

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "news" / "German_20s.mp4"


class StageTimes:
    """Wraps a scorer's methods to add up the wall time spent in each."""

    STAGES = ("audio_features", "audio_embeddings", "crop", "face_embeddings")

    def __init__(self, scorer):
        self.seconds = defaultdict(float)
        for name in self.STAGES:
            setattr(scorer, name, self._timed(name, getattr(scorer, name)))

    def _timed(self, name, fn):
        def run(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t
        return run


def trim(clip: Path, seconds: float, workdir: Path) -> Path:
    from tests.conftest import ffmpeg

    out = workdir / f"{clip.stem}_{seconds:g}s.mp4"
    if not out.is_file():
        ffmpeg("-i", clip, "-t", seconds, "-c:v", "libx264", "-preset", "fast", "-crf", "18", "-c:a", "aac", out)
    return out


def bench(scorer, clip, dub, track) -> dict:
    stages = StageTimes(scorer)
    t = time.perf_counter()
    scores = score_video(clip, dub, scorer=scorer, track=track)
    wall = time.perf_counter() - t
    frames = len(scores.frame_conf)
    return {"scores": scores, "wall": wall, "frames": frames, "fps": frames / wall,
            "rtf": frames / SCORE_FPS / wall, "stages": dict(stages.seconds)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--dub", type=Path, help="audio to score against (default: the clip's own)")
    parser.add_argument("--width", type=float, default=0.25, help="random expert's width (default 0.25)")
    parser.add_argument("--expert", help="a trained expert instead of random weights")
    parser.add_argument("--official", help="syncnet_v2.model, to time the official SyncNet too")
    parser.add_argument("--seconds", type=float, help="score only the first S seconds of the clip")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/lipsmith-bench"))
    args = parser.parse_args()

    if not args.clip.is_file():
        sys.exit(f"no clip at {args.clip} (../shared/data is absent?): give one with --clip PATH")
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    clip = trim(args.clip, args.seconds, args.cache_dir) if args.seconds else args.clip
    print(f"clip {clip} | torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device} | "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)

    with VideoSource(clip) as video:
        t = time.perf_counter()
        track = track_video(video, cache_dir=args.cache_dir)
        detect = time.perf_counter() - t
        print(f"face detection (cached after the first run): {detect:.1f} s for {video.frame_count} frames, "
              f"{int(track.has_face.sum())} with a face", flush=True)

    scorers = []
    if args.expert:
        scorers.append(load_scorer(args.expert, args.device))
    else:
        torch.manual_seed(0)
        scorers.append(ExpertScorer(SyncNet(SyncNetDims(width=args.width)), f"lipsmith-expert:random-w{args.width:g}",
                                    args.device))
    if args.official:
        scorers.append(load_scorer(args.official, args.device))

    for scorer in scorers:
        r = bench(scorer, clip, args.dub, track)
        s = r["scores"]
        stages = "  ".join(f"{k} {v:.2f} s" for k, v in r["stages"].items())
        print(f"{s.scorer}: {r['frames']} frames in {r['wall']:.2f} s = {r['fps']:.1f} frames/s = "
              f"{r['rtf']:.2f}x real time  (LSE-D {s.lse_d:.3f}, LSE-C {s.lse_c:.3f}, {s.windows} windows)\n"
              f"    {stages}  (rest: decode, track, protocol)", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
