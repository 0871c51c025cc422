"""Who is who across prepared clips: face-identity clusters for the speaker split (a training-time tool).

    <venv with dlib-bin and face-recognition-models>/bin/python -m training.identity --data PREPARED

Writes PREPARED/identities.json: {"clips": {clip key: "face:N"}, ...}. `prepare` (write_index)
reads it: two clips whose faces cluster together are one speaker, on top of the hand-made
SPEAKER_GROUPS, so no validation speaker appears in training. That matters for sets without
speaker labels: the Arabic news clips are numbered with the same anchors recurring across the whole
range, and LRS2 programmes share presenters.

Each clip is described by dlib's ResNet face descriptor (128-d; two photos of one person are
usually < 0.6 apart), averaged over three of its frames (kept in DATA/identity_vectors.npz, so a
new --threshold costs seconds); clusters are merged while their members are on average closer than
--threshold (average linkage; needs scipy). On our 2,633 clips: 0.40 gives 125 identities (26 among
the Arabic anchors, 66 among the LRS2 programmes); looked at, most clusters are one person and the
largest mix a few look-alike anchors (or LRS2's profile faces), which only errs on the safe side;
0.48 merged everyone into 25, single linkage into one. Over-merging only costs validation
variety; under-merging leaks a speaker, so check the clusters' contact sheet (--sheet).

Why a separate interpreter: dlib-bin and face-recognition-models (the model files, shipped in the
wheel) are not dependencies of the product and are never needed at run time. This module imports
nothing else from Lipsmith for the same reason.
"""
import argparse
import concurrent.futures as cf
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from training.lip_shape import clip_keys, frame_count

BOTTOM_PAD = 10 / 192  # prepare's crops carry 10 px of chin pad below the face box (at most 192 px tall)


def descriptor(recognise, landmarks, image_bgr: np.ndarray):
    import dlib

    h, w = image_bgr.shape[:2]
    # the crop is the face box: the recogniser's aligned chip reaches beyond it, and black there
    # makes everyone look alike (different people 0.37-0.42 apart on the Arabic set; with the
    # edges repeated, 0.51 and more, while one person's clips stay within 0.44)
    pad = w // 3
    rgb = cv2.cvtColor(cv2.copyMakeBorder(image_bgr, pad, pad, pad, pad, cv2.BORDER_REPLICATE), cv2.COLOR_BGR2RGB)
    box = dlib.rectangle(pad, pad, pad + w - 1, pad + int(round(h * (1 - BOTTOM_PAD))) - 1)
    return np.asarray(recognise.compute_face_descriptor(rgb, landmarks(rgb, box)), np.float32)


def describe_clip(folder: str) -> np.ndarray:
    """The clip's mean descriptor over three of its frames (first, middle, last), unit length."""
    import dlib
    import face_recognition_models as models

    global _MODELS
    if _MODELS is None:  # once per process
        _MODELS = (dlib.face_recognition_model_v1(models.face_recognition_model_location()),
                   dlib.shape_predictor(models.pose_predictor_five_point_model_location()))
    folder = Path(folder)
    count = frame_count(folder)
    picks = sorted({0, count // 2, count - 1})
    mean = np.mean([descriptor(*_MODELS, cv2.imread(str(folder / f"{i}.jpg"))) for i in picks], axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-6)


_MODELS = None


def describe_clips(data: Path, keys: list, workers: int = 1) -> np.ndarray:
    """(clips, 128) descriptors, kept in DATA/identity_vectors.npz and reused for the same clips."""
    cache = data / "identity_vectors.npz"
    if cache.is_file():
        with np.load(cache) as found:
            if found["keys"].tolist() == keys:
                return found["vectors"]
    out = np.zeros((len(keys), 128), np.float32)
    with cf.ProcessPoolExecutor(max_workers=workers) as pool:
        for n, vector in enumerate(pool.map(describe_clip, [str(data / k) for k in keys], chunksize=16)):
            out[n] = vector
            if (n + 1) % 200 == 0 or n + 1 == len(keys):
                print(f"[{n + 1}/{len(keys)}] described", flush=True)
    np.savez(data / "identity_vectors.tmp.npz", keys=np.array(keys), vectors=out)
    os.replace(data / "identity_vectors.tmp.npz", cache)
    return out


def cluster(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Average-linkage clusters: groups whose members are on average closer than `threshold`
    (Euclidean). A label per row, numbered by first appearance. Single linkage chained all 2,633
    clips of our set into one cluster through look-alikes at 0.48; the average does not chain."""
    if len(vectors) < 2:
        return np.zeros(len(vectors), int)
    from scipy.cluster.hierarchy import fcluster, linkage

    labels = fcluster(linkage(vectors, method="average", metric="euclidean"), t=threshold, criterion="distance")
    numbers = {}
    return np.array([numbers.setdefault(label, len(numbers)) for label in labels])


def contact_sheet(data: Path, keys: list, labels: np.ndarray, path: Path, per_row: int = 12, rows: int = 40):
    """The biggest clusters, one row each: up to `per_row` clips' middle frames."""
    sizes = np.bincount(labels)
    tiles = []
    for label in np.argsort(-sizes, kind="stable")[:rows]:
        members = [k for k, lab in zip(keys, labels) if lab == label][:per_row]
        row = []
        for key in members:
            folder = data / key
            count = frame_count(folder)
            row.append(cv2.resize(cv2.imread(str(folder / f"{count // 2}.jpg")), (64, 64)))
        row += [np.zeros((64, 64, 3), np.uint8)] * (per_row - len(row))
        line = np.hstack(row)
        cv2.putText(line, f"{sizes[label]}", (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1)
        tiles.append(line)
    cv2.imwrite(str(path), np.vstack(tiles))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="prepared dataset root")
    parser.add_argument("--threshold", type=float, default=0.40, help="merge clusters closer than this on average (default 0.40)")
    parser.add_argument("--sheet", help="write a PNG of the biggest clusters here")
    parser.add_argument("--workers", type=int, default=1, help="processes describing clips (default 1)")
    args = parser.parse_args(argv)
    data = Path(args.data)
    keys = clip_keys(data)
    vectors = describe_clips(data, keys, max(1, args.workers))
    labels = cluster(vectors, args.threshold)
    result = {"model": "dlib_face_recognition_resnet_model_v1", "threshold": args.threshold,
              "clips": {key: f"face:{label}" for key, label in zip(keys, labels)}}
    tmp = data / ".identities.json.tmp"
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, data / "identities.json")
    sizes = np.bincount(labels)
    print(f"{len(keys)} clips -> {len(sizes)} identities (largest {sizes.max()} clips); wrote {data / 'identities.json'}")
    if args.sheet:
        contact_sheet(data, keys, labels, Path(args.sheet))
    return 0


if __name__ == "__main__":
    sys.exit(main())
