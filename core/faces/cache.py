"""Per-video detection cache: raw detections + scene-cut scores in one .npz (no pickle).

Key = content fingerprint of the video file (size + SHA-256 of its first, middle and last
MiB) + a digest of the detector identity (name, parameters, weights id) + the cache format.
Files are written atomically (temp file in the same folder, fsync, rename), so a crash or
a cancelled job never leaves a half-written entry that a later run would trust; an entry
damaged some other way (a disk error, a copy cut short) is a miss, logged with its name.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from core.atomic import atomic_write
from core.errors import MediaError

CACHE_FORMAT = 2  # 2: detections of frame ranges, with the mask of the frames detected
CHUNK = 1 << 20

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """`$LIPSMITH_CACHE/faces` when that variable is set, else `~/.cache/lipsmith/faces`."""
    root = os.environ.get("LIPSMITH_CACHE")
    root = Path(root).expanduser() if root else Path.home() / ".cache" / "lipsmith"
    return root / "faces"


def file_fingerprint(path, chunk: int = CHUNK) -> str:
    """Fast content hash: file size + SHA-256 of the first, middle and last `chunk` bytes.
    Renaming or touching the file keeps the key; re-encoding it changes it."""
    path = Path(path)
    try:
        size = path.stat().st_size
        h = hashlib.sha256(f"lipsmith-fp1:{size}:".encode())
        with open(path, "rb") as f:
            if size <= 3 * chunk:
                h.update(f.read())
            else:
                for off in (0, (size - chunk) // 2, size - chunk):
                    f.seek(off)
                    h.update(f.read(chunk))
    except OSError as e:
        raise MediaError(path, f"cannot read file for hashing: {e.strerror or e}") from e
    return h.hexdigest()


def cache_path(cache_dir, fingerprint: str, detector_key: str) -> Path:
    return Path(cache_dir) / f"{fingerprint[:32]}-{detector_key[:16]}-v{CACHE_FORMAT}.npz"


def save_npz_atomic(path, arrays: dict) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: given a name, np.savez would append ".npz"
            np.savez(f, **arrays)

    atomic_write(path, write)


def load_npz(path) -> dict:
    """All arrays of an .npz (pickle refused)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def read_cache_entry(path, from_arrays, what: str = "face-detection", redo: str = "detecting the faces again"):
    """`from_arrays(arrays)` of the cache entry at `path`; None when there is none, or when it
    cannot be read (damaged, truncated, written by other code), which is logged naming the file
    (a `what` cache entry; `redo` is what the caller does instead): the caller computes the data
    again and its save replaces the entry."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return from_arrays(load_npz(path))
    except Exception as e:  # noqa: BLE001 - an entry is disposable: whatever broke it, computing again mends it
        log.warning("%s: unreadable %s cache entry (%s: %s); %s", path, what, type(e).__name__, e, redo)
        return None


def json_array(obj) -> np.ndarray:
    """A JSON document as a 0-d unicode array (loads without pickle)."""
    return np.array(json.dumps(obj, sort_keys=True, default=str))


def from_json_array(a) -> dict:
    return json.loads(str(a[()] if getattr(a, "ndim", 0) == 0 else a))


class NpzRecord:
    """save / load for classes that convert to and from a dict of arrays (no pickle)."""

    def save(self, path) -> None:
        save_npz_atomic(path, self.to_arrays())

    @classmethod
    def load(cls, path):
        return cls.from_arrays(load_npz(path))
