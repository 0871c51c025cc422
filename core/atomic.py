"""File writes that a crash or a kill cannot leave half done, and file hashes."""
import contextlib
import hashlib
import os
import signal
import tempfile
import threading
from pathlib import Path


def atomic_write(path, write) -> None:
    """Call `write(tmp_path)` on a temp file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 (and some writers make a new file): the usual mode
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_files(*paths):
    """Replace several files together (a checkpoint and its sidecar): yields one temp path
    beside each target. The body writes them all; then each is fsynced, and only then are
    they renamed over their targets, in order, with Ctrl-C held back until the last rename.
    An error or a Ctrl-C while writing (a full disk) removes the temps and leaves every old
    file as it was, so a file and its sidecar never end up from two different saves."""
    targets = [Path(p) for p in paths]
    temps = []
    try:
        for path in targets:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            temps.append(tmp)
        yield tuple(temps)
        for tmp in temps:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 (safetensors too): the usual mode
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        with _sigint_deferred():
            for tmp, path in zip(temps, targets):
                os.replace(tmp, path)
    except BaseException:
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _sigint_deferred():
    """Hold a Ctrl-C (SIGINT) back until the block is done, then raise it (main thread only)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def atomic_write_text(path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
