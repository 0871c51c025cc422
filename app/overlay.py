"""What the preview's mask overlay draws, Qt-free: the crop box the renderer cuts around the face
and the blend mask core.blend pastes the generated mouth through, for one source frame.

Computed exactly as `core.blend.composite` does: the mask at the generated crop's size (96 × 96),
landmarks moved into that crop, then scaled onto the box.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.blend import BlendSettings, lower_face_mask
from core.hparams import HP


@dataclass(frozen=True)
class MaskOverlay:
    crop_box: tuple  # (x1, y1, x2, y2) int: the detected face + pads, as the renderer crops it
    face_box: tuple  # (x1, y1, x2, y2) float: the (smoothed) detected face
    mask: np.ndarray  # (HP.img_size, HP.img_size) float32 in [0, 1] over crop_box
    interpolated: bool  # the box was filled in over a short gap, not detected


def mask_overlay(track, index: int, settings: dict) -> MaskOverlay | None:
    """The overlay of source frame `index` under effective `settings` (pads, feather, mask size);
    None where the track has no face (the renderer leaves that frame as it is)."""
    if track is None or not 0 <= index < len(track):
        return None
    crop = track.crop_box(index, tuple(settings["pads"]))
    face = track.box(index)
    if crop is None or face is None:
        return None
    x1, y1, x2, y2 = (int(v) for v in crop)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    size = HP.img_size
    landmarks = track.landmarks_at(index)
    if landmarks is not None:
        landmarks = (np.asarray(landmarks, np.float32) - (x1, y1)) * (size / (x2 - x1), size / (y2 - y1))
    mask = lower_face_mask((0, 0, size, size), landmarks, BlendSettings.from_settings(settings))
    return MaskOverlay((x1, y1, x2, y2), tuple(float(v) for v in face), mask, bool(track.interpolated[index]))
