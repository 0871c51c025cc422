"""Train the dub-shape model (core/models/dub_shape.py): speech → the lip shape real speakers make.

    python main.py train-dub-shape --data PREPARED --run runs/dub_shape [--minutes 15]

Pairs: every prepared clip's mel with `training.lip_shape.shape_features` of its frames
(DATA/lip_shape.npz, MediaPipe on the full-size crop; the contour basis fitted on the training
clips), frame i's lips with the audio of frame i + k where `--av-offsets` says the clip's audio is k
frames late; clips it dropped are left out. Items are `SEGMENT`-frame stretches with the audio
around them, drawn with `speaker_balanced_weights` (no one speaker or source dominates). The mel is
augmented by a gain (±6 dB) and one masked band.

Validation (held-out speakers, val filelist, whole clips): R² per feature, the per-clip correlation
of the predicted and measured inner gap, and how well the prediction finds closed lips (inner gap
under `CLOSED_SHARE` of the clip's 95th percentile) among the clip's speech frames: ROC AUC, per
source too. Written to RUN/log.jsonl and printed; the model of the last round is saved as
RUN/dub_shape.safetensors.
"""
import json
import time
from pathlib import Path

import numpy as np
import torch

from core.hparams import HP
from core.models.dub_shape import INNER_GAP, DubShapeDims, DubShapeModel, frame_positions
from core.weights import save_weights
from training.checkpoint import check_run_dir, writing
from training.datasets import (FPS, frame_loudness, read_av_offsets, read_clip_mel, read_filelist, scan_clip,
                               speaker_balanced_weights)
from training.lip_shape import SHAPE_FEATURES, contour_basis, read_lip_shapes, shape_features
from training.train_expert import masked_mse, roc_auc
from training.train_lip_reader import FEATURES

SEGMENT = 50  # frames an item covers (2 s; shorter clips are padded)
MARGIN = 32  # mel frames of audio either side of a segment (the model sees ±30)
SILENCE = -HP.max_abs_value  # the mel's floor: no audio
CLOSED_SHARE = 0.15  # lips closed: inner gap under this share of the clip's 95th percentile
SPEECH_PERCENTILE = 40  # frames louder than this percentile of the clip count as speech
FEATURE_WEIGHTS = (2.0,) + (1.0,) * (SHAPE_FEATURES - 1)  # the inner gap, which closures are read from, twice


def paired_clips(root: Path, keys: list, shapes: dict, offsets: dict) -> list:
    """(key, mel (80, M), targets (frames, features) raw, frame i's lips with the audio of frame i + k,
    NaN where unmeasured) of each clip that exists, is measured and was not dropped."""
    out = []
    for key in keys:
        k = offsets.get(key, 0)
        clip = scan_clip(root, key) if k is not None else None
        if clip is None or key not in shapes:
            continue
        lips = shapes[key][:clip.frames]
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
    """(speech frames with a measured gap, whether the lips are closed there)."""
    known = np.isfinite(inner_gap) & speech
    if known.sum() < 2:
        return known, np.zeros(0, bool)
    top = np.percentile(inner_gap[np.isfinite(inner_gap)], 95)
    return known, inner_gap[known] < CLOSED_SHARE * top


def validate(model: DubShapeModel, clips: list) -> dict:
    """R² per feature, median per-clip r of the inner gap, closure AUC (all and per source)."""
    preds, targets, sources, clip_r = [], [], [], []
    closed_scores, closed_truth, closed_source = [], [], []
    for key, mel, target in clips:
        pred = predict(model, mel, len(target))
        truth = model.standardise(torch.from_numpy(target)).numpy()
        preds.append(pred)
        targets.append(truth)
        sources += [key.split("/")[0]] * len(target)
        known = np.isfinite(truth[:, INNER_GAP])
        if known.sum() > 5 and truth[known, INNER_GAP].std() > 0:
            clip_r.append(float(np.corrcoef(pred[known, INNER_GAP], truth[known, INNER_GAP])[0, 1]))
        loud = frame_loudness(mel, len(target))
        speech = np.isfinite(loud) & (loud > np.nanpercentile(loud, SPEECH_PERCENTILE))
        where, closed = closed_labels(target[:, INNER_GAP], speech)
        closed_scores.append(-pred[where, INNER_GAP])
        closed_truth.append(closed)
        closed_source += [key.split("/")[0]] * int(where.sum())
    pred, truth = np.concatenate(preds), np.concatenate(targets)
    r2 = {}
    for f, name in enumerate(FEATURES):
        known = np.isfinite(truth[:, f])
        t, p = truth[known, f], pred[known, f]
        r2[name] = float(1 - ((p - t) ** 2).sum() / max(((t - t.mean()) ** 2).sum(), 1e-9))
    scores, truth_closed = np.concatenate(closed_scores), np.concatenate(closed_truth)
    closed_source = np.array(closed_source)
    by_source = {}
    for source in sorted(set(closed_source)):
        pick = closed_source == source
        if 0 < truth_closed[pick].sum() < pick.sum():
            by_source[source] = _auc(scores[pick], truth_closed[pick])
    return {"r2": r2, "inner_gap_clip_r": float(np.median(clip_r)) if clip_r else float("nan"),
            "closed_auc": _auc(scores, truth_closed) if 0 < truth_closed.sum() < len(truth_closed) else float("nan"),
            "closed_share": float(truth_closed.mean()) if len(truth_closed) else float("nan"),
            "closed_auc_by_source": by_source}


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    return roc_auc(torch.from_numpy(scores.astype(np.float32)), torch.from_numpy(labels.astype(np.float32)))


def train(args) -> int:
    root, run_dir = Path(args.data), check_run_dir(args.run_dir)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train_keys, val_keys = read_filelist(root, "train"), read_filelist(root, "val")
    measured = read_lip_shapes(root)
    mean, basis = contour_basis(measured, train_keys)
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
        if step % args.eval_every == 0 or step == total:
            found = {"step": step, "minutes": (time.perf_counter() - started) / 60, "loss": loss.item(),
                     **validate(model, val_clips)}
            with (run_dir / "log.jsonl").open("a", encoding="utf-8") as log:
                log.write(json.dumps(found) + "\n")
            print(f"step {step}/{total} loss {loss.item():.3f} {found['minutes']:.1f} min | held-out R² "
                  + " ".join(f"{k} {v:.2f}" for k, v in found["r2"].items())
                  + f" | inner gap r per clip {found['inner_gap_clip_r']:.2f} | closed AUC "
                  f"{found['closed_auc']:.3f} (closed {100 * found['closed_share']:.1f} %)", flush=True)
    out = run_dir / "dub_shape.safetensors"
    with writing(out, "dub-shape model not saved"):
        save_weights(model.eval(), out, metadata={"features": list(FEATURES), **found})
    print(f"wrote {out}")
    return 0
