"""`python main.py adapt`: fine-tune on a clip's own footage, write beside it, render with it."""
import argparse
import json
import tempfile

import pytest
import torch

from core.errors import Cancelled, WeightsError
from core.models.wav2lip import GeneratorDims, Wav2Lip
from core.render import RenderOptions, render
from core.video import VideoSource
from core.weights import MODELS_DIR, load_model, save_weights
from tests.conftest import BoxDetector, ffmpeg
from training import adapt, train_generator


@pytest.fixture
def base(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "base.safetensors"
    save_weights(Wav2Lip(GeneratorDims(width=0.25)), path)
    return path


@pytest.mark.slow
@pytest.mark.data
def test_adapt_fine_tunes_on_the_clip_and_renders(data_dir, tmp_path, base):
    clip = tmp_path / "speaker.mp4"
    clip.write_bytes((data_dir / "pcavs" / "00002.mp4").read_bytes())
    result = adapt.adapt(clip, base=str(base), expert=None, steps=3, batch_size=4, cache_dir=tmp_path / "faces")
    out = tmp_path / "speaker.adapted.safetensors"  # beside the video by default
    assert result["output"] == str(out) and result["step"] == 3 and result["frames"] > 100
    adapted, original = load_model(out, expect="wav2lip"), load_model(base, expect="wav2lip")
    assert adapted.dims.width == 0.25
    changed = [k for k, v in adapted.state_dict().items()
               if v.is_floating_point() and not torch.allclose(v.float(), original.state_dict()[k].float(), atol=1e-3)]
    assert changed  # training moved the weights
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["clip"]["file"] == "speaker.mp4" and side["adapted_from"]["file"] == "base.safetensors"
    # the adapted model renders like any generator
    report = render(clip, clip, tmp_path / "out.mp4",
                    RenderOptions(checkpoint=str(out), end_frame=10, cache_dir=str(tmp_path / "faces")))
    assert report.frames == 10 and VideoSource(tmp_path / "out.mp4").frame_count == 10


def test_adapt_refuses_the_bundled_folder_and_a_missing_named_expert(tmp_path, base):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0" * 100)
    with pytest.raises(WeightsError, match="bundled models folder"):
        adapt.adapt(clip, MODELS_DIR / "mine.safetensors", base=str(base))
    assert not (MODELS_DIR / "mine.safetensors").exists()
    with pytest.raises(WeightsError, match="not found"):
        adapt.adapt(clip, tmp_path / "x.safetensors", base=str(base), expert=str(tmp_path / "no-expert.safetensors"))
    with pytest.raises(WeightsError, match="must be a .safetensors"):
        adapt.adapt(clip, clip, base=str(base))  # never over the clip (nor any other non-weights file)


# --------------------------------------------------------------------------- progress and cancel (the editor's job)


@pytest.fixture
def clip(tmp_path, monkeypatch):
    import core.faces

    monkeypatch.setenv("LIPSMITH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(core.faces, "get_detector", lambda name="retinaface", **params: BoxDetector())
    video = tmp_path / "speaker.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3",
           "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=3",
           "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", video)
    return video


def generator_args(data, run, base, steps=50):
    return argparse.Namespace(
        data=str(data), run_dir=str(run), width=0.25, batch_size=2, lr=1e-4, steps=steps, max_minutes=0,
        eval_every=1000, eval_batches=1, log_every=1000, workers=0, seed=0, device="cpu", precision="auto",
        av_offsets=None, balance_speakers=False, resume=False, force=False, expert=None, gan=False, init=str(base), sync_switch=0.75,
        sync_weight=None, sync_grey=False, unpaired_sync=0.0, lip_reader=None, shape_weight=0.0)


def test_train_generator_reports_each_step_and_cancel_raises_between_steps(clip, tmp_path, base):
    data = tmp_path / "data"
    assert adapt.prepare_clip(clip, data) > 50
    calls = []
    with pytest.raises(Cancelled):
        train_generator.train(generator_args(data, tmp_path / "run", base), progress=lambda s, t: calls.append((s, t)),
                              cancel=lambda: len(calls) >= 2)
    assert calls == [(1, 50), (2, 50)]  # polled before each step: the third never ran
    assert not list((tmp_path / "run").glob("*.safetensors"))  # no export, no checkpoint: nothing half-done
    # the command line's call is unchanged: no callbacks, runs to its step cap
    assert train_generator.train(generator_args(data, tmp_path / "run2", base, steps=2)) == 0
    assert (tmp_path / "run2" / "final.safetensors").is_file()


def test_adapt_cancelled_while_training_writes_nothing_and_removes_its_temp_folder(clip, tmp_path, base, monkeypatch):
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    stages = []

    def progress(done, total, stage):
        stages.append((stage, done, total))

    cancel = lambda: any(s == "train" and d > 0 for s, d, _ in stages)  # noqa: E731 - after the first step
    with pytest.raises(Cancelled):
        adapt.adapt(clip, base=str(base), expert=None, steps=1000, minutes=0, batch_size=2, progress=progress,
                    cancel=cancel)
    assert {"detect", "train"} <= {s for s, _, _ in stages}
    assert all(0 <= d <= t for _, d, t in stages)
    assert not list(tmp_path.glob("speaker.adapted*"))  # neither the weights nor their sidecar
    assert not list(temp.iterdir())  # the prepared clip and the run folder are gone


def test_adapt_with_progress_runs_to_the_end(clip, tmp_path, base):
    stages = []
    result = adapt.adapt(clip, base=str(base), expert=None, steps=2, batch_size=2,
                         progress=lambda d, t, s: stages.append((s, d, t)), cancel=lambda: False)
    assert result["step"] == 2 and (tmp_path / "speaker.adapted.safetensors").is_file()
    assert ("train", 1000, 1000) in stages or ("save", 1000, 1000) in stages
    assert [s for s, _, _ in stages].index("detect") < [s for s, _, _ in stages].index("train")


@pytest.fixture
def expert(tmp_path):
    from core.models.syncnet import SyncNet, SyncNetDims

    torch.manual_seed(1)
    path = tmp_path / "expert.safetensors"
    save_weights(SyncNet(SyncNetDims(width=0.125)), path)
    return path


def test_adapt_expert_minutes_adapts_the_experts_audio_side_and_the_generator_learns_from_it(
        clip, tmp_path, base, expert):
    stages = []
    result = adapt.adapt(clip, base=str(base), expert=str(expert), steps=2, batch_size=2, expert_minutes=0.01,
                         progress=lambda d, t, s: stages.append(s), cancel=lambda: False)
    adapted_expert = tmp_path / "speaker.adapted.expert.safetensors"
    assert result["expert_output"] == str(adapted_expert) and result["expert"] == adapted_expert.name
    order = [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s]
    assert order[:3] == ["detect", "adapt expert", "train"]
    before, after = (load_model(p, expect="syncnet").state_dict() for p in (expert, adapted_expert))
    moved = lambda k: not torch.allclose(before[k].float(), after[k].float(), atol=1e-3)  # noqa: E731
    assert not any(moved(k) for k in before if k.startswith("face_encoder."))  # it sees the lips already
    assert any(moved(k) for k in before if k.startswith("audio_encoder.") and before[k].is_floating_point())
    side = json.loads(adapted_expert.with_suffix(".json").read_text())
    assert side["adapted_from"]["file"] == "expert.safetensors" and side["clip"]["file"] == "speaker.mp4"
    generator_side = json.loads((tmp_path / "speaker.adapted.json").read_text())
    assert generator_side["expert"] == adapted_expert.name  # the generator's sync teacher was the adapted one


def test_adapt_cancelled_while_adapting_the_expert_writes_nothing(clip, tmp_path, base, expert):
    stages = []
    with pytest.raises(Cancelled):
        adapt.adapt(clip, base=str(base), expert=str(expert), steps=2, batch_size=2, expert_minutes=5,
                    progress=lambda d, t, s: stages.append((s, d)),
                    cancel=lambda: any(s == "adapt expert" and d > 0 for s, d in stages))
    assert "train" not in {s for s, _ in stages}
    assert not list(tmp_path.glob("speaker.adapted*"))
