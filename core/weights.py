"""Model weights: ours as safetensors + a JSON sidecar, official `.pth` loaded safely.

Our checkpoints are `<name>.safetensors` with `<name>.json` beside it holding the model
kind, its dimensions, the file's SHA-256 and training metadata. The SHA-256 is checked on
every load, so a truncated or swapped file fails with a clear message instead of
producing garbage. Official Wav2Lip checkpoints are pickles: they are opened with
`weights_only=True`, never with full unpickling. The official SyncNet v2 (`syncnet_v2.model`,
a plain state dict) is recognised by its keys (`netcnnaud.`, `netcnnlip.`, …) and loads
strictly into core.models.syncnet_v2.
"""
import json
import pickle
import pickletools
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from core.atomic import atomic_files, sha256_file
from core.errors import WeightsError
from core.models.discriminator import DiscriminatorDims, QualityDiscriminator
from core.models.dub_shape import DubShapeDims, DubShapeModel
from core.models.lip_reader import LipReaderDims, LipShapeReader
from core.models.syncnet import SyncNet, SyncNetDims
from core.models.syncnet_v2 import SyncNetV2, SyncNetV2Dims
from core.models.wav2lip import GeneratorDims, Wav2Lip

MODELS_DIR = Path(__file__).resolve().parents[1] / "resources" / "models"
MANIFEST = MODELS_DIR / "manifest.json"


@dataclass(frozen=True)
class ModelKind:
    name: str
    model_cls: type
    dims_cls: type
    first_conv: str  # key of the first conv weight: its out-channels give the width
    first_channels: int  # out-channels of that conv at width 1
    signature: str  # a key prefix only this kind has
    scalable: bool = True  # has a channel-width multiplier (official-only trees do not)


KINDS = {
    k.name: k for k in (
        ModelKind("wav2lip", Wav2Lip, GeneratorDims, "face_encoder_blocks.0.0.conv_block.0.weight", 16,
                  "face_decoder_blocks."),
        ModelKind("syncnet", SyncNet, SyncNetDims, "face_encoder.0.conv_block.0.weight", 32, "face_encoder.0."),
        ModelKind("discriminator", QualityDiscriminator, DiscriminatorDims,
                  "face_encoder_blocks.0.0.conv_block.0.weight", 32, "binary_pred."),
        ModelKind("syncnet_v2", SyncNetV2, SyncNetV2Dims, "netcnnlip.0.weight", 96, "netcnnaud.", scalable=False),
        ModelKind("dub_shape", DubShapeModel, DubShapeDims, "stem.0.weight", 128, "stem.0."),
        ModelKind("lip_reader", LipShapeReader, LipReaderDims, "encoder.0.conv_block.0.weight", 24, "target_mean"),
    )
}


def kind_of(model: torch.nn.Module) -> ModelKind:
    for kind in KINDS.values():
        if isinstance(model, kind.model_cls):
            return kind
    raise TypeError(f"not a Lipsmith model: {type(model).__name__}")


def sidecar_path(path) -> Path:
    return Path(path).with_suffix(".json")


# --------------------------------------------------------------------------- saving


def save_weights(model: torch.nn.Module, path, *, half: bool = False, metadata: dict | None = None) -> dict:
    """Save `model` as safetensors + sidecar; returns the sidecar dict."""
    path = Path(path)
    kind = kind_of(model)
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        tensors[key] = value.half() if half and value.is_floating_point() else value
    with atomic_files(path, sidecar_path(path)) as (tmp, tmp_side):  # both whole, or both as they were
        save_file(tensors, tmp)
        sidecar = {"kind": kind.name, "dims": asdict(model.dims), "dtype": "float16" if half else "float32",
                   "sha256": sha256_file(tmp), "file": path.name, **(metadata or {})}
        Path(tmp_side).write_text(json.dumps(sidecar, indent=2), encoding="utf-8")
    return sidecar


# --------------------------------------------------------------------------- loading


def read_sidecar(path) -> dict:
    side = sidecar_path(path)
    if not side.is_file():
        raise WeightsError(path, f"no sidecar {side.name} beside it (dimensions and SHA-256 unknown)")
    try:
        return json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(side, f"unreadable sidecar ({exc})") from exc


def load_model(path, expect: str | None = None, device="cpu", check_sha: bool = True) -> torch.nn.Module:
    """Build and load a model from our safetensors or an official `.pth`, in eval mode.

    `expect` ("wav2lip", "syncnet", "discriminator", "syncnet_v2", "lip_reader", "dub_shape") refuses a checkpoint of
    another kind. Anything but `.safetensors` is read as an official checkpoint (`.pth`, `.model`).
    """
    path, manifest_sha = resolve(path)
    if path.suffix == ".safetensors":
        model = _load_ours(path, expect, check_sha, manifest_sha)
    else:
        model = _load_official(path, expect)
    return model.to(device).eval()


def _load_ours(path: Path, expect, check_sha, manifest_sha=None) -> torch.nn.Module:
    sidecar = read_sidecar(path)
    kind = KINDS.get(sidecar.get("kind"))
    if kind is None:
        raise WeightsError(path, f"unknown model kind {sidecar.get('kind')!r} in its sidecar")
    _check_expected(path, kind, expect)
    if check_sha:
        actual = sha256_file(path)
        for source, recorded in (("its sidecar", sidecar.get("sha256")), ("the bundled manifest", manifest_sha)):
            if recorded is not None and actual != recorded:
                raise WeightsError(path, f"SHA-256 does not match {source}: the file is damaged or was replaced")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise WeightsError(path, f"not a readable safetensors file ({exc})") from exc
    dims = kind.dims_cls(**sidecar.get("dims", {}))
    return _build(path, kind, dims, state)


def _load_official(path: Path, expect) -> torch.nn.Module:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message here advises weights_only=False, which would run whatever code the file holds
        if _laid_out_like_torch_save(path):
            raise WeightsError(path, "is not a plain checkpoint: besides tensors it holds Python objects that need "
                                     "pickle to load, and pickle can run code, so it is refused for safety") from None
        raise WeightsError(path, "not a loadable PyTorch checkpoint (neither a zip archive nor a pickle)") from None
    except Exception as exc:  # zip errors, truncated files
        detail = ": ".join([type(exc).__name__, *str(exc).strip().splitlines()[:1]])  # torch's first line
        raise WeightsError(path, f"not a loadable PyTorch checkpoint ({detail})") from exc
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state:
        raise WeightsError(path, "holds no state_dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    kind = detect_kind(path, state)
    _check_expected(path, kind, expect)
    if not kind.scalable:
        return _build(path, kind, kind.dims_cls(), _with_batch_counters(kind, state))
    width = state[kind.first_conv].shape[0] / kind.first_channels
    return _build(path, kind, kind.dims_cls(width=width), state)


def _laid_out_like_torch_save(path: Path) -> bool:
    """Whether the file is a zip archive (torch.save since 1.6) or starts with a well-formed pickle
    (before 1.6), read with pickletools, which runs nothing: a refused file that is neither is no
    checkpoint at all (a saved error page, say), not an unsafe one."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        try:
            for _ in pickletools.genops(f):  # stops at the first pickle's end: the format's magic number
                pass
        except ValueError:
            return False
    return True


def detect_kind(path, state: dict) -> ModelKind:
    for kind in KINDS.values():
        if any(k.startswith(kind.signature) for k in state):
            if kind.first_conv not in state:
                raise WeightsError(path, f"looks like a {kind.name} checkpoint but lacks {kind.first_conv} "
                                         "(truncated or edited state dict)")
            return kind
    raise WeightsError(path, "is not a Wav2Lip, SyncNet, SyncNet v2 or discriminator checkpoint (unknown keys)")


def _with_batch_counters(kind: ModelKind, state: dict) -> dict:
    """BatchNorm's `num_batches_tracked` appeared in PyTorch 0.4.1; files saved before it lack the
    counters. They only matter in training: fill each missing one (beside a `running_var`) with 0."""
    filled = dict(state)
    for key in state:
        if key.endswith(".running_var"):
            filled.setdefault(key.removesuffix("running_var") + "num_batches_tracked", torch.zeros((), dtype=torch.long))
    return filled


def _check_expected(path, kind: ModelKind, expect):
    if expect is not None and kind.name != expect:
        raise WeightsError(path, f"is a {kind.name} checkpoint, but a {expect} model is needed")


def _build(path, kind: ModelKind, dims, state: dict) -> torch.nn.Module:
    model = kind.model_cls(dims)
    what = f"a {kind.name} (width {dims.width})" if kind.scalable else f"a {kind.name}"
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise WeightsError(path, f"keys do not match {what}: "
                                 f"{len(missing)} missing (e.g. {missing[:2]}), "
                                 f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsError(path, f"{key} is a {type(value).__name__}, not a tensor")
        if value.shape != expected[key].shape:
            raise WeightsError(path, f"{key} has shape {tuple(value.shape)}, {what} needs "
                                     f"{tuple(expected[key].shape)}")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    return model


# --------------------------------------------------------------------------- bundled models


def read_manifest() -> dict:
    """The bundled models, name → {"file", "sha256", …}; empty when none are bundled."""
    if not MANIFEST.is_file():
        return {}
    try:
        manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsError(MANIFEST, f"the bundled-model manifest is unreadable ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise WeightsError(MANIFEST, f"the bundled-model manifest is not valid JSON ({exc})") from exc
    models = manifest.get("models") if isinstance(manifest, dict) else None
    if not isinstance(models, dict):
        raise WeightsError(MANIFEST, 'the bundled-model manifest has no "models" table')
    for name, entry in models.items():
        if not isinstance(entry, dict):
            raise WeightsError(MANIFEST, f"the bundled-model manifest's {name} is not a table")
        for key in ("file", "sha256"):
            if not isinstance(entry.get(key), str):
                raise WeightsError(MANIFEST, f'the bundled-model manifest\'s {name} has no "{key}"')
    return models


def resolve(name_or_path) -> tuple[Path, str | None]:
    """A bundled model name ("generator", "expert") or a file path → (existing file, manifest SHA-256)."""
    bundled = read_manifest()
    entry = bundled.get(name_or_path) if isinstance(name_or_path, str) else None
    path = MODELS_DIR / entry["file"] if entry else Path(name_or_path)
    if not path.is_file():
        raise WeightsError(path, f"checkpoint not found (bundled models: {', '.join(bundled) or 'none yet'})")
    return path, entry["sha256"] if entry else None
