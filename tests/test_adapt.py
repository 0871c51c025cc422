"""`python main.py adapt`: fine-tune on a clip's own footage, write beside it, render with it."""
import json

import pytest
import torch

from core.errors import WeightsError
from core.models.wav2lip import GeneratorDims, Wav2Lip
from core.render import RenderOptions, render
from core.video import VideoSource
from core.weights import MODELS_DIR, load_model, save_weights
from training import adapt


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
