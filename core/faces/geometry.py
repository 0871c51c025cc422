"""Crop geometry: pads, clamping, the 96x96 face crop."""
from __future__ import annotations

import math

import cv2
import numpy as np

from core.hparams import HP


def iou(a, b) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (M, 4) with every box in b (N, 4) -> (M, N)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)[:, None, :]
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area = lambda x: np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def padded_box(box, frame_size, pads=HP.pads):
    """The Wav2Lip crop: (x1 - left, y1 - top, x2 + right, y2 + bottom), rounded to whole
    pixels (outward) and clamped to the frame. pads = (top, bottom, left, right) in pixels;
    frame_size = (width, height). Returns an int tuple with x2/y2 exclusive and at least one
    pixel of width and height, or None for a missing (NaN) box."""
    box = np.asarray(box, dtype=np.float64)
    if box.shape != (4,) or not np.all(np.isfinite(box)):
        return None
    top, bottom, left, right = pads
    w, h = int(frame_size[0]), int(frame_size[1])
    x1 = min(max(0, math.floor(box[0] - left)), w - 1)
    y1 = min(max(0, math.floor(box[1] - top)), h - 1)
    x2 = max(min(w, math.ceil(box[2] + right)), x1 + 1)
    y2 = max(min(h, math.ceil(box[3] + bottom)), y1 + 1)
    return (int(x1), int(y1), int(x2), int(y2))


def crop_face(frame: np.ndarray, box, size: int = HP.img_size, pads=(0, 0, 0, 0)):
    """Cut `box` (+ pads, clamped to the frame) out of `frame` and resize it to size x size.
    Returns (crop BGR uint8 (size, size, 3), box_int (x1, y1, x2, y2)). Shrinking uses
    INTER_AREA (no aliasing on 4K faces), enlarging INTER_LINEAR. Raises ValueError for a
    missing box: the caller passes such frames through unchanged."""
    h, w = frame.shape[:2]
    b = padded_box(box, (w, h), pads)
    if b is None:
        raise ValueError("no face box for this frame")
    x1, y1, x2, y2 = b
    patch = frame[y1:y2, x1:x2]
    interp = cv2.INTER_AREA if (x2 - x1) > size or (y2 - y1) > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp), b
