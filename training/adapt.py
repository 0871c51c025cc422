"""Speaker adaptation: fine-tune the generator on one clip's own frames and audio.

    python main.py adapt VIDEO [-o OUT.safetensors] [--minutes 5] [--expert expert] [--expert-minutes 2]

The original footage is in-sync training data for exactly the face being dubbed. The clip is
prepared like the training set (`training/prepare.py`: 25 fps face crops, 16 kHz audio) in a
temporary folder, then the generator (the bundled one unless --base) is fine-tuned on it with
`train-generator`: L1 + the frozen expert's sync loss on grey frames from the first step, and the
expert's sync loss on mouths generated to audio from elsewhere in the clip (`--unpaired-sync`),
which keeps the generator listening to the audio rather than recalling each frame's true mouth
from the face above it (L1 alone when no expert is available). Validation runs on the same clip:
this is fitting one speaker, not generalising.

With --expert-minutes the expert is adapted first (its audio encoder learns this voice against
its face encoder, which stays fixed) and the generator trains against that teacher; the adapted
expert is saved beside the output as `<stem>.expert.safetensors`. Scoring keeps the bundled
expert, so takes stay comparable.

The result goes to -o, or beside the video as `<video stem>.adapted.safetensors` (never
over a bundled model); `render --checkpoint OUT` and the editor use it like any generator.
Its sidecar records the base model, the clip and the steps.

From code (the editor's Render ▸ Adapt to Speaker…), `adapt(..., progress, cancel)` reports
`progress(done, total, stage)`: "detect" (frames of face detection, the only long part of
preparing), then "adapt expert" (with expert_minutes) and "train" in thousandths of each
budget — the larger of steps/--steps and elapsed/--minutes, so the rate gives an ETA either
way. `cancel()` is polled between frames and steps; it raises core.errors.Cancelled, and the
temporary folder goes with it: nothing is written at the output.
"""
import argparse
import math
import tempfile
import time
from pathlib import Path

from core.adapt import adapted_expert_output
from core.atomic import sha256_file
from core.errors import Cancelled, FaceError, LipsmithError, MediaError, WeightsError
from core.device import select_device
from core.weights import MODELS_DIR, load_model, read_manifest, read_sidecar, resolve, save_weights
from training import prepare, train_expert, train_generator
from training.cli import ADAPT_LR, add_expert_args

KEY = "adapt/clip"
TRAIN_UNITS = 1000  # a training stage's progress total (thousandths of its budget)
# Weight of the sync loss on mouths generated to audio from elsewhere in the clip. Fine-tuned on its
# own footage alone, the generator learns to recall each frame's mouth and stops following the audio;
# with 0.05 it painted static red lips that fool the expert. Measured on held-out video-retalking/face_1
# under a foreign dub (LSE-C before adaptation 0.023): L1 + sync, 3 min: 0.005; L1 + sync, 30 steps:
# 0.020; + unpaired 0.05, lr 1e-4: 0.058, red static lips; + unpaired 0.01, lr 5e-5, 30 steps: 0.042,
# sharper lips that open on loud frames (the defaults).
UNPAIRED_SYNC = 0.01
EXPERT_LR = 1e-4  # the expert's own adaptation (--expert-minutes): its audio encoder, batch 96


def default_output(video) -> Path:
    video = Path(video)
    return video.with_name(f"{video.stem}.adapted.safetensors")


def check_output(output: Path, video: Path):
    """Adapted weights never replace a bundled model or the clip, and the folder must take a file."""
    from core.video import check_writable

    if output.resolve().parent == MODELS_DIR.resolve():
        raise WeightsError(output, "adapted weights are never written into the bundled models folder; choose -o")
    if output.suffix != ".safetensors":
        raise WeightsError(output, "the output must be a .safetensors file")
    check_writable(output, protect=(video,))


def prepare_clip(video, folder: Path, cache_dir=None, progress=None, cancel=None, detector="retinaface") -> int:
    """The clip in training layout under `folder` (filelists: all of it, for train and val); its frame count.
    With `progress` or `cancel`, the faces are detected first in a pass that reports and stops
    (`progress(done, total)`; into the detection cache, where preparing then finds them).
    `detector`: the face detector's name (core.faces.get_detector), e.g. the editor project's choice."""
    from core.faces import get_detector

    detector = get_detector(detector)
    if progress is not None or cancel is not None:
        _detect(video, detector, cache_dir, progress, cancel)
    record = prepare.process_video(video, folder, KEY, prepare._params(detector.identity()),
                                   cache_dir=cache_dir, detector=detector)
    if record["status"] != "ok":
        raise FaceError(video, f"cannot adapt to this clip: {record['reason']}")
    keys = [f"adapt/{part}" for part in record["parts"]]
    (folder / "filelists").mkdir(exist_ok=True)
    for name in ("train", "val"):
        (folder / "filelists" / f"{name}.txt").write_text("".join(k + "\n" for k in keys))
    return int(record["frames"])


def _detect(video, detector, cache_dir, progress, cancel):
    from core.faces.detections import detect_video
    from core.video import VideoSource

    try:
        source = VideoSource(video)
    except MediaError:
        return  # preparing says what is wrong with the file
    with source:
        if not source.is_image:
            detect_video(source, detector, cache_dir=cache_dir, progress=progress, cancel=cancel)


def budget_progress(report, stage: str, minutes: float):
    """A trainer's progress(step, total) as `report` thousandths of a stage: the larger of steps/total
    and elapsed/minutes, so the rate gives an ETA whichever ends the stage."""
    started = time.perf_counter()

    def progress(step, total):
        parts = [step / total] if total else []
        if minutes:
            parts.append((time.perf_counter() - started) / (60 * minutes))
        report(min(TRAIN_UNITS, int(TRAIN_UNITS * max(parts, default=0.0))), TRAIN_UNITS, stage)

    report(0, TRAIN_UNITS, stage)
    return progress


def adapt_expert(data: Path, run: Path, expert_path: Path, minutes: float, device: str, progress, cancel) -> Path:
    """Fine-tune the expert on the prepared clip: its audio encoder learns this voice against the
    face encoder, which stays as it is (it already sees the lips; one clip would not teach it more).
    Returns the trained weights (best on the clip's windows)."""
    parser = argparse.ArgumentParser()
    add_expert_args(parser)
    width = read_sidecar(expert_path).get("dims", {}).get("width", 1.0)
    args = parser.parse_args([
        "--data", str(data), "--run", str(run), "--init", str(expert_path), "--width", str(width), "--freeze-face",
        "--aux-weight", "0", "--batch-size", "96", "--lr", str(EXPERT_LR), "--max-minutes", str(minutes),
        "--eval-every", "25", "--eval-batches", "2", "--log-every", "25", "--workers", "0", "--device", device])
    train_expert.train(args, progress=progress, cancel=cancel)
    return run / ("best.safetensors" if (run / "best.safetensors").is_file() else "final.safetensors")


def adapt(video, output=None, base="generator", expert="expert", minutes=5.0, steps=100_000,
          batch_size=8, lr=ADAPT_LR, device="auto", cache_dir=None, progress=None, cancel=None,
          detector="retinaface", expert_minutes=0.0) -> dict:
    """`expert_minutes` > 0: first adapt the expert to the clip for that long (its own budget) and
    train the generator against it; it is saved beside the output (adapted_expert_output)."""
    video = Path(video)
    report = progress or (lambda done, total, stage: None)
    if not video.is_file():
        raise LipsmithError(video, "no such file")
    output = Path(output) if output else default_output(video)
    check_output(output, video)
    select_device(device)  # a device this machine lacks: said now, not after the clip's face detection
    base_path, _ = resolve(base)
    width = read_sidecar(base_path).get("dims", {}).get("width", 1.0) if base_path.suffix == ".safetensors" else 1.0
    expert_path = None
    if expert:
        try:
            expert_path = resolve(expert)[0]
        except WeightsError:
            if expert != "expert" or "expert" in read_manifest():
                raise  # a named expert that is missing is an error; no bundled one is not
    with tempfile.TemporaryDirectory(prefix="lipsmith-adapt-") as tmp:
        data = Path(tmp) / "data"
        detect = (lambda d, t: report(d, t, "detect")) if progress is not None else None
        frames = prepare_clip(video, data, cache_dir, progress=detect, cancel=cancel, detector=detector)
        if cancel is not None and cancel():
            raise Cancelled("adaptation cancelled")
        base_expert = expert_path
        if expert_minutes and expert_path is not None:
            check_output(adapted_expert_output(output), video)
            expert_path = adapt_expert(data, Path(tmp) / "expert", expert_path, expert_minutes, device,
                                       budget_progress(report, "adapt expert", expert_minutes) if progress else None,
                                       cancel)
        run = Path(tmp) / "run"
        args = argparse.Namespace(
            data=str(data), run_dir=str(run), width=width, batch_size=batch_size, lr=lr, steps=steps,
            max_minutes=minutes, eval_every=max(5, min(25, steps // 4)), eval_batches=4, log_every=25,
            workers=0, seed=0, device=device, precision="auto", av_offsets=None, balance_speakers=False,
            resume=False, force=False,
            expert=str(expert_path) if expert_path else None, gan=False, init=str(base_path),
            sync_switch=math.inf, sync_weight=None, sync_grey=True,
            unpaired_sync=UNPAIRED_SYNC if expert_path else 0.0, lip_reader=None, shape_weight=0.0)
        train_generator.train(args, progress=budget_progress(report, "train", minutes) if progress else None,
                              cancel=cancel)
        report(TRAIN_UNITS, TRAIN_UNITS, "save")
        expert_output = None
        if expert_path is not base_expert:  # saved only now: a cancelled adaptation leaves no file at all
            expert_output = adapted_expert_output(output)
            expert_side = read_sidecar(expert_path)
            save_weights(load_model(expert_path, expect="syncnet"), expert_output, half=True, metadata={
                "adapted_from": {"file": base_expert.name, "sha256": sha256_file(base_expert)},
                "clip": {"file": video.name, "sha256": sha256_file(video), "frames": frames},
                "step": expert_side.get("step"), "metrics": expert_side.get("metrics")})
        trained = run / ("best.safetensors" if (run / "best.safetensors").is_file() else "final.safetensors")
        side = read_sidecar(trained)
        model = load_model(trained, expect="wav2lip")
        save_weights(model, output, half=True, metadata={
            "adapted_from": {"file": base_path.name, "sha256": sha256_file(base_path)},
            "clip": {"file": video.name, "sha256": sha256_file(video), "frames": frames},
            "expert": (expert_output or expert_path).name if expert_path else None,
            "step": side.get("step"), "metrics": side.get("metrics")})
    return {"output": str(output), "frames": frames, "expert": (expert_output or expert_path).name if expert_path
            else None, "expert_output": str(expert_output) if expert_output else None,
            "step": side.get("step"), **(side.get("metrics") or {})}


def run(args) -> int:
    result = adapt(args.video, args.output, base=args.base, expert=args.expert, minutes=args.minutes,
                   steps=args.steps, batch_size=args.batch_size, lr=args.lr, device=args.device,
                   cache_dir=args.cache_dir, expert_minutes=args.expert_minutes)
    sync = "" if result["expert"] else " (no expert: L1 only)"
    print(f"adapted on {result['frames']} frames for {result['step']} steps{sync}: "
          f"L1 on the clip {result.get('val_l1', float('nan')):.4f}"
          f" -> {result['output']}")
    if result["expert_output"]:
        print(f"adapted expert (the generator's sync teacher) -> {result['expert_output']}")
    return 0
