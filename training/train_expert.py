"""Train the lip-sync expert (SyncNet): cosine-BCE on 5-frame lower halves vs 0.2 s of mel.

    python main.py train-expert --data PREPARED --run runs/expert [--width 0.5] [--max-minutes 30]

Half the samples are in sync, half take the mel of another moment of the same clip.
Validation runs on held-out speakers; the best checkpoint by validation loss is exported
as `best.safetensors` (loadable by core.weights.load_model).
"""
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from core.models.syncnet import SyncNet, SyncNetDims, contrastive_loss, sync_loss, sync_probability
from core.weights import save_weights
from training import distributed
from training.checkpoint import load_training_state, manifest_hash, save_training_state
from training.datasets import ExpertDataset


def add_common_args(p, default_batch: int):
    """Options every trainer shares."""
    p.add_argument("--data", required=True, help="prepared dataset root (python main.py prepare)")
    p.add_argument("--run", dest="run_dir", required=True, help="folder for checkpoints and logs")
    p.add_argument("--width", type=float, default=0.5, help="channel width multiplier (1.0 = official size)")
    p.add_argument("--batch-size", type=int, default=default_batch)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--steps", type=int, default=100_000, help="stop after this many optimiser steps")
    p.add_argument("--max-minutes", type=float, default=0, help="also stop after this wall time (0: no limit)")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--eval-batches", type=int, default=20)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--workers", type=int, default=1, help="data loader processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto: bf16 mixed precision on GPU, fp32 on CPU")
    p.add_argument("--resume", action="store_true", help="continue from RUN/last.safetensors")
    p.add_argument("--force", action="store_true", help="resume even if hyper-parameters changed")


def loader(dataset, args, ctx, train: bool):
    """Training: shuffled (per rank under DDP). Validation: one fixed random order, so every
    evaluation sees the same windows and its figures compare across steps."""
    if not train:
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(args.seed + 1)).tolist()
        sampler = order[ctx.rank::ctx.world]
    elif ctx.world > 1:
        sampler = DistributedSampler(dataset, num_replicas=ctx.world, rank=ctx.rank, shuffle=True, seed=args.seed)
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(args.seed))
    return DataLoader(dataset, batch_size=args.batch_size, sampler=sampler, num_workers=args.workers,
                      drop_last=train, persistent_workers=args.workers > 0 and train,
                      pin_memory=ctx.device.type == "cuda")


def forever(data_loader):
    epoch = 0
    while True:
        if isinstance(data_loader.sampler, DistributedSampler):
            data_loader.sampler.set_epoch(epoch)
        yield from data_loader
        epoch += 1


def autocast(ctx, precision: str):
    """bf16 mixed precision on GPU always ("auto"), on CPU only when asked: it speeds up the
    generator's transposed convolutions but slows the expert down on the CPUs we measured."""
    enabled = precision == "bf16" or (precision == "auto" and ctx.device.type == "cuda")
    return torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=enabled)


class Log:
    """JSON lines in RUN/log.jsonl plus a short line on stdout (rank 0 only)."""

    def __init__(self, run_dir: Path, main: bool):
        self.path, self.main = run_dir / "log.jsonl", main

    def __call__(self, **record):
        if not self.main:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        print("  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()),
              flush=True)


class ClipGroupedBatches:
    """Endless batches made of `per_clip` windows (≥ 5 frames apart) from each of
    batch_size / per_clip clips, drawn in proportion to the clips' lengths."""

    def __init__(self, dataset, batch_size: int, per_clip: int, seed: int, min_gap: int = 5):
        if batch_size % per_clip:
            raise ValueError(f"batch size {batch_size} is not a multiple of --windows-per-clip {per_clip}")
        self.dataset, self.groups, self.per_clip, self.min_gap = dataset, batch_size // per_clip, per_clip, min_gap
        self.rng = np.random.default_rng(seed)
        sizes = np.diff(dataset._offsets)
        self.eligible = np.flatnonzero(sizes >= per_clip * min_gap)
        self.weights = sizes[self.eligible] / sizes[self.eligible].sum()

    def __iter__(self):
        while True:
            batch = []
            for c in self.rng.choice(self.eligible, self.groups, replace=False, p=self.weights):
                first, count = int(self.dataset._offsets[c]), int(self.dataset._offsets[c + 1] - self.dataset._offsets[c])
                grid = np.arange(int(self.rng.integers(self.min_gap)), count, self.min_gap)
                batch.extend(first + self.rng.choice(grid, self.per_clip, replace=False))
            yield [int(i) for i in batch]


@torch.no_grad()
def evaluate(model, val_loader, ctx, batches: int, precision: str) -> dict:
    model.eval()
    losses, correct, total = [], 0, 0
    for n, (faces, mel, label) in enumerate(val_loader):
        if n == batches:
            break
        faces, mel, label = faces.to(ctx.device), mel.to(ctx.device), label.to(ctx.device)
        with autocast(ctx, precision):
            audio_emb, face_emb = model(mel, faces)
        audio_emb, face_emb = audio_emb.float(), face_emb.float()
        losses.append(sync_loss(audio_emb, face_emb, label).item())
        correct += ((sync_probability(audio_emb, face_emb) > 0.5) == (label > 0.5)).sum().item()
        total += label.numel()
    model.train()
    loss = distributed.mean_across(sum(losses) / max(len(losses), 1), ctx)
    return {"val_loss": loss, "val_accuracy": distributed.mean_across(correct / max(total, 1), ctx)}


def start_run(args, dataset_cls):
    """What every trainer sets up first: process group, seed, run folder, log, config, datasets."""
    ctx = distributed.setup(args.device)
    torch.manual_seed(args.seed + ctx.rank)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k not in ("run", "command")}
    data = Path(args.data)
    train_set = dataset_cls(data, data / "filelists" / "train.txt", train=True)
    val_set = dataset_cls(data, data / "filelists" / "val.txt", train=False)
    return ctx, run_dir, Log(run_dir, ctx.main), config, data, train_set, val_set


def train(args) -> int:
    ctx, run_dir, log, config, data, train_set, val_set = start_run(args, ExpertDataset)
    model = SyncNet(SyncNetDims(width=args.width))
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, best = 0, float("inf")
    last = run_dir / "last.safetensors"
    if args.resume and last.is_file():
        side = load_training_state(last, models={"expert": model}, optimizers={"expert": optimiser},
                                   config=config, force=args.force)
        step, best = side["step"], side["metrics"].get("best_val_loss", float("inf"))
        log(event="resume", step=step)
    net = distributed.wrap(model, ctx)
    if args.contrastive > 0:
        sampler = ClipGroupedBatches(train_set, args.batch_size, args.windows_per_clip, seed=args.seed + ctx.rank)
        train_loader = DataLoader(train_set, batch_sampler=sampler, num_workers=args.workers,
                                  persistent_workers=args.workers > 0)
    else:
        train_loader = loader(train_set, args, ctx, True)
    val_loader = loader(val_set, args, ctx, False)
    extra = {"dims": asdict(model.dims), "data": manifest_hash(data), "kind": "syncnet"}
    started, seen, metrics = time.perf_counter(), 0, {}

    def checkpoint():
        save_training_state(last, models={"expert": model}, optimizers={"expert": optimiser}, step=step,
                            config=config, metrics={**metrics, "best_val_loss": best}, extra=extra)

    net.train()
    for faces, mel, label in forever(train_loader):
        if step >= args.steps or (args.max_minutes and time.perf_counter() - started > 60 * args.max_minutes):
            break
        faces, mel, label = faces.to(ctx.device), mel.to(ctx.device), label.to(ctx.device)
        with autocast(ctx, args.precision):
            audio_emb, face_emb = net(mel, faces)
        audio_emb, face_emb = audio_emb.float(), face_emb.float()
        loss = sync_loss(audio_emb, face_emb, label)
        if args.contrastive > 0:
            in_sync = label > 0.5
            groups = torch.arange(len(label), device=label.device) // args.windows_per_clip
            loss = loss + args.contrastive * contrastive_loss(audio_emb[in_sync], face_emb[in_sync], groups[in_sync])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step += 1
        seen += label.numel() * ctx.world
        if step % args.log_every == 0:
            log(step=step, loss=loss.item(), samples_per_s=seen / (time.perf_counter() - started))
        if step % args.eval_every == 0:
            metrics = {"step": step, **evaluate(net, val_loader, ctx, args.eval_batches, args.precision)}
            log(**metrics)
            if ctx.main:
                if metrics["val_loss"] < best:
                    best = metrics["val_loss"]
                    save_weights(model, run_dir / "best.safetensors", metadata={"step": step, "metrics": metrics,
                                                                                 "data": extra["data"]})
                checkpoint()
    if metrics.get("step") != step:  # every rank evaluates: the metric is all-reduced
        metrics = {"step": step, **evaluate(net, val_loader, ctx, args.eval_batches, args.precision)}
        log(**metrics)
    if ctx.main:
        if metrics["val_loss"] < best:
            best = metrics["val_loss"]
            save_weights(model, run_dir / "best.safetensors", metadata={"step": step, "metrics": metrics})
        checkpoint()
    distributed.teardown()
    return 0


def add_args(p):
    add_common_args(p, default_batch=64)
    p.add_argument("--contrastive", type=float, default=0.0,
                   help="weight of an InfoNCE term among in-sync windows of the same clip, added to the paper's "
                        "BCE (0: the paper's loss alone); batches are then built of --windows-per-clip windows "
                        "from each of batch/windows-per-clip clips")
    p.add_argument("--windows-per-clip", type=int, default=8)


def add_parser(sub):
    p = sub.add_parser("train-expert", help="train the lip-sync expert (SyncNet) on a prepared dataset")
    add_args(p)
    p.set_defaults(run=train)

