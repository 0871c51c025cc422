"""Generator throughput: the plain reference way vs our fast path, same random weights, side by side.

reference: fp32, eager, NCHW, batch 128 (as the official inference script runs it)
ours:      FaceGenerator — the lower half only (all a paste uses), inference mode, folded BatchNorm,
           channels-last, bf16 weights and autocast
           where the CPU has native bf16, optionally compiled (core.render.compile_for_inference: frozen weights)

With --compile, the first compile goes into an empty kernel cache (what a first render pays); each run
then compiles again over that cache (what every later long render pays). With --repeat N the reference
and ours run side by side N times: this shared machine's speed drifts by 10-25 % within an hour, so the
medians are the figures, and the ratio is theirs.

    python -m bench.bench_generator [--width 1.0] [--frames 256] [--compile] [--repeat 3]
"""
import argparse
import os
import shutil
import tempfile
import time

import numpy as np
import torch

from core.models.wav2lip import GeneratorDims, Wav2Lip
from core.device import cpu_supports_bf16
from core.render import FaceGenerator


def first_and_rate(run, crops, mels, batch):
    """(seconds of the first call: warm-up, and compiling when compiled; images/s afterwards)."""
    started = time.perf_counter()
    run(crops[:batch], mels[:batch])
    first = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(0, len(crops), batch):
        run(crops[i:i + batch], mels[i:i + batch])
    return first, len(crops) / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the whole comparison this many times and report each figure's median and range")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (20-30 s first compile)")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = Wav2Lip(GeneratorDims(width=args.width)).eval()
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (args.frames, 96, 96, 3), dtype=np.uint8)
    mels = rng.uniform(-4, 4, (args.frames, 80, 16)).astype(np.float32)

    def reference(c, m):  # fp32 eager NCHW, the whole face, what the official script does
        faces = torch.from_numpy(c).permute(0, 3, 1, 2).float() / 255.0
        masked = faces.clone()
        masked[:, :, 48:] = 0
        with torch.no_grad():
            return model(torch.from_numpy(m).unsqueeze(1), torch.cat([masked, faces], 1)).numpy()

    def ours(compiled):
        same_weights = Wav2Lip(GeneratorDims(width=args.width))
        same_weights.load_state_dict(model.state_dict())
        return FaceGenerator(same_weights, torch.device("cpu"), 32, compiled)

    print(f"generator width {args.width}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, "
          f"{torch.get_num_threads()} threads, bf16 on this CPU: {cpu_supports_bf16()}")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-inductor-")  # an empty kernel cache
    try:
        first_compile = ours(True) if args.compile else None  # into the empty cache: a first render pays this
        if first_compile:
            started = time.perf_counter()
            first_compile(crops[:32], mels[:32])
            print(f"first compile into an empty kernel cache: {time.perf_counter() - started:.1f} s")
        names = ["ours  eager"] + (["ours  compiled"] if args.compile else [])
        rates, firsts = {"reference": []} | {name: [] for name in names}, {name: [] for name in names}
        for run in range(args.repeat):  # the reference and ours side by side in each run: a slow spell hits both
            rates["reference"].append(first_and_rate(reference, crops, mels, 128)[1])
            for name in names:
                first, rate = first_and_rate(ours("compiled" in name), crops, mels, 32)
                firsts[name].append(first)
                rates[name].append(rate)
            print(f"run {run + 1}: " + ", ".join(f"{name.split()[-1]} {r[-1]:.1f}" for name, r in rates.items())
                  + " images/s")
    finally:
        shutil.rmtree(os.environ.pop("TORCHINDUCTOR_CACHE_DIR"), ignore_errors=True)
    reference_rate = float(np.median(rates["reference"]))
    print(f"{'reference  fp32 eager NCHW':<30} batch 128: {spread(rates['reference'])} images/s")
    for name in names:
        ratios = [r / ref for r, ref in zip(rates[name], rates["reference"])]
        print(f"{name:<30} batch 32:  {spread(rates[name])} images/s   "
              f"ratio {float(np.median(rates[name])) / reference_rate:4.2f}x (per run {min(ratios):.2f}-{max(ratios):.2f}x)"
              f" [target 5x]   first call {float(np.median(firsts[name])):4.1f} s"
              + (" (compiling over that cache)" if "compiled" in name else ""))


def spread(rates) -> str:
    """The median, and with several runs their range."""
    text = f"{float(np.median(rates)):6.1f}"
    return text + (f" ({min(rates):.1f}-{max(rates):.1f})" if len(rates) > 1 else "")


if __name__ == "__main__":
    main()
