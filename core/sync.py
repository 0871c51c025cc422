"""Lip-sync confidence: the paper's LSE-D / LSE-C protocol, with our expert or the official SyncNet.

Each 5-frame window of faces (at 25 fps timing, like the reference SyncNet evaluation) is
compared with the audio windows shifted by −15..+15 frames:

    dist[i, o] = ‖face(i) − audio(i + o)‖
    clip:  mean over i → LSE-D = min, LSE-C = median − min, AV offset = argmin
    frame: conf[i] = median − dist[i, best offset], median-filtered (9)

Low LSE-D and high LSE-C mean good sync. Faces are embedded in a streaming pass, so
only embeddings are kept, never the frames.

Two scorers, one interface (each crops its own input from (frame, face box) and computes its
own audio features from the 16 kHz waveform):

* `ExpertScorer`, our SyncNet expert (or an official `lipsync_expert.pth`): 96×96 crop of the
  padded face box, lower half, BGR as the frames come (as Wav2Lip trains); mel windows; embeddings L2-normalised;
  shifts past the ends of the audio are left out (NaN); per-frame median over offsets.
* `SyncNetV2Scorer`, the official SyncNet v2 (`syncnet_v2.model`), with the reference protocol
  so numbers are comparable with the paper: 224×224 BGR crops around the median-smoothed face
  box, MFCC windows, embeddings used as they are, audio embeddings zero-padded by 15 at both
  ends (edge windows are compared with zero vectors), per-frame confidence from the clip's
  median, zero-padded median filter, and the reference's window count (the last full window
  is left out, as the reference does).

Sign of the offset: `SyncScores.offset_frames` is positive when the audio lags the video, for
every scorer. The reference SyncNet prints "AV offset" = 15 − argmin index = −offset_frames.
"""
import contextlib
import copy
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from core.atomic import sha256_file
from core.audio import load_audio, mel_window, melspectrogram
from core.errors import Cancelled, TooShort, WeightsError
from core.faces import track_video
from core.faces.geometry import padded_box
from core.hparams import HP
from core.models.syncnet import SyncNet
from core.models.syncnet_v2 import SyncNetV2
from core.render import prepare_for_inference, source_frames
from core.sync_scale import EXPERT_WEAK_BELOW
from core.video import VideoSource
from core.weights import kind_of, load_model, resolve

SCORE_FPS = 25.0  # the expert and the reference evaluation work at 25 fps
SAMPLE_RATE = 16000
MAX_SHIFT = 15  # frames each way
MEDIAN_KERNEL = 9
V2_CROP_SCALE = 0.4  # the reference pipeline's crop_scale
V2_PAD_VALUE = 110  # grey the reference pads frames with, so a crop never leaves the frame
V2_SMOOTHING = (13, "median")  # the reference median-filters the face box over 13 frames


@dataclass
class SyncScores:
    lse_d: float
    lse_c: float
    offset_frames: int  # positive: the audio lags the video
    per_offset: np.ndarray  # (2·MAX_SHIFT + 1,) mean distance per offset, −15..+15
    frame_conf: np.ndarray  # (N,) per 25-fps frame; NaN where no face window covers the frame
    scorer: str  # which network produced the numbers
    windows: int  # 5-frame windows that had a face in every frame
    frame_fps: float = SCORE_FPS
    extra: dict = field(default_factory=dict)

    @property
    def offset_ms(self) -> float:
        return 1000.0 * self.offset_frames / self.frame_fps

    def segment_confidence(self, start_s: float, end_s: float) -> float:
        """Mean per-frame confidence over [start_s, end_s); NaN when no frame there had a face."""
        a, b = int(round(start_s * self.frame_fps)), int(round(end_s * self.frame_fps))
        values = self.frame_conf[max(a, 0):max(b, a + 1)]
        values = values[np.isfinite(values)]
        return float(values.mean()) if values.size else float("nan")

    def to_dict(self) -> dict:
        return {"lse_d": self.lse_d, "lse_c": self.lse_c, "offset_frames": self.offset_frames,
                "offset_ms": self.offset_ms, "scorer": self.scorer, "windows": self.windows}


class ExpertScorer:
    """Embeds faces and audio with our SyncNet expert (or any model with its interface), on a
    copy prepared like the generator (BatchNorm folded, channels-last, bf16/fp16 autocast
    where the device has it: normalised embeddings move by ~1e-3, scoring runs 3x faster)."""

    reference_protocol = False  # lse_scores' default protocol
    track_smoothing = None  # the face track as given (the renderer's smoothing)
    size = 96
    weak_below = EXPERT_WEAK_BELOW  # segment LSE-C under which a verdict says "weak", on this scorer's scale

    def __init__(self, expert: torch.nn.Module, name: str, device="cpu", batch_size: int = 64,
                 sha256: str | None = None):
        self.name, self.device, self.batch_size, self.sha256 = name, torch.device(device), batch_size, sha256
        self.expert, self.autocast = prepare_for_inference(copy.deepcopy(expert), self.device)
        self.frames = expert.dims.frames
        self.blank = np.zeros((self.size // 2, self.size, 3), np.uint8)

    def audio_features(self, wave: np.ndarray) -> np.ndarray:
        """16 kHz mono float waveform → the Wav2Lip mel (80, M)."""
        return melspectrogram(wave)

    def crop(self, frame: np.ndarray, box) -> np.ndarray:
        """The lower half (48, 96, 3) of the 96×96 crop of the padded face box (the generator's crop)."""
        x1, y1, x2, y2 = padded_box(box, (frame.shape[1], frame.shape[0]), HP.pads)
        crop = cv2.resize(frame[y1:y2, x1:x2], (self.size, self.size), interpolation=cv2.INTER_AREA)
        return crop[self.size // 2:]

    @torch.inference_mode()
    def face_embeddings(self, crops: np.ndarray) -> np.ndarray:
        """(N, 48, 96, 3) uint8 lower halves → (N − T + 1, D) embeddings of each T-frame window."""
        halves = np.ascontiguousarray(np.asarray(crops).transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
        n_windows = len(halves) - self.frames + 1
        out = []
        for start in range(0, max(n_windows, 0), self.batch_size):
            idx = np.arange(start, min(start + self.batch_size, n_windows))[:, None] + np.arange(self.frames)
            windows = torch.from_numpy(halves[idx].reshape(len(idx), -1, *halves.shape[2:])).to(self.device)
            with self.autocast:
                out.append(self.expert.face_encoder(windows.contiguous(memory_format=torch.channels_last))
                           .flatten(1).float())
        return _stacked(out)

    @torch.inference_mode()
    def audio_embeddings(self, mel: np.ndarray, n_frames: int) -> np.ndarray:
        """Audio embedding of the window at every 25-fps frame 0..n_frames−1 → (n_frames, D)."""
        if mel.ndim != 2 or mel.shape[0] != HP.num_mels:
            raise ValueError(f"the expert takes a mel ({HP.num_mels}, M), got an array of shape {mel.shape}: "
                             "compute it with scorer.audio_features(waveform)")
        out = []
        for start in range(0, n_frames, self.batch_size):
            times = np.arange(start, min(start + self.batch_size, n_frames)) / SCORE_FPS
            windows = np.stack([mel_window(mel, t) for t in times])[:, None]
            with self.autocast:
                out.append(self.expert.audio_encoder(torch.from_numpy(windows).to(self.device)).flatten(1).float())
        return _stacked(out)


def syncnet_v2_crop_box(box, crop_scale: float = V2_CROP_SCALE) -> tuple:
    """The reference pipeline's crop of a face box (x1, y1, x2, y2) → int (x1, y1, x2, y2), x2/y2
    exclusive, in frame pixels; it may reach outside the frame (that part is padding).

    bs = max(w, h) / 2 around the box centre (cx, cy); rows cy − bs .. cy + bs·(1 + 2·cs),
    columns cx − bs·(1 + cs) .. cx + bs·(1 + cs): a square of 2·bs·(1 + cs), the chin and
    some neck included. Rounded as the reference does: it pads the frame by
    p = int(bs·(1 + 2·cs)) on every side and truncates the padded coordinates.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    bs = max(x2 - x1, y2 - y1) / 2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    p = int(bs * (1 + 2 * crop_scale))
    rows = int(cy + p - bs), int(cy + p + bs * (1 + 2 * crop_scale))
    cols = int(cx + p - bs * (1 + crop_scale)), int(cx + p + bs * (1 + crop_scale))
    return cols[0] - p, rows[0] - p, cols[1] - p, rows[1] - p


def syncnet_v2_crop(frame: np.ndarray, box, size: int = 224, crop_scale: float = V2_CROP_SCALE) -> np.ndarray:
    """Cut `syncnet_v2_crop_box(box)` out of `frame` (grey 110 beyond its edges, as if the frame
    were padded like the reference pads it) and resize it to size × size (bilinear, BGR kept)."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = syncnet_v2_crop_box(box, crop_scale)
    bs = max(float(box[2]) - float(box[0]), float(box[3]) - float(box[1])) / 2
    p = int(bs * (1 + 2 * crop_scale))  # the reference's padded frame ends here: slicing stops there too
    x1, y1 = max(x1, -p), max(y1, -p)
    x2, y2 = min(x2, w + p), min(y2, h + p)
    if x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h:
        region = frame[y1:y2, x1:x2]
    else:
        region = np.full((max(y2 - y1, 1), max(x2 - x1, 1), frame.shape[2]), V2_PAD_VALUE, frame.dtype)
        fy1, fy2, fx1, fx2 = max(y1, 0), min(y2, h), max(x1, 0), min(x2, w)
        if fy2 > fy1 and fx2 > fx1:
            region[fy1 - y1:fy2 - y1, fx1 - x1:fx2 - x1] = frame[fy1:fy2, fx1:fx2]
    return cv2.resize(region, (size, size))


class SyncNetV2Scorer:
    """Embeds faces and audio with the official SyncNet v2, as the reference evaluation does."""

    reference_protocol = True  # unnormalised embeddings, zero-padded shifts (lse_scores)
    track_smoothing = V2_SMOOTHING
    weak_below = 1.0  # the official scale (LSE-C of real LRS2 video ~7); not measured here

    def __init__(self, model: SyncNetV2, name: str, device="cpu", batch_size: int = 16, sha256: str | None = None):
        self.model, self.name, self.sha256 = model.to(device).eval(), name, sha256
        self.device, self.batch_size = torch.device(device), batch_size
        self.dims = model.dims
        self.frames = model.dims.frames
        self.blank = np.zeros((self.dims.image_size, self.dims.image_size, 3), np.uint8)

    def audio_features(self, wave: np.ndarray) -> np.ndarray:
        """16 kHz mono float waveform → MFCC (13, M) at 100 steps/s: python_speech_features' defaults
        on the 16-bit samples the reference reads from its WAV (the scale reaches c0 and the energy)."""
        from python_speech_features import mfcc

        samples = np.clip(np.round(np.asarray(wave, np.float64) * 32768.0), -32768, 32767).astype(np.int16)
        return np.ascontiguousarray(mfcc(samples, SAMPLE_RATE).T, dtype=np.float32)

    def crop(self, frame: np.ndarray, box) -> np.ndarray:
        return syncnet_v2_crop(frame, box, self.dims.image_size)

    @torch.inference_mode()
    def face_embeddings(self, crops: np.ndarray) -> np.ndarray:
        """(N, 224, 224, 3) uint8 BGR crops → (N − 4, 1024) embeddings of each 5-frame window."""
        video = torch.from_numpy(np.ascontiguousarray(crops)).permute(3, 0, 1, 2)  # (3, N, H, W) uint8
        n_windows = len(crops) - self.frames + 1
        out = []
        for start in range(0, max(n_windows, 0), self.batch_size):
            stop = min(start + self.batch_size, n_windows)
            windows = torch.stack([video[:, s:s + self.frames] for s in range(start, stop)])
            out.append(self.model.lip_embedding(windows.to(self.device, torch.float32)))
        return _stacked(out)

    @torch.inference_mode()
    def audio_embeddings(self, mfcc: np.ndarray, n_frames: int) -> np.ndarray:
        """Embedding of MFCC columns [4v, 4v + 20) for every 25-fps frame v < n_frames → (n_frames, 1024);
        columns past the end of the audio are zeros."""
        step, width = self.dims.mfcc_per_frame, self.dims.mfcc_window
        if mfcc.ndim != 2 or mfcc.shape[0] != self.dims.mfcc:
            raise ValueError(f"SyncNet v2 takes MFCC features ({self.dims.mfcc}, M), got an array of shape "
                             f"{mfcc.shape}: compute them with scorer.audio_features(waveform)")
        need = step * (n_frames - 1) + width
        if mfcc.shape[1] < need:
            mfcc = np.pad(mfcc, ((0, 0), (0, need - mfcc.shape[1])))
        out = []
        for start in range(0, n_frames, 4 * self.batch_size):
            v = np.arange(start, min(start + 4 * self.batch_size, n_frames))
            windows = mfcc[:, step * v[:, None] + np.arange(width)].transpose(1, 0, 2)[:, None]  # (B, 1, 13, 20)
            out.append(self.model.audio_embedding(torch.from_numpy(np.ascontiguousarray(windows)).to(self.device)))
        return _stacked(out)


def _stacked(chunks) -> np.ndarray:
    if not chunks:
        return np.zeros((0, 1), np.float32)
    return torch.cat(chunks).float().cpu().numpy()


def _l2_normalised(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def lse_scores(face_emb: np.ndarray, audio_emb: np.ndarray, valid: np.ndarray, scorer: str,
               n_frames: int, reference: bool = False) -> SyncScores:
    """The protocol on precomputed embeddings.

    face_emb (W, D): window i covers frames i..i+T−1; audio_emb (≥ W, D): window at frame j;
    valid (W,) bool: the window had a face in every frame.

    reference=False (our expert): embeddings L2-normalised here; a shift that falls outside
    audio_emb is left out (NaN), so the ends carry no padding bias; per-frame confidence =
    the window's own median over offsets − its distance at the best offset; NaN-skipping
    median filter.
    reference=True (the official SyncNet evaluation): embeddings used as they are; only the W
    audio windows that pair with a face window are used, zero vectors beyond them (the
    reference pads its audio features by 15 at both ends); distance as torch's
    pairwise_distance (‖f − a + 1e-6‖); per-frame confidence = the clip's median of the
    mean distances − the window's distance at the best offset; median filter zero-padded at
    the ends (scipy's medfilt).
    """
    shifts = np.arange(-MAX_SHIFT, MAX_SHIFT + 1)
    n_windows = len(face_emb)
    valid = np.asarray(valid, bool)
    dist = np.full((n_windows, len(shifts)), np.nan)
    if reference:
        face = np.asarray(face_emb, np.float64)
        audio = np.zeros((n_windows + 2 * MAX_SHIFT, face.shape[1] if face.ndim == 2 else 1))
        used = min(n_windows, len(audio_emb))
        audio[MAX_SHIFT:MAX_SHIFT + used] = audio_emb[:used]
        for o in range(len(shifts)):  # shift o − 15: face window i against padded audio row i + o
            dist[:, o] = np.linalg.norm(face - audio[o:o + n_windows] + 1e-6, axis=1)
    else:
        face, audio = _l2_normalised(np.asarray(face_emb, np.float64)), _l2_normalised(np.asarray(audio_emb, np.float64))
        for o, shift in enumerate(shifts):
            lo, hi = max(0, -shift), min(n_windows, len(audio) - shift)
            if hi > lo:
                dist[lo:hi, o] = np.linalg.norm(face[lo:hi] - audio[lo + shift:hi + shift], axis=1)
    # an offset that reaches past the audio for every usable window has no mean: it takes no part
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of an all-NaN column
        per_offset = np.nanmean(dist[valid], axis=0) if valid.any() else np.full(len(shifts), np.nan)
    if not np.isfinite(per_offset).any():  # no face, or no audio under any face
        nan = float("nan")
        return SyncScores(nan, nan, 0, np.full(len(shifts), np.nan), np.full(n_frames, np.nan), scorer, 0)
    best = int(np.nanargmin(per_offset))
    if reference:
        conf = np.median(per_offset) - dist[:, best]
        conf[~valid] = np.nan
        conf = nan_median_filter(conf, MEDIAN_KERNEL, pad_value=0.0)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # windows with no audio at any offset: NaN
            conf = np.nanmedian(dist, axis=1) - dist[:, best]
        conf = nan_median_filter(conf, MEDIAN_KERNEL)
    conf[~valid] = np.nan
    frame_conf = np.full(n_frames, np.nan)
    half = (n_frames - n_windows) // 2  # window i covers i..i+T−1: its value belongs to its centre frame
    frame_conf[half:half + n_windows] = conf
    return SyncScores(lse_d=float(per_offset[best]), lse_c=float(np.nanmedian(per_offset) - per_offset[best]),
                      offset_frames=int(shifts[best]), per_offset=per_offset, frame_conf=frame_conf,
                      scorer=scorer, windows=int(valid.sum()))


def nan_median_filter(x: np.ndarray, kernel: int, pad_value: float = np.nan) -> np.ndarray:
    """Centred running median that skips NaNs (scipy's medfilt would spread them). The ends are
    padded with `pad_value`: NaN (skipped: the window shrinks) or 0 (as scipy's medfilt does)."""
    half = kernel // 2
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, half, constant_values=pad_value), kernel)
    out = np.full(len(x), np.nan)
    has_value = np.isfinite(windows).any(axis=1)
    out[has_value] = np.nanmedian(windows[has_value], axis=1)
    return out


Scorer = ExpertScorer | SyncNetV2Scorer


def score_crops(scorer: Scorer, crops: np.ndarray, has_face: np.ndarray, features: np.ndarray) -> SyncScores:
    """Score 25-fps face images (N, H, W, 3) against the scorer's audio features of their audio
    (our expert: the mel; SyncNet v2: the MFCC; `scorer.audio_features(waveform)` gives either).
    Each image is taken as the face box itself: for our expert, prepared 96×96 crops."""
    full = (0, 0, crops.shape[2], crops.shape[1])
    frames = ((crop, full if face else None) for crop, face in zip(crops, has_face))
    return score_frames(scorer, frames, len(crops), features)


def min_frames(scorer: Scorer) -> int:
    """Frames a clip needs to be scored: one window (the reference protocol leaves the last one out)."""
    return scorer.frames + int(scorer.reference_protocol)


def score_frames(scorer: Scorer, frames, n_frames: int, features: np.ndarray, chunk: int = 256) -> SyncScores:
    """Streaming scoring: `frames` yields (BGR frame, face box (x1, y1, x2, y2) or None) at 25 fps;
    the scorer crops its own input from each.

    Faces are embedded a chunk at a time (with T − 1 frames of overlap), so a long clip costs
    only its embeddings in memory.
    """
    T = scorer.frames
    if n_frames < min_frames(scorer):
        raise ValueError(f"need at least {min_frames(scorer)} frames to score, got {n_frames}")
    buffer, has_face, face_chunks = [], [], []
    for frame, box in frames:
        face = box is not None and bool(np.all(np.isfinite(np.asarray(box, np.float64))))
        buffer.append(scorer.crop(frame, box) if face else scorer.blank)
        has_face.append(face)
        if len(buffer) == chunk + T - 1:
            face_chunks.append(scorer.face_embeddings(np.stack(buffer)))
            buffer = buffer[chunk:]
    if len(buffer) >= T:
        face_chunks.append(scorer.face_embeddings(np.stack(buffer)))
    n = len(has_face)
    face_emb = np.concatenate(face_chunks) if face_chunks else np.zeros((0, 1), np.float32)
    has_face = np.asarray(has_face, bool)
    window_has_face = np.lib.stride_tricks.sliding_window_view(has_face, T).all(axis=1)
    if scorer.reference_protocol:  # the reference embeds min_length − 5 windows: the last full one is left out
        face_emb, window_has_face = face_emb[:n - T], window_has_face[:n - T]
    audio_emb = scorer.audio_embeddings(features, len(face_emb) if scorer.reference_protocol else n)
    return lse_scores(face_emb, audio_emb, window_has_face, scorer.name, n, reference=scorer.reference_protocol)


def load_scorer(checkpoint="expert", device="cpu") -> Scorer:
    """A scorer for a sync network: our expert (bundled name or file) or an official
    lipsync_expert.pth → ExpertScorer; the official syncnet_v2.model → SyncNetV2Scorer."""
    path, recorded = resolve(checkpoint)
    model = load_model(path, device=device)  # checks the file against its recorded SHA-256
    sha256 = recorded or sha256_file(path)
    if isinstance(model, SyncNetV2):
        return SyncNetV2Scorer(model, f"syncnet_v2:{path.name}", device, sha256=sha256)
    if isinstance(model, SyncNet):
        return ExpertScorer(model, f"lipsmith-expert:{path.name}", device, sha256=sha256)
    raise WeightsError(path, f"is a {kind_of(model).name} checkpoint, but a sync expert is needed "
                             "(our expert, lipsync_expert.pth or syncnet_v2.model)")


def scale_of(scorer: Scorer) -> dict:
    """What a project records of the scorer its scores and threshold are on (core.project.SetScores)."""
    return {"name": scorer.name, "sha256": scorer.sha256, "weak_below": scorer.weak_below}


def _face_box(track, i: int):
    return track.box(i) if 0 <= i < len(track) else None


def score_video(video_path, audio_path=None, scorer: Scorer | None = None, track=None,
                frame_map=None, cache_dir=None, face_index=None, progress=None, cancel=None,
                detector=None) -> SyncScores:
    """LSE scores of a video (a path, or a VideoSource its caller keeps open) against its own audio
    or `audio_path`, at 25-fps timing.

    `track` (a FaceTrack) and `frame_map` (video frame → track frame) let a rendered output
    reuse its source's face track instead of detecting faces again. A scorer that smooths
    boxes its own way (SyncNet v2: 13-frame median) gets the track re-smoothed, not re-detected.
    Without a track, `detector` finds the faces (core.faces.track_video: None is RetinaFace).
    """
    scorer = scorer or load_scorer()
    kept_open = isinstance(video_path, VideoSource)
    with contextlib.nullcontext(video_path) if kept_open else VideoSource(video_path) as video:
        video_path = video.path
        wave = load_audio(audio_path or video_path)
        seconds = min(video.duration, len(wave) / SAMPLE_RATE)
        n = int(seconds * SCORE_FPS + 1e-6)
        if n < min_frames(scorer):  # before the work, and before the audio features refuse a tiny track
            raise TooShort(video_path, f"too short to score: {n} frames at {SCORE_FPS:g} fps with audio under them, "
                                       f"the expert needs at least {min_frames(scorer)}")
        features = scorer.audio_features(wave)
        if track is None:
            track = track_video(video, detector, cache_dir=cache_dir, face_index=face_index, cancel=cancel,
                                progress=progress and (lambda d, t: progress(d, t, "detect")))
        if scorer.track_smoothing:
            track = track.with_smoothing(*scorer.track_smoothing)
        src = video.frames_at_rate(SCORE_FPS, n)
        track_index = src if frame_map is None else np.asarray(frame_map)[src]

        def frames():
            for k, frame in enumerate(source_frames(video, src)):
                if cancel and cancel():
                    raise Cancelled("scoring cancelled")
                if progress and k % 25 == 0:
                    progress(k, n, "score")
                yield frame, _face_box(track, int(track_index[k]))

        return score_frames(scorer, frames(), n, features)
