"""Train the dub-shape model (core/models/dub_shape.py): speech → the lip shape real speakers make.

    python main.py train-dub-shape --data PREPARED --run runs/dub_shape [--minutes 15]

Pairs: every prepared clip's mel with `training.lip_shape.shape_features` of its frames
(DATA/lip_shape.npz, MediaPipe on the full-size crop; the contour basis fitted on the training
clips) in the clip's own units (`per_clip`: the gaps as shares of the clip's wide-open gap), frame
i's lips with the audio of frame i + k where `--av-offsets` says the clip's audio is k frames late;
clips it dropped are left out. Items are `SEGMENT`-frame stretches with the audio
around them, drawn with `speaker_balanced_weights` (no one speaker or source dominates). The mel is
augmented by a gain (±6 dB) and one masked band.

Validation (held-out speakers, val filelist, whole clips): R² per feature, the per-clip correlation
of the predicted and measured inner gap, and how well the prediction finds closed lips (inner gap
under `CLOSED_SHARE` of the clip's 95th percentile) among the clip's speech frames: ROC AUC, per
source too. At the end the model's closed and open gaps are chosen on the training speakers
(`calibrate`) and the held-out share it shuts, its precision and recall are added. Written to
RUN/log.jsonl and printed; the model of the last step is saved as RUN/dub_shape.safetensors.
"""
import json
import time
from pathlib import Path

import numpy as np
import torch

from core.closures import predicted_gaps
from core.hparams import HP
from core.models.dub_shape import INNER_GAP, DubShapeDims, DubShapeModel, frame_positions
from core.weights import save_weights
from training.checkpoint import writing
from training.datasets import (FPS, frame_loudness, read_av_offsets, read_clip_mel, scan_clip,
                               speaker_balanced_weights, zscored)
from training.compare_mouths import SPEECH_PERCENTILE
from training.lip_shape import SHAPE_FEATURES, shape_features
from training.train_expert import masked_mse, roc_auc
from training.train_lip_reader import FEATURES, start_teacher_run

SEGMENT = 50  # frames an item covers (2 s; shorter clips are padded)
MARGIN = 32  # mel frames of audio either side of a segment (the model sees ±30)
SILENCE = -HP.max_abs_value  # the mel's floor: no audio
CLOSED_SHARE = 0.15  # lips closed: inner gap under this share of the clip's 95th percentile
GAPS = (0, 1)  # inner and outer gap among the features: scaled by the clip's wide-open gap (`per_clip`)
FEATURE_WEIGHTS = (2.0,) + (1.0,) * (SHAPE_FEATURES - 1)  # the inner gap, which closures are read from, twice


def per_clip(features: np.ndarray) -> np.ndarray:
    """A clip's teacher features in units the audio can predict: the two gaps as shares of the clip's
    95th percentile (0 shut, 1 wide open for this speaker: the closed-lip rule's own scale), the rest
    z-scored within the clip. What the sound tells is how a speaker moves, not their anatomy: with
    features in absolute units (eye distances) a model learned the speakers' means and no timing
    (held-out R² ~0 after 500 steps)."""
    out = zscored(features)
    for f in GAPS:
        column = features[:, f]
        known = np.isfinite(column)
        top = np.percentile(column[known], 95) if known.sum() > 1 else 0.0
        out[:, f] = column / top if top > 0 else np.nan
    return out


def paired_clips(root: Path, keys: list, shapes: dict, offsets: dict) -> list:
    """(key, mel (80, M), targets (frames, features) `per_clip`, frame i's lips with the audio of frame
    i + k, NaN where unmeasured) of each clip that exists, is measured and was not dropped."""
    out = []
    for key in keys:
        k = offsets.get(key, 0)
        clip = scan_clip(root, key) if k is not None else None
        if clip is None or key not in shapes:
            continue
        lips = per_clip(shapes[key][:clip.frames])
        targets = np.full((clip.frames, lips.shape[1]), np.nan, np.float32)
        # audio frame j shows the lips of frame j - k
        lo, hi = max(0, k), min(clip.frames, len(lips) + k)
        if hi > lo:
            targets[lo:hi] = lips[lo - k:hi - k]
        out.append((key, read_clip_mel(clip), targets))
    return out


def segment(mel: np.ndarray, targets: np.ndarray, start: int) -> tuple:
    """(mel (80, SEGMENT·3.2 + 2·MARGIN), targets (SEGMENT, features), the mel frame the returned mel
    starts at, counted from frame `start`'s) of frames start..start+SEGMENT and the audio around them;
    silence and NaN past the clip's ends."""
    per_frame = HP.mel_fps / FPS
    first = int(round(start * per_frame)) - MARGIN
    length = int(round(SEGMENT * per_frame)) + 2 * MARGIN
    out = np.full((mel.shape[0], length), SILENCE, np.float32)
    a, b = max(first, 0), min(first + length, mel.shape[1])
    if b > a:
        out[:, a - first:b - first] = mel[:, a:b]
    target = np.full((SEGMENT, targets.shape[1]), np.nan, np.float32)
    part = targets[start:start + SEGMENT]
    target[:len(part)] = part
    return out, target, first - start * per_frame


def batch(clips: list, weights: np.ndarray, size: int, rng: np.random.Generator) -> tuple:
    """(mel (B, 80, L), targets (B, SEGMENT, features), positions (B, SEGMENT): each frame's centre in
    its mel) of `size` random segments, the mel augmented."""
    mels, targets, positions = [], [], []
    for c in rng.choice(len(clips), size=size, p=weights):
        _, mel, target = clips[c]
        start = int(rng.integers(0, max(1, len(target) - SEGMENT + 1)))
        m, t, first = segment(mel, target, start)
        m = np.clip(m + rng.uniform(-0.5, 0.5), SILENCE, HP.max_abs_value)  # ±6 dB: 1 unit is 12.5 dB
        band = int(rng.integers(0, 9))
        lo = int(rng.integers(0, m.shape[0] - band + 1))
        m[lo:lo + band] = SILENCE
        mels.append(m)
        targets.append(t)
        positions.append(frame_positions(SEGMENT, FPS, first))
    return torch.from_numpy(np.stack(mels)), torch.from_numpy(np.stack(targets)), torch.stack(positions)


@torch.no_grad()
def predict(model: DubShapeModel, mel: np.ndarray, frames: int, fps: float = FPS) -> np.ndarray:
    """(frames, features) standardised prediction for a whole track's mel (80, M)."""
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(mel, np.float32))[None]
    return model(x, frame_positions(frames, fps))[0].T.numpy()


def closed_labels(inner_gap: np.ndarray, speech: np.ndarray) -> tuple:
    """(speech frames with a measured gap, whether the lips are closed there), the gap as a share of
    the clip's 95th percentile (`per_clip`)."""
    known = np.isfinite(inner_gap) & speech
    return known, inner_gap[known] < CLOSED_SHARE


def speech_frames(mel: np.ndarray, frames: int) -> np.ndarray:
    """The frames louder than SPEECH_PERCENTILE of the clip's (as compare-mouths counts the dub's speech)."""
    loud = frame_loudness(mel, frames)
    return np.isfinite(loud) & (loud > np.nanpercentile(loud, SPEECH_PERCENTILE))


def closed_on_speech(model: DubShapeModel, clips: list) -> tuple:
    """(predicted inner gap, measured closed?, source) over every clip's measured speech frames."""
    gaps, closed, sources = [], [], []
    for key, mel, target in clips:
        pred = predicted_gaps(model, mel, np.arange(len(target)) / FPS, FPS)  # as a render reads the dub
        where, shut = closed_labels(target[:, INNER_GAP], speech_frames(mel, len(target)))
        gaps.append(pred[where])
        closed.append(shut)
        sources += [key.split("/")[0]] * int(where.sum())
    return np.concatenate(gaps), np.concatenate(closed), np.array(sources)


def calibrate(model: DubShapeModel, clips: list) -> float:
    """Set the model's closed and open gaps on `clips` (training speakers): it shuts the lips on as
    many speech frames as they did (its predictions regress to the mean: none reaches 0), fully
    below the `share` quantile of its predicted gaps, fading out by twice that. Returns the share."""
    gaps, closed, _ = closed_on_speech(model, clips)
    share = float(closed.mean())
    model.closed_gap.fill_(float(np.quantile(gaps, share)))
    model.open_gap.fill_(float(np.quantile(gaps, min(1.0, 2 * share))))
    return share


def validate(model: DubShapeModel, clips: list) -> dict:
    """R² per feature, median per-clip r of the inner gap, closure AUC (all and per source), and at
    the model's closed gap the share of speech frames it shuts, and its precision and recall."""
    preds, targets, clip_r = [], [], []
    for key, mel, target in clips:
        pred = predict(model, mel, len(target))
        truth = model.standardise(torch.from_numpy(target)).numpy()
        preds.append(pred)
        targets.append(truth)
        known = np.isfinite(truth[:, INNER_GAP])
        if known.sum() > 5 and truth[known, INNER_GAP].std() > 0:
            clip_r.append(float(np.corrcoef(pred[known, INNER_GAP], truth[known, INNER_GAP])[0, 1]))
    pred, truth = np.concatenate(preds), np.concatenate(targets)
    r2 = {}
    for f, name in enumerate(FEATURES):
        known = np.isfinite(truth[:, f])
        t, p = truth[known, f], pred[known, f]
        r2[name] = float(1 - ((p - t) ** 2).sum() / max(((t - t.mean()) ** 2).sum(), 1e-9))
    gaps, closed, sources = closed_on_speech(model, clips)
    by_source = {source: _auc(-gaps[sources == source], closed[sources == source])
                 for source in sorted(set(sources)) if 0 < closed[sources == source].sum() < (sources == source).sum()}
    shut = gaps < float(model.closed_gap)
    return {"r2": r2, "inner_gap_clip_r": float(np.median(clip_r)) if clip_r else float("nan"),
            "closed_auc": _auc(-gaps, closed) if 0 < closed.sum() < len(closed) else float("nan"),
            "closed_share": float(closed.mean()) if len(closed) else float("nan"),
            "shut_share": float(shut.mean()) if len(shut) else float("nan"),
            "shut_precision": float(closed[shut].mean()) if shut.any() else float("nan"),
            "shut_recall": float(shut[closed].mean()) if closed.any() else float("nan"),
            "closed_auc_by_source": by_source}


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    return roc_auc(torch.from_numpy(scores.astype(np.float32)), torch.from_numpy(labels.astype(np.float32)))


def train(args) -> int:
    root, run_dir, rng, train_keys, val_keys, measured, mean, basis = start_teacher_run(args)
    shapes = {key: shape_features(rows, mean, basis) for key, rows in measured.items()}
    offsets = read_av_offsets(args.av_offsets) if args.av_offsets else {}
    started = time.perf_counter()
    clips, val_clips = (paired_clips(root, keys, shapes, offsets) for keys in (train_keys, val_keys))
    if not clips or not val_clips:
        raise SystemExit(f"train-dub-shape: {root} gives {len(clips)} training and {len(val_clips)} validation "
                         "clips with audio and lip shapes (measure them with training/lip_shape.py first)")
    frames = sum(len(t) for _, _, t in clips)
    print(f"{len(clips)} training clips ({frames} frames) and {len(val_clips)} validation clips read in "
          f"{time.perf_counter() - started:.0f} s", flush=True)

    model = DubShapeModel(DubShapeDims(width=args.width, features=len(FEATURES)))
    known = np.concatenate([t for _, _, t in clips])
    known = torch.from_numpy(known[np.isfinite(known).all(1)])
    model.target_mean.copy_(known.mean(0))
    model.target_std.copy_(known.std(0).clamp_min(1e-6))
    weights = speaker_balanced_weights(root, [key for key, _, _ in clips], [len(t) for _, _, t in clips])
    feature_weights = torch.tensor(FEATURE_WEIGHTS).sqrt()
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    total = args.steps
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, total_steps=total, pct_start=0.05)
    found = {}
    for step in range(1, total + 1):
        model.train()
        mel, target, positions = batch(clips, weights, args.batch_size, rng)
        target = model.standardise(target).transpose(1, 2)  # (B, features, SEGMENT)
        pred = model(mel, positions)
        w = feature_weights[None, :, None]
        loss = masked_mse(pred * w, target * w)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 100 == 0:
            print(f"step {step}/{total} loss {loss.item():.3f} {(time.perf_counter() - started) / 60:.1f} min",
                  flush=True)
        if step % args.eval_every == 0 and step < total:
            found = {"step": step, "minutes": (time.perf_counter() - started) / 60, "loss": loss.item(),
                     **validate(model, val_clips)}
            with (run_dir / "log.jsonl").open("a", encoding="utf-8") as log:
                log.write(json.dumps(found) + "\n")
            print(f"step {step}/{total} loss {loss.item():.3f} {found['minutes']:.1f} min | held-out R² "
                  + " ".join(f"{k} {v:.2f}" for k, v in found["r2"].items())
                  + f" | inner gap r per clip {found['inner_gap_clip_r']:.2f} | closed AUC "
                  f"{found['closed_auc']:.3f} (closed {100 * found['closed_share']:.1f} %)", flush=True)
    share = calibrate(model, clips)
    found = {"step": total, "minutes": (time.perf_counter() - started) / 60, "train_closed_share": share,
             "closed_gap": float(model.closed_gap), "open_gap": float(model.open_gap), **validate(model, val_clips)}
    with (run_dir / "log.jsonl").open("a", encoding="utf-8") as log:
        log.write(json.dumps(found) + "\n")
    print(f"calibrated on the training speakers (closed on {100 * share:.1f} % of their speech frames): shut below "
          f"{found['closed_gap']:.3f}, open above {found['open_gap']:.3f} | held-out: shuts "
          f"{100 * found['shut_share']:.1f} % "
          f"(measured {100 * found['closed_share']:.1f} %), precision {found['shut_precision']:.2f}, recall "
          f"{found['shut_recall']:.2f}, AUC {found['closed_auc']:.3f}", flush=True)
    out = run_dir / "dub_shape.safetensors"
    with writing(out, "dub-shape model not saved"):
        save_weights(model.eval(), out, metadata={"features": list(FEATURES), **found})
    print(f"wrote {out}")
    return 0
