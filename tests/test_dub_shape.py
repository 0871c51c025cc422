"""The dub-shape model: speech → lip shape, on synthetic clips whose mouth opens with the sound."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

import main
from core.errors import WeightsError
from core.hparams import HP
from core.models.dub_shape import DubShapeDims, DubShapeModel, frame_positions, read_at
from core.weights import load_model, save_weights
from tests.test_lip_shape import face_points
from training import lip_shape as L
from training.train_dub_shape import MARGIN, SEGMENT, SILENCE, closed_labels, paired_clips, per_clip, segment
from training.train_lip_reader import FEATURES

FPS = 25


def syllables(frames: int, rng) -> tuple:
    """(per-frame loudness 0..1 of a noise burst, per-frame hum): open syllables of 3–8 frames, each
    after a hummed closure (an /m/: voiced, lips shut) or a silent pause of 1–5 frames."""
    loud, hum, i = np.zeros(frames), np.zeros(frames), 0
    while i < frames:
        n = int(rng.integers(1, 6))
        if rng.random() < 0.5:
            hum[i:i + n] = 1.0
        i += n
        n = int(rng.integers(3, 9))
        loud[i:i + n] = rng.uniform(0.5, 1.0)
        i += n
    return loud[:frames], hum[:frames]


@pytest.fixture(scope="module")
def talking(tmp_path_factory):
    """Prepared clips whose lips open as wide as their noise bursts are loud and shut on silence and
    on a hum, and their lip_shape.npz: train a/one a/two c/four, val b/three (a speaker never
    trained on)."""
    root = tmp_path_factory.mktemp("talking")
    rng = np.random.default_rng(0)
    shapes = {}
    per_frame = HP.sample_rate // FPS
    for key, frames in (("a/one", 200), ("a/two", 160), ("c/four", 180), ("b/three", 150)):
        loud, hum = syllables(frames, rng)
        (root / key).mkdir(parents=True)
        for i in range(frames):
            (root / key / f"{i}.jpg").write_bytes(b"")  # scan_clip only counts the frames
        t = np.arange(frames * per_frame) / HP.sample_rate
        samples = (np.repeat(loud, per_frame) * rng.standard_normal(t.size)
                   + 2.0 * np.repeat(hum, per_frame) * np.sign(np.sin(2 * np.pi * 140 * t)))  # a buzz: harmonics
        sf.write(str(root / key / "audio.wav"), (0.3 * samples).astype(np.float32), HP.sample_rate, subtype="PCM_16")
        shapes[key] = np.stack([L.lip_shape(face_points(open_by=20 * v, width=40 + 5 * v)) for v in loud])
    shapes["a/one"][7] = np.nan  # a frame without a mesh
    np.savez(root / "lip_shape.npz", **shapes)
    (root / "filelists").mkdir()
    (root / "filelists" / "train.txt").write_text("a/one\na/two\nc/four\n")
    (root / "filelists" / "val.txt").write_text("b/three\n")
    return root


def test_it_learns_the_opening_and_the_closures_from_the_sound_alone(talking, tmp_path):
    run = tmp_path / "run"
    assert main.main(["train-dub-shape", "--data", str(talking), "--run", str(run), "--width", "0.25",
                      "--steps", "150", "--eval-every", "150", "--batch-size", "8", "--lr", "3e-3"]) == 0
    last = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()][-1]
    assert set(last["r2"]) == set(FEATURES)
    # held-out speaker b: the opening follows the sound, and closed lips (hummed ones among the
    # speech frames) are told from open ones
    assert last["r2"]["inner_gap"] > 0.5, last
    assert last["inner_gap_clip_r"] > 0.7, last
    assert last["closed_auc"] > 0.85, last
    # calibrated on the training speakers: it shuts about as many held-out speech frames as were shut, rightly
    assert last["closed_gap"] < last["open_gap"]
    assert 0.5 * last["closed_share"] < last["shut_share"] < 2 * last["closed_share"], last
    assert last["shut_precision"] > 0.7 and last["shut_recall"] > 0.5, last
    model = load_model(run / "dub_shape.safetensors", expect="dub_shape")
    assert float(model.closed_gap) == pytest.approx(last["closed_gap"])
    # the targets' units travel with the weights: raw() gives the per-clip units again
    train = np.concatenate([p for _, _, p in paired_clips(talking, ["a/one", "a/two", "c/four"],
                                                          _features(talking), {})])
    assert model.target_mean[0].item() == pytest.approx(np.nanmean(train[:, 0]), rel=1e-4)
    assert torch.allclose(model.raw(model.standardise(torch.ones(1, 8))[..., None])[..., 0], torch.ones(1, 8),
                          atol=1e-5)


def _features(root):
    measured = L.read_lip_shapes(root)
    mean, basis = L.contour_basis(measured, ["a/one", "a/two", "c/four"])
    return {key: L.shape_features(rows, mean, basis) for key, rows in measured.items()}


def test_av_offsets_pair_each_frame_with_its_audio_and_dropped_clips_are_left_out(talking):
    features = _features(talking)
    (key, _, plain), = paired_clips(talking, ["a/two"], features, {})
    (_, _, late), = paired_clips(talking, ["a/two"], features, {"a/two": 2})
    # the audio is 2 frames late: audio frame j shows the lips of frame j - 2
    np.testing.assert_array_equal(late[2:], plain[:-2])
    assert np.isnan(late[:2]).all()
    (_, _, early), = paired_clips(talking, ["a/two"], features, {"a/two": -3})
    np.testing.assert_array_equal(early[:-3], plain[3:])
    assert paired_clips(talking, ["a/two", "a/one"], features, {"a/two": None})[0][0] == "a/one"
    assert paired_clips(talking, ["missing/clip"], features, {}) == []


def test_a_segment_carries_the_audio_around_its_frames_and_silence_past_the_ends():
    mel = np.tile(np.arange(100, dtype=np.float32), (HP.num_mels, 1))  # each column holds its index
    targets = np.arange(30, dtype=np.float32)[:, None].repeat(8, 1)
    m, t, first = segment(mel, targets, start=10)
    positions = frame_positions(SEGMENT, FPS, first)
    # frame 10 + i's centre, read from the segment's mel, is its centre in the clip's mel
    got = read_at(torch.from_numpy(m)[None], positions)[0, 0, :15].numpy()
    np.testing.assert_allclose(got, (10 + np.arange(15) + 0.5) * HP.mel_fps / FPS, atol=1e-4)
    assert (m[:, -MARGIN:] == SILENCE).all()  # past the clip's audio
    np.testing.assert_array_equal(t[:20, 0], np.arange(10, 30))
    assert np.isnan(t[20:]).all()


def test_read_at_takes_one_set_of_positions_or_one_per_item():
    x = torch.arange(24, dtype=torch.float32).reshape(2, 1, 12)
    np.testing.assert_allclose(read_at(x, torch.tensor([0.5, 3.0]))[:, 0].numpy(), [[0.5, 3.0], [12.5, 15.0]])
    np.testing.assert_allclose(read_at(x, torch.tensor([[1.0], [2.25]]))[:, 0, 0].numpy(), [1.0, 14.25])
    assert read_at(x, torch.tensor([-4.0, 40.0]))[0, 0].tolist() == [0.0, 11.0]  # clamped at the ends


def test_closed_lips_are_counted_on_speech_frames_only():
    gap = np.array([0.0, 0.01, 0.5, 0.6, np.nan, 1.0, 0.14, 0.16])  # shares of the clip's wide-open gap
    speech = np.array([True, False, True, True, True, True, True, True])
    where, closed = closed_labels(gap, speech)
    np.testing.assert_array_equal(where, [True, False, True, True, False, True, True, True])
    np.testing.assert_array_equal(closed, [True, False, False, False, True, False])


def test_targets_are_in_each_clips_own_units():
    rows = np.random.default_rng(0).uniform(0, 1, (40, 8)).astype(np.float32)
    rows[:, 0] *= 0.2  # an inner gap in eye distances
    rows[3] = np.nan
    out = per_clip(rows)
    top = np.nanpercentile(rows[:, 0], 95)
    np.testing.assert_allclose(out[:, 0], rows[:, 0] / top, rtol=1e-5)  # a share of the wide-open gap
    assert np.isnan(out[3]).all()
    np.testing.assert_allclose(np.nanmean(out[:, 2:], 0), 0, atol=1e-5)  # the rest z-scored in the clip
    np.testing.assert_allclose(np.nanstd(out[:, 2:], 0), 1, atol=1e-3)
    # twice the speaker, the same targets: the anatomy is gone, the movement stays
    np.testing.assert_allclose(per_clip(rows * 2), out, rtol=1e-4, atol=1e-5)


def test_weights_round_trip_and_refuse_other_kinds(tmp_path):
    model = DubShapeModel(DubShapeDims(width=0.25))
    model.target_std.fill_(2.0)
    save_weights(model, tmp_path / "d.safetensors")
    loaded = load_model(tmp_path / "d.safetensors", expect="dub_shape")
    mel = torch.randn(1, HP.num_mels, 90)
    positions = frame_positions(20, FPS)
    assert torch.allclose(loaded(mel, positions), model.eval()(mel, positions), atol=1e-6)
    with pytest.raises(WeightsError, match="dub_shape"):
        load_model(tmp_path / "d.safetensors", expect="lip_reader")
