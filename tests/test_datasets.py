"""training/datasets.py on a synthetic prepared layout: every frame's JPEG encodes its index
(blue level) and its side (left half brighter), so windows, flips and channel order can be
checked by construction."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch
import cv2

from core.audio import mel_window, melspectrogram
from tests.conftest import speech_like
from tests.test_lip_shape import face_points
from training import lip_shape as L
from training.datasets import Augment, ExpertDataset, GeneratorDataset, StretchDataset
from training.lip_shape import COLUMNS

FRAMES = {"s1/long": 60, "s1/mid": 30, "s2/other": 40, "s2/short": 8}
CROP_H, CROP_W = 110, 90


def blue(i):
    return 20 + 3 * i


def frame_image(i):
    """Top half black; bottom half B = index level (left) / half of it (right), G 128, R 255 - level."""
    img = np.zeros((CROP_H, CROP_W, 3), np.uint8)
    low = img[CROP_H // 2:]
    low[..., 0] = blue(i)
    low[:, CROP_W // 2:, 0] = blue(i) // 2
    low[..., 1] = 128
    low[..., 2] = 255 - blue(i)
    return img


def build_prepared(root, frames_per_clip=FRAMES):
    """A prepared layout of synthetic clips (frame i's JPEG encodes i) with speech-like audio."""
    for n, (key, frames) in enumerate(frames_per_clip.items()):
        folder = root / key
        folder.mkdir(parents=True)
        for i in range(frames):
            cv2.imwrite(str(folder / f"{i}.jpg"), frame_image(i), [cv2.IMWRITE_JPEG_QUALITY, 100])
        sf.write(str(folder / "audio.wav"), speech_like(frames / 25, seed=n), 16000, subtype="PCM_16")
    (root / "filelists").mkdir()
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = build_prepared(tmp_path_factory.mktemp("prepared"))
    (root / "filelists" / "train.txt").write_text("".join(f"{k}\n" for k in FRAMES) + "s3/missing\n")
    return root


def clip_mel(root, key):
    audio, _ = sf.read(str(root / key / "audio.wav"), dtype="float32")
    return melspectrogram(audio)


def test_expert_shapes_ranges_and_skipped_clips(root):
    ds = ExpertDataset(root, "train")
    assert sorted(ds.skipped) == ["s2/short", "s3/missing"]  # 8 frames: too few starts; no folder
    assert len(ds) == (60 - 4) + (30 - 4) + (40 - 4) == ds.n_windows
    for idx in (0, 57, len(ds) - 1):
        faces, mel, label = ds[idx]
        assert faces.shape == (15, 48, 96) and faces.dtype == torch.float32
        assert mel.shape == (1, 80, 16) and mel.dtype == torch.float32
        assert label.shape == () and label.item() in (0.0, 1.0)
        assert 0 <= faces.min() and faces.max() <= 1 and -4 <= mel.min() and mel.max() <= 4
    with pytest.raises(IndexError):
        ds[len(ds)]
    assert len(ExpertDataset(root, "train", epoch_size=1000)) == 1000


def test_expert_windows_by_construction(root):
    ds = ExpertDataset(root, root / "filelists" / "train.txt", train=False)
    for idx in range(0, len(ds), 7):
        plan = ds.plan(idx)
        faces, mel, label = ds[idx]
        i, j = plan["start"], plan["mel_start"]
        # frames i..i+4, lower half, BGR, frame-major channels
        for k in range(5):
            left_b = faces[3 * k, 10:40, 5:40].mean().item() * 255
            red = faces[3 * k + 2, 10:40, 5:90].mean().item() * 255
            assert abs(left_b - blue(i + k)) < 2 and abs(red - (255 - blue(i + k))) < 2
        assert faces[:, :2].max() > 0.05  # no black rows: this is the lower half only
        expected = mel_window(clip_mel(root, plan["key"]), j / 25)
        np.testing.assert_array_equal(mel[0].numpy(), expected)
        assert label.item() == (1.0 if i == j else 0.0)
        if label.item() == 0:
            assert abs(j - i) >= 5


def test_stretch_items_by_construction(root):
    ds = StretchDataset(root, "train", train=False, stretch=8)
    assert sorted(ds.skipped) == ["s2/short", "s3/missing"]
    assert ds.n_windows == (60 - 4 - 7) + (30 - 4 - 7) + (40 - 4 - 7)  # K windows must fit
    for idx in range(0, len(ds), 9):
        plan = ds.plan(idx)
        faces, mels, loudness = ds[idx]
        assert loudness.shape == (8, 5)
        assert faces.shape == (8, 15, 48, 96) and mels.shape == (8, 1, 80, 16)
        mel = clip_mel(root, plan["key"])
        for k in range(8):  # window k = frames s+k .. s+k+4, with the mel of frame s+k
            for t in range(5):
                left_b = faces[k, 3 * t, 10:40, 5:40].mean().item() * 255
                assert abs(left_b - blue(plan["start"] + k + t)) < 2
            np.testing.assert_array_equal(mels[k, 0].numpy(), mel_window(mel, (plan["start"] + k) / 25))


def test_stretch_av_offsets_shift_the_audio_only(root):
    plain = StretchDataset(root, "train", train=False, stretch=8)
    shifted = StretchDataset(root, "train", train=False, stretch=8, av_offsets={"s1/long": 3})
    # the shift costs the long clip 3 windows at its end (its audio runs out 3 frames sooner)
    assert shifted.n_windows == plain.n_windows - 3
    idx = 4  # a stretch of s1/long (first in the filelist) at the same start in both
    assert plain.plan(idx)["start"] == shifted.plan(idx)["start"] == 4
    f0, m0, l0 = plain[idx]
    f1, m1, l1 = shifted[idx]
    torch.testing.assert_close(f0, f1)
    torch.testing.assert_close(m1[:5], m0[3:])  # frame i now goes with the mel of frame i + 3
    # the loudness follows the audio: z-scored over a (slightly shorter) clip, so compare shapes over time
    assert np.corrcoef(l1[:5, 0].numpy(), l0[3:, 0].numpy())[0, 1] > 0.95


def test_stretch_loudness_follows_the_audio_envelope(root):
    ds = StretchDataset(root, "train", train=False, stretch=8)
    c = 0
    loud = ds.loudness(c)
    assert abs(np.nanmean(loud)) < 1e-4 and abs(np.nanstd(loud) - 1) < 1e-3  # z-scored over the clip
    # speech_like() is shaped by a 3 Hz syllable envelope: loud frames where it peaks, quiet at its zeros
    t = (np.arange(len(loud)) + 0.5) / 25
    envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
    assert np.corrcoef(loud, envelope)[0, 1] > 0.7


def test_stretch_augmentation_is_one_draw_for_the_whole_stretch(root):
    ds = StretchDataset(root, "train", stretch=8, epoch_size=50, seed=3,
                        augment=Augment(brightness=0, contrast=0, saturation=0, scale=0, shift=0, flip=1.0,
                                        gain_db=0, mel_noise=0))
    faces, _, _ = ds[0]
    # flipped: the right half (dimmer blue) is now on the left, in every window and frame
    left, right = faces[:, 0::3, 10:40, 5:40].mean(), faces[:, 0::3, 10:40, 56:90].mean()
    assert left < right


def test_expert_labels_are_balanced_and_off_sync_offsets_far(root):
    ds = ExpertDataset(root, "train", epoch_size=4000, seed=5)
    plans = [ds.plan(i, entropy=0) for i in range(4000)]
    labels = np.array([p["label"] for p in plans])
    assert 0.46 < labels.mean() < 0.54
    offsets = np.array([abs(p["mel_start"] - p["start"]) for p in plans if p["label"] == 0])
    assert offsets.min() >= 5 and offsets.max() > 20
    # the off-sync mel really is another window than the in-sync one
    p = next(p for p in plans if p["label"] == 0)
    mel = clip_mel(root, p["key"])
    assert not np.array_equal(mel_window(mel, p["start"] / 25), mel_window(mel, p["mel_start"] / 25))


def test_training_draws_are_seeded_per_process_and_fresh_every_epoch(root):
    ds = ExpertDataset(root, "train", seed=1)
    torch.manual_seed(0)
    a = ds[10]
    torch.manual_seed(0)
    assert all(torch.equal(x, y) for x, y in zip(a, ds[10]))  # same torch seed, same item
    assert ds.plan(10)["augment"] != ds.plan(10)["augment"]  # otherwise fresh draws each time
    item, plan = ds.sample(10, entropy=123)
    again, plan2 = ds.sample(10, entropy=123)
    assert all(torch.equal(x, y) for x, y in zip(item, again)) and plan["augment"] == plan2["augment"]
    assert ExpertDataset(root, "train", seed=2).plan(10, entropy=123)["augment"] != plan["augment"]
    ds.set_epoch(1)
    assert ds.plan(10, entropy=123)["augment"] != plan["augment"]
    # validation: no augmentation and the same draws at every evaluation
    val = ExpertDataset(root, "train", train=False)
    before = [val.plan(i)["mel_start"] for i in range(40)]
    val.set_epoch(3)
    torch.manual_seed(99)
    assert [val.plan(i)["mel_start"] for i in range(40)] == before
    assert val.plan(0)["augment"] is None


def test_dataloader_workers_are_reproducible_and_epochs_differ(root):
    ds = ExpertDataset(root, "train", seed=1)

    def first_batches(persistent):
        torch.manual_seed(0)
        loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, shuffle=False,
                                             persistent_workers=persistent)
        return [next(iter(loader))[0] for _ in range(2)]  # first batch of two epochs

    run1, run2 = first_batches(True), first_batches(True)
    assert torch.equal(run1[0], run2[0]) and torch.equal(run1[1], run2[1])  # reproducible
    assert not torch.equal(run1[0], run1[1])  # persistent workers still draw afresh each epoch


def test_generator_items_by_construction(root):
    ds = GeneratorDataset(root, "train", train=False)
    assert sorted(ds.skipped) == ["s2/short", "s3/missing"]
    # the last frame's window (0.2 s from its time) must fit in the audio: 4 starts fewer per clip
    assert [int(s.max()) for s in ds.starts] == [51, 21, 31]
    for idx in range(0, len(ds), 11):
        plan = ds.plan(idx)
        item = ds[idx]
        assert item["target"].shape == item["reference"].shape == (5, 3, 96, 96)
        assert item["mels"].shape == (5, 1, 80, 16) and item["sync_mel"].shape == (1, 80, 16)
        assert all(v.dtype == torch.float32 for v in item.values())
        i, r = plan["start"], plan["reference_start"]
        assert r != i
        for k in range(5):
            assert abs(item["target"][k, 0, 60:90, 5:40].mean().item() * 255 - blue(i + k)) < 2
            assert abs(item["reference"][k, 0, 60:90, 5:40].mean().item() * 255 - blue(r + k)) < 2
        assert item["target"][:, :, :40].max() < 0.05  # unmasked full crop: the black top half is there
        mel = clip_mel(root, plan["key"])
        for k in range(5):
            np.testing.assert_array_equal(item["mels"][k, 0].numpy(), mel_window(mel, (i + k) / 25))
        np.testing.assert_array_equal(item["sync_mel"][0].numpy(), mel_window(mel, i / 25))
    # centred per-frame windows (the reference trainer's i - 2) shift the windows and the starts
    centred = GeneratorDataset(root, "train", train=False, frame_mel_offset=-2)
    assert min(int(s.min()) for s in centred.starts) == 2
    plan, item = centred.plan(3), centred[3]
    mel = clip_mel(root, plan["key"])
    np.testing.assert_array_equal(item["mels"][0, 0].numpy(), mel_window(mel, (plan["start"] - 2) / 25))


def test_flip_and_jitter_are_the_same_for_every_frame_of_both_windows(root):
    ds = GeneratorDataset(root, "train", seed=7)
    flips = {}
    for idx in range(len(ds)):
        p = ds.plan(idx, entropy=0)["augment"]
        flips.setdefault(p["flip"], idx)
        if len(flips) == 2:
            break
    for flipped, idx in flips.items():
        item, plan = ds.sample(idx, entropy=0)
        assert plan["augment"]["flip"] == flipped
        for window in (item["target"], item["reference"]):
            left = window[:, 0, 60:90, 8:40].mean(dim=(1, 2))
            right = window[:, 0, 60:90, 56:88].mean(dim=(1, 2))
            assert bool(((right > left) if flipped else (left > right)).all())
    # jitter: one draw for the whole item, so the blue/red relation is the same in every frame
    item, plan = ds.sample(flips[False], entropy=0)
    a = item["target"][:, 1, 60:90, 20:70].mean(dim=(1, 2))  # green is 128 everywhere: one value
    assert float(a.max() - a.min()) < 0.01
    assert abs(float(a.mean()) - 128 / 255) > 0.002 or plan["augment"]["brightness"] == pytest.approx(1, abs=0.02)


def test_augment_mel_gain_is_a_shift_of_the_normalised_db():
    aug = Augment(mel_noise=0.0)
    mel = np.linspace(-4, 4, 80 * 16, dtype=np.float32).reshape(80, 16)
    up = aug.mel(mel, {"gain_db": 6.0}, np.random.default_rng(0))
    inside = (mel > -4) & (mel < 4 - 0.48)
    np.testing.assert_allclose(up[inside], mel[inside] + 0.48, atol=1e-6)
    assert up[mel == -4].max() == -4  # the silence floor stays put for a positive gain
    assert up.max() == 4
    down = aug.mel(mel, {"gain_db": -6.0}, np.random.default_rng(0))
    np.testing.assert_allclose(down[mel > -3.5], mel[mel > -3.5] - 0.48, atol=1e-6)
    assert down.min() == -4
    noisy = Augment(mel_noise=0.05).mel(mel, {"gain_db": 0.0}, np.random.default_rng(0))
    assert 0.03 < float(np.std((noisy - mel)[inside])) < 0.07


def test_augment_image_identity_and_scale():
    img = np.random.default_rng(0).random((96, 96, 3)).astype(np.float32)
    ident = {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "scale": 1.0, "dx": 0.0, "dy": 0.0,
             "flip": False}
    np.testing.assert_allclose(Augment.image(img, ident), img, atol=1e-6)
    np.testing.assert_allclose(Augment.image(img, dict(ident, flip=True)), img[:, ::-1], atol=1e-6)
    square = np.zeros((96, 96, 3), np.float32)
    square[38:58, 38:58] = 1
    zoomed = Augment.image(square, dict(ident, scale=1.05))
    assert zoomed.sum() > square.sum() * 1.05  # area grows by ~1.1
    shifted = Augment.image(square, dict(ident, dx=0.05))
    cols = np.flatnonzero(shifted[48, :, 0] > 0.5)
    assert cols.min() in (42, 43) and cols.max() in (61, 62)  # moved right by ~4.8 px


def shape_rows(aperture):
    """lip_shape.npz rows whose aperture column is `aperture` and the rest noise."""
    rows = np.random.default_rng(1).normal(0, 1, (len(aperture), len(COLUMNS))).astype(np.float32)
    rows[:, 0] = aperture
    return rows


def test_stretch_aperture_target_from_the_measured_file(root):
    with pytest.raises(FileNotFoundError, match="lip_shape.py"):
        StretchDataset(root, "train", train=False, stretch=8, aux="aperture")
    rng = np.random.default_rng(0)
    measured = rng.uniform(0, 0.5, 60).astype(np.float32)
    measured[7] = np.nan  # no mesh in that frame
    np.savez(root / "lip_shape.npz", **{"s1/long": shape_rows(measured)})
    try:
        ds = StretchDataset(root, "train", train=False, stretch=8, aux="aperture")
        target = ds.aux_target(0)  # s1/long: z-scored, the gap kept
        assert np.isnan(target[7]) and abs(np.nanmean(target)) < 1e-4
        np.testing.assert_allclose(np.argsort(target[:7]), np.argsort(measured[:7]))
        assert np.isnan(ds.aux_target(1)).all()  # s1/mid was not measured: no target at all
        _, _, aux = ds[0]
        np.testing.assert_array_equal(aux[0].numpy(), target[0:5])
    finally:
        (root / "lip_shape.npz").unlink()


def test_stretch_shape_target_is_the_teacher_per_frame_z_scored(root):
    rng = np.random.default_rng(0)
    long = np.stack([L.lip_shape(face_points(open_by=o, pout=q)) for o, q in zip(rng.uniform(0, 30, 60),
                                                                                 rng.uniform(-3, 3, 60))])
    long[9] = np.nan
    np.savez(root / "lip_shape.npz", **{"s1/long": long, "s1/mid": long[:30]})
    try:
        ds = StretchDataset(root, "train", train=False, stretch=8, aux="shape")
        assert ds.aux_features == L.SHAPE_FEATURES
        target = ds.aux_target(0)
        assert target.shape == (60, L.SHAPE_FEATURES) and np.isnan(target[9]).all()
        np.testing.assert_allclose(np.nanmean(target, axis=0), 0, atol=1e-4)  # each feature z-scored per clip
        inner = long[:, L.COLUMNS.index("inner_gap")]
        ok = np.isfinite(inner)
        assert np.corrcoef(target[ok, 0], inner[ok])[0, 1] > 0.999  # feature 0: the inner gap
        assert ds.aux_target(2).shape == (40, L.SHAPE_FEATURES) and np.isnan(ds.aux_target(2)).all()  # s2/other
        faces, mels, aux = ds[0]
        assert aux.shape == (8, 5 * L.SHAPE_FEATURES)  # K windows x (T frames x F features), frame-major
        np.testing.assert_array_equal(aux[2].numpy(), target[2:7].reshape(-1))
    finally:
        (root / "lip_shape.npz").unlink()


def test_augment_mel_warp_and_band_mask():
    aug = Augment(mel_noise=0.0)
    assert "warp" not in aug.sample(np.random.default_rng(0))  # off by default: the draws stay as they were
    mel = np.full((80, 16), -4.0, np.float32)
    mel[40] = 2.0  # one formant-like band
    warped = aug.mel(mel, {"gain_db": 0.0, "warp": 0.8}, np.random.default_rng(0))
    assert int(np.argmax(warped[:, 0])) == 50  # bin b takes bin 0.8 b: the band moves up to 40 / 0.8
    unwarped = aug.mel(mel, {"gain_db": 0.0, "warp": 1.0}, np.random.default_rng(0))
    np.testing.assert_array_equal(unwarped, mel)
    masked = aug.mel(mel, {"gain_db": 0.0, "mask": (38, 5)}, np.random.default_rng(0))
    np.testing.assert_allclose(masked[38:43], mel.mean(), atol=1e-6)
    np.testing.assert_array_equal(masked[:38], mel[:38])
    draws = [Augment(mel_warp=0.1, freq_mask=12).sample(np.random.default_rng(s)) for s in range(200)]
    assert all(0.9 <= d["warp"] <= 1.1 and 0 <= d["mask"][1] <= 12 and sum(d["mask"]) <= 80 for d in draws)


def test_balance_weights_sources_then_speakers_by_the_square_root_of_their_windows(root):
    ds = StretchDataset(root, "train", train=True, stretch=4, epoch_size=4000)
    windows = np.array([len(s) for s in ds.starts], float)  # s1/long, s1/mid | s2/other, s2/short
    s1, s2 = windows[:2].sum(), windows[2:].sum()

    def by_root(w):  # clip shares of a source whose clips are each their own speaker
        return np.sqrt(w) / np.sqrt(w).sum()

    # no manifest here: speakers as prepare names them (each clip is its own speaker)
    ds.balance_speakers()
    expected = np.concatenate([by_root(windows[:2]) * np.sqrt(s1), by_root(windows[2:]) * np.sqrt(s2)])
    np.testing.assert_allclose(ds.clip_weights, expected / expected.sum())
    # one speaker in both clips of s1: drawn by their windows within it
    speakers = {"s1/long": "one", "s1/mid": "one", "s2/other": "two", "s2/short": "three"}
    (root / "manifest.json").write_text(json.dumps({"clips": {k: {"speaker": v} for k, v in speakers.items()}}))
    try:
        ds.balance_speakers()
        expected = np.concatenate([windows[:2] / s1 * np.sqrt(s1), by_root(windows[2:]) * np.sqrt(s2)])
        np.testing.assert_allclose(ds.clip_weights, expected / expected.sum())
        drawn = np.bincount([ds.plan(i, entropy=i)["clip"] for i in range(3000)], minlength=4) / 3000
        np.testing.assert_allclose(drawn, ds.clip_weights, atol=0.03)
    finally:
        (root / "manifest.json").unlink()


def check_elsewhere(ds, speakers):
    """Every plan's reference and unpaired window lie a second from the target in its clip, or in
    another clip of the same speaker, or (a short clip, its speaker's only one) as far as the clip
    allows; the unpaired audio is that window's. Returns how often each case came."""
    plain = GeneratorDataset(ds.root, "train", train=False)
    cases = {"far": 0, "same speaker": 0, "farthest": 0}
    for idx in range(0, len(ds), 3):
        plan, item = ds.plan(idx), ds[idx]
        before = plain.plan(idx)
        assert {k: plan[k] for k in ("clip", "start", "reference_clip", "reference_start")} == \
            {k: before[k] for k in ("clip", "start", "reference_clip", "reference_start")}  # unpaired drawn last
        c, i = plan["clip"], plan["start"]
        starts = ds.starts[c]
        for o, j in ((plan["reference_clip"], plan["reference_start"]), (plan["unpaired_clip"], plan["unpaired_start"])):
            assert j in ds.starts[o]
            if o != c:
                assert speakers[ds.clips[o].key] == speakers[ds.clips[c].key]
                assert not (np.abs(starts - i) >= ds.UNPAIRED_GAP).any()  # only when its own clip is too short
                cases["same speaker"] += 1
            elif abs(j - i) >= ds.UNPAIRED_GAP:
                cases["far"] += 1
            else:
                assert abs(j - i) == np.abs(starts - i).max()
                assert [speakers[clip.key] for clip in ds.clips].count(speakers[ds.clips[c].key]) == 1
                cases["farthest"] += 1
        u, j = plan["unpaired_clip"], plan["unpaired_start"]
        mel = clip_mel(ds.root, ds.clips[u].key)
        assert item["unpaired_mels"].shape == (5, 1, 80, 16)
        for k in range(5):
            np.testing.assert_array_equal(item["unpaired_mels"][k, 0].numpy(), mel_window(mel, (j + k) / 25))
        np.testing.assert_array_equal(item["unpaired_sync_mel"][0].numpy(), mel_window(mel, j / 25))
        assert "unpaired_mels" not in plain[idx]
    return cases


def test_reference_and_unpaired_audio_come_from_a_second_away_or_the_speakers_other_clips(root):
    # no manifest: each clip its own speaker; s1/mid's 22 starts lie within a second of each other
    alone = check_elsewhere(GeneratorDataset(root, "train", train=False, unpaired=True),
                            {k: k for k in FRAMES})
    assert alone["far"] > 0 and alone["farthest"] > 0 and alone["same speaker"] == 0
    speakers = {"s1/long": "one", "s1/mid": "one", "s2/other": "two", "s2/short": "three"}
    (root / "manifest.json").write_text(json.dumps({"clips": {k: {"speaker": v} for k, v in speakers.items()}}))
    try:  # s1/mid now draws from s1/long, its speaker's other clip
        shared = check_elsewhere(GeneratorDataset(root, "train", train=False, unpaired=True), speakers)
        assert shared["far"] > 0 and shared["same speaker"] > 0
        assert shared["farthest"] < alone["farthest"]  # s2/other still alone: its middle starts as far as it allows
    finally:
        (root / "manifest.json").unlink()
