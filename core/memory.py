"""Native heap tuning for long videos (glibc only; a no-op elsewhere).

glibc serves a large allocation with mmap only while it is above a threshold that it raises
to the size of each mmapped block freed. After the first few decoded 1080p frames (6 MB each)
are freed, every later frame comes from the heap, where decoder, detector and torch threads
fragment it: measured here, face detection of a 10-minute 1080p video grew from 390 MB to
4 GB between frames 1500 and 2400 with torch loaded. Fixing the threshold at 1 MB (which
also turns the adjustment off) keeps frame buffers in mmap, returned to the system on
free: the same pass stays at ~400 MB.
"""
import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
MMAP_THRESHOLD_BYTES = 1 << 20


def bound_native_heap() -> bool:
    """Fix glibc's mmap threshold for this process; True when it was applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
