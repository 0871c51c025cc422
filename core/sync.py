"""Lip-sync confidence: the paper's LSE-D / LSE-C protocol on a SyncNet expert.

Each 5-frame window of lower faces (at 25 fps timing, like the reference SyncNet
evaluation) is compared with the audio windows shifted by −15..+15 frames:

    dist[i, o] = ‖face(i) − audio(i + o)‖     (embeddings L2-normalised)
    clip:  mean over i → LSE-D = min, LSE-C = median − min, AV offset = argmin
    frame: conf[i] = median_o dist[i, o] − dist[i, best offset], median-filtered (9)

Low LSE-D and high LSE-C mean good sync. Faces are embedded in a streaming pass, so
only embeddings are kept, never the frames.
"""
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from core.audio import load_audio, mel_window, melspectrogram
from core.errors import Cancelled
from core.faces import track_video
from core.render import source_frames
from core.video import VideoSource
from core.weights import load_model, resolve

SCORE_FPS = 25.0  # the expert and the reference evaluation work at 25 fps
MAX_SHIFT = 15  # frames each way
MEDIAN_KERNEL = 9


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
    """Embeds faces and audio with our SyncNet expert (or any model with its interface)."""

    def __init__(self, expert: torch.nn.Module, name: str, device="cpu", batch_size: int = 64):
        self.expert, self.name = expert.to(device).eval(), name
        self.device, self.batch_size = torch.device(device), batch_size
        self.frames = expert.dims.frames

    @torch.inference_mode()
    def face_embeddings(self, halves: np.ndarray) -> np.ndarray:
        """(N, 3, 48, 96) lower halves → (N − T + 1, D) embeddings of each T-frame window."""
        n_windows = len(halves) - self.frames + 1
        out = []
        for start in range(0, max(n_windows, 0), self.batch_size):
            idx = np.arange(start, min(start + self.batch_size, n_windows))[:, None] + np.arange(self.frames)
            windows = torch.from_numpy(halves[idx].reshape(len(idx), -1, *halves.shape[2:])).to(self.device)
            out.append(self.expert.face_encoder(windows).flatten(1))
        return _normalised(out)

    @torch.inference_mode()
    def audio_embeddings(self, mel: np.ndarray, n_frames: int) -> np.ndarray:
        """Audio embedding of the window at every 25-fps frame 0..n_frames−1 → (n_frames, D)."""
        out = []
        for start in range(0, n_frames, self.batch_size):
            times = np.arange(start, min(start + self.batch_size, n_frames)) / SCORE_FPS
            windows = np.stack([mel_window(mel, t) for t in times])[:, None]
            out.append(self.expert.audio_encoder(torch.from_numpy(windows).to(self.device)).flatten(1))
        return _normalised(out)


def _normalised(chunks) -> np.ndarray:
    if not chunks:
        return np.zeros((0, 1), np.float32)
    emb = torch.nn.functional.normalize(torch.cat(chunks).float(), dim=1)
    return emb.cpu().numpy()


def lse_scores(face_emb: np.ndarray, audio_emb: np.ndarray, valid: np.ndarray, scorer: str,
               n_frames: int) -> SyncScores:
    """The protocol on precomputed embeddings.

    face_emb (W, D): window i covers frames i..i+T−1; audio_emb (≥ W, D): window at frame j;
    valid (W,) bool: the window had a face in every frame.
    """
    shifts = np.arange(-MAX_SHIFT, MAX_SHIFT + 1)
    n_windows = len(face_emb)
    # dist[i, o]: NaN where window i + shift falls outside the audio (no padding bias at the ends)
    dist = np.full((n_windows, len(shifts)), np.nan)
    for o, shift in enumerate(shifts):
        lo, hi = max(0, -shift), min(n_windows, len(audio_emb) - shift)
        if hi > lo:
            dist[lo:hi, o] = np.linalg.norm(face_emb[lo:hi] - audio_emb[lo + shift:hi + shift], axis=1)
    usable = dist[valid]
    if usable.size == 0:
        nan = float("nan")
        return SyncScores(nan, nan, 0, np.full(len(shifts), np.nan), np.full(n_frames, np.nan), scorer, 0)
    per_offset = np.nanmean(usable, axis=0)
    best = int(np.argmin(per_offset))
    conf = np.nanmedian(dist, axis=1) - dist[:, best]
    conf = nan_median_filter(conf, MEDIAN_KERNEL)
    conf[~valid] = np.nan
    frame_conf = np.full(n_frames, np.nan)
    half = (n_frames - n_windows) // 2  # window i covers i..i+T−1: its value belongs to frame i + T//2
    frame_conf[half:half + n_windows] = conf
    return SyncScores(lse_d=float(per_offset.min()), lse_c=float(np.median(per_offset) - per_offset.min()),
                      offset_frames=int(shifts[best]), per_offset=per_offset, frame_conf=frame_conf,
                      scorer=scorer, windows=int(valid.sum()))


def nan_median_filter(x: np.ndarray, kernel: int) -> np.ndarray:
    """Centred running median that skips NaNs (scipy's medfilt would spread them)."""
    half = kernel // 2
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, half, constant_values=np.nan), kernel)
    out = np.full(len(x), np.nan)
    has_value = np.isfinite(windows).any(axis=1)
    out[has_value] = np.nanmedian(windows[has_value], axis=1)
    return out


def score_crops(scorer: "ExpertScorer", crops: np.ndarray, has_face: np.ndarray, mel: np.ndarray) -> SyncScores:
    """Score 25-fps 96×96 face crops (N, 96, 96, 3) against the mel of their audio."""
    full = (0, 0, crops.shape[2], crops.shape[1])
    frames = ((crop, full if face else None) for crop, face in zip(crops, has_face))
    return score_frames(scorer, frames, len(crops), mel)


def score_frames(scorer: ExpertScorer, frames, n_frames: int, mel: np.ndarray, chunk: int = 256) -> SyncScores:
    """Streaming scoring: `frames` yields (BGR frame, int crop box or None) at 25 fps.

    Lower halves are embedded a chunk at a time (with T − 1 frames of overlap), so a long
    clip costs only its embeddings in memory.
    """
    T = scorer.frames
    if n_frames < T:
        raise ValueError(f"need at least {T} frames to score, got {n_frames}")
    size = 96
    blank = np.zeros((size // 2, size, 3), np.uint8)
    buffer, has_face, face_chunks = [], [], []
    for frame, box in frames:
        if box is None:
            buffer.append(blank)
            has_face.append(False)
        else:
            x1, y1, x2, y2 = box
            crop = cv2.resize(frame[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_AREA)
            buffer.append(crop[size // 2:])
            has_face.append(True)
        if len(buffer) == chunk + T - 1:
            face_chunks.append(scorer.face_embeddings(_halves_to_float(buffer)))
            buffer = buffer[chunk:]
    if len(buffer) >= T:
        face_chunks.append(scorer.face_embeddings(_halves_to_float(buffer)))
    n = len(has_face)
    face_emb = np.concatenate(face_chunks) if face_chunks else np.zeros((0, 1), np.float32)
    audio_emb = scorer.audio_embeddings(mel, n)
    has_face = np.asarray(has_face, bool)
    window_has_face = np.lib.stride_tricks.sliding_window_view(has_face, T).all(axis=1)
    return lse_scores(face_emb, audio_emb, window_has_face, scorer.name, n)


def _halves_to_float(halves) -> np.ndarray:
    return np.ascontiguousarray(np.stack(halves).transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def load_scorer(checkpoint="expert", device="cpu") -> ExpertScorer:
    """Our expert (bundled name or file) or an official lipsync_expert.pth, ready to score."""
    path, _ = resolve(checkpoint)
    return ExpertScorer(load_model(path, expect="syncnet", device=device), f"lipsmith-expert:{path.name}", device)


def score_video(video_path, audio_path=None, scorer: ExpertScorer | None = None, track=None,
                frame_map=None, cache_dir=None, face_index=None, progress=None, cancel=None) -> SyncScores:
    """LSE scores of a video against its own audio or `audio_path`, at 25-fps timing.

    `track` (a FaceTrack) and `frame_map` (video frame → track frame) let a rendered output
    reuse its source's face track instead of detecting faces again.
    """
    scorer = scorer or load_scorer()
    with VideoSource(video_path) as video:
        mel = melspectrogram(load_audio(audio_path or video_path))
        if track is None:
            track = track_video(video, cache_dir=cache_dir, face_index=face_index, cancel=cancel,
                                progress=progress and (lambda d, t: progress(d, t, "detect")))
        seconds = min(video.duration, mel.shape[1] / 80.0)
        n = int(seconds * SCORE_FPS + 1e-6)
        src = video.frames_at_rate(SCORE_FPS, n)
        track_index = src if frame_map is None else np.asarray(frame_map)[src]

        def frames():
            for k, frame in enumerate(source_frames(video, src)):
                if cancel and cancel():
                    raise Cancelled("scoring cancelled")
                if progress and k % 25 == 0:
                    progress(k, n, "score")
                yield frame, track.crop_box(int(track_index[k]))

        return score_frames(scorer, frames(), n, mel)
