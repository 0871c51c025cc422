"""The actor's mouth beside the generated one, on the same clips, dubs and judges.

    python main.py compare-mouths --videos A.mp4 B.mp4 --dubs X.wav Y.wav --seconds 20 --out cmp/ \
        [--aperture-python MEDIAPIPE_PY]

Each video is rendered with every mouth mode against a foreign dub (paired in order; the first
`--seconds` of it), and judged on what each mode is for:
  sharpness  Laplacian variance in the mouth box, render ÷ source, median over frames (the box
             from the source frame's face track, so a render cannot move it)
  change     mean absolute frame-to-frame change in the mouth box during the dub's speech,
             render ÷ source (a real mouth moves this much; far above it flickers, far below it
             freezes)
  colour     distance between the mouth box's mean CIELAB (a*, b*) in render and source, mean over frames
  seam       mean |gradient| on the blend mask's feathered edge ÷ inside the mask (core.qc's seam
             strength), beside the same on the source (a visible seam raises the render's)
  LSE-C      our expert's confidence against the dub
and with --aperture-python, by MediaPipe's lip aperture (training/lip_shape.py):
  sync r     aperture against the dub's loudness (does the mouth follow the dub?)
  leak r     aperture against the *original* footage's aperture at the same source frame (does the
             original mouth come through? near 0 is right under a foreign dub)
  leak gain  the least-squares slope of that relation: how much of the original's opening reaches the
             output (1 copied, 0 none). r alone misleads: the less the output moves by itself, the
             larger the r of the same small leak (on six held-out talks the generated mouth scored
             r 0.28 under a near-silent dub and 0.23 under foreign speech, gains 0.07 and 0.10)
  closed     share of the dub's speech frames with the lips closed (gap under 15 % of its 95th
             percentile), beside the original speaker's own figure
  bilabial   with --espeak (the dub is eSpeak NG speaking sentences rich in p/b/m, every phone
             timed; training/articulation.py): the lip gap on p/b/m frames ÷ on open vowels
             (near 0: the lips close on bilabials; near 1: the mouth only follows loudness)
With --still-control each video also gets a mouth that never moves (`still_control`: the clip's first face
frame's lower face, carried along by the eyes and nose, pasted through the same mask): what the judges give
a mouth that carries nothing of the original speech, so their leak figures have a floor to be read against
(the original's jaw and chin around the mask move with its speech).
A sheet per clip shows the mouth at the dub's loudest and quietest speech frames (with --espeak:
in the middle of four p/b/m and four open vowels, left to right): the source frame above, then
one row per mode.
"""
import json
from pathlib import Path

import cv2
import numpy as np

from core.audio import frame_loudness, load_audio, melspectrogram
from core.blend import BlendSettings, paste_weight
from core.hparams import HP
from core.qc import seam_strength
from core.render import RenderOptions, Renderer, source_frames
from core.sync import load_scorer, score_video
from core.video import VideoSource
from training.evaluate import aperture_loudness_r, loudness_picks, measure_apertures

SPEECH_PERCENTILE = 40  # frames louder than this percentile of the dub count as its speech


def mouth_box(box) -> tuple:
    """Rows and columns of the mouth inside an int face crop box (the lower middle)."""
    x1, y1, x2, y2 = box
    h, w = y2 - y1, x2 - x1
    return slice(y1 + int(0.6 * h), y1 + int(0.9 * h)), slice(x1 + int(0.25 * w), x1 + int(0.75 * w))


def grey(image) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)


def lip_colour(image) -> np.ndarray:
    """Mean (a*, b*) of a BGR image in CIELAB units (8-bit Lab keeps a* and b* unscaled, offset 128)."""
    return cv2.cvtColor(image, cv2.COLOR_BGR2LAB).reshape(-1, 3)[:, 1:].astype(np.float32).mean(axis=0)


def upper_face(landmarks) -> np.ndarray:
    """(3, 2) the eyes' and the nose's points of a 5-point (RetinaFace) or 68-point (iBUG) set: they
    move with the head, not with the jaw."""
    lm = np.asarray(landmarks, np.float32)
    if len(lm) == 68:
        return np.stack([lm[36:42].mean(axis=0), lm[42:48].mean(axis=0), lm[30]])
    return lm[:3]


def still_control(video_path, track, source_index, fps, path, pads=HP.pads, blend=BlendSettings()) -> int:
    """Write to `path` the output frames `source_index` with the first face frame's lower face carried
    into each by the similarity that maps its eyes and nose onto that frame's, pasted through the
    render's mask: a mouth that never moves. Returns the frames with a face."""
    from core.video import VideoWriter

    faced = [i for i in source_index if track.crop_box(int(i), pads) is not None
             and track.landmarks_at(int(i)) is not None]
    if not faced:
        raise ValueError(f"{video_path}: no face with landmarks in the compared frames")
    with VideoSource(video_path) as source:
        still, anchor = source.read(int(faced[0])), upper_face(track.landmarks_at(int(faced[0])))
        height, width = still.shape[:2]
        with VideoWriter(path, width, height, fps, crf=12, preset="veryfast") as writer:
            for i, frame in zip(source_index, source_frames(source, source_index)):
                box, landmarks = track.crop_box(int(i), pads), track.landmarks_at(int(i))
                if box is not None and landmarks is not None:
                    move, _ = cv2.estimateAffinePartial2D(anchor, upper_face(landmarks))
                    x1, y1, x2, y2 = box
                    moved = cv2.warpAffine(still, move, (width, height), flags=cv2.INTER_LINEAR,
                                           borderMode=cv2.BORDER_REFLECT)[y1:y2, x1:x2].astype(np.float32)
                    weight = paste_weight(box, landmarks, (HP.img_size, HP.img_size), blend)[..., None]
                    crop = frame[y1:y2, x1:x2]
                    crop[:] = np.clip(crop + weight * (moved - crop) + 0.5, 0, 255).astype(np.uint8)
                writer.write(frame)
    return len(faced)


def picture_measures(source_path, output_path, track, source_index, speech, pads=HP.pads,
                     blend=BlendSettings()) -> dict:
    """Against the source, in the mouth box (from the source's face track): sharpness, frame-to-frame
    change, colour shift; and the blend seam's strength (gradient on the mask's edge ÷ inside)."""
    ratios, change_out, change_src, colour, seams, previous = [], [], [], [], [], None
    with VideoSource(source_path) as source, VideoSource(output_path) as output:
        for (k, frame), original in zip(output.frames(0, len(source_index)), source_frames(source, source_index)):
            i = int(source_index[k])
            box = track.crop_box(i)
            if box is None:
                previous = None
                continue
            rows, cols = mouth_box(box)
            out, src = grey(frame[rows, cols]), grey(original[rows, cols])
            src_var = cv2.Laplacian(src, cv2.CV_32F).var()
            if src_var > 0:
                ratios.append(cv2.Laplacian(out, cv2.CV_32F).var() / src_var)
            if previous is not None and previous[0].shape == out.shape and speech[k]:
                change_out.append(np.abs(out - previous[0]).mean())
                change_src.append(np.abs(src - previous[1]).mean())
            previous = (out, src)
            colour.append(float(np.linalg.norm(lip_colour(frame[rows, cols]) - lip_colour(original[rows, cols]))))
            crop = track.crop_box(i, pads)
            weight = paste_weight(crop, track.landmarks_at(i), (HP.img_size, HP.img_size), blend)
            pasted, kept = seam_strength(frame, crop, weight) or (np.nan, np.nan), seam_strength(original, crop, weight)
            if kept is not None:
                seams.append((pasted[0] / max(pasted[1], 1e-6), kept[0] / max(kept[1], 1e-6)))
    seams = np.asarray(seams, np.float64).reshape(-1, 2)
    return {"sharpness": float(np.median(ratios)) if ratios else float("nan"),
            "change": float(np.mean(change_out) / max(np.mean(change_src), 1e-6)) if change_src else float("nan"),
            "colour": float(np.mean(colour)) if colour else float("nan"),
            "seam": float(np.nanmean(seams[:, 0])) if len(seams) else float("nan"),
            "source_seam": float(np.mean(seams[:, 1])) if len(seams) else float("nan")}


def correlation(a, b) -> float:
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 10 or np.std(a[keep]) == 0 or np.std(b[keep]) == 0:
        return float("nan")
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def leak_gain(output, original) -> float:
    """Least-squares slope of `output` on `original` over the frames where both are known (NaN with
    fewer than 10 or a constant original)."""
    keep = np.isfinite(output) & np.isfinite(original)
    if keep.sum() < 10 or np.ptp(original[keep]) == 0:
        return float("nan")
    o = original[keep] - original[keep].mean()
    return float(np.dot(output[keep] - output[keep].mean(), o) / np.dot(o, o))


def closed_share(aperture, speech) -> float:
    """Share of speech frames whose lip gap is under 15 % of its 95th percentile."""
    gaps = aperture[speech[: len(aperture)] & np.isfinite(aperture)]
    return float((gaps < 0.15 * np.percentile(gaps, 95)).mean()) if len(gaps) else float("nan")


def sheet(source_path, outputs, track, source_index, picks, path):
    """Mouths at the output frames `picks`: the source above, one row per output."""
    if not len(picks):
        return
    rows = []
    for path_, is_source in [(source_path, True)] + [(o, False) for o in outputs]:
        with VideoSource(path_) as video:
            tiles = []
            for k in picks:
                box = track.crop_box(int(source_index[k]))
                if box is None:
                    continue
                x1, y1, x2, y2 = box
                frame = video.read(int(source_index[k]) if is_source else k)
                tiles.append(cv2.resize(frame[y1 + (y2 - y1) // 2:y2, x1:x2], (256, 128), interpolation=cv2.INTER_AREA))
            if tiles:
                rows.append(np.hstack(tiles))
    if rows and all(r.shape == rows[0].shape for r in rows):
        cv2.imwrite(str(path), np.vstack(rows))


def compare(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scorer = load_scorer(args.expert)
    dubs, phones = args.dubs or [args.videos[0]], None
    if args.espeak:
        from training.articulation import bilabial_dub, phone_picks

        dubs = [out / "bilabial.wav"]
        phones = bilabial_dub(dubs[0])
    results, generator = [], None
    for n, video in enumerate(args.videos):
        video, dub = Path(video), Path(dubs[n % len(dubs)])
        mel = melspectrogram(load_audio(dub))
        rendered = {}
        for mode in args.modes:
            options = RenderOptions(checkpoint=args.generator, cache_dir=args.cache_dir, mouth=mode)
            if args.seconds:
                with VideoSource(video) as probe:
                    options.end_frame = int(args.seconds * probe.fps)
            renderer = Renderer(video, dub, options, generator=generator)
            generator = renderer.generator
            path = out / f"{video.stem}.{mode}.mp4"
            report = renderer.render_to(path)
            source_index = np.asarray(renderer.source[renderer.range.start:renderer.range.stop])
            loudness = frame_loudness(mel, renderer.fps, len(source_index))
            speech = loudness > np.percentile(loudness, SPEECH_PERCENTILE)
            row = {"video": str(video), "dub": str(dub), "mode": mode, "frames": report.frames,
                   "fallback_frames": len(report.generated_mouth_frames), "closed_frames": report.closed_frames,
                   "seconds": report.seconds,
                   "lse_c": score_video(path, dub, scorer=scorer, track=renderer.track, frame_map=source_index).lse_c,
                   **picture_measures(video, path, renderer.track, source_index, speech, options.pads, options.blend)}
            rendered[mode] = (path, row, source_index, loudness, speech, renderer)
            results.append(row)
            print_picture(row, f"{report.fps:.1f} frames/s")
        path, row, source_index, loudness, speech, renderer = next(iter(rendered.values()))
        if args.still_control:
            path = out / f"{video.stem}.still.mp4"
            faced = still_control(video, renderer.track, source_index, renderer.fps, path, options.pads, options.blend)
            results.append({"video": str(video), "dub": str(dub), "mode": "still", "frames": len(source_index),
                            "fallback_frames": len(source_index) - faced, "seconds": 0.0,
                            "lse_c": score_video(path, dub, scorer=scorer, track=renderer.track,
                                                 frame_map=source_index).lse_c,
                            **picture_measures(video, path, renderer.track, source_index, speech, options.pads,
                                               options.blend)})
            print_picture(results[-1], "a mouth that never moves")
        picks = phone_picks(phones, renderer.fps, len(source_index)) if phones else loudness_picks(loudness, speech)
        sheet(video, [v[0] for v in rendered.values()], renderer.track, source_index, picks, out / f"{video.stem}.png")
    if args.aperture_python:
        judge_apertures(args.aperture_python, results, out, phones)
    summary = {"modes": {}, "results": results}
    for mode in [*args.modes, *(["still"] if args.still_control else [])]:
        rows = [r for r in results if r["mode"] == mode]
        keys = [k for k in ("sharpness", "change", "colour", "seam", "source_seam", "lse_c", "sync_r", "leak_r",
                            "leak_gain", "closed", "own_closed", "bilabial") if k in rows[0]]
        summary["modes"][mode] = {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
        print(f"MEAN {mode:<9} " + "  ".join(f"{k} {v:.4f}" for k, v in summary["modes"][mode].items()))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0


def print_picture(row: dict, note: str):
    print(f"{Path(row['video']).stem:<40} {row['mode']:<9} sharpness {row['sharpness']:.2f}  "
          f"change {row['change']:.2f}  colour {row['colour']:.2f}  "
          f"seam {row['seam']:.2f} (source {row['source_seam']:.2f})  LSE-C {row['lse_c']:.4f}  "
          f"fallbacks {row['fallback_frames']}  {note}", flush=True)


def judge_apertures(python: str, results: list, out: Path, phones=None):
    """Add MediaPipe's sync r, leak r and gain and closed share (and with `phones`, the bilabial ratio) to
    each result row."""
    sources = sorted({r["video"] for r in results})
    apertures = measure_apertures(python, sources + [str(out / f"{Path(r['video']).stem}.{r['mode']}.mp4")
                                                    for r in results])
    by_source = dict(zip(sources, apertures))
    for row, aperture in zip(results, apertures[len(sources):]):
        with VideoSource(row["video"]) as video:
            fps = video.fps
            source_index = video.picture_source(np.arange(row["frames"]))
        original = by_source[row["video"]]
        dub_loud = frame_loudness(melspectrogram(load_audio(row["dub"])), fps, row["frames"])
        own_loud = frame_loudness(melspectrogram(load_audio(row["video"])), fps, len(original))
        speech = dub_loud > np.percentile(dub_loud, SPEECH_PERCENTILE)
        aperture = aperture[: row["frames"]]
        original_here = original[np.minimum(source_index, len(original) - 1)][: len(aperture)]
        row.update(sync_r=aperture_loudness_r(aperture, dub_loud),
                   leak_r=correlation(aperture, original_here), leak_gain=leak_gain(aperture, original_here),
                   closed=closed_share(aperture, speech),
                   own_closed=closed_share(original, own_loud > np.percentile(own_loud, SPEECH_PERCENTILE)))
        if phones is not None:
            from training.articulation import bilabial_ratio

            row["bilabial"] = bilabial_ratio(aperture, phones, fps)
        print(f"{Path(row['video']).stem:<40} {row['mode']:<9} sync r {row['sync_r']:+.2f}  "
              f"leak r {row['leak_r']:+.2f}  leak gain {row['leak_gain']:+.2f}  "
              f"closed {row['closed']:.2f} (the speaker's own {row['own_closed']:.2f})"
              + (f"  bilabial {row['bilabial']:.2f}" if "bilabial" in row else ""))
