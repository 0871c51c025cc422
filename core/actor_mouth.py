"""The actor's own mouth, in the shape the generator drew for the dub.

The generator draws a mouth from 96×96 pixels: its opening follows the dub, but its lips, teeth
and skin are a blur. Every dubbing job carries minutes of the actor's real mouth at full
resolution, so the two jobs are split between two channels that cannot carry each other's
signal:

* shape (how open, wide or closed) comes from the generated mouth, below the generator's
  resolution only: `DETAIL_SIGMA` at its 96-pixel scale;
* detail (lip edges, teeth, skin texture) comes from a real mouth of the same actor, taken from
  a frame at least `EXCLUDE_S` away from the output's own source frame (closer, it would replay
  the original mouth), chosen because its blurred mouth looks like the generated one, then
  aligned to the generated mouth by dense optical flow computed on both at the generator's blur
  (the flow sees shape, not texture), and high-passed above that same scale.

Pasting whole retrieved mouths was sharp but lost the sync (the retrieval cannot follow every
frame); the frequency split keeps the generator's opening and shading, and the alignment keeps
the real lip edges on the generated ones (without it the two bands disagree: double contours,
dark halos). Where the bank has nothing like the generated mouth (too little footage, a pose the
footage lacks) the generated mouth is pasted as it is, and the frame is counted as a fallback.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from core.blend import BlendSettings, composite, crop_matcher, mouth_corners, paste_detailed_patch, paste_patch
from core.closures import closed_rows
from core.errors import Cancelled
from core.faces.cache import (default_cache_dir, file_fingerprint, from_json_array, json_array, read_cache_entry,
                              save_npz_atomic)
from core.hparams import EXCLUDE_S, HP
from core.plan import frames_around

WINDOW_S = 60.0  # the bank holds the footage within this much of the rendered range
MAX_ENTRIES = 3000  # at most this many mouths (evenly spaced) in memory
MAX_WIDTH = 320  # mouths are kept at the footage's own resolution up to this width
MIN_ENTRIES = 25  # fewer eligible mouths than this (a still, a short shot): the generated mouth
MIN_MATCH = 0.3  # correlation below which no bank mouth looks like the generated one
CONTINUE_BONUS = 0.03  # prefer the next frame of the previous pick: steadier texture
# pixels at the generator's 96-pixel scale: shape below, detail above. Larger takes more of the
# actor (three held-out talks: sharpness 0.41 / 0.48 / 0.51 of the source at 1.0 / 1.5 / 2.5) but
# MediaPipe then reads the real lips' edges where the flow left them (sync r 0.46 / 0.42 / 0.38;
# the generated mouth 0.50): 1.0 keeps the sync
DETAIL_SIGMA = 1.0
FLOW_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM  # DIS optical flow's speed/quality preset
# (w, h) the flow is found at: the blurred mouths it compares hold no more than the generator's 96×48 pixels.
# Six held-out talks against the flow at the bank's size (~130–225 wide): the stage ~5 ms a frame faster
# at 720p, sharpness 0.716 (0.710), LSE-C 0.1161 (0.1170), MediaPipe sync r 0.381 (0.391), leak 0.230 (0.215)
FLOW_SIZE = (128, 64)
# the finest pyramid level the flow is refined at: 0 is FLOW_SIZE itself (the preset stops at half of it).
# Six held-out talks, level 1 -> 0: sharpness 0.721 -> 0.816 (the real lips' edges
# follow the generated ones more closely), MediaPipe sync r 0.370 -> 0.389,
# leak gain 0.079 -> 0.066, LSE-C 0.1150 -> 0.1145, ~1.8 ms a frame more. Level 0 with DETAIL_SIGMA 1.5:
# sharpness 0.96 but sync r 0.369, motion 1.23; at 96×48: sharpness 0.77, sync r 0.381
FLOW_FINEST_SCALE = 0
# the one resampling of a real mouth: bicubic keeps more of its finest detail than bilinear (dfrf_french,
# mouth-box sharpness ÷ source: 0.47 bilinear, 0.59 bicubic, 0.61 Lanczos, with two resizes around it).
# Lanczos alone, six held-out talks: 0.728 against 0.716, the judges unchanged, but ~4 ms a frame more at 720p
RESAMPLING = cv2.INTER_CUBIC
_DESCRIPTOR = (48, 24)  # the lower half, blurred, at half the generator's resolution
_MOUTH_ROWS, _MOUTH_COLS = slice(6, 20), slice(10, 38)  # the mouth itself, not the jaw line
_DESCRIPTOR_LEN = (_MOUTH_ROWS.stop - _MOUTH_ROWS.start) * (_MOUTH_COLS.stop - _MOUTH_COLS.start)
CACHE_FORMAT = 1
CACHE_ENTRIES = 2 * MAX_ENTRIES  # mouths a cache entry keeps: the latest bank's, then those nearest to it
JPEG_QUALITY = 95  # a cached mouth differs from the frame by about one level on average
SEEK_GAP = 32  # missing mouths this few frames apart are read by decoding through the gap, not seeking


def lower_half_corners(box, landmarks) -> np.ndarray | None:
    """The mouth corners (2, 2) of `landmarks` as shares of the int `box`'s lower half (x of its
    width, y of its height from its middle row, as `source_mouth` cuts it), or None."""
    corners = mouth_corners(landmarks)
    if corners is None:
        return None
    x1, y1, x2, y2 = box
    top = y1 + (y2 - y1) // 2
    return (corners - (x1, top)) / (x2 - x1, y2 - top)


def bank_corners(track, frames, pads=HP.pads) -> np.ndarray:
    """(N, 2, 2) `lower_half_corners` of source `frames` (with a face) in `track`, NaN where unknown."""
    out = np.full((len(frames), 2, 2), np.nan)
    for n, i in enumerate(frames):
        corners = lower_half_corners(track.crop_box(int(i), pads), track.landmarks_at(int(i)))
        if corners is not None:
            out[n] = corners
    return out


def source_mouth(frame: np.ndarray, box) -> np.ndarray:
    """The lower half of the int crop `box` (x1, y1, x2, y2) of `frame` at the footage's resolution,
    at most MAX_WIDTH wide: what the cache keeps."""
    x1, y1, x2, y2 = box
    half = frame[y1 + (y2 - y1) // 2:y2, x1:x2]
    if x2 - x1 > MAX_WIDTH:
        height = max(1, round(half.shape[0] * MAX_WIDTH / (x2 - x1)))
        return cv2.resize(half, (MAX_WIDTH, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(half)


def descriptor(mouth: np.ndarray) -> np.ndarray:
    """What a mouth looks like at the generator's blur: the grey mouth region, zero mean, unit
    norm, so a dot product of two descriptors is their correlation."""
    grey = cv2.cvtColor(mouth, cv2.COLOR_BGR2GRAY)
    grey = cv2.resize(grey, (HP.img_size, HP.img_size // 2), interpolation=cv2.INTER_AREA).astype(np.float32)
    small = cv2.resize(cv2.GaussianBlur(grey, (0, 0), 1.2), _DESCRIPTOR, interpolation=cv2.INTER_AREA)
    d = small[_MOUTH_ROWS, _MOUTH_COLS].ravel()
    d = d - d.mean()
    return d / max(float(np.linalg.norm(d)), 1e-6)


def generator_blur(mouth: np.ndarray, size) -> np.ndarray:
    """`mouth` (BGR) in grey as the generator would see it (down to 96 wide), back at `size`."""
    grey = cv2.cvtColor(mouth, cv2.COLOR_BGR2GRAY)
    low = cv2.resize(grey, (HP.img_size, HP.img_size // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(low, size, interpolation=cv2.INTER_CUBIC)


def shape_band(generated: np.ndarray, box_size, sigma: float) -> np.ndarray:
    """The lower half of the `generated` crop brought to a box of `box_size` (w, h) and blurred there by
    `sigma` of its pixels (float32): blurred first at the crop's own size, the same band without a
    blur the box's size."""
    (w, h), (gh, gw) = box_size, generated.shape[:2]
    lower = generated[gh // 2:].astype(np.float32)
    return cv2.resize(cv2.GaussianBlur(lower, (0, 0), sigma * gw / w, sigmaY=sigma * gh / h), (w, h - h // 2),
                      interpolation=cv2.INTER_CUBIC)


@dataclass
class MouthBank:
    """The actor's real mouths: source frame indices, the mouths (BGR, each at the footage's own
    resolution: `source_mouth`) and their descriptors (N, D)."""

    frames: np.ndarray
    mouths: list
    descriptors: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


def window(used_frames, fps: float, n_source: int) -> tuple[int, int]:
    """[lo, hi): the source frames within WINDOW_S of those a job shows (where its mouths come from)."""
    return frames_around(used_frames, WINDOW_S, fps, n_source)


def bank_frames(track, used_frames, fps: float, n_source: int) -> np.ndarray:
    """The source frames a bank for a job showing `used_frames` is built from: the frames with a
    face within WINDOW_S of them, every stride-th by index when there are more than MAX_ENTRIES.
    The stride is a power of two and the frames its multiples, so the banks of neighbouring or
    longer ranges share their frames (and the cache serves them) instead of each taking its own."""
    lo, hi = window(used_frames, fps, n_source)
    candidates = np.array([i for i in range(lo, hi) if track.crop_box(i) is not None], dtype=np.int64)
    stride = 1
    while len(candidates[candidates % stride == 0]) > MAX_ENTRIES:
        stride *= 2
    return candidates[candidates % stride == 0]


def mouth_cache_dir(cache_dir=None) -> Path:
    """The mouth cache's folder: `mouths` in the face-detection cache folder `cache_dir` (None:
    `default_cache_dir()`)."""
    return Path(cache_dir or default_cache_dir()) / "mouths"


def cache_path(cache_dir, fingerprint: str, track, pads) -> Path:
    """The cache entry of the mouths `track` crops with `pads` from the video `fingerprint`. Each
    mouth is checked against its crop box when read back; the settings in the key only keep two
    tracks (another face, other pads) from replacing each other's mouths."""
    identity = {"detector": track.params.get("detector"), "face_index": track.params.get("face_index"),
                "smooth_window": track.smooth_window, "smooth_method": track.smooth_method,
                "pads": [int(p) for p in pads], "max_width": MAX_WIDTH}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return mouth_cache_dir(cache_dir) / f"{fingerprint[:32]}-{key[:16]}-v{CACHE_FORMAT}.npz"


@dataclass
class MouthCache:
    """The mouths of one video read so far: per source frame, the crop box it was read at, the
    `source_mouth` as JPEG bytes, and its descriptor. Stored as one .npz: the JPEGs end to end
    in one byte array with their offsets (no pickle)."""

    source: str  # content fingerprint of the video
    mouths: dict = field(default_factory=dict)  # source frame -> (box, JPEG bytes, descriptor)

    def get(self, i: int, box):
        """(JPEG bytes, descriptor) of frame `i` read at `box`, or None."""
        hit = self.mouths.get(i)
        return None if hit is None or hit[0] != tuple(box) else hit[1:]

    def put(self, i: int, box, mouth: np.ndarray, desc: np.ndarray) -> np.ndarray:
        """Keep frame `i`'s mouth, read at `box`; returns it as the cache will give it back (through
        JPEG). A bank holds that, whether it was read now or from the cache: otherwise a job's first
        render and its re-render differed (dfrf_french, 8 s: up to 133 levels, every frame; the flow
        aligns a JPEG's mouth a little differently)."""
        ok, jpeg = cv2.imencode(".jpg", mouth, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            return mouth
        self.mouths[i] = (tuple(int(v) for v in box), jpeg.ravel(), desc.astype(np.float32))
        return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)

    def trim(self, lo: int, hi: int, limit: int = CACHE_ENTRIES) -> None:
        """Keep at most `limit` mouths, those nearest to the frames lo..hi first."""
        if len(self.mouths) > limit:
            kept = sorted(self.mouths, key=lambda i: max(lo - i, i - hi, 0))[:limit]
            self.mouths = {i: self.mouths[i] for i in sorted(kept)}

    def to_arrays(self) -> dict:
        frames = sorted(self.mouths)
        boxes, jpegs, descs = zip(*(self.mouths[i] for i in frames)) if frames else ((), (), ())
        meta = {"format": CACHE_FORMAT, "kind": "mouths", "source": self.source}
        return {"frames": np.array(frames, dtype=np.int64),
                "boxes": np.array(boxes, dtype=np.int64).reshape(-1, 4),
                "jpeg": np.concatenate(jpegs) if jpegs else np.zeros(0, np.uint8),
                "offsets": np.cumsum([0, *map(len, jpegs)]).astype(np.int64),
                "descriptors": np.array(descs, dtype=np.float32).reshape(-1, _DESCRIPTOR_LEN),
                "meta": json_array(meta)}

    @classmethod
    def from_arrays(cls, a: dict) -> "MouthCache":
        meta = from_json_array(a["meta"])
        if meta.get("kind") != "mouths" or meta.get("format") != CACHE_FORMAT:
            raise ValueError("not a Lipsmith mouth cache of this format")
        frames, boxes, jpeg, offsets, descs = (a[k] for k in ("frames", "boxes", "jpeg", "offsets", "descriptors"))
        n = len(frames)
        if (boxes.shape != (n, 4) or descs.shape != (n, _DESCRIPTOR_LEN) or offsets.shape != (n + 1,)
                or jpeg.dtype != np.uint8 or offsets[0] != 0 or offsets[-1] != len(jpeg)
                or np.any(np.diff(offsets) < 0)):
            raise ValueError("inconsistent mouth cache arrays")
        return cls(meta["source"], {int(i): (tuple(int(v) for v in b), jpeg[o0:o1], d)
                                    for i, b, o0, o1, d in zip(frames, boxes, offsets[:-1], offsets[1:], descs)})


def build_bank(video, track, frames, pads=HP.pads, progress=None, cancel=None, cache_dir=None) -> MouthBank:
    """Read the mouths of source `frames` (increasing indices with a face) from `video`.

    Mouths are cached between jobs (folder `mouth_cache_dir(cache_dir)`), per video file and
    track settings, each with the crop box it was read at: only the wanted frames the cache
    lacks, or holds at another box, are read, and the entry is saved with them when the build
    ends, cancelled or failed too, so the next job continues where this one stopped.

    progress(done, total) counts the frames read (all cached: one call, total = their number);
    cancel() is polled before each and raises `Cancelled`.
    """
    frames = np.asarray(frames, dtype=np.int64)
    boxes = [track.crop_box(int(i), pads) for i in frames]
    fingerprint = file_fingerprint(video.path)
    entry = cache_path(cache_dir, fingerprint, track, pads)
    cache = read_cache_entry(entry, MouthCache.from_arrays, "mouth", "reading the mouths again")
    if cache is None or cache.source != fingerprint:
        cache = MouthCache(fingerprint)
    mouths = [None] * len(frames)
    descriptors = np.empty((len(frames), _DESCRIPTOR_LEN), np.float32)
    missing = []
    for n, (i, box) in enumerate(zip(frames, boxes)):
        hit = cache.get(int(i), box)
        mouth = None if hit is None else cv2.imdecode(hit[0], cv2.IMREAD_COLOR)
        if mouth is None:
            missing.append(n)
            continue
        mouths[n] = mouth
        descriptors[n] = hit[1]
    if not missing and progress is not None and len(frames):
        progress(len(frames), len(frames))
    done = 0
    try:
        for n, image in _read(video, frames, missing):
            if cancel is not None and cancel():
                raise Cancelled("reading the actor's mouths cancelled")
            mouth = source_mouth(image, boxes[n])
            descriptors[n] = descriptor(mouth)
            mouths[n] = cache.put(int(frames[n]), boxes[n], mouth, descriptors[n])
            done += 1
            if progress is not None:
                progress(done, len(missing))
    finally:
        if done:
            cache.trim(int(frames[0]), int(frames[-1]))
            _save(cache, entry)
    return MouthBank(frames, mouths, descriptors)


def _read(video, frames, rows):
    """(row, frame) for the source frames `frames[rows]` (increasing), decoding through short gaps
    and seeking across longer ones."""
    runs = np.split(np.asarray(rows, dtype=np.int64), np.flatnonzero(np.diff(frames[rows]) > SEEK_GAP) + 1)
    for run in runs:
        if not len(run):
            continue
        wanted = {int(frames[n]): int(n) for n in run}
        with contextlib.closing(video.frames(int(frames[run[0]]), int(frames[run[-1]]) + 1)) as items:
            for i, image in items:
                if int(i) in wanted:
                    yield wanted[int(i)], image


def _save(cache: MouthCache, entry) -> None:
    try:
        save_npz_atomic(entry, cache.to_arrays())
    except OSError:
        pass  # a read-only or full cache folder must not fail the job


class ActorMouth:
    """Pastes the actor's mouth, shaped by each generated crop, frame after frame (in output order:
    it remembers the previous pick to keep runs of real frames together)."""

    def __init__(self, bank: MouthBank, fps: float, settings: BlendSettings = BlendSettings(),
                 gaps: np.ndarray | None = None, corners: np.ndarray | None = None):
        self.bank = bank
        self.measured(gaps, corners)
        self.exclude = max(1, int(round(EXCLUDE_S * fps)))
        self.settings = settings
        self.flow = cv2.DISOpticalFlow_create(FLOW_PRESET)
        self.flow.setFinestScale(FLOW_FINEST_SCALE)
        self.previous = None  # bank row of the last pick
        self.previous_shut = None  # bank row of the last closed mouth pasted
        self.picks: list = []  # source frame of each pick (diagnostics: reuse)
        self.closures = 0  # frames the dub's closures reached

    def pick(self, generated_mouth: np.ndarray, source_frame: int) -> int | None:
        """The bank row whose mouth best matches `generated_mouth` and lies outside the exclusion
        around `source_frame`, or None when too few are eligible or none matches."""
        eligible = np.abs(self.bank.frames - source_frame) >= self.exclude
        if eligible.sum() < MIN_ENTRIES:
            return None
        score = self.bank.descriptors @ descriptor(generated_mouth)
        score[~eligible] = -np.inf
        if self.previous is not None and self.previous + 1 < len(self.bank) and eligible[self.previous + 1] \
                and self.bank.frames[self.previous + 1] == self.bank.frames[self.previous] + 1:
            score[self.previous + 1] += CONTINUE_BONUS
        row = int(np.argmax(score))
        if score[row] < MIN_MATCH:
            return None
        return row

    def measured(self, gaps: np.ndarray | None, corners: np.ndarray | None = None) -> None:
        """What closures need of the bank: each mouth's inner-lip gap (core.closures.mouth_gaps; None: no
        closures) and its corners (N, 2, 2) as `lower_half_corners` gives them (None: not placed)."""
        self.gaps, self.corners = gaps, corners
        self.closed = None if gaps is None else closed_rows(gaps)  # which are shut

    def pick_shut(self, source_frame: int) -> int | None:
        """The bank row of a closed mouth (`closed`) outside the exclusion
        around `source_frame`: the frame after the last one taken while that runs on (a closure that
        lasts moves as filmed), else the one the lip reader reads most shut. (Chosen by their look
        beside the generated mouth, which is open, lips parted over teeth won.) None when there is none."""
        if self.closed is None:
            return None
        eligible = self.closed & (np.abs(self.bank.frames - source_frame) >= self.exclude)
        last = self.previous_shut
        if last is not None and last + 1 < len(self.bank) and eligible[last + 1] \
                and self.bank.frames[last + 1] == self.bank.frames[last] + 1:
            row = last + 1
        else:
            row = int(np.argmin(np.where(eligible, self.gaps, np.inf))) if eligible.any() else None
        self.previous_shut = row
        return row

    def placed(self, row: int, corners, size) -> np.ndarray:
        """Bank mouth `row` at `size` (w, h; float32), its mouth corners moved onto `corners` (both as
        `lower_half_corners` gives them) by a rotation, scale and shift when both are known: a closed
        mouth from another moment keeps this moment's tilt and place. One resampling either way."""
        real = self.bank.mouths[row]
        known = None if self.corners is None else self.corners[row]
        if corners is None or known is None or not np.isfinite(known).all() or not np.isfinite(corners).all():
            return cv2.resize(real, size, interpolation=RESAMPLING).astype(np.float32)
        (w, h), (rh, rw) = size, real.shape[:2]
        src, dst = known * (rw, rh), corners * (w, h)  # pixel positions in the bank mouth and at `size`
        (a, b), (c, d) = src[1] - src[0], dst[1] - dst[0]
        # the similarity z -> k z + t taking corner 0 to corner 0 and the span a + ib to c + id
        k = complex(c, d) / complex(a, b) if abs(complex(a, b)) > 1e-6 else 1.0
        t = complex(*dst[0]) - k * complex(*src[0])
        matrix = np.float32([[k.real, -k.imag, t.real], [k.imag, k.real, t.imag]])
        return cv2.warpAffine(real, matrix, size, flags=RESAMPLING, borderMode=cv2.BORDER_REFLECT).astype(np.float32)

    def aligned(self, row: int, generated_mouth: np.ndarray, size) -> np.ndarray:
        """Bank mouth `row` warped onto the shape of `generated_mouth` (the generated crop's lower
        half), at `size` (w, h). The flow is found at FLOW_SIZE on both mouths at the generator's blur;
        the real mouth is then resampled once, from its own resolution, by the flow and the scale
        together: every extra resize (and a bilinear one above all) takes its finest detail."""
        real = self.bank.mouths[row]
        flow = self.flow.calc(generator_blur(generated_mouth, FLOW_SIZE), generator_blur(real, FLOW_SIZE), None)
        w, h = size
        (fw, fh), (rh, rw) = FLOW_SIZE, real.shape[:2]
        # pixel centres: x at `size` -> (x + 0.5) rw / w - 0.5 in `real`, moved by the flow (found at fw) × rw / fw;
        # built in place in the flow brought to `size` (one (h, w, 2) map: the remap's own layout)
        where = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        where *= np.float32((rw / fw, rh / fh))
        where[..., 0] += (np.arange(w, dtype=np.float32) + 0.5) * (rw / w) - 0.5
        where[..., 1] += ((np.arange(h, dtype=np.float32) + 0.5) * (rh / h) - 0.5)[:, None]
        return cv2.remap(real, where, None, RESAMPLING, borderMode=cv2.BORDER_REFLECT)

    def paste(self, frame: np.ndarray, generated: np.ndarray, box, landmarks, source_frame: int,
              lip_colour: np.ndarray | None = None, original: np.ndarray | None = None,
              closure: float = 0.0) -> bool:
        """Composite into `frame` (in place) at the int `box`: the colour-matched generated crop's
        shape and shading plus the aligned real mouth's detail, through the blend mask; the lips'
        colour is the aligned real mouth's. False when the bank has no mouth for it: the generated
        crop is pasted as it is, its lips coloured after `lip_colour` (core.blend.ColourMatch),
        a fallback. `original`: the box's `core.blend.original_crop` when the caller has it.
        `closure` (0–1, core.closures): how far the dub shuts the lips here; one of the actor's
        closed mouths (`pick_shut`) replaces the generated shape in that proportion."""
        x1, y1, x2, y2 = (int(v) for v in box)
        h, w = y2 - y1, x2 - x1
        gh, gw = generated.shape[:2]
        if h < 4 or w < 4:
            composite(frame, generated, box, landmarks, self.settings, lip_colour, original)
            return False
        match, small_mask = crop_matcher(frame, generated, box, landmarks, self.settings, original)
        matched = match(lip_colour)
        row = self.pick(matched[gh // 2:], source_frame)
        self.previous = row
        if row is None:
            paste_patch(frame, cv2.resize(matched, (w, h), interpolation=cv2.INTER_LINEAR), box, small_mask)
            return False
        self.picks.append(int(self.bank.frames[row]))
        # both parts at the box's own resolution (the real mouth resampled once: `aligned`), split at
        # DETAIL_SIGMA of the generator's pixels: the generated mouth's shape below, the real one's detail above
        size, sigma = (w, h - h // 2), DETAIL_SIGMA * w / HP.img_size
        real = self.aligned(row, matched[gh // 2:], size)
        if self.settings.color_match:  # the lips coloured after the real mouth in the generated shape
            real_colour = matched.copy()
            real_colour[gh // 2:] = cv2.resize(real, (gw, gh - gh // 2), interpolation=cv2.INTER_AREA)
            matched = match(real_colour)
        real = real.astype(np.float32)
        low, detail = shape_band(matched, (w, h), sigma), real - cv2.GaussianBlur(real, (0, 0), sigma)
        shut = self.pick_shut(source_frame) if closure > 0 else None
        if shut is not None:  # the closed mouth whole, shape and detail, as it was filmed...
            mouth = self.placed(shut, lower_half_corners(box, landmarks), size)
            # ...but in this frame's light: each channel's median (skin, mostly) moved to the frame's own
            here = frame[y1 + h // 2:y2, x1:x2].reshape(-1, 3)
            mouth += np.median(here, axis=0).astype(np.float32) - np.median(mouth.reshape(-1, 3), axis=0)
            soft = cv2.GaussianBlur(mouth, (0, 0), sigma)
            low = (1 - closure) * low + closure * soft
            detail = (1 - closure) * detail + closure * (mouth - soft)
            self.closures += 1
        paste_detailed_patch(frame, low, detail, box, small_mask, sigma)
        return True
