"""Measure each prepared clip's audio-video offset (data cleaning), with a trained expert or,
before there is one, from the lips' opening against the audio's loudness.

    python main.py offsets --data PREPARED --expert runs/expert/best.safetensors -o PREPARED/av_offsets.json
    python main.py offsets --data PREPARED --from-aperture     # needs PREPARED/lip_shape.npz

In-the-wild footage carries a few frames of AV offset (LRS2 itself was sync-corrected with
SyncNet before Wav2Lip was trained on it). Each clip is scored with the paper's protocol
(core.sync) against its own audio; the offset is kept where the expert is sure of it
(LSE-C >= --min-confidence) and small enough to be a recording offset rather than a
mistake (|offset| <= --max-offset); other clips are listed as unsure and left unshifted.
`train-expert --av-offsets FILE` (and the generator) then train on the corrected clips.

`--from-aperture` bootstraps the first expert: the mouth opens as the voice gets loud, so the
lag that maximises the correlation of the lip aperture (training/lip_shape.py, MediaPipe)
with the per-frame loudness is the clip's offset. It is kept where that correlation is
clearly better than at lag 0 (by --min-gain) and good in itself (>= --min-r), and the clip is
dropped from training where it is not ("drop" in the JSON); clips shorter than --min-frames
take their source folder's pooled offset (`measure_from_aperture`). Measured on our first
data, GRID clips come out at 0 and several in-the-wild clips at +2..+3 frames.
"""
import json
from pathlib import Path

import numpy as np

from core.atomic import atomic_write_text
from core.sync import load_scorer, score_crops
from training.datasets import frame_loudness, read_clip_frames, read_clip_mel, read_filelist, scan_clip, zscored
from training.lip_shape import read_lip_shapes


def measure(data: Path, expert, min_confidence: float, max_offset: int, filelists=("train", "val")) -> dict:
    scorer = load_scorer(expert)
    result = {"scorer": scorer.name, "min_confidence": min_confidence, "max_offset": max_offset,
              "offsets": {}, "unsure": {}, "confidence": {}}
    keys = [key for name in filelists for key in read_filelist(data, name)]
    for n, key in enumerate(keys, 1):
        clip = scan_clip(data, key)
        if clip is None or clip.frames < 2 * scorer.frames:
            continue
        frames = read_clip_frames(clip)
        scores = score_crops(scorer, frames, [True] * len(frames), read_clip_mel(clip))
        result["confidence"][key] = round(scores.lse_c, 3)
        sure = scores.lse_c >= min_confidence and abs(scores.offset_frames) <= max_offset
        (result["offsets"] if sure else result["unsure"])[key] = scores.offset_frames
        print(f"[{n}/{len(keys)}] {key}: offset {scores.offset_frames:+d} frames, LSE-C {scores.lse_c:.2f}"
              f"{'' if sure else '  (unsure: left unshifted)'}", flush=True)
    return result


def lagged_correlations(aperture: np.ndarray, loudness: np.ndarray, max_offset: int) -> np.ndarray:
    """r(aperture[i], loudness[i + k]) for k = -max_offset..max_offset (NaN where too few frames)."""
    out = np.full(2 * max_offset + 1, np.nan)
    for n, k in enumerate(range(-max_offset, max_offset + 1)):
        a = aperture[max(0, -k):len(aperture) - max(0, k)]
        b = loudness[max(0, k):len(loudness) - max(0, -k)]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() >= 20 and a[ok].std() > 0 and b[ok].std() > 0:
            out[n] = np.corrcoef(a[ok], b[ok])[0, 1]
    return out


NEAR = 1  # a lag this small is within the mel window's overlap (80 % at one frame): no reason to drop


def measure_from_aperture(data: Path, max_offset: int, min_r: float, min_gain: float,
                          filelists=("train", "val"), min_frames: int = 75) -> dict:
    """Offsets from the lips' opening against loudness.

    A clip of `min_frames` or more gets the lag of its own best correlation where that is good
    (>= min_r) and clearly better than lag 0 (by min_gain); lag 0 where lag 0 is best (and the
    correlation there positive), where lag 0 is good in itself (>= min_r: GRID's slow speech has
    flat curves) or where an unclear best lag is within `NEAR`; and is *dropped* otherwise (its
    lips and voice disagree about the timing: a voice-over, a wrong speaker, a bad recording). A shorter clip is too short to time alone (1.2 s gives ~26 frame
    pairs a lag, and noise picks a lag at random), so it takes its source folder's offset: the
    lag of the folder's pooled curve (each clip's curve weighted by its frames; one broadcaster's
    chain shares one offset), under the same rule, and is never dropped by this judge."""
    apertures = {key: rows[:, 0] for key, rows in read_lip_shapes(data).items()}  # COLUMNS[0]
    result = {"scorer": "aperture-loudness", "min_r": min_r, "min_gain": min_gain, "max_offset": max_offset,
              "min_frames": min_frames, "offsets": {}, "unsure": {}, "drop": [], "pooled": {}, "confidence": {}}
    curves = {}
    for name in filelists:
        for key in read_filelist(data, name):
            clip = scan_clip(data, key)
            if clip is None or key not in apertures or len(apertures[key]) != clip.frames:
                continue
            r = lagged_correlations(zscored(apertures[key]), frame_loudness(read_clip_mel(clip), clip.frames),
                                    max_offset)
            if np.isfinite(r).any():
                curves[key] = (r, clip.frames)

    def decide(r):
        best = int(np.nanargmax(r))
        offset, at_zero = best - max_offset, r[max_offset]
        # no lag at which the lips open with the voice: nothing to trust, not even lag 0
        sure = r[best] > 0 and (offset == 0 or (r[best] >= min_r and (not np.isfinite(at_zero)
                                                                  or r[best] - at_zero >= min_gain)))
        return offset, float(r[best]), bool(sure)

    pooled = {}
    for source in sorted({key.split("/")[0] for key in curves}):
        members = [(r, n) for key, (r, n) in curves.items() if key.split("/")[0] == source]
        stack, weights = np.array([r for r, _ in members]), np.array([n for _, n in members], float)
        known = np.isfinite(stack)
        mean = np.where(known, stack, 0).T @ weights / np.maximum(known.T @ weights, 1e-9)
        mean[known.sum(axis=0) == 0] = np.nan
        offset, r_best, sure = decide(mean)
        pooled[source] = offset if sure else 0
        result["pooled"][source] = {"offset": offset, "r": round(r_best, 3), "clips": len(members), "applied": sure}
    for n, (key, (r, frames)) in enumerate(curves.items(), 1):
        offset, r_best, sure = decide(r)
        result["confidence"][key] = round(r_best, 3)
        if frames < min_frames:
            result["offsets"][key] = pooled[key.split("/")[0]]
        elif sure:
            result["offsets"][key] = offset
        elif r[max_offset] >= min_r or (r_best > 0 and abs(offset) <= NEAR):  # in sync enough: kept as it is
            result["unsure"][key] = offset
            result["offsets"][key] = 0
        else:
            result["unsure"][key] = offset
            result["drop"].append(key)
            print(f"[{n}/{len(curves)}] {key}: best lag {offset:+d} (r {r_best:.2f}, at 0: {r[max_offset]:.2f}): "
                  "dropped", flush=True)
    return result


def run(args) -> int:
    data = Path(args.data)
    if args.from_aperture:
        result = measure_from_aperture(data, args.max_offset, args.min_r, args.min_gain,
                                       min_frames=args.min_frames)
    elif args.expert:
        result = measure(data, args.expert, args.min_confidence, args.max_offset)
    else:
        raise SystemExit("offsets: give --expert CHECKPOINT, or --from-aperture")
    out = Path(args.output or data / "av_offsets.json")
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    shifted = sum(1 for v in result["offsets"].values() if v)
    for source, pooled in result.get("pooled", {}).items():
        print(f"{source}: pooled over {pooled['clips']} clips, best lag {pooled['offset']:+d} (r {pooled['r']:.2f})"
              f"{'' if pooled['applied'] else ', not clear: 0'}")
    dropped = f", {len(result['drop'])} dropped" if "drop" in result else ""
    print(f"{len(result['offsets'])} clips kept ({shifted} shifted), {len(result['unsure'])} unsure{dropped} -> {out}")
    return 0
