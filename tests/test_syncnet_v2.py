"""The official SyncNet v2 (syncnet_v2.model): layout, loading, MFCC windows, crops, scoring.

No real syncnet_v2.model is used (none is shipped or downloaded): the layout is checked key by
key against the published one, and the models here have random weights.
"""
import numpy as np
import pytest
import torch

from core.atomic import sha256_file
from core.errors import WeightsError
from core.faces.track import FaceTrack
from core.models.syncnet_v2 import SyncNetV2
from core.sync import (SyncNetV2Scorer, load_scorer, scale_of, score_video, syncnet_v2_crop, syncnet_v2_crop_box)
from core.weights import load_model
from tests.conftest import ffmpeg, speech_like
from tests.test_weights import randomise

# a sample of the official file's keys and shapes (BN, ReLU and pooling layers take indices)
OFFICIAL = {
    "netcnnaud.0.weight": (64, 1, 3, 3), "netcnnaud.1.running_var": (64,),
    "netcnnaud.4.weight": (192, 64, 3, 3), "netcnnaud.8.weight": (384, 192, 3, 3),
    "netcnnaud.11.weight": (256, 384, 3, 3), "netcnnaud.14.weight": (256, 256, 3, 3),
    "netcnnaud.18.weight": (512, 256, 5, 4), "netcnnaud.19.running_mean": (512,),
    "netfcaud.0.weight": (512, 512), "netfcaud.1.weight": (512,), "netfcaud.3.weight": (1024, 512),
    "netfcaud.3.bias": (1024,),
    "netcnnlip.0.weight": (96, 3, 5, 7, 7), "netcnnlip.1.bias": (96,),
    "netcnnlip.4.weight": (256, 96, 1, 5, 5), "netcnnlip.8.weight": (256, 256, 1, 3, 3),
    "netcnnlip.11.weight": (256, 256, 1, 3, 3), "netcnnlip.14.weight": (256, 256, 1, 3, 3),
    "netcnnlip.15.running_var": (256,), "netcnnlip.18.weight": (512, 256, 1, 6, 6),
    "netcnnlip.19.bias": (512,), "netfclip.0.weight": (512, 512), "netfclip.3.weight": (1024, 512),
}


def random_official_state(seed=0, counters=True) -> dict:
    state = randomise(SyncNetV2(), seed).state_dict()
    if not counters:  # files saved before PyTorch 0.4.1 have no num_batches_tracked
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    return state


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("v2") / "syncnet_v2.model"
    torch.save(random_official_state(), path)  # a plain state dict, as the official file is
    return path


def test_module_tree_has_the_official_keys_and_shapes():
    state = SyncNetV2().state_dict()
    for key, shape in OFFICIAL.items():
        assert tuple(state[key].shape) == shape, key
    # ReLU and pooling indices hold no tensors; nothing beyond the four towers
    assert not any(k.startswith(("netcnnaud.3.", "netcnnaud.7.", "netcnnlip.2.", "netcnnlip.17.")) for k in state)
    assert {k.split(".")[0] for k in state} == {"netcnnaud", "netfcaud", "netcnnlip", "netfclip"}
    assert sum(1 for k in state if k.endswith(".weight") and state[k].ndim > 1) == 16  # 6 + 6 convs, 4 linears
    model = SyncNetV2().eval()
    with torch.no_grad():
        audio, lips = model(torch.randn(2, 1, 13, 20), 255 * torch.rand(2, 3, 5, 224, 224))
    assert audio.shape == lips.shape == (2, 1024)


@pytest.mark.parametrize("counters", [True, False])
def test_official_file_round_trips_through_load_model_and_load_scorer(tmp_path, counters):
    state = random_official_state(seed=3, counters=counters)
    path = tmp_path / "syncnet_v2.model"
    torch.save(state, path)
    model = load_model(path)
    assert isinstance(model, SyncNetV2) and not model.training
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    scorer = load_scorer(str(path))
    assert isinstance(scorer, SyncNetV2Scorer) and scorer.name == "syncnet_v2:syncnet_v2.model"
    assert scale_of(scorer) == {"name": scorer.name, "sha256": sha256_file(path), "weak_below": 1.0}  # a project's record
    with pytest.raises(WeightsError, match="is a syncnet_v2 checkpoint, but a syncnet model is needed"):
        load_model(path, expect="syncnet")


def test_truncated_or_incomplete_official_files_fail_clearly(tmp_path, official_file):
    data = official_file.read_bytes()
    cut = tmp_path / "cut.model"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsError, match="cut.model: not a loadable PyTorch checkpoint"):
        load_model(cut)

    state = random_official_state()
    del state["netcnnlip.8.weight"]
    missing = tmp_path / "missing.model"
    torch.save(state, missing)
    with pytest.raises(WeightsError, match=r"keys do not match a syncnet_v2: 1 missing .*netcnnlip\.8\.weight"):
        load_model(missing)

    state = random_official_state()
    del state["netcnnlip.0.weight"]  # the key the file is sized by
    torch.save(state, missing)
    with pytest.raises(WeightsError, match="looks like a syncnet_v2 checkpoint but lacks netcnnlip.0.weight"):
        load_scorer(str(missing))

    state = random_official_state()
    state["netfcaud.3.weight"] = state["netfcaud.3.weight"][:512]  # an embedding of another size
    torch.save(state, missing)
    with pytest.raises(WeightsError, match=r"netfcaud\.3\.weight has shape \(512, 512\)"):
        load_model(missing)


def test_mfcc_features_and_window_indexing_match_the_reference(official_file):
    from python_speech_features import mfcc

    scorer = load_scorer(str(official_file))
    wave = 0.5 * speech_like(1.0, seed=2)  # within 16 bits: no clipping
    features = scorer.audio_features(wave)
    expected = mfcc(np.round(wave * 32768).astype(np.int16), 16000).T  # the reference reads 16-bit WAV
    assert features.shape == expected.shape and features.shape[0] == 13
    assert abs(features.shape[1] - 100) <= 2  # 100 steps per second
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-4)

    # the window of video frame v is MFCC columns [4v, 4v + 20); past the end: zeros
    scorer.model.audio_embedding = lambda x: x.flatten(1)
    n = 25
    emb = scorer.audio_embeddings(features, n)
    for v in range(n):
        window = np.zeros((13, 20), np.float32)
        columns = features[:, 4 * v:4 * v + 20]
        window[:, :columns.shape[1]] = columns
        np.testing.assert_array_equal(emb[v], window.reshape(-1), err_msg=f"frame {v}")
    with pytest.raises(ValueError, match="takes MFCC features"):
        scorer.audio_embeddings(np.zeros((80, 100), np.float32), 5)


def reference_crop(frame, box, cs=0.4):
    """The reference pipeline's way, literally: pad the whole frame, slice, resize."""
    import cv2

    bs = max(box[2] - box[0], box[3] - box[1]) / 2
    cy, cx = (box[1] + box[3]) / 2, (box[0] + box[2]) / 2
    p = int(bs * (1 + 2 * cs))
    padded = np.pad(frame, ((p, p), (p, p), (0, 0)), constant_values=110)
    my, mx = cy + p, cx + p
    face = padded[int(my - bs):int(my + bs * (1 + 2 * cs)), int(mx - bs * (1 + cs)):int(mx + bs * (1 + cs))]
    return cv2.resize(face, (224, 224))


def test_crop_geometry_matches_the_reference_including_frame_edges():
    # box 60 × 70 centred at (130, 115): bs 35, pad int(35·1.8) = 63;
    # rows 115 − 35 .. 115 + 63 → 80..178, columns 130 ± 49 → 81..179 (truncated in padded coordinates)
    assert syncnet_v2_crop_box((100, 80, 160, 150)) == (81, 80, 179, 178)
    # the crop is a square of side 2·bs·(1 + cs) whose top edge sits bs above the centre
    x1, y1, x2, y2 = syncnet_v2_crop_box((10.5, 20.25, 110.5, 100.25))
    assert (x2 - x1, y2 - y1) == (140, 140) and y1 == 10

    frame = np.random.default_rng(0).integers(0, 255, (180, 240, 3), dtype=np.uint8)
    for box in [(100, 80, 160, 150),  # inside
                (-12.5, -8.0, 40.3, 50.7),  # over the top-left corner
                (200.2, 130.6, 251.0, 184.9),  # over the bottom-right corner
                (0, 0, 240, 180)]:  # the whole frame: the crop leaves it on every side
        crop = syncnet_v2_crop(frame, box)
        assert crop.shape == (224, 224, 3)
        np.testing.assert_array_equal(crop, reference_crop(frame, box), err_msg=str(box))
    x1, y1, x2, y2 = syncnet_v2_crop_box((200.2, 130.6, 251.0, 184.9))
    assert x2 > 240 and y2 > 180  # partly outside: that part is the grey 110
    assert (syncnet_v2_crop(frame, (200.2, 130.6, 251.0, 184.9))[-5:, -5:] == 110).all()


def test_score_video_end_to_end_with_a_random_official_model(tmp_path, official_file):
    video = tmp_path / "clip.mp4"
    wav = tmp_path / "voice.wav"
    import soundfile as sf

    sf.write(str(wav), speech_like(0.64, seed=1), 16000)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=0.64", "-i", wav,
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", video)
    n = 16
    boxes = np.tile([50.0, 30.0, 110.0, 100.0], (n, 1))
    has_face = np.ones(n, bool)
    has_face[12] = False
    boxes[12] = np.nan
    track = FaceTrack(boxes, None, has_face, np.zeros(n, bool), np.ones(n), [], (160, 120))
    scorer = load_scorer(str(official_file))
    scores = score_video(video, wav, scorer=scorer, track=track)
    assert scores.scorer.startswith("syncnet_v2")
    n_frames = len(scores.frame_conf)
    assert n_frames in (15, 16)
    # the reference's window count (n − 5); windows over frame 12 have no face
    assert scores.windows == sum(1 for i in range(n_frames - 5) if not i <= 12 < i + 5)
    assert np.isfinite(scores.lse_d) and scores.lse_c >= 0 and abs(scores.offset_frames) <= 15
    assert scores.per_offset.shape == (31,)
