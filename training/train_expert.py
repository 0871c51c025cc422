"""Train the lip-sync expert (SyncNet): cosine-BCE on 5-frame lower halves vs 0.2 s of mel.

    python main.py train-expert --data PREPARED --run runs/expert [--width 0.5] [--max-minutes 30]

Two objectives:
* `--objective paper`: the paper's. Half the samples are in sync, half take the mel of
  another moment (>= 5 frames away) of the same clip.
* `--objective offsets` (default): batches of stretches of K consecutive windows; the same
  cosine-BCE (pairs >= 5 frames off as negatives) plus InfoNCE over the stretch's offsets.
  Each step then contrasts every window with its nearby offsets, which is what LSE-C and the
  AV offset measure. A training-only head also has the face embedding predict a per-frame
  target (--aux): the audio's loudness, or the lip aperture measured by MediaPipe Face Mesh
  (training/lip_aperture.py), which points the face encoder at the lips: with our 8 minutes
  of data the paper's objective stayed at chance for 500 steps, and the offset objective
  alone for 600 (notes on issue 3).
Validation (held-out speakers) always reports the paper's figures: off-sync accuracy and
BCE on 50 % in-sync / 50 % off-sync pairs; the best checkpoint by that loss is exported as
`best.safetensors` (loadable by core.weights.load_model). `--av-offsets FILE` trains on
clips shifted by their measured AV offsets (python main.py offsets), as does train-generator.
"""
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from core.models.blocks import scaled
from core.models.syncnet import SyncNet, SyncNetDims, offset_losses, sync_loss, sync_probability
from core.weights import save_weights
from training import distributed
from training.checkpoint import load_training_state, manifest_hash, save_training_state
from training.datasets import Augment, ExpertDataset, StretchDataset, read_av_offsets


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
    p.add_argument("--av-offsets", help="JSON of per-clip AV offsets (python main.py offsets): train and validate "
                   "on the corrected clips")
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


def start_run(args, dataset_cls, **train_options):
    """What every trainer sets up first: process group, seed, run folder, log, config, datasets
    (`train_options` go to the training set; train_cls: another class for it)."""
    ctx = distributed.setup(args.device)
    torch.manual_seed(args.seed + ctx.rank)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k not in ("run", "command")}
    data = Path(args.data)
    offsets = read_av_offsets(args.av_offsets) if args.av_offsets else None
    train_cls = train_options.pop("train_cls", dataset_cls)
    train_set = train_cls(data, data / "filelists" / "train.txt", train=True, av_offsets=offsets, **train_options)
    val_set = dataset_cls(data, data / "filelists" / "val.txt", train=False, av_offsets=offsets)
    return ctx, run_dir, Log(run_dir, ctx.main), config, data, train_set, val_set


@torch.no_grad()
def evaluate_offsets(model, val_set, ctx, stretches: int, batch: int, precision: str) -> dict:
    """Share of validation face windows whose best-matching mel among their stretch's offsets
    is their own, within one frame (the same fixed stretches at every evaluation)."""
    model.eval()
    hits = total = 0
    order = np.random.default_rng(0).permutation(len(val_set))[:stretches][ctx.rank::ctx.world]
    for first in range(0, len(order), batch):
        items = [val_set[int(i)] for i in order[first:first + batch]]
        faces = torch.stack([item[0] for item in items]).to(ctx.device)
        mels = torch.stack([item[1] for item in items]).to(ctx.device)
        G, K = faces.shape[:2]
        with autocast(ctx, precision):
            audio_emb, face_emb = model(mels.flatten(0, 1), faces.flatten(0, 1))
        cos = torch.einsum("gkd,gjd->gkj", face_emb.float().view(G, K, -1), audio_emb.float().view(G, K, -1))
        hits += ((cos.argmax(-1) - torch.arange(K, device=cos.device)).abs() <= 1).sum().item()
        total += G * K
    model.train()
    return {"val_offset_accuracy": distributed.mean_across(hits / max(total, 1), ctx)}


def train(args) -> int:
    stretch = args.objective == "offsets"
    options = {}
    if stretch:
        options = {"train_cls": StretchDataset, "stretch": args.stretch, "epoch_size": 1 << 30, "aux": args.aux}
    options["augment"] = Augment(mel_warp=args.mel_warp, freq_mask=args.freq_mask)
    ctx, run_dir, log, config, data, train_set, val_set = start_run(args, ExpertDataset, **options)
    if args.balance_speakers:
        if train_set.epoch_size is None:
            raise SystemExit("train-expert: --balance-speakers needs the offsets objective (random draws)")
        train_set.balance_speakers()
    val_stretches = StretchDataset(data, data / "filelists" / "val.txt", train=False, stretch=args.stretch,
                                   av_offsets=val_set.av_offsets) if stretch else None
    model = SyncNet(SyncNetDims(width=args.width))
    # training-only head: the face embedding predicts its frames' auxiliary target (StretchDataset)
    aux_head = torch.nn.Linear(scaled(512, args.width), model.dims.frames).to(ctx.device)
    audio_aux_head = torch.nn.Linear(scaled(512, args.width), model.dims.frames).to(ctx.device)
    models = {"expert": model, **({"aux_head": aux_head} if stretch and args.aux_weight else {}),
              **({"audio_aux_head": audio_aux_head} if stretch and args.aux_weight and args.aux_from == "both" else {})}
    optimiser = torch.optim.AdamW([p for m in models.values() for p in m.parameters()], lr=args.lr,
                                  weight_decay=args.weight_decay)
    step, best = 0, float("inf")
    last = run_dir / "last.safetensors"
    if args.resume and last.is_file():
        side = load_training_state(last, models=models, optimizers={"expert": optimiser},
                                   config=config, force=args.force)
        step, best = side["step"], side["metrics"].get("best_val_loss", float("inf"))
        log(event="resume", step=step)
    net = distributed.wrap(model, ctx)
    if stretch:  # batch = stretches; the dataset draws them at random (seeded per process)
        groups = max(1, args.batch_size // args.stretch)
        train_loader = DataLoader(train_set, batch_size=groups, num_workers=args.workers,
                                  persistent_workers=args.workers > 0)
    else:
        train_loader = loader(train_set, args, ctx, True)
    val_loader = loader(val_set, args, ctx, False)
    extra = {"dims": asdict(model.dims), "data": manifest_hash(data), "kind": "syncnet"}
    started, seen, metrics = time.perf_counter(), 0, {}

    def checkpoint():
        save_training_state(last, models=models, optimizers={"expert": optimiser}, step=step,
                            config=config, metrics={**metrics, "best_val_loss": best}, extra=extra)

    def validate():
        result = {"step": step, **evaluate(net, val_loader, ctx, args.eval_batches, args.precision)}
        if stretch:
            result.update(evaluate_offsets(net, val_stretches, ctx, args.eval_batches * 4, 8, args.precision))
        return result

    net.train()
    for batch in forever(train_loader):
        if step >= args.steps or (args.max_minutes and time.perf_counter() - started > 60 * args.max_minutes):
            break
        batch = [t.to(ctx.device) for t in batch]
        if stretch:
            faces, mels, aux = batch
            G, K = faces.shape[:2]
            with autocast(ctx, args.precision):
                audio_emb, face_emb = net(mels.flatten(0, 1), faces.flatten(0, 1))
            bce, nce = offset_losses(audio_emb.float().view(G, K, -1), face_emb.float().view(G, K, -1))
            loss = bce + args.nce * nce
            parts = {"bce": bce.item(), "nce": nce.item()}
            if args.aux_weight:
                target = aux.flatten(0, 1)
                known = torch.isfinite(target)
                # the embedding is a unit vector: scaled by sqrt(D) its coordinates have unit
                # variance, so the head does not need to grow its weights ~sqrt(D)x first
                scale = face_emb.shape[1] ** 0.5
                heads = [(aux_head, face_emb)] + ([(audio_aux_head, audio_emb)] if args.aux_from == "both" else [])
                aux_loss = sum(F.mse_loss(head(emb.float() * scale)[known], target[known]) for head, emb in heads) \
                    if known.any() else torch.zeros((), device=target.device)
                loss = loss + args.aux_weight * aux_loss
                parts[args.aux] = aux_loss.item()
        else:
            faces, mel, label = batch
            with autocast(ctx, args.precision):
                audio_emb, face_emb = net(mel, faces)
            loss = sync_loss(audio_emb.float(), face_emb.float(), label)
            parts = {}
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step += 1
        seen += len(faces.flatten(0, 1) if stretch else faces) * ctx.world
        if step % args.log_every == 0:
            log(step=step, loss=loss.item(), **parts, samples_per_s=seen / (time.perf_counter() - started))
        if step % args.eval_every == 0:
            metrics = validate()
            log(**metrics)
            if ctx.main:
                if metrics["val_loss"] < best:
                    best = metrics["val_loss"]
                    save_weights(model, run_dir / "best.safetensors", metadata={"step": step, "metrics": metrics,
                                                                                 "data": extra["data"]})
                checkpoint()
    if metrics.get("step") != step:  # every rank evaluates: the metric is all-reduced
        metrics = validate()
        log(**metrics)
    if ctx.main:
        if metrics["val_loss"] < best:
            best = metrics["val_loss"]
            save_weights(model, run_dir / "best.safetensors", metadata={"step": step, "metrics": metrics,
                                                                         "data": extra["data"]})
        checkpoint()
    distributed.teardown()
    return 0


def add_args(p):
    add_common_args(p, default_batch=64)
    p.add_argument("--objective", choices=["offsets", "paper"], default="offsets",
                   help="offsets: stretches of consecutive windows, cosine-BCE + InfoNCE over offsets (default); "
                        "paper: the paper's 50/50 in-sync/off-sync cosine-BCE")
    p.add_argument("--stretch", type=int, default=16, help="windows per stretch (offsets objective); "
                   "the batch holds batch-size / stretch stretches")
    p.add_argument("--nce", type=float, default=1.0, help="weight of the InfoNCE term (offsets objective)")
    p.add_argument("--aux", choices=["loudness", "aperture"], default="loudness",
                   help="auxiliary per-frame target the face embedding predicts (offsets objective): the audio's "
                        "loudness, or the lip aperture of DATA/lip_aperture.npz (training/lip_aperture.py)")
    p.add_argument("--aux-weight", type=float, default=1.0, help="weight of the auxiliary loss (0: off)")
    p.add_argument("--aux-from", choices=["face", "both"], default="face",
                   help="which embeddings predict the auxiliary target: the face's, or the audio's as well (so both "
                        "share a 'mouth opening over time' subspace)")
    # against memorising 30 training voices: the audio encoder must hear new speakers
    p.add_argument("--mel-warp", type=float, default=0.0,
                   help="vocal-tract-length augmentation: warp the mel axis by a factor in [1 - w, 1 + w]")
    p.add_argument("--freq-mask", type=int, default=0, help="SpecAugment: mask one band of up to N mel bins")
    p.add_argument("--balance-speakers", action="store_true",
                   help="draw speakers by the square root of their material (offsets objective)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")


def add_parser(sub):
    p = sub.add_parser("train-expert", help="train the lip-sync expert (SyncNet) on a prepared dataset")
    add_args(p)
    p.set_defaults(run=train)

