"""core/memory.py: frame-sized buffers go back to the system once freed."""
import subprocess
import sys

import pytest

from tests.conftest import REPO

# Allocate 100 frame-sized (2 MB) buffers after one was freed (which, left to glibc, raises its
# mmap threshold above 2 MB), free all but the last, and report how much RSS is still held.
PROGRAM = """
import sys
import numpy as np
if sys.argv[1] == "fixed":
    from core.memory import bound_native_heap
    assert bound_native_heap()
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) // 1024
np.ones(2 << 20, np.uint8); base = rss()
arrays = [np.ones(2 << 20, np.uint8) for _ in range(100)]
del arrays[:-1]
print(rss() - base)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc heap tuning")
def test_freed_frame_buffers_are_returned_to_the_system():
    held = {mode: int(subprocess.run([sys.executable, "-c", PROGRAM, mode], cwd=REPO, capture_output=True,
                                     text=True, check=True).stdout) for mode in ("dynamic", "fixed")}
    assert held["dynamic"] > 150  # glibc's default keeps ~200 MB behind the one live buffer ...
    assert held["fixed"] < 20  # ... the fixed threshold returns it
