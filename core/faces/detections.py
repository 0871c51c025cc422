"""Raw per-frame detections of a whole video (+ scene-cut scores), and the pass that makes them."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import cv2
import numpy as np

from core.errors import Cancelled

from .cache import (CACHE_FORMAT, NpzRecord, cache_path, default_cache_dir, file_fingerprint, from_json_array,
                    json_array, load_npz)
from .detect import Detection, get_detector, identity_key


# ----------------------------------------------------------------------- scene-cut scores

CUT_THUMB_SIDE = 160
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


def find_scene_cuts(scores, threshold: float = 0.3, ratio: float = 3.0, window: int = 12) -> list:
    """Frame indices that start a new shot: the cut score is >= `threshold` and >= `ratio` times
    the median score of the `window` frames on either side (so steady motion or flicker that
    keeps scores high everywhere does not count as a cut run). On real clips here, consecutive
    frames of one shot score <= 0.13 and frames of different clips >= 0.49."""
    s = np.asarray(scores, dtype=np.float64)
    cuts = []
    for i in np.flatnonzero(s >= threshold):
        if i == 0:
            continue
        lo, hi = max(1, i - window), min(len(s), i + window + 1)
        neigh = np.concatenate([s[lo:i], s[i + 1:hi]])
        if neigh.size == 0 or s[i] >= ratio * float(np.median(neigh)):
            cuts.append(int(i))
    return cuts


# ----------------------------------------------------------------------- Detections

@dataclass(eq=False)
class Detections(NpzRecord):
    """Everything one detection pass produced for one video."""

    faces: list  # per frame: list[Detection]
    cut_scores: np.ndarray  # (N,) float32, histogram distance to the previous frame; [0] = 0
    frame_size: tuple  # (width, height)
    detector: dict = field(default_factory=dict)  # identity of the detector that ran
    source: str = ""  # content fingerprint of the video, "" when not from a file

    def __len__(self) -> int:
        return len(self.faces)

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
                "cut_scores": np.asarray(self.cut_scores, dtype=np.float32), "meta": json_array(meta)}

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
        return cls(faces, np.asarray(a["cut_scores"], dtype=np.float32), tuple(meta["frame_size"]),
                   meta.get("detector", {}), meta.get("source", ""))



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


def detect_frames(frames, detector=None, progress=None, cancel=None, total: int | None = None) -> Detections:
    """Run `detector` (a detector object, a name, or None for RetinaFace) on every frame (BGR uint8; bare or (index, frame) pairs) and compute the
    scene-cut scores in the same pass.

    progress(done, total) is called after each frame (total = `total`, len(frames) or 0 when
    unknown); cancel() is polled before each frame and raises `Cancelled` when it returns true.
    """
    detector = resolve_detector(detector)
    if total is None:
        try:
            total = len(frames)
        except TypeError:
            total = 0
    faces, cut_scores = [], []
    prev_hist, size = None, (0, 0)
    done = 0
    for item in frames:
        if cancel is not None and cancel():
            raise Cancelled("face detection cancelled")
        frame = _frame_of(item)
        if done == 0:
            size = (int(frame.shape[1]), int(frame.shape[0]))
        dets = list(detector.detect(frame))
        dets.sort(key=lambda d: -d.score)
        faces.append(dets)
        hist = frame_histogram(frame)
        cut_scores.append(0.0 if prev_hist is None else histogram_distance(prev_hist, hist))
        prev_hist = hist
        done += 1
        if progress is not None:
            progress(done, max(total, done))
    if cancel is not None and cancel():
        raise Cancelled("face detection cancelled")
    return Detections(faces, np.asarray(cut_scores, dtype=np.float32), size,
                      _plain(detector.identity()))


def detect_video(source, detector=None, cache_dir=None, use_cache: bool = True, progress=None,
                 cancel=None) -> Detections:
    """Detections for a VideoSource-like object (`.path`, `.frames()`, `.frame_count`), read from
    the cache when the same file was analysed with the same detector settings before.

    cache_dir: folder for cache files (default `default_cache_dir()`). Nothing is cached when
    use_cache is false or the source has no `.path`. A cancelled pass writes nothing.
    """
    detector = resolve_detector(detector)
    path = getattr(source, "path", None)
    entry = fingerprint = None
    if use_cache and path is not None:
        fingerprint = file_fingerprint(path)
        entry = cache_path(cache_dir or default_cache_dir(), fingerprint,
                           identity_key(detector.identity()))
        cached = load_npz(entry)
        if cached is not None:
            try:
                dets = Detections.from_arrays(cached)
            except (ValueError, KeyError):
                dets = None
            if dets is not None and dets.source == fingerprint and dets.detector == _plain(detector.identity()):
                if progress is not None:
                    progress(len(dets), len(dets))
                return dets
    total = int(getattr(source, "frame_count", 0) or 0)
    dets = detect_frames(source.frames(), detector, progress=progress, cancel=cancel, total=total)
    if fingerprint is not None:
        dets.source = fingerprint
        try:
            dets.save(entry)
        except OSError:
            pass  # a read-only or full cache folder must not fail the job
    return dets
