"""Held-out report of a sync expert, per source: the figures its model card states.

    python main.py evaluate-expert --data PREPARED [--expert E.safetensors] [--av-offsets F] [-o report.json]

* Per window (the paper's protocol): validation windows of the prepared set, half in sync, half
  with the mel of a start >= 5 frames away in the same clip (`ExpertDataset`, fixed draws). P(sync)
  is the expert's cosine. ROC AUC (threshold-free), and the accuracy at the threshold that is best
  on the *training* speakers' windows (drawn the same way) — the expert's calibration drifts
  between speakers it knows and new ones, so a threshold chosen on the held-out windows
  themselves would flatter it — and at P = 0.5.
* Per clip (what the editor shows): LSE-C of each validation clip with its own audio against
  with the audio of `--foreign` clips of other speakers (at least as long, from the same
  validation set); the share of (clip, foreign) pairs in which its own audio scores higher.
  Beside it the clip's mean per-frame confidence, the number the editor gives a segment
  (SyncScores.segment_confidence): its "weak" line is midway between the own and the foreign
  means of the clips of LINE_MIN_S and more (core/sync_scale.py). That mean is not the clip's
  LSE-C (a mean of per-window margins, not the margin of the mean distances): under a foreign
  track it stays higher.
Every figure is given for all validation clips, for each source folder and for the clips of
LINE_MIN_S and more.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from core.atomic import atomic_write_text
from core.models.syncnet import sync_probability
from core.sync import load_scorer, score_crops
from core.weights import load_model, resolve
from training.datasets import FPS, ExpertDataset, clip_speakers, read_av_offsets, read_clip_frames, read_clip_mel
from training.train_expert import roc_auc


LINE_MIN_S = 2.0  # the weak line is set on clips this long and more: dialogue lines, not one-word clips
LONG = f"{LINE_MIN_S:g} s and more"


def source_of(key: str) -> str:
    return key.split("/")[0]


@torch.inference_mode()
def window_scores(model, dataset: ExpertDataset, indices, batch: int = 256) -> tuple:
    """(P(sync), label, clip key) of the dataset's items `indices`."""
    probs, labels, keys = [], [], []
    for first in range(0, len(indices), batch):
        items = [dataset.sample(int(i)) for i in indices[first:first + batch]]
        faces = torch.stack([item[0][0] for item in items])
        mels = torch.stack([item[0][1] for item in items])
        audio_emb, face_emb = model(mels, faces)
        probs.append(sync_probability(audio_emb.float(), face_emb.float()).flatten())
        labels += [float(item[0][2]) for item in items]
        keys += [item[1]["key"] for item in items]
    return torch.cat(probs).numpy(), np.asarray(labels), keys


def best_threshold(probs: np.ndarray, labels: np.ndarray) -> float:
    """The threshold on P(sync) with the highest accuracy on these windows (midpoints between scores)."""
    order = np.sort(np.unique(probs))
    candidates = np.concatenate([[0.0], (order[1:] + order[:-1]) / 2, [1.0]])
    accuracy = [((probs > t) == (labels > 0.5)).mean() for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def window_report(probs, labels, keys, threshold: float) -> dict:
    sources = np.array([source_of(k) for k in keys])
    out = {}
    for name in ["all"] + sorted(set(sources)):
        pick = np.ones(len(keys), bool) if name == "all" else sources == name
        p, lab = probs[pick], labels[pick]
        out[name] = {"windows": int(pick.sum()),
                     "auc": roc_auc(torch.from_numpy(p), torch.from_numpy(lab)),
                     "accuracy_at_train_threshold": float(((p > threshold) == (lab > 0.5)).mean()),
                     "accuracy_at_0.5": float(((p > 0.5) == (lab > 0.5)).mean())}
    return out


def clip_report(scorer, dataset: ExpertDataset, speakers: dict, foreign: int, seed: int = 0) -> dict:
    """Own audio against `foreign` other speakers' audio, per validation clip (LSE-C)."""
    rng = np.random.default_rng(seed)
    clips = dataset.clips
    mels = {c.key: read_clip_mel(c) for c in clips}
    long = {c.key for c in clips if c.frames >= LINE_MIN_S * FPS}

    def scored(frames, mel) -> tuple:
        s = score_crops(scorer, frames, np.ones(len(frames), bool), mel)
        conf = np.asarray(s.frame_conf, np.float64)
        return s.lse_c, float(np.nanmean(conf)) if np.isfinite(conf).any() else float("nan")

    pairs = {}
    for clip in clips:
        frames = read_clip_frames(clip)
        own = scored(frames, mels[clip.key])
        others = [o.key for o in clips if speakers[o.key] != speakers[clip.key] and o.frames >= clip.frames]
        chosen = rng.choice(len(others), size=min(foreign, len(others)), replace=False) if others else []
        pairs[clip.key] = [(own, scored(frames, mels[others[int(j)]])) for j in chosen]
    out = {}
    for name in ["all", LONG] + sorted({source_of(k) for k in pairs}):
        chosen = [p for k, ps in pairs.items() if name == "all" or (name == LONG and k in long) or name == source_of(k)
                  for p in ps]
        finite = [(own, other) for own, other in chosen if np.all(np.isfinite(own + other))]

        def mean(values):
            return float(np.mean(values)) if finite else float("nan")
        out[name] = {"pairs": len(finite),
                     "own_beats_foreign": mean([own[0] > other[0] for own, other in finite]),
                     "own_lse_c": mean([own[0] for own, _ in finite]),
                     "foreign_lse_c": mean([other[0] for _, other in finite]),
                     "own_segment_conf": mean([own[1] for own, _ in finite]),
                     "foreign_segment_conf": mean([other[1] for _, other in finite])}
    return out


def weak_line(clips: dict) -> float:
    """The editor's "weak" segment line for this expert: midway between the mean segment confidence of
    held-out clips of LINE_MIN_S and more with their own audio and with a foreign track."""
    long = clips.get(LONG, {})
    return 0.5 * (long.get("own_segment_conf", float("nan")) + long.get("foreign_segment_conf", float("nan")))


def report(data, expert="expert", av_offsets=None, max_windows: int = 6000, foreign: int = 3, seed: int = 0) -> dict:
    data = Path(data)
    path, _ = resolve(expert)
    model = load_model(path).eval()
    offsets = read_av_offsets(av_offsets) if av_offsets else None
    rng = np.random.default_rng(seed)
    sets = {name: ExpertDataset(data, data / "filelists" / f"{name}.txt", train=False, seed=seed, av_offsets=offsets)
            for name in ("train", "val")}
    scored = {}
    for name, dataset in sets.items():
        n = len(dataset)
        indices = np.sort(rng.choice(n, size=min(n, max_windows), replace=False))
        scored[name] = window_scores(model, dataset, indices)
        print(f"{name}: {len(indices)} windows scored", flush=True)
    threshold = best_threshold(*scored["train"][:2])
    val = sets["val"]
    speakers = dict(zip([c.key for c in val.clips], clip_speakers(data, [c.key for c in val.clips])))
    result = {"expert": str(path), "threshold_from_training_speakers": threshold,
              "train_windows": window_report(*scored["train"], threshold),
              "val_windows": window_report(*scored["val"], threshold),
              "val_clips": clip_report(load_scorer(str(path)), val, speakers, foreign, seed),
              "val_speakers": len(set(speakers.values()))}
    result["weak_line"] = weak_line(result["val_clips"])
    return result


def table(result: dict) -> str:
    lines = ["| source | windows | AUC | accuracy (train threshold) | accuracy (P 0.5) | own > foreign "
             "| LSE-C own / foreign | segment confidence own / foreign |", "|---|---|---|---|---|---|---|---|"]
    nan = float("nan")
    for name in dict.fromkeys([*result["val_windows"], *result["val_clips"]]):
        w, c = result["val_windows"].get(name), result["val_clips"].get(name, {})
        window = (f"{w['windows']} | {w['auc']:.3f} | {100 * w['accuracy_at_train_threshold']:.1f} % | "
                  f"{100 * w['accuracy_at_0.5']:.1f} %") if w else "| | |"
        lines.append(f"| {name} | {window} | {100 * c.get('own_beats_foreign', nan):.0f} % of {c.get('pairs', 0)} | "
                     f"{c.get('own_lse_c', nan):.4f} / {c.get('foreign_lse_c', nan):.4f} | "
                     f"{c.get('own_segment_conf', nan):.4f} / {c.get('foreign_segment_conf', nan):.4f} |")
    return "\n".join(lines)


def run(args) -> int:
    result = report(args.data, args.expert, args.av_offsets, args.max_windows, args.foreign, args.seed)
    out = Path(args.output or Path(args.data) / "expert_report.json")
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    print(f"threshold chosen on training speakers: {result['threshold_from_training_speakers']:.3f} "
          f"(training windows: AUC {result['train_windows']['all']['auc']:.3f})")
    print(table(result))
    print(f"weak line (midway of the segment confidences, clips of {LONG}): {result['weak_line']:.4f}")
    print(f"wrote {out}")
    return 0
