"""`python main.py train-expert` end to end on a tiny synthetic prepared set: both objectives
run, write loadable weights and a resumable checkpoint, and refuse a changed configuration."""
import json
import shutil

import numpy as np
import pytest

import main
from core.weights import load_model


@pytest.fixture
def data(tiny_prepared):  # tests/conftest.py
    return tiny_prepared


def train(data, run, *extra):
    return main.main(["train-expert", "--data", str(data), "--run", str(run), "--width", "0.125",
                      "--batch-size", "16", "--stretch", "8", "--eval-every", "2", "--eval-batches", "1",
                      "--log-every", "1", "--workers", "0", *extra])


@pytest.mark.parametrize("objective", [["--objective", "offsets", "--aux-from", "both"], ["--objective", "paper"]])
def test_each_objective_trains_and_writes_loadable_weights(data, tmp_path, objective):
    assert train(data, tmp_path / "run", "--steps", "3", *objective) == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3]
    assert any("val_accuracy" in r and 0.0 <= r["val_auc"] <= 1.0 for r in log)
    if objective[1] == "offsets":
        assert all("bce" in r and "nce" in r and "loudness" in r for r in log if "loss" in r)
        assert any("val_offset_accuracy" in r for r in log)
    expert = load_model(tmp_path / "run" / "best.safetensors", expect="syncnet")
    assert expert.dims.width == 0.125
    assert json.loads((tmp_path / "run" / "last.json").read_text())["step"] == 3


def test_resume_continues_from_the_checkpoint_and_refuses_changed_settings(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(data, run, "--steps", "2") == 0
    assert train(data, run, "--steps", "4", "--resume") == 0  # the step budget may change
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert {"event": "resume", "step": 2} in log
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4]
    assert train(data, run, "--steps", "6", "--resume", "--lr", "1e-3") == 1  # another experiment
    assert "lr" in capsys.readouterr().err
    assert json.loads((run / "last.json").read_text())["step"] == 4  # the refused run changed nothing


def test_face_warmup_then_frozen_face_encoder(data, tmp_path):
    """--face-warmup 2 --freeze-face: the face encoder learns for 2 steps (aux loss only), then
    stays exactly as it was (BatchNorm statistics included) while the audio encoder trains."""
    from safetensors.torch import load_file

    def weights(run):
        return load_file(str(run / "last.safetensors"))

    run = tmp_path / "run"
    base = ["--face-warmup", "2", "--freeze-face", "--aux-from", "both", "--eval-every", "100"]
    assert train(data, run, "--steps", "2", *base) == 0
    after_warmup = weights(run)
    assert train(data, run, "--steps", "4", "--resume", *base) == 0
    after = weights(run)
    face = [k for k in after if "face_encoder" in k and "optim" not in k]
    audio = [k for k in after if "audio_encoder" in k and "optim" not in k and k.endswith("weight")]
    assert face and audio
    assert all((after[k] == after_warmup[k]).all() for k in face)
    assert any(not (after[k] == after_warmup[k]).all() for k in audio)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert all("loudness" in r for r in log if "loss" in r)


def test_init_face_with_freeze_keeps_the_given_face_encoder(data, tmp_path):
    import torch
    from safetensors.torch import load_file

    from core.models.syncnet import SyncNet, SyncNetDims
    from core.weights import save_weights

    torch.manual_seed(1)
    given = SyncNet(SyncNetDims(width=0.125))
    save_weights(given, tmp_path / "seen.safetensors")
    run = tmp_path / "run"
    assert train(data, run, "--steps", "2", "--init-face", str(tmp_path / "seen.safetensors"), "--freeze-face") == 0
    after = load_file(str(run / "last.safetensors"))
    for name, value in given.face_encoder.state_dict().items():
        assert torch.equal(after[f"model.expert/face_encoder.{name}"], value), name


def test_init_face_from_a_training_checkpoint(data, tmp_path):
    import torch
    from safetensors.torch import load_file

    assert train(data, tmp_path / "a", "--steps", "2") == 0
    source = load_file(str(tmp_path / "a" / "last.safetensors"))
    assert train(data, tmp_path / "b", "--steps", "1", "--init-face", str(tmp_path / "a" / "last.safetensors"),
                 "--freeze-face") == 0
    after = load_file(str(tmp_path / "b" / "last.safetensors"))
    face = [k for k in source if k.startswith("model.expert/face_encoder.")]
    assert face and all(torch.equal(after[k], source[k]) for k in face)


def test_roc_auc_counts_in_sync_pairs_ranked_above_off_sync_ones():
    import math

    import torch

    from training.train_expert import roc_auc
    labels = torch.tensor([1.0, 1.0, 0.0, 0.0])
    assert roc_auc(torch.tensor([0.9, 0.8, 0.2, 0.1]), labels) == 1.0
    assert roc_auc(torch.tensor([0.1, 0.2, 0.8, 0.9]), labels) == 0.0
    # pairs (pos, neg): (0.9, 0.5) above, (0.9, 0.3) above, (0.3, 0.5) below, (0.3, 0.3) a tie
    assert roc_auc(torch.tensor([0.9, 0.3, 0.5, 0.3]), labels) == 2.5 / 4
    # calibration does not matter: every probability under 0.5 (accuracy 50 %), ranking perfect
    assert roc_auc(torch.tensor([0.4, 0.45, 0.1, 0.2]), labels) == 1.0
    assert math.isnan(roc_auc(torch.tensor([0.4, 0.3]), torch.tensor([1.0, 1.0])))


def test_the_lip_shape_teacher_trains_heads_on_both_embeddings(data, tmp_path):
    from training.checkpoint import load_model_state
    from training.datasets import read_filelist
    from training.lip_shape import COLUMNS, SHAPE_FEATURES

    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    rng = np.random.default_rng(0)
    keys = read_filelist(copy, "train") + read_filelist(copy, "val")
    shapes = {k: rng.normal(0, 1, (len(list((copy / k).glob("*.jpg"))), len(COLUMNS))).astype(np.float32)
              for k in keys}
    np.savez(copy / "lip_shape.npz", **shapes)
    assert train(copy, tmp_path / "run", "--steps", "2", "--aux", "shape", "--aux-from", "both") == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["shape"]) and r["shape"] > 0 for r in log if "loss" in r)
    for head in ("aux_head", "audio_aux_head"):  # T frames x the teacher's features
        assert load_model_state(tmp_path / "run" / "last.safetensors", head)["weight"].shape[0] == 5 * SHAPE_FEATURES
