"""Training throughput (samples/s) of the expert and the generator, through the trainers themselves.

expert:     width 0.25, offsets objective, batch 96 = 6 stretches of 16 windows (a sample: one window)
generator:  width 0.5, batch 8 windows of 5 frames (a sample: one window): L1 alone; L1 + the
            expert's sync loss (switched on from the first step; the trainer switches it on
            once the eval sync loss < 0.75); L1 + sync + the GAN (--gan)

Each configuration runs `main.py train-expert` / `train-generator` in this process for
--warmup + --steps steps, without evaluation until the end, and times the --steps steps after
the warm-up from the trainer's own log (the data pipeline included: with --workers 0 the
loading is on the critical path, and each clip's frames are decoded the first time it is
drawn, then cached). The generator's sync loss uses the expert just trained here (its
random-ish weights cost the same as trained ones).

    python -m bench.bench_training [--data PREPARED] [--device auto] [--warmup 3] [--steps 10]
                                   [--workers 0] [--threads N]

Without --data, a synthetic prepared set (noise frames, speech-like audio) is used.
"""
import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf
import torch

import main as cli
from training import train_generator

EXPERT = {"width": 0.25, "batch": 96, "stretch": 16}
GENERATOR = {"width": 0.5, "batch": 8}


def synthetic_prepared(root: Path, clips: int = 8, frames: int = 100) -> Path:
    """A prepared layout (training/prepare.py) of noise clips: 2 speakers, one validation clip each."""
    rng = np.random.default_rng(0)
    keys = [f"s{n % 2}/clip{n}" for n in range(clips)]
    for key in keys:
        folder = root / key
        folder.mkdir(parents=True)
        base = rng.integers(0, 255, (120, 100, 3), dtype=np.uint8)
        for i in range(frames):
            img = np.clip(base.astype(np.int16) + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"{i}.jpg"), img)
        t = np.arange(int(frames / 25 * 16000)) / 16000
        audio = 0.3 * np.clip(np.sin(2 * np.pi * 3 * t), 0, None) * rng.standard_normal(t.size)
        sf.write(str(folder / "audio.wav"), audio.astype(np.float32), 16000, subtype="PCM_16")
    (root / "filelists").mkdir()
    (root / "filelists" / "train.txt").write_text("".join(f"{k}\n" for k in keys[:-2]))
    (root / "filelists" / "val.txt").write_text("".join(f"{k}\n" for k in keys[-2:]))
    return root


def timed_rate(run: Path, samples_per_step: int, warmup: int) -> float:
    """Samples/s over the steps after the warm-up, from the log's cumulative samples_per_s."""
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    steps = {r["step"]: r["samples_per_s"] for r in log if "samples_per_s" in r}
    last = max(steps)
    elapsed = {k: k * samples_per_step / rate for k, rate in steps.items()}
    return (last - warmup) * samples_per_step / (elapsed[last] - elapsed[warmup])


def train(command: str, data: Path, run: Path, args, *extra) -> float:
    total = args.warmup + args.steps
    argv = [command, "--data", str(data), "--run", str(run), "--steps", str(total), "--eval-every", str(total + 1),
            "--eval-batches", "1", "--log-every", "1", "--workers", str(args.workers), "--device", args.device,
            "--precision", args.precision, *extra]
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the trainer's line per step
        code = cli.main(argv)
    if code != 0:
        raise SystemExit(f"{command} failed ({code})")
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="prepared dataset (python main.py prepare); default: a synthetic one")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--workers", type=int, default=0, help="data loader processes")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--skip-gan", action="store_true", help="leave out the generator + GAN row")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.warmup = max(1, args.warmup)

    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    where = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    with tempfile.TemporaryDirectory(prefix="lipsmith-bench-") as tmp:
        tmp = Path(tmp)
        data = Path(args.data) if args.data else synthetic_prepared(tmp / "data")
        print(f"training throughput on {where}; data {args.data or 'synthetic'}; {args.warmup} warm-up + "
              f"{args.steps} timed steps; --workers {args.workers}; precision {args.precision}")
        rows = []
        per_step = EXPERT["batch"]
        wall = train("train-expert", data, tmp / "expert", args, "--width", str(EXPERT["width"]), "--objective",
                     "offsets", "--batch-size", str(EXPERT["batch"]), "--stretch", str(EXPERT["stretch"]))
        rows.append((f"expert    w{EXPERT['width']}  offsets, batch 96 (6 x 16)", per_step,
                     timed_rate(tmp / "expert", per_step, args.warmup), wall))
        expert = tmp / "expert" / "best.safetensors"
        gen = ["--width", str(GENERATOR["width"]), "--batch-size", str(GENERATOR["batch"])]
        variants = [("L1", []), ("L1 + sync", ["--expert", str(expert)])]
        if not args.skip_gan:
            variants.append(("L1 + sync + GAN", ["--expert", str(expert), "--gan"]))
        weights_for = train_generator.weights_for
        try:
            # the sync term from the first step (the trainer waits for eval sync loss < 0.75)
            train_generator.weights_for = lambda a, sync_on: weights_for(a, bool(a.expert))
            for n, (name, extra) in enumerate(variants):
                run = tmp / f"generator{n}"
                wall = train("train-generator", data, run, args, *gen, *extra)
                rows.append((f"generator w{GENERATOR['width']}  {name}, batch 8", GENERATOR["batch"],
                             timed_rate(run, GENERATOR["batch"], args.warmup), wall))
        finally:
            train_generator.weights_for = weights_for
    base = rows[1][2]
    print(f"{'configuration':<48} {'samples/s':>10} {'s/step':>8} {'vs L1':>6} {'run s':>7}")
    for name, per, rate, wall in rows:
        ratio = f"{rate / base:5.2f}x" if name.startswith("generator") else ""
        print(f"{name:<48} {rate:10.1f} {per / rate:8.3f} {ratio:>6} {wall:7.1f}")


if __name__ == "__main__":
    main()
