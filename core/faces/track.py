"""From raw detections to the one face to dub: link by IoU, pick per shot, fill, smooth.

Rules (all frame-exact, no randomness):

* Shots are split at scene cuts (`find_scene_cuts` on the cached cut scores). Tracks never
  cross a cut: without face identity we cannot know it is the same person.
* Inside a shot, each frame's detections are linked greedily (highest IoU first, IoU >=
  `iou_threshold`) to the shot's existing tracks, compared with each track's last box however
  long ago it was seen, so a face that disappears and comes back at the same place keeps its
  track. Unmatched detections start new tracks.
* Each track is scored by mean area (fraction of the frame) x closeness of its mean centre to
  the frame centre (1 at the centre, 0 at a corner) x length (fraction of the shot). In every
  shot the tracks present (at least `min_track_len` detections, or the whole shot if shorter)
  are sorted by that score and the `face_index`-th is chosen (0 = the largest, most central,
  longest). A shot without such a track is a gap.
* Gaps of <= `max_fill_gap` frames inside the chosen track are filled by linear
  interpolation (marked `interpolated`); longer gaps stay empty (NaN boxes).
* Smoothing: a centred mean (or median) over `smooth_window` frames (rounded up to odd; 0 or
  1 = off), computed separately on each run of consecutive face frames of one shot, so it never
  averages across a cut or a gap. Near a run's ends the window shrinks symmetrically, so the
  first frame after a cut keeps its own box exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.hparams import HP

from .cache import NpzRecord, from_json_array, json_array
from .detections import CUT_WINDOW, Detections, find_scene_cuts
from .geometry import iou_matrix, padded_box

TRACK_FORMAT = 1
SMOOTH_WINDOW = 5
MAX_FILL_GAP = 3


@dataclass(eq=False)
class Track:
    """A run of linked detections of one face inside one shot."""

    frames: np.ndarray  # (n,) int, increasing
    boxes: np.ndarray  # (n, 4)
    scores: np.ndarray  # (n,)
    landmarks: np.ndarray | None  # (n, K, 2) or None
    shot: int
    rank_score: float = 0.0

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def mean_box(self) -> np.ndarray:
        return self.boxes.mean(axis=0)


def shot_bounds(n_frames: int, cuts) -> list:
    """[(start, stop), ...] half-open frame ranges of the shots."""
    edges = [0] + [c for c in sorted(set(cuts)) if 0 < c < n_frames] + [n_frames]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def _rank_score(boxes: np.ndarray, n_in_shot: int, frame_size) -> float:
    w, h = float(frame_size[0] or 1), float(frame_size[1] or 1)
    bw = np.clip(boxes[:, 2] - boxes[:, 0], 0, None)
    bh = np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    area = float(np.mean(bw * bh)) / (w * h)
    cx = float(np.mean((boxes[:, 0] + boxes[:, 2]) / 2))
    cy = float(np.mean((boxes[:, 1] + boxes[:, 3]) / 2))
    dist = np.hypot(cx - w / 2, cy - h / 2) / (0.5 * np.hypot(w, h))
    closeness = max(1.0 - dist, 1e-3)
    return area * closeness * (len(boxes) / max(n_in_shot, 1))


def link_tracks(detections: Detections, cuts=(), iou_threshold: float = 0.3) -> list:
    """All tracks of all shots, each shot's tracks sorted best first (see module doc)."""
    faces = detections.faces
    out = []
    for shot, (a, b) in enumerate(shot_bounds(len(faces), cuts)):
        tracks = []  # dicts of lists
        for i in range(a, b):
            dets = faces[i]
            if not dets:
                continue
            boxes = np.array([d.box for d in dets], dtype=np.float64)
            free = list(range(len(dets)))
            if tracks:
                last = np.array([t["boxes"][-1] for t in tracks])
                m = iou_matrix(last, boxes)
                pairs = np.argwhere(m >= iou_threshold)
                order = np.argsort(-m[pairs[:, 0], pairs[:, 1]], kind="stable")
                used_t, used_d = set(), set()
                for ti, di in pairs[order]:
                    if ti in used_t or di in used_d:
                        continue
                    used_t.add(ti)
                    used_d.add(di)
                    _append(tracks[ti], i, dets[di])
                free = [d for d in free if d not in used_d]
            for di in free:
                t = {"frames": [], "boxes": [], "scores": [], "landmarks": []}
                _append(t, i, dets[di])
                tracks.append(t)
        shot_tracks = []
        for t in tracks:
            lms = t["landmarks"]
            k = next((len(x) for x in lms if x is not None), 0)
            lm = None
            if k:
                lm = np.stack([x if x is not None and len(x) == k else np.full((k, 2), np.nan)
                               for x in lms])
            boxes = np.array(t["boxes"], dtype=np.float64)
            shot_tracks.append(Track(np.array(t["frames"], dtype=np.int64), boxes,
                                     np.array(t["scores"], dtype=np.float64), lm, shot,
                                     _rank_score(boxes, b - a, detections.frame_size)))
        shot_tracks.sort(key=lambda t: (-t.rank_score, int(t.frames[0])))
        out.extend(shot_tracks)
    return out


def _append(t: dict, i: int, d) -> None:
    t["frames"].append(i)
    t["boxes"].append(d.box)
    t["scores"].append(d.score)
    t["landmarks"].append(d.landmarks)


def smooth_runs(values: np.ndarray, valid: np.ndarray, breaks, window: int, method: str = "mean") -> np.ndarray:
    """Centred mean/median of `values` (N, ...) over `window` frames, separately on each run of
    consecutive `valid` frames; a run also ends before every index in `breaks`. Invalid rows
    are returned unchanged. The window shrinks symmetrically at a run's ends."""
    out = np.array(values, dtype=np.float64, copy=True)
    if window is None or window <= 1:
        return out
    if method not in ("mean", "median"):
        raise ValueError(f"smooth method must be 'mean' or 'median', not {method!r}")
    half = int(window) // 2
    n = len(valid)
    brk = np.zeros(n + 1, dtype=bool)
    brk[[b for b in breaks if 0 < b < n]] = True
    i = 0
    while i < n:
        if not valid[i]:
            i += 1
            continue
        j = i + 1
        while j < n and valid[j] and not brk[j]:
            j += 1
        seg = out[i:j].copy()
        L = j - i
        pos = np.arange(L)
        hw = np.minimum(half, np.minimum(pos, L - 1 - pos))
        if method == "mean":
            flat = seg.reshape(L, -1)
            cs = np.concatenate([np.zeros((1, flat.shape[1])), np.cumsum(flat, axis=0)])
            sums = cs[pos + hw + 1] - cs[pos - hw]
            out[i:j] = (sums / (2 * hw + 1)[:, None]).reshape(seg.shape)
        else:
            for p in range(L):
                out[i + p] = np.median(seg[p - hw[p]:p + hw[p] + 1], axis=0)
        i = j
    return out


@dataclass(eq=False)
class FaceTrack(NpzRecord):
    """The chosen face of every frame. Built by `build_track`; stored in the project as .npz.

    Stored: raw (gap-filled, unsmoothed) boxes/landmarks, the masks, cuts and parameters;
    `boxes` / `landmarks` (smoothed) are recomputed on construction, so changing the smoothing
    needs no new detection (`with_smoothing`).
    """

    raw_boxes: np.ndarray  # (N, 4) float, NaN rows where no face
    raw_landmarks: np.ndarray | None  # (N, K, 2) float or None
    has_face: np.ndarray  # (N,) bool
    interpolated: np.ndarray  # (N,) bool: box filled in over a short gap
    scores: np.ndarray  # (N,) detection score, NaN where none
    scene_cuts: list  # frame indices that start a new shot
    frame_size: tuple  # (width, height)
    n_faces_seen: int = 0  # most faces detected in one frame
    smooth_window: int = SMOOTH_WINDOW
    smooth_method: str = "mean"
    params: dict = field(default_factory=dict)  # how it was built (face_index, thresholds, detector, face_choices)
    boxes: np.ndarray = field(init=False, repr=False)
    landmarks: np.ndarray | None = field(init=False, repr=False)

    def __post_init__(self):
        self.raw_boxes = np.asarray(self.raw_boxes, dtype=np.float64).reshape(-1, 4)
        self.has_face = np.asarray(self.has_face, dtype=bool)
        self.interpolated = np.asarray(self.interpolated, dtype=bool)
        self.scores = np.asarray(self.scores, dtype=np.float64)
        self.scene_cuts = [int(c) for c in self.scene_cuts]
        self.frame_size = (int(self.frame_size[0]), int(self.frame_size[1]))
        self.smooth_window = int(self.smooth_window or 0)
        if self.raw_landmarks is not None:
            self.raw_landmarks = np.asarray(self.raw_landmarks, dtype=np.float64)
            if self.raw_landmarks.ndim != 3 or self.raw_landmarks.shape[1] == 0:
                self.raw_landmarks = None
        n = len(self.raw_boxes)
        if not (len(self.has_face) == len(self.interpolated) == len(self.scores) == n):
            raise ValueError("FaceTrack arrays differ in length")
        self.boxes = smooth_runs(self.raw_boxes, self.has_face, self.scene_cuts,
                                 self.smooth_window, self.smooth_method)
        self.boxes[~self.has_face] = np.nan
        self.landmarks = None
        if self.raw_landmarks is not None:
            self.landmarks = smooth_runs(self.raw_landmarks, self.has_face, self.scene_cuts,
                                         self.smooth_window, self.smooth_method)
            self.landmarks[~self.has_face] = np.nan

    # ---------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self.raw_boxes)

    @property
    def n_frames(self) -> int:
        return len(self.raw_boxes)

    @property
    def missing_frames(self) -> list:
        """Frames with no face (passed through unchanged by the renderer)."""
        return np.flatnonzero(~self.has_face).tolist()

    @property
    def missing_ranges(self) -> list:
        """The missing frames as half-open (start, stop) ranges, for the timeline."""
        out, start = [], None
        for i, h in enumerate(self.has_face):
            if not h and start is None:
                start = i
            elif h and start is not None:
                out.append((start, i))
                start = None
        if start is not None:
            out.append((start, len(self.has_face)))
        return out

    def box(self, i: int):
        """Smoothed float box of frame i, or None."""
        return self.boxes[i].copy() if self.has_face[i] else None

    def landmarks_at(self, i: int):
        """Smoothed (K, 2) landmarks of frame i in frame pixels, or None (no face / none known)."""
        if self.landmarks is None or not (0 <= i < len(self.has_face)) or not self.has_face[i]:
            return None
        lm = self.landmarks[i]
        return None if np.isnan(lm).any() else lm.copy()

    def crop_box(self, i: int, pads=HP.pads):
        """Integer (x1, y1, x2, y2) crop of frame i: smoothed box + pads (top, bottom, left,
        right), clamped to the frame; None where there is no face."""
        if not (0 <= i < len(self.has_face)) or not self.has_face[i]:
            return None
        return padded_box(self.boxes[i], self.frame_size, pads)

    def with_smoothing(self, window: int, method: str = "mean") -> "FaceTrack":
        return FaceTrack(self.raw_boxes, self.raw_landmarks, self.has_face, self.interpolated,
                         self.scores, self.scene_cuts, self.frame_size, self.n_faces_seen,
                         window, method, dict(self.params))

    # ---------------------------------------------------------------- storage
    def to_arrays(self) -> dict:
        """Plain arrays (no objects, loadable with allow_pickle=False)."""
        lm = (np.zeros((len(self), 0, 2), np.float32) if self.raw_landmarks is None
              else self.raw_landmarks.astype(np.float32))
        meta = {"format": TRACK_FORMAT, "kind": "facetrack", "frame_size": list(self.frame_size),
                "n_faces_seen": int(self.n_faces_seen), "smooth_window": self.smooth_window,
                "smooth_method": self.smooth_method, "params": self.params}
        return {"raw_boxes": self.raw_boxes, "raw_landmarks": lm, "has_face": self.has_face,
                "interpolated": self.interpolated, "scores": self.scores.astype(np.float32),
                "scene_cuts": np.asarray(self.scene_cuts, dtype=np.int64), "meta": json_array(meta)}

    @classmethod
    def from_arrays(cls, a: dict) -> "FaceTrack":
        meta = from_json_array(a["meta"])
        if meta.get("kind") != "facetrack" or meta.get("format") != TRACK_FORMAT:
            raise ValueError("not a Lipsmith face track of this format")
        lm = a["raw_landmarks"]
        return cls(a["raw_boxes"], None if lm.shape[1] == 0 else lm, a["has_face"], a["interpolated"],
                   a["scores"], a["scene_cuts"].tolist(), tuple(meta["frame_size"]),
                   meta["n_faces_seen"], meta["smooth_window"], meta["smooth_method"], meta["params"])



def scene_cuts(detections: Detections, cuts=None, cut_threshold: float = 0.3) -> list:
    """The sorted shot starts inside the video: `cuts` when given, else those its cut scores show."""
    if cuts is None:
        cuts = find_scene_cuts(detections.cut_scores, threshold=cut_threshold)
    return sorted({int(c) for c in cuts if 0 < c < len(detections)})


def shot_choices(tracks, shot: int, shot_length: int, min_track_len: int = 3) -> list:
    """The tracks of `shot` that `face_index` chooses among, best first: face_index k dubs the k-th.
    A track counts with at least `min_track_len` detections (or the whole shot, if shorter)."""
    need = min(min_track_len, shot_length)
    return [t for t in tracks if t.shot == shot and len(t) >= need]


def build_track(detections: Detections, face_index: int = 0, smooth_window: int = SMOOTH_WINDOW,
                smooth_method: str = "mean", max_fill_gap: int = MAX_FILL_GAP, iou_threshold: float = 0.3,
                min_track_len: int = 3, cut_threshold: float = 0.3, cuts=None) -> FaceTrack:
    """Choose, fill and smooth the face to dub (see the module doc). `cuts` overrides the
    scene cuts found from the detections' cut scores (pass [] to ignore cuts).
    face_index None = 0 (the largest, most central face)."""
    face_index = 0 if face_index is None else int(face_index)
    if face_index < 0:
        raise ValueError("face_index must be >= 0")
    n = len(detections)
    cuts = scene_cuts(detections, cuts, cut_threshold)
    tracks = link_tracks(detections, cuts, iou_threshold)
    k = next((t.landmarks.shape[1] for t in tracks if t.landmarks is not None), 0)

    boxes = np.full((n, 4), np.nan)
    lms = np.full((n, k, 2), np.nan) if k else None
    has = np.zeros(n, dtype=bool)
    interp = np.zeros(n, dtype=bool)
    scores = np.full(n, np.nan)
    face_choices = 0  # the most faces one shot offers: face_index must be below it to find any
    for shot, (a, b) in enumerate(shot_bounds(n, cuts)):
        cands = shot_choices(tracks, shot, b - a, min_track_len)
        face_choices = max(face_choices, len(cands))
        if face_index >= len(cands):
            continue
        t = cands[face_index]
        boxes[t.frames] = t.boxes
        scores[t.frames] = t.scores
        has[t.frames] = True
        if lms is not None and t.landmarks is not None and t.landmarks.shape[1] == k:
            lms[t.frames] = t.landmarks
        # short gaps inside the track: linear interpolation
        for f0, f1, j in zip(t.frames[:-1], t.frames[1:], range(len(t) - 1)):
            gap = int(f1 - f0 - 1)
            if 0 < gap <= max_fill_gap:
                w = (np.arange(1, gap + 1) / (gap + 1))[:, None]
                boxes[f0 + 1:f1] = t.boxes[j] * (1 - w) + t.boxes[j + 1] * w
                if lms is not None and t.landmarks is not None and t.landmarks.shape[1] == k:
                    lms[f0 + 1:f1] = (t.landmarks[j][None] * (1 - w[:, :, None])
                                      + t.landmarks[j + 1][None] * w[:, :, None])
                has[f0 + 1:f1] = True
                interp[f0 + 1:f1] = True
    params = {"face_index": int(face_index), "max_fill_gap": int(max_fill_gap),
              "iou_threshold": float(iou_threshold), "min_track_len": int(min_track_len),
              "cut_threshold": float(cut_threshold), "detector": detections.detector,
              "source": detections.source, "n_tracks": len(tracks), "face_choices": face_choices}
    return FaceTrack(boxes, lms, has, interp, scores, cuts, detections.frame_size,
                     detections.n_faces_seen, smooth_window, smooth_method, params)


def context_frames(smooth_window: int = SMOOTH_WINDOW, max_fill_gap: int = MAX_FILL_GAP) -> int:
    """Frames on either side of a range whose detections can change the range's boxes: the
    smoothing's half window, a filled gap beyond it, and the scene-cut test's neighbours of those.
    (Which face a shot's ranking chooses can depend on frames further away; with one face it cannot.)"""
    return int(smooth_window or 0) // 2 + int(max_fill_gap) + 1 + CUT_WINDOW


def track_video(source, detector=None, cache_dir=None, use_cache: bool = True, progress=None,
                cancel=None, frames: range | None = None, **track_params) -> FaceTrack:
    """Detect (or load cached detections) for a VideoSource, then `build_track(**track_params)`.
    detector: a detector object, a name ('retinaface', 'face_alignment') or None (RetinaFace).
    frames: the source frames the track is for (a range; None: all); only they and their
    `context_frames` are detected, and the track has no face outside what was detected."""
    from .detections import detect_video

    dets = detect_video(source, detector, cache_dir=cache_dir, use_cache=use_cache, progress=progress,
                        cancel=cancel, frames=with_context(frames, **track_params))
    return build_track(dets, **track_params)


def with_context(frames: range | None, smooth_window: int = SMOOTH_WINDOW, max_fill_gap: int = MAX_FILL_GAP,
                 **_) -> range | None:
    """The source frames a track for `frames` detects: them and their `context_frames` (None: all)."""
    if frames is None:
        return None
    margin = context_frames(smooth_window, max_fill_gap)
    return range(max(0, frames.start - margin), frames.stop + margin)
