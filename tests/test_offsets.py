"""training/offsets.py: which measured offsets are kept, and the file train-expert reads back."""
import argparse
import json
from types import SimpleNamespace

import cv2
import numpy as np
import soundfile as sf

from tests.conftest import speech_like
from training import offsets
from training.datasets import StretchDataset, frame_loudness, read_av_offsets, read_clip_mel, scan_clip
from training.lip_shape import COLUMNS

# clip -> (offset the fake scorer reports, its LSE-C), in the order clips are scored (train, then val)
MEASURED = {"a/sure": (3, 2.5), "a/zero": (0, 4.0), "b/too_far": (11, 3.0), "b/unsure": (2, 0.4)}


def make_prepared(root):
    for n, key in enumerate(MEASURED):
        (root / key).mkdir(parents=True)
        for i in range(40):
            cv2.imwrite(str(root / key / f"{i}.jpg"), np.full((96, 96, 3), 4 * i, np.uint8))
        sf.write(str(root / key / "audio.wav"), speech_like(40 / 25, seed=n), 16000)
    (root / "filelists").mkdir()
    (root / "filelists" / "train.txt").write_text("a/sure\na/zero\nb/too_far\n")
    (root / "filelists" / "val.txt").write_text("b/unsure\n")


def test_offsets_keeps_confident_small_offsets_and_training_reads_them(tmp_path, monkeypatch):
    make_prepared(tmp_path)
    scored = []

    def fake_score(scorer, frames, has_face, mel):
        key = list(MEASURED)[len(scored)]
        scored.append(key)
        assert frames.shape == (40, 96, 96, 3) and mel.shape[0] == 80
        offset, lse_c = MEASURED[key]
        return SimpleNamespace(offset_frames=offset, lse_c=lse_c)

    monkeypatch.setattr(offsets, "load_scorer", lambda expert: SimpleNamespace(name="fake", frames=5))
    monkeypatch.setattr(offsets, "score_crops", fake_score)
    args = argparse.Namespace(data=str(tmp_path), expert="x", output=None, min_confidence=1.0, max_offset=6, from_aperture=False)
    assert offsets.run(args) == 0

    written = json.loads((tmp_path / "av_offsets.json").read_text())
    assert written["offsets"] == {"a/sure": 3, "a/zero": 0}
    assert written["unsure"] == {"b/too_far": 11, "b/unsure": 2}
    assert written["confidence"]["b/unsure"] == 0.4 and written["scorer"] == "fake"

    # train-expert --av-offsets: only a/sure is shifted, by 3 frames
    av = read_av_offsets(tmp_path / "av_offsets.json")
    shifted = StretchDataset(tmp_path, "train", train=False, stretch=8, av_offsets=av)
    plain = StretchDataset(tmp_path, "train", train=False, stretch=8)
    sizes = lambda ds: {c.key: len(s) for c, s in zip(ds.clips, ds.starts)}  # noqa: E731
    assert sizes(shifted)["a/sure"] == sizes(plain)["a/sure"] - 3
    assert sizes(shifted)["b/too_far"] == sizes(plain)["b/too_far"]


def test_offsets_from_aperture_finds_the_lag_of_the_lips_against_the_loudness(tmp_path, capsys):
    make_prepared(tmp_path)
    rng = np.random.default_rng(0)
    loud = {key: frame_loudness(read_clip_mel(scan_clip(tmp_path, key)), 40) for key in MEASURED}
    shifted = np.full(40, np.nan, np.float32)
    shifted[:-3] = loud["a/sure"][3:]  # the lips open 3 frames before the voice is heard: audio late by 3
    apertures = {"a/sure": shifted + rng.normal(0, 0.05, 40).astype(np.float32),
                 "a/zero": loud["a/zero"] + rng.normal(0, 0.05, 40).astype(np.float32),
                 "b/too_far": rng.normal(0, 1, 40).astype(np.float32)}  # no relation: unsure or lag 0
    np.savez(tmp_path / "lip_shape.npz", **{key: np.pad(a[:, None], ((0, 0), (0, len(COLUMNS) - 1)))
                                            for key, a in apertures.items()})  # column 0: the aperture
    args = argparse.Namespace(data=str(tmp_path), expert=None, output=None, from_aperture=True, max_offset=4,
                              min_r=0.3, min_gain=0.1, min_frames=40)
    assert offsets.run(args) == 0
    written = json.loads((tmp_path / "av_offsets.json").read_text())
    assert written["offsets"]["a/sure"] == 3 and written["offsets"]["a/zero"] == 0
    assert written["offsets"].get("b/too_far", 0) == 0  # never shifted on a weak correlation: 0 or dropped
    assert ("b/too_far" in written["drop"]) == ("b/too_far" not in written["offsets"])
    assert "b/unsure" not in written["offsets"] and "b/unsure" not in written["unsure"]  # not measured
    assert written["confidence"]["a/sure"] > 0.9 and written["scorer"] == "aperture-loudness"
    # the shift puts the voice back under the lips: the dataset pairs frame i with audio of frame i + 3
    assert read_av_offsets(tmp_path / "av_offsets.json")["a/sure"] == 3


def test_short_clips_take_their_sources_pooled_offset_and_unclear_long_ones_are_dropped(tmp_path, capsys):
    make_prepared(tmp_path)
    rng = np.random.default_rng(1)
    loud = {key: frame_loudness(read_clip_mel(scan_clip(tmp_path, key)), 40) for key in MEASURED}
    late = {}
    for key in ("a/sure", "a/zero"):  # both of source a: lips 2 frames ahead of the voice
        late[key] = np.full(40, np.nan, np.float32)
        late[key][:-2] = loud[key][2:] + rng.normal(0, 0.3, 38)
    # lips 3 frames ahead but buried in noise: its best lag (+3, r 0.28) is too weak to apply
    late["b/too_far"] = np.full(40, np.nan, np.float32)
    late["b/too_far"][:-3] = loud["b/too_far"][3:]
    late["b/too_far"] += np.random.default_rng(4).normal(0, 2.5 * np.nanstd(loud["b/too_far"]), 40)
    np.savez(tmp_path / "lip_shape.npz", **{key: np.pad(a[:, None], ((0, 0), (0, len(COLUMNS) - 1)))
                                            for key, a in late.items()})
    short = offsets.measure_from_aperture(tmp_path, 4, 0.3, 0.1, min_frames=41)  # every clip is "short"
    assert short["pooled"]["a"]["offset"] == 2 and short["pooled"]["a"]["applied"]
    assert short["offsets"]["a/sure"] == short["offsets"]["a/zero"] == 2 and short["drop"] == []
    assert short["offsets"]["b/too_far"] == (short["pooled"]["b"]["offset"] if short["pooled"]["b"]["applied"] else 0)
    long = offsets.measure_from_aperture(tmp_path, 4, 0.3, 0.1, min_frames=40)
    assert long["offsets"]["a/sure"] == 2
    assert long["drop"] == ["b/too_far"] and long["unsure"] == {"b/too_far": 3} and "b/too_far" not in long["offsets"]
    (tmp_path / "av_offsets.json").write_text(json.dumps(long))
    ds = StretchDataset(tmp_path, "train", train=False, stretch=8, av_offsets=read_av_offsets(tmp_path / "av_offsets.json"))
    assert "b/too_far" in ds.skipped and {c.key for c in ds.clips} == {"a/sure", "a/zero"}
