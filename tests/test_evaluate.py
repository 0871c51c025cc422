"""training/evaluate.py's independent judge: lip aperture (MediaPipe, measured in another
interpreter) against the loudness of the audio heard with each frame."""
import math

import numpy as np

from core.audio import frame_loudness
from core.hparams import HP
from training import evaluate


def test_frame_loudness_averages_the_mel_heard_during_each_frame():
    fps, frames = 25.0, 20
    columns = int(frames * HP.mel_fps / fps)  # 64 mel steps for 20 frames
    mel = np.where(np.arange(columns) < columns // 2, 1.0, -1.0)[None].repeat(80, axis=0)
    loud = frame_loudness(mel, fps, frames)
    assert loud.shape == (frames,)
    assert np.allclose(loud[:10], 1.0) and np.allclose(loud[10:], -1.0)  # frame 10 starts at mel step 32
    # frames past the audio's end repeat its last step instead of failing
    assert np.allclose(frame_loudness(mel, fps, frames + 5)[frames:], -1.0)


def test_aperture_loudness_r_skips_frames_without_a_mesh_and_refuses_too_little():
    rng = np.random.default_rng(0)
    loud = rng.normal(size=50)
    aperture = 0.02 + 0.01 * loud
    aperture[[3, 17]] = np.nan
    assert evaluate.aperture_loudness_r(aperture, loud) > 0.999
    assert evaluate.aperture_loudness_r(-aperture, loud) < -0.999
    assert evaluate.aperture_loudness_r(aperture, loud[:40]) > 0.999  # the shorter length counts
    assert math.isnan(evaluate.aperture_loudness_r(np.full(50, 0.02), loud))  # a mouth that never moves
    few = np.full(50, np.nan)
    few[:9] = aperture[:9]
    assert math.isnan(evaluate.aperture_loudness_r(few, loud))


def test_aperture_judge_reads_the_original_frames_through_the_renders_frame_map(monkeypatch):
    fps, frames = 25.0, 40
    rng = np.random.default_rng(1)
    columns = int(frames * HP.mel_fps / fps) + 16
    own_mel, dub_mel = rng.normal(size=(80, columns)), rng.normal(size=(80, columns))
    own_loud, dub_loud = (frame_loudness(m, fps, frames) for m in (own_mel, dub_mel))
    source_index = np.arange(frames)[::-1]  # the render played the original backwards
    source_ap = own_loud.copy()  # the original mouth follows its own audio
    rendered_ap = dub_loud + 0.1  # the rendered mouth follows the dub
    measured = {"source.mp4": source_ap, "render.mp4": rendered_ap}
    monkeypatch.setattr(evaluate, "measure_apertures", lambda python, videos: [measured[v] for v in videos])
    results = [{"clip": "a/b"}]
    heard = [("source.mp4", "render.mp4", source_index, own_mel, dub_mel, fps)]
    means = evaluate.aperture_judge("python-with-mediapipe", results, heard)
    r = results[0]["aperture_r"]
    assert r["own"] > 0.999 and r["rendered"] > 0.999
    expected = np.corrcoef(source_ap[::-1], dub_loud)[0, 1]  # rendered frame k showed original frame 39 - k
    assert math.isclose(r["unsynced"], expected, rel_tol=1e-9)
    assert means["rendered_beats_unsynced"] == 1
    assert math.isclose(means["mean"]["own"], r["own"])
