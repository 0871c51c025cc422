"""File writes that a crash or a kill cannot leave half done, temp files that do not outlive
their run, signals that end a run as cleanly as Ctrl-C, and file hashes."""
import contextlib
import hashlib
import logging
import os
import re
import signal
import socket
import tempfile
import threading
import uuid
from pathlib import Path

log = logging.getLogger(__name__)


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
    they renamed over their targets, in order, with signals held back until the last rename.
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
        with signals_held():
            for tmp, path in zip(temps, targets):
                os.replace(tmp, path)
    except BaseException:
        for tmp in temps:
            Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- signals

# The signals that ask a run to stop: Ctrl-C, `kill`, and a closed terminal (POSIX only).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
_received: list = []  # the stop signals received under signals_as_interrupts(), in order


class Interrupted(KeyboardInterrupt):
    """A stop signal raised as Ctrl-C is, so that every `finally` and abort runs for it too."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum, frame):
    _received.append(signum)
    if len(_received) == 1:  # repeats are only noted: they must not cut the first one's clean-up short
        raise Interrupted(signum)


@contextlib.contextmanager
def signals_as_interrupts():
    """While the block runs, SIGINT, SIGTERM and SIGHUP raise `Interrupted` (the command line's
    hook: a job's clean-up runs whichever way it is stopped). One ignored when we started stays
    ignored: `nohup` ignores SIGHUP, a shell's background job SIGINT. Main thread only."""
    previous = {signum: signal.signal(signum, _interrupt) for signum in STOP_SIGNALS
                if signal.getsignal(signum) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _received.clear()


def interrupted() -> int | None:
    """The first stop signal received under signals_as_interrupts(), else None. Its exception may
    have been lost on the way (Python drops one raised in a generator being finalised), so whoever
    is about to commit work asks this too."""
    return _received[0] if _received else None


def interrupted_status() -> int:
    """The exit status of a run that a stop signal ended: 128 + its number, as a shell reports a
    process the signal killed (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP). A KeyboardInterrupt raised
    outside signals_as_interrupts() was a Ctrl-C."""
    return 128 + (interrupted() or signal.SIGINT)


@contextlib.contextmanager
def signals_held():
    """Hold the stop signals back until the block is done, then deliver them (main thread only;
    elsewhere signals never run handlers). Yields the list of signals held so far."""
    held = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = {signum: signal.signal(signum, lambda signum, frame: held.append(signum))
                for signum in STOP_SIGNALS if signal.getsignal(signum) not in (signal.SIG_IGN, None)}
    try:
        yield held
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)


# --------------------------------------------------------------------------- temp files beside an output

# `.NAME.lipsmith-PID-HOST-RANDOM.KIND`: hidden, and saying who made it, so that the temps of a
# run killed outright (kill -9, a power cut) can be told from a live run's and swept later.
_TEMP_NAME = re.compile(r"\..+\.lipsmith-(?P<pid>\d+)-(?P<host>[0-9a-f]{6})-[0-9a-f]{8}\..+")
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def temp_beside(path, kind: str) -> Path:
    """Create an empty temp file beside `path`, named for this process, and return its path.
    `kind` ends the name (`part.mp4`): ffmpeg picks a container by the suffix."""
    path = Path(path)
    temp = path.parent / f".{path.name}.lipsmith-{os.getpid()}-{_HOST}-{uuid.uuid4().hex[:8]}.{kind}"
    open(temp, "xb").close()
    return temp


def sweep_stale_temps(folder) -> None:
    """Remove the temps (temp_beside) in `folder` whose process is gone: a run killed outright
    leaves them. Another host's temps (a shared folder), a live process's, and any file not
    named by temp_beside are left alone."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = _TEMP_NAME.fullmatch(name)
        if match is None or match["host"] != _HOST:
            continue
        pid = int(match["pid"])
        if pid == os.getpid() or _process_exists(pid):
            continue
        try:
            (Path(folder) / name).unlink()
            log.info("removed %s, left by a run that was killed", Path(folder) / name)
        except OSError:  # gone already (another run swept it), or not ours to remove
            pass


def _process_exists(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() == 5  # access denied: it exists
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return not ok or code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


# --------------------------------------------------------------------------- small writes


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
