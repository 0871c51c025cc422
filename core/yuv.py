"""Frames as the decoder gives them and the encoder takes them: 8-bit YUV 4:2:0, with BGR only
where a face is redrawn.

A render changes one box of each frame. Converting the whole frame to BGR on decode and back in
the encoder (swscale, accurate rounding) cost ~7.5 ms and ~4 ms of a 720p frame, more than the
bundled generator itself, and moved every untouched pixel by up to a level. Kept in YUV, the rest
of the picture goes from the decoder to the encoder bit for bit; only the box is converted, with the
matrix and range the output is tagged with, and only the pixels the blend changed are written back.
"""
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

# Kr, Kb of each YUV matrix, by ffmpeg's names (core.video.Colour.matrix)
LUMA_WEIGHTS = {"bt709": (0.2126, 0.0722), "smpte170m": (0.299, 0.114), "bt470bg": (0.299, 0.114),
                "smpte240m": (0.212, 0.087), "fcc": (0.30, 0.11), "bt2020nc": (0.2627, 0.0593)}


@dataclass(frozen=True, eq=False)
class YuvMatrix:
    """Affine 3×4 maps between 8-bit YUV and 8-bit BGR codes (cv2.transform's form)."""
    to_bgr: np.ndarray  # on (Y, U, V)
    to_yuv: np.ndarray  # on (B, G, R)


@lru_cache(maxsize=None)
def yuv_matrix(matrix: str = "bt709", full_range: bool = False) -> YuvMatrix:
    """The conversions of `matrix` (ffmpeg's name) at limited ("tv") or full ("pc") range."""
    if matrix not in LUMA_WEIGHTS:
        raise ValueError(f"unknown YUV matrix {matrix!r}: one of {', '.join(LUMA_WEIGHTS)}")
    kr, kb = LUMA_WEIGHTS[matrix]
    kg = 1.0 - kr - kb
    # R, G, B in [0, 1] from Y in [0, 1] and Cb, Cr in [-0.5, 0.5]
    rgb_from_ycc = np.array([[1.0, 0.0, 2 * (1 - kr)],
                             [1.0, -2 * kb * (1 - kb) / kg, -2 * kr * (1 - kr) / kg],
                             [1.0, 2 * (1 - kb), 0.0]])
    y_scale, c_scale, y_zero = (255.0, 255.0, 0.0) if full_range else (219.0, 224.0, 16.0)
    codes = np.diag([y_scale, c_scale, c_scale])  # YUV codes = zero + codes @ (Y, Cb, Cr)
    zero = np.array([y_zero, 128.0, 128.0])
    rgb = 255.0 * rgb_from_ycc @ np.linalg.inv(codes)
    yuv = codes @ np.linalg.inv(rgb_from_ycc) / 255.0
    to_rgb = np.hstack([rgb, (-rgb @ zero)[:, None]])
    to_yuv = np.hstack([yuv[:, ::-1], zero[:, None]])  # columns B, G, R
    return YuvMatrix(np.ascontiguousarray(to_rgb[::-1], np.float32), np.ascontiguousarray(to_yuv, np.float32))


def even_box(box, width: int, height: int) -> tuple:
    """The int `box` grown to even corners (whole 2×2 chroma blocks), inside a width × height frame."""
    x1, y1, x2, y2 = (int(v) for v in box)
    return (max(x1 // 2 * 2, 0), max(y1 // 2 * 2, 0), min(-(-x2 // 2) * 2, width), min(-(-y2 // 2) * 2, height))


class YuvFrame:
    """One 8-bit 4:2:0 picture with even sides: `data` (height · 3/2, width) uint8, planar I420 (Y, then
    U, then V), exactly what ffmpeg's rawvideo yuv420p takes; `matrix` converts its boxes to BGR."""

    def __init__(self, data: np.ndarray, matrix: YuvMatrix):
        rows, self.width = data.shape
        self.height = rows * 2 // 3
        if data.dtype != np.uint8 or self.width % 2 or self.height % 2 or rows != self.height * 3 // 2:
            raise ValueError(f"not an even-sided I420 frame: {data.shape} {data.dtype}")
        self.data = data
        self.matrix = matrix

    @classmethod
    def from_planes(cls, y, u, v, matrix: YuvMatrix) -> "YuvFrame":
        h, w = y.shape[0] // 2 * 2, y.shape[1] // 2 * 2  # an odd last row or column is dropped
        data = np.empty((h * 3 // 2, w), np.uint8)
        data[:h] = y[:h, :w]
        data[h:].reshape(2, h // 2, w // 2)[:] = (u[:h // 2, :w // 2], v[:h // 2, :w // 2])
        return cls(data, matrix)

    @classmethod
    def from_bgr(cls, image: np.ndarray, matrix: YuvMatrix) -> "YuvFrame":
        h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
        y, u, v = _to_yuv(image[:h, :w], matrix)
        return cls.from_planes(y, u, v, matrix)

    def __repr__(self) -> str:
        return f"YuvFrame({self.width}x{self.height})"

    def planes(self):
        """(Y, U, V) views into `data`."""
        h, w = self.height, self.width
        chroma = self.data[h:].reshape(2, h // 2, w // 2)
        return self.data[:h], chroma[0], chroma[1]

    def copy(self) -> "YuvFrame":
        return YuvFrame(self.data.copy(), self.matrix)

    def to_bgr(self) -> np.ndarray:
        return self.bgr((0, 0, self.width, self.height))

    def bgr(self, box) -> np.ndarray:
        """A BGR copy of the even `box` (x1, y1, x2, y2); chroma bilinear between sample centres."""
        x1, y1, x2, y2 = box
        y, u, v = self.planes()
        size = (x2 - x1, y2 - y1)
        u = cv2.resize(u[y1 // 2:y2 // 2, x1 // 2:x2 // 2], size, interpolation=cv2.INTER_LINEAR)
        v = cv2.resize(v[y1 // 2:y2 // 2, x1 // 2:x2 // 2], size, interpolation=cv2.INTER_LINEAR)
        return cv2.transform(cv2.merge([y[y1:y2, x1:x2], u, v]), self.matrix.to_bgr)

    def put_bgr(self, box, image: np.ndarray, changed: np.ndarray):
        """Write the BGR `image` of the even `box` back, where `changed` (h, w bool) is set only: luma
        per pixel, chroma per 2×2 block with any changed pixel. Everything else keeps its own codes."""
        left, top, width, height = cv2.boundingRect(changed.astype(np.uint8))
        if not width or not height:
            return
        left, top, right, bottom = even_box((left, top, left + width, top + height), *changed.shape[::-1])
        image, changed = image[top:bottom, left:right], changed[top:bottom, left:right]
        x1, y1 = box[0] + left, box[1] + top
        x2, y2 = x1 + right - left, y1 + bottom - top
        y, u, v = self.planes()
        new_y, new_u, new_v = _to_yuv(np.ascontiguousarray(image), self.matrix)
        np.copyto(y[y1:y2, x1:x2], new_y, where=changed)
        half = ((x2 - x1) // 2, (y2 - y1) // 2)
        blocks = cv2.resize(changed.astype(np.float32), half, interpolation=cv2.INTER_AREA) > 0  # 1 of 4: 0.25
        np.copyto(u[y1 // 2:y2 // 2, x1 // 2:x2 // 2], new_u, where=blocks)
        np.copyto(v[y1 // 2:y2 // 2, x1 // 2:x2 // 2], new_v, where=blocks)


def _to_yuv(image: np.ndarray, matrix: YuvMatrix) -> tuple:
    """(Y, U, V) planes of an even-sided BGR image, chroma averaged over each 2×2 block."""
    yuv = cv2.transform(image, matrix.to_yuv)
    h, w = image.shape[:2]
    y, u, v = cv2.split(yuv)
    half = (w // 2, h // 2)
    return (y, cv2.resize(u, half, interpolation=cv2.INTER_AREA), cv2.resize(v, half, interpolation=cv2.INTER_AREA))
