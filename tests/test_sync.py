import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.faces.track import FaceTrack
from core.models.syncnet import SyncNet, SyncNetDims
from core.sync import MAX_SHIFT, ExpertScorer, lse_scores, score_crops, score_video
from tests.conftest import ffmpeg, speech_like


def random_unit(n, d=32, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("lag", [0, 3, -5, 12])
def test_offset_and_scores_on_planted_sync(lag):
    n_frames = 120
    audio = random_unit(n_frames + 40)
    n_windows = n_frames - 4
    # the face window i matches the audio window i + lag
    face = np.stack([audio[np.clip(i + lag, 0, len(audio) - 1)] for i in range(n_windows)])
    scores = lse_scores(face, audio, np.ones(n_windows, bool), "test", n_frames)
    assert scores.offset_frames == lag
    assert scores.lse_d < 0.05
    assert scores.lse_c > 1.0  # random unit vectors sit ~√2 apart
    assert scores.per_offset.shape == (2 * MAX_SHIFT + 1,)
    assert scores.offset_ms == pytest.approx(lag * 40)


def test_frame_confidence_drops_where_sync_is_lost():
    n_frames = 200
    audio = random_unit(n_frames)
    face = audio[: n_frames - 4].copy()
    face[100:] = random_unit(n_frames - 4 - 100, seed=1)  # second half: foreign audio
    scores = lse_scores(face, audio, np.ones(n_frames - 4, bool), "test", n_frames)
    assert np.nanmean(scores.frame_conf[10:90]) > 1.0
    assert np.nanmean(scores.frame_conf[115:190]) < 0.3
    assert scores.segment_confidence(0.4, 3.6) > scores.segment_confidence(4.6, 7.6)


def test_windows_without_faces_are_excluded():
    n_frames = 60
    audio = random_unit(n_frames)
    face = audio[: n_frames - 4].copy()
    valid = np.ones(n_frames - 4, bool)
    valid[20:40] = False
    face[20:40] = random_unit(20, seed=3)  # garbage where there is no face must not count
    scores = lse_scores(face, audio, valid, "test", n_frames)
    assert scores.windows == n_frames - 4 - 20
    assert scores.lse_d < 0.05
    assert np.isnan(scores.frame_conf[25:40]).all()
    assert np.isnan(scores.segment_confidence(1.0, 1.5))


def test_no_face_at_all_gives_nan_not_a_crash():
    scores = lse_scores(random_unit(10), random_unit(14), np.zeros(10, bool), "test", 14)
    assert np.isnan(scores.lse_d) and scores.windows == 0


def test_expert_scorer_end_to_end_shapes():
    torch.manual_seed(0)
    scorer = ExpertScorer(SyncNet(SyncNetDims(width=0.125)), "ours-random", batch_size=8)
    crops = np.random.default_rng(0).integers(0, 255, (30, 96, 96, 3), dtype=np.uint8)
    mel = np.random.default_rng(1).uniform(-4, 4, (80, 30 * 80 // 25 + 16)).astype(np.float32)
    scores = score_crops(scorer, crops, np.ones(30, bool), mel)
    assert scores.windows == 26 and scores.scorer == "ours-random"
    assert np.isfinite(scores.lse_d) and scores.lse_c >= 0
    assert len(scores.frame_conf) == 30
    assert np.isnan(scores.frame_conf[:2]).all() and np.isnan(scores.frame_conf[28:]).all()  # no window centred there
    with pytest.raises(ValueError, match="at least 5 frames"):
        score_crops(scorer, crops[:3], np.ones(3, bool), mel)


def reference_evaluation(face, audio):
    """The official SyncNet evaluation's numbers, written out as plain loops: audio windows past
    the W face windows are zero vectors, distances as torch's pairwise_distance, mean per shift,
    per-frame confidence from the clip median, scipy-style median filter (zero-padded ends)."""
    W, D = face.shape
    dist = np.zeros((W, 2 * MAX_SHIFT + 1))
    for i in range(W):
        for j in range(2 * MAX_SHIFT + 1):
            k = i + j - MAX_SHIFT
            a = audio[k] if 0 <= k < W else np.zeros(D)
            dist[i, j] = F.pairwise_distance(torch.tensor(face[i:i + 1]), torch.tensor(a[None])).item()
    mean = dist.mean(axis=0)
    j = int(np.argmin(mean))
    conf = np.median(mean) - dist[:, j]
    filtered = np.array([np.median([conf[i + d] if 0 <= i + d < W else 0.0 for d in range(-4, 5)])
                         for i in range(W)])
    return {"lse_d": mean[j], "lse_c": np.median(mean) - mean[j], "av_offset": MAX_SHIFT - j,
            "per_offset": mean, "frame_conf": filtered}


@pytest.mark.parametrize("lag", [0, 4, -7])
def test_reference_mode_reproduces_the_official_evaluation(lag):
    rng = np.random.default_rng(lag + 20)
    n_frames = 70
    W = n_frames - 5  # the reference's window count
    audio = rng.normal(0, 4, (n_frames, 24))  # unnormalised, as SyncNet v2's embeddings are
    face = np.stack([audio[i + lag] if 0 <= i + lag < n_frames else rng.normal(0, 4, 24) for i in range(W)])
    face += rng.normal(0, 0.5, face.shape)
    ref = reference_evaluation(face, audio)
    scores = lse_scores(face, audio, np.ones(W, bool), "v2", n_frames, reference=True)
    assert scores.lse_d == pytest.approx(ref["lse_d"], rel=1e-9)
    assert scores.lse_c == pytest.approx(ref["lse_c"], rel=1e-9)
    np.testing.assert_allclose(scores.per_offset, ref["per_offset"], rtol=1e-9)
    assert scores.offset_frames == lag == -ref["av_offset"]  # our sign: positive = the audio lags
    np.testing.assert_allclose(scores.frame_conf[2:2 + W], ref["frame_conf"], rtol=1e-9, atol=1e-9)
    assert np.isnan(scores.frame_conf[:2]).all() and np.isnan(scores.frame_conf[2 + W:]).all()
    # the default protocol on the same embeddings differs (normalised, no zero padding)
    default = lse_scores(face, audio, np.ones(W, bool), "ours", n_frames)
    assert default.offset_frames == lag and default.lse_d != pytest.approx(scores.lse_d)


def test_score_video_with_our_expert_on_a_synthetic_clip(tmp_path):
    import soundfile as sf

    wav, video = tmp_path / "voice.wav", tmp_path / "clip.mp4"
    sf.write(str(wav), speech_like(0.8, seed=4), 16000)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=0.8", "-i", wav,
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", video)
    n = 20
    track = FaceTrack(np.tile([40.0, 20.0, 120.0, 110.0], (n, 1)), None, np.ones(n, bool), np.zeros(n, bool),
                      np.ones(n), [], (160, 120))
    torch.manual_seed(0)
    scorer = ExpertScorer(SyncNet(SyncNetDims(width=0.125)), "ours-random", batch_size=8)
    scores = score_video(video, wav, scorer=scorer, track=track)
    assert scores.scorer == "ours-random" and np.isfinite(scores.lse_d)
    assert scores.windows == len(scores.frame_conf) - 4


def test_offsets_past_the_audio_take_no_part_and_no_audio_under_faces_is_nan():
    rng = np.random.default_rng(0)
    face = rng.normal(size=(40, 8))
    audio = face[:12] + 0.05 * rng.normal(size=(12, 8))  # audio ends under window 12: long shifts have no mean
    valid = np.zeros(40, bool)
    valid[:4] = True  # the faces are only where the audio reaches +8 frames at most
    s = lse_scores(face, audio, valid, "t", 44)
    assert np.isnan(s.per_offset).any() and np.isfinite(s.lse_d) and np.isfinite(s.lse_c)
    assert s.offset_frames == 0 and s.lse_c > 0
    gone = lse_scores(face, audio[:0], np.ones(40, bool), "t", 44)  # no audio at all
    assert np.isnan(gone.lse_c) and gone.windows == 0


def test_the_bundled_expert_scores_on_its_recorded_version_and_weak_line():
    from core.sync import load_scorer, scale_of
    from core.sync_scale import EXPERT_WEAK_BELOW
    from core.weights import read_manifest

    scale = scale_of(load_scorer("expert"))
    entry = read_manifest()["expert"]
    assert scale == {"name": f"lipsmith-expert:{entry['file']}", "sha256": entry["sha256"],
                     "weak_below": EXPERT_WEAK_BELOW}
