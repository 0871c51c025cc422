import pytest
import torch

from core.models.syncnet import SyncNet, SyncNetDims
from training.checkpoint import ResumeError, load_training_state, save_training_state


def make(seed):
    torch.manual_seed(seed)
    model = SyncNet(SyncNetDims(width=0.125))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return model, opt


def one_step(model, opt):
    audio, face = model(torch.randn(4, 1, 80, 16), torch.rand(4, 15, 48, 96))
    loss = (audio * face).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_round_trip_restores_model_optimiser_and_rng(tmp_path):
    model, opt = make(0)
    one_step(model, opt)
    path = tmp_path / "last.safetensors"
    config = {"lr": 1e-3, "width": 0.125}
    save_training_state(path, models={"m": model}, optimizers={"m": opt}, step=1, config=config,
                        metrics={"val_loss": 0.5})
    expected_next = torch.rand(3)  # what the RNG gives right after the save

    other, other_opt = make(1)
    side = load_training_state(path, models={"m": other}, optimizers={"m": other_opt}, config=config)
    assert side["step"] == 1 and side["metrics"]["val_loss"] == 0.5
    assert torch.equal(torch.rand(3), expected_next)
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    # the optimiser continues identically: one more step on both gives equal weights
    torch.manual_seed(5)
    one_step(model, opt)
    torch.manual_seed(5)
    one_step(other, other_opt)
    for a, b in zip(model.parameters(), other.parameters()):
        assert torch.allclose(a, b)


def test_changed_hyper_parameters_are_refused_unless_forced(tmp_path):
    model, opt = make(0)
    path = tmp_path / "last.safetensors"
    save_training_state(path, models={"m": model}, optimizers={"m": opt}, step=3,
                        config={"lr": 1e-4, "steps": 100}, metrics={})
    with pytest.raises(ResumeError, match="lr: 0.0001 → 0.001"):
        load_training_state(path, models={"m": model}, optimizers={"m": opt}, config={"lr": 1e-3, "steps": 100})
    # more steps is not a different experiment
    load_training_state(path, models={"m": model}, optimizers={"m": opt}, config={"lr": 1e-4, "steps": 500})
    side = load_training_state(path, models={"m": model}, optimizers={"m": opt}, config={"lr": 1e-3},
                               force=True)
    assert side["step"] == 3


def test_damaged_checkpoint_is_refused(tmp_path):
    model, opt = make(0)
    path = tmp_path / "last.safetensors"
    save_training_state(path, models={"m": model}, optimizers={"m": opt}, step=1, config={}, metrics={})
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ResumeError, match="damaged"):
        load_training_state(path, models={"m": model}, optimizers={"m": opt}, config={})
