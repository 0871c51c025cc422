"""Compositing a generated face crop back into the frame without a visible seam.

Wav2Lip regenerates the whole 96×96 crop, but only its lower half carries new
information; pasting the full crop leaves a rectangle (a blurrier face, a colour step).
We paste through a feathered ellipse over the mouth and jaw instead, optionally
matching the patch's colour to the original first (see ColourMatch).
"""
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class BlendSettings:
    feather: float = 0.08  # Gaussian sigma as a fraction of the crop size
    mask_width: float = 0.80  # ellipse width as a fraction of the crop width
    mask_height: float = 0.55  # ellipse height as a fraction of the crop height
    color_match: bool = True

    @classmethod
    def from_settings(cls, settings: dict) -> "BlendSettings":
        """The blend a project's (or a take's) settings ask for (core.project.DEFAULT_SETTINGS' keys)."""
        return cls(feather=settings["feather"], mask_width=settings["mask_width"], mask_height=settings["mask_height"],
                   color_match=settings["color_match"])


def mouth_corners(landmarks) -> np.ndarray | None:
    """The two mouth corners (2, 2) from RetinaFace's 5 or iBUG's 68 landmarks, or None."""
    if landmarks is not None and len(landmarks) == 5:
        return np.asarray(landmarks[3:5], np.float64)
    if landmarks is not None and len(landmarks) == 68:
        return np.asarray(landmarks[[48, 54]], np.float64)
    return None


def mouth_centre(box, landmarks) -> tuple[float, float]:
    """Mouth centre in frame coordinates: from landmarks when known, else from the box."""
    x1, y1, x2, y2 = box
    if landmarks is not None and len(landmarks) == 5:  # eyes, nose, mouth corners (RetinaFace)
        return float(landmarks[3:5, 0].mean()), float(landmarks[3:5, 1].mean())
    if landmarks is not None and len(landmarks) == 68:  # iBUG-68: 48..67 are the lips
        return float(landmarks[48:68, 0].mean()), float(landmarks[48:68, 1].mean())
    return (x1 + x2) / 2, y1 + 0.75 * (y2 - y1)


def lower_face_mask(box, landmarks=None, settings: BlendSettings = BlendSettings()) -> np.ndarray:
    """Soft mask (h, w) float32 in [0, 1] over the crop `box` (ints), covering mouth and jaw.

    The ellipse is centred a little below the mouth so it reaches the chin, and never
    rises above the crop's middle (the generator did not change the upper half).
    """
    x1, y1, x2, y2 = (int(v) for v in box)
    h, w = y2 - y1, x2 - x1
    cx, cy = mouth_centre(box, landmarks)
    cx, cy = cx - x1, min(max(cy - y1, 0.6 * h), 0.85 * h)
    axes = (max(1, int(settings.mask_width * w / 2)), max(1, int(settings.mask_height * h / 2)))
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (int(round(cx)), int(round(cy + 0.05 * h))), axes, 0, 0, 360, 1.0, -1)
    mask[: h // 2] = 0
    sigma = max(0.5, settings.feather * min(h, w))
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    # fade to zero at the crop's middle (the feather must never reach the eyes) and at its
    # other three edges (a mask still on at the edge would show the crop's rectangle)
    rows, cols = np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)
    fade_rows = np.clip(np.minimum(rows - h / 2, h - 1 - rows) / (2 * sigma), 0.0, 1.0)
    fade_cols = np.clip(np.minimum(cols, w - 1 - cols) / (2 * sigma), 0.0, 1.0)
    return mask * fade_rows[:, None] * fade_cols[None, :]


def crop_landmarks(box, landmarks, size):
    """Frame landmarks moved into the coordinates of the crop of `size` (w, h) taken at the int `box`."""
    if landmarks is None:
        return None
    x1, y1, x2, y2 = (int(v) for v in box)
    gw, gh = size
    return (np.asarray(landmarks, np.float32) - (x1, y1)) * (gw / (x2 - x1), gh / (y2 - y1))


def crop_mask(box, landmarks, size, settings: BlendSettings = BlendSettings()) -> np.ndarray:
    """`lower_face_mask` of the int `box` at the generated crop's `size` (w, h)."""
    return lower_face_mask((0, 0, *size), crop_landmarks(box, landmarks, size), settings)


def lips_mask(size, landmarks=None) -> np.ndarray:
    """Hard ellipse (h, w) float32 over the lips and the mouth opening of a crop of `size` (w, h)
    (landmarks in the crop's coordinates): where the generator is meant to change the face."""
    w, h = size
    cx, cy = mouth_centre((0, 0, w, h), landmarks)
    cy = min(max(cy, 0.6 * h), 0.85 * h)
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (int(round(cx)), int(round(cy))), (max(1, int(0.22 * w)), max(1, int(0.12 * h))),
                0, 0, 360, 1.0, -1)
    return mask


def paste_weight(box, landmarks, size, settings: BlendSettings = BlendSettings()) -> np.ndarray:
    """The (h, w) weight `composite` pastes a crop of `size` through at the int `box`: its crop mask
    scaled onto the box."""
    x1, y1, x2, y2 = (int(v) for v in box)
    return cv2.resize(crop_mask(box, landmarks, size, settings), (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)


class ColourMatch:
    """The generated `patch` with the original `target`'s colour (both BGR uint8, same size); call it
    with the mouth its lips take their colour from.

    Around the lips, inside `mask`, the original is the truth: a smooth Lab correction (the
    local difference, blurred) takes its shading, so the jaw's shadows and the skin tone carry
    on without a seam. Across the `lips` that correction is interpolated from around them, so
    the generated opening keeps its lightness; there the colour is a real mouth's, blurred,
    under the generated lightness: the generator's lips drift purple or teal where its sync
    loss judged luma alone, a real mouth keeps the colours it has.

    That real mouth is `lip_colour` (BGR, the patch's size): a picture of the actor's mouth that
    carries none of the original's speech — the generator's reference (a quiet frame at least a
    second away) or the actor's own mouth already aligned to the generated shape. The target's
    own lips (None: a still, which has no speech) would paint the original mouth's shape, open
    or closed, under the new one: on six held-out talks under a near-silent dub the rendered
    opening correlated 0.28 with the original's that way, 0.17 with the reference's colour, where
    a mouth that never moves scores 0.16 (the original's jaw around the mask).
    The shading is found once, whatever lips it is then given.
    """

    def __init__(self, patch: np.ndarray, target: np.ndarray, mask: np.ndarray, lips: np.ndarray):
        self.patch, self.size = patch, min(patch.shape[:2])
        support = (mask > 0.05).astype(np.float32) * (1.0 - lips)
        self.shaded = None
        if float(support.sum()) < 1.0:
            return
        weight = cv2.GaussianBlur(support, (0, 0), 0.1 * self.size)
        lab_patch = cv2.cvtColor(patch, cv2.COLOR_BGR2LAB).astype(np.float32)
        self.lab_target = cv2.cvtColor(target, cv2.COLOR_BGR2LAB).astype(np.float32)
        difference = cv2.GaussianBlur((self.lab_target - lab_patch) * support[..., None], (0, 0), 0.1 * self.size)
        self.shaded = lab_patch + difference / np.maximum(weight, 1e-3)[..., None]
        self.inner = cv2.GaussianBlur(lips, (0, 0), 0.04 * self.size)[..., None]

    def __call__(self, lip_colour: np.ndarray | None = None) -> np.ndarray:
        if self.shaded is None:
            return self.patch
        lips = self.lab_target if lip_colour is None else cv2.cvtColor(lip_colour, cv2.COLOR_BGR2LAB).astype(np.float32)
        matched = self.shaded.copy()
        matched[..., 1:] += self.inner * (cv2.GaussianBlur(lips[..., 1:], (0, 0), 0.02 * self.size) - matched[..., 1:])
        return cv2.cvtColor(np.clip(matched, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)


def original_crop(frame: np.ndarray, box, size) -> np.ndarray:
    """The int `box` of `frame` at a generated crop's `size` (w, h): what the generator is shown, and
    what its crop's colour is matched to."""
    x1, y1, x2, y2 = (int(v) for v in box)
    return cv2.resize(frame[y1:y2, x1:x2], size, interpolation=cv2.INTER_AREA)


def composite(frame: np.ndarray, generated: np.ndarray, box, landmarks=None,
              settings: BlendSettings = BlendSettings(), lip_colour: np.ndarray | None = None,
              original: np.ndarray | None = None) -> np.ndarray:
    """Paste a generated crop (BGR uint8, e.g. 96×96) into `frame` (in place) at the int `box`,
    its lips coloured after `lip_colour` (see ColourMatch); `original`: the box's `original_crop`
    when the caller has it.

    Mask and colour match are computed at the generated crop's own size and only then
    scaled up with the patch: the result is the same to a few levels, at a fraction of the
    cost of blurring a mask the size of a 4K face.
    """
    x1, y1, x2, y2 = (int(v) for v in box)
    h, w = y2 - y1, x2 - x1
    if h < 2 or w < 2:
        return frame
    matched, small_mask = crop_matcher(frame, generated, box, landmarks, settings, original)
    return paste_patch(frame, cv2.resize(matched(lip_colour), (w, h), interpolation=cv2.INTER_LINEAR), box, small_mask)


def crop_matcher(frame: np.ndarray, generated: np.ndarray, box, landmarks=None,
                 settings: BlendSettings = BlendSettings(), original: np.ndarray | None = None) -> tuple:
    """(the generated crop's `ColourMatch` to the original — the box's `original_crop`, found here when
    `original` is None — when `settings` ask for one, else a function that returns the crop as it is;
    the crop's mask), both at the generated crop's own size."""
    gh, gw = generated.shape[:2]
    small_mask = crop_mask(box, landmarks, (gw, gh), settings)
    if not settings.color_match:
        return (lambda lip_colour=None: generated), small_mask
    if original is None:
        original = original_crop(frame, box, (gw, gh))
    lips = lips_mask((gw, gh), crop_landmarks(box, landmarks, (gw, gh)))
    return ColourMatch(generated, original, small_mask, lips), small_mask


def paste_patch(frame: np.ndarray, patch: np.ndarray, box, small_mask: np.ndarray) -> np.ndarray:
    """Blend `patch` (the int `box`'s size) into `frame` (in place) through `small_mask` scaled to it."""
    x1, y1, x2, y2 = (int(v) for v in box)
    h, w = y2 - y1, x2 - x1
    weight = cv2.resize(small_mask, (w, h), interpolation=cv2.INTER_LINEAR)
    left, top, width, height = cv2.boundingRect((weight > 0).astype(np.uint8))  # the rest stays as it is
    if not width or not height:
        return frame
    rows, cols = slice(top, top + height), slice(left, left + width)
    weight = np.ascontiguousarray(weight[rows, cols])
    crop = frame[y1:y2, x1:x2]
    crop[rows, cols] = cv2.blendLinear(np.ascontiguousarray(patch[rows, cols]), np.ascontiguousarray(crop[rows, cols]),
                                       weight, 1.0 - weight)
    return frame


def paste_detailed_patch(frame: np.ndarray, low: np.ndarray, detail: np.ndarray, box, small_mask: np.ndarray,
                         sigma: float) -> np.ndarray:
    """Blend a patch that has real detail of its own (the actor's mouth) into `frame` (in place) at the
    int `box`, given as its coarse part `low` and its `detail` (float32, both the size of the box's lower
    half, rows h // 2 to h: the mask never reaches above it): the coarse part replaces the frame's own
    (below `sigma` pixels) through the feathered mask, as `paste_patch` blends; the detail replaces the
    frame's at the mask's half-way line. Cross-fading two different textures over the wide feather
    averages them into a blur (a mouth box half in the feather kept ~0.55 of the source's detail); the
    switch is invisible where both are real skin. Pixels outside the mask stay as they were."""
    x1, y1, x2, y2 = (int(v) for v in box)
    h, w = y2 - y1, x2 - x1
    half = h // 2
    weight = cv2.resize(small_mask, (w, h), interpolation=cv2.INTER_LINEAR)[half:]
    left, top, width, height = cv2.boundingRect((weight > 0).astype(np.uint8))  # the rest stays as it is
    if not width or not height:
        return frame
    rows, cols = slice(top, top + height), slice(left, left + width)
    weight = weight[rows, cols]
    core = cv2.GaussianBlur((weight >= 0.5).astype(np.float32), (0, 0), 1.0) * (weight > 0)
    crop = frame[y1 + half:y2, x1:x2]
    # the frame's coarse part, blurred over the rectangle and the blur's reach around it only (the
    # frame above the box's middle too: it is the mouth's surroundings, not the patch's)
    reach = int(np.ceil(3 * sigma))
    r0, c0 = max(top - reach, -half), max(left - reach, 0)
    around = frame[y1 + half + r0:y1 + half + min(top + height + reach, h - half),
                   x1 + c0:x1 + min(left + width + reach, w)].astype(np.float32)
    inner = slice(top - r0, top - r0 + height), slice(left - c0, left - c0 + width)
    base_low = cv2.GaussianBlur(around, (0, 0), sigma)[inner]
    base = around[inner]
    # base + weight (low - base_low) + core (detail - base + base_low), in place: one temporary, not six
    out = np.subtract(low[rows, cols], base_low)
    out *= weight[..., None]
    real = np.subtract(detail[rows, cols], base)
    real += base_low
    real *= core[..., None]
    out += real
    out += base
    out += 0.5
    crop[rows, cols] = np.clip(out, 0, 255, out=out).astype(np.uint8)
    return frame
