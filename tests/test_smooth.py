"""core.smooth: a take's mouth averaged over N frames inside the paste mask, the rest untouched."""
import numpy as np
import pytest

from core.blend import BlendSettings, paste_weight
from core.errors import Cancelled
from core.hparams import HP
from core.smooth import clamped_windows, smooth_video
from core.video import VideoSource, VideoWriter

FPS, N = 25, 12
BOX = (32, 32, 96, 96)
CYCLE = (40, 120, 200)  # the square's grey level, repeating: a 3-frame mean is always 120


@pytest.fixture
def take(tmp_path, tone_wav):
    """A grey 128×128 take with audio: a static blocky texture, and a square over the box's lower
    half (and above it, where the mask is zero) flickering through CYCLE."""
    rng = np.random.default_rng(0)
    texture = np.kron(rng.integers(60, 190, (16, 16)), np.ones((8, 8))).astype(np.uint8)
    path = tmp_path / "take.mkv"
    with VideoWriter(path, 128, 128, FPS, audio_path=tone_wav, crf=0) as writer:
        for i in range(N):
            grey = texture.copy()
            grey[40:96, 40:88] = CYCLE[i % 3]
            writer.write(np.repeat(grey[..., None], 3, axis=2))
    return path


def decoded(path) -> np.ndarray:
    with VideoSource(path) as source:
        return np.stack([f for _, f in source.frames()]).astype(np.float32)


def test_windows_clamp_at_the_edges():
    assert [w for _, w in clamped_windows(range(4), 2)] == [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 3],
                                                             [1, 2, 3, 3, 3]]
    assert [w for _, w in clamped_windows([7], 1)] == [[7, 7, 7]]


def test_the_mouth_is_the_temporal_mean_inside_the_mask_and_untouched_outside(take, tmp_path):
    out = tmp_path / "smoothed.mkv"
    seen = []
    written = smooth_video(take, out, [(BOX, None)] * N, window=3, progress=lambda d, t: seen.append((d, t)))
    assert written == N and seen[-1] == (N, N)
    with VideoSource(take) as before, VideoSource(out) as after:
        assert after.frame_count == N and after.fps == pytest.approx(before.fps) and after.has_audio
        assert after.duration == pytest.approx(before.duration)

    src, result = decoded(take), decoded(out)
    weight = np.zeros((128, 128, 1), np.float32)
    weight[32:96, 32:96, 0] = paste_weight(BOX, None, (HP.img_size, HP.img_size), BlendSettings())
    padded = np.concatenate([src[:1], src, src[-1:]])
    mean = (padded[:-2] + padded[1:-1] + padded[2:]) / 3
    expected = src + weight * (mean - src)
    assert np.abs(result - expected).max() <= 3  # the lossless take's YUV round trip
    outside = np.broadcast_to(weight == 0, result.shape)
    assert np.abs(result - src)[outside].max() <= 2  # the flicker above the mask is kept
    assert weight[84, 64, 0] > 0.99  # the mask's core
    assert np.ptp(src[:, 84, 64, 0]) > 150  # the mouth flickered…
    assert np.ptp(result[1:-1, 84, 64, 0]) <= 6 and abs(result[5, 84, 64, 0] - 120) <= 4  # …and is steady now


def test_cancel_leaves_no_output(take, tmp_path):
    out = tmp_path / "smoothed.mkv"
    calls = []
    with pytest.raises(Cancelled):
        smooth_video(take, out, [(BOX, None)] * N, window=5, cancel=lambda: calls.append(1) or len(calls) > 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mkv", "tone.wav"]


def test_an_even_window_is_refused(take, tmp_path):
    with pytest.raises(ValueError, match="odd"):
        smooth_video(take, tmp_path / "x.mkv", [(BOX, None)] * N, window=4)
