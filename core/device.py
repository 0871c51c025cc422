"""Which torch device a job runs on, and what the CPU offers (without loading the renderer)."""
import torch

from core.errors import SetupError


def select_device(name: str = "auto") -> torch.device:
    """`auto`: CUDA, else Apple MPS, else the CPU. A named device must be one this machine has:
    torch would accept the name and fail later, with a traceback, on the first tensor sent there."""
    cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    mps = ["mps"] if torch.backends.mps.is_available() else []
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    available = ["cpu", *cuda, *mps]
    if ("cuda:0" if name == "cuda" else name) not in available:
        raise SetupError(None, f"device {name!r} is not available here; available: {', '.join(available)}")
    return torch.device(name)


def cpu_supports_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
