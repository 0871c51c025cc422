"""Train the Wav2Lip generator: L1 + a frozen expert's sync loss (+ the visual-quality GAN).

    python main.py train-generator --data PREPARED --expert EXPERT.safetensors --run runs/gen [--gan]

Without --expert there is no sync term (L1, + GAN): speaker adaptation's fallback.

loss_G = (1 − s_w − s_g)·L1 + s_w·E_sync + s_g·L_gen, with s_g = 0.07 under --gan (else 0)
and s_w switched from 0 to 0.03 (0.01 without the GAN) once the eval sync loss drops
below 0.75, as in the paper. The expert sees the lower halves of the 5 generated frames.
Beyond the paper: --unpaired-sync adds the expert's loss on mouths generated to audio from
elsewhere in the clip, and --lip-reader with --shape-weight w adds w·(shape + unpaired shape):
the lip-shape reader (core/models/lip_reader.py) reads the generated mouths, paired and
unpaired, and is compared with what MediaPipe measured on the real frames their audio belongs
to, so closures, rounding and spreading are taught by the audio's own frames.

Called from code (speaker adaptation in the editor), `train(args, progress, cancel)` reports each
step as `progress(step, total)` (total: the --steps cap, or None without one; --max-minutes may end
it sooner) and polls `cancel()` before each step: when it returns true, core.errors.Cancelled is
raised between steps, after the last complete checkpoint (every file written is written whole).
Resume, Ctrl-C and write errors behave as train_expert's docstring says (--resume continues exactly).
"""
import math
import time
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import Cancelled
from core.models.blocks import lower_half
from core.models.discriminator import DiscriminatorDims, QualityDiscriminator
from core.models.lip_reader import luma
from core.models.syncnet import sync_loss, sync_probability
from core.models.wav2lip import GeneratorDims, Wav2Lip
from core.sync import MAX_SHIFT
from core.weights import load_model, save_weights
from training import distributed
from training.checkpoint import load_training_state, manifest_hash, save_training_state, writing
from training.datasets import GeneratorDataset
from training.lip_shape import read_lip_shapes
from training.train_expert import autocast, command, loader, masked_mse, start_run, train_loader
from training.train_lip_reader import reader_features



def generator_input(target: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) ×2 → (B, T, 6, H, W): the target with its lower half blanked, then the reference."""
    masked = target.clone()
    masked[..., target.shape[-2] // 2:, :] = 0
    return torch.cat([masked, reference], dim=2)


def grey(frames: torch.Tensor) -> torch.Tensor:
    """(…, 3, H, W) BGR → its luma (Rec. 601) in all three channels."""
    return luma(frames).expand_as(frames)


def expert_sync_loss(expert, generated: torch.Tensor, sync_mel: torch.Tensor) -> tuple:
    """BCE of the frozen expert against 'in sync' for generated windows (B, T, 3, 96, 96); also P(sync)."""
    faces = lower_half(generated).flatten(1, 2)  # (B, T·3, 48, 96), frame-major like the expert's input
    audio_emb, face_emb = expert(sync_mel, faces)
    target = torch.ones(len(faces), device=faces.device)
    return sync_loss(audio_emb, face_emb, target), sync_probability(audio_emb, face_emb).mean()


def generate_unpaired(gen, batch: dict, ctx, precision: str) -> torch.Tensor:
    """The mouths generated on the target faces to the batch's unpaired audio (another stretch of
    the same clip). No frame shows them: the expert judges their sync, the lip reader their shape
    against the frames that audio belongs to. On one clip (speaker adaptation) the generator can
    otherwise recall each frame's true mouth from the upper half and stop listening; on any data
    it can carry the target's own mouth over from the face around it (the leak): both fail here."""
    with autocast(ctx, precision):
        fake = gen(batch["unpaired_mels"], generator_input(batch["target"], batch["reference"]))
    return fake.float()


def unpaired_sync_loss(expert, fake: torch.Tensor, batch: dict, grey_frames: bool) -> torch.Tensor:
    return expert_sync_loss(expert, grey(fake) if grey_frames else fake, batch["unpaired_sync_mel"])[0]


def shape_loss(reader, generated: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """MSE between the lip reader's reading of generated frames (B, T, 3, 96, 96) and the teacher's
    features of the frames their audio belongs to (B, T, F), in the reader's standardised units;
    unmeasured frames are left out."""
    read = reader(luma(lower_half(generated)).flatten(0, 1))
    return masked_mse(read, reader.standardise(shape.flatten(0, 1)))


def weights_for(args, sync_on: bool) -> tuple:
    s_g = 0.07 if args.gan else 0.0
    paper_s_w = 0.03 if args.gan else 0.01
    s_w = (paper_s_w if args.sync_weight is None else args.sync_weight) if sync_on else 0.0
    return s_w, s_g


@torch.no_grad()
def evaluate(gen, expert, val_loader, ctx, batches: int, precision: str, reader=None) -> dict:
    gen.eval()
    found = {name: [] for name in ("val_l1", "val_sync_loss", "val_sync_prob", "val_unpaired_sync_loss",
                                   "val_shape_loss", "val_unpaired_shape_loss")}
    for n, batch in enumerate(val_loader):
        if n == batches:
            break
        batch = {k: v.to(ctx.device) for k, v in batch.items()}
        with autocast(ctx, precision):
            out = gen(batch["mels"], generator_input(batch["target"], batch["reference"]))
        out = out.float()
        found["val_l1"].append(F.l1_loss(out, batch["target"]).item())
        unpaired = generate_unpaired(gen, batch, ctx, precision) if "unpaired_mels" in batch else None
        if expert is not None:
            sync, prob = expert_sync_loss(expert, out, batch["sync_mel"])
            found["val_sync_loss"].append(sync.item())
            found["val_sync_prob"].append(prob.item())
            if unpaired is not None:
                found["val_unpaired_sync_loss"].append(unpaired_sync_loss(expert, unpaired, batch, False).item())
        if reader is not None:
            found["val_shape_loss"].append(shape_loss(reader, out, batch["shape"]).item())
            if unpaired is not None:
                found["val_unpaired_shape_loss"].append(shape_loss(reader, unpaired, batch["unpaired_shape"]).item())
    gen.train()
    mean = lambda xs: distributed.mean_across(sum(xs) / len(xs), ctx) if xs else float("nan")  # noqa: E731
    return {name: mean(values) for name, values in found.items()
            if values or name in ("val_sync_loss", "val_sync_prob")}


@torch.no_grad()
def evaluate_lse_c(gen, expert, val_set, ctx, windows: int, precision: str) -> dict:
    """The expert's LSE-C of generated validation windows, per window: the median over the
    audio offsets −15..+15 (those inside the clip) of the face–audio distance, minus the
    distance at the best offset (core.sync's protocol on one window); beside it the same for
    the real frames, the ceiling. A generator that lip-syncs brings the first towards the second."""
    gen.eval()
    found = {"val_lse_c": [], "val_lse_c_real": []}
    order = np.random.default_rng(0).permutation(len(val_set))[:windows][ctx.rank::ctx.world]
    for idx in order:
        item, draw = val_set.sample(int(idx))
        mels = torch.from_numpy(val_set.shifted_mels(draw["clip"], draw["start"], MAX_SHIFT)[1]).to(ctx.device)
        target = item["target"][None].to(ctx.device)
        with autocast(ctx, precision):
            fake = gen(item["mels"][None].to(ctx.device), generator_input(target, item["reference"][None].to(ctx.device)))
            audio = F.normalize(expert.audio_encoder(mels).flatten(1).float(), dim=1)
            for name, frames in (("val_lse_c", fake.float()), ("val_lse_c_real", target)):
                face = F.normalize(expert.face_encoder(lower_half(frames).flatten(1, 2)).flatten(1).float(), dim=1)
                dist = (face - audio).norm(dim=1)
                found[name].append((dist.median() - dist.min()).item())
    gen.train()
    return {k: distributed.mean_across(float(np.mean(v)) if v else float("nan"), ctx) for k, v in found.items()}


def train(args, progress=None, cancel=None) -> int:
    if args.unpaired_sync and not args.expert:
        raise SystemExit("train-generator: --unpaired-sync needs --expert (only the expert judges unpaired windows)")
    if bool(args.shape_weight) != bool(args.lip_reader):
        raise SystemExit("train-generator: --shape-weight and --lip-reader go together")
    reader = load_model(args.lip_reader, expect="lip_reader") if args.lip_reader else None
    both = {"unpaired": args.unpaired_sync > 0 or reader is not None}
    if reader is not None:  # the teacher's features in the reader's own basis
        reader.requires_grad_(False)
        both["shapes"] = reader_features(reader, read_lip_shapes(args.data))
    draws = {"epoch_size": 1 << 30} if args.balance_speakers else {}  # random draws, weighted by clip
    ctx, run_dir, log, config, data, train_set, val_set = start_run(args, GeneratorDataset, both=both, **draws)
    if args.balance_speakers:
        train_set.balance_speakers()
    if reader is not None:
        reader = reader.to(ctx.device)

    expert = load_model(args.expert, expect="syncnet", device=ctx.device) if args.expert else None
    if expert is not None:
        expert.requires_grad_(False)
    gen = Wav2Lip(GeneratorDims(width=args.width))
    if args.init:
        gen.load_state_dict(load_model(args.init, expect="wav2lip").state_dict())
    gen = gen.to(memory_format=torch.channels_last)  # much faster transposed convs on CPU
    disc = QualityDiscriminator(DiscriminatorDims(width=args.width)) if args.gan else None
    opt_g = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr, betas=(0.5, 0.999)) if disc else None
    models = {"generator": gen, **({"discriminator": disc} if disc else {})}
    optimisers = {"generator": opt_g, **({"discriminator": opt_d} if opt_d else {})}

    step, best = 0, float("inf")
    sync_on = expert is not None and math.isinf(args.sync_switch)  # inf: on from the first step
    last = run_dir / "last.safetensors"
    if args.resume and last.is_file():
        side = load_training_state(last, models=models, optimizers=optimisers, config=config, force=args.force)
        step, best = side["step"], side["metrics"].get("best", float("inf"))
        sync_on = side["metrics"].get("sync_on", False)
        log(event="resume", step=step)
    net_g = distributed.wrap(gen, ctx)
    net_d = distributed.wrap(disc, ctx) if disc else None
    batches = iter(train_loader(train_set, args, ctx, args.batch_size, step))
    val_loader = loader(val_set, args, ctx)
    extra = {"dims": asdict(gen.dims), "data": manifest_hash(data), "kind": "wav2lip",
             "expert": str(args.expert), "lip_reader": str(args.lip_reader)}
    started, seen, metrics = time.perf_counter(), 0, {}

    def checkpoint():
        save_training_state(last, models=models, optimizers=optimisers, step=step, config=config,
                            metrics={**metrics, "best": best, "sync_on": sync_on}, extra=extra)

    def export(name):
        with writing(run_dir / name, "weights not saved"):
            save_weights(gen, run_dir / name, metadata={"step": step, "metrics": metrics, "data": extra["data"],
                                                        "gan": bool(args.gan)})

    def validate():
        found = {"step": step, **evaluate(net_g, expert, val_loader, ctx, args.eval_batches, args.precision, reader)}
        if expert is not None:
            found.update(evaluate_lse_c(gen, expert, val_set, ctx, 4 * args.eval_batches, args.precision))
        return found

    total = args.steps or None
    # the stop test comes before the next batch is drawn: nothing is drawn that a resume would redo
    while step < args.steps and not (args.max_minutes and time.perf_counter() - started > 60 * args.max_minutes):
        if cancel is not None and cancel():
            distributed.teardown()
            raise Cancelled("training cancelled")
        batch = {k: v.to(ctx.device) for k, v in next(batches).items()}
        target = batch["target"]
        s_w, s_g = weights_for(args, sync_on)
        with autocast(ctx, args.precision):
            fake = net_g(batch["mels"], generator_input(target, batch["reference"]))
        fake = fake.float()
        l1 = F.l1_loss(fake, target)
        judged = grey(fake) if args.sync_grey else fake
        sync = expert_sync_loss(expert, judged, batch["sync_mel"])[0] if s_w > 0 else torch.zeros((), device=fake.device)
        adversarial = adversarial_term(net_d, fake, ctx, args.precision) if net_d is not None \
            else torch.zeros((), device=fake.device)
        loss = (1 - s_w - s_g) * l1 + s_w * sync + s_g * adversarial
        zero = torch.zeros((), device=fake.device)
        unpaired, shape, unpaired_shape = zero, zero, zero
        if "unpaired_mels" in batch:
            unpaired_fake = generate_unpaired(net_g, batch, ctx, args.precision)
            if args.unpaired_sync:
                unpaired = unpaired_sync_loss(expert, unpaired_fake, batch, args.sync_grey)
                loss = loss + args.unpaired_sync * unpaired
            if reader is not None:
                unpaired_shape = shape_loss(reader, unpaired_fake, batch["unpaired_shape"])
        if reader is not None:
            shape = shape_loss(reader, fake, batch["shape"])
            loss = loss + args.shape_weight * (shape + unpaired_shape)
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        if net_d is not None:
            with autocast(ctx, args.precision):
                real_pred, fake_pred = net_d(target).float(), net_d(fake.detach()).float()
            d_loss = F.binary_cross_entropy(real_pred, torch.ones_like(real_pred)) + \
                F.binary_cross_entropy(fake_pred, torch.zeros_like(fake_pred))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        step += 1
        seen += target.shape[0] * ctx.world
        if progress is not None:
            progress(step, total)
        if step % args.log_every == 0:
            log(step=step, l1=l1.item(), sync=sync.item(), gan=adversarial.item(), unpaired=unpaired.item(),
                shape=shape.item(), unpaired_shape=unpaired_shape.item(), samples_per_s=seen / (time.perf_counter() - started))
        if step % args.eval_every == 0:
            metrics = validate()
            if not sync_on and metrics["val_sync_loss"] < args.sync_switch:
                sync_on, best = True, float("inf")  # the score below changes meaning: L1 alone -> L1 + sync
            log(**metrics, sync_on=sync_on)
            if ctx.main:
                score = metrics["val_l1"] + (metrics["val_sync_loss"] if sync_on else 0.0) + \
                    (metrics["val_unpaired_sync_loss"] if args.unpaired_sync else 0.0) + \
                    args.shape_weight * (metrics.get("val_shape_loss", 0.0) + metrics.get("val_unpaired_shape_loss", 0.0))
                if score < best:
                    best = score
                    export("best.safetensors")
                checkpoint()
    if metrics.get("step") != step:  # every rank evaluates: the metric is all-reduced
        metrics = validate()
        log(**metrics)
    if ctx.main:
        export("final.safetensors")
        checkpoint()
    distributed.teardown()
    return 0


def adversarial_term(net_d, fake, ctx, precision):
    """The generator's adversarial term: BCE of D(fake) against 'real', through the (maybe DDP) D.
    D runs under the trainer's autocast (its 3 passes a step cost more than the generator's in
    fp32 on CPU); the BCE stays in fp32, outside it (unsafe under autocast)."""
    with autocast(ctx, precision):
        pred = net_d(fake)
    pred = pred.float()
    return F.binary_cross_entropy(pred, torch.ones_like(pred))


run = command(train)  # the train-generator command (training/cli.py)
