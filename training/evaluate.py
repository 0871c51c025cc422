"""Does the mouth follow a new voice on faces the model never saw? Measure it.

    python main.py evaluate --data PREPARED --generator G.safetensors --expert E.safetensors --out eval/

For each validation clip (held-out speakers), a foreign speech track is chosen; we score
with the expert (LSE-C higher / LSE-D lower is better):
  own      the clip with its own audio (the in-sync ceiling)
  unsynced the original frames against the foreign track (what the editor starts from)
  rendered our generator's output against the foreign track
and save, per clip, a sheet of face crops at the dub's loudest frames (open vowels) and
quietest speech frames (closures), original above rendered, to look at. With --adapt-minutes
the generator is first adapted to each clip's speaker on its own footage (what an editor does
with Render ▸ Adapt to Speaker), so speaker adaptation is measured on held-out speakers too.

The generator was trained to please that same expert, so its LSE-C may flatter it. With
`--aperture-python PY` (an interpreter with MediaPipe, see training/lip_shape.py) the three
are also judged by something that owes nothing to our models: the correlation between the lip
aperture that MediaPipe Face Mesh measures in each frame and the loudness of the audio heard
with it (a mouth that follows speech opens on loud frames and closes on quiet ones).
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from core.audio import frame_loudness, load_audio, melspectrogram
from core.render import RenderOptions, Renderer
from core.sync import load_scorer, score_video
from core.video import VideoSource
from training.adapt import adapt


def aperture_loudness_r(aperture: np.ndarray, loudness: np.ndarray) -> float:
    """Pearson r between per-frame lip aperture and loudness over the frames with a face mesh
    (NaN if fewer than 10, or either is constant)."""
    n = min(len(aperture), len(loudness))
    aperture, loudness = aperture[:n], loudness[:n]
    keep = np.isfinite(aperture)
    if keep.sum() < 10 or np.std(aperture[keep]) == 0 or np.std(loudness[keep]) == 0:
        return float("nan")
    return float(np.corrcoef(aperture[keep], loudness[keep])[0, 1])


def measure_apertures(python: str, videos: list) -> list:
    """Per-frame lip apertures of each video, measured by training/lip_shape.py under `python`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "apertures.npz"
        subprocess.run([python, "-m", "training.lip_shape", "--videos", *map(str, videos), "-o", str(out)],
                       check=True, cwd=Path(__file__).resolve().parents[1], stdout=sys.stderr)
        with np.load(out) as found:
            return [found[str(n)][:, 0] for n in range(len(videos))]  # COLUMNS[0]: aperture


def loudness_picks(loudness, speech, n=4) -> list:
    """Output frames: the n loudest and the n quietest of the dub's speech."""
    voiced = np.flatnonzero(speech)
    order = voiced[np.argsort(loudness[voiced])]
    return [int(k) for k in list(order[-n:][::-1]) + list(order[:n])]


def contact_sheet(original_path, rendered_path, track, source_index, dub_mel, fps, path, n=4):
    """Face crops at the n loudest and n quietest voiced frames: original row above rendered row."""
    with VideoSource(rendered_path) as rendered:
        frames = rendered.frame_count
    per_frame = frame_loudness(dub_mel, fps, frames)
    picks = loudness_picks(per_frame, per_frame > np.percentile(per_frame, 40), n)
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
    results, heard = [], []  # heard: what the aperture judge needs of each clip
    unknown = set(args.clips or ()) - set(clips)
    if unknown:
        raise SystemExit(f"evaluate: not validation clips of {data}: {', '.join(sorted(unknown))}")
    chosen = [key for key in clips if not args.clips or key in args.clips][: args.max_clips or None]
    for key in chosen:
        source = manifest[key]["source"]
        dub = dubs[clips.index(key) % len(dubs)]  # each clip keeps its dub whichever clips are chosen
        name = key.replace("/", "__")
        generator = args.generator
        if args.adapt_minutes:  # speaker adaptation on the clip's own footage first, as an editor would
            generator = out / f"{name}.adapted.safetensors"
            adapt(source, output=generator, base=args.generator, expert=args.expert, minutes=args.adapt_minutes,
                  cache_dir=args.cache_dir, expert_minutes=args.adapt_expert_minutes)
        renderer = Renderer(source, dub, RenderOptions(checkpoint=str(generator), cache_dir=args.cache_dir))
        rendered = out / f"{name}.mp4"
        renderer.render_to(rendered)
        own = score_video(source, scorer=scorer, track=renderer.track)
        unsynced = score_video(source, dub, scorer=scorer, track=renderer.track)
        after = score_video(rendered, dub, scorer=scorer, track=renderer.track, frame_map=renderer.source)
        dub_mel = melspectrogram(load_audio(dub))
        contact_sheet(source, rendered, renderer.track, renderer.source, dub_mel, renderer.fps, out / f"{name}.png")
        row = {"clip": key, "dub": dub.name, "own": own.to_dict(), "unsynced": unsynced.to_dict(),
               "rendered": after.to_dict()}
        results.append(row)
        if args.aperture_python:  # the judge alone needs the clip's own audio decoded again
            heard.append((source, rendered, np.asarray(renderer.source), melspectrogram(load_audio(source)), dub_mel,
                          renderer.fps))
        print(f"{key:<42} own LSE-C {own.lse_c:.4f}  unsynced {unsynced.lse_c:.4f}  rendered {after.lse_c:.4f}"
              f"   (LSE-D {own.lse_d:.3f} / {unsynced.lse_d:.3f} / {after.lse_d:.3f})", flush=True)
    better = sum(r["rendered"]["lse_c"] > r["unsynced"]["lse_c"] for r in results)
    summary = {
        "clips": len(results), "rendered_beats_unsynced": better,
        "mean": {k: {m: float(np.nanmean([r[k][m] for r in results])) for m in ("lse_c", "lse_d")}
                 for k in ("own", "unsynced", "rendered")},
        "generator": str(args.generator), "adapt_minutes": args.adapt_minutes,
        "adapt_expert_minutes": args.adapt_expert_minutes, "expert": str(args.expert),
        "results": results}
    means = summary["mean"]
    print(f"\nmean LSE-C  own {means['own']['lse_c']:.4f}  unsynced {means['unsynced']['lse_c']:.4f}  "
          f"rendered {means['rendered']['lse_c']:.4f};  rendered > unsynced on {better}/{len(results)} clips")
    if args.aperture_python:
        summary["aperture_r"] = aperture_judge(args.aperture_python, results, heard)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0


def aperture_judge(python: str, results: list, heard: list) -> dict:
    """MediaPipe's lip aperture against loudness, per clip (own audio / the dub under the original
    frames / the dub under the rendered frames), added to each result row; returns the means."""
    videos = [v for source, rendered, *_ in heard for v in (source, rendered)]
    apertures = measure_apertures(python, videos)
    for n, (row, (_, _, source_index, own_mel, dub_mel, fps)) in enumerate(zip(results, heard)):
        source_ap, rendered_ap = apertures[2 * n], apertures[2 * n + 1]
        dub_loud = frame_loudness(dub_mel, fps, len(source_index))
        unsynced_ap = source_ap[np.minimum(source_index, len(source_ap) - 1)]
        row["aperture_r"] = {"own": aperture_loudness_r(source_ap, frame_loudness(own_mel, fps, len(source_ap))),
                             "unsynced": aperture_loudness_r(unsynced_ap, dub_loud),
                             "rendered": aperture_loudness_r(rendered_ap, dub_loud)}
        r = row["aperture_r"]
        print(f"{row['clip']:<42} aperture-loudness r  own {r['own']:+.2f}  unsynced {r['unsynced']:+.2f}  "
              f"rendered {r['rendered']:+.2f}")
    means = {k: float(np.nanmean([row["aperture_r"][k] for row in results])) for k in ("own", "unsynced", "rendered")}
    better = sum(row["aperture_r"]["rendered"] > row["aperture_r"]["unsynced"] for row in results)
    print(f"\nmean aperture-loudness r  own {means['own']:+.3f}  unsynced {means['unsynced']:+.3f}  "
          f"rendered {means['rendered']:+.3f};  rendered > unsynced on {better}/{len(results)} clips")
    return {"mean": means, "rendered_beats_unsynced": better}
