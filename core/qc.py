"""The QC report written beside an export (OUT.qc.html): what a reviewer checks before delivery.

Measured on the exported file itself, each frame with the face track of the take it came from (the
settings its render recorded; the project's for the original frames), from the detection cache where
a render filled it, else detected around the exported source frames only:

* lip-sync confidence per speech segment: the expert's per-frame curve over the export and its
  audio, the segment's mean and verdict (the project's threshold), and the clip's AV offset;
* leak: mouth movement while the dub is silent, the mean absolute change of the mouth box's grey
  levels from frame to frame over the silence segments, in the export and in the same source frames;
* seam: the mean absolute grey gradient on the blend mask's edge band against that inside the mask,
  over the frames pasted from takes (a visible seam raises the edge's);
* frames without a face (passed through as they were), the loudness of each audio track before and
  after normalising, the frames of lowest confidence as thumbnails, the models and the settings.

`qc_request` snapshots the project (UI thread, as the export starts); `qc_report` is the job body
(Qt-free, any thread) run on the export's result: it measures, returns the figures and writes the HTML
rendered from them, one self-contained file (inline CSS and SVG, JPEG data URIs, no script).
"""
from __future__ import annotations

import base64
import copy
import html
import math
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from core.hparams import HP

QC_SUFFIX = ".qc.html"
WORST_FRAMES = 6  # thumbnails of the lowest-confidence frames
WORST_SPACING = 12  # 25-fps frames between two thumbnails, so they show different moments
THUMB_WIDTH = 320
EDGE_BAND = (0.1, 0.9)  # mask weights on its feathered edge
INSIDE = 0.9  # mask weight inside it


def qc_path(output) -> Path:
    """OUT.qc.html beside the export OUT."""
    output = Path(output)
    return output.with_name(output.name + QC_SUFFIX)


@dataclass
class Paste:
    """How exported frames were made: the face track the take's render followed (the project's for the
    original frames), the generator crop's pads, and the take's blend mask (None: nothing pasted)."""
    track: object  # core.jobs.TrackRequest
    pads: tuple
    blend: object | None  # core.blend.BlendSettings


@dataclass
class QCRequest:
    """The project as the export saw it: taken when the export starts, so an edit made while it runs
    shows in neither the export nor its report."""
    output: Path  # the export
    report: Path  # the HTML written
    segments: list  # the project's core.project.Segment
    original: Paste  # the frames from no take
    takes: dict  # take file → Paste, for the takes the export uses
    threshold: float
    scorer: dict | None  # the expert the threshold is on (core.project.scorer_record)
    models: list  # (role, bundled name or path)
    settings: dict
    project: str


def qc_request(project, export, output_path=None) -> QCRequest:
    """Snapshot of what the report on the export `export` (a core.export.ExportRequest) needs from
    `project`; `output_path`: the HTML (default: qc_path of the export)."""
    from core.blend import BlendSettings
    from core.jobs import track_request

    used = {Path(take) for _, _, take, _ in export.runs if take is not None}
    takes = {}
    for take in project.takes.values():
        path = project.take_path(take)
        if path in used:
            settings = {**project.settings, **take.settings}
            takes[path] = Paste(track_request(project, take), tuple(settings["pads"]),
                                BlendSettings.from_settings(settings))
    generators = {str(project.settings["checkpoint"])}
    generators |= {str(t.settings["checkpoint"]) for s, t in project.chosen_runs() if "checkpoint" in t.settings}
    models = [("generator", g) for g in sorted(generators)] + [("expert", "expert")]
    output = Path(export.output)
    return QCRequest(output, Path(output_path) if output_path else qc_path(output), list(project.segments),
                     Paste(track_request(project), tuple(project.settings["pads"]), None), takes,
                     project.threshold, project.scorer, models, copy.deepcopy(project.settings),
                     str(project.path or ""))


def write_qc_report(project, export_result, output_path=None, progress=None, cancel=None) -> dict:
    """Measure the export `export_result` made of `project` and write the report (atomic) to
    `output_path` (default OUT.qc.html); returns the figures the HTML shows."""
    return qc_report(progress or (lambda *a: None), cancel or (lambda: False),
                     qc_request(project, export_result.request, output_path), export_result)


def qc_report(progress, cancel, request: QCRequest, export) -> dict:
    """The job body: measure the export (`export`: the core.export.ExportResult it made), write the
    HTML (atomic), return the figures."""
    from core.atomic import atomic_write_text

    figures = measure(progress, cancel, request, export)
    atomic_write_text(request.report, render_html(figures))
    return figures


# --------------------------------------------------------------------------- measuring


class ExportFaces:
    """The face of each exported frame k (0: the export's first) as the take it came from found it: its
    paste's track at its source frame. Indexed by exported frame, it stands in for a core.faces.FaceTrack
    (core.sync.score_video's `track`, without a frame map)."""

    def __init__(self, tracks: list, track_of: np.ndarray, source: np.ndarray):
        self.tracks, self.track_of, self.source = tracks, track_of, source  # frame k: tracks[track_of[k]]

    def __len__(self) -> int:
        return len(self.source)

    def box(self, k: int):
        return self.tracks[self.track_of[k]].box(int(self.source[k]))

    def crop_box(self, k: int, pads):
        return self.tracks[self.track_of[k]].crop_box(int(self.source[k]), pads)

    def landmarks_at(self, k: int):
        return self.tracks[self.track_of[k]].landmarks_at(int(self.source[k]))

    def with_smoothing(self, window: int, method: str = "mean") -> "ExportFaces":
        return ExportFaces([t.with_smoothing(window, method) for t in self.tracks], self.track_of, self.source)


def export_faces(progress, cancel, pastes: list, source: np.ndarray, video) -> ExportFaces:
    """The faces of the exported frames, `pastes` what each was made with and `source` the source frame
    each shows: one track per distinct track request (so usually one), each detected, where the cache
    lacks them, only around the source frames its exported frames show. `video`: the source, open."""
    from core.jobs import face_track_in

    requests = {}  # track key → its request, in the order the export first shows it
    for paste in pastes:
        requests.setdefault(paste.track.key, paste.track)
    number = {key: n for n, key in enumerate(requests)}
    track_of = np.array([number[paste.track.key] for paste in pastes], int)
    tracks = []
    for n, request in enumerate(requests.values()):
        tracks.append(face_track_in(progress, cancel, request.over(source[track_of == n]), video))
    return ExportFaces(tracks, track_of, source)


def measure(progress, cancel, request: QCRequest, export) -> dict:
    """The report's figures (JSON-like: numbers, None where nothing was measured) of `export`."""
    from core.errors import TooShort
    from core.project import same_scale, verdict
    from core.sync import SCORE_FPS, load_scorer, scale_of, score_video
    from core.video import VideoSource

    r = export.request
    first, last = r.start, r.start + export.frames
    source = np.asarray(export.source_frames)  # the output's frames as the export planned them (core.export)
    pastes = []  # what each output frame was made with
    for a, b, take, _ in r.runs:
        a, b = max(a, first), min(b, last)
        pastes += [request.original if take is None else request.takes[Path(take)]] * max(b - a, 0)
    scorer = load_scorer("expert")
    # the project's threshold where it is on this expert's scale (or nothing was scored yet: the bundled
    # expert's), else the expert's own weak line
    own_line = request.scorer is None or same_scale(request.scorer, scale_of(scorer))
    threshold = request.threshold if own_line else scorer.weak_below
    with VideoSource(r.video) as video, VideoSource(request.output) as out:
        faces = export_faces(progress, cancel, pastes, source, video)
        try:
            scores = score_video(out, None, scorer=scorer, track=faces, progress=progress, cancel=cancel)
        except TooShort:
            scores = None
        if scores is not None:
            scored = first + out.frames_at_rate(SCORE_FPS, len(scores.frame_conf))  # project frame of each
            conf = np.asarray(scores.frame_conf, np.float64)
        else:
            scored, conf = np.zeros(0, int), np.zeros(0)

        segments = []
        for s in request.segments:
            a, b = max(s.start, first), min(s.end, last)
            if s.kind != "speech" or a >= b:
                continue
            inside = (scored >= a) & (scored < b)
            values = conf[inside]
            finite = values[np.isfinite(values)]
            lse_c = float(finite.mean()) if finite.size else None
            segments.append({"id": s.id, "title": s.title, "start": a, "end": b,
                             "take": s.take_id, "lse_c": lse_c, "verdict": verdict(replace(s, lse_c=lse_c), threshold),
                             "curve": [[int(f), _number(c)] for f, c in zip(scored[inside], values)]})
        speech = np.zeros(len(scored), bool)  # confidence means nothing where the dub is silent
        for s in segments:
            speech |= (scored >= s["start"]) & (scored < s["end"])
        worst = _worst(scored, np.where(speech, conf, np.nan))
        pictures = _picture_figures(progress, cancel, request, out, video, faces, pastes, first, last, worst)
    figures = {
        "project": request.project, "output": str(request.output), "fps": r.fps, "range": [first, last],
        "frames": last - first, "threshold": threshold, "threshold_is": "project" if own_line else "expert",
        "sync": None if scores is None else {
            "scorer": scores.scorer, "lse_c": _number(scores.lse_c), "lse_d": _number(scores.lse_d),
            "offset_frames": scores.offset_frames, "offset_ms": scores.offset_ms, "windows": scores.windows},
        "segments": segments, **pictures,
        "loudness": [{"track": name, "before": _loudness(before), "after": _loudness(after)}
                     for name, before, after in export.loudness],
        "models": _models(request.models), "settings": request.settings, "notes": list(export.notes),
    }
    return figures


def _number(x):
    return float(x) if x is not None and math.isfinite(x) else None


def _loudness(value):
    return None if value is None else {"integrated": value.integrated, "true_peak": value.true_peak,
                                       "lra": value.lra}


def _worst(scored: np.ndarray, conf: np.ndarray) -> dict:
    """{project frame: confidence} of the WORST_FRAMES lowest (NaN: not a candidate), WORST_SPACING scored
    frames apart at least."""
    picked = []
    for j in np.argsort(np.where(np.isfinite(conf), conf, np.inf), kind="stable"):
        if not np.isfinite(conf[j]) or len(picked) == WORST_FRAMES:
            break
        if all(abs(int(j) - k) >= WORST_SPACING for k in picked):
            picked.append(int(j))
    return {int(scored[j]): float(conf[j]) for j in sorted(picked)}


def _models(models) -> list:
    from core.atomic import sha256_file
    from core.errors import WeightsError
    from core.weights import resolve

    out = []
    for role, name in models:
        try:
            path, sha = resolve(name)
        except WeightsError as e:
            out.append({"role": role, "name": str(name), "file": None, "sha256": None, "problem": e.problem})
            continue
        out.append({"role": role, "name": str(name), "file": path.name, "sha256": sha or sha256_file(path)})
    return out


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)


def mouth_box(crop_box) -> tuple:
    """The lower half of the generator's crop: the part of the face it regenerates."""
    x1, y1, x2, y2 = crop_box
    return x1, (y1 + y2) // 2, x2, y2


def seam_strength(frame: np.ndarray, crop_box, weight: np.ndarray) -> tuple[float, float] | None:
    """(mean |grey gradient| on the mask's edge band, inside the mask) of `frame` at `crop_box`,
    `weight` the paste weight over it; None where the crop holds no band or no inside."""
    x1, y1, x2, y2 = crop_box
    grey = _grey(frame[y1:y2, x1:x2])
    gradient = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)) / 8
    edge = (weight > EDGE_BAND[0]) & (weight < EDGE_BAND[1])
    inside = weight >= INSIDE
    if not edge.any() or not inside.any():
        return None
    return float(gradient[edge].mean()), float(gradient[inside].mean())


def _picture_figures(progress, cancel, request, out, video, faces, pastes, first, last, worst) -> dict:
    """One pass over the export `out` and its source frames in `video` (both open): leak, seam, frames
    without a face, thumbnails; `faces`: the ExportFaces, `pastes`: what each output frame was made with."""
    from core.blend import paste_weight
    from core.errors import Cancelled
    from core.render import source_frames, to_ranges

    silent = np.zeros(last - first, bool)
    silences = [(max(s.start, first), min(s.end, last), s) for s in request.segments
                if s.kind == "silence" and max(s.start, first) < min(s.end, last)]
    for a, b, _ in silences:
        silent[a - first:b - first] = True
    leak_out, leak_src = np.full(last - first, np.nan), np.full(last - first, np.nan)
    seams, no_face, thumbs = [], [], []
    previous = None  # (output frame, source frame) of the frame before, when it was silent
    pairs = zip(out.frames(0, last - first), source_frames(video, faces.source))
    for k, ((_, frame), original) in enumerate(pairs):
        if cancel():
            raise Cancelled("QC report cancelled")
        if k % 25 == 0:
            progress(k, last - first, "qc")
        f = first + k
        paste = pastes[k]
        box = faces.crop_box(k, paste.pads)
        if box is None:
            no_face.append(f)
        elif silent[k] and previous is not None:  # this frame's mouth box, in both frames
            x1, y1, x2, y2 = mouth_box(box)
            leak_out[k] = float(np.abs(_grey(frame[y1:y2, x1:x2]) - _grey(previous[0][y1:y2, x1:x2])).mean())
            leak_src[k] = float(np.abs(_grey(original[y1:y2, x1:x2]) - _grey(previous[1][y1:y2, x1:x2])).mean())
        previous = (frame, original) if silent[k] else None
        if box is not None and paste.blend is not None:
            weight = paste_weight(box, faces.landmarks_at(k), (HP.img_size, HP.img_size), paste.blend)
            seam = seam_strength(frame, box, weight)
            if seam is not None:
                seams.append((*seam, *(seam_strength(original, box, weight) or (np.nan, np.nan))))
        if f in worst:
            thumbs.append({"frame": f, "conf": worst[f], "jpeg": _thumbnail(frame, box)})
    leak_rows = []
    for a, b, s in silences:
        o, v = leak_out[a - first:b - first], leak_src[a - first:b - first]
        measured = np.isfinite(o) & np.isfinite(v)
        leak_rows.append({"id": s.id, "title": s.title, "start": a, "end": b, "frames": int(measured.sum()),
                          "output": float(o[measured].mean()) if measured.any() else None,
                          "source": float(v[measured].mean()) if measured.any() else None})
    measured = np.isfinite(leak_out) & np.isfinite(leak_src)
    seams = np.asarray(seams, np.float64).reshape(-1, 4)
    return {
        "leak": {"output": float(leak_out[measured].mean()) if measured.any() else None,
                 "source": float(leak_src[measured].mean()) if measured.any() else None,
                 "frames": int(measured.sum()), "segments": leak_rows},
        "seam": {"frames": len(seams),
                 "edge": float(seams[:, 0].mean()) if len(seams) else None,
                 "inside": float(seams[:, 1].mean()) if len(seams) else None,
                 "source_edge": float(np.nanmean(seams[:, 2])) if np.isfinite(seams[:, 2]).any() else None,
                 "source_inside": float(np.nanmean(seams[:, 3])) if np.isfinite(seams[:, 3]).any() else None},
        "no_face": {"frames": len(no_face), "ranges": [list(r) for r in to_ranges(no_face)]},
        "worst": thumbs,
    }


def _thumbnail(frame: np.ndarray, box) -> str:
    """The frame, THUMB_WIDTH wide, the generator's crop outlined, as a JPEG data URI."""
    frame = frame.copy()
    if box is not None:
        cv2.rectangle(frame, box[:2], (box[2] - 1, box[3] - 1), (0, 200, 255), max(1, frame.shape[1] // 320))
    h, w = frame.shape[:2]
    small = cv2.resize(frame, (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA)
    _, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii")


# --------------------------------------------------------------------------- the HTML

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; padding: 0 16px; max-width: 1100px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 3px 10px; border-bottom: 1px solid #eee;
text-align: left; vertical-align: top; } th { background: #f4f4f4; white-space: nowrap; } td.n { text-align: right;
font-variant-numeric: tabular-nums; } .good { color: #1a7f37; font-weight: 600; } .poor { color: #c62828;
font-weight: 600; } .unscored { color: #888; } .muted { color: #777; } code { font-size: 12px; word-break: break-all; }
.thumbs { display: flex; flex-wrap: wrap; gap: 12px; } figure { margin: 0; } figcaption { font-size: 12px; color: #555; }
svg { background: #fafafa; border: 1px solid #e4e4e4; }
"""
CURVE_SIZE = (520, 110)  # px of each segment's confidence plot


def _fmt(value, digits: int = 2, unit: str = "") -> str:
    return "–" if value is None else f"{value:.{digits}f}{unit}"


def _curve_svg(curve: list, start: int, end: int, threshold: float) -> str:
    """The per-frame confidence over [start, end) as an inline SVG: a line broken where a frame was not
    scored, the threshold dashed."""
    w, h = CURVE_SIZE
    values = [c for _, c in curve if c is not None]
    lo, hi = min([0.0, threshold, *values]), max([threshold, *values])
    margin = 0.08 * (hi - lo) + 1e-6
    lo, hi = lo - margin, hi + margin
    span = max(end - 1 - start, 1)

    def x(f):
        return 4 + (w - 8) * (f - start) / span

    def y(c):
        return h - 14 - (h - 28) * (c - lo) / (hi - lo)  # 14 px below for the frames, above for the scale

    lines, points = [], []
    for f, c in curve:
        if c is None:
            lines.append(points)
            points = []
        else:
            points.append(f"{x(f):.1f},{y(c):.1f}")
    lines.append(points)
    parts = [f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg">',
             (f'<line x1="0" x2="{w}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}" stroke="#c62828" '
              'stroke-dasharray="5,4" stroke-width="1"/>'),
             f'<line x1="0" x2="{w}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#bbb" stroke-width="1"/>']
    for points in lines:
        if len(points) == 1:
            cx, cy = points[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="#1565c0"/>')
        elif points:
            parts.append(f'<polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="{" ".join(points)}"/>')
    parts.append(f'<text x="4" y="10" font-size="10" fill="#777">LSE-C {hi:.2f}</text>'
                 f'<text x="4" y="{y(lo) - 2:.1f}" font-size="10" fill="#777">{lo:.2f}</text>'
                 f'<text x="{w / 2}" y="{h - 2}" font-size="10" fill="#777" text-anchor="middle">frame</text>')
    parts.append(f'<text x="4" y="{h - 2}" font-size="10" fill="#777">{start}</text>'
                 f'<text x="{w - 4}" y="{h - 2}" font-size="10" fill="#777" text-anchor="end">{end - 1}</text>'
                 f'<text x="{w - 4}" y="{y(threshold) - 3:.1f}" font-size="10" fill="#c62828" text-anchor="end">'
                 f'threshold {threshold:.3g}</text>')
    if not values:
        parts.append(f'<text x="{w / 2}" y="{h / 2}" font-size="12" fill="#888" text-anchor="middle">'
                     'no frame scored (no face, or too short)</text>')
    return "".join(parts) + "</svg>"


def _table(header: list, rows: list) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell if cell.startswith("<td") else f"<td>{html.escape(cell)}</td>"
                                    for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _n(value, digits: int = 2, unit: str = "") -> str:
    return f'<td class="n">{_fmt(value, digits, unit)}</td>'


def render_html(figures: dict) -> str:
    """The report: one HTML file, its style inline, its pictures data URIs, no script."""
    fps, threshold = figures["fps"], figures["threshold"]
    e = html.escape
    first, last = figures["range"]
    name = e(Path(figures["output"]).name)
    out = [(f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>QC: {name}</title>"
            f"<style>{CSS}</style></head><body>"),
           f"<h1>QC report: {name}</h1>",
           (f"<p class=\"muted\">{e(figures['output'])}<br>project {e(figures['project'])}<br>frames "
            f"{first}–{last - 1} ({figures['frames']} frames, {figures['frames'] / fps:.2f} s at {fps:g} fps)</p>")]

    sync = figures["sync"]
    out.append("<h2>Lip sync</h2>")
    if sync is None:
        out.append("<p>The export is too short to score.</p>")
    else:
        out.append(_table(["scorer", "LSE-C", "LSE-D", "AV offset", "windows"], [[
            sync["scorer"], _n(sync["lse_c"], 3), _n(sync["lse_d"], 3),
            f'<td class="n">{sync["offset_frames"]:+d} frames ({sync["offset_ms"]:+.0f} ms)</td>',
            f'<td class="n">{sync["windows"]}</td>']]))
        out.append("<p class=\"muted\">AV offset: positive when the audio lags the picture (25-fps frames). "
                   f"A segment is good at LSE-C ≥ {threshold:.3g}, "
                   + ("the project's threshold.</p>" if figures.get("threshold_is") != "expert" else
                      "the expert's weak line (the project's threshold is on another expert's scale: "
                      "rescore it to set one on this scale).</p>"))
    for s in figures["segments"]:
        verdict = s["verdict"]
        out.append(f"<h3>{e(s['title'])} <span class=\"muted\">frames {s['start']}–{s['end'] - 1} "
                   f"({s['start'] / fps:.2f}–{s['end'] / fps:.2f} s), "
                   f"{'take ' + e(s['take']) if s['take'] else 'original frames'}</span></h3>"
                   f"<p>LSE-C {_fmt(s['lse_c'], 3)} <span class=\"{verdict}\">{verdict}</span></p>"
                   + _curve_svg(s["curve"], s["start"], s["end"], threshold))
    if not figures["segments"]:
        out.append("<p>No speech segment in the exported range.</p>")

    worst = figures["worst"]
    if worst:
        out.append("<h2>Lowest-confidence frames</h2><div class=\"thumbs\">")
        for t in worst:
            out.append(f"<figure><img src=\"{t['jpeg']}\" width=\"{THUMB_WIDTH}\" alt=\"frame {t['frame']}\">"
                       f"<figcaption>frame {t['frame']} ({t['frame'] / fps:.2f} s): confidence "
                       f"{t['conf']:.3f}</figcaption></figure>")
        out.append("</div>")

    leak = figures["leak"]
    out.append("<h2>Mouth movement while the dub is silent</h2>"
               "<p class=\"muted\">Mean absolute change of the mouth box's grey levels from one frame to the next "
               "(0–255), over the silence segments: the export against the same source frames.</p>")
    rows = [[f"{r['title']} ({r['start']}–{r['end'] - 1})", f'<td class="n">{r["frames"]}</td>',
             _n(r["output"]), _n(r["source"])] for r in leak["segments"]]
    rows.append(["all", f'<td class="n">{leak["frames"]}</td>', _n(leak["output"]), _n(leak["source"])])
    out.append(_table(["silence", "frames", "export", "source"], rows))

    seam = figures["seam"]
    out.append("<h2>Blend seam</h2><p class=\"muted\">Mean absolute grey gradient on the blend mask's feathered "
               "edge and inside the mask, over the frames pasted from takes; the source's at the same places.</p>")
    out.append(_table(["", "frames", "edge", "inside", "edge / inside"], [
        ["export", f'<td class="n">{seam["frames"]}</td>', _n(seam["edge"]), _n(seam["inside"]),
         _n(None if seam["edge"] is None else seam["edge"] / max(seam["inside"], 1e-6))],
        ["source", f'<td class="n">{seam["frames"]}</td>', _n(seam["source_edge"]), _n(seam["source_inside"]),
         _n(None if seam["source_edge"] is None else seam["source_edge"] / max(seam["source_inside"], 1e-6))]]))

    no_face = figures["no_face"]
    out.append(f"<h2>Frames without a face</h2><p>{no_face['frames']} of {figures['frames']}"
               + (": " + ", ".join(f"{a}–{b - 1}" for a, b in no_face["ranges"]) if no_face["ranges"] else "")
               + " (passed through as they were)</p>")

    out.append("<h2>Loudness</h2>")
    rows = []
    for t in figures["loudness"]:
        before, after = t["before"], t["after"]
        rows.append([t["track"], _n(before and before["integrated"], 1, " LUFS"),
                     _n(before and before["true_peak"], 1, " dBTP"), _n(after and after["integrated"], 1, " LUFS"),
                     _n(after and after["true_peak"], 1, " dBTP")])
    out.append(_table(["track", "before", "true peak", "after", "true peak"], rows)
               + ("" if any(t["before"] for t in figures["loudness"]) else
                  "<p class=\"muted\">Not normalised: the export kept the tracks' levels.</p>"))

    out.append("<h2>Models</h2>")
    out.append(_table(["role", "name", "file", "SHA-256"], [
        [m["role"], m["name"], m["file"] or m.get("problem", "–"),
         f"<td><code>{e(m['sha256'] or '–')}</code></td>"] for m in figures["models"]]))
    out.append("<h2>Settings</h2>")
    out.append(_table(["setting", "value"], [[k, str(v)] for k, v in figures["settings"].items()]))
    if figures["notes"]:
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in figures["notes"]) + "</ul>")
    out.append("</body></html>\n")
    return "\n".join(out)
