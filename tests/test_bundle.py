import json
from types import SimpleNamespace

import pytest
import torch

import core.weights as weights
from core.models.wav2lip import GeneratorDims, Wav2Lip
from training import bundle


def test_bundle_installs_fp16_with_manifest_and_replaces_the_old_file(tmp_path, monkeypatch):
    models = tmp_path / "models"
    monkeypatch.setattr(weights, "MODELS_DIR", models)
    monkeypatch.setattr(weights, "MANIFEST", models / "manifest.json")
    monkeypatch.setattr(bundle, "MODELS_DIR", models)
    monkeypatch.setattr(bundle, "MANIFEST", models / "manifest.json")
    trained = tmp_path / "best.safetensors"
    torch.manual_seed(0)
    weights.save_weights(Wav2Lip(GeneratorDims(width=0.25)), trained, metadata={"step": 12, "metrics": {"l1": 0.1}})

    assert bundle.bundle(SimpleNamespace(checkpoint=str(trained), name="generator", tag=None)) == 0
    manifest = json.loads((models / "manifest.json").read_text())["models"]
    entry = manifest["generator"]
    assert entry["kind"] == "wav2lip" and entry["dims"]["width"] == 0.25
    assert weights.sha256_file(models / entry["file"]) == entry["sha256"]
    loaded = weights.load_model("generator")  # by bundled name, SHA-256 checked against the manifest
    assert weights.read_sidecar(models / entry["file"])["dtype"] == "float16"
    assert weights.read_sidecar(models / entry["file"])["step"] == 12
    assert loaded.dims.width == 0.25

    wider = tmp_path / "wider.safetensors"
    weights.save_weights(Wav2Lip(GeneratorDims(width=0.5)), wider)
    bundle.bundle(SimpleNamespace(checkpoint=str(wider), name="generator", tag=None))
    assert not (models / entry["file"]).exists()  # the replaced weights do not linger
    assert weights.load_model("generator").dims.width == 0.5

    import main  # a tagged version of the same size: its own file name, the one it replaces removed
    assert main.main(["bundle", str(wider), "--name", "generator", "--tag", "s8"]) == 0
    assert weights.read_manifest()["generator"]["file"] == "generator-wav2lip-w0.5-s8.safetensors"
    assert sorted(p.name for p in models.iterdir()) == ["generator-wav2lip-w0.5-s8.json",
                                                       "generator-wav2lip-w0.5-s8.safetensors", "manifest.json"]
    assert main.main(["bundle", str(wider), "--name", "generator", "--tag", "../up"]) == 2  # never a path


def test_bundled_file_swapped_behind_the_manifest_is_refused(tmp_path, monkeypatch):
    models = tmp_path / "models"
    monkeypatch.setattr(weights, "MODELS_DIR", models)
    monkeypatch.setattr(weights, "MANIFEST", models / "manifest.json")
    path = models / "g.safetensors"
    weights.save_weights(Wav2Lip(GeneratorDims(width=0.25)), path)
    (models / "manifest.json").write_text(json.dumps({"models": {"generator": {"file": "g.safetensors",
                                                                               "sha256": "0" * 64}}}))
    with pytest.raises(weights.WeightsError, match="does not match the bundled manifest"):
        weights.load_model("generator")


def test_a_damaged_manifest_is_named_and_nothing_is_installed(tmp_path, monkeypatch, capsys):
    import main

    models = tmp_path / "models"
    models.mkdir()
    for module in (weights, bundle):
        monkeypatch.setattr(module, "MODELS_DIR", models)
        monkeypatch.setattr(module, "MANIFEST", models / "manifest.json")
    damaged = '{"models": {"generator": {"file": "g.safetensors"'  # cut short
    (models / "manifest.json").write_text(damaged)
    trained = tmp_path / "best.safetensors"
    weights.save_weights(Wav2Lip(GeneratorDims(width=0.25)), trained)

    assert main.main(["bundle", str(trained), "--name", "generator"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {models / 'manifest.json'}: "), err
    assert "not valid JSON" in err[0]
    assert sorted(p.name for p in models.iterdir()) == ["manifest.json"]  # no weights beside a manifest that lacks them
    assert (models / "manifest.json").read_text() == damaged
