"""Train the Wav2Lip generator: L1 + a frozen expert's sync loss (+ the visual-quality GAN).

    python main.py train-generator --data PREPARED --expert EXPERT.safetensors --run runs/gen [--gan]

Without --expert there is no sync term (L1, + GAN): speaker adaptation's fallback.

loss_G = (1 − s_w − s_g)·L1 + s_w·E_sync + s_g·L_gen, with s_g = 0.07 under --gan (else 0)
and s_w switched from 0 to 0.03 (0.01 without the GAN) once the eval sync loss drops
below 0.75, as in the paper. The expert sees the lower halves of the 5 generated frames.

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
from core.models.syncnet import sync_loss, sync_probability
from core.models.wav2lip import GeneratorDims, Wav2Lip
from core.sync import MAX_SHIFT
from core.weights import load_model, save_weights
from training import distributed
from training.checkpoint import load_training_state, manifest_hash, save_training_state, writing
from training.datasets import GeneratorDataset
from training.train_expert import autocast, command, loader, start_run, train_loader



def generator_input(target: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) ×2 → (B, T, 6, H, W): the target with its lower half blanked, then the reference."""
    masked = target.clone()
    masked[..., target.shape[-2] // 2:, :] = 0
    return torch.cat([masked, reference], dim=2)


def grey(frames: torch.Tensor) -> torch.Tensor:
    """(…, 3, H, W) BGR → its luma (Rec. 601) in all three channels."""
    luma = (frames * frames.new_tensor([0.114, 0.587, 0.299])[:, None, None]).sum(-3, keepdim=True)
    return luma.expand_as(frames)


def expert_sync_loss(expert, generated: torch.Tensor, sync_mel: torch.Tensor) -> tuple:
    """BCE of the frozen expert against 'in sync' for generated windows (B, T, 3, 96, 96); also P(sync)."""
    faces = lower_half(generated).flatten(1, 2)  # (B, T·3, 48, 96), frame-major like the expert's input
    audio_emb, face_emb = expert(sync_mel, faces)
    target = torch.ones(len(faces), device=faces.device)
    return sync_loss(audio_emb, face_emb, target), sync_probability(audio_emb, face_emb).mean()


def unpaired_sync_loss(gen, expert, batch: dict, ctx, precision: str, grey_frames: bool) -> torch.Tensor:
    """The expert's sync loss for the mouth generated to the batch's unpaired audio (another
    stretch of the same clip): no frame shows that mouth, so only the expert can judge it. On one
    clip (speaker adaptation) the generator can otherwise recall each frame's true mouth from the
    upper half and stop listening; this term fails such a generator."""
    with autocast(ctx, precision):
        fake = gen(batch["unpaired_mels"], generator_input(batch["target"], batch["reference"]))
    fake = fake.float()
    return expert_sync_loss(expert, grey(fake) if grey_frames else fake, batch["unpaired_sync_mel"])[0]


def weights_for(args, sync_on: bool) -> tuple:
    s_g = 0.07 if args.gan else 0.0
    paper_s_w = 0.03 if args.gan else 0.01
    s_w = (paper_s_w if args.sync_weight is None else args.sync_weight) if sync_on else 0.0
    return s_w, s_g


@torch.no_grad()
def evaluate(gen, expert, val_loader, ctx, batches: int, precision: str) -> dict:
    gen.eval()
    l1s, syncs, probs, unpaired = [], [], [], []
    for n, batch in enumerate(val_loader):
        if n == batches:
            break
        batch = {k: v.to(ctx.device) for k, v in batch.items()}
        with autocast(ctx, precision):
            out = gen(batch["mels"], generator_input(batch["target"], batch["reference"]))
        out = out.float()
        l1s.append(F.l1_loss(out, batch["target"]).item())
        if expert is not None:
            sync, prob = expert_sync_loss(expert, out, batch["sync_mel"])
            syncs.append(sync.item())
            probs.append(prob.item())
            if "unpaired_mels" in batch:
                unpaired.append(unpaired_sync_loss(gen, expert, batch, ctx, precision, grey_frames=False).item())
    gen.train()
    mean = lambda xs: distributed.mean_across(sum(xs) / len(xs), ctx) if xs else float("nan")  # noqa: E731
    found = {"val_l1": mean(l1s), "val_sync_loss": mean(syncs), "val_sync_prob": mean(probs)}
    if unpaired:
        found["val_unpaired_sync_loss"] = mean(unpaired)
    return found


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
    ctx, run_dir, log, config, data, train_set, val_set = start_run(
        args, GeneratorDataset, both={"unpaired": args.unpaired_sync > 0})

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
             "expert": str(args.expert)}
    started, seen, metrics = time.perf_counter(), 0, {}

    def checkpoint():
        save_training_state(last, models=models, optimizers=optimisers, step=step, config=config,
                            metrics={**metrics, "best": best, "sync_on": sync_on}, extra=extra)

    def export(name):
        with writing(run_dir / name, "weights not saved"):
            save_weights(gen, run_dir / name, metadata={"step": step, "metrics": metrics, "data": extra["data"],
                                                        "gan": bool(args.gan)})

    def validate():
        found = {"step": step, **evaluate(net_g, expert, val_loader, ctx, args.eval_batches, args.precision)}
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
        unpaired = torch.zeros((), device=fake.device)
        if args.unpaired_sync:
            unpaired = unpaired_sync_loss(net_g, expert, batch, ctx, args.precision, args.sync_grey)
            loss = loss + args.unpaired_sync * unpaired
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
                samples_per_s=seen / (time.perf_counter() - started))
        if step % args.eval_every == 0:
            metrics = validate()
            if not sync_on and metrics["val_sync_loss"] < args.sync_switch:
                sync_on, best = True, float("inf")  # the score below changes meaning: L1 alone -> L1 + sync
            log(**metrics, sync_on=sync_on)
            if ctx.main:
                score = metrics["val_l1"] + (metrics["val_sync_loss"] if sync_on else 0.0) + \
                    (metrics["val_unpaired_sync_loss"] if args.unpaired_sync else 0.0)
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
