"""Lipsmith command line: `python main.py render VIDEO DUB -o OUT.mp4`, and friends.

Exit codes: 0 done, 1 bad input or a failed job (one line naming the file and the problem),
2 bad usage (argparse: an unknown option, a missing argument, a value out of range),
128 + the signal's number when stopped by one: 130 Ctrl-C (SIGINT), 143 SIGTERM (kill), 129 SIGHUP
(the terminal closed); each ends the job as cleanly as Ctrl-C does.

The parser is built without torch or the trainers: each command imports its implementation
when it runs.
"""
import argparse
import math
import os
import sys
from pathlib import Path

from tqdm import tqdm

from core import __version__
from core.cli_types import count, crf, finite_float, frame_of, number, positive_int, time_value
from core.threads import let_idle_torch_threads_sleep
from training.cli import TRAINING_COMMANDS, add_parsers


class ProgressBar:
    """A job's progress(done, total, stage) as one tqdm bar per stage on stderr (frames/s, ETA)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.stage = None
        self.bar = None

    def __call__(self, done: int, total: int, stage: str = "render"):
        if self.quiet:
            return
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=f"{stage:>7}", unit="frames", dynamic_ncols=True, file=sys.stderr)
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def add_render_parser(sub):
    from core.hparams import DEFAULT_MOUTH, LENGTH_POLICIES, MOUTH_MODES

    p = sub.add_parser("render", help="lip-sync a video (or a still portrait) to a dubbed track")
    p.add_argument("video", help="video file, or a still image for static mode")
    p.add_argument("dub", help="dubbed audio (any format ffmpeg reads, or a video's audio track)")
    p.add_argument("-o", "--output", required=True, help="output .mp4 (or .mov, .mkv)")
    p.add_argument("--checkpoint", default="generator",
                   help="generator: a bundled model name, our .safetensors or an official wav2lip(_gan).pth")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    rng = p.add_argument_group("range (output frames; default the whole clip)")
    rng.add_argument("--start-frame", type=count, help="first output frame")
    rng.add_argument("--end-frame", type=positive_int, help="output frame to stop before")
    rng.add_argument("--from", dest="from_time", type=time_value,
                     help="start time: seconds (12.5 or 0:12.5) or the video's timecode (01:00:12:12, which counts "
                          "from its start timecode; ';' before the frames in drop-frame)")
    rng.add_argument("--to", dest="to_time", type=time_value, help="end time, as --from: rendering stops before it")
    p.add_argument("--length", choices=LENGTH_POLICIES, default="cut",
                   help="when dub and video differ: cut to the shorter, loop or bounce the video to the dub's "
                        "length, or pad with the original frames (default cut)")
    p.add_argument("--dub-offset", type=finite_float, default=0.0,
                   help="seconds to delay the dub (negative: earlier); it must still overlap the picture")
    p.add_argument("--pads", type=number(int), nargs=4, metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"), default=[0, 10, 0, 0],
                   help="pixels added around the face box (default 0 10 0 0)")
    p.add_argument("--smooth", type=count, default=5, help="face box smoothing window in frames (0: off)")
    p.add_argument("--face", type=count, default=None,
                   help="which face when several: 0 = largest, most central (default), 1 = next, …")
    p.add_argument("--detector", default="retinaface", choices=["retinaface", "face-alignment"],
                   help="face detector (default retinaface, which ships its weights)")
    p.add_argument("--face-weights", metavar="DIR",
                   help="folder holding face-alignment's s3fd-619a316812.pth and 2DFAN4-11f355bf06.pth.tar "
                        "(default: the torch hub cache); never downloaded")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--mouth", choices=MOUTH_MODES, default=DEFAULT_MOUTH,
                   help="actor (default): the actor's own lips, teeth and skin from frames at least 1 s away, in the "
                        "shape the generator draws for the dub (sharp; a still or a short shot gets the generated "
                        "mouth); actor-closing: the same, shut with one of the actor's closed mouths where the dub "
                        "shuts real lips (p/b/m, pauses; more closures, less steady: see the README); generated: the "
                        "generator's mouth alone")
    p.add_argument("--feather", type=number(float, lambda v: 0 <= v <= 1, "a fraction in [0, 1]"), default=0.08,
                   help="mask feather, fraction of the face size")
    p.add_argument("--no-color-match", action="store_true", help="paste the generated colours as they are")
    p.add_argument("--crf", type=crf, default=18, help="H.264 quality, 0-51 (lower is better, default 18)")
    p.add_argument("--preset", default="veryfast",
                   help="x264 preset (default veryfast: at CRF 18 it encodes 2.6x faster than medium for a file of "
                        "similar size, which lets a width-1 render run in real time on 2 cores)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the generator (default: only for long CPU jobs)")
    p.add_argument("--cache-dir", help="face detection cache folder")
    p.add_argument("--allow-silent", action="store_true", help="render even when the dub is silent")
    p.add_argument("--strict", action="store_true",
                   help="refuse a damaged or truncated video instead of warning and rendering what decodes")
    p.add_argument("--expert", default="expert",
                   help="sync expert used to score the result (ours, lipsync_expert.pth or syncnet_v2.model)")
    p.add_argument("--no-score", action="store_true", help="skip scoring the result")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_render)


def cmd_render(args) -> int:
    from core.blend import BlendSettings
    from core.atomic import interrupted
    from core.render import RenderOptions, Renderer
    from core.video import check_video_output

    check_video_output(args.output, protect=(args.video, args.dub))  # fail before minutes of detection, not after
    start, end = args.start_frame or 0, args.end_frame
    if args.from_time is not None or args.to_time is not None:
        from core.errors import MediaError
        from core.timecode import Timecode, TimecodeError
        from core.video import VideoSource

        with VideoSource(args.video) as probe:  # seconds and timecodes become frames at the video's rate
            timecode = Timecode.of(probe.fps, probe.start_timecode)
        try:
            start = frame_of(args.from_time, timecode) if args.from_time is not None else start
            end = frame_of(args.to_time, timecode) if args.to_time is not None else end
        except TimecodeError as exc:
            raise MediaError(args.video, f"--from/--to: {exc}") from None
    options = RenderOptions(
        checkpoint=args.checkpoint, device=args.device, start_frame=start, end_frame=end,
        length_policy=args.length, pads=tuple(args.pads), smooth_window=args.smooth, face_index=args.face,
        detector=args.detector, detector_weights=args.face_weights, cache_dir=args.cache_dir,
        batch_size=args.batch_size, dub_offset_s=args.dub_offset,
        blend=BlendSettings(feather=args.feather, color_match=not args.no_color_match), compile=args.compile,
        crf=args.crf, preset=args.preset, allow_silent_dub=args.allow_silent, strict=args.strict,
        mouth=args.mouth)
    bar = ProgressBar(args.quiet)
    try:
        renderer = Renderer(args.video, args.dub, options, progress=bar, cancel=interrupted)
        for warning in renderer.warnings:
            tqdm.write(f"warning: {warning}", file=sys.stderr)
        report = renderer.render_to(args.output)
    finally:
        bar.close()
    print(f"wrote {report.output}: {report.frames} frames, {report.generated} lip-synced, "
          f"{report.fps:.1f} frames/s on {renderer.generator.device}")
    if report.faces_seen > 1:
        print(f"note: up to {report.faces_seen} faces per frame; used face {args.face or 0} "
              f"(choose another with --face)")
    if report.no_face_frames:
        spans = ", ".join(f"{a}-{b - 1}" for a, b in report.no_face_ranges[:8])
        print(f"note: no face in {len(report.no_face_frames)} frames (passed through unchanged): {spans}")
    if report.generated_mouth_frames and renderer.actor is not None:  # a still: its warning said why
        spans = ", ".join(f"{a}-{b - 1}" for a, b in report.generated_mouth_ranges[:8])
        print(f"note: the generated mouth in {len(report.generated_mouth_frames)} frames (no mouth of the actor's "
              f"like it): {spans}")
    if report.closed_frames:
        print(f"note: the dub shut the actor's lips on {report.closed_frames} frames, in part or whole (with one "
              f"of the actor's closed mouths)")
    if not args.no_score:
        score_render(renderer, report, args.expert)
    return 0


def score_render(renderer, report, expert: str):
    """Print the output's sync scores, reusing the source's face track (no second detection).
    The output is complete by now: a result too short to score is a note, and an error says so."""
    from core.errors import LipsmithError, TooShort, WeightsError
    from core.sync import load_scorer, score_video

    try:
        scorer = load_scorer(expert)
    except WeightsError as exc:
        print(f"note: not scored: no sync expert available ({exc})")
        return
    frame_map = renderer.source[renderer.range.start:renderer.range.stop]
    # against the output's own audio track: it is the dub as muxed (offset, range), not the dub file
    try:
        scores = score_video(report.output, scorer=scorer, track=renderer.track, frame_map=frame_map)
    except TooShort as exc:
        print(f"note: not scored: {exc}")
        return
    except LipsmithError as exc:
        raise LipsmithError(exc.path, f"{exc.problem} (while scoring; {report.output} was written and is "
                                      "complete)") from None
    print_scores(scores, "result")


def add_score_parser(sub):
    p = sub.add_parser("score", help="lip-sync confidence (LSE-D / LSE-C), AV offset and per-segment verdicts")
    p.add_argument("video")
    p.add_argument("dub", nargs="?", help="audio to score against (default: the video's own track)")
    p.add_argument("--expert", default="expert",
                   help="sync expert: bundled name, .safetensors, lipsync_expert.pth, or the official "
                        "syncnet_v2.model (the paper's LSE-D/LSE-C protocol)")
    p.add_argument("--segments", action="store_true", help="also score each speech segment of the audio")
    p.add_argument("--threshold", type=finite_float, default=None,
                   help="segment LSE-C below this is 'weak' (default: the scorer's own, 0.0734 for the bundled "
                        "expert, 1.0 for syncnet_v2: their scales differ)")
    p.add_argument("--json", action="store_true", help="print JSON for tools")
    p.add_argument("--cache-dir", help="face detection cache folder")
    p.add_argument("--face", type=count, default=None, help="which face when several are visible")
    p.set_defaults(run=cmd_score)


def segment_table(scores, audio_path, threshold: float) -> list:
    from core.segments import detect_segments_file

    rows = []
    for seg in detect_segments_file(audio_path):
        conf = scores.segment_confidence(seg.start_s, seg.end_s)
        if not seg.is_speech:
            verdict = "rest"
        elif conf != conf:  # NaN: no face over the whole segment
            verdict = "no face"
        else:
            verdict = "ok" if conf >= threshold else "weak"
        rows.append({"start_s": round(seg.start_s, 3), "end_s": round(seg.end_s, 3), "kind": seg.kind,
                     "lse_c": None if conf != conf else round(conf, 3), "verdict": verdict})
    return rows


def print_scores(scores, label: str):
    # offset sign: positive = the audio lags the video; syncnet_python prints the opposite sign
    reference = f", syncnet_python's AV offset {-scores.offset_frames:+d}" if scores.scorer.startswith("syncnet_v2") else ""
    print(f"{label}: LSE-D {scores.lse_d:.3f}  LSE-C {scores.lse_c:.3f}  AV offset {scores.offset_frames:+d} frames "
          f"({scores.offset_ms:+.0f} ms)  [scorer {scores.scorer}, {scores.windows} windows{reference}]")


def finite_or_null(value):
    """`value` with NaN and infinities as None: JSON has no such numbers (json.dumps writes a bare NaN)."""
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def cmd_score(args) -> int:
    import json

    from core.errors import FaceError
    from core.sync import load_scorer, score_video

    scorer = load_scorer(args.expert)
    scores = score_video(args.video, args.dub, scorer=scorer, cache_dir=args.cache_dir, face_index=args.face)
    if not scores.windows:
        raise FaceError(args.video, f"no face to score: no {scorer.frames} consecutive frames show one")
    result = scores.to_dict()
    if args.segments:
        threshold = scorer.weak_below if args.threshold is None else args.threshold
        result["threshold"] = threshold
        result["segments"] = segment_table(scores, args.dub or args.video, threshold)
    if args.json:
        print(json.dumps(finite_or_null(result), indent=1, allow_nan=False))
        return 0
    print_scores(scores, Path(args.video).name)
    for row in result.get("segments", []):
        conf = "   -  " if row["lse_c"] is None else f"{row['lse_c']:6.3f}"
        print(f"  {row['start_s']:7.2f}-{row['end_s']:7.2f} s  {row['kind']:<7}  LSE-C {conf}  {row['verdict']}")
    return 0


def add_export_parser(sub):
    from core.delivery import AUDIO_MODES, EXPORT_PRESETS, LOUDNESS_TARGETS, TRUE_PEAK, VIDEO_CODECS

    p = sub.add_parser("export", help="export a saved .lipsmith project as the editor does: each segment's "
                                      "chosen take, the original frames elsewhere, with the dub")
    p.add_argument("project", help="the .lipsmith project (only read: the export is not recorded in it)")
    p.add_argument("-o", "--output", required=True, help="output .mp4, .mov or .mkv")
    p.add_argument("--format", choices=list(VIDEO_CODECS),
                   help="; ".join(f"{name}: {codec.title}" for name, codec in VIDEO_CODECS.items())
                   + " (default: prores for a .mov, h264 otherwise)")
    p.add_argument("--preset", choices=list(EXPORT_PRESETS), default=next(iter(EXPORT_PRESETS)),
                   help="the editor's H.264 export presets (default %(default)s)")
    p.add_argument("--audio", choices=list(AUDIO_MODES), default="dub",
                   help="; ".join(f"{name}: {what}" for name, what in AUDIO_MODES.items()) + " (default %(default)s)")
    p.add_argument("--dub-level", type=finite_float, default=0.0, help="the dub's level in a mix, dB (default 0)")
    p.add_argument("--original-level", type=finite_float, default=0.0,
                   help="the video's own track's level in a mix, dB (default 0)")
    p.add_argument("--loudness", choices=[*LOUDNESS_TARGETS, "off"], default="off",
                   help="normalise each audio track, two-pass, to " + ", ".join(
                       f"{name} LUFS ({standard})" for name, (_, standard) in LOUDNESS_TARGETS.items())
                   + f", true peak under {TRUE_PEAK:g} dBTP (default %(default)s)")
    p.add_argument("--from", dest="from_time", type=time_value,
                   help="export from this time: seconds (12.5 or 0:12.5) or the video's timecode (01:00:12:12)")
    p.add_argument("--to", dest="to_time", type=time_value, help="export up to this time, as --from (default: the end)")
    p.add_argument("--no-qc", action="store_true",
                   help="write no QC report (OUT.qc.html: sync, leak, seam, faces, loudness, models) beside it")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_export)


def cmd_export(args) -> int:
    from core.export import export_request, export_video
    from core.project import EditError, Project, ProjectError
    from core.timecode import TimecodeError

    project = Project.load(args.project)
    missing = project.missing_media()
    if missing:
        ref = project.media[missing[0]]
        raise ProjectError(project.path, f"the {missing[0]} {ref.path} is missing: relink it in the editor")
    timecode = project.timecode
    try:
        start = frame_of(args.from_time, timecode) if args.from_time is not None else 0
        end = frame_of(args.to_time, timecode) if args.to_time is not None else None
    except TimecodeError as exc:
        raise ProjectError(project.path, f"--from/--to: {exc}") from None
    try:
        request = export_request(project, Path(args.output).absolute(), args.preset, args.format, args.audio,
                                 args.dub_level, args.original_level, args.loudness, start, end)
    except EditError as exc:
        raise ProjectError(project.path, str(exc)) from None
    bar = ProgressBar(args.quiet)
    try:
        result = export_video(bar, lambda: False, request)
    finally:
        bar.close()
    print(f"wrote {request.output}: {result.frames} frames, {result.from_takes} from takes, "
          f"{result.frames / max(result.seconds, 1e-6):.1f} frames/s")
    for note in result.notes:
        print(f"note: {note}")
    for name, before, after in result.loudness:
        if before is not None:
            print(f"loudness of the {name} audio: {before} before, {after} after")
    if not args.no_qc:
        from core.errors import LipsmithError
        from core.qc import qc_path, write_qc_report

        bar = ProgressBar(args.quiet)
        try:
            write_qc_report(project, result, progress=bar)
        except LipsmithError as exc:  # the delivery is complete: a report that cannot be made is a note
            print(f"note: {request.output} is complete, but no QC report was written: {exc}")
            return 0
        finally:
            bar.close()
        print(f"wrote the QC report {qc_path(request.output)}")
    return 0


def add_project_parser(sub):
    from core.hparams import LENGTH_POLICIES, PROJECT_LENGTH_POLICY

    p = sub.add_parser("project", help="make a .lipsmith project, as the editor's File ▸ New from Video does")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = actions.add_parser("new", help="a project of a video and its dub, with its speech segments detected")
    new.add_argument("video", help="the picture")
    new.add_argument("dub", help="the dubbed audio (any format ffmpeg reads, or a video's audio track)")
    new.add_argument("-o", "--output", required=True, help="the project file (.lipsmith, added when missing)")
    new.add_argument("--length", choices=LENGTH_POLICIES, default=PROJECT_LENGTH_POLICY,
                     help="when dub and picture differ: pad (the picture is the master: its last frame held to "
                          "the dub's end), cut to the shorter, loop or bounce the picture (default %(default)s)")
    new.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    new.set_defaults(run=cmd_project_new)


def cmd_project_new(args) -> int:
    from core import jobs
    from core.atomic import interrupted
    from core.project import SUFFIX, Project, ProjectError

    path = Path(args.output)
    if path.suffix.lower() != SUFFIX:
        path = path.with_name(path.name + SUFFIX)
    if path.exists():
        raise ProjectError(path, "exists already: open it in the editor, or choose another name")
    bar = ProgressBar(args.quiet)
    try:
        info = jobs.probe_media(bar, interrupted, args.video, args.dub)
        project = Project.new(info.video, info.video_facts, path=path, dub_path=info.dub.path,
                              dub_facts=info.dub.facts, settings={"length_policy": args.length})
        ranges = jobs.detect_segments(bar, interrupted, project.dub.path, project.fps, jobs.media_length(project),
                                      project.dub_offset)
    finally:
        bar.close()
    jobs.commit_segments(project, ranges)
    project.save()
    speech = sum(r.kind == "speech" for r in ranges)
    print(f"wrote {path}: {len(ranges)} segments, {speech} with speech; {project.length_text()}")
    return 0


def add_export_timeline_parser(sub):
    p = sub.add_parser("export-timeline", help="a project's timeline for another editor: the picture, the dub, "
                                               "and each speech segment as a marker")
    p.add_argument("project", help="the .lipsmith project (only read)")
    p.add_argument("-o", "--output", required=True,
                   help=".otio (OpenTimelineIO: Resolve), .xml (Final Cut Pro 7 XML: Premiere, Resolve) or "
                        ".edl (CMX 3600: Avid)")
    p.set_defaults(run=cmd_export_timeline)


def cmd_export_timeline(args) -> int:
    from core.interchange import adapter_for, export_timeline
    from core.project import Project

    adapter_for(args.output)  # an unknown format fails before the project is read
    project = Project.load(args.project)
    path = export_timeline(project, args.output)
    speech = sum(s.kind == "speech" for s in project.segments)
    print(f"wrote {path}: {speech} speech segments as markers")
    return 0


def add_import_timeline_parser(sub):
    p = sub.add_parser("import-timeline", help="segments from another editor's markers (.otio, .edl, .xml): one "
                                               "over a segment's frames renames it, one over other frames becomes "
                                               "a segment; the project is saved")
    p.add_argument("project", help="the .lipsmith project")
    p.add_argument("timeline", help="the timeline file (only read)")
    p.set_defaults(run=cmd_import_timeline)


def cmd_import_timeline(args) -> int:
    from core.interchange import InterchangeError, import_timeline
    from core.project import EditError, Project

    project = Project.load(args.project)
    try:
        command, points, outside = import_timeline(project, args.timeline)
    except EditError as exc:
        raise InterchangeError(args.timeline, str(exc)) from None
    if command is not None and (command.created or command.renamed):
        project.save()
        print(f"{project.path}: {len(command.created)} segments added, {len(command.renamed)} renamed")
    else:
        print(f"{project.path}: unchanged (no marker of {args.timeline} adds or renames a segment)")
    if points:
        print(f"note: {points} markers of no length left out: a segment needs an in and an out point")
    if outside:
        print(f"note: {outside} markers outside the project's frames left out")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lipsmith", description="Lipsmith: lip-sync for dubbing editors.")
    parser.add_argument("--version", action="version", version=f"lipsmith {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_render_parser(sub)
    add_score_parser(sub)
    add_export_parser(sub)
    add_project_parser(sub)
    add_export_timeline_parser(sub)
    add_import_timeline_parser(sub)
    doctor = sub.add_parser("doctor", help="check this installation: torch and GPU, ffmpeg, detectors, models, cache")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(run=cmd_doctor)
    add_parsers(sub)
    return parser


def cmd_doctor(args) -> int:
    from core.doctor import FAIL, report, run_checks

    checks = run_checks()
    print(report(checks, as_json=args.json))
    return 1 if any(c.status == FAIL for c in checks) else 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or Path(argv[0]).suffix.lower() == ".lipsmith" or Path(argv[0]).is_file():
        # no command, or files (a project, or a video and its dub; the desktop entry's %f): the editor
        from app.main import run

        let_idle_torch_threads_sleep()
        return run([sys.argv[0], *argv])
    from core.errors import Cancelled, LipsmithError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error argparse has printed
        return exit_.code
    if args.command is None:
        parser.print_help()
        return 0
    if args.command not in TRAINING_COMMANDS:
        let_idle_torch_threads_sleep()
    from core.atomic import interrupted, signals_as_interrupts

    output = getattr(args, "output", None)
    before = file_identity(output)
    with signals_as_interrupts():  # SIGTERM and SIGHUP stop a command as cleanly as Ctrl-C does
        try:
            return args.run(args)
        except LipsmithError as exc:
            if interrupted():  # failed because of the signal (a child process cut short): a cancel
                return cancelled(output, before)
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except (KeyboardInterrupt, Cancelled):
            return cancelled(output, before)


def cancelled(output, before) -> int:
    """Say what a stopped command left, and give its exit status: 128 + the signal (130: Ctrl-C)."""
    from core.atomic import interrupted_status

    if output is not None and file_identity(output) != before:  # stopped after its output was in place
        print(f"cancelled; {output} was written", file=sys.stderr)
    else:
        print("cancelled; nothing was written", file=sys.stderr)
    return interrupted_status()


def file_identity(path):
    """What tells a file from its replacement (an atomic write makes a new inode), or None."""
    try:
        stat = os.stat(path)
    except (OSError, TypeError):
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


if __name__ == "__main__":
    sys.exit(main())
