"""Generator throughput: the plain reference way vs our fast path, same random weights, one run.

reference: fp32, eager, NCHW, batch 128 (as the official inference script runs it)
ours:      FaceGenerator — the lower half only (all a paste uses), inference mode, folded BatchNorm,
           channels-last, bf16 weights and autocast
           where the CPU has native bf16, optionally compiled (core.render.compile_for_inference: frozen weights)

With --compile, the first call's cost is shown twice: compiling into an empty kernel cache (a first
render) and compiling the same model again over that cache (what every later long render pays).

    python -m bench.bench_generator [--width 1.0] [--frames 256] [--compile]
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


def first_call_and_rate(run, crops, mels, batch, repeats):
    """(seconds of the first call: warm-up, and compiling when compiled; images/s afterwards)."""
    started = time.perf_counter()
    run(crops[:batch], mels[:batch])
    first = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(repeats):
        for i in range(0, len(crops), batch):
            run(crops[i:i + batch], mels[i:i + batch])
    return first, repeats * len(crops) / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (30-40 s first compile)")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = Wav2Lip(GeneratorDims(width=args.width)).eval()
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (args.frames, 96, 96, 3), dtype=np.uint8)
    mels = rng.uniform(-4, 4, (args.frames, 80, 16)).astype(np.float32)

    def reference(c, m):  # fp32 eager NCHW, what the official script does
        faces = torch.from_numpy(c).permute(0, 3, 1, 2).float() / 255.0
        masked = faces.clone()
        masked[:, :, 48:] = 0
        with torch.no_grad():
            return model(torch.from_numpy(m).unsqueeze(1), torch.cat([masked, faces], 1)).numpy()

    print(f"generator width {args.width}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, "
          f"{torch.get_num_threads()} threads, bf16 on this CPU: {cpu_supports_bf16()}")
    _, ref = first_call_and_rate(reference, crops, mels, 128, args.repeats)
    print(f"reference  fp32 eager NCHW  batch 128: {ref:7.1f} images/s")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-inductor-")  # an empty kernel cache
    variants = [("ours  eager", False)] + ([("ours  compiled, empty cache", True),
                                            ("ours  compiled, cache of that", True)] if args.compile else [])
    for name, compiled in variants:
        same_weights = Wav2Lip(GeneratorDims(width=args.width))
        same_weights.load_state_dict(model.state_dict())
        fast = FaceGenerator(same_weights, torch.device("cpu"), 32, compiled)
        first, rate = first_call_and_rate(fast, crops, mels, 32, args.repeats)
        print(f"{name:<32} batch 32: {rate:7.1f} images/s   ratio {rate / ref:4.2f}x [target 5x]   "
              f"first call {first:5.1f} s")
    shutil.rmtree(os.environ["TORCHINDUCTOR_CACHE_DIR"], ignore_errors=True)

if __name__ == "__main__":
    main()
