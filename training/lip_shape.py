"""Lip shape of every prepared frame, measured by MediaPipe Face Mesh (a training-time teacher).

    <venv with mediapipe==0.10.14>/bin/python -m training.lip_shape --data PREPARED [--workers 2]
    <venv with mediapipe==0.10.14>/bin/python -m training.lip_shape --videos A.mp4 B.mp4 -o OUT.npz

Writes PREPARED/lip_shape.npz: one float32 array (frames, 85) per clip key, NaN rows where no
face mesh was found. Columns (`COLUMNS`), all in the face's own frame — eye line horizontal,
origin the mouth centre, one unit the distance between the outer eye corners, so neither the
crop's size nor a head tilt changes them:
  aperture    inner-lip gap over mouth width (13-14 over 61-291): "the mouth is open"
  inner_gap   inner-lip gap (13-14)           outer_gap   outer-lip gap (0-17)
  width       mouth-corner distance (61-291)  protrusion  how far the lip middles stand in front
                                                          of the corners (Face Mesh depth)
Protrusion grows when the lips round (middles forward) and when a smile draws the corners back:
read it with the width, which narrows in the first and widens in the second (looked at on
prepared frames: the largest values of talks/ were broad smiles, of the Arabic set rounded lips).
  x0 y0 .. x39 y39  the 20 outer and 20 inner lip-contour points (`LIP_POINTS`)
`shape_targets()` turns them into the expert's lip-shape teacher (the four gaps and widths and a
few PCA coefficients of the contour, fitted on training clips); `train-expert --aux shape` makes
both embeddings predict it, and `offsets --from-aperture` lags the aperture against loudness.
With --videos it measures whole video frames instead (arrays "0", "1", ... in the order given):
`evaluate --aperture-python` uses their aperture as a judge of lip-sync that owes nothing to our
own expert.

Why a separate interpreter: mediapipe 0.10.14 is the last release whose wheel ships the face
mesh model (later ones download it), and it pins numpy < 2 and protobuf < 5, so it lives in
its own venv (`pip install --no-deps mediapipe==0.10.14 "numpy<2" "protobuf<5" absl-py attrs
flatbuffers opencv-python-headless matplotlib`). It is never needed at run time. This module
imports nothing else from Lipsmith for the same reason (the product's interpreter imports it
only for the numpy readers at the bottom).
"""
import argparse
import concurrent.futures as cf
import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np

# Face Mesh indices
UPPER, LOWER, LEFT, RIGHT = 13, 14, 61, 291  # inner lips, mouth corners
OUTER_UPPER, OUTER_LOWER = 0, 17
EYE_RIGHT, EYE_LEFT = 33, 263  # outer eye corners (the subject's right one is on the image's left)
OUTER_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
INNER_LIPS = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
LIP_POINTS = OUTER_LIPS + INNER_LIPS
MEASURES = ("aperture", "inner_gap", "outer_gap", "width", "protrusion")
SHAPE_COMPONENTS = 4  # PCA coefficients of the contour in the teacher
SHAPE_FEATURES = len(MEASURES) - 1 + SHAPE_COMPONENTS  # the teacher: the measures but the aperture, + PCA
COLUMNS = MEASURES + tuple(f"{axis}{n}" for n in range(len(LIP_POINTS)) for axis in "xy")
_FRAME = re.compile(r"^(\d+)\.jpg$")


def clip_keys(data: Path) -> list:
    keys = []
    for name in ("train", "val"):
        path = data / "filelists" / f"{name}.txt"
        if path.is_file():
            keys += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return keys


def frame_count(folder: Path) -> int:
    """Frames 0.jpg .. N-1.jpg of a prepared clip folder."""
    return sum(1 for name in os.listdir(folder) if _FRAME.match(name))


def lip_shape(points: np.ndarray) -> np.ndarray:
    """One frame's COLUMNS from Face Mesh landmarks (468+, 3) in pixels (z on x's scale)."""
    eye = points[EYE_LEFT, :2] - points[EYE_RIGHT, :2]
    unit = float(np.hypot(*eye))
    if unit <= 0:
        return np.full(len(COLUMNS), np.nan, np.float32)
    c, s = eye / unit
    centre = (points[LEFT, :2] + points[RIGHT, :2]) / 2
    rotate = np.array([[c, s], [-s, c]])  # turns the eye line onto the x axis
    face = (points[:, :2] - centre) @ rotate.T / unit
    width = float(np.hypot(*(face[RIGHT] - face[LEFT])))
    inner = float(np.hypot(*(face[LOWER] - face[UPPER])))
    outer = float(np.hypot(*(face[OUTER_LOWER] - face[OUTER_UPPER])))
    # smaller z is nearer the camera: lip middles nearer than the corners = protruding lips
    middles = points[[UPPER, LOWER, OUTER_UPPER, OUTER_LOWER], 2].mean()
    protrusion = float((points[[LEFT, RIGHT], 2].mean() - middles) / unit)
    measures = [inner / width if width > 0 else np.nan, inner, outer, width, protrusion]
    return np.concatenate([measures, face[list(LIP_POINTS)].ravel()]).astype(np.float32)


def measure_frame(mesh, image_bgr: np.ndarray) -> np.ndarray:
    found = mesh.process(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)).multi_face_landmarks
    if not found:
        return np.full(len(COLUMNS), np.nan, np.float32)
    h, w = image_bgr.shape[:2]
    # Face Mesh's x, y are fractions of the width and height and z is on the width's scale
    points = np.array([(q.x * w, q.y * h, q.z * w) for q in found[0].landmark])
    return lip_shape(points)


def measure_clip(folder: str) -> np.ndarray:
    import mediapipe as mp

    folder = Path(folder)
    count = frame_count(folder)
    # video mode: landmarks tracked from frame to frame within the clip
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as mesh:
        rows = [measure_frame(mesh, cv2.imread(str(folder / f"{i}.jpg"))) for i in range(count)]
    return np.stack(rows) if rows else np.zeros((0, len(COLUMNS)), np.float32)


def measure(data: Path, workers: int = 1) -> dict:
    keys = clip_keys(data)
    out = {}
    with cf.ProcessPoolExecutor(max_workers=workers) as pool:
        for n, (key, rows) in enumerate(zip(keys, pool.map(measure_clip, [str(data / k) for k in keys],
                                                           chunksize=8)), 1):
            out[key] = rows
            missing = int(np.isnan(rows[:, 0]).sum())
            if n % 50 == 0 or n == len(keys) or missing:
                print(f"[{n}/{len(keys)}] {key}: {len(rows)} frames, {missing} without a mesh", flush=True)
    return out


def measure_videos(paths) -> dict:
    import mediapipe as mp

    out = {}
    for n, path in enumerate(paths):
        video = cv2.VideoCapture(str(path))
        if not video.isOpened():
            raise SystemExit(f"lip_shape: {path}: cannot open the video")
        rows = []
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as mesh:
            while True:
                ok, frame = video.read()
                if not ok:
                    break
                rows.append(measure_frame(mesh, frame))
        video.release()
        out[str(n)] = np.stack(rows) if rows else np.zeros((0, len(COLUMNS)), np.float32)
        print(f"[{n + 1}/{len(paths)}] {path}: {len(rows)} frames", flush=True)
    return out


def save(result: dict, path: Path):
    tmp = path.with_name(path.stem + ".tmp.npz")  # np.savez appends .npz to other names
    np.savez(tmp, **result)
    os.replace(tmp, path)
    print(f"wrote {path} ({len(result)} arrays)")


# --------------------------------------------------------------------------- readers (numpy only)


def read_lip_shapes(data) -> dict:
    """{clip key: (frames, len(COLUMNS)) float32} from DATA/lip_shape.npz."""
    path = Path(data) / "lip_shape.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run training/lip_shape.py on the prepared data first")
    with np.load(path) as f:
        shapes = {key: f[key] for key in f.files}
    bad = [key for key, rows in shapes.items() if rows.ndim != 2 or rows.shape[1] != len(COLUMNS)]
    if bad:
        raise ValueError(f"{path}: {bad[0]} is not a ({len(COLUMNS)}-column) lip-shape array; measure again")
    return shapes


def contour_basis(shapes: dict, fit_keys, components: int = SHAPE_COMPONENTS) -> tuple:
    """(mean, basis (components, 2·points)): the lip contour's principal components over the
    measured frames of `fit_keys` (training clips) only."""
    contour = slice(len(MEASURES), None)
    fit = np.concatenate([shapes[k][:, contour] for k in fit_keys if k in shapes] or
                         [np.zeros((0, len(COLUMNS) - len(MEASURES)), np.float32)])
    fit = fit[np.isfinite(fit).all(axis=1)]
    if len(fit) <= components:
        raise ValueError(f"too few measured frames ({len(fit)}) to fit {components} lip-shape components")
    mean = fit.mean(axis=0)
    return mean.astype(np.float32), np.linalg.svd(fit - mean, full_matrices=False)[2][:components].astype(np.float32)


def shape_features(rows: np.ndarray, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """(frames, 4 + components): inner gap, outer gap, width, protrusion and the contour's
    coefficients in `basis`; NaN rows stay NaN."""
    contour = rows[:, len(MEASURES):]
    return np.concatenate([rows[:, 1:len(MEASURES)], (contour - mean) @ basis.T], axis=1).astype(np.float32)


def shape_targets(shapes: dict, fit_keys, components: int = SHAPE_COMPONENTS) -> dict:
    """{clip key: (frames, 4 + components)} `shape_features` of every clip, the basis fitted on
    `fit_keys`. Unnormalised: the expert's dataset z-scores each column per clip."""
    mean, basis = contour_basis(shapes, fit_keys, components)
    return {key: shape_features(rows, mean, basis) for key, rows in shapes.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="prepared dataset root")
    source.add_argument("--videos", nargs="+", help="video files, measured frame by frame")
    parser.add_argument("-o", "--output", help="the .npz to write with --videos")
    parser.add_argument("--workers", type=int, default=1, help="processes for --data (default 1)")
    args = parser.parse_args(argv)
    if args.videos:
        if not args.output:
            parser.error("--videos needs -o OUT.npz")
        save(measure_videos(args.videos), Path(args.output))
    else:
        save(measure(Path(args.data), max(1, args.workers)), Path(args.data) / "lip_shape.npz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
