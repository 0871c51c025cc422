"""Audio: load anything ffmpeg reads as 16 kHz mono float32, and the Wav2Lip mel.

The mel must match the reference recipe (librosa 0.7 defaults) exactly, because the
official checkpoints were trained on it: pre-emphasis, a centred reflect-padded STFT,
a Slaney mel filterbank and a clipped, symmetric dB normalisation. The filterbank is
our own so that librosa (and its numba start-up) stays out of the runtime path.
"""
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.errors import MediaError
from core.ffmpeg import run_ffmpeg
from core.hparams import HP

# --------------------------------------------------------------------------- loading


def load_audio(path, sr: int = HP.sample_rate) -> np.ndarray:
    """Decode the first audio stream of any media file to mono float32 at `sr`.

    NaN/inf samples (seen in some TTS output) become 0 so the mel stays finite.
    """
    path = Path(path)
    if path.is_dir():
        raise MediaError(path, "is a folder, not an audio file")
    if not path.is_file():
        raise MediaError(path, "file not found")
    proc = run_ffmpeg(["-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
                       "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sr), "-f", "f32le", "-"], capture_output=True)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace")
        if "matches no streams" in err or "does not contain any stream" in err:
            raise MediaError(path, "has no audio stream")
        last = err.strip().splitlines()[-1] if err.strip() else f"ffmpeg exit {proc.returncode}"
        raise MediaError(path, f"cannot decode audio ({last})")
    audio = np.frombuffer(proc.stdout, dtype=np.float32).copy()
    if audio.size == 0:
        raise MediaError(path, "audio track is empty (0 samples)")
    np.nan_to_num(audio, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return audio


def is_silent(audio: np.ndarray, threshold_db: float = -60.0) -> bool:
    """True when the loudest sample is below `threshold_db` dBFS."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return peak <= 10 ** (threshold_db / 20)


# --------------------------------------------------------------------------- mel


def _hz_to_mel(hz):
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    mel = hz / f_sp
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, mel)


def _mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


@lru_cache(maxsize=4)
def mel_filterbank(sr: int = HP.sample_rate, n_fft: int = HP.n_fft, n_mels: int = HP.num_mels,
                   fmin: float = HP.fmin, fmax: float = HP.fmax) -> np.ndarray:
    """Triangular filters on the Slaney mel scale with Slaney area normalisation, (n_mels, 1 + n_fft/2)."""
    fft_freqs = np.linspace(0.0, sr / 2, 1 + n_fft // 2)
    mel_freqs = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]  # equal area per band
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=2)
def _hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic, as scipy's fftbins=True


def melspectrogram(audio: np.ndarray, hp=HP, chunk_frames: int = 4096) -> np.ndarray:
    """Wav2Lip mel of 16 kHz mono audio: float32 (80, 1 + len // 200), values in [-4, 4]."""
    x = np.asarray(audio, dtype=np.float64)
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    if x.size == 0:
        raise ValueError("empty audio")
    emphasised = np.empty_like(x)
    emphasised[0] = x[0]
    emphasised[1:] = x[1:] - hp.preemphasis * x[:-1]
    pad = hp.n_fft // 2
    if emphasised.size <= pad:  # reflect padding needs more samples than the pad
        emphasised = np.pad(emphasised, (0, pad + 1 - emphasised.size))
    padded = np.pad(emphasised, pad, mode="reflect")
    n_frames = 1 + (padded.size - hp.n_fft) // hp.hop_size
    frames = np.lib.stride_tricks.sliding_window_view(padded, hp.n_fft)[:: hp.hop_size][:n_frames]
    basis = mel_filterbank(hp.sample_rate, hp.n_fft, hp.num_mels, hp.fmin, hp.fmax)
    window = _hann(hp.win_size)
    mel = np.empty((hp.num_mels, n_frames), dtype=np.float64)
    for start in range(0, n_frames, chunk_frames):  # bounded memory on long tracks
        block = frames[start:start + chunk_frames] * window
        magnitude = np.abs(np.fft.rfft(block, n=hp.n_fft, axis=1))
        mel[:, start:start + block.shape[0]] = basis @ magnitude.T
    db = 20.0 * np.log10(np.maximum(1e-5, mel)) - hp.ref_level_db
    scale = 2 * hp.max_abs_value
    normalised = scale * ((db - hp.min_level_db) / -hp.min_level_db) - hp.max_abs_value
    return np.clip(normalised, -hp.max_abs_value, hp.max_abs_value).astype(np.float32)


# --------------------------------------------------------------------------- windows


def mel_index(t: float, hp=HP) -> int:
    """First mel frame of the window for a video frame shown at time `t` seconds."""
    return int(hp.mel_fps * t)  # the reference's int(80 · i / fps)


def mel_window(mel: np.ndarray, t: float, hp=HP) -> np.ndarray:
    """The (80, 16) mel window for the frame at time `t`; the last windows clamp to the end."""
    n = mel.shape[1]
    if n < hp.mel_step_size:
        raise ValueError(f"audio too short: {n} mel frames, need at least {hp.mel_step_size} (0.2 s)")
    start = min(mel_index(t, hp), n - hp.mel_step_size)
    return mel[:, start:start + hp.mel_step_size]


def mel_windows(mel: np.ndarray, times, hp=HP) -> np.ndarray:
    """Stack of windows for many frame times: (len(times), 80, 16)."""
    return np.stack([mel_window(mel, t, hp) for t in times]) if len(times) else \
        np.zeros((0, hp.num_mels, hp.mel_step_size), np.float32)


def frame_times(count: int, fps: float) -> np.ndarray:
    """Times of `count` frames at a constant rate."""
    return np.arange(count, dtype=np.float64) / float(fps)


def frame_loudness(mel: np.ndarray, fps: float, frames: int) -> np.ndarray:
    """Mean log-mel energy of the audio heard during each of `frames` video frames."""
    energy = mel.mean(axis=0)
    edges = np.minimum((np.arange(frames + 1) * HP.mel_fps / fps).astype(int), len(energy) - 1)
    return np.array([energy[a:max(b, a + 1)].mean() for a, b in zip(edges[:-1], edges[1:])])
