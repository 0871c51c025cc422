"""Shared fixtures: the real-data folder (tests skip without it) and small synthetic media."""
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from core.faces.detect import Detection, FaceDetector

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
FACE_BOX = (110, 50, 210, 190)  # where the synthetic clips' face is, in a 320 × 240 frame


class BoxDetector(FaceDetector):
    """Stands in for RetinaFace on synthetic clips: finds one face, always at `box`; counts its calls."""

    name = "test-box"

    def __init__(self, box=FACE_BOX):
        super().__init__()
        self.box, self.calls = box, 0

    def _detect(self, image):
        self.calls += 1
        return [Detection(self.box, 0.99)]


@pytest.fixture
def data_dir():
    if not DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return DATA


def ffmpeg(*args):
    from core.ffmpeg import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-nostdin", "-y", "-hide_banner", "-loglevel", "error", *map(str, args)],
                   check=True)


@pytest.fixture
def every_frame(monkeypatch):
    """The detector runs on every frame (for tests that count its calls frame by frame; detection on
    every second frame, the default, is tests/test_detect_every.py's)."""
    import core.faces.detections as detections_module

    monkeypatch.setattr(detections_module, "DETECT_EVERY", 1)


@pytest.fixture
def tone_wav(tmp_path):
    """1.5 s of a 440 Hz tone at 44.1 kHz stereo."""
    path = tmp_path / "tone.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=1.5", "-ac", "2", path)
    return path


def speech_like(seconds=2.0, sr=16000, seed=0):
    """Noise bursts shaped like syllables: enough spectral content for mel tests."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
    return (0.3 * envelope * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory):
    """A tiny synthetic prepared dataset for the trainers: two training clips of speaker a,
    one validation clip of speaker b (tests.test_datasets.build_prepared). Read-only for tests."""
    from tests.test_datasets import build_prepared

    root = build_prepared(tmp_path_factory.mktemp("prepared"), {"a/one": 60, "a/two": 50, "b/three": 55})
    (root / "filelists" / "train.txt").write_text("a/one\na/two\n")
    (root / "filelists" / "val.txt").write_text("b/three\n")
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    import torch

    from core.models.wav2lip import GeneratorDims, Wav2Lip
    from core.weights import save_weights

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(Wav2Lip(GeneratorDims(width=0.25)), path)
    return path


def damage_file(path, how: str):
    """Damage a cache file as a crash or a bad disk would: "truncated" (cut in half) or "flipped"
    (eight bytes inverted a third of the way in)."""
    data = bytearray(Path(path).read_bytes())
    if how == "truncated":
        del data[len(data) // 2:]
    else:
        for pos in range(len(data) // 3, len(data) // 3 + 8):
            data[pos] ^= 0xFF
    Path(path).write_bytes(bytes(data))
