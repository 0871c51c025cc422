"""Raw per-frame detections of a video (+ scene-cut scores), and the pass that makes them.

Detection is incremental: a job detects only the frames it needs that no earlier job detected
(with the same detector), and the cache entry grows by each job's frame ranges, saved as it
goes, so a cancelled or killed job's work is kept for the next one.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

from core.errors import Cancelled
from core.threads import in_background

from .cache import (CACHE_FORMAT, NpzRecord, cache_path, default_cache_dir, file_fingerprint, from_json_array,
                    json_array, read_cache_entry)
from .detect import Detection, get_detector, identity_key, scaled_size
from .geometry import iou


# ----------------------------------------------------------------------- scene-cut scores

CUT_THUMB_SIDE = 160
CUT_WINDOW = 12  # frames on either side whose scores a cut must stand out from
_HIST_BINS = (16, 4, 4)  # H, S, V


def frame_histogram(frame: np.ndarray) -> np.ndarray:
    """Normalised HSV histogram of a cheap thumbnail (strided subsampling to ~160 px)."""
    h, w = frame.shape[:2]
    step = max(1, max(h, w) // CUT_THUMB_SIDE)
    thumb = np.ascontiguousarray(frame[::step, ::step])
    if thumb.ndim == 2:
        thumb = cv2.cvtColor(thumb, cv2.COLOR_GRAY2BGR)
    hsv = cv2.cvtColor(thumb[..., :3], cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(_HIST_BINS), [0, 180, 0, 256, 0, 256])
    hist = hist.ravel().astype(np.float32)
    return hist / max(float(hist.sum()), 1.0)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hellinger (Bhattacharyya) distance between two normalised histograms, in [0, 1]."""
    bc = float(np.sum(np.sqrt(a * b)))
    return float(np.sqrt(max(0.0, 1.0 - min(bc, 1.0))))


def find_scene_cuts(scores, threshold: float = 0.3, ratio: float = 3.0, window: int = CUT_WINDOW) -> list:
    """Frame indices that start a new shot: the cut score is >= `threshold` and >= `ratio` times
    the median score of the `window` frames on either side (so steady motion or flicker that
    keeps scores high everywhere does not count as a cut run). On real clips here, consecutive
    frames of one shot score <= 0.13 and frames of different clips >= 0.49. NaN scores (frames
    not detected) are never cuts and do not count as neighbours."""
    s = np.asarray(scores, dtype=np.float64)
    cuts = []
    for i in np.flatnonzero(s >= threshold):
        if i == 0:
            continue
        lo, hi = max(1, i - window), min(len(s), i + window + 1)
        neigh = np.concatenate([s[lo:i], s[i + 1:hi]])
        neigh = neigh[~np.isnan(neigh)]
        if neigh.size == 0 or s[i] >= ratio * float(np.median(neigh)):
            cuts.append(int(i))
    return cuts


# ----------------------------------------------------------------------- Detections

@dataclass(eq=False)
class Detections(NpzRecord):
    """What detection found in each frame of one video. Frames not detected (yet) are marked
    in `detected`: they have no faces and a NaN cut score."""

    faces: list  # per frame: list[Detection], best score first
    cut_scores: np.ndarray  # (N,) float32, histogram distance to the previous frame; [0] = 0
    frame_size: tuple  # (width, height)
    detector: dict = field(default_factory=dict)  # identity of the detector that ran
    source: str = ""  # content fingerprint of the video, "" when not from a file
    detected: np.ndarray | None = None  # (N,) bool; None: every frame

    def __post_init__(self):
        n = len(self.faces)
        self.cut_scores = np.asarray(self.cut_scores, dtype=np.float32)
        self.detected = np.ones(n, dtype=bool) if self.detected is None else np.asarray(self.detected, dtype=bool)
        if len(self.cut_scores) != n or len(self.detected) != n:
            raise ValueError("Detections arrays differ in length")

    @classmethod
    def undetected(cls, n_frames: int, frame_size, detector: dict, source: str) -> "Detections":
        """Detections of `n_frames` frames, none of them detected yet."""
        return cls([[] for _ in range(n_frames)], np.full(n_frames, np.nan, dtype=np.float32), frame_size,
                   detector, source, np.zeros(n_frames, dtype=bool))

    def __len__(self) -> int:
        return len(self.faces)

    def missing_runs(self, frames: range) -> list:
        """The frames of `frames` not detected yet, as half-open (start, stop) runs."""
        todo = ~self.detected[frames.start:frames.stop]
        edges = np.flatnonzero(np.diff(np.concatenate([[False], todo, [False]]).astype(np.int8)))
        return [(frames.start + int(a), frames.start + int(b)) for a, b in zip(edges[::2], edges[1::2])]

    def take_from(self, other: "Detections") -> None:
        """Copy in the frames that `other` (the same video, the same detector) detected and this did not."""
        new = other.detected & ~self.detected
        for i in np.flatnonzero(new):
            self.faces[i] = other.faces[i]
        self.cut_scores[new] = other.cut_scores[new]
        self.detected |= new

    @property
    def n_faces_seen(self) -> int:
        return max((len(f) for f in self.faces), default=0)

    def to_arrays(self) -> dict:
        counts = np.array([len(f) for f in self.faces], dtype=np.int32)
        flat = [d for f in self.faces for d in f]
        k = next((len(d.landmarks) for d in flat if d.landmarks is not None), 0)
        boxes = np.array([d.box for d in flat], dtype=np.float64).reshape(-1, 4)
        scores = np.array([d.score for d in flat], dtype=np.float32)
        lms = np.full((len(flat), k, 2), np.nan, dtype=np.float32)
        for j, d in enumerate(flat):
            if k and d.landmarks is not None and len(d.landmarks) == k:
                lms[j] = d.landmarks
        meta = {"format": CACHE_FORMAT, "kind": "detections", "frame_size": list(self.frame_size),
                "detector": self.detector, "source": self.source}
        return {"counts": counts, "boxes": boxes, "scores": scores, "landmarks": lms,
                "cut_scores": self.cut_scores, "detected": self.detected, "meta": json_array(meta)}

    @classmethod
    def from_arrays(cls, a: dict) -> "Detections":
        meta = from_json_array(a["meta"])
        if meta.get("kind") != "detections" or meta.get("format") != CACHE_FORMAT:
            raise ValueError("not a Lipsmith detections file of this format")
        counts, boxes, scores, lms = a["counts"], a["boxes"], a["scores"], a["landmarks"]
        if counts.sum() != len(boxes) or len(boxes) != len(scores) or len(lms) != len(boxes):
            raise ValueError("inconsistent detections arrays")
        has_lm = lms.shape[1] > 0
        faces, j = [], 0
        for c in counts:
            row = []
            for _ in range(int(c)):
                lm = lms[j].astype(np.float64) if has_lm and not np.isnan(lms[j]).any() else None
                row.append(Detection(boxes[j], scores[j], lm))
                j += 1
            faces.append(row)
        return cls(faces, a["cut_scores"], tuple(meta["frame_size"]), meta.get("detector", {}),
                   meta.get("source", ""), a["detected"])



# ----------------------------------------------------------------------- detection pass

def _plain(identity: dict) -> dict:
    """The identity as it reads back from JSON (tuples become lists, etc.)."""
    return json.loads(json.dumps(identity, sort_keys=True, default=str))


def resolve_detector(detector):
    """None -> the default RetinaFace; a name -> `get_detector(name)`; a detector -> itself."""
    if detector is None:
        return get_detector()
    if isinstance(detector, str):
        return get_detector(detector)
    return detector


def _frame_of(item):
    """Frames may come bare or as (index, frame) pairs (VideoSource.frames())."""
    if isinstance(item, tuple) and len(item) == 2 and not isinstance(item[0], np.ndarray):
        return item[1]
    return item


def _detect_each(items, detect, cancel, prev_hist=None, every: int = 1):
    """(index, faces best first, cut score, frame) for each (index, frame) of `items` (consecutive
    frames), `detect(frame)` giving a frame's faces. prev_hist: the histogram of the frame before the
    first (None: the first is frame 0, cut score 0). With `every` > 1 the detector runs on every
    every-th frame; a frame between two whose faces pair up (`between`) gets their interpolation,
    any other is detected as well. cancel() is polled before each frame and raises `Cancelled`."""
    held, last = [], None  # frames waiting for the next detected one; (index, faces) of the last detected
    for i, frame in items:
        if cancel is not None and cancel():
            raise Cancelled("face detection cancelled")
        hist = frame_histogram(frame)
        cut = 0.0 if prev_hist is None else histogram_distance(prev_hist, hist)
        prev_hist = hist
        if last is not None and len(held) < every - 1:
            held.append((i, cut, frame))
            continue
        faces = _best_first(detect(frame))
        for j, held_cut, held_frame in held:
            guess = between(last[1], faces, (j - last[0]) / (i - last[0]))
            yield j, _best_first(detect(held_frame)) if guess is None else guess, held_cut, held_frame
        held, last = [], (i, faces)
        yield i, faces, cut, frame
    for j, held_cut, held_frame in held:  # the run ended before another detected frame
        yield j, _best_first(detect(held_frame)), held_cut, held_frame


def _best_first(faces: list) -> list:
    return sorted(faces, key=lambda d: -d.score)


PAIR_IOU = 0.5  # a face two detected frames apart overlaps itself at least this much


def between(before: list, after: list, t: float) -> list | None:
    """The faces at fraction `t` of the way from the frame of `before` to that of `after`, when every
    face pairs up with one of the other frame (IoU >= PAIR_IOU): boxes and landmarks interpolated
    linearly, the lower score. None when they do not pair up (a cut, a face coming or going)."""
    if len(before) != len(after):
        return None
    free, faces = list(after), []
    for a in before:
        ious = [iou(a.box, b.box) for b in free]
        if not ious or max(ious) < PAIR_IOU:
            return None
        b = free.pop(int(np.argmax(ious)))
        box = (1 - t) * np.asarray(a.box) + t * np.asarray(b.box)
        both = a.landmarks is not None and b.landmarks is not None and a.landmarks.shape == b.landmarks.shape
        landmarks = (1 - t) * a.landmarks + t * b.landmarks if both else None
        faces.append(Detection(box, min(a.score, b.score), landmarks))
    return _best_first(faces)


def detect_frames(frames, detector=None, progress=None, cancel=None, total: int | None = None) -> Detections:
    """Run `detector` (a detector object, a name, or None for RetinaFace) on every frame (BGR
    uint8; bare or (index, frame) pairs) and compute the scene-cut scores in the same pass.

    progress(done, total) is called after each frame (total = `total`, len(frames) or 0 when
    unknown); cancel() is polled before each frame and raises `Cancelled` when it returns true.
    """
    detector = resolve_detector(detector)
    if total is None:
        try:
            total = len(frames)
        except TypeError:
            total = 0
    faces, cut_scores, size = [], [], (0, 0)
    for i, dets, cut, frame in _detect_each(enumerate(map(_frame_of, frames)), detector.detect, cancel):
        if i == 0:
            size = (int(frame.shape[1]), int(frame.shape[0]))
        faces.append(dets)
        cut_scores.append(cut)
        if progress is not None:
            progress(i + 1, max(total, i + 1))
    if cancel is not None and cancel():
        raise Cancelled("face detection cancelled")
    return Detections(faces, np.asarray(cut_scores, dtype=np.float32), size, _plain(detector.identity()))


SAVE_EVERY = 250  # frames detected between saves of the cache entry: what a killed job can lose
# the detector runs on every second frame of a video; the frame between two whose faces pair up gets
# their interpolation (bench/bench_detection.py measures the boxes against every-frame detection)
DETECT_EVERY = 2


def detect_video(source, detector=None, cache_dir=None, use_cache: bool = True, progress=None,
                 cancel=None, frames: range | None = None) -> Detections:
    """Detections of a VideoSource-like object (`.path`, `.frames(start, stop)`, `.frame_count`,
    `.width`, `.height`), one per frame of the video, with at least the frames of `frames` (a
    range; None: all) detected; other frames are detected only if an earlier job cached them.

    The cache (folder `cache_dir`, default `default_cache_dir()`; none when use_cache is false or
    the source has no `.path`) keeps, per file and detector settings, every frame any job
    detected. Only the wanted frames it lacks are detected, and the entry is saved with them
    every SAVE_EVERY frames and when the job ends, cancelled or failed too, so the next job
    continues where this one stopped.

    progress(done, total) counts the frames this job detects (all wanted frames cached: one
    call, total = their number); cancel() is polled before each frame and raises `Cancelled`.
    """
    detector = resolve_detector(detector)
    identity = {**_plain(detector.identity()), "every": DETECT_EVERY}
    n = int(source.frame_count)
    wanted = range(n) if frames is None else range(max(0, frames.start), min(n, frames.stop))
    entry, fingerprint = None, ""
    if use_cache and getattr(source, "path", None) is not None:
        fingerprint = file_fingerprint(source.path)
        entry = cache_path(cache_dir or default_cache_dir(), fingerprint, identity_key(identity))
    dets = Detections.undetected(n, (int(source.width), int(source.height)), identity, fingerprint)
    cached = read_cache_entry(entry, Detections.from_arrays) if entry is not None else None
    if cached is not None and cached.source == fingerprint and cached.detector == identity and len(cached) == n:
        dets.take_from(cached)
    runs = dets.missing_runs(wanted)
    total = sum(b - a for a, b in runs)
    if total == 0:
        if progress is not None and wanted:
            progress(len(wanted), len(wanted))
        return dets
    # decoded straight to the detector's size (a backend shrinks every frame to it anyway), in a thread
    size = scaled_size(int(source.width), int(source.height), getattr(detector, "max_side", 0))
    fx, fy = int(source.width) / size[0], int(source.height) / size[1]

    def detect(frame):
        return [d.scaled(fx, fy) for d in detector.detect(frame)] if (fx, fy) != (1, 1) else detector.detect(frame)

    done = unsaved = 0
    try:
        for a, b in runs:
            stop = threading.Event()
            try:
                items = in_background(source.frames(max(a - 1, 0), b, size=size), 8, stop)
                # the frame before a run is decoded for its histogram only: the run's first cut score
                prev_hist = frame_histogram(next(items)[1]) if a > 0 else None
                for i, faces, cut, _ in _detect_each(items, detect, cancel, prev_hist, DETECT_EVERY):
                    dets.faces[i], dets.cut_scores[i], dets.detected[i] = faces, cut, True
                    done, unsaved = done + 1, unsaved + 1
                    if progress is not None:
                        progress(done, total)
                    if entry is not None and unsaved >= SAVE_EVERY:
                        _save(dets, entry)
                        unsaved = 0
            finally:
                stop.set()  # the decoding thread closes the file
    finally:
        if entry is not None and unsaved:
            _save(dets, entry)
    return dets


def _save(dets: Detections, entry) -> None:
    try:
        dets.save(entry)
    except OSError:
        pass  # a read-only or full cache folder must not fail the job
