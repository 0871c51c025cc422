"""Speaker adaptation, as the editor asks for it: the one entry point into training/ the editor uses.

Render ▸ Adapt to Speaker… takes an `adapt_request` (a snapshot of the project), runs
`adapt_speaker` as a job (training.adapt.adapt on the project's own video and audio; its
internals stay the trainer's) and records the result with `commit_adapt`. The model menus list
the project's adapted models with `model_choices`. Only `adapt_speaker` imports training/ (and
torch), inside the job.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.project import AddAdaptedModel, EditError, Project, normalise_setting

ADAPTED_SUFFIX = ".adapted.safetensors"


def default_adapted_output(project: Project) -> Path:
    """`<project stem>.adapted.safetensors` beside the project file (beside the video while it is
    unsaved); `-2`, `-3`… when that file is there already, so an earlier model is never replaced."""
    anchor = project.path or project.video.path
    first = anchor.with_name(anchor.stem + ADAPTED_SUFFIX)
    candidate, n = first, 2
    while candidate.exists() or project.adapted_model(candidate) is not None:
        candidate = anchor.with_name(f"{anchor.stem}.adapted-{n}.safetensors")
        n += 1
    return candidate


def adapted_expert_output(output: Path) -> Path:
    """Where an adaptation that adapts the expert too saves it, beside the adapted generator at
    `output`: `<stem>.expert.safetensors`."""
    return output.with_name(f"{output.stem}.expert.safetensors")


def checkpoint_key(value) -> str:
    """A checkpoint setting as comparable text: a bundled name as it is, a file as its absolute path."""
    value = normalise_setting("checkpoint", value) if value else value
    return os.path.normcase(str(value)) if isinstance(value, Path) else value


def model_choices(project: Project, *current) -> list[tuple[str, str]]:
    """(text, checkpoint) for a model menu: the bundled generator, the project's adapted models
    (newest first), and any `current` value that is neither (a file chosen by hand)."""
    out = [("Bundled generator", "generator")]
    for m in reversed(project.adapted_models):
        steps = m.info.get("steps")
        detail = f"adapted, {steps} steps" if steps else "adapted"
        out.append((f"{m.title} ({detail}{', missing' if m.missing else ''})", str(m.path)))
    known = {checkpoint_key(v) for _, v in out}
    for value in current:
        if value is not None and checkpoint_key(value) not in known:
            known.add(checkpoint_key(value))
            out.append((Path(value).name if not isinstance(value, str) else value, str(value)))
    return out


@dataclass
class AdaptRequest:
    video: Path
    output: Path
    base: str  # the project's generator: what the adaptation starts from
    minutes: float
    steps: int
    expert: str | None
    device: str
    detector: str = "retinaface"  # the project's face detector (its detections are cached per detector)
    batch_size: int = 8
    detection_cache: str | None = None
    expert_minutes: float = 0.0  # > 0: adapt the expert to the clip first, the generator learns against it


@dataclass
class AdaptResult:
    request: AdaptRequest
    output: Path
    info: dict  # what the project records: base, frames, steps, L1 on the clip, seconds


def adapt_request(project: Project, output=None, minutes: float = 5.0, steps: int = 100_000,
                  expert: str | None = "expert", expert_minutes: float = 0.0) -> AdaptRequest:
    """Snapshot for fine-tuning the project's generator on the project's own video and its audio."""
    video = project.video
    if video.missing:
        raise EditError(f"the video {video.path.name} is missing: relink it first")
    if video.facts.is_image:
        raise EditError("the video is a still image: adaptation learns from a video with its own speech")
    if not minutes or minutes <= 0:
        raise EditError(f"the time budget must be more than 0 minutes, not {minutes!r}")
    output = Path(output).expanduser() if output else default_adapted_output(project)
    if not output.is_absolute():
        output = (project.folder or Path.cwd()) / output
    if output.suffix != ".safetensors":
        raise EditError(f"{output.name}: adapted weights are saved as a .safetensors file")
    if expert_minutes < 0:
        raise EditError(f"the expert's time budget cannot be negative ({expert_minutes!r})")
    return AdaptRequest(video.path, output, str(project.settings["checkpoint"]), float(minutes), int(steps), expert,
                        project.settings["device"], project.settings["detector"],
                        expert_minutes=float(expert_minutes) if expert else 0.0)


def adapt_speaker(progress, cancel, request: AdaptRequest) -> AdaptResult:
    """training.adapt on the project's video: faces detected (with the project's detector, as its renders
    find them), then the generator fine-tuned for the time budget; the weights are written at the output only when it completes (a cancel leaves nothing)."""
    import time

    from training.adapt import adapt

    started = time.perf_counter()
    result = adapt(request.video, request.output, base=request.base, expert=request.expert, minutes=request.minutes,
                   steps=request.steps, batch_size=request.batch_size, device=request.device,
                   detector=request.detector, cache_dir=request.detection_cache, progress=progress, cancel=cancel,
                   expert_minutes=request.expert_minutes)
    info = {"base": request.base, "frames": result["frames"], "steps": result["step"], "expert": result["expert"],
            "val_l1": result.get("val_l1"), "minutes": request.minutes,
            "seconds": round(time.perf_counter() - started, 1)}
    if result.get("expert_output"):
        info.update(expert_minutes=request.expert_minutes, expert_output=result["expert_output"])
    return AdaptResult(request, Path(result["output"]), info)


def commit_adapt(project: Project, result: AdaptResult, use: bool = False) -> AddAdaptedModel:
    """Record the adapted model in the project (one undo step; `use`: also make it the project's generator)."""
    return project.execute(AddAdaptedModel(project, result.output, info=result.info, use=use))
