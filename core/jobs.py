"""The bodies of the editor's long jobs, Qt-free: probe media, detect segments, render a take,
smooth a take's mouth, score, find the face, read the original audio, check which models are
installed. Export is core.export's; speaker adaptation core.adapt's.

Each body takes `progress(done, total, stage)` and `cancel()` first and runs in a worker thread
(the editor's app.workers). None of them touches the Project: the UI thread takes a *request* (a
snapshot of what the job needs) before it starts, and applies the job's *result* to the project
as commands when it ends (`commit_*`). So an edit made while a job runs cannot tear its view of
the project, and a cancelled or failed job leaves the project exactly as it was.
"""
from __future__ import annotations

import copy
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.atomic import sha256_file
from core.errors import LipsmithError
from core.hparams import ACTOR_MOUTHS, HP
from core.plan import output_count, source_of
from core.project import (AddTake, Batch, ChooseTake, EditError, MediaFacts, Project, ReplaceSegments, SetScores,
                          normalise_setting, recorded_slip, same_scale)

# Render ▸ Render…'s "replace chosen takes": a render's take becomes the chosen one where a segment it
# covers had none; where one was chosen, only as the editor says (never behind the editor's back)
REPLACE_CHOSEN = {"never": "Never (only where a segment has no take)",
                  "better": "Where the new one scores better (LSE-C, once scored)",
                  "always": "Always"}
TAKE_SUFFIX = ".mkv"
# takes are intermediates: lossless H.264, re-encoded once at export. Lossless, every preset keeps the same
# pixels; ultrafast encodes 500 frames of 720p talking head in 6.6 ms of CPU a frame against veryfast's 17.9,
# for files 30 % larger (49 MB against 38 for 20 s)
TAKE_CRF, TAKE_PRESET = 0, "ultrafast"
WAVEFORM_RATE = 200  # waveform buckets per second


class UserError(LipsmithError):
    """A job's failure explained in words for the user (no file to name)."""

    def __init__(self, message: str):
        super().__init__(None, message)


# --------------------------------------------------------------------------- lengths (core.plan, as the renderer)


def media_length(project: Project) -> int:
    """Output frames of the project's media under its length policy (what a whole-clip render makes)."""
    video = project.video.facts
    return output_count(video.frame_count, project.fps, project.dub_seconds(), project.settings["length_policy"],
                        video.is_image)


def project_length(project: Project) -> int:
    """The timeline's extent: the media's output frames, and never shorter than the segments."""
    return max(media_length(project), project.segments[-1].end if project.segments else 0)


# --------------------------------------------------------------------------- probing media


@dataclass
class Waveform:
    """Peak envelope of the dub: `lo`/`hi` per bucket of 1/`rate` s (dub time, before the offset)."""
    lo: np.ndarray
    hi: np.ndarray
    rate: float
    duration: float


def make_waveform(audio: np.ndarray, sr: int = HP.sample_rate, rate: int = WAVEFORM_RATE) -> Waveform:
    step = max(1, int(sr // rate))
    n = max(1, math.ceil(audio.size / step))
    padded = np.zeros(n * step, np.float32)
    padded[:audio.size] = audio
    blocks = padded.reshape(n, step)
    return Waveform(blocks.min(axis=1), blocks.max(axis=1), sr / step, audio.size / sr)


@dataclass
class DubInfo:
    path: Path
    facts: MediaFacts
    waveform: Waveform


@dataclass
class MediaInfo:
    video: Path
    video_facts: MediaFacts
    dub: DubInfo


def load_dub(progress, cancel, dub) -> DubInfo:
    """Decode the dub once: its duration (for the project's facts) and its waveform."""
    from core.audio import is_silent, load_audio

    progress(0, 1, "dub")
    audio = load_audio(dub)
    if is_silent(audio):
        raise UserError(f"{Path(dub).name}: the dub is silent (peak below -60 dBFS); nothing to lip-sync to")
    facts = MediaFacts.probe_file(dub, duration=audio.size / HP.sample_rate)
    progress(1, 1, "dub")
    return DubInfo(Path(dub), facts, make_waveform(audio))


def probe_media(progress, cancel, video, dub) -> MediaInfo:
    """Facts of a new project's video and dub (opening a long video scans its packets: seconds)."""
    progress(0, 2, "probe")
    video_facts = MediaFacts.probe_video(video)
    if cancel():
        from core.errors import Cancelled

        raise Cancelled("cancelled")
    progress(1, 2, "probe")
    return MediaInfo(Path(video), video_facts, load_dub(lambda d, t, s: None, cancel, dub))


def installed_models(progress, cancel, generator="generator", expert="expert") -> dict:
    """{"generator": problem or None, "expert": problem or None}: which models a render or a score
    would find. Also imports torch off the UI thread, so the first render starts sooner."""
    from core.errors import WeightsError
    from core.weights import resolve

    out = {}
    for kind, name in (("generator", generator), ("expert", expert)):
        try:
            resolve(str(name))
            out[kind] = None
        except WeightsError as e:
            out[kind] = e.problem
    return out


# --------------------------------------------------------------------------- segments


def shift_segments(segments, offset_s: float):
    """Dub-time segments moved by the dub offset, still covering [0, end] (core.segments.Segment)."""
    from core.segments import SILENCE, Segment

    if not offset_s:
        return list(segments)
    out = []
    if offset_s > 0:
        out.append(Segment(0.0, offset_s, SILENCE))
    for s in segments:
        start, end = max(s.start_s + offset_s, 0.0), s.end_s + offset_s
        if end > start:
            out.append(Segment(start, end, s.kind))
    return out


def detect_segments(progress, cancel, dub, fps: float, n_frames: int, offset_frames: int = 0):
    """Speech / silence of the dub as output frame ranges (core.segments.FrameRange) over [0, n_frames)."""
    from core.segments import detect_segments_file, to_frames

    progress(0, 1, "speech")
    segments = detect_segments_file(dub, progress=lambda d, t: progress(d, t, "speech"), cancel=cancel)
    progress(1, 1, "speech")
    return to_frames(shift_segments(segments, offset_frames / fps), fps, n_frames)


def commit_segments(project: Project, ranges) -> ReplaceSegments:
    return project.execute(ReplaceSegments(project, ranges, text="Detect segments"))


# --------------------------------------------------------------------------- render a take


class _Frozen:
    """Stands in for the Project in `Project.render_options`: the settings snapshot the request took,
    so the job renders with exactly what the take will record, whatever is edited meanwhile."""

    def __init__(self, request: "RenderRequest"):
        self._settings, self.dub_offset, self.fps = request.settings, request.dub_offset, request.fps

    def effective_settings(self, segment_id=None) -> dict:
        return copy.deepcopy(self._settings)


@dataclass
class RenderRequest:
    video: Path
    dub: Path
    settings: dict  # project.effective_settings(segment or None) and the mouth asked for: what the take records
    dub_offset: int
    fps: float
    start: int
    end: int
    segment_id: str  # the segment the take belongs to (the first in the range)
    cache_dir: Path
    what: str  # "whole clip", "segment s3", "frames 10–80"
    replace: str = "never"  # where the take replaces a chosen one: REPLACE_CHOSEN
    detection_cache: str | None = None
    batch_size: int = 32


@dataclass
class RenderResult:
    request: RenderRequest
    file: Path
    start: int
    end: int
    hashes: dict
    generated: int
    no_face_ranges: list
    seconds: float
    device: str
    generated_mouth_ranges: list = field(default_factory=list)  # the actor's mouth asked, the generated one pasted
    warnings: list = field(default_factory=list)  # core.render.Renderer.warnings: for the user


def render_request(project: Project, start: int, end: int, segment_id: str | None = None,
                   what: str = "", mouth: str | None = None, replace: str = "never") -> RenderRequest:
    """Snapshot for rendering output frames [start, end): a segment's (its settings) or any range.
    `mouth`: "actor" or "generated" for this render (None: the project's setting). `replace`: where the
    take replaces a segment's chosen take (REPLACE_CHOSEN; it is chosen wherever there is none)."""
    if replace not in REPLACE_CHOSEN:
        raise EditError(f"replace chosen takes must be one of {', '.join(REPLACE_CHOSEN)}, not {replace!r}")
    if project.dub is None:
        raise EditError("the project has no dub yet: drop an audio file on the window")
    if project.cache_dir is None:
        raise EditError("save the project first: takes are stored in a folder beside the project file")
    owner = segment_id or next((s.id for s in project.segments if s.end > start), None)
    if owner is None:
        raise EditError("no segments yet: wait for speech detection (or run Render ▸ Detect segments)")
    settings = project.effective_settings(segment_id)
    settings.pop("start_frame", None)
    settings.pop("end_frame", None)
    if mouth is not None:
        settings["mouth"] = normalise_setting("mouth", mouth)
    return RenderRequest(project.video.path, project.dub.path, settings, project.dub_offset, project.fps,
                         int(start), int(end), owner, project.cache_dir, what or f"frames {start}–{end}", replace)


def render_take(progress, cancel, request: RenderRequest) -> RenderResult:
    """Render the request's range into a new file in the project's cache folder (atomic: nothing
    is left there when it fails or is cancelled). With segments slipped (the settings' `slips`), the
    generator hears, and the take carries, the dub as slipped (core.slip), from a temp file beside it."""
    from core.atomic import temp_beside
    from core.errors import WeightsError
    from core.render import Renderer
    from core.slip import write_slipped_dub

    options = Project.render_options(_Frozen(request), None, start_frame=request.start, end_frame=request.end,
                                     crf=TAKE_CRF, preset=TAKE_PRESET, cache_dir=request.detection_cache,
                                     batch_size=request.batch_size)
    request.cache_dir.mkdir(parents=True, exist_ok=True)
    output = request.cache_dir / f"take-{uuid.uuid4().hex[:10]}{TAKE_SUFFIX}"
    slips = request.settings.get("slips")
    slipped = temp_beside(output, "dub.wav") if slips else None
    try:
        if slipped is not None:
            write_slipped_dub(request.dub, slipped, slips, request.fps, request.dub_offset, HP.sample_rate, mono=True)
        try:
            renderer = Renderer(request.video, slipped or request.dub, options, progress, cancel)
        except WeightsError as e:
            if "not found" in e.problem:
                raise UserError("No generator model installed: choose a checkpoint with Render ▸ Generator "
                                f"model… ({e})") from None
            raise
        report = renderer.render_to(output)
    finally:
        if slipped is not None:
            slipped.unlink(missing_ok=True)
    progress(1, 1, "hash")
    hashes = {"file": sha256_file(output), "video": None, "dub": None}
    return RenderResult(request, output, renderer.range.start, renderer.range.stop, hashes, report.generated,
                        report.no_face_ranges, report.seconds, str(renderer.generator.device),
                        report.generated_mouth_ranges, list(renderer.warnings))


def render_step(take_id: str) -> tuple:
    """The merge key of the undo step that added a rendered take (its scores may join it)."""
    return ("render", take_id)


def take_hashes(project: Project, made_from: dict) -> dict:
    """What a take file was made from (`made_from`: its models' hashes) and the media's fingerprints,
    so a take whose inputs changed is recognised as stale."""
    return dict(made_from, video=project.video.facts.fingerprint,
                dub=project.dub.facts.fingerprint if project.dub else None)


def add_take(project: Project, file, segment_id: str, what: str, choose_for: list, **fields) -> str:
    """Add a take of `segment_id` made in `file` (`fields`: Project.new_take's) and choose it for the
    segments `choose_for`: one undo step, "`what` (Take N)", that its scores may join (render_step).
    The file is deleted again if the project can no longer take it. Returns the take's id."""
    try:
        take = project.new_take(segment_id, file, **fields)
        parts = [lambda: AddTake(project, take)] + [lambda sid=sid: ChooseTake(project, sid, take.id)
                                                    for sid in choose_for]
        project.execute(Batch(project, parts, f"{what} ({take.label})", merge_key=render_step(take.id)))
        return take.id
    except EditError:
        Path(file).unlink(missing_ok=True)
        raise


def commit_render(project: Project, result: RenderResult) -> str:
    """Add the rendered take and choose it for the segments it covers that had no take (and, with the
    request's `replace` "always", for those that had one): one undo step. "better" leaves the choice to
    its scores (commit_scores). Should the dub have been nudged while it rendered, the take is added but
    chosen nowhere (its mouth follows the old timing: see core.project.NudgeDub), and a segment slipped
    meanwhile does not choose it (SlipSegment). The file is deleted again if the project can no longer
    take it (its segment was removed). Returns the take's id."""
    req = result.request
    in_sync = req.dub_offset == project.dub_offset
    covered = [s.id for s in project.segments if in_sync and s.within(result.start, result.end)
               and recorded_slip(req.settings, s) == s.slip and (s.take_id is None or req.replace == "always")]
    report = {"no_face": [list(r) for r in result.no_face_ranges], "generated": result.generated,
              "seconds": round(result.seconds, 2), "device": result.device}
    if req.settings.get("mouth") in ACTOR_MOUTHS:
        report["generated_mouth"] = [list(r) for r in result.generated_mouth_ranges]
    if result.warnings:
        report["warnings"] = list(result.warnings)
    return add_take(project, result.file, req.segment_id, f"Render {req.what}", covered, settings=req.settings,
                    hashes=take_hashes(project, result.hashes), start=result.start, end=result.end, report=report)


# --------------------------------------------------------------------------- smooth a take


@dataclass
class SmoothRequest:
    take: Path  # the file of the segment's chosen take
    take_id: str
    segment_id: str
    start: int  # the take's output frames
    end: int
    window: int  # frames averaged (odd)
    settings: dict  # the take's: the face track and mask its render used
    track: TrackRequest
    dub_offset: int
    cache_dir: Path
    what: str  # "segment s3's take"


@dataclass
class SmoothResult:
    request: SmoothRequest
    file: Path
    hashes: dict


def smooth_request(project: Project, segment_id: str, window: int) -> SmoothRequest:
    """Snapshot for smoothing the mouth of `segment_id`'s chosen take over `window` frames."""
    s = project.segment(segment_id)
    if not s.take_id:
        raise EditError(f"segment {s.title} has no chosen take to smooth: render it first")
    if window < 3 or window % 2 == 0:
        raise EditError(f"the smoothing window must be an odd number of frames, 3 or more, not {window}")
    take = project.takes[s.take_id]
    path = project.take_path(take)
    if not path.is_file():
        raise EditError(f"the take file {path.name} is missing: re-render segment {s.title}")
    # the face and mask as the take's render found them (the project's settings fill in what it lacks)
    settings = copy.deepcopy({**project.settings, "dub_offset_frames": project.dub_offset, **take.settings})
    return SmoothRequest(path, take.id, s.id, take.start, take.end, int(window), settings,
                         track_request(project, take),
                         int(settings["dub_offset_frames"]), project.cache_dir, f"segment {s.title}'s take")


def smooth_take(progress, cancel, request: SmoothRequest) -> SmoothResult:
    """Average the take's mouth over the request's window into a new file in the cache folder
    (core.smooth; atomic: nothing is left there when it fails or is cancelled)."""
    from core.blend import BlendSettings
    from core.smooth import mouth_regions, smooth_video
    from core.video import VideoSource

    frames = range(request.start, request.end)
    with VideoSource(request.track.video) as source:
        shown = source.picture_source(source_of(np.asarray(frames), source.picture_count,
                                                request.settings["length_policy"], source.is_image))
        # the take's own source frames (and their context) are all the track needs: no whole-video detection
        track = face_track_in(progress, cancel, request.track.over(shown), source)
        regions = mouth_regions(track, shown, request.settings["pads"])
    # frames before a late dub were never generated (core.render): nothing to steady there
    regions = [None if k < request.dub_offset else r for k, r in zip(frames, regions)]
    output = request.cache_dir / f"take-{uuid.uuid4().hex[:10]}{TAKE_SUFFIX}"
    smooth_video(request.take, output, regions, request.window, BlendSettings.from_settings(request.settings),
                 crf=TAKE_CRF, preset=TAKE_PRESET, progress=lambda d, t: progress(d, t, "smooth"), cancel=cancel)
    progress(1, 1, "hash")
    return SmoothResult(request, output, {"file": sha256_file(output), "video": None, "dub": None})


def commit_smooth(project: Project, result: SmoothResult) -> str:
    """Add the smoothed take to the segment and choose it there: one undo step (scores join it, as a
    render's). It is added but not chosen when the dub was nudged, or the segment slipped, away from the
    timing the smoothed take was rendered for (see commit_render); the file is deleted again when the
    project can no longer take it. Returns the take's id."""
    req = result.request
    try:
        source = project.take(req.take_id)
    except EditError:
        Path(result.file).unlink(missing_ok=True)
        raise
    s = next((s for s in project.segments if s.id == req.segment_id), None)
    in_sync = s is not None and req.dub_offset == project.dub_offset and recorded_slip(req.settings, s) == s.slip
    chosen = [req.segment_id] if in_sync else []
    return add_take(project, result.file, req.segment_id, f"Smooth {req.what} over {req.window} frames", chosen,
                    settings=dict(req.settings, smoothed_from=req.take_id, window=req.window),
                    hashes=take_hashes(project, result.hashes), start=req.start, end=req.end, report=source.report)


# --------------------------------------------------------------------------- scoring


@dataclass
class ScoreRequest:
    expert: str
    fps: float
    detector: str  # the project's face detector: the faces in a take are found as its render found them
    render: str | None = None  # the take a render just made, when only its segments are scored
    replace: str = "never"  # the render's REPLACE_CHOSEN: "better" chooses it where it scores better
    rows: dict = field(default_factory=dict)  # take file → [(segment id, start s, end s) within the take]
    take_ids: dict = field(default_factory=dict)  # take file → take id
    segments: dict = field(default_factory=dict)  # segment id → (take id, start, end) as scored


def score_request(project: Project, expert: str = "expert", render: str | None = None,
                  replace: str = "never") -> ScoreRequest:
    """Score each speech segment's chosen take (the result the segment exports with); with `render`
    (the id of the take a render just made), that take over every speech segment it covers for the dub
    where it is (whether they export it or not: one pass over its file either way), and the scores join
    the render's undo step (commit_scores), where `replace` "better" chooses it wherever it beats the
    chosen take. Empty when nothing is rendered: the job then says so, after checking the expert is
    there at all."""
    request = ScoreRequest(expert, project.fps, project.settings["detector"], render, replace)
    new = project.takes.get(render)
    for s in project.segments:
        if render is None:
            take_id = s.take_id
        else:
            in_sync = (new is not None and new.fits(s)
                       and new.settings.get("dub_offset_frames", project.dub_offset) == project.dub_offset)
            take_id = render if in_sync else None
        if s.kind != "speech" or not take_id:
            continue
        take = project.takes[take_id]
        path = project.take_path(take)
        request.take_ids[path] = take.id
        request.segments[s.id] = (take.id, s.start, s.end)
        request.rows.setdefault(path, []).append(
            (s.id, (s.start - take.start) / project.fps, (s.end - take.start) / project.fps))
    return request


NO_EXPERT = "No sync expert installed"


def score_takes(progress, cancel, request: ScoreRequest) -> dict:
    """{"scores": {segment id: (LSE-C, None)}, "takes": {take id: the take's LSE-C, LSE-D and per-frame
    confidence curve}, "scorer": the scorer's name, "scale": what the project records of it (SetScores), "segments": {segment id: (take id, start, end) as
    scored}, "render": the request's}."""
    from core.errors import WeightsError
    from core.faces import get_detector
    from core.sync import load_scorer, scale_of, score_video

    try:
        scorer = load_scorer(request.expert)
    except WeightsError as e:
        raise UserError(f"{NO_EXPERT}: sync confidence needs a trained expert checkpoint ({e.problem}).") from None
    if not request.rows:
        raise UserError("Nothing to score yet: render the clip or a segment first (segments are scored on "
                        "their chosen takes).")
    detector = get_detector(request.detector)
    out, curves, total = {}, {}, len(request.rows)
    for n, (take, rows) in enumerate(request.rows.items()):
        scores = score_video(take, None, scorer=scorer, cancel=cancel, detector=detector,
                             progress=lambda d, t, s="score": progress(d, t, f"{s} {n + 1}/{total}"))
        for segment_id, a, b in rows:
            c = scores.segment_confidence(a, b)
            out[segment_id] = (c if math.isfinite(c) else None, None)
        take_id = request.take_ids.get(take)
        if take_id is not None:
            curves[take_id] = {"lse_c": scores.lse_c, "lse_d": scores.lse_d, "scorer": scorer.name,
                               "frame_conf": np.asarray(scores.frame_conf, dtype=np.float64),
                               "frame_fps": float(scores.frame_fps)}
    return {"scores": out, "takes": curves, "scorer": scorer.name, "scale": scale_of(scorer),
            "segments": dict(request.segments), "render": request.render, "replace": request.replace}


def commit_scores(project: Project, result: dict) -> list[str]:
    """Segment confidences and each scored take's curve, as one undo step. A score lands on the segment
    when it measured what the segment exports, else on the take it measured (a render's take over a
    segment that keeps its chosen one: the takes list shows it). What was removed meanwhile is skipped,
    and so is a segment that moved meanwhile (a dub nudge, a split): its score would describe other frames.
    A render's scores join its step while it is the latest (one undo takes back the render and what it
    measured), else they are a step of their own; with the render's `replace` "better", that step also
    chooses its take where it scored a higher LSE-C than the chosen take (the chosen one not scored
    there: kept). Returns the ids of the segments it chose the render's take for."""
    scored = result.get("segments") or {}
    now = {s.id: s for s in project.segments}
    scores, takes = {}, {tid: dict(v) for tid, v in result.get("takes", {}).items() if tid in project.takes}
    for sid, (lse_c, lse_d) in result["scores"].items():
        s = now.get(sid)
        take_id, start, end = scored.get(sid, (s.take_id, s.start, s.end) if s else (None, None, None))
        if s is None or (start, end) != (s.start, s.end) or (take_id is not None and take_id not in project.takes):
            continue  # removed, moved, or its take removed meanwhile
        if take_id == s.take_id:
            scores[sid] = (lse_c, lse_d)
        else:
            values = takes.setdefault(take_id, {})
            values["segments"] = {**values.get("segments", {}), sid: [start, end, lse_c, lse_d]}
    text = f"Score segments ({result['scorer']})"
    render = result.get("render")
    if render is None:
        project.execute(SetScores(project, scores, text=text, take_scores=takes, scorer=result.get("scale")))
        return []
    better = []
    if result.get("replace") == "better":
        comparable = result.get("scale") is None or same_scale(project.scorer, result["scale"])
        for sid, (_, _, lse_c, _) in takes.get(render, {}).get("segments", {}).items():
            # the chosen take's over the segment (ChooseTake keeps it so), if on the same expert's scale
            chosen = now[sid].lse_c if comparable else None
            if lse_c is not None and chosen is not None and lse_c > chosen:
                better.append(sid)
    parts = [lambda: SetScores(project, scores, text=text, take_scores=takes, scorer=result.get("scale"))]
    parts += [lambda sid=sid: ChooseTake(project, sid, render) for sid in better]
    project.execute(Batch(project, parts, text + (f"; chose the new take for {len(better)} segment(s)" if better
                                                  else ""), merge_key=render_step(render)))
    return better


# --------------------------------------------------------------------------- the original audio, the face track


def load_original_audio(progress, cancel, video) -> Waveform | None:
    """The video's own audio as a waveform (for the timeline's Original lane); None when it has none."""
    from core.audio import load_audio
    from core.errors import MediaError

    progress(0, 1, "audio")
    try:
        audio = load_audio(video)
    except MediaError as e:
        if "no audio stream" in e.problem or "empty" in e.problem:
            return None
        raise
    progress(1, 1, "audio")
    return make_waveform(audio)


@dataclass
class TrackRequest:
    video: Path
    detector: str
    face_index: int | None
    smooth_window: int
    detection_cache: str | None = None
    frames: range | None = None  # the source frames the track is for (core.faces.track_video); None: all

    @property
    def key(self) -> tuple:
        return (self.video, self.detector, self.face_index, self.smooth_window, self.frames)

    def over(self, source_frames) -> "TrackRequest":
        """This track for the span of `source_frames` only (and, as track_video adds, their context)."""
        from dataclasses import replace

        return replace(self, frames=range(int(np.min(source_frames)), int(np.max(source_frames)) + 1))


def track_request(project: Project, take=None) -> TrackRequest:
    """The face track the project's settings describe, or the one `take`'s render followed (the settings
    it recorded; the project's fill in what it lacks)."""
    s = project.settings if take is None else {**project.settings, **take.settings}
    return TrackRequest(project.video.path, s["detector"], s["face_index"], s["smooth_window"])


@dataclass
class PictureTrack:
    """The face the renderer would dub (core.faces.FaceTrack, indexed by source frame), every face there is
    to choose from (core.faces.FaceChoices, from the same detections), the detections themselves (a
    segment that dubs another face builds its track from them) and the video's timeline: picture
    frame k shows source frame `timeline[k]` (a VFR video's conform)."""
    track: object
    timeline: np.ndarray
    faces: object
    detections: object


def face_track(progress, cancel, request: TrackRequest) -> PictureTrack:
    """The face track the mask overlay draws and the faces the face picker numbers, with the picture's
    timeline to index them by. Detections come from the per-video cache when a render made them; else
    this detects."""
    from core.faces import FaceChoices, build_track, detect_video, get_detector
    from core.faces.track import with_context
    from core.video import VideoSource

    with VideoSource(request.video) as source:
        detections = detect_video(source, get_detector(request.detector), cache_dir=request.detection_cache,
                                  progress=lambda d, t: progress(d, t, "detect"), cancel=cancel,
                                  frames=with_context(request.frames, smooth_window=request.smooth_window))
        track = build_track(detections, face_index=request.face_index, smooth_window=request.smooth_window)
        return PictureTrack(track, source.picture_source(np.arange(source.picture_count)), FaceChoices(detections),
                            detections)


def face_track_in(progress, cancel, request: TrackRequest, source):
    """The request's core.faces.FaceTrack (by source frame) of `source`, the request's video open."""
    from core.faces import get_detector, track_video

    return track_video(source, detector=get_detector(request.detector), cache_dir=request.detection_cache,
                       face_index=request.face_index, smooth_window=request.smooth_window,
                       progress=lambda d, t: progress(d, t, "detect"), cancel=cancel, frames=request.frames)
