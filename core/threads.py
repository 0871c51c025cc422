"""Torch's OpenMP threads and the product's other threads on the same cores."""
import os
import sys


def let_idle_torch_threads_sleep() -> bool:
    """Make OpenMP's idle threads sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE), unless the user
    chose a policy. OpenMP reads it once, when torch is first imported: True when it applies.

    A render runs decode, blend, the encoder and the generator at once; torch's threads spinning
    between two operators took the cores the other stages needed (bench_render, 720p25, width 0.5,
    2 cores: 31.2 -> 35.9 frames/s). A trainer runs torch alone, where spinning pays (the generator
    alone ran 18 % faster with it): training commands keep OpenMP's default."""
    if "torch" in sys.modules:
        return os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return os.environ["OMP_WAIT_POLICY"].upper() == "PASSIVE"
