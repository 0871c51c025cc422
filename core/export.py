"""Export: compose the original frames and each segment's chosen take with the dub into one file.

The editor runs `export_video` as a job (File ▸ Export…) and `python main.py export PROJECT -o OUT`
runs it on a saved project; both build the request with `export_request` from the same presets.
Qt-free: the request is a snapshot of the project, and `commit_export` records the result in it.

A delivery is H.264 MP4, ProRes 422 HQ or DNxHR HQ (core.video.VIDEO_CODECS) at the source's size,
rate and colour tags, starting at the source's timecode, of the whole project or an in-out range; its
audio the dub, the dub and the video's own track as a second stream, or a mix of the two, each
track normalised to a broadcast loudness (core.loudness) if asked. The dub is the one the editor hears:
each slipped segment's line moved (core.slip). The audio tracks are built first,
at the picture's exact length, in temp files beside the output; then the frames are encoded and muxed
with them in one atomic write.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.delivery import AUDIO_MODES, EXPORT_PRESETS
from core.jobs import UserError, project_length
from core.project import EditError, Project



def default_format(output) -> str:
    """The picture format an output's name asks for: ProRes in a .mov, H.264 elsewhere."""
    return "prores" if Path(output).suffix.lower() == ".mov" else "h264"


def export_inputs(project: Project) -> tuple[Path, ...]:
    """The files an export of `project` reads and must never write over: the video, the dub, the project file."""
    return tuple(p for p in (project.video.path, project.dub.path if project.dub else None, project.path) if p)


def unused_output(path, inputs) -> Path:
    """`path`, or where it names one of `inputs`, the first of NAME-lipsync, NAME-lipsync-2, … beside it
    that does not (an export never proposes to write over its own sources)."""
    from itertools import chain, count

    from core.video import same_file

    path = Path(path)
    names = (path.with_name(f"{path.stem}-lipsync{'' if n == 1 else f'-{n}'}{path.suffix}") for n in count(1))
    return next(candidate for candidate in chain([path], names)
                if not any(same_file(candidate, source) for source in inputs))


def suggested_output(project: Project, folder) -> Path:
    """The file an export is first proposed to: the last export's, else <folder>/<the project's name>.mp4
    (unsaved: the video's name), never one of its inputs."""
    if project.exports:
        path = project.exports[-1].path
    else:
        path = Path(folder) / f"{(project.path or project.video.path).stem}.mp4"
    return unused_output(path, export_inputs(project))


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
    format: str = "h264"  # a core.video.VIDEO_CODECS name
    audio: str = "dub"  # an AUDIO_MODES name
    dub_level: float = 0.0  # dB, in a mix
    original_level: float = 0.0  # dB, in a mix
    loudness: str | None = None  # a core.loudness.LOUDNESS_TARGETS name, or None to leave the levels
    start: int = 0  # the range of frames exported: [start, end)
    end: int | None = None  # None: to the end
    slips: tuple = ()  # Project.slips: segments whose own dub is moved (core.slip), as delivered


@dataclass
class ExportResult:
    request: ExportRequest
    frames: int
    from_takes: int
    seconds: float
    notes: list  # what was converted on the way, in words
    loudness: list  # per audio track: (name, before, after) core.loudness.Loudness, None where not normalised
    source_frames: np.ndarray  # the source frame each exported frame shows (a take's frames are made from it)


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


def export_request(project: Project, output, preset_name: str, format: str | None = None, audio: str = "dub",
                   dub_level: float = 0.0, original_level: float = 0.0, loudness: str | None = None,
                   start: int = 0, end: int | None = None) -> ExportRequest:
    """Snapshot for exporting the project's frames [start, end) to `output` with one of EXPORT_PRESETS, as
    `format` (default_format of the output's name), with `audio` (AUDIO_MODES) at a `loudness` target."""
    from core.delivery import LOUDNESS_TARGETS
    from core.video import VIDEO_CODECS

    if project.dub is None:
        raise EditError("the project has no dub to export with")
    if project.dub.facts.duration is None:
        raise EditError("the dub's length is unknown: reopen the project")
    if preset_name not in EXPORT_PRESETS:
        raise EditError(f"unknown export preset {preset_name!r}")
    format = format or default_format(output)
    for value, known, what in ((format, VIDEO_CODECS, "format"), (audio, AUDIO_MODES, "audio"),
                               (loudness or "off", [*LOUDNESS_TARGETS, "off"], "loudness")):
        if value not in known:
            raise EditError(f"unknown export {what} {value!r}: {', '.join(known)}")
    crf, preset = EXPORT_PRESETS[preset_name]
    n = project_length(project)
    end = n if end is None else end
    if not 0 <= start < end <= n:
        raise EditError(f"the range {start / project.fps:.3f}-{end / project.fps:.3f} s (frames {start}-{end}) is "
                        f"not within the project's {n / project.fps:.3f} s ({n} frames)")
    return ExportRequest(project.video.path, project.dub.path, Path(output), project.fps, project.dub.facts.duration,
                         project.dub_offset, project.settings["length_policy"], n, export_runs(project, n), crf,
                         preset, preset_name, project.path, format, audio, dub_level, original_level,
                         None if loudness == "off" else loudness, start, end, project.slips())


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
    """Compose the original frames and each segment's chosen take with the dub into one file (atomic)."""
    import time

    from core.atomic import temp_beside
    from core.errors import Cancelled, MediaError
    from core.plan import plan_frames
    from core.render import source_frames
    from core.timecode import Timecode
    from core.video import VIDEO_CODECS, VideoSource, VideoWriter, check_video_output

    started = time.perf_counter()
    takes = [r[2] for r in request.runs if r[2] is not None]
    protect = (request.video, request.dub, request.project_file, *takes)
    check_video_output(request.output, protect, request.format)  # before minutes of work, not after
    for path in takes:
        if not Path(path).is_file():
            raise UserError(f"take file missing: {path} (re-render that segment, or choose the original)")
    done = from_takes = 0
    temps = []  # the audio tracks' temp files beside the output (after the slipped dub they are made from)
    try:
        with VideoSource(request.video) as video:
            if request.audio != "dub" and not video.has_audio:
                raise MediaError(request.video, f"has no audio track of its own for --audio {request.audio}")
            # the original frames as the renderer plans them: on the picture's frames (a VFR source conformed)
            dub_seconds = max(request.dub_seconds + request.offset_frames / request.fps, 0.0)
            plan, _ = plan_frames(video.picture_count, request.fps, dub_seconds, request.policy, video.is_image)
            source = video.picture_source(plan)
            n = min(len(source), request.n_frames)
            first, last = request.start, min(request.end or n, n)
            codec = VIDEO_CODECS[request.format]
            notes = _conversion_notes(video, codec)
            names = {"dub": ["dub"], "dub+original": ["dub", "original"], "mix": ["mix"]}[request.audio]
            # the dub as the editor hears it (each slipped segment's line moved: core.slip), then the tracks
            for name in (["slipped-dub"] if request.slips else []) + names:
                try:
                    temps.append(temp_beside(request.output, f"{name}.wav"))
                except OSError as e:
                    raise MediaError(request.output, f"cannot write: {e.strerror or e}") from None
            dub_file = request.dub
            if request.slips:
                from core.loudness import SAMPLE_RATE
                from core.slip import write_slipped_dub

                dub_file = write_slipped_dub(request.dub, temps[0], request.slips, request.fps,
                                             request.offset_frames, SAMPLE_RATE)
            tracks = temps[-len(names):]
            loudness = []
            for name, track in zip(names, tracks):
                before, mode = _audio_track(request, name, first, last, track, dub_file)
                loudness.append((name, before, None))
                if mode == "dynamic":
                    notes.append(f"{name} audio: one gain would not keep it under the true-peak ceiling or "
                                 "its loudness range: loudnorm normalised it dynamically")
            timecode = Timecode.of(request.fps, video.start_timecode).text(first)
            with VideoWriter(request.output, video.width, video.height, request.fps, audio_path=tracks[0],
                             extra_audio=tracks[1:], crf=request.crf, preset=request.preset, protect=protect,
                             codec=request.format, colour=video.colour, timecode=timecode) as writer:
                for start, end, take, take_start in request.runs:
                    start, end = max(start, first), min(end, last)
                    if start >= end:
                        continue
                    if take is None:
                        frames = source_frames(video, source[start:end])
                    else:
                        frames = _take_frames(Path(take), start - take_start, end - take_start, video,
                                              source[start:end])
                    for frame in frames:
                        if cancel():
                            raise Cancelled("export cancelled")
                        writer.write(frame)
                        done += 1
                        from_takes += take is not None
                        progress(done, last - first, "export")
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)
    if request.loudness:
        from core.delivery import LOUDNESS_TARGETS

        target = LOUDNESS_TARGETS[request.loudness][0]
        loudness = [(name, before, _measure_output(request.output, i) if before else None)
                    for i, (name, before, _) in enumerate(loudness)]
        for name, before, after in loudness:
            if before is None:
                notes.append(f"{name} audio: silent, left as it is")
            elif abs(after.integrated - target) > 1.0:
                notes.append(f"{name} audio: {after.integrated:.1f} LUFS, not {target:g}: its peaks hold it under "
                             "the true-peak ceiling")
    return ExportResult(request, done, from_takes, time.perf_counter() - started, notes, loudness,
                        np.asarray(source[first:last]))


def _conversion_notes(video, codec) -> list:
    """What the export changes of the source's picture, in words (informational: each is expected)."""
    if video.is_image:
        return []
    notes = []
    if video.pix_fmt != codec.pix_fmt:
        notes.append(f"picture {video.pix_fmt} -> {codec.pix_fmt}, {codec.title}")
    if re.search(r"p(9|1[0-6])", video.pix_fmt):  # the frames are the renderer's: 8-bit BGR
        notes.append(f"the source's {video.pix_fmt} passes through 8 bits per channel on the way")
    unknown = [tag for tag, value in vars(video.colour).items() if value is None]
    if unknown:
        notes.append(f"the source leaves its colour {', '.join(unknown)} untagged: written as BT.709 "
                     "(limited range)")
    return notes


def _audio_track(request: ExportRequest, name: str, first: int, last: int, output, dub_file: Path):
    """Write audio track `name` (dub, original or mix) of frames [first, last) to `output` (WAV), at the
    request's loudness target, the dub read from `dub_file` (the request's, or it slipped); returns (its
    loudness before, loudnorm's mode) when normalised, else (None, None)."""
    import ffmpeg

    from core.delivery import LOUDNESS_TARGETS
    from core.loudness import SAMPLE_RATE, SILENCE, measure, normalise, write
    from core.video import FINITE_EXPR

    seconds = f"{(last - first) / request.fps:.6f}"

    def placed(stream, offset_s):
        """`stream` with its sample 0 at `offset_s` of the export, padded or cut to its length."""
        stream = stream.filter("aeval", exprs=FINITE_EXPR, c="same").filter("asetpts", "PTS-STARTPTS")
        if offset_s > 0:
            stream = stream.filter("adelay", delays=f"{offset_s * 1000:.3f}", all=1)
        elif offset_s < 0:
            stream = stream.filter("atrim", start=f"{-offset_s:.6f}").filter("asetpts", "PTS-STARTPTS")
        return (stream.filter("apad", whole_dur=seconds).filter("atrim", end=seconds)
                .filter("aresample", SAMPLE_RATE))

    def dub():
        return placed(ffmpeg.input(str(dub_file))["a:0"],
                      (request.offset_frames - first) / request.fps)

    def original():
        return placed(ffmpeg.input(str(request.video))["a:0"], -first / request.fps)

    def mix():
        levels = [dub().filter("volume", f"{request.dub_level}dB"),
                  original().filter("volume", f"{request.original_level}dB")]
        levels = [s.filter("aformat", channel_layouts="stereo") for s in levels]
        return ffmpeg.filter(levels, "amix", inputs=2, normalize=0, duration="longest")

    build = {"dub": dub, "original": original, "mix": mix}[name]
    source = request.dub if name == "dub" else request.video
    if request.loudness:
        target = LOUDNESS_TARGETS[request.loudness][0]
        before = measure(build(), source, target)
        if before.integrated > SILENCE:
            return before, normalise(build(), target, before, output, source)
        # silence: no gain gives it a level, so it is written as it is
    write(build(), output, source)
    return None, None


def _measure_output(path, index: int):
    import ffmpeg

    from core.loudness import measure

    return measure(ffmpeg.input(str(path))[f"a:{index}"], path)


def commit_export(project: Project, result: ExportResult):
    """Record the export in the project (what each segment exported with)."""
    r = result.request
    return project.record_export(r.output, preset=r.preset_name,
                                 info={"frames": result.frames, "from_takes": result.from_takes,
                                       "crf": r.crf, "x264_preset": r.preset, "format": r.format, "audio": r.audio,
                                       "loudness": r.loudness, "range": [r.start, r.end]})
