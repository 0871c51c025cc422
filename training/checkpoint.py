"""Training checkpoints: safetensors (models, optimisers, RNG) + a JSON sidecar.

The sidecar records what a resume must agree with: dimensions, hyper-parameters and the
hash of the data manifest. A resume with different hyper-parameters is refused unless
forced, because it would silently continue a different experiment.

A checkpoint and its sidecar are replaced together (core.atomic.atomic_files): a full disk,
an error or a Ctrl-C while saving leaves the previous pair whole and loadable. Write errors
come out as WriteError, one line naming the file and saying why (disk full, read-only).
"""
import contextlib
import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from core.atomic import atomic_files, sha256_file
from core.errors import LipsmithError


class ResumeError(LipsmithError):
    """A checkpoint that cannot continue this run."""


class WriteError(LipsmithError):
    """A run folder or checkpoint that cannot be written (read-only, disk full, ...)."""


def why_not_written(exc: BaseException) -> str:
    """What a failed write means for a user: disk full, read-only, or the system's words."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code == errno.ENOSPC or "os error 28" in text or "No space left" in text:  # safetensors: SafetensorError
        return "the disk is full (no space left on device)"
    if code is not None and code == getattr(errno, "EDQUOT", None):
        return "the disk quota is exceeded"
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or "os error 30" in text or "os error 13" in text:
        return "not writable (read-only or permission denied)"
    return getattr(exc, "strerror", None) or text


@contextlib.contextmanager
def writing(path, what: str = "cannot write", note: str = ""):
    """Turn a failed write under this block into a WriteError naming `path`:
    "<path>: <what>: <why>[; <note>]"."""
    try:
        yield
    except (OSError, SafetensorError) as exc:
        raise WriteError(path, f"{what}: {why_not_written(exc)}" + (f"; {note}" if note else "")) from exc


def check_run_dir(run_dir) -> Path:
    """Create the run folder and make sure a file can be written in it, before any training:
    a read-only or missing-permission folder fails at once with its name, not after an epoch."""
    run_dir = Path(run_dir)
    with writing(run_dir, "cannot write the run folder"):
        run_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=run_dir)
        os.close(fd)
        os.unlink(probe)
    return run_dir


def manifest_hash(data_root) -> str:
    """Hash of the prepared dataset's manifest and filelists (what the model was trained on)."""
    root = Path(data_root)
    digest = hashlib.sha256()
    for name in ("manifest.json", "filelists/train.txt", "filelists/val.txt"):
        path = root / name
        if path.is_file():
            digest.update(name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _flatten(prefix: str, obj, out: dict, meta: dict):
    """Optimizer state dicts hold tensors and plain values; tensors go to safetensors, the rest to JSON."""
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj.detach().cpu().contiguous()
        meta[prefix] = "__tensor__"
    elif isinstance(obj, dict):
        meta[prefix] = {"__dict__": [str(k) for k in obj]}
        for k, v in obj.items():
            _flatten(f"{prefix}/{k}", v, out, meta)
    elif isinstance(obj, (list, tuple)):
        meta[prefix] = {"__list__": len(obj)}
        for i, v in enumerate(obj):
            _flatten(f"{prefix}/{i}", v, out, meta)
    else:
        meta[prefix] = {"__value__": obj}


def _unflatten(prefix: str, tensors: dict, meta: dict):
    entry = meta[prefix]
    if entry == "__tensor__":
        return tensors[prefix]
    if "__dict__" in entry:
        return {_key(k): _unflatten(f"{prefix}/{k}", tensors, meta) for k in entry["__dict__"]}
    if "__list__" in entry:
        return [_unflatten(f"{prefix}/{i}", tensors, meta) for i in range(entry["__list__"])]
    return entry["__value__"]


def _key(k: str):
    return int(k) if k.lstrip("-").isdigit() else k  # optimizer state is keyed by parameter index


def save_training_state(path, *, models: dict, optimizers: dict, step: int, config: dict, metrics: dict,
                        extra: dict | None = None) -> None:
    """Everything a resume needs, atomically: `path` (.safetensors) + `path`.json."""
    path = Path(path)
    tensors, layout = {}, {}
    for name, model in models.items():
        _flatten(f"model.{name}", model.state_dict(), tensors, layout)
    for name, opt in optimizers.items():
        _flatten(f"optim.{name}", opt.state_dict(), tensors, layout)
    _flatten("rng.torch", torch.get_rng_state(), tensors, layout)
    with writing(path, "checkpoint not saved", "the previous checkpoint, if any, is unchanged"), \
            atomic_files(path, path.with_suffix(".json")) as (tmp, tmp_side):
        save_file(tensors, tmp)
        sidecar = {"step": step, "config": config, "metrics": metrics, "layout": layout,
                   "sha256": sha256_file(tmp), **(extra or {})}
        _write_text(tmp_side, json.dumps(sidecar, indent=1))


def _write_text(path, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")


def checked_sidecar(path: Path) -> dict:
    """A training checkpoint's sidecar, once the file's SHA-256 matches the one it records."""
    sidecar = json.loads(path.with_suffix(".json").read_text())
    if sha256_file(path) != sidecar["sha256"]:
        raise ResumeError(path, "SHA-256 does not match its sidecar: the checkpoint is damaged")
    return sidecar


def load_training_state(path, *, models: dict, optimizers: dict, config: dict, force: bool = False) -> dict:
    """Restore models, optimisers and RNG from `path`; returns the sidecar (step, metrics, …)."""
    path = Path(path)
    sidecar = checked_sidecar(path)
    changed = {k: (sidecar["config"].get(k), v) for k, v in config.items()
               if k not in RESUMABLE_CHANGES and sidecar["config"].get(k) != v}
    if changed and not force:
        detail = ", ".join(f"{k}: {old!r} → {new!r}" for k, (old, new) in changed.items())
        raise ResumeError(path, f"hyper-parameters differ from the checkpoint's ({detail}); "
                                f"use --force to resume anyway")
    tensors = load_file(str(path))
    layout = sidecar["layout"]
    for name, model in models.items():
        model.load_state_dict(_unflatten(f"model.{name}", tensors, layout))
    for name, opt in optimizers.items():
        opt.load_state_dict(_unflatten(f"optim.{name}", tensors, layout))
    torch.set_rng_state(_unflatten("rng.torch", tensors, layout))
    return sidecar


def load_model_state(path, name: str) -> dict:
    """One model's state dict out of a training checkpoint (SHA-256 checked), e.g. a run's
    last.safetensors, whose best.safetensors may be an earlier step."""
    path = Path(path)
    sidecar = checked_sidecar(path)
    if f"model.{name}" not in sidecar.get("layout", {}):
        raise ResumeError(path, f"holds no model '{name}'")
    return _unflatten(f"model.{name}", load_file(str(path)), sidecar["layout"])


# settings that may change between a run and its resume without changing the experiment
RESUMABLE_CHANGES = {"steps", "max_minutes", "eval_every", "save_every", "workers", "run_dir", "resume", "force",
                     "log_every", "device"}
