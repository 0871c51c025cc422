"""Lip aperture of every prepared frame, measured by MediaPipe Face Mesh (a training-time teacher).

    <venv with mediapipe==0.10.14>/bin/python -m training.lip_aperture --data PREPARED
    <venv with mediapipe==0.10.14>/bin/python -m training.lip_aperture --videos A.mp4 B.mp4 -o OUT.npz

Writes PREPARED/lip_aperture.npz: one float32 array per clip key, the inner-lip gap (landmarks
13 and 14) over the mouth width (61 and 291) for frame i, NaN where no face mesh was found.
`train-expert --aux aperture` makes the face embedding predict it: a clean, visual version of
"the mouth is open", which points the expert's face encoder at the lips. With --videos it
measures whole video frames instead (arrays "0", "1", ... in the order given): `evaluate
--aperture-python` uses it as a judge of lip-sync that owes nothing to our own expert.

Why a separate interpreter: mediapipe 0.10.14 is the last release whose wheel ships the face
mesh model (later ones download it), and it pins numpy < 2 and protobuf < 5, so it lives in
its own venv (`pip install --no-deps mediapipe==0.10.14 "numpy<2" "protobuf<5" absl-py attrs
flatbuffers opencv-python-headless matplotlib`). It is never needed at run time. This script
imports nothing else from Lipsmith for the same reason.
"""
import argparse
import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np

UPPER, LOWER, LEFT, RIGHT = 13, 14, 61, 291  # Face Mesh indices: inner lips, mouth corners
_FRAME = re.compile(r"^(\d+)\.jpg$")


def clip_keys(data: Path) -> list:
    keys = []
    for name in ("train", "val"):
        path = data / "filelists" / f"{name}.txt"
        if path.is_file():
            keys += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return keys


def aperture(mesh, image_bgr: np.ndarray) -> float:
    found = mesh.process(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)).multi_face_landmarks
    if not found:
        return float("nan")
    p = np.array([(q.x, q.y) for q in found[0].landmark])
    width = np.linalg.norm(p[LEFT] - p[RIGHT])
    return float(np.linalg.norm(p[UPPER] - p[LOWER]) / width) if width > 0 else float("nan")


def measure(data: Path) -> dict:
    import mediapipe as mp

    out = {}
    keys = clip_keys(data)
    for n, key in enumerate(keys, 1):
        folder = data / key
        count = sum(1 for name in os.listdir(folder) if _FRAME.match(name))
        # video mode: landmarks tracked from frame to frame within the clip
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as mesh:
            values = [aperture(mesh, cv2.imread(str(folder / f"{i}.jpg"))) for i in range(count)]
        out[key] = np.asarray(values, np.float32)
        missing = int(np.isnan(out[key]).sum())
        print(f"[{n}/{len(keys)}] {key}: {count} frames, {missing} without a mesh", flush=True)
    return out


def measure_videos(paths) -> dict:
    import mediapipe as mp

    out = {}
    for n, path in enumerate(paths):
        video = cv2.VideoCapture(str(path))
        if not video.isOpened():
            raise SystemExit(f"lip_aperture: {path}: cannot open the video")
        values = []
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as mesh:
            while True:
                ok, frame = video.read()
                if not ok:
                    break
                values.append(aperture(mesh, frame))
        video.release()
        out[str(n)] = np.asarray(values, np.float32)
        print(f"[{n + 1}/{len(paths)}] {path}: {len(values)} frames", flush=True)
    return out


def save(result: dict, path: Path):
    tmp = path.with_name(path.stem + ".tmp.npz")  # np.savez appends .npz to other names
    np.savez(tmp, **result)
    os.replace(tmp, path)
    print(f"wrote {path} ({len(result)} arrays)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="prepared dataset root")
    source.add_argument("--videos", nargs="+", help="video files, measured frame by frame")
    parser.add_argument("-o", "--output", help="the .npz to write with --videos")
    args = parser.parse_args(argv)
    if args.videos:
        if not args.output:
            parser.error("--videos needs -o OUT.npz")
        save(measure_videos(args.videos), Path(args.output))
    else:
        save(measure(Path(args.data)), Path(args.data) / "lip_aperture.npz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
