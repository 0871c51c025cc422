"""Torch datasets over the prepared layout (`training/prepare.py`):

    <root>/<source>/<clip>/{0.jpg, 1.jpg, ..., audio.wav}     filelist lines: "<source>/<clip>"

* `ExpertDataset`: 5-frame lower-half windows + a 0.2 s mel window, 50 % in sync, 50 % off
  sync (the mel of another start >= 5 frames away), for the SyncNet expert.
* `StretchDataset`: K consecutive 5-frame windows of one clip with their K mel windows, for
  the expert's offset-contrastive objective (each face window must pick its own mel among
  the stretch's other offsets: the hard, nearby negatives that LSE-C measures).
* `GeneratorDataset`: target window, reference window (another start of the same clip),
  per-frame mels and the window's expert mel, for the Wav2Lip generator.

Images are BGR, as cv2 reads them (the official models were trained on cv2 images), resized
(INTER_AREA, like the renderer) from the saved natural-size crop to 96 x 96, floats in [0, 1].
Mels are the engine's (`core.audio.melspectrogram`), windows by `core.audio.mel_window`:
frame i of a 25 fps clip starts at mel frame int(80 * i / 25). Only windows that fit inside
the audio are used (no clamping at the end, unlike inference).

Indexing: without `epoch_size`, item `idx` is one fixed (clip, start frame) window, so a
shuffling or distributed sampler covers every window once per epoch; with `epoch_size`, the
window is drawn at random.

Randomness: everything random in an item (label, the other start, the augmentation) comes
from one numpy generator made per item from (seed, epoch, idx, entropy). For training, the
entropy is a number drawn from torch's RNG of the process that loads the item: a DataLoader
worker's torch RNG is seeded by the loader (base seed from the main process + worker id), so
each worker has its own seeded stream, every epoch gets fresh draws (also with persistent
workers), and a run is reproducible for a given `torch.manual_seed`, sampler and worker
count. `train=False` uses no entropy and no augmentation: the validation items are the same
at every evaluation, whatever the workers. `sample(idx, entropy)` returns an item together
with its draws (the tests check items against them by construction).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from core.audio import mel_index, melspectrogram
from core.errors import LipsmithError
from core.hparams import EXCLUDE_S, HP
from training.lip_shape import SHAPE_FEATURES, read_lip_shapes, shape_targets
from training.prepare import speaker_of

FPS = 25
_FRAME = re.compile(r"^(\d+)\.jpg$")


# --------------------------------------------------------------------------- augmentation


@dataclass(frozen=True)
class Augment:
    """Training augmentation; one draw (`sample`) is applied to every frame of an item and,
    for the generator, to both windows, so the frames stay consistent with each other.

    Audio gain is applied to the normalised mel, not the waveform (recomputing the mel per
    item would cost more than the rest of loading): a gain of g dB adds g dB to every mel
    bin, which the normalisation `8 * (S + 100) / 100 - 4` maps to `+ 8 * g / 100`, then the
    result is clipped to [-4, 4] as the mel is. Bins at the -4 floor stay there for positive
    gains (their true level is unknown, anywhere at or below the floor); that is the only
    approximation, and it matches the real mel exactly wherever neither clip is reached.
    """

    brightness: float = 0.1  # factor in [1 - b, 1 + b]
    contrast: float = 0.1
    saturation: float = 0.1
    scale: float = 0.05  # zoom factor in [1 - s, 1 + s] about the centre
    shift: float = 0.05  # translation in [-s, s] of the image size, x and y
    flip: float = 0.5  # probability of a horizontal flip
    gain_db: float = 6.0  # uniform in [-g, g]
    mel_noise: float = 0.05  # std of Gaussian noise on the normalised mel (range 8)
    # speaker-invariance for the audio encoder (off by default; the expert turns them on):
    mel_warp: float = 0.0  # vocal-tract-length warp: mel bin b takes bin b * a, a in [1 - w, 1 + w]
    freq_mask: int = 0  # SpecAugment: one band of up to this many mel bins set to the window's mean

    def sample(self, rng: np.random.Generator) -> dict:
        u = lambda a: float(rng.uniform(-a, a))
        draw = {"brightness": 1 + u(self.brightness), "contrast": 1 + u(self.contrast),
                "saturation": 1 + u(self.saturation), "scale": 1 + u(self.scale),
                "dx": u(self.shift), "dy": u(self.shift), "flip": bool(rng.random() < self.flip),
                "gain_db": u(self.gain_db)}
        # drawn only when enabled, so the default draws (and their streams) stay as they were
        if self.mel_warp:
            draw["warp"] = 1 + u(self.mel_warp)
        if self.freq_mask:
            width = int(rng.integers(0, self.freq_mask + 1))
            draw["mask"] = (int(rng.integers(0, HP.num_mels - width + 1)), width)
        return draw

    @staticmethod
    def image(img: np.ndarray, p: dict) -> np.ndarray:
        """96x96 BGR float32 [0, 1] -> the same, augmented with draw `p`."""
        size = img.shape[1], img.shape[0]
        if p["scale"] != 1 or p["dx"] or p["dy"]:
            c = ((size[0] - 1) / 2, (size[1] - 1) / 2)
            s = p["scale"]
            m = np.array([[s, 0, c[0] * (1 - s) + p["dx"] * size[0]],
                          [0, s, c[1] * (1 - s) + p["dy"] * size[1]]], dtype=np.float64)
            img = cv2.warpAffine(img, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if p["flip"]:
            img = img[:, ::-1]
        grey = img[..., 0:1] * 0.114 + img[..., 1:2] * 0.587 + img[..., 2:3] * 0.299  # BGR
        img = img * p["brightness"]
        grey = grey * p["brightness"]
        img = (img - grey.mean()) * p["contrast"] + grey.mean()
        grey = (grey - grey.mean()) * p["contrast"] + grey.mean()
        img = grey + (img - grey) * p["saturation"]
        return np.clip(img, 0.0, 1.0).astype(np.float32)

    def mel(self, mel: np.ndarray, p: dict, rng: np.random.Generator) -> np.ndarray:
        """Warp and mask (when drawn), gain (as an additive shift of the normalised mel, see the
        class doc) and noise."""
        top = HP.max_abs_value
        if p.get("warp", 1.0) != 1.0:  # a shorter/longer vocal tract moves formants up/down
            bins = np.arange(len(mel), dtype=np.float64)
            src = np.clip(bins * p["warp"], 0, len(mel) - 1)
            lo = np.floor(src).astype(int)
            hi = np.minimum(lo + 1, len(mel) - 1)
            frac = (src - lo)[:, None].astype(np.float32)
            mel = mel[lo] * (1 - frac) + mel[hi] * frac
        if p.get("mask", (0, 0))[1]:
            start, width = p["mask"]
            mel = mel.copy()
            mel[start:start + width] = mel.mean()
        shift = 2 * top * p["gain_db"] / -HP.min_level_db  # 8 * g / 100
        out = mel + np.float32(shift)
        if shift > 0:
            out = np.where(mel <= -top + 1e-6, mel, out)
        if self.mel_noise:
            out = out + rng.normal(0.0, self.mel_noise, size=mel.shape).astype(np.float32)
        return np.clip(out, -top, top).astype(np.float32)



# --------------------------------------------------------------------------- clips


@dataclass
class Clip:
    key: str
    path: Path
    frames: int
    audio_samples: int

    @property
    def mel_frames(self) -> int:
        return 1 + self.audio_samples // HP.hop_size  # melspectrogram's frame count


def read_filelist(root, filelist) -> list:
    """Clip keys from a filelist (a path, or a name under <root>/filelists/ such as "train")."""
    root = Path(root)
    path = Path(filelist)
    if not path.is_file():
        candidate = root / "filelists" / (filelist if str(filelist).endswith(".txt") else f"{filelist}.txt")
        if candidate.is_file():
            path = candidate
        else:
            raise FileNotFoundError(f"filelist not found: {filelist}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def scan_clip(root: Path, key: str):
    """A Clip for `<root>/<key>`, or None when it is missing, has gaps or no audio."""
    path = root / key
    try:
        names = os.listdir(path)
    except OSError:
        return None
    n = sum(1 for name in names if _FRAME.match(name))
    if n == 0 or not (path / f"{n - 1}.jpg").is_file() or "audio.wav" not in names:
        return None  # frames not numbered 0..n-1, or no audio
    try:
        info = sf.info(str(path / "audio.wav"))
    except (RuntimeError, OSError):
        return None
    if info.samplerate != HP.sample_rate:
        raise LipsmithError(path / "audio.wav", f"{info.samplerate} Hz, expected {HP.sample_rate}")
    return Clip(key, path, n, int(info.frames))


def clip_speakers(root: Path, keys: list) -> list:
    """Each clip's speaker as the prepared manifest records it, else as prepare would name it."""
    manifest = Path(root) / "manifest.json"
    clips = json.loads(manifest.read_text(encoding="utf-8")).get("clips", {}) if manifest.is_file() else {}
    return [clips.get(key, {}).get("speaker") or speaker_of(key) for key in keys]


def read_frame(path: Path) -> np.ndarray:
    """One prepared crop as 96x96 BGR uint8 (INTER_AREA, like the renderer)."""
    img = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read {path}")
    return cv2.resize(img, (HP.img_size, HP.img_size), interpolation=cv2.INTER_AREA)


def read_clip_frames(clip: Clip) -> np.ndarray:
    """All frames of a prepared clip as (N, 96, 96, 3) uint8 BGR."""
    return np.stack([read_frame(clip.path / f"{i}.jpg") for i in range(clip.frames)])


def read_clip_mel(clip: Clip) -> np.ndarray:
    """The clip's whole mel (80, N)."""
    audio, _ = sf.read(str(clip.path / "audio.wav"), dtype="float32", always_2d=True)
    return melspectrogram(audio.mean(axis=1))


def speaker_balanced_weights(root, keys: list, counts) -> np.ndarray:
    """Draw probabilities of clips `keys` holding `counts` items each: each source folder weighted by
    the square root of its items, and within it each speaker by the square root of theirs, instead
    of everything by its items: one speaker with 40 clips (GRID s1) or one broadcaster's 2,000
    one-word clips (the Arabic news set, 42 of our 74 minutes) no longer dominates, yet their extra
    material still counts. Within a speaker, clips are drawn by their items."""
    speakers = clip_speakers(root, keys)
    sources = [key.split("/")[0] for key in keys]
    counts = np.asarray(counts, np.float64)
    by_speaker, by_source = {}, {}
    for speaker, source, n in zip(speakers, sources, counts):
        by_speaker[speaker] = by_speaker.get(speaker, 0.0) + n
        by_source[source] = by_source.get(source, 0.0) + n
    # a speaker's share of its source: sqrt of its items over the source's sum of such roots
    roots: dict = {}
    for speaker, source in set(zip(speakers, sources)):
        roots[source] = roots.get(source, 0.0) + np.sqrt(by_speaker[speaker])
    weights = np.array([(n / by_speaker[speaker]) * (np.sqrt(by_speaker[speaker]) / roots[source])
                        * np.sqrt(by_source[source])
                        for speaker, source, n in zip(speakers, sources, counts)])
    return weights / weights.sum()


class _WindowDataset(Dataset):
    """Shared machinery: clips, their valid window starts, the frame and mel caches, loading.

    Frames are decoded once per clip and kept (uint8, 96x96; ~0.3 GB for our 11k frames per
    process): decoding JPEGs would otherwise dominate a CPU training step. `av_offsets`
    ({clip key: k frames}, `read_av_offsets`) pairs frame i with the mel window of frame i + k.
    """

    def __init__(self, root, filelist, train: bool, T: int, epoch_size, seed: int, augment,
                 av_offsets: dict | None = None):
        self.root = Path(root)
        self.av_offsets = dict(av_offsets or {})
        self._frames, self._mels = {}, {}
        self.train = bool(train)
        self.T = int(T)
        self.seed = int(seed)
        self.epoch = 0
        self.epoch_size = None if epoch_size is None else int(epoch_size)
        self.augment = (Augment() if augment is None else augment) if train else None
        self.clips, self.starts, self.skipped = [], [], []
        self.clip_weights = None  # random draws by window; see balance_speakers()
        for key in read_filelist(self.root, filelist):
            if key in self.av_offsets and self.av_offsets[key] is None:  # dropped by `offsets`
                self.skipped.append(key)
                continue
            clip = scan_clip(self.root, key)
            starts = self._valid_starts(clip) if clip is not None else np.zeros(0, np.int64)
            if clip is None or not self._usable(starts):
                self.skipped.append(key)
                continue
            self.clips.append(clip)
            self.starts.append(starts)
        self._offsets = np.cumsum([0] + [len(s) for s in self.starts])
        if not self.clips:
            raise LipsmithError(filelist, f"no usable clips under {self.root} "
                                          f"({len(self.skipped)} too short or incomplete)")

    # -- what a subclass decides
    def _valid_starts(self, clip: Clip) -> np.ndarray:
        raise NotImplementedError

    def _usable(self, starts: np.ndarray) -> bool:
        return len(starts) >= 2

    # -- indexing
    @property
    def n_windows(self) -> int:
        return int(self._offsets[-1])

    def __len__(self) -> int:
        return self.epoch_size if self.epoch_size is not None else self.n_windows

    def set_epoch(self, epoch: int) -> None:
        """Optional (draws differ per epoch anyway): mixes the epoch into the training draws."""
        self.epoch = int(epoch)

    def _rng(self, idx: int, entropy=None) -> np.random.Generator:
        if not self.train:
            return np.random.default_rng([self.seed, int(idx)])
        if entropy is None:  # this process's (worker's) seeded torch stream
            entropy = int(torch.randint(0, 2 ** 62, ()).item())
        return np.random.default_rng([self.seed, self.epoch, int(idx), int(entropy)])

    def __getitem__(self, idx: int):
        return self.sample(idx)[0]

    def _window(self, idx: int, rng) -> tuple:
        """(clip number, start frame) of item idx."""
        if not 0 <= idx < len(self):
            raise IndexError(idx)
        if self.epoch_size is not None and self.clip_weights is not None:
            c = int(rng.choice(len(self.clips), p=self.clip_weights))
            return c, int(self.starts[c][rng.integers(len(self.starts[c]))])
        w = int(rng.integers(self.n_windows)) if self.epoch_size is not None else idx
        c = int(np.searchsorted(self._offsets, w, side="right")) - 1
        return c, int(self.starts[c][w - self._offsets[c]])

    def balance_speakers(self) -> None:
        """Random draws (epoch_size) by `speaker_balanced_weights` of the clips' windows instead of
        by the windows themselves."""
        self.clip_weights = speaker_balanced_weights(self.root, [clip.key for clip in self.clips],
                                                     [len(s) for s in self.starts])

    # -- loading
    def mel(self, c: int) -> np.ndarray:
        """The clip's whole mel (80, N), computed once per clip (per worker process)."""
        mel = self._mels.get(c)
        if mel is None:
            mel = self._mels[c] = read_clip_mel(self.clips[c])
        return mel

    def frames(self, c: int) -> np.ndarray:
        """All frames of clip c as (N, 96, 96, 3) uint8 BGR, decoded once."""
        frames = self._frames.get(c)
        if frames is None:
            frames = self._frames[c] = read_clip_frames(self.clips[c])
        return frames

    def _shift(self, clip: Clip) -> int:
        return self.av_offsets.get(clip.key, 0)

    def _mel_at(self, c: int, frame: int) -> np.ndarray:
        """The mel window that goes with frame `frame` of clip c (its AV offset applied)."""
        start = mel_index((frame + self._shift(self.clips[c])) / FPS)
        window = self.mel(c)[:, start:start + HP.mel_step_size]
        if window.shape[1] != HP.mel_step_size:  # _valid_starts guarantees this never happens
            raise IndexError(f"{self.clips[c].key}: no full mel window at frame {frame}")
        return window

    def shifted_mels(self, c: int, frame: int, max_shift: int) -> tuple:
        """(shifts, (S, 1, 80, 16) windows): the mel windows of frame + s for s in −max_shift..max_shift
        that lie inside clip c's audio (AV offset applied), for offset-based measures."""
        shifts = np.arange(-max_shift, max_shift + 1)
        shifts = shifts[self._mel_fits(self.clips[c], frame + shifts)]
        return shifts, np.stack([self._mel_at(c, frame + int(s)) for s in shifts])[:, None].astype(np.float32)

    def _images(self, c: int, start: int, p) -> np.ndarray:
        """Frames start..start+T-1 as (T, 96, 96, 3) BGR float32 in [0, 1], augmented with p."""
        images = self.frames(c)[start:start + self.T].astype(np.float32) / 255.0
        return np.stack([Augment.image(img, p) for img in images]) if p is not None else images

    def _mel_out(self, mel: np.ndarray, p, rng) -> np.ndarray:
        mel = np.asarray(mel, np.float32)
        return self.augment.mel(mel, p, rng) if p is not None else mel.copy()

    def _mel_fits(self, clip: Clip, frame: np.ndarray) -> np.ndarray:
        """Which frames have a full mel window (after the clip's AV offset)."""
        frame = np.asarray(frame) + self._shift(clip)
        idx = (HP.mel_fps * frame / FPS).astype(np.int64)  # mel_index, vectorised
        return (frame >= 0) & (idx + HP.mel_step_size <= clip.mel_frames)


class ExpertDataset(_WindowDataset):
    """Items for the SyncNet expert: (faces, mel, label).

    faces (3*T, 48, 96) float32 in [0, 1]: the lower half of T consecutive 96x96 BGR crops from
    frame i, stacked frame-major ([f0 B, G, R, f1 B, G, R, ...]); mel (1, 80, 16) float32;
    label: a 0-d float32 tensor, 1 in sync (mel window of frame i) or 0 off sync (the mel
    window of another start j of the same clip, |j - i| >= `min_offset`), 50 % each.
    """

    def __init__(self, root, filelist, train: bool = True, syncnet_T: int = HP.syncnet_T,
                 epoch_size: int | None = None, seed: int = 0, min_offset: int = 5,
                 augment: Augment | None = None, av_offsets: dict | None = None):
        self.min_offset = int(min_offset)
        super().__init__(root, filelist, train, syncnet_T, epoch_size, seed, augment, av_offsets)

    def _valid_starts(self, clip: Clip) -> np.ndarray:
        starts = np.arange(max(0, clip.frames - self.T + 1))
        return starts[self._mel_fits(clip, starts)]

    def _usable(self, starts) -> bool:
        # every start must have a partner >= min_offset away: 2 * min_offset starts suffice
        return len(starts) >= 2 * self.min_offset

    def plan(self, idx: int, entropy=None) -> dict:
        """The draws of item idx: clip number, frame start i, mel start j, label, augmentation."""
        rng = self._rng(idx, entropy)
        c, i = self._window(idx, rng)
        in_sync = bool(rng.random() < 0.5)
        if in_sync:
            j = i
        else:
            starts = self.starts[c]
            far = starts[np.abs(starts - i) >= self.min_offset]
            j = int(far[rng.integers(len(far))])
        p = self.augment.sample(rng) if self.augment is not None else None
        return {"clip": c, "key": self.clips[c].key, "start": i, "mel_start": j,
                "label": 1.0 if in_sync else 0.0, "augment": p, "rng": rng}

    def sample(self, idx: int, entropy=None):
        """((faces, mel, label), draws) of item idx."""
        d = self.plan(idx, entropy)
        frames = self._images(d["clip"], d["start"], d["augment"])  # (T, 96, 96, 3)
        half = HP.img_size // 2
        faces = frames[:, half:].transpose(0, 3, 1, 2).reshape(self.T * 3, half, HP.img_size)
        mel = self._mel_out(self._mel_at(d["clip"], d["mel_start"]), d["augment"], d["rng"])
        return (torch.from_numpy(np.ascontiguousarray(faces)), torch.from_numpy(mel[None]),
                torch.tensor(d["label"], dtype=torch.float32)), d


def read_av_offsets(path) -> dict:
    """Per-clip audio offsets in frames ({"<source>/<clip>": k}) measured by `python main.py
    offsets`: the clip's audio is k frames late (the sound of frame i is heard at frame i + k),
    so frame i goes with the mel window of frame i + k (core.sync's offset sign). A clip the
    measurement dropped (its "drop" list) maps to None: the datasets leave it out."""
    found = json.loads(Path(path).read_text())
    offsets = {str(k): int(v) for k, v in found["offsets"].items()}
    offsets.update({str(k): None for k in found.get("drop", [])})
    return offsets


class StretchDataset(_WindowDataset):
    """Items for the expert's offset-contrastive objective: (faces, mels, aux).

    faces (K, 3*T, 48, 96): the lower halves of the windows starting at frames s .. s+K-1 of one
    clip (layout as ExpertDataset), one augmentation draw for the whole stretch; mels
    (K, 1, 80, 16): the mel windows of the same starts (with the clip's AV offset). Window k's
    in-sync mel is mels[k]; mels[j != k] are the same clip's audio |j - k| frames off.
    aux (K, T * F): the auxiliary per-frame target of each window's frames (F values a frame,
    frame-major), z-scored per clip, NaN where unknown: `loudness()` of the audio (F = 1), or
    from the lip shape that MediaPipe measured (`training/lip_shape.py`, DATA/lip_shape.npz):
    its aperture with aux="aperture" (F = 1), the lip-shape teacher with aux="shape" (F = 8:
    `lip_shape.shape_targets`, the PCA basis fitted on the training filelist's clips).
    """

    def __init__(self, root, filelist, train: bool = True, stretch: int = 16, syncnet_T: int = HP.syncnet_T,
                 epoch_size: int | None = None, seed: int = 0, augment: Augment | None = None,
                 av_offsets: dict | None = None, aux: str = "loudness"):
        self.K = int(stretch)
        self.aux = aux
        self._loudness = {}
        self._measured = None  # {clip key: (frames,) or (frames, F) z-scored lip target}
        if aux == "aperture":
            self._measured = {key: zscored(rows[:, 0]) for key, rows in read_lip_shapes(root).items()}
        elif aux == "shape":
            fit = read_filelist(root, "train") if (Path(root) / "filelists" / "train.txt").is_file() else []
            self._measured = {key: zscored(rows) for key, rows in
                              shape_targets(read_lip_shapes(root), fit or read_filelist(root, filelist)).items()}
        elif aux != "loudness":
            raise ValueError(f"unknown auxiliary target {aux!r} (loudness, aperture or shape)")
        self.aux_features = SHAPE_FEATURES if aux == "shape" else 1
        super().__init__(root, filelist, train, syncnet_T, epoch_size, seed, augment, av_offsets)

    def _valid_starts(self, clip: Clip) -> np.ndarray:
        windows = np.arange(max(0, clip.frames - self.T + 1))
        windows = windows[self._mel_fits(clip, windows)]
        if len(windows) < self.K:
            return np.zeros(0, np.int64)
        # stretch starts s whose K windows s..s+K-1 are all valid (the valid windows are a range)
        first = windows[: len(windows) - self.K + 1]
        return first[windows[self.K - 1:] - first == self.K - 1]

    def _usable(self, starts) -> bool:
        return len(starts) >= 1

    def plan(self, idx: int, entropy=None) -> dict:
        rng = self._rng(idx, entropy)
        c, s = self._window(idx, rng)
        p = self.augment.sample(rng) if self.augment is not None else None
        return {"clip": c, "key": self.clips[c].key, "start": s, "augment": p, "rng": rng}

    def sample(self, idx: int, entropy=None):
        d = self.plan(idx, entropy)
        c, s, p = d["clip"], d["start"], d["augment"]
        images = self.frames(c)[s:s + self.K + self.T - 1].astype(np.float32) / 255.0
        if p is not None:
            images = np.stack([Augment.image(img, p) for img in images])
        half = HP.img_size // 2
        lower = images[:, half:].transpose(0, 3, 1, 2)  # (K+T-1, 3, 48, 96)
        faces = np.stack([lower[k:k + self.T].reshape(self.T * 3, half, HP.img_size) for k in range(self.K)])
        mels = np.stack([self._mel_out(self._mel_at(c, s + k), p, d["rng"]) for k in range(self.K)])
        per_frame = self.aux_target(c)[s:s + self.K + self.T - 1]
        aux = np.stack([per_frame[k:k + self.T].reshape(-1) for k in range(self.K)])
        return (torch.from_numpy(np.ascontiguousarray(faces)), torch.from_numpy(mels[:, None]),
                torch.from_numpy(aux)), d

    def aux_target(self, c: int) -> np.ndarray:
        """Clip c's per-frame target: (frames,) for loudness and aperture, (frames, F) for shape."""
        if self._measured is None:
            return self.loudness(c)
        target = self._measured.get(self.clips[c].key)
        if target is None or len(target) != self.clips[c].frames:  # not measured: no target
            return np.full((self.clips[c].frames,) + (() if self.aux_features == 1 else (self.aux_features,)),
                           np.nan, np.float32)
        return target

    def loudness(self, c: int) -> np.ndarray:
        """Per-frame loudness of clip c's audio (with its AV offset): the mean normalised mel over
        the frame's 40 ms, z-scored over the clip, NaN where the audio has ended. An auxiliary
        target for the face encoder: an open mouth goes with a loud frame, so predicting it
        teaches the encoder to look at the lips, which the sync objectives alone can take
        thousands of steps to discover."""
        if c not in self._loudness:
            clip = self.clips[c]
            self._loudness[c] = zscored(frame_loudness(self.mel(c), clip.frames, self._shift(clip)))
        return self._loudness[c]


def frame_loudness(mel: np.ndarray, frames: int, shift: int = 0) -> np.ndarray:
    """Mean normalised mel over each 25 fps frame's 40 ms (frame i taking the audio of frame
    i + shift), NaN where there is no audio."""
    energy = mel.mean(axis=0)
    per_frame = HP.mel_fps / FPS
    out = np.full(frames, np.nan, np.float32)
    for i in range(frames):
        a, b = int(per_frame * (i + shift)), int(per_frame * (i + 1 + shift))
        if 0 <= a and b <= len(energy) and b > a:
            out[i] = energy[a:b].mean()
    return out


def zscored(x: np.ndarray) -> np.ndarray:
    """(x - mean) / std over the finite values (NaN stays NaN), float32; a 2-D x column by column."""
    x = np.asarray(x, np.float32).copy()
    if x.ndim == 2:
        return np.stack([zscored(column) for column in x.T], axis=1) if x.shape[1] else x
    ok = np.isfinite(x)
    if ok.sum() > 1:
        x[ok] = (x[ok] - x[ok].mean()) / max(float(x[ok].std()), 1e-3)
    return x


class GeneratorDataset(_WindowDataset):
    """Items for the generator: a dict of
    target (T, 3, 96, 96), reference (T, 3, 96, 96) (BGR float32 in [0, 1], unmasked: the
    trainer masks the target's lower half), mels (T, 1, 80, 16) (frame i + k's window) and
    sync_mel (1, 80, 16) (the expert's window at frame i).

    `frame_mel_offset` shifts the per-frame windows: 0 (default) is the engine's inference
    mapping (core.render: frame i <- mel_window(i / fps)); the reference trainer used -2,
    i.e. windows centred on the frame, while its inference used 0.

    The reference comes from elsewhere (`elsewhere`): at least UNPAIRED_GAP frames from the
    target, as the renderer's references are (core.references), in the same clip where it is long
    enough, else from another clip of the same speaker, so training sees what rendering gives. (It
    did not stop the original mouth's leak in the session-10 run: see the model card.)

    With `unpaired` set, items also hold unpaired_mels (T, 1, 80, 16) and unpaired_sync_mel
    (1, 80, 16): the audio of a window drawn the same way. There is no true frame for that audio;
    the trainer asks the expert (and the lip reader) whether the mouth generated for it matches it.

    With `shapes` ({clip key: (frames, F) lip-shape features}, e.g. `train_lip_reader.
    reader_features`), items also hold shape (T, F): the features of the target frames, and with
    `unpaired` unpaired_shape (T, F): those of the frames the unpaired audio belongs to, the
    shape a mouth speaking that audio has. NaN where not measured.
    """
    UNPAIRED_GAP = int(round(EXCLUDE_S * FPS))  # frames: far enough that the speech differs from the target's

    def __init__(self, root, filelist, train: bool = True, T: int = HP.syncnet_T,
                 epoch_size: int | None = None, seed: int = 0, frame_mel_offset: int = 0,
                 augment: Augment | None = None, av_offsets: dict | None = None, unpaired: bool = False,
                 shapes: dict | None = None):
        self.frame_mel_offset = int(frame_mel_offset)
        self.unpaired = bool(unpaired)
        self.shapes = shapes
        self._shape_features = next(iter(shapes.values())).shape[1] if shapes else 0
        super().__init__(root, filelist, train, T, epoch_size, seed, augment, av_offsets)
        speakers = clip_speakers(self.root, [clip.key for clip in self.clips])
        by_speaker: dict = {}
        for c, speaker in enumerate(speakers):
            by_speaker.setdefault(speaker, []).append(c)
        self.same_speaker = [np.array([o for o in by_speaker[s] if o != c], np.int64) for c, s in enumerate(speakers)]

    def _valid_starts(self, clip: Clip) -> np.ndarray:
        starts = np.arange(max(0, clip.frames - self.T + 1))
        ok = self._mel_fits(clip, starts)
        ok &= self._mel_fits(clip, starts + self.frame_mel_offset)
        ok &= self._mel_fits(clip, starts + self.T - 1 + self.frame_mel_offset)
        return starts[ok]

    def plan(self, idx: int, entropy=None) -> dict:
        """The draws of item idx: clip number, target start, reference clip and start, augmentation
        (and the unpaired audio's clip and start)."""
        rng = self._rng(idx, entropy)
        c, i = self._window(idx, rng)
        draws = {"clip": c, "key": self.clips[c].key, "start": i}
        draws["reference_clip"], draws["reference_start"] = self.elsewhere(c, i, rng)
        draws["augment"] = self.augment.sample(rng) if self.augment is not None else None
        draws["rng"] = rng
        if self.unpaired:  # drawn last: the other draws stay as they were without it
            draws["unpaired_clip"], draws["unpaired_start"] = self.elsewhere(c, i, rng)
        return draws

    def elsewhere(self, c: int, i: int, rng) -> tuple:
        """(clip, start) of a window away from clip c's window at i: a start of c at least
        UNPAIRED_GAP frames away, else (a short clip) any start of another clip of the same speaker,
        else (a short clip, the speaker's only one) the farthest start of c."""
        starts = self.starts[c]
        far = starts[np.abs(starts - i) >= self.UNPAIRED_GAP]
        if len(far):
            return c, int(far[rng.integers(len(far))])
        if len(self.same_speaker[c]):
            o = int(self.same_speaker[c][rng.integers(len(self.same_speaker[c]))])
            return o, int(self.starts[o][rng.integers(len(self.starts[o]))])
        return c, int(starts[np.argmax(np.abs(starts - i))])

    def sample(self, idx: int, entropy=None):
        """(item dict, draws) of item idx."""
        d = self.plan(idx, entropy)
        c, i, p, rng = d["clip"], d["start"], d["augment"], d["rng"]
        target = self._images(c, i, p).transpose(0, 3, 1, 2)
        reference = self._images(d["reference_clip"], d["reference_start"], p).transpose(0, 3, 1, 2)
        mels, sync_mel = self._window_mels(c, i, p, rng)
        item = {"target": torch.from_numpy(np.ascontiguousarray(target)),
                "reference": torch.from_numpy(np.ascontiguousarray(reference)),
                "mels": mels, "sync_mel": sync_mel}
        if self.unpaired:
            u, j = d["unpaired_clip"], d["unpaired_start"]
            item["unpaired_mels"], item["unpaired_sync_mel"] = self._window_mels(u, j, p, rng)
        if self.shapes is not None:
            item["shape"] = self._window_shape(c, i)
            if self.unpaired:
                item["unpaired_shape"] = self._window_shape(u, j)
        return item, d

    def _window_shape(self, c: int, start: int) -> torch.Tensor:
        """(T, F) lip-shape features of frames start..start+T-1 of clip c, NaN where unknown."""
        rows = self.shapes.get(self.clips[c].key)
        if rows is None or len(rows) != self.clips[c].frames:  # not measured (or measured on other frames)
            return torch.full((self.T, self._shape_features), float("nan"))
        return torch.from_numpy(np.ascontiguousarray(rows[start:start + self.T], np.float32))

    def _window_mels(self, c: int, start: int, p, rng) -> tuple:
        """The generator's per-frame mel windows (T, 1, 80, 16) and the expert's (1, 80, 16) for
        the window at `start`."""
        mels = np.stack([self._mel_out(self._mel_at(c, start + k + self.frame_mel_offset), p, rng)
                         for k in range(self.T)])[:, None]
        return torch.from_numpy(mels), torch.from_numpy(self._mel_out(self._mel_at(c, start), p, rng)[None])
