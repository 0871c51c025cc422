import json

import pytest
import torch

from core import weights
from core.errors import WeightsError
from core.models.discriminator import QualityDiscriminator
from core.models.syncnet import SyncNet, SyncNetDims
from core.models.wav2lip import GeneratorDims, Wav2Lip
from core.weights import load_model, read_manifest, read_sidecar, resolve, save_weights


class TrainingState:
    """What a training script might pickle beside its weights: an object of its own class."""

    def __init__(self):
        self.step = 3


def randomise(model, seed=1):
    """Random weights and BatchNorm statistics (so a load that drops any of them shows)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
        for name, buf in model.named_buffers():
            if "running_var" in name:
                buf.uniform_(0.5, 1.5)
            elif "running_mean" in name:
                buf.normal_(0, 0.1)
    return model


def same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].float(), sb[k].float()) for k in sa)


def test_safetensors_round_trip_with_sidecar(tmp_path):
    gen = randomise(Wav2Lip(GeneratorDims(width=0.25)))
    path = tmp_path / "gen.safetensors"
    sidecar = save_weights(gen, path, metadata={"step": 7, "metrics": {"l1": 0.1}})
    assert sidecar["kind"] == "wav2lip" and sidecar["dims"]["width"] == 0.25
    assert read_sidecar(path)["step"] == 7
    loaded = load_model(path, expect="wav2lip")
    assert same_state(gen, loaded)
    assert not loaded.training


def test_fp16_storage_loads_as_fp32(tmp_path):
    net = randomise(SyncNet(SyncNetDims(width=0.25)))
    path = tmp_path / "expert.safetensors"
    save_weights(net, path, half=True)
    loaded = load_model(path)
    w = loaded.state_dict()["face_encoder.0.conv_block.0.weight"]
    assert w.dtype == torch.float32
    assert torch.allclose(w, net.state_dict()["face_encoder.0.conv_block.0.weight"], atol=1e-3)


@pytest.mark.parametrize("model_cls", [Wav2Lip, SyncNet, QualityDiscriminator])
def test_official_format_round_trip(tmp_path, model_cls):
    """`{"state_dict": …}` with DataParallel's `module.` prefixes, as the official .pth files are."""
    model = randomise(model_cls())
    path = tmp_path / "official.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
                "global_step": 10}, path)
    loaded = load_model(path)
    assert type(loaded) is model_cls
    assert loaded.dims.width == 1.0
    assert same_state(model, loaded)


def test_official_compact_width_is_inferred(tmp_path):
    model = randomise(Wav2Lip(GeneratorDims(width=0.5)))
    path = tmp_path / "half.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    assert load_model(path).dims.width == 0.5


def test_wrong_model_kind_is_refused(tmp_path):
    path = tmp_path / "expert.safetensors"
    save_weights(SyncNet(SyncNetDims(width=0.25)), path)
    with pytest.raises(WeightsError, match="is a syncnet checkpoint, but a wav2lip model is needed"):
        load_model(path, expect="wav2lip")
    pth = tmp_path / "disc.pth"
    torch.save({"state_dict": QualityDiscriminator().state_dict()}, pth)
    with pytest.raises(WeightsError, match="discriminator checkpoint, but a syncnet"):
        load_model(pth, expect="syncnet")


def test_width_mismatch_is_refused(tmp_path):
    path = tmp_path / "gen.safetensors"
    save_weights(Wav2Lip(GeneratorDims(width=0.25)), path)
    side = path.with_suffix(".json")
    meta = json.loads(side.read_text())
    meta["dims"]["width"] = 0.5
    side.write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="width 0.5"):
        load_model(path)


def test_truncated_and_tampered_files(tmp_path):
    path = tmp_path / "gen.safetensors"
    save_weights(Wav2Lip(GeneratorDims(width=0.25)), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="SHA-256 does not match"):
        load_model(path)
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_model(path, check_sha=False)
    pth = tmp_path / "cut.pth"
    torch.save({"state_dict": SyncNet(SyncNetDims(width=0.25)).state_dict()}, pth)
    pth.write_bytes(pth.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="cut.pth: not a loadable PyTorch checkpoint"):
        load_model(pth)


def test_pickled_code_is_never_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("open(%r, 'w').write('pwned')" % str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": Evil()}, path)
    with pytest.raises(WeightsError):
        load_model(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_a_checkpoint_needing_pickle_is_refused_in_one_plain_line(tmp_path, zip_format):
    path = tmp_path / "custom.pth"
    torch.save({"state_dict": SyncNet(SyncNetDims(width=0.25)).state_dict(), "state": TrainingState()}, path,
               _use_new_zipfile_serialization=zip_format)
    with pytest.raises(WeightsError) as refused:
        load_model(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: is not a plain checkpoint") and "refused for safety" in message
    assert "pickle" in message and "\n" not in message
    assert "weights_only" not in message  # never the unsafe way round


def test_a_page_saved_as_pth_is_not_called_unsafe(tmp_path):
    """A download that saved an error page: not a checkpoint at all, and no torch advice either."""
    path = tmp_path / "wav2lip.pth"
    path.write_text("<!DOCTYPE html><html><body>Not Found</body></html>")
    with pytest.raises(WeightsError) as refused:
        load_model(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: not a loadable PyTorch checkpoint"), message
    assert "safety" not in message and "weights_only" not in message and "\n" not in message


@pytest.mark.parametrize("text, problem", [
    ('{"models": {"generator": {"file": "g.safetensors",', "not valid JSON"),
    ('["generator"]', "no \"models\" table"),
    ('{"models": {"generator": {"sha256": "00"}}}', "generator has no \"file\""),
    ('{"models": {"generator": "g.safetensors"}}', "generator is not a table"),
])
def test_a_damaged_manifest_is_named(tmp_path, monkeypatch, text, problem):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(text)
    monkeypatch.setattr(weights, "MODELS_DIR", tmp_path)
    monkeypatch.setattr(weights, "MANIFEST", manifest)
    with pytest.raises(WeightsError) as refused:
        read_manifest()
    assert str(refused.value).startswith(f"{manifest}: ") and problem in str(refused.value), str(refused.value)
    with pytest.raises(WeightsError, match="manifest.json"):
        resolve("generator")


def test_missing_files(tmp_path):
    with pytest.raises(WeightsError, match="checkpoint not found"):
        load_model(tmp_path / "nope.safetensors")
    orphan = tmp_path / "orphan.safetensors"
    orphan.write_bytes(b"x")
    with pytest.raises(WeightsError, match="no sidecar"):
        load_model(orphan)
    junk = tmp_path / "junk.pth"
    junk.write_text("hello")
    with pytest.raises(WeightsError, match="not a loadable"):
        load_model(junk)
