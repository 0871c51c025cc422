"""Speech segments of the dub: the editor's timeline units.

A track is cut into `Segment(start_s, end_s, kind)` with kind "speech" or "silence",
covering [0, duration] without gaps or overlaps. Silence segments are where the mouth
should rest.

Voice activity comes from one of two detectors, giving a per-frame voiced flag:

* ``silero`` — the Silero VAD network that the `silero-vad` package ships inside its
  wheel (``silero_vad/data``). We locate the package with `importlib.util.find_spec`
  (which does not run its ``__init__``: that imports torch and calls
  ``torch.set_num_threads(1)`` for the whole process) and run the ONNX file with
  onnxruntime, one thread. Preferred file: ``silero_vad_16k_sequence.onnx`` (one ONNX
  call per 16 s block, probabilities bit-identical to the streaming model), then the
  streaming ``silero_vad.onnx``, then ``silero_vad.jit`` through torch. Nothing is
  downloaded; torch hub is never touched.
* ``energy`` — frame RMS in dB relative to the track's percentile noise floor, with
  hysteresis (enter above floor + `on_db`, stay above floor + `off_db`) and an absolute
  gate. Fast, no model; the fallback when Silero cannot run.

``method="auto"`` uses Silero when it loads and falls back to energy (logged once).
Silero's recurrent state holds the probability up for 0.2–0.3 s after speech stops, so
its runs' edges are pulled in to the energy contour (`refine_edges`, on by default);
otherwise breath pauses of 0.3–0.5 s vanish into the speech around them.

The voiced flags then go through the same editing rules:

1. speech runs separated by pauses shorter than `min_gap` merge;
2. speech runs shorter than `min_speech` become silence;
3. silences shorter than `min_silence` are absorbed (into the surrounding speech, or
   into the neighbouring speech segment at the track's edges);
4. speech longer than `max_len` is split, recursively, at the quietest point (lowest
   smoothed energy) within the middle half of the run.

A track shorter than max(0.2 s, `min_speech`) is one segment of its kind (the
detector's majority vote); a zero-length track has no segments.
"""
from __future__ import annotations

import importlib.util
import logging
import math
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from core.errors import Cancelled, WeightsError
from core.hparams import HP

log = logging.getLogger(__name__)

SPEECH = "speech"
SILENCE = "silence"
KINDS = (SPEECH, SILENCE)

SHORT_TRACK_S = 0.2  # below this (or below min_speech) a track is one segment
ENERGY_HOP_S = 0.010  # energy contour resolution
SILERO_SR = 16000
SILERO_FRAME = 512  # samples per Silero probability at 16 kHz (32 ms)
SILERO_CONTEXT = 64  # samples of the previous frame prefixed to each frame
SILERO_BLOCK = 512  # frames per ONNX call of the sequence model (16.4 s)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    kind: str  # "speech" or "silence"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"segment kind must be one of {KINDS}, not {self.kind!r}")
        if not self.end_s >= self.start_s:
            raise ValueError(f"segment ends before it starts: {self.start_s} > {self.end_s}")

    @property
    def duration(self) -> float:
        return self.end_s - self.start_s

    @property
    def is_speech(self) -> bool:
        return self.kind == SPEECH

    def to_dict(self) -> dict:
        return {"start_s": self.start_s, "end_s": self.end_s, "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict) -> "Segment":
        return cls(float(d["start_s"]), float(d["end_s"]), str(d["kind"]))


class FrameRange(NamedTuple):
    """Video frames [start, end) of one segment."""
    start: int
    end: int
    kind: str

    @property
    def is_speech(self) -> bool:
        return self.kind == SPEECH


# --------------------------------------------------------------------------- energy


def frame_energy_db(audio: np.ndarray, sr: int = HP.sample_rate, hop_s: float = ENERGY_HOP_S,
                    win_hops: int = 3) -> np.ndarray:
    """RMS level in dBFS per hop (frame k covers [k·hop, (k+1)·hop)), averaged in power over
    `win_hops` centred hops; digital silence reads −100 dB. Bounded memory on long tracks."""
    hop = max(1, int(round(hop_s * sr)))
    n_hops = -(-audio.size // hop)
    power = np.empty(n_hops, dtype=np.float64)
    chunk = hop * 6000  # one minute at 10 ms
    for start in range(0, audio.size, chunk):
        part = np.asarray(audio[start:start + chunk], dtype=np.float64)
        full = part.size // hop
        k = start // hop
        if full:
            power[k:k + full] = np.mean(np.square(part[:full * hop]).reshape(full, hop), axis=1)
        if part.size > full * hop:  # trailing partial hop
            power[k + full] = np.mean(np.square(part[full * hop:]))
    if win_hops > 1 and n_hops > 1:
        power = _moving_mean(power, win_hops)
    return 10.0 * np.log10(power + 1e-10)


def _moving_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average with edge-replicating padding (same length)."""
    width = max(1, min(width, x.size))
    if width == 1:
        return x.copy()
    left = width // 2
    padded = np.pad(x, (left, width - 1 - left), mode="edge")
    c = np.cumsum(np.concatenate(([0.0], padded)))
    return (c[width:] - c[:-width]) / width


def _hysteresis(values: np.ndarray, on: float, off: float) -> np.ndarray:
    """True inside every run of values > `off` that reaches `on` somewhere."""
    above = values > off
    starts, ends = _runs(above)
    keep = np.zeros(values.size, bool)
    if starts.size:
        masked = np.where(above, values, -np.inf)  # reduceat spans run + following gap
        peaks = np.maximum.reduceat(masked, starts)
        for s, e, p in zip(starts, ends, peaks):
            if p >= on:
                keep[s:e] = True
    return keep


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the True runs of a boolean array."""
    m = np.concatenate(([False], np.asarray(mask, bool), [False])).astype(np.int8)
    d = np.diff(m)
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _level(db: np.ndarray, smooth_hops: int = 5) -> np.ndarray:
    """Energy contour smoothed in power over `smooth_hops` frames, in dB."""
    return 10.0 * np.log10(_moving_mean(10.0 ** (np.asarray(db, float) / 10.0), smooth_hops) + 1e-10)


def noise_floor(level: np.ndarray, percentile: float = 10.0, floor_min_db: float = -75.0) -> float:
    """The track's noise floor: the 10th percentile of the frame levels — or, on a track
    that is nearly all speech (where that percentile falls inside speech), no more than
    10 dB above the 1st — and never below `floor_min_db` (digital silence would
    otherwise put it at −100 dB)."""
    if level.size == 0:
        return floor_min_db
    p_low, p = np.percentile(level, [1.0, percentile])
    return max(min(float(p), float(p_low) + 10.0), floor_min_db)


def energy_activity(db: np.ndarray, on_db: float = 12.0, off_db: float = 6.0,
                    gate_db: float = -50.0, smooth_hops: int = 5) -> np.ndarray:
    """Voiced flag per energy frame: a run starts where the level is `on_db` above the
    track's noise floor and at least `gate_db` dBFS, and lasts while it stays `off_db`
    above the floor (so a word's fading tail stays with the word)."""
    if db.size == 0:
        return np.zeros(0, bool)
    level = _level(db, smooth_hops)
    floor = noise_floor(level)
    return _hysteresis(level, max(floor + on_db, gate_db), floor + off_db)


def refine_edges(runs, db: np.ndarray, hop_s: float = ENERGY_HOP_S, off_db: float = 6.0,
                 max_trim_start: float = 0.3, max_trim_end: float = 0.35) -> list[tuple]:
    """Pull the edges of speech runs in to where the sound is, by the energy contour.

    Silero's recurrent state keeps the probability high for ~0.2–0.3 s after speech
    stops, so a 0.4 s breath pause reads as 0.15 s and merges. Frames at a run's edges
    that sit within `off_db` of the noise floor are trimmed (at most `max_trim_start` /
    `max_trim_end`); runs with nothing above it are dropped.
    """
    level = _level(db)
    if level.size == 0:
        return list(runs)
    quiet = level <= noise_floor(level) + off_db
    out = []
    n = level.size
    for s, e in runs:
        a = min(int(round(s / hop_s)), n)
        b = min(int(round(e / hop_s)), n)
        lo, hi = a, b
        lo_max = min(b, a + int(round(max_trim_start / hop_s)))
        while lo < lo_max and quiet[lo]:
            lo += 1
        hi_min = max(lo, b - int(round(max_trim_end / hop_s)))
        while hi > hi_min and quiet[hi - 1]:
            hi -= 1
        if lo >= hi or np.all(quiet[lo:hi]):
            continue
        out.append((s if lo == a else lo * hop_s, e if hi == b else hi * hop_s))
    return out


# --------------------------------------------------------------------------- silero


def silero_data_dir() -> Path:
    """The model folder inside the installed silero-vad package.

    find_spec does not execute silero_vad/__init__.py, which imports torch and calls
    torch.set_num_threads(1) for the whole process; we only need the package's files.
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(None, "the silero-vad package is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


class _Silero:
    """Silero VAD run from the files inside the installed `silero-vad` package."""

    def __init__(self, data: Path | None = None):
        self.lock = threading.Lock()  # the JIT model and the ORT sessions are shared
        self.kind, self.path = None, None
        data = silero_data_dir() if data is None else Path(data)
        errors = []
        for name, loader in (("silero_vad_16k_sequence.onnx", self._load_sequence),
                             ("silero_vad.onnx", self._load_streaming),
                             ("silero_vad.jit", self._load_jit)):
            path = data / name
            self.kind = None
            if not path.is_file():
                errors.append(f"{name}: not in the package")
                continue
            try:
                loader(path)
                probs = self.probabilities(np.zeros(SILERO_SR // 4, np.float32))
                if probs.shape != (8,) or not np.all((probs >= 0) & (probs <= 1)):
                    raise ValueError(f"unexpected output {probs.shape}")
                self.path = path
                return
            except Exception as exc:  # a broken file or runtime: try the next one
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
        raise WeightsError(data, "no usable Silero VAD model (" + "; ".join(errors) + ")")

    @staticmethod
    def _session(path):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    def _load_sequence(self, path):
        self.session = self._session(path)
        names = [i.name for i in self.session.get_inputs()]
        if names != ["input", "h", "c"]:
            raise ValueError(f"inputs {names}")
        self.kind = "silero-onnx-sequence"

    def _load_streaming(self, path):
        self.session = self._session(path)
        names = {i.name for i in self.session.get_inputs()}
        if names != {"input", "state", "sr"}:
            raise ValueError(f"inputs {sorted(names)}")
        self.kind = "silero-onnx"

    def _load_jit(self, path):
        import torch

        with warnings.catch_warnings():  # torch ≥ 2.10 flags torch.jit.load as deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            self.jit = torch.jit.load(str(path), map_location="cpu").eval()
        self.kind = "silero-jit"

    def probabilities(self, audio: np.ndarray, progress=None, cancel=None) -> np.ndarray:
        """Speech probability per 32 ms frame of 16 kHz audio (the last frame zero-padded)."""
        n = -(-audio.size // SILERO_FRAME)
        out = np.empty(n, np.float32)
        with self.lock:
            if self.kind == "silero-jit":
                import torch

                self.jit.reset_states()
            h = np.zeros((1, 1, 128), np.float32)
            c = np.zeros((1, 1, 128), np.float32)
            state = np.zeros((2, 1, 128), np.float32)
            sr = np.array(SILERO_SR, np.int64)
            prev = np.zeros(SILERO_CONTEXT, np.float32)
            for first in range(0, n, SILERO_BLOCK):
                if cancel is not None and cancel():
                    raise Cancelled("speech detection cancelled")
                count = min(SILERO_BLOCK, n - first)
                frames = np.zeros((count, SILERO_FRAME), np.float32)
                samples = audio[first * SILERO_FRAME:(first + count) * SILERO_FRAME]
                frames.reshape(-1)[:samples.size] = samples
                block = np.empty((count, SILERO_CONTEXT + SILERO_FRAME), np.float32)
                block[0, :SILERO_CONTEXT] = prev
                block[1:, :SILERO_CONTEXT] = frames[:-1, -SILERO_CONTEXT:]
                block[:, SILERO_CONTEXT:] = frames
                prev = frames[-1, -SILERO_CONTEXT:].copy()
                if self.kind == "silero-onnx-sequence":
                    p, h, c = self.session.run(["speech_probs", "hn", "cn"],
                                               {"input": block, "h": h, "c": c})
                    out[first:first + count] = np.reshape(p, -1)
                elif self.kind == "silero-onnx":
                    for i in range(count):
                        p, state = self.session.run(None, {"input": block[i:i + 1], "state": state,
                                                           "sr": sr})
                        out[first + i] = p.reshape(-1)[0]
                else:
                    # 32 ms steps are tiny ops: extra intra-op threads only contend (30× slower
                    # on a busy 2-core machine). torch's thread count is process-wide, so it is
                    # lowered for this loop only; this path runs only without onnxruntime.
                    threads = torch.get_num_threads()
                    torch.set_num_threads(1)
                    try:
                        with torch.inference_mode():
                            for i in range(count):  # the JIT model keeps its own context
                                out[first + i] = float(self.jit(torch.from_numpy(frames[i]), SILERO_SR))
                    finally:
                        torch.set_num_threads(threads)
                if progress is not None:
                    progress(first + count, n)
        return out


_silero_cache: dict = {}
_silero_lock = threading.Lock()
_fallback_logged = False


def _get_silero() -> _Silero:
    """The loaded model, loaded once per process; raises WeightsError when it cannot run."""
    with _silero_lock:
        if "model" not in _silero_cache:
            if "error" in _silero_cache:
                raise _silero_cache["error"]
            try:
                _silero_cache["model"] = _Silero(silero_data_dir())
            except Exception as exc:
                err = exc if isinstance(exc, WeightsError) else WeightsError(None, f"Silero VAD: {exc}")
                _silero_cache["error"] = err
                raise err from exc
        return _silero_cache["model"]


def vad_backend() -> str:
    """What `method="auto"` runs: "silero-onnx-sequence", "silero-onnx", "silero-jit" or
    "energy (<why Silero is unavailable>)"."""
    try:
        return _get_silero().kind
    except WeightsError as exc:
        return f"energy ({exc})"


# --------------------------------------------------------------------------- segments


def _clean(audio) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim != 1:
        raise ValueError(f"audio must be mono (1-D), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    return a


def detect_segments(audio: np.ndarray, sr: int = HP.sample_rate, *, method: str = "auto",
                    min_gap: float = 0.3, min_speech: float = 0.25, min_silence: float = 0.3,
                    max_len: float = 8.0, threshold: float = 0.5, neg_threshold: float | None = None,
                    on_db: float = 12.0, off_db: float = 6.0, gate_db: float = -50.0,
                    refine: bool = True,
                    progress: Callable[[int, int], None] | None = None,
                    cancel: Callable[[], bool] | None = None) -> list[Segment]:
    """Speech/silence segments covering the whole track (see the module notes).

    method: "auto" (Silero, else energy), "silero" (raises WeightsError when it cannot
    run) or "energy". Silero needs 16 kHz (what core.audio.load_audio gives); "auto" with
    another rate uses energy. threshold / neg_threshold: Silero's enter / stay
    probabilities (neg defaults to threshold − 0.15). on_db / off_db / gate_db: the energy
    detector's hysteresis above the noise floor and its absolute gate in dBFS.
    refine: trim Silero runs' edges to the energy contour (see `refine_edges`).
    """
    global _fallback_logged
    if method not in ("auto", "silero", "energy"):
        raise ValueError(f"method must be 'auto', 'silero' or 'energy', not {method!r}")
    a = _clean(audio)
    duration = a.size / float(sr)
    if a.size == 0:
        return []
    if method == "silero" and sr != SILERO_SR:
        raise ValueError(f"Silero VAD needs {SILERO_SR} Hz audio, got {sr} Hz")
    if method == "auto":
        method = "energy"
        if sr == SILERO_SR:
            try:
                _get_silero()
                method = "silero"
            except WeightsError as exc:
                if not _fallback_logged:
                    log.warning("Silero VAD unavailable, using the energy detector: %s", exc)
                    _fallback_logged = True

    db = frame_energy_db(a, sr)
    ehop = max(1, int(round(ENERGY_HOP_S * sr))) / sr  # exact at any rate (22.05 kHz: 220 samples)
    if method == "silero":
        probs = _get_silero().probabilities(a, progress, cancel)
        neg = max(threshold - 0.15, 0.01) if neg_threshold is None else neg_threshold
        voiced = _hysteresis(probs, threshold, neg)
        hop_s = SILERO_FRAME / SILERO_SR
        majority = bool(np.mean(probs >= threshold) >= 0.5)
    else:
        voiced = energy_activity(db, on_db, off_db, gate_db)
        hop_s = ehop
        majority = bool(np.median(db) > gate_db)  # a short track has no noise floor of its own
        if progress is not None:
            progress(1, 1)

    if duration < max(SHORT_TRACK_S, min_speech):
        return [Segment(0.0, duration, SPEECH if majority else SILENCE)]

    starts, ends = _runs(voiced)
    runs = [(min(s * hop_s, duration), min(e * hop_s, duration)) for s, e in zip(starts, ends)]
    if method == "silero" and refine:
        runs = refine_edges(runs, db, ehop, off_db)
    return build_segments(runs, duration, db, energy_hop_s=ehop, min_gap=min_gap, min_speech=min_speech,
                          min_silence=min_silence, max_len=max_len)


def detect_segments_file(path, **kwargs) -> list[Segment]:
    """`detect_segments` on any media file's first audio stream (16 kHz mono via ffmpeg)."""
    from core.audio import load_audio

    return detect_segments(load_audio(path), HP.sample_rate, **kwargs)


def build_segments(runs, duration: float, energy_db: np.ndarray | None = None, *,
                   energy_hop_s: float = ENERGY_HOP_S, min_gap: float = 0.3, min_speech: float = 0.25,
                   min_silence: float = 0.3, max_len: float = 8.0) -> list[Segment]:
    """Apply the editing rules to raw speech runs [(start_s, end_s), …] (sorted, disjoint)
    and return segments covering [0, duration]. `energy_db` (one value per `energy_hop_s`)
    chooses where long runs split; without it they split in the middle."""
    if duration <= 0:
        return []
    # 1. merge speech separated by short pauses
    merged: list[list[float]] = []
    for s, e in runs:
        s, e = max(0.0, float(s)), min(duration, float(e))
        if e <= s:
            continue
        if merged and s - merged[-1][1] < min_gap:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    # 2. too-short speech becomes silence
    speech = [r for r in merged if r[1] - r[0] >= min_speech]
    # 3. alternate with silence and absorb short silences
    bounds: list[list] = []  # [start, end, kind]
    t = 0.0
    for s, e in speech:
        if s > t:
            bounds.append([t, s, SILENCE])
        bounds.append([s, e, SPEECH])
        t = e
    if t < duration:
        bounds.append([t, duration, SILENCE])
    if any(k == SPEECH for _, _, k in bounds):
        out: list[list] = []
        for i, (s, e, k) in enumerate(bounds):
            if k == SILENCE and e - s < min_silence:
                if out:  # interior or trailing: extend the speech before it
                    out[-1][1] = e
                else:  # leading: the next (speech) segment starts at 0
                    bounds[i + 1][0] = s
                continue
            if out and out[-1][2] == k:  # speech after an absorbed silence joins its neighbour
                out[-1][1] = e
            else:
                out.append([s, e, k])
        bounds = out
    # 4. split long speech at the quietest point of its middle half
    contour = None
    if energy_db is not None and len(energy_db):
        contour = 10.0 * np.log10(_moving_mean(10.0 ** (np.asarray(energy_db, float) / 10.0),
                                               max(1, int(round(0.1 / energy_hop_s)))) + 1e-10)
    result: list[Segment] = []
    for s, e, k in bounds:
        pieces = _split(s, e, max_len, contour, energy_hop_s) if k == SPEECH else [(s, e)]
        result.extend(Segment(ps, pe, k) for ps, pe in pieces)
    # exact cover: shared boundaries, 0 and duration at the ends
    fixed = []
    for i, seg in enumerate(result):
        start = 0.0 if i == 0 else fixed[-1].end_s
        end = duration if i == len(result) - 1 else seg.end_s
        fixed.append(Segment(start, end, seg.kind))
    return fixed


def _split(start: float, end: float, max_len: float, contour, hop_s: float) -> list[tuple]:
    if end - start <= max_len or max_len <= 0:
        return [(start, end)]
    quarter = (end - start) / 4
    cut = (start + end) / 2
    if contour is not None:
        a = int(math.ceil((start + quarter) / hop_s))
        b = min(int(math.floor((end - quarter) / hop_s)), contour.size)
        if b > a:
            window = contour[a:b]
            low = window <= window.min() + 1.0  # within 1 dB of the minimum
            i = int(np.argmin(window))
            lo, hi = i, i + 1  # the quiet stretch around the minimum: cut in its middle
            while lo > 0 and low[lo - 1]:
                lo -= 1
            while hi < window.size and low[hi]:
                hi += 1
            cut = (a + (lo + hi) / 2) * hop_s
            cut = min(max(cut, start + quarter), end - quarter)
    return _split(start, cut, max_len, contour, hop_s) + _split(cut, end, max_len, contour, hop_s)


# --------------------------------------------------------------------------- frames


def _frame_edge(t: float, fps: float) -> int:
    # nearest frame edge; the tiny bias keeps exact products (e.g. 1.001 s · 29.97) stable
    return int(math.floor(t * fps + 0.5 + 1e-9))


def to_frames(segments, fps: float, n_frames: int) -> list[FrameRange]:
    """Segments as video frame ranges [start, end) covering [0, n_frames) exactly.

    Each boundary goes to the nearest frame edge; segments shorter than a frame after
    rounding disappear (their neighbours meet). Frames after the end of the track are
    silence (a shorter dub), unless the shortfall is under one frame, where the last
    segment is extended; segments after `n_frames` are cut off.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    n_frames = int(n_frames)
    if n_frames <= 0:
        return []
    out: list[FrameRange] = []
    prev = 0
    segs = list(segments)
    for i, seg in enumerate(segs):
        end = min(_frame_edge(seg.end_s, fps), n_frames)
        if i == len(segs) - 1 and seg.end_s * fps >= n_frames - 1:
            end = n_frames  # the track ends within a frame of the video's end
        if end <= prev:
            continue
        out.append(FrameRange(prev, end, seg.kind))
        prev = end
        if prev >= n_frames:
            break
    if prev < n_frames:  # the dub ends early: the mouth rests
        if out and out[-1].kind == SILENCE:
            out[-1] = FrameRange(out[-1].start, n_frames, SILENCE)
        else:
            out.append(FrameRange(prev, n_frames, SILENCE))
    return out


def speech_mask(segments, fps: float, n_frames: int) -> np.ndarray:
    """Boolean per video frame: True where the frame belongs to a speech segment."""
    mask = np.zeros(max(int(n_frames), 0), bool)
    for r in to_frames(segments, fps, n_frames):
        if r.kind == SPEECH:
            mask[r.start:r.end] = True
    return mask
