"""Train the lip-sync expert (SyncNet): cosine-BCE on 5-frame lower halves vs 0.2 s of mel.

    python main.py train-expert --data PREPARED --run runs/expert [--width 0.5] [--max-minutes 30]
    torchrun --nproc-per-node N main.py train-expert --data PREPARED --run-dir runs/expert ...   (N GPUs/processes)

Two objectives:
* `--objective paper`: the paper's. Half the samples are in sync, half take the mel of
  another moment (>= 5 frames away) of the same clip.
* `--objective offsets` (default): batches of stretches of K consecutive windows; the same
  cosine-BCE (pairs >= 5 frames off as negatives) plus InfoNCE over the stretch's offsets.
  Each step then contrasts every window with its nearby offsets, which is what LSE-C and the
  AV offset measure. A training-only head also has the face embedding predict a per-frame
  target (--aux): the audio's loudness, or the lip aperture measured by MediaPipe Face Mesh
  (training/lip_shape.py), which points the face encoder at the lips: with our 8 minutes
  of data the paper's objective stayed at chance for 500 steps, and the offset objective
  alone for 600 (notes on issue 3).
Validation (held-out speakers) always reports the paper's figures: off-sync accuracy and
BCE on 50 % in-sync / 50 % off-sync pairs, and beside them the ROC AUC of the same pairs; the
best checkpoint by that loss is exported as `best.safetensors` (loadable by
core.weights.load_model). `--av-offsets FILE` trains on
clips shifted by their measured AV offsets (python main.py offsets), as does train-generator.

Data and resume (both trainers): the training items are a function of (--seed, rank, world
size, step) alone (DrawSampler), not of any process's random state, and RUN/last.safetensors
holds the models, the optimisers and the torch RNG. So `--resume` continues exactly: N steps
in one go and N/2 steps then a resume to N end with the same weights (tests/
test_trainer_robustness.py), whatever the evaluation schedule, the --workers count or the
device, as long as the computation itself is deterministic (CPU; cuDNN may not be). Ctrl-C
(or SIGTERM, SIGHUP) stops between file writes: RUN/last.safetensors stays the last complete
checkpoint (exit 130; 143, 129); a run folder that cannot be written, or a full disk, stops with
one line naming the file (exit 1), the previous checkpoint untouched.
"""
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from core.atomic import interrupted_status
from core.errors import Cancelled, WeightsError
from core.models.blocks import scaled
from core.models.syncnet import SyncNet, SyncNetDims, offset_losses, sync_loss, sync_probability
from core.weights import load_model, save_weights
from training import distributed
from training.checkpoint import (check_run_dir, load_model_state, load_training_state, manifest_hash,
                                 save_training_state, writing)
from training.datasets import Augment, ExpertDataset, StretchDataset, read_av_offsets


class DrawSampler(Sampler):
    """The endless training stream as a function of the step, so that a resume continues it.

    Item i of this rank's stream is item g = i * world + rank of one global stream (the ranks
    split every step's items between them); it yields (index, entropy): the index walks a fresh
    permutation of the windows each pass (seeded by (seed, pass); `shuffle=False`, for datasets
    that draw their windows at random, just counts), and the entropy, a hash of (seed, g), feeds
    the item's random draws (training/datasets.py: label, other window, augmentation) instead
    of the loading process's torch RNG. `start`: the first item of this rank (step * batch)."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1, start: int = 0, shuffle: bool = True):
        self.n, self.seed, self.rank, self.world = int(n), int(seed) % (1 << 63), int(rank), int(world)
        self.start, self.shuffle = int(start), bool(shuffle)

    def __iter__(self):
        i, order, current = self.start, None, -1
        while True:
            g = i * self.world + self.rank
            if self.shuffle:
                rounds, at = divmod(g, self.n)
                if rounds != current:
                    order, current = np.random.default_rng([self.seed, rounds]).permutation(self.n), rounds
                index = int(order[at])
            else:
                index = g % self.n
            yield index, int(np.random.SeedSequence([self.seed, g]).generate_state(1, np.uint64)[0] >> 2)
            i += 1


class Drawn(Dataset):
    """A training dataset indexed by DrawSampler's (index, entropy) pairs."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        index, entropy = key
        return self.dataset.sample(index, entropy)[0]


def train_loader(dataset, args, ctx, batch: int, start_step: int) -> DataLoader:
    """Batches of `batch` items from DrawSampler, starting at step `start_step` (a resume's)."""
    sampler = DrawSampler(len(dataset), args.seed, ctx.rank, ctx.world, start=start_step * batch,
                          shuffle=getattr(dataset, "epoch_size", None) is None)
    return DataLoader(Drawn(dataset), batch_size=batch, sampler=sampler, num_workers=args.workers,
                      pin_memory=ctx.device.type == "cuda", generator=torch.Generator().manual_seed(args.seed))


def loader(dataset, args, ctx):
    """Validation: one fixed random order, so every evaluation sees the same windows and its
    figures compare across steps. Its own generator: iterating it draws nothing from the
    torch RNG, so evaluating does not change the training."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(args.seed + 1)).tolist()
    return DataLoader(dataset, batch_size=args.batch_size, sampler=order[ctx.rank::ctx.world],
                      num_workers=args.workers, pin_memory=ctx.device.type == "cuda",
                      generator=torch.Generator().manual_seed(args.seed))


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
        with writing(self.path, "cannot write the log"), open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        print("  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()),
              flush=True)


@torch.no_grad()
def evaluate(model, val_loader, ctx, batches: int, precision: str) -> dict:
    model.eval()
    losses, correct, total, probs, labels = [], 0, 0, [], []
    for n, (faces, mel, label) in enumerate(val_loader):
        if n == batches:
            break
        faces, mel, label = faces.to(ctx.device), mel.to(ctx.device), label.to(ctx.device)
        with autocast(ctx, precision):
            audio_emb, face_emb = model(mel, faces)
        audio_emb, face_emb = audio_emb.float(), face_emb.float()
        losses.append(sync_loss(audio_emb, face_emb, label).item())
        prob = sync_probability(audio_emb, face_emb)
        correct += ((prob > 0.5) == (label > 0.5)).sum().item()
        total += label.numel()
        probs.append(prob.cpu()), labels.append(label.cpu())
    model.train()
    loss = distributed.mean_across(sum(losses) / max(len(losses), 1), ctx)
    auc = roc_auc(torch.cat(probs), torch.cat(labels)) if probs else float("nan")
    return {"val_loss": loss, "val_accuracy": distributed.mean_across(correct / max(total, 1), ctx),
            "val_auc": distributed.mean_across(auc, ctx)}


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve: the chance that an in-sync pair scores above an off-sync one
    (ties count half). Unlike the accuracy at P = 0.5 it does not depend on the expert's
    calibration, which drifts between training and held-out speakers. NaN without both labels."""
    positive = labels > 0.5
    pos, neg = scores[positive].double(), scores[~positive].double()
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    # every pair once: the validation set is a few thousand windows at most
    above = (pos[:, None] > neg[None, :]).double() + 0.5 * (pos[:, None] == neg[None, :]).double()
    return float(above.mean())


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE over the finite targets (NaN: not measured); 0, still in the graph, when none is."""
    known = torch.isfinite(target)
    return F.mse_loss(pred[known], target[known]) if known.any() else pred.sum() * 0


def start_run(args, dataset_cls, both: dict | None = None, **train_options):
    """What every trainer sets up first: process group, seed, run folder, log, config, datasets
    (`both`: options for the training and the validation set; `train_options` for the training set
    alone; train_cls: another class for it). Every rank seeds torch alike (the same initial
    weights, training-only heads included); the ranks' data differ through DrawSampler."""
    run_dir = check_run_dir(args.run_dir)  # fail at once on a read-only folder, not at the first save
    ctx = distributed.setup(args.device)
    torch.manual_seed(args.seed)
    config = {k: v for k, v in vars(args).items() if k not in ("run", "command")}
    data = Path(args.data)
    offsets = read_av_offsets(args.av_offsets) if args.av_offsets else None
    train_cls = train_options.pop("train_cls", dataset_cls)
    both = both or {}
    train_set = train_cls(data, data / "filelists" / "train.txt", train=True, av_offsets=offsets, **both,
                          **train_options)
    val_set = dataset_cls(data, data / "filelists" / "val.txt", train=False, av_offsets=offsets, **both)
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


def face_encoder_state(path) -> dict:
    """The face encoder of an exported expert, or of a training checkpoint (RUN/last.safetensors)."""
    sidecar = json.loads(Path(path).with_suffix(".json").read_text()) if Path(path).with_suffix(".json").is_file() else {}
    if "layout" not in sidecar:
        return load_model(path, expect="syncnet").face_encoder.state_dict()
    prefix = "face_encoder."
    return {k[len(prefix):]: v for k, v in load_model_state(path, "expert").items() if k.startswith(prefix)}


def train(args, progress=None, cancel=None) -> int:
    """progress(step, total) after each step, cancel() polled before each (raises Cancelled between
    steps), as train_generator.train: speaker adaptation runs it from the editor."""
    stretch = args.objective == "offsets"
    if stretch and args.stretch <= 5:  # no pair >= 5 frames apart: the BCE term would be NaN, and the weights
        raise ValueError(f"--stretch {args.stretch}: the offsets objective needs at least 6 windows per stretch")
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
    if args.init:  # fine-tuning a trained expert (speaker adaptation)
        trained = load_model(args.init, expect="syncnet")
        if trained.dims != model.dims:
            raise WeightsError(args.init, f"an expert of width {trained.dims.width:g} (--init); give --width "
                                          f"{trained.dims.width:g}, not {args.width:g}")
        model.load_state_dict(trained.state_dict())
    if args.init_face:  # a face encoder that already sees the lips (same width)
        model.face_encoder.load_state_dict(face_encoder_state(args.init_face))
    # training-only head: the face embedding predicts its frames' auxiliary target (StretchDataset)
    aux_size = model.dims.frames * (train_set.aux_features if stretch else 1)
    aux_head = torch.nn.Linear(scaled(512, args.width), aux_size).to(ctx.device)
    audio_aux_head = torch.nn.Linear(scaled(512, args.width), aux_size).to(ctx.device)
    models = {"expert": model, **({"aux_head": aux_head} if stretch and args.aux_weight else {}),
              **({"audio_aux_head": audio_aux_head} if stretch and args.aux_weight and args.aux_from == "both" else {})}
    # group 0, the face encoder, is the one --freeze-face stops (lr 0 also stops AdamW's decay)
    others = [p for name, m in models.items() for p in (m.audio_encoder.parameters() if name == "expert"
                                                         else m.parameters())]
    optimiser = torch.optim.AdamW([{"params": list(model.face_encoder.parameters())}, {"params": others}],
                                  lr=args.lr, weight_decay=args.weight_decay)
    step, best = 0, float("inf")
    last = run_dir / "last.safetensors"
    if args.resume and last.is_file():
        side = load_training_state(last, models=models, optimizers={"expert": optimiser},
                                   config=config, force=args.force)
        step, best = side["step"], side["metrics"].get("best_val_loss", float("inf"))
        log(event="resume", step=step)
    net = distributed.wrap(model, ctx)
    head_params = [p for name, m in models.items() if name != "expert" for p in m.parameters()]  # outside DDP
    # offsets: a batch is batch-size / stretch stretches, each drawn at random by the dataset
    batches = iter(train_loader(train_set, args, ctx, max(1, args.batch_size // args.stretch) if stretch
                                else args.batch_size, step))
    val_loader = loader(val_set, args, ctx)
    extra = {"dims": asdict(model.dims), "data": manifest_hash(data), "kind": "syncnet"}
    started, seen, metrics = time.perf_counter(), 0, {}

    def checkpoint():
        save_training_state(last, models=models, optimizers={"expert": optimiser}, step=step,
                            config=config, metrics={**metrics, "best_val_loss": best}, extra=extra)

    def export_best():
        with writing(run_dir / "best.safetensors", "best weights not saved"):
            save_weights(model, run_dir / "best.safetensors", metadata={"step": step, "metrics": metrics,
                                                                         "data": extra["data"]})

    def validate():
        result = {"step": step, **evaluate(net, val_loader, ctx, args.eval_batches, args.precision)}
        if stretch:
            result.update(evaluate_offsets(net, val_stretches, ctx, args.eval_batches * 4, 8, args.precision))
        return result

    def validate_and_save():
        """Every rank evaluates (the metrics are all-reduced); rank 0 exports a new best and checkpoints."""
        nonlocal metrics, best
        metrics = validate()
        log(**metrics)
        if ctx.main:
            if metrics["val_loss"] < best:
                best = metrics["val_loss"]
                export_best()
            checkpoint()

    def set_phase():
        """--face-warmup / --freeze-face: a function of the step alone, so a resume lands in the same phase."""
        frozen = args.freeze_face and step >= args.face_warmup
        optimiser.param_groups[0]["lr"] = 0.0 if frozen else args.lr
        net.train()
        if frozen:  # fixed BatchNorm statistics too: the audio encoder learns against a still target
            model.face_encoder.eval()
        return step < args.face_warmup

    # the stop test comes before the next batch is drawn: nothing is drawn that a resume would redo
    while step < args.steps and not (args.max_minutes and time.perf_counter() - started > 60 * args.max_minutes):
        if cancel is not None and cancel():
            distributed.teardown()
            raise Cancelled("training cancelled")
        warming_up = set_phase()
        batch = [t.to(ctx.device) for t in next(batches)]
        if stretch:
            faces, mels, aux = batch
            G, K = faces.shape[:2]
            with autocast(ctx, args.precision):
                audio_emb, face_emb = net(mels.flatten(0, 1), faces.flatten(0, 1))
            bce, nce = offset_losses(audio_emb.float().view(G, K, -1), face_emb.float().view(G, K, -1))
            # warm-up: the auxiliary target alone (kept in the graph at weight 0 for DDP's gradient sync)
            loss = (0.0 if warming_up else 1.0) * (bce + args.nce * nce)
            parts = {"bce": bce.item(), "nce": nce.item()}
            if args.aux_weight:
                target = aux.flatten(0, 1)
                # the embedding is a unit vector: scaled by sqrt(D) its coordinates have unit
                # variance, so the head does not need to grow its weights ~sqrt(D)x first
                scale = face_emb.shape[1] ** 0.5
                heads = [(aux_head, face_emb)] + ([(audio_aux_head, audio_emb)] if args.aux_from == "both" else [])
                aux_loss = sum(masked_mse(head(emb.float() * scale), target) for head, emb in heads)
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
        distributed.average_gradients(head_params, ctx)  # DDP averages the expert's; the heads are not in it
        optimiser.step()
        step += 1
        seen += len(faces.flatten(0, 1) if stretch else faces) * ctx.world
        if progress is not None:
            progress(step, args.steps or None)
        if step % args.log_every == 0:
            log(step=step, loss=loss.item(), **parts, samples_per_s=seen / (time.perf_counter() - started))
        if step % args.eval_every == 0:
            validate_and_save()
    if metrics.get("step") != step:  # the last step was not evaluated (and saved) in the loop
        validate_and_save()
    distributed.teardown()
    return 0


def command(train_fn):
    """The CLI entry of a trainer: a stop signal ends it with the signal's exit status (130 for
    Ctrl-C; core.atomic.interrupted_status) and a line saying which checkpoint stays (main.py's
    generic "nothing was written" would be wrong here); the process group is left in every case.
    Called from code, train() itself raises as usual."""
    def run(args) -> int:
        try:
            return train_fn(args)
        except KeyboardInterrupt:
            last = Path(args.run_dir) / "last.safetensors"
            try:
                step = json.loads(last.with_suffix(".json").read_text())["step"]
                kept = f"{last} (step {step}) is the last checkpoint; --resume continues from it"
            except (OSError, ValueError, KeyError):
                kept = f"no checkpoint was written yet ({last})"
            print(f"interrupted: {kept}", file=sys.stderr)
            return interrupted_status()
        finally:
            distributed.teardown()
    return run


run = command(train)  # the train-expert command (training/cli.py)
