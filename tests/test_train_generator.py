"""`python main.py train-generator` with an expert on the tiny synthetic set: the sync term and
its switch, and the expert's per-window LSE-C of generated and real validation windows."""
import json

import numpy as np
import torch

import main
from core.models.syncnet import SyncNet, SyncNetDims
from core.weights import save_weights
from training.datasets import GeneratorDataset


def expert_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "expert.safetensors"
    save_weights(SyncNet(SyncNetDims(width=0.0625)), path)
    return path


def run(data, run_dir, *extra):
    return main.main(["train-generator", "--data", str(data), "--run", str(run_dir), "--width", "0.0625",
                      "--batch-size", "2", "--steps", "3", "--eval-every", "2", "--eval-batches", "1",
                      "--log-every", "1", "--workers", "0", *extra])


def log_of(run_dir):
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_sync_switch_and_lse_c_of_generated_windows(tiny_prepared, tmp_path):
    expert = expert_file(tmp_path)
    assert run(tiny_prepared, tmp_path / "on", "--expert", str(expert), "--sync-switch", "100", "--gan") == 0
    log = log_of(tmp_path / "on")
    steps = [r for r in log if "l1" in r]
    evals = [r for r in log if "val_l1" in r]
    assert evals and all(r["sync_on"] for r in evals if "sync_on" in r)
    # the switch fires at the first evaluation (step 2): the sync term is in the loss from step 3
    assert steps[0]["sync"] == 0 and steps[-1]["sync"] > 0
    for r in evals:
        assert r["val_lse_c"] >= 0 and r["val_lse_c_real"] >= 0  # median - min of distances
        assert np.isfinite(r["val_lse_c"]) and np.isfinite(r["val_lse_c_real"])

    assert run(tiny_prepared, tmp_path / "off", "--expert", str(expert), "--sync-switch", "0") == 0
    assert all(r["sync"] == 0 for r in log_of(tmp_path / "off") if "l1" in r)  # never below 0: never on


def test_shifted_mels_are_the_windows_of_the_shifted_frames(tiny_prepared):
    ds = GeneratorDataset(tiny_prepared, "train", train=False)
    shifts, mels = ds.shifted_mels(0, 3, 15)
    assert shifts[0] == -3  # nothing before the clip's first frame
    assert mels.shape == (len(shifts), 1, 80, 16)
    for s, mel in zip(shifts, mels):
        np.testing.assert_array_equal(mel[0], ds._mel_at(0, 3 + int(s)))
    assert 3 + shifts[-1] + 5 <= ds.clips[0].frames + 1  # inside the audio


def test_best_weights_follow_the_switch_to_the_sync_score(tiny_prepared, tmp_path, monkeypatch):
    """Before the switch best.safetensors is chosen by L1, after it by L1 + sync loss, which is
    never under an L1 alone: the first evaluation after the switch must become the best."""
    from training import train_generator

    sync_losses = iter([5.0, 0.5])  # step 2: above the switch; step 4: below it
    monkeypatch.setattr(train_generator, "evaluate", lambda *a: {"val_l1": 0.3, "val_sync_loss": next(sync_losses),
                                                                 "val_sync_prob": 0.5})
    monkeypatch.setattr(train_generator, "evaluate_lse_c", lambda *a: {})
    expert = expert_file(tmp_path)
    assert run(tiny_prepared, tmp_path / "run", "--expert", str(expert), "--sync-switch", "1", "--steps", "4") == 0
    assert json.loads((tmp_path / "run" / "best.json").read_text())["step"] == 4


def test_sync_weight_defaults_to_the_papers_and_can_be_lowered():
    from types import SimpleNamespace

    from training.train_generator import weights_for
    assert weights_for(SimpleNamespace(gan=True, sync_weight=None), sync_on=True) == (0.03, 0.07)
    assert weights_for(SimpleNamespace(gan=False, sync_weight=None), sync_on=True) == (0.01, 0.0)
    assert weights_for(SimpleNamespace(gan=True, sync_weight=0.01), sync_on=True) == (0.01, 0.07)
    assert weights_for(SimpleNamespace(gan=True, sync_weight=0.01), sync_on=False) == (0.0, 0.07)


def test_grey_keeps_luma_and_drops_colour():
    from training.train_generator import grey
    frames = torch.rand(2, 5, 3, 8, 8)
    out = grey(frames)
    assert out.shape == frames.shape
    assert torch.equal(out[:, :, 0], out[:, :, 2])  # the same value in every channel
    expected = 0.114 * frames[:, :, 0] + 0.587 * frames[:, :, 1] + 0.299 * frames[:, :, 2]
    assert torch.allclose(out[:, :, 1], expected)
    pure_blue, pure_red = torch.zeros(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    pure_blue[0, 0], pure_red[0, 2] = 1, 1
    assert grey(pure_blue).mean() < grey(pure_red).mean()  # BGR order: red weighs more than blue


def test_unpaired_sync_term_is_trained_and_validated(tiny_prepared, tmp_path):
    expert = expert_file(tmp_path)
    assert run(tiny_prepared, tmp_path / "u", "--expert", str(expert), "--sync-switch", "inf",
               "--unpaired-sync", "0.05", "--sync-grey") == 0
    log = log_of(tmp_path / "u")
    steps = [r for r in log if "l1" in r]
    evals = [r for r in log if "val_l1" in r]
    assert steps[0]["sync"] > 0  # inf: the sync term is on from the first step, not the first evaluation
    assert all(r["unpaired"] > 0 for r in steps)
    assert evals and all(np.isfinite(r["val_unpaired_sync_loss"]) for r in evals)


def test_unpaired_sync_needs_an_expert(tiny_prepared, tmp_path):
    import pytest
    with pytest.raises(SystemExit, match="--unpaired-sync needs --expert"):
        run(tiny_prepared, tmp_path / "n", "--unpaired-sync", "0.05")


def test_balance_speakers_makes_the_generators_draws_weighted(tiny_prepared, tmp_path, monkeypatch):
    balanced = []
    original = GeneratorDataset.balance_speakers

    def spy(self):
        original(self)
        balanced.append(self)
    monkeypatch.setattr(GeneratorDataset, "balance_speakers", spy)
    assert run(tiny_prepared, tmp_path / "b", "--balance-speakers") == 0
    [train_set] = balanced  # the training set only; validation keeps its fixed windows
    assert train_set.train and train_set.epoch_size is not None
    assert train_set.clip_weights is not None and np.isclose(train_set.clip_weights.sum(), 1)
    assert any("l1" in r for r in log_of(tmp_path / "b"))
    assert run(tiny_prepared, tmp_path / "p", "--steps", "1") == 0 and len(balanced) == 1  # off by default
