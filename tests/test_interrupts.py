"""Interrupting `python main.py render`: a SIGINT, SIGTERM or SIGHUP at any moment ends the run
with exit status 128 + the signal's number and "cancelled; nothing was written", and leaves
nothing at the output path and no temp file beside it. A run killed outright (kill -9) cannot
clean up: the next run that writes to that folder sweeps what it left, and nothing else.

The CLI runs in a session of its own, and signals go to its whole process group, as Ctrl-C in
a terminal does. Renders are of the demo portrait with a tiny random-weight generator.
To land a signal inside the writer's close or the mux, LIPSMITH_FFMPEG points at a wrapper
around the real ffmpeg that marks when it reaches a stage and then holds it open.
"""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from core.atomic import signals_as_interrupts, temp_beside
from core.ffmpeg import ffmpeg_exe
from core.models.wav2lip import GeneratorDims, Wav2Lip
from core.video import VideoWriter
from core.weights import save_weights

pytestmark = pytest.mark.skipif(os.name != "posix", reason="process groups and POSIX signals")

REPO = Path(__file__).resolve().parents[1]
PORTRAIT = REPO / "resources" / "demo" / "portrait.png"
SPEECH = REPO / "resources" / "demo" / "speech.wav"
CANCELLED = "cancelled; nothing was written"

# Marks the stage it reaches in $HOLD_MARKS; holds the stage named in $HOLD for a minute:
# "close" after the encoder has finished (the writer waits for it), "mux" before muxing,
# "score" before reading the finished output's audio to score it.
WRAPPER = """#!{python}
import os, subprocess, sys, time
real, hold, marks = {real!r}, os.environ.get("HOLD"), os.environ["HOLD_MARKS"]
stage = ("encode" if "rawvideo" in sys.argv else "mux" if "copy" in sys.argv
         else "score" if os.environ["OUTPUT"] in sys.argv else "other")
if stage == "encode" and hold == "close":
    status = subprocess.call([real, *sys.argv[1:]])
    open(os.path.join(marks, "close"), "w").close()
    time.sleep(60)
    sys.exit(status)
if stage == hold:
    open(os.path.join(marks, stage), "w").close()
    time.sleep(60)
os.execv(real, [real, *sys.argv[1:]])
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("interrupts") / "tiny_generator.safetensors"
    save_weights(Wav2Lip(GeneratorDims(width=0.25)), path)
    return path


@pytest.fixture(scope="module")
def wrapper(tmp_path_factory):
    path = tmp_path_factory.mktemp("wrapper") / "ffmpeg"
    path.write_text(WRAPPER.format(python=sys.executable, real=ffmpeg_exe()))
    path.chmod(0o755)
    return path


def default_signals():
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


class Run:
    """`main.py render` of 3 s of the demo portrait into an empty folder, in its own session."""

    def __init__(self, tmp_path, checkpoint, wrapper=None, hold=None, score=False):
        self.out_dir = tmp_path / "out"
        self.marks = tmp_path / "marks"
        self.out_dir.mkdir()
        self.marks.mkdir()
        self.output = self.out_dir / "out.mp4"
        env = dict(os.environ, HOLD_MARKS=str(self.marks), HOLD=hold or "", OUTPUT=str(self.output))
        if wrapper is not None:
            env["LIPSMITH_FFMPEG"] = str(wrapper)
        cmd = [sys.executable, "main.py", "render", str(PORTRAIT), str(SPEECH), "-o", str(self.output),
               "--checkpoint", str(checkpoint), "--cache-dir", str(tmp_path / "cache"), "--to", "3",
               "--preset", "ultrafast", *([] if score else ["--no-score"])]
        # the stop signals at their defaults, as in a terminal: pytest run as a background job
        # (`&`) ignores SIGINT, and the CLI would inherit that (and rightly leave it ignored)
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True, preexec_fn=default_signals,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.err = b""
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self):
        while chunk := os.read(self.proc.stderr.fileno(), 4096):
            self.err += chunk

    def wait_for(self, what, condition, timeout=90.0):
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.proc.poll() is None, f"exited ({self.proc.returncode}) before {what}: {self.err.decode()}"
            assert time.monotonic() < deadline, f"no {what} after {timeout} s"
            time.sleep(0.005)

    def temps(self) -> list:
        return [name for name in os.listdir(self.out_dir) if name != self.output.name]

    def writing(self) -> bool:
        """The writer's temps are there (not just the probe that checks the folder is writable)."""
        return any(".part" in name for name in self.temps())

    def signal_group(self, signum):
        os.killpg(self.proc.pid, signum)

    def finish(self) -> tuple:
        self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode, self.err.decode("utf-8", errors="replace")


@pytest.fixture
def start(tmp_path, checkpoint):
    """Start the CLI (Run's options); one still running when the test ends is killed."""
    runs = []

    def start(**options) -> Run:
        runs.append(Run(tmp_path, checkpoint, **options))
        return runs[-1]

    yield start
    for run in runs:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
        run.finish()


def assert_cancelled(run: Run, signum):
    code, err = run.finish()
    assert code == 128 + signum, (code, err)
    assert err.strip().splitlines()[-1] == CANCELLED, err
    assert os.listdir(run.out_dir) == [], "left behind: " + ", ".join(os.listdir(run.out_dir))


@pytest.mark.slow
def test_ctrl_c_while_loading(start):
    run = start()
    run.wait_for("progress", lambda: b"detect" in run.err)  # the model is loaded, faces are being found
    run.signal_group(signal.SIGINT)
    assert_cancelled(run, signal.SIGINT)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_while_encoding(start, signum):
    run = start()
    run.wait_for("the writer", run.writing)
    time.sleep(0.5)  # frames are flowing into ffmpeg
    run.signal_group(signum)
    assert_cancelled(run, signum)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP])
def test_signal_while_the_encoder_finishes(start, wrapper, signum):
    run = start(wrapper=wrapper, hold="close")
    run.wait_for("the end of encoding", lambda: (run.marks / "close").exists())
    run.signal_group(signum)
    assert_cancelled(run, signum)


@pytest.mark.slow
def test_ctrl_c_while_muxing(start, wrapper):
    run = start(wrapper=wrapper, hold="mux")
    run.wait_for("the mux", lambda: (run.marks / "mux").exists())
    run.signal_group(signal.SIGINT)
    assert_cancelled(run, signal.SIGINT)


@pytest.fixture
def signal_defaults():
    """SIGINT, SIGTERM and SIGHUP at their defaults for the test, whatever pytest inherited."""
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    default_signals()
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.mark.slow
def test_ctrl_c_while_scoring_says_the_output_was_written(start, wrapper):
    run = start(wrapper=wrapper, hold="score", score=True)
    run.wait_for("scoring", lambda: (run.marks / "score").exists())
    run.signal_group(signal.SIGINT)
    code, err = run.finish()
    assert code == 130, (code, err)
    assert err.strip().splitlines()[-1] == f"cancelled; {run.output} was written", err
    assert os.listdir(run.out_dir) == [run.output.name]


def test_a_signal_swallowed_on_the_way_still_stops_the_output(tmp_path, signal_defaults):
    """A Ctrl-C raised inside a generator that is being closed is printed and dropped by Python
    ("Exception ignored in generator"); the writer must still not put the output in place."""
    output = tmp_path / "out.mp4"
    with signals_as_interrupts():
        writer = VideoWriter(output, 64, 64, 25, preset="ultrafast")
        writer.write(np.zeros((64, 64, 3), np.uint8))
        try:
            signal.raise_signal(signal.SIGTERM)
        except KeyboardInterrupt:
            pass  # swallowed
        with pytest.raises(KeyboardInterrupt):
            writer.close()
    assert os.listdir(tmp_path) == []


def test_a_signal_ignored_from_the_start_stays_ignored(signal_defaults):
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    with signals_as_interrupts():
        signal.raise_signal(signal.SIGHUP)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN


@pytest.mark.slow
def test_the_next_run_sweeps_what_a_killed_run_left(start):
    run = start()
    run.wait_for("the writer", run.writing)
    run.signal_group(signal.SIGKILL)
    code, _ = run.finish()
    assert code == -signal.SIGKILL
    stale = set(run.temps())
    assert stale, "kill -9 left nothing to sweep"

    foreign = {".out.mp4.1a2b3c4d.part.mp4", ".out.mp4.99999.part.mp4", "out.mp4.part.mp4", ".notes.txt.swp"}
    for name in foreign:
        (run.out_dir / name).write_bytes(b"not ours")
    live = temp_beside(run.output, "part.mp4")  # another render of this (running) process
    with VideoWriter(run.output, 64, 64, 25, preset="ultrafast") as writer:
        writer.write(np.zeros((64, 64, 3), np.uint8))
    assert set(os.listdir(run.out_dir)) == foreign | {live.name, run.output.name}
    live.unlink()
