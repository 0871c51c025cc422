"""The trainers under the conditions of issue 3, on the tiny synthetic set (tests/conftest.py):

* exact resume: N steps in one go and N/2 steps + `--resume` to N end with identical weights
  and optimiser state (expert, offsets objective; generator with the GAN), the evaluation
  schedule falling differently in the two runs;
* DDP: two CPU processes under torchrun (gloo) train the expert and write a checkpoint that a
  single process resumes from;
* Ctrl-C mid-run: exit 130 within seconds, one line naming the checkpoint that stays, which
  loads and resumes; SIGTERM and SIGHUP the same, with their own exit status (143, 129);
* a run folder that cannot be written, and a disk that fills up during a checkpoint: one line
  naming the file and the reason, exit 1, the previous checkpoint whole and loadable.
"""
import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import main
from core.weights import load_model
from training import checkpoint, train_expert

REPO = Path(__file__).resolve().parents[1]
TINY = ["--width", "0.0625", "--eval-batches", "1", "--log-every", "1", "--workers", "0"]
EXPERT = ["train-expert", *TINY, "--batch-size", "16", "--stretch", "8", "--aux-from", "both"]
GENERATOR = ["train-generator", *TINY, "--batch-size", "2", "--gan"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train(command, data, run, *extra):
    return main.main([command[0], "--data", str(data), "--run", str(run), *command[1:], *extra])


def log_of(run):
    return [json.loads(line) for line in (Path(run) / "log.jsonl").read_text().splitlines()]


def state(run):
    """Models and optimisers of RUN/last.safetensors (the RNG aside)."""
    tensors = load_file(str(Path(run) / "last.safetensors"))
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "optim."))}


def subprocess_env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize("command", [EXPERT, GENERATOR], ids=["expert", "generator-gan"])
def test_stop_and_resume_ends_with_the_same_weights_as_one_run(tiny_prepared, tmp_path, command):
    # evaluation every 3 steps: the stopped run also evaluates at step 2, the other one does not
    assert train(command, tiny_prepared, tmp_path / "whole", "--steps", "4", "--eval-every", "3") == 0
    assert train(command, tiny_prepared, tmp_path / "parts", "--steps", "2", "--eval-every", "3") == 0
    assert train(command, tiny_prepared, tmp_path / "parts", "--steps", "4", "--eval-every", "3", "--resume") == 0
    whole, parts = state(tmp_path / "whole"), state(tmp_path / "parts")
    assert whole.keys() == parts.keys() and any(k.startswith("optim.") for k in whole)
    assert all(torch.isfinite(v).all() for v in whole.values() if v.is_floating_point())
    assert [k for k in whole if not torch.equal(whole[k], parts[k])] == []
    assert {"event": "resume", "step": 2} in log_of(tmp_path / "parts")


def test_two_gloo_processes_under_torchrun_train_and_write_a_resumable_checkpoint(tiny_prepared, tmp_path):
    run = tmp_path / "ddp"
    # --run-dir: under torchrun, --run reads as an ambiguous abbreviation of torchrun's --run-path
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(REPO / "main.py"), "train-expert", "--data", str(tiny_prepared), "--run-dir", str(run), *EXPERT[1:],
           "--steps", "3", "--eval-every", "2"]
    done = subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert [r["step"] for r in log_of(run) if "loss" in r] == [1, 2, 3]  # rank 0 logs, once per step
    side = json.loads((run / "last.json").read_text())
    assert side["step"] == 3
    assert load_model(run / "best.safetensors", expect="syncnet").dims.width == 0.0625
    # the DDP checkpoint is an ordinary one: a single process continues it
    assert train(EXPERT, tiny_prepared, run, "--steps", "4", "--eval-every", "2", "--resume") == 0
    assert {"event": "resume", "step": 3} in log_of(run)
    assert json.loads((run / "last.json").read_text())["step"] == 4


def wait_for(what, done, proc, timeout, output):
    """Poll `done()` until it holds; the child ending first, or `timeout` seconds passing, fails
    with `what` and the child's output (and, on a timeout, its Python stacks: see stop_dumping_stacks)."""
    deadline = time.monotonic() + timeout
    while not done():
        if proc.poll() is not None:
            pytest.fail(f"the trainer exited ({proc.returncode}) before {what}:\n{output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout} s; the trainer's stacks then:\n{stop_dumping_stacks(proc, output)}")
        time.sleep(0.02)


def stop_dumping_stacks(proc, output) -> str:
    """SIGABRT: the child's faulthandler (PYTHONFAULTHANDLER) writes every thread's stack to its
    stderr before it dies."""
    proc.send_signal(signal.SIGABRT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return output()


def test_ctrl_c_mid_run_exits_promptly_and_the_last_checkpoint_resumes(tiny_prepared, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, str(REPO / "main.py"), "train-expert", "--data", str(tiny_prepared), "--run", str(run),
           *EXPERT[1:], "--steps", "100000", "--eval-every", "2"]
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"

    def output():
        return f"--- stdout\n{stdout.read_text()[-2000:]}\n--- stderr\n{stderr.read_text()[-5000:]}"

    def last_step():
        return max((r.get("step", 0) for r in log_of(run) if "loss" in r), default=0)

    # SIGINT at its default, as in a terminal: a shell without job control starts a background job
    # (a test suite run with `&`) with SIGINT ignored, and the child would inherit that.
    with open(stdout, "w") as out, open(stderr, "w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env={**subprocess_env(), "PYTHONFAULTHANDLER": "1"}, stdout=out,
                                stderr=err, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # start-up (torch, the data set) takes long on a busy machine: its own generous wait
        wait_for("first checkpoint (step 2)", (run / "last.json").is_file, proc, 180, output)
        saved = json.loads((run / "last.json").read_text())["step"]
        wait_for(f"training step after the checkpoint of step {saved}", lambda: last_step() > saved, proc, 60,
                 output)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        wait_for("exit after SIGINT", lambda: proc.poll() is not None, proc, 30, output)
        exited = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = stderr.read_text()
    assert proc.returncode == 130, output()
    assert exited < 15, f"exited {exited:.1f} s after SIGINT"
    assert "Traceback" not in err
    kept = json.loads((run / "last.json").read_text())["step"]
    assert kept >= saved and f"{run / 'last.safetensors'} (step {kept})" in err
    assert not list(run.glob(".*.tmp"))  # no temp file left behind
    assert train(EXPERT, tiny_prepared, run, "--steps", str(kept + 1), "--eval-every", "2", "--resume") == 0
    assert {"event": "resume", "step": kept} in log_of(run)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_mid_run_gives_its_own_exit_status(tiny_prepared, tmp_path, capsys, monkeypatch, signum):
    """The signal arrives while step 3 is logged, after the checkpoint of step 2."""
    real = train_expert.Log.__call__

    def log_then_signal(self, **record):
        real(self, **record)
        if record.get("step") == 3 and "loss" in record:
            signal.raise_signal(signum)

    monkeypatch.setattr(train_expert.Log, "__call__", log_then_signal)
    run = tmp_path / "run"
    assert train(EXPERT, tiny_prepared, run, "--steps", "4", "--eval-every", "2") == 128 + signum
    err = capsys.readouterr().err
    assert f"interrupted: {run / 'last.safetensors'} (step 2) is the last checkpoint" in err, err
    assert "Traceback" not in err


def test_a_run_folder_that_cannot_be_written_fails_at_once_with_its_name(tiny_prepared, tmp_path, capsys,
                                                                            monkeypatch):
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):  # root writes anywhere: refuse writes there as a read-only disk would
            real = tempfile.mkstemp

            def mkstemp(*args, dir=None, **kwargs):
                if dir is not None and Path(dir).resolve().is_relative_to(folder):
                    raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
                return real(*args, dir=dir, **kwargs)

            monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        for run in (folder, folder / "sub"):
            code = train(EXPERT, tiny_prepared, run, "--steps", "2", "--eval-every", "2")
            err = capsys.readouterr().err
            assert code == 1
            assert err.startswith(f"error: {run}: ") and "not writable" in err, err
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    finally:
        folder.chmod(0o755)
    assert not (folder / "log.jsonl").exists()


@pytest.mark.parametrize("failing", ["save_file", "_write_text"], ids=["weights", "sidecar"])
def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tiny_prepared, tmp_path, capsys, monkeypatch,
                                                                failing):
    """The second checkpoint (step 4) runs out of space half-written, in the weights file or in
    its sidecar: the step-2 pair stays whole and loadable, and the message says why."""
    real = getattr(checkpoint, failing)
    calls = []

    def fill_up(*args):
        tmp = args[1] if failing == "save_file" else args[0]  # save_file(tensors, tmp), _write_text(tmp, text)
        calls.append(tmp)
        if len(calls) == 1:
            return real(*args)
        Path(tmp).write_bytes(b"\0" * 100)  # what fitted before the disk filled up
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))

    monkeypatch.setattr(checkpoint, failing, fill_up)
    run = tmp_path / "run"
    assert train(EXPERT, tiny_prepared, run, "--steps", "4", "--eval-every", "2") == 1
    err = capsys.readouterr().err
    assert f"{run / 'last.safetensors'}: " in err and "disk is full" in err and "previous checkpoint" in err, err
    assert "Traceback" not in err
    assert json.loads((run / "last.json").read_text())["step"] == 2
    assert not list(run.glob(".*.tmp"))
    monkeypatch.undo()
    # whole: the SHA-256 matches its sidecar, and the trainer resumes from it
    assert train(EXPERT, tiny_prepared, run, "--steps", "3", "--eval-every", "2", "--resume") == 0
    assert {"event": "resume", "step": 2} in log_of(run)


def test_a_stretch_too_short_for_off_sync_pairs_is_refused(tiny_prepared, tmp_path, capsys):
    """Fewer than 6 windows per stretch: no pair >= 5 frames apart, a NaN loss and NaN weights."""
    assert train(EXPERT, tiny_prepared, tmp_path / "run", "--steps", "1", "--eval-every", "1",
                 "--stretch", "4") == 2  # refused by the parser, before any work
    assert "argument --stretch: must be a whole number >= 6, not 4" in capsys.readouterr().err
