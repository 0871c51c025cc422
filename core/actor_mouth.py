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

from dataclasses import dataclass

import cv2
import numpy as np

from core.blend import BlendSettings, crop_landmarks, crop_mask, lips_mask, match_colour
from core.hparams import HP

EXCLUDE_S = 1.0  # never a mouth from this close to the output's own moment
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
_DESCRIPTOR = (48, 24)  # the lower half, blurred, at half the generator's resolution
_MOUTH_ROWS, _MOUTH_COLS = slice(6, 20), slice(10, 38)  # the mouth itself, not the jaw line


def lower_half(frame: np.ndarray, box, size) -> np.ndarray:
    """The lower half of the int crop `box` (x1, y1, x2, y2) of `frame`, resized to `size` (w, h)."""
    x1, y1, x2, y2 = box
    top = y1 + (y2 - y1) // 2
    return cv2.resize(frame[top:y2, x1:x2], size, interpolation=cv2.INTER_AREA)


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


@dataclass
class MouthBank:
    """The actor's real mouths: source frame indices, the mouths (N, h, w, 3) BGR at `size`, and
    their descriptors (N, D)."""

    frames: np.ndarray
    mouths: np.ndarray
    descriptors: np.ndarray
    size: tuple  # (w, h)

    def __len__(self) -> int:
        return len(self.frames)


def bank_frames(track, used_frames, fps: float, n_source: int) -> np.ndarray:
    """The source frames a bank for a job showing `used_frames` is built from: every frame with a
    face within WINDOW_S of them, evenly thinned to MAX_ENTRIES."""
    lo = max(0, int(np.min(used_frames) - WINDOW_S * fps))
    hi = min(n_source, int(np.max(used_frames) + WINDOW_S * fps) + 1)
    candidates = np.array([i for i in range(lo, hi) if track.crop_box(i) is not None], dtype=np.int64)
    if len(candidates) > MAX_ENTRIES:
        candidates = candidates[np.linspace(0, len(candidates) - 1, MAX_ENTRIES).round().astype(int)]
    return candidates


def mouth_size(track, frames, pads) -> tuple:
    """(w, h) the bank keeps its mouths at: the median crop width (even), within [96, MAX_WIDTH]."""
    widths = [b[2] - b[0] for b in (track.crop_box(int(i), pads) for i in frames) if b is not None]
    w = int(np.clip(np.median(widths) if widths else HP.img_size, HP.img_size, MAX_WIDTH)) // 2 * 2
    return w, w // 2


def build_bank(video, track, frames, pads=HP.pads, progress=None, cancel=None) -> MouthBank:
    """Read the mouths of source `frames` (increasing indices with a face) from `video`."""
    frames = np.asarray(frames, dtype=np.int64)
    size = mouth_size(track, frames, pads)
    mouths = np.empty((len(frames), size[1], size[0], 3), np.uint8)
    if len(frames):
        wanted = {int(i): n for n, i in enumerate(frames)}
        done = 0
        for i, image in video.frames(int(frames[0]), int(frames[-1]) + 1):
            n = wanted.get(int(i))
            if n is None:
                continue
            if cancel is not None and cancel():
                from core.errors import Cancelled

                raise Cancelled("reading the actor's mouths cancelled")
            mouths[n] = lower_half(image, track.crop_box(int(i), pads), size)
            done += 1
            if progress is not None:
                progress(done, len(frames))
    descriptors = np.stack([descriptor(m) for m in mouths]) if len(frames) else np.zeros((0, 1), np.float32)
    return MouthBank(frames, mouths, descriptors.astype(np.float32), size)


class ActorMouth:
    """Pastes the actor's mouth, shaped by each generated crop, frame after frame (in output order:
    it remembers the previous pick to keep runs of real frames together)."""

    def __init__(self, bank: MouthBank, fps: float, settings: BlendSettings = BlendSettings()):
        self.bank = bank
        self.exclude = max(1, int(round(EXCLUDE_S * fps)))
        self.settings = settings
        self.flow = cv2.DISOpticalFlow_create(FLOW_PRESET)
        self.previous = None  # bank row of the last pick
        self.picks: list = []  # source frame of each pick (diagnostics: reuse)
        w, h = bank.size
        self._grid = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))

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

    def aligned(self, row: int, generated_mouth: np.ndarray) -> np.ndarray:
        """Bank mouth `row` warped onto the shape of `generated_mouth` (both at the bank's size)."""
        size = self.bank.size
        real = self.bank.mouths[row]
        flow = self.flow.calc(generator_blur(generated_mouth, size), generator_blur(real, size), None)
        gx, gy = self._grid
        return cv2.remap(real, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)

    def paste(self, frame: np.ndarray, generated: np.ndarray, box, landmarks, source_frame: int) -> bool:
        """Composite into `frame` (in place) at the int `box`: the colour-matched generated crop's
        shape and shading plus the aligned real mouth's detail, through the blend mask. False
        (nothing pasted) when the bank has no mouth for it: the caller pastes the generated crop."""
        x1, y1, x2, y2 = (int(v) for v in box)
        h, w = y2 - y1, x2 - x1
        gh, gw = generated.shape[:2]
        if h < 4 or w < 4:
            return False
        original = frame[y1:y2, x1:x2]
        small_mask = crop_mask(box, landmarks, (gw, gh), self.settings)
        if self.settings.color_match:
            small_original = cv2.resize(original, (gw, gh), interpolation=cv2.INTER_AREA)
            lips = lips_mask((gw, gh), crop_landmarks(box, landmarks, (gw, gh)))
            generated = match_colour(generated, small_original, small_mask, lips)
        mouth = cv2.resize(generated[gh // 2:], self.bank.size, interpolation=cv2.INTER_CUBIC)
        row = self.pick(mouth, source_frame)
        self.previous = row
        if row is None:
            return False
        self.picks.append(int(self.bank.frames[row]))
        real = self.aligned(row, mouth).astype(np.float32)
        sigma = DETAIL_SIGMA * self.bank.size[0] / HP.img_size
        mouth = cv2.GaussianBlur(mouth.astype(np.float32), (0, 0), sigma) + real - cv2.GaussianBlur(real, (0, 0), sigma)
        patch = cv2.resize(generated, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        patch[h // 2:] = cv2.resize(mouth, (w, h - h // 2), interpolation=cv2.INTER_LINEAR)
        weight = cv2.resize(small_mask, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
        base = original.astype(np.float32)
        frame[y1:y2, x1:x2] = np.clip(base + weight * (patch - base) + 0.5, 0, 255).astype(np.uint8)
        return True
