"""Export: compose the original frames and each segment's chosen take with the dub into one MP4.

The editor runs `export_video` as a job (File ▸ Export…) and `python main.py export PROJECT -o OUT`
runs it on a saved project; both build the request with `export_request` from the same presets.
Qt-free: the request is a snapshot of the project, and `commit_export` records the result in it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.jobs import UserError, project_length
from core.project import EditError, Project

EXPORT_PRESETS = {  # name → (CRF, x264 preset)
    "High quality (CRF 18)": (18, "medium"),
    "Fast draft (CRF 23)": (23, "veryfast"),
    "Archive (CRF 12)": (12, "slow"),
}


@dataclass
class ExportRequest:
    video: Path
    dub: Path
    output: Path
    fps: float
    dub_seconds: float
    offset_frames: int
    policy: str  # the project's length policy (a still follows the dub whatever it is: core.plan)
    n_frames: int
    runs: list  # (start, end, take file or None, take start frame), covering [0, n_frames)
    crf: int
    preset: str
    preset_name: str
    project_file: Path | None = None  # never written over (an output named like the project)


@dataclass
class ExportResult:
    request: ExportRequest
    frames: int
    from_takes: int
    seconds: float


def export_runs(project: Project, n_frames: int) -> list:
    """[(start, end, take file or None, take start)] covering [0, n_frames): each segment's chosen take,
    the original frames elsewhere; neighbours from the same source merged."""
    runs, cursor = [], 0
    for s in project.segments:
        if s.start >= n_frames:
            break
        if s.start > cursor:
            runs.append((cursor, s.start, None, 0))
        take = project.takes.get(s.take_id) if s.take_id else None
        runs.append((s.start, min(s.end, n_frames), project.take_path(take) if take else None,
                     take.start if take else 0))
        cursor = min(s.end, n_frames)
    if cursor < n_frames:
        runs.append((cursor, n_frames, None, 0))
    merged = []
    for run in runs:
        if merged and merged[-1][1] == run[0] and merged[-1][2] == run[2] and merged[-1][3] == run[3]:
            merged[-1] = (merged[-1][0], run[1], run[2], run[3])
        else:
            merged.append(run)
    return merged


def export_request(project: Project, output, preset_name: str) -> ExportRequest:
    """Snapshot for exporting the project to `output` with one of EXPORT_PRESETS."""
    if project.dub is None:
        raise EditError("the project has no dub to export with")
    if project.dub.facts.duration is None:
        raise EditError("the dub's length is unknown: reopen the project")
    if preset_name not in EXPORT_PRESETS:
        raise EditError(f"unknown export preset {preset_name!r}")
    crf, preset = EXPORT_PRESETS[preset_name]
    n = project_length(project)
    return ExportRequest(project.video.path, project.dub.path, Path(output), project.fps, project.dub.facts.duration,
                         project.dub_offset, project.settings["length_policy"], n, export_runs(project, n), crf,
                         preset, preset_name, project.path)


def _fit(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """A take frame at the source's size (the encoder drops an odd last row/column)."""
    fh, fw = frame.shape[:2]
    if (fh, fw) == (height, width):
        return frame
    frame = frame[:height, :width]
    return np.pad(frame, ((0, height - frame.shape[0]), (0, width - frame.shape[1]), (0, 0)), mode="edge")


def _take_frames(take: Path, a: int, b: int, video, originals):
    """Frames a..b-1 of a take at the source's size, streamed; should the take be short (never
    expected), the original frames fill the rest."""
    from core.render import source_frames
    from core.video import VideoSource

    count = 0
    with VideoSource(take) as source:
        for _, frame in source.frames(a, b):
            yield _fit(frame, video.height, video.width)
            count += 1
    if count < b - a:
        yield from source_frames(video, originals[count:])


def export_video(progress, cancel, request: ExportRequest) -> ExportResult:
    """Compose the original frames and each segment's chosen take with the dub into one MP4 (atomic)."""
    import time

    from core.errors import Cancelled
    from core.plan import plan_frames
    from core.render import source_frames
    from core.video import VideoSource, VideoWriter

    started = time.perf_counter()
    takes = [r[2] for r in request.runs if r[2] is not None]
    for path in takes:
        if not Path(path).is_file():
            raise UserError(f"take file missing: {path} (re-render that segment, or choose the original)")
    done = from_takes = 0
    with VideoSource(request.video) as video, \
            VideoWriter(request.output, video.width, video.height, request.fps, audio_path=request.dub,
                        audio_offset_s=request.offset_frames / request.fps, crf=request.crf, preset=request.preset,
                        protect=(request.video, request.dub, request.project_file, *takes)) as writer:
        # the original frames as the renderer plans them: on the picture's frames (a VFR source conformed)
        dub_seconds = max(request.dub_seconds + request.offset_frames / request.fps, 0.0)
        plan, _ = plan_frames(video.picture_count, request.fps, dub_seconds, request.policy, video.is_image)
        source = video.picture_source(plan)
        n = min(len(source), request.n_frames)
        for start, end, take, take_start in request.runs:
            end = min(end, n)
            if start >= end:
                continue
            if take is None:
                frames = source_frames(video, source[start:end])
            else:
                frames = _take_frames(Path(take), start - take_start, end - take_start, video, source[start:end])
            for frame in frames:
                if cancel():
                    raise Cancelled("export cancelled")
                writer.write(frame)
                done += 1
                from_takes += take is not None
                progress(done, n, "export")
    return ExportResult(request, done, from_takes, time.perf_counter() - started)


def commit_export(project: Project, result: ExportResult):
    """Record the export in the project (what each segment exported with)."""
    r = result.request
    return project.record_export(r.output, preset=r.preset_name,
                                 info={"frames": result.frames, "from_takes": result.from_takes,
                                       "crf": r.crf, "x264_preset": r.preset})
