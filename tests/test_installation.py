"""An installation or machine that cannot do what was asked: one line saying what is missing.

A device this torch cannot use (render and the trainers alike), and a LIPSMITH_FFMPEG pointing
nowhere, end in one `error:` line and exit 1, not in a traceback. Every ffmpeg the product runs
starts in a session of its own, so that a Ctrl-C in the terminal reaches us alone.
"""
import os
import sys

import pytest
import torch

import main
from core import ffmpeg as ffmpeg_module
from core.errors import SetupError
from core.device import select_device
from tests.conftest import ffmpeg


@pytest.fixture
def cpu_only(monkeypatch):
    """This torch as a CPU-only build sees it, whatever the test machine has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def clip_and_dub(tmp_path):
    """0.5 s of a flat colour and 0.5 s of a tone: enough to reach the device and the audio decoder."""
    video, dub = tmp_path / "clip.mp4", tmp_path / "dub.wav"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=64x64:r=25:d=0.5", "-pix_fmt", "yuv420p", video)
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=0.5", dub)
    return video, dub


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("name", ["cuda", "cuda:1", "mps", "gpu0", "meta"])
def test_a_device_this_torch_lacks_is_named_with_the_available_ones(cpu_only, name):
    with pytest.raises(SetupError) as refused:
        select_device(name)
    assert str(refused.value) == f"device '{name}' is not available here; available: cpu"


def test_available_devices_are_accepted(cpu_only):
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto") == torch.device("cpu")


def test_render_on_a_missing_device_exits_1_with_one_line(cpu_only, clip_and_dub, tmp_path, capsys):
    video, dub = clip_and_dub
    code = main.main(["render", str(video), str(dub), "-o", str(tmp_path / "out.mp4"), "--device", "cuda", "-q"])
    assert code == 1
    assert error_line(capsys) == "error: device 'cuda' is not available here; available: cpu"
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("command", ["train-expert", "train-generator"])
@pytest.mark.parametrize("name", ["cuda", "gpu0"])
def test_a_trainer_on_a_missing_device_exits_1_with_one_line(cpu_only, tmp_path, capsys, command, name):
    code = main.main([command, "--data", str(tmp_path / "data"), "--run", str(tmp_path / "run"), "--device", name])
    assert code == 1
    assert error_line(capsys) == f"error: device '{name}' is not available here; available: cpu"


def test_adapt_on_a_missing_device_exits_1_before_preparing_the_clip(cpu_only, clip_and_dub, tmp_path, capsys):
    video, _ = clip_and_dub
    output = tmp_path / "adapted.safetensors"
    assert main.main(["adapt", str(video), "-o", str(output), "--device", "gpu0"]) == 1
    assert error_line(capsys) == "error: device 'gpu0' is not available here; available: cpu"
    assert not output.exists()


@pytest.fixture
def fresh_ffmpeg_lookup():
    ffmpeg_module.ffmpeg_exe.cache_clear()
    yield
    ffmpeg_module.ffmpeg_exe.cache_clear()  # the next test finds the real binary again


def test_lipsmith_ffmpeg_pointing_nowhere_is_named(fresh_ffmpeg_lookup, monkeypatch, tmp_path):
    missing = tmp_path / "bin" / "ffmpeg"
    monkeypatch.setenv("LIPSMITH_FFMPEG", str(missing))
    with pytest.raises(SetupError, match="LIPSMITH_FFMPEG") as refused:
        ffmpeg_module.ffmpeg_exe()
    assert str(missing) in str(refused.value)


def test_lipsmith_ffmpeg_naming_a_folder_or_a_plain_file_is_refused(fresh_ffmpeg_lookup, monkeypatch, tmp_path):
    monkeypatch.setenv("LIPSMITH_FFMPEG", str(tmp_path))
    with pytest.raises(SetupError, match="LIPSMITH_FFMPEG.*folder"):
        ffmpeg_module.ffmpeg_exe()
    notes = tmp_path / "ffmpeg.txt"
    notes.write_text("not a program")
    monkeypatch.setenv("LIPSMITH_FFMPEG", str(notes))
    with pytest.raises(SetupError, match="LIPSMITH_FFMPEG.*not executable"):
        ffmpeg_module.ffmpeg_exe()


def test_render_with_lipsmith_ffmpeg_pointing_nowhere_exits_1(clip_and_dub, fresh_ffmpeg_lookup, monkeypatch,
                                                              tmp_path, capsys):
    video, dub = clip_and_dub
    missing = tmp_path / "no-such-ffmpeg"
    monkeypatch.setenv("LIPSMITH_FFMPEG", str(missing))
    assert main.main(["render", str(video), str(dub), "-o", str(tmp_path / "out.mp4"), "-q"]) == 1
    line = error_line(capsys)
    assert "LIPSMITH_FFMPEG" in line and str(missing) in line, line


@pytest.fixture
def ffmpeg_noting_its_session(fresh_ffmpeg_lookup, monkeypatch, tmp_path):
    """LIPSMITH_FFMPEG as a program that writes down the session it runs in and exits 0
    without output; yields the file it writes."""
    noted = tmp_path / "session"
    fake = tmp_path / "ffmpeg"
    fake.write_text(f"#!{sys.executable}\nimport os\nopen({str(noted)!r}, 'w').write(str(os.getsid(0)))\n")
    fake.chmod(0o755)
    monkeypatch.setenv("LIPSMITH_FFMPEG", str(fake))
    yield noted


@pytest.mark.skipif(os.name != "posix", reason="sessions are POSIX's")
def test_decoding_a_dub_runs_ffmpeg_in_a_session_of_its_own(ffmpeg_noting_its_session, tmp_path):
    from core.audio import load_audio
    from core.errors import MediaError

    dub = tmp_path / "dub.wav"
    dub.write_bytes(b"RIFF")  # the stand-in reads nothing
    with pytest.raises(MediaError, match="empty"):
        load_audio(dub)
    assert int(ffmpeg_noting_its_session.read_text()) != os.getsid(0)


@pytest.mark.skipif(os.name != "posix", reason="sessions are POSIX's")
def test_doctor_runs_ffmpeg_in_a_session_of_its_own(ffmpeg_noting_its_session):
    from core import doctor

    check = doctor._ffmpeg()
    assert check.status == doctor.OK, check
    assert int(ffmpeg_noting_its_session.read_text()) != os.getsid(0)
