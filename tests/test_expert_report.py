"""training/expert_report.py and training/identity.py's clustering: the held-out figures and the
speaker grouping they rest on."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from core.models.syncnet import SyncNet, SyncNetDims
from core.weights import save_weights
from tests.test_datasets import build_prepared
from training import expert_report as R
from training.identity import cluster


def test_average_linkage_clusters_close_faces_and_does_not_chain_look_alikes():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 128)
    a /= np.linalg.norm(a)
    b = -a
    near = lambda v: v + rng.normal(0, 0.01, 128)  # noqa: E731
    vectors = np.stack([near(a), near(b), near(a), near(b), near(a)])
    assert cluster(vectors, 0.5).tolist() == [0, 1, 0, 1, 0]
    # a chain of look-alikes, each 0.3 from the next: single linkage would make it one person
    chain = np.stack([np.r_[0.3 * i, np.zeros(127)] for i in range(6)])
    assert len(set(cluster(chain, 0.35).tolist())) == 3 and len(set(cluster(chain, 1.5).tolist())) == 1


def test_best_threshold_and_per_source_window_figures():
    probs = np.array([0.9, 0.8, 0.35, 0.3, 0.2, 0.1, 0.7, 0.25])
    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0], float)
    t = R.best_threshold(probs, labels)
    assert 0.3 < t < 0.35  # every window right
    keys = ["a/x"] * 6 + ["b/y"] * 2
    out = R.window_report(probs, labels, keys, threshold=t)
    assert out["all"]["windows"] == 8 and out["all"]["accuracy_at_train_threshold"] == 1.0
    assert out["all"]["accuracy_at_0.5"] == pytest.approx(7 / 8)  # 0.35 in sync falls under 0.5
    assert out["a"]["auc"] == 1.0 and out["b"]["windows"] == 2 and out["b"]["accuracy_at_0.5"] == 1.0


def test_the_report_scores_every_held_out_clip_against_other_speakers(tmp_path, monkeypatch):
    frames = {"s1/a": 40, "s1/b": 40, "s2/c": 40, "s3/d": 50}
    root = build_prepared(tmp_path / "data", frames)
    (root / "filelists" / "train.txt").write_text("s1/a\ns1/b\n")
    (root / "filelists" / "val.txt").write_text("s2/c\ns3/d\n")
    (root / "manifest.json").write_text(json.dumps({"clips": {"s2/c": {"speaker": "p"}, "s3/d": {"speaker": "q"}}}))
    expert = tmp_path / "expert.safetensors"
    save_weights(SyncNet(SyncNetDims(width=0.125)), expert)
    pairs = []

    def fake_score(scorer, crops, has_face, mel):  # own audio: the mel with the crops' length
        pairs.append((len(crops), mel.shape[1]))
        own = abs(mel.shape[1] - (1 + len(crops) * 640 // 200)) <= 1
        conf = np.full(len(crops), 0.5 if own else 0.3)
        conf[:2] = np.nan  # frames no window covers: not part of the mean
        return SimpleNamespace(lse_c=2.0 if own else 1.0, frame_conf=conf)

    monkeypatch.setattr(R, "score_crops", fake_score)
    result = R.report(root, str(expert), max_windows=50, foreign=2)
    assert result["val_speakers"] == 2
    val = result["val_windows"]
    assert set(val) == {"all", "s2", "s3"} and val["all"]["windows"] == 50
    assert 0 <= val["all"]["auc"] <= 1 and 0 <= result["threshold_from_training_speakers"] <= 1
    # s2/c (40 frames) against s3/d's audio (longer: allowed); s3/d has no other speaker as long
    assert result["val_clips"]["s2"] == {"pairs": 1, "own_beats_foreign": 1.0, "own_lse_c": 2.0, "foreign_lse_c": 1.0,
                                         "own_segment_conf": 0.5, "foreign_segment_conf": pytest.approx(0.3)}
    assert "| s2 |" in R.table(result) and "| 2 s and more |" in R.table(result)
    assert result["val_clips"]["s3"]["pairs"] == 0
    # s2/c (1.6 s) is under 2 s and s3/d (2 s) has no foreign track as long: no weak line from them
    assert result["val_clips"][R.LONG]["pairs"] == 0 and np.isnan(result["weak_line"])
    assert R.weak_line({R.LONG: {"own_segment_conf": 0.09, "foreign_segment_conf": 0.03}}) == pytest.approx(0.06)
    assert len(pairs) == 3
