"""The lip-shape reader and the generator's shape loss, on synthetic mouths whose opening is known."""
import json
import shutil

import cv2
import numpy as np
import pytest
import soundfile as sf
import torch

import main
from core.models.lip_reader import LipReaderDims, LipShapeReader, luma
from core.weights import load_model, save_weights
from tests.test_datasets import speech_like
from tests.test_lip_shape import face_points
from training import lip_shape as L
from training.datasets import GeneratorDataset
from training.train_expert import masked_mse
from training.train_lip_reader import FEATURES, augmented, blurred, reader_features


def mouth_frame(open_by: float, rng) -> np.ndarray:
    """A 96×96 grey face with a mouth in its lower half, dark inside, `open_by` (0–30) tall."""
    img = np.full((96, 96, 3), 150, np.uint8)
    cv2.ellipse(img, (48, 68), (18, 5 + int(open_by / 3)), 0, 0, 360, (70, 60, 120), -1)  # lips
    if open_by > 1:
        cv2.ellipse(img, (48, 68), (14, max(1, int(open_by / 3))), 0, 0, 360, (25, 25, 25), -1)  # the opening
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def mouths(tmp_path_factory):
    """Prepared clips of synthetic mouths and their lip_shape.npz: train a/one a/two, val b/three."""
    root = tmp_path_factory.mktemp("mouths")
    rng = np.random.default_rng(0)
    shapes = {}
    for n, key in enumerate(("a/one", "a/two", "b/three")):
        opening = 15 + 15 * np.sin(np.arange(80) / (3 + n))  # 0..30 px, a different rhythm per clip
        (root / key).mkdir(parents=True)
        for i, o in enumerate(opening):
            cv2.imwrite(str(root / key / f"{i}.jpg"), mouth_frame(o, rng), [cv2.IMWRITE_JPEG_QUALITY, 95])
        sf.write(str(root / key / "audio.wav"), speech_like(len(opening) / 25, seed=n), 16000, subtype="PCM_16")
        shapes[key] = np.stack([L.lip_shape(face_points(open_by=o, width=40 + o / 3)) for o in opening])
    shapes["a/one"][5] = np.nan  # a frame without a mesh
    np.savez(root / "lip_shape.npz", **shapes)
    (root / "filelists").mkdir()
    (root / "filelists" / "train.txt").write_text("a/one\na/two\n")
    (root / "filelists" / "val.txt").write_text("b/three\n")
    return root


def test_the_reader_learns_the_opening_and_carries_its_basis_and_units(mouths, tmp_path):
    run = tmp_path / "reader"
    assert main.main(["train-lip-reader", "--data", str(mouths), "--run", str(run), "--width", "0.25",
                      "--epochs", "25", "--batch-size", "32", "--stride", "1", "--lr", "3e-3"]) == 0
    reader = load_model(run / "lip_reader.safetensors", expect="lip_reader")
    last = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()][-1]
    assert set(last["val_r2"]) == set(FEATURES)
    assert last["val_r2"]["inner_gap"] > 0.6, last  # held-out clip b/three, a rhythm it never saw
    assert last["val_r2_blurred"]["inner_gap"] > 0.4, last  # a soft mouth is still read
    # the basis and the units come from the training clips only
    measured = L.read_lip_shapes(mouths)
    mean, basis = L.contour_basis(measured, ["a/one", "a/two"])
    np.testing.assert_allclose(reader.contour_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.abs(reader.contour_basis.numpy()), np.abs(basis), rtol=1e-4, atol=1e-5)
    train_rows = np.concatenate([reader_features(reader, measured)[k] for k in ("a/one", "a/two")])
    np.testing.assert_allclose(reader.target_mean.numpy(), np.nanmean(train_rows, axis=0), rtol=1e-4, atol=1e-5)


def test_reader_weights_round_trip_and_refuse_other_kinds(tmp_path):
    reader = LipShapeReader(LipReaderDims(width=0.25))
    reader.contour_basis.normal_()
    reader.target_std.fill_(2.0)
    save_weights(reader, tmp_path / "r.safetensors")
    loaded = load_model(tmp_path / "r.safetensors", expect="lip_reader")
    assert torch.equal(loaded.contour_basis, reader.contour_basis) and torch.equal(loaded.target_std, reader.target_std)
    assert torch.allclose(loaded.standardise(torch.full((8,), 4.0)), torch.full((8,), 2.0))
    from core.errors import WeightsError
    with pytest.raises(WeightsError, match="lip_reader"):
        load_model(tmp_path / "r.safetensors", expect="wav2lip")


def test_augmentation_keeps_range_and_blur_removes_detail():
    rng = np.random.default_rng(0)
    x = torch.rand(8, 1, 48, 96)
    out = augmented(x, rng)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    lap = lambda t: torch.nn.functional.conv2d(t, torch.tensor([[[[0, 1, 0], [1, -4, 1], [0, 1, 0.]]]])).var()  # noqa: E731
    assert lap(blurred(x, 3.0)) < 0.2 * lap(x)
    assert torch.allclose(luma(torch.ones(2, 3, 4, 4)), torch.ones(2, 1, 4, 4))


def test_masked_mse_leaves_unmeasured_frames_out():
    pred = torch.zeros(3, 2)
    target = torch.tensor([[1.0, float("nan")], [1.0, 1.0], [float("nan"), float("nan")]])
    assert masked_mse(pred, target).item() == pytest.approx(1.0)
    assert masked_mse(pred, torch.full((3, 2), float("nan"))).item() == 0


def test_generator_items_carry_the_shape_of_their_audios_frames(mouths):
    measured = L.read_lip_shapes(mouths)
    reader = LipShapeReader()
    shapes = reader_features(reader, measured)
    ds = GeneratorDataset(mouths, "train", train=False, unpaired=True, shapes=shapes)
    for idx in (0, 40, len(ds) - 1):
        item, d = ds.sample(idx)
        key = d["key"]
        np.testing.assert_array_equal(item["shape"].numpy(), shapes[key][d["start"]:d["start"] + 5])
        u = d["unpaired_start"]
        np.testing.assert_array_equal(item["unpaired_shape"].numpy(), shapes[key][u:u + 5])
    partial = {"a/one": shapes["a/one"][:10]}  # measured on other frames: no target
    item, _ = GeneratorDataset(mouths, "train", train=False, shapes=partial).sample(0)
    assert torch.isnan(item["shape"]).all()


def test_generator_trains_and_validates_the_shape_terms(mouths, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(mouths, data)
    torch.manual_seed(0)
    reader_path = tmp_path / "reader.safetensors"
    reader = LipShapeReader(LipReaderDims(width=0.25))
    mean, basis = L.contour_basis(L.read_lip_shapes(data), ["a/one", "a/two"])
    reader.contour_mean.copy_(torch.from_numpy(mean))
    reader.contour_basis.copy_(torch.from_numpy(basis))
    save_weights(reader.eval(), reader_path)
    run = tmp_path / "gen"
    assert main.main(["train-generator", "--data", str(data), "--run", str(run), "--width", "0.0625",
                      "--batch-size", "2", "--steps", "3", "--eval-every", "2", "--eval-batches", "1",
                      "--log-every", "1", "--workers", "0", "--lip-reader", str(reader_path),
                      "--shape-weight", "0.1"]) == 0
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    steps = [r for r in log if "l1" in r]
    evals = [r for r in log if "val_l1" in r]
    assert all(r["shape"] > 0 and r["unpaired_shape"] > 0 for r in steps)
    assert evals and all(np.isfinite(r["val_shape_loss"]) and np.isfinite(r["val_unpaired_shape_loss"]) for r in evals)
    with pytest.raises(SystemExit, match="--shape-weight and --lip-reader"):
        main.main(["train-generator", "--data", str(data), "--run", str(tmp_path / "x"), "--shape-weight", "0.1"])


def test_too_few_frames_for_a_batch_is_said_plainly(mouths, tmp_path):
    with pytest.raises(SystemExit, match="too few for a batch of 512"):
        main.main(["train-lip-reader", "--data", str(mouths), "--run", str(tmp_path / "r"), "--batch-size", "512"])
