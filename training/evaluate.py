"""Does the mouth follow a new voice on faces the model never saw? Measure it.

    python main.py evaluate --data PREPARED --generator G.safetensors --expert E.safetensors --out eval/

For each validation clip (held-out speakers), a foreign speech track is chosen; we score
with the expert (LSE-C higher / LSE-D lower is better):
  own      the clip with its own audio (the in-sync ceiling)
  unsynced the original frames against the foreign track (what the editor starts from)
  rendered our generator's output against the foreign track
and save, per clip, a sheet of face crops at the dub's loudest frames (open vowels) and
quietest speech frames (closures), original above rendered, to look at.
"""
import json
from pathlib import Path

import cv2
import numpy as np

from core.audio import load_audio, melspectrogram
from core.render import RenderOptions, Renderer
from core.sync import load_scorer, score_video
from core.video import VideoSource

DEFAULT_DUBS = Path(__file__).resolve().parents[2] / "shared" / "data" / "dubs"


def contact_sheet(original_path, rendered_path, track, source_index, dub_mel, fps, path, n=4):
    """Face crops at the n loudest and n quietest voiced frames: original row above rendered row."""
    energy = dub_mel.mean(axis=0)
    with VideoSource(rendered_path) as rendered:
        frames = rendered.frame_count
    per_frame = np.array([energy[min(int(80 * k / fps), len(energy) - 1)] for k in range(frames)])
    voiced = np.flatnonzero(per_frame > np.percentile(per_frame, 40))
    order = voiced[np.argsort(per_frame[voiced])]
    picks = list(order[-n:][::-1]) + list(order[:n])
    rows = [[], []]
    with VideoSource(original_path) as original, VideoSource(rendered_path) as rendered:
        for k in picks:
            box = track.crop_box(int(source_index[k]))
            if box is None:
                continue
            x1, y1, x2, y2 = box
            for row, video, index in ((0, original, int(source_index[k])), (1, rendered, int(k))):
                rows[row].append(cv2.resize(video.read(index)[y1:y2, x1:x2], (160, 160)))
    if rows[0]:
        cv2.imwrite(str(path), np.vstack([np.hstack(rows[0]), np.hstack(rows[1])]))


def evaluate(args) -> int:
    data = Path(args.data)
    manifest = json.loads((data / "manifest.json").read_text())["clips"]
    clips = [line.strip() for line in (data / "filelists" / "val.txt").read_text().splitlines() if line.strip()]
    dubs = sorted(p for p in Path(args.dubs).iterdir() if p.suffix in (".wav", ".mov", ".mp3", ".flac"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scorer = load_scorer(args.expert)
    results = []
    for n, key in enumerate(clips[: args.max_clips or None]):
        source = manifest[key]["source"]
        dub = dubs[n % len(dubs)]
        name = key.replace("/", "__")
        renderer = Renderer(source, dub, RenderOptions(checkpoint=args.generator, cache_dir=args.cache_dir))
        rendered = out / f"{name}.mp4"
        renderer.render_to(rendered)
        own = score_video(source, scorer=scorer, track=renderer.track)
        unsynced = score_video(source, dub, scorer=scorer, track=renderer.track)
        after = score_video(rendered, dub, scorer=scorer, track=renderer.track, frame_map=renderer.source)
        contact_sheet(source, rendered, renderer.track, renderer.source, melspectrogram(load_audio(dub)),
                      renderer.fps, out / f"{name}.png")
        row = {"clip": key, "dub": dub.name, "own": own.to_dict(), "unsynced": unsynced.to_dict(),
               "rendered": after.to_dict()}
        results.append(row)
        print(f"{key:<42} own LSE-C {own.lse_c:5.2f}  unsynced {unsynced.lse_c:5.2f}  rendered {after.lse_c:5.2f}"
              f"   (LSE-D {own.lse_d:5.2f} / {unsynced.lse_d:5.2f} / {after.lse_d:5.2f})", flush=True)
    better = sum(r["rendered"]["lse_c"] > r["unsynced"]["lse_c"] for r in results)
    summary = {
        "clips": len(results), "rendered_beats_unsynced": better,
        "mean": {k: {m: float(np.nanmean([r[k][m] for r in results])) for m in ("lse_c", "lse_d")}
                 for k in ("own", "unsynced", "rendered")},
        "generator": str(args.generator), "expert": str(args.expert), "results": results}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    means = summary["mean"]
    print(f"\nmean LSE-C  own {means['own']['lse_c']:.2f}  unsynced {means['unsynced']['lse_c']:.2f}  "
          f"rendered {means['rendered']['lse_c']:.2f};  rendered > unsynced on {better}/{len(results)} clips")
    return 0


def add_args(p):
    p.add_argument("--data", required=True, help="prepared dataset (its val filelist and manifest)")
    p.add_argument("--generator", default="generator")
    p.add_argument("--expert", default="expert")
    p.add_argument("--dubs", default=str(DEFAULT_DUBS), help="folder of foreign speech tracks")
    p.add_argument("--out", required=True)
    p.add_argument("--max-clips", type=int, default=0)
    p.add_argument("--cache-dir")


def add_parser(sub):
    p = sub.add_parser("evaluate", help="held-out lip-sync: own vs unsynced vs rendered LSE, with face sheets")
    add_args(p)
    p.set_defaults(run=evaluate)
