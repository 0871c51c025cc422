"""Train the lip-shape reader (core/models/lip_reader.py) on prepared frames and their teacher.

    python main.py train-lip-reader --data PREPARED --run runs/lip_reader [--minutes 12]

Targets: `training.lip_shape.shape_features` of DATA/lip_shape.npz (MediaPipe on the full-size
crop), the contour basis fitted on the training clips, standardised over the training frames;
the reader keeps both (`reader_features` turns a clip's measures into its targets). Inputs: the lower half of each frame at 96×96,
in luma, as the generator draws it. Every `--stride`-th frame of a clip is used (neighbours
look alike). Augmentation: brightness and contrast, a shift of a few pixels, noise, and on half
of each batch a blur (down- and up-sampling by 1.5–4×) so that soft generated mouths are read
for their shape as sharp ones are.

Validation (held-out speakers, val filelist): R² per feature, sharp and blurred (3×), written to
RUN/log.jsonl and printed; the reader of the last epoch is saved as RUN/lip_reader.safetensors.
"""
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.models.lip_reader import LipReaderDims, LipShapeReader, luma
from core.weights import save_weights
from training.checkpoint import check_run_dir, writing
from training.datasets import read_filelist, read_frame, scan_clip
from training.lip_shape import MEASURES, SHAPE_COMPONENTS, contour_basis, read_lip_shapes, shape_features
from training.train_expert import masked_mse

FEATURES = MEASURES[1:] + tuple(f"pca{n}" for n in range(SHAPE_COMPONENTS))  # shape_targets' columns


def lower_luma_frames(root: Path, keys: list, stride: int) -> tuple:
    """(frames (N, 1, 48, 96) uint8 luma lower halves, clip keys, frame numbers) of every
    `stride`-th frame of the clips that exist."""
    images, owners, numbers = [], [], []
    for key in keys:
        clip = scan_clip(root, key)
        if clip is None:
            continue
        for i in range(0, clip.frames, stride):
            face = torch.from_numpy(read_frame(clip.path / f"{i}.jpg")).permute(2, 0, 1).float()
            images.append(luma(face)[:, 48:].round().to(torch.uint8))
            owners.append(key)
            numbers.append(i)
    return torch.stack(images), owners, np.array(numbers)


def reader_features(reader, shapes: dict) -> dict:
    """{clip key: (frames, features) raw teacher features in the reader's basis} of lip_shape rows."""
    mean, basis = reader.contour_mean.numpy(), reader.contour_basis.numpy()
    return {key: shape_features(rows, mean, basis) for key, rows in shapes.items()}


def targets_for(shapes: dict, owners: list, numbers: np.ndarray) -> torch.Tensor:
    """(N, features) raw teacher values of the listed frames, NaN where not measured."""
    out = np.full((len(owners), len(FEATURES)), np.nan, np.float32)
    for n, (key, i) in enumerate(zip(owners, numbers)):
        rows = shapes.get(key)
        if rows is not None and i < len(rows):
            out[n] = rows[i]
    return torch.from_numpy(out)


def blurred(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Down-sample by `factor` and back: the softness of an upscaled generated mouth."""
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(2, round(h / factor)), max(2, round(w / factor))), mode="area")
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)


def augmented(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """x (B, 1, 48, 96) in [0, 1]: contrast, brightness, a shift, noise; half the batch blurred."""
    b = len(x)
    gain = torch.from_numpy(rng.uniform(0.7, 1.3, (b, 1, 1, 1)).astype(np.float32))
    bias = torch.from_numpy(rng.uniform(-0.1, 0.1, (b, 1, 1, 1)).astype(np.float32))
    x = (x - 0.5) * gain + 0.5 + bias
    dy, dx = rng.integers(-3, 4, 2)
    x = F.pad(x, (3, 3, 3, 3), mode="replicate")[..., 3 + dy:3 + dy + 48, 3 + dx:3 + dx + 96]
    half = b // 2
    x = torch.cat([blurred(x[:half], float(rng.uniform(1.5, 4.0))), x[half:]])
    return (x + 0.02 * torch.randn_like(x)).clamp(0, 1)


@torch.no_grad()
def r_squared(reader, frames: torch.Tensor, target: torch.Tensor, blur: float = 1.0) -> list:
    """R² of each feature over the frames (standardised targets), sharp or blurred."""
    reader.eval()
    preds = []
    for first in range(0, len(frames), 512):
        x = frames[first:first + 512].float() / 255
        preds.append(reader(blurred(x, blur) if blur > 1 else x))
    pred = torch.cat(preds)
    out = []
    for f in range(target.shape[1]):
        known = torch.isfinite(target[:, f])
        t, p = target[known, f], pred[known, f]
        out.append(float(1 - ((p - t) ** 2).sum() / ((t - t.mean()) ** 2).sum()))
    return out


def start_teacher_run(args) -> tuple:
    """What the trainers on the lip-shape teacher set up first: (data root, run folder, rng, training and
    validation clip keys, DATA/lip_shape.npz's rows, the contour's mean and basis fitted on the training
    clips), torch and the rng seeded with --seed."""
    root, run_dir = Path(args.data), check_run_dir(args.run_dir)
    torch.manual_seed(args.seed)
    train_keys, val_keys = read_filelist(root, "train"), read_filelist(root, "val")
    measured = read_lip_shapes(root)
    return (root, run_dir, np.random.default_rng(args.seed), train_keys, val_keys, measured,
            *contour_basis(measured, train_keys))


def train(args) -> int:
    root, run_dir, rng, train_keys, val_keys, measured, mean, basis = start_teacher_run(args)
    reader = LipShapeReader(LipReaderDims(width=args.width, features=len(FEATURES)))
    reader.contour_mean.copy_(torch.from_numpy(mean))
    reader.contour_basis.copy_(torch.from_numpy(basis))
    shapes = reader_features(reader, measured)
    started = time.perf_counter()
    frames, owners, numbers = lower_luma_frames(root, train_keys, args.stride)
    target = targets_for(shapes, owners, numbers)
    val_frames, val_owners, val_numbers = lower_luma_frames(root, val_keys, 2 * args.stride)
    print(f"{len(frames)} training and {len(val_frames)} validation frames read in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    if len(frames) < args.batch_size or not len(val_frames):
        raise SystemExit(f"train-lip-reader: {root} gives {len(frames)} training and {len(val_frames)} validation "
                         f"frames at stride {args.stride}: too few for a batch of {args.batch_size}")

    known = target[torch.isfinite(target).all(1)]
    reader.target_mean.copy_(known.mean(0))
    reader.target_std.copy_(known.std(0).clamp_min(1e-6))
    target = reader.standardise(target)
    val_target = reader.standardise(targets_for(shapes, val_owners, val_numbers))
    optimiser = torch.optim.AdamW(reader.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = len(frames) // args.batch_size
    total = args.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, args.lr, total_steps=total, pct_start=0.1)
    step = 0
    for epoch in range(args.epochs):
        reader.train()
        order = torch.from_numpy(rng.permutation(len(frames)))
        for first in range(0, steps_per_epoch * args.batch_size, args.batch_size):
            idx = order[first:first + args.batch_size]
            x = augmented(frames[idx].float() / 255, rng)
            loss = masked_mse(reader(x), target[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            step += 1
            if step % 100 == 0:
                print(f"epoch {epoch} step {step}/{total} loss {loss.item():.3f} "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
        found = {"epoch": epoch, "step": step, "minutes": (time.perf_counter() - started) / 60,
                 "val_r2": dict(zip(FEATURES, r_squared(reader, val_frames, val_target))),
                 "val_r2_blurred": dict(zip(FEATURES, r_squared(reader, val_frames, val_target, blur=3.0)))}
        with (run_dir / "log.jsonl").open("a", encoding="utf-8") as log:
            log.write(json.dumps(found) + "\n")
        print("R² held-out:", " ".join(f"{k} {v:.2f}" for k, v in found["val_r2"].items()),
              "| blurred:", " ".join(f"{v:.2f}" for v in found["val_r2_blurred"].values()), flush=True)
    out = run_dir / "lip_reader.safetensors"
    with writing(out, "lip reader not saved"):
        save_weights(reader.eval(), out, metadata={"features": list(FEATURES), **found})
    print(f"wrote {out}")
    return 0
