"""training/prepare.py: speaker split, errors, and the whole pipeline on synthetic videos
(with a stub face detector) and, when ../shared/data is present, on two real clips."""
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from core.audio import load_audio
from core.faces import Detection
from core.video import VideoWriter
from training import prepare as P
from training.prepare import (DatasetError, face_runs, find_videos, prepare_dataset, speaker_of,
                              split_by_speaker)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# --------------------------------------------------------------------------- synthetic media


class BrightBoxDetector:
    """Stub detector: the bounding box of all non-black pixels is the face."""

    def identity(self):
        return {"name": "test-bright-box"}

    def detect(self, frame):
        ys, xs = np.nonzero(frame.max(axis=2) > 40)
        if len(xs) == 0:
            return []
        return [Detection((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), 0.99, None)]


BOX = (40, 20, 120, 100)  # x1, y1, x2, y2 of the synthetic "face"
W, H = 160, 120


BITS = 7


def synth_frame(i, face=True):
    """Black frame with a grey "face"; inside it, source frame i's index in binary (7 blocks)."""
    frame = np.zeros((H, W, 3), np.uint8)
    if face:
        x1, y1, x2, y2 = BOX
        frame[y1:y2, x1:x2] = 128
        for b in range(BITS):
            frame[40:52, 44 + 10 * b:52 + 10 * b] = 220 if (i >> b) & 1 else 60
    return frame


def read_index(crop):
    """The source frame index written by synth_frame, read back from a saved crop."""
    x1, y1 = BOX[0], BOX[1]
    bits = [crop[40 - y1 + 3:52 - y1 - 3, 44 + 10 * b - x1 + 2:52 + 10 * b - x1 - 2].mean() > 140
            for b in range(BITS)]
    return sum(1 << b for b, bit in enumerate(bits) if bit)


def write_video(path, n, fps, audio=True, missing=(), seconds_audio=None, sr=16000, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = None
    if audio:
        rng = np.random.default_rng(seed)
        t = np.arange(int((seconds_audio or n / fps) * sr)) / sr
        signal = 0.3 * np.clip(np.sin(2 * np.pi * 3 * t), 0, None) * rng.standard_normal(t.size)
        wav = path.with_suffix(".src.wav")
        sf.write(str(wav), signal.astype(np.float32), sr)
    with VideoWriter(path, W, H, fps, audio_path=wav) as writer:
        for i in range(n):
            writer.write(synth_frame(i, face=i not in missing))
    if wav is not None:
        wav.unlink()
    return path


@pytest.fixture(scope="module")
def synth_src(tmp_path_factory):
    """A folder of videos: a 30 fps clip with a 6-frame face gap, and one of each skip reason."""
    src = tmp_path_factory.mktemp("src")
    # 72 frames at 30 fps = 2.4 s -> 60 frames at 25 fps; source frames 33..38 have no face,
    # i.e. output frames 28..32 (shown frame = floor(1.2 k)): runs 0..27 and 33..59.
    write_video(src / "cam" / "talk.mp4", 72, 30, missing=range(33, 39))
    write_video(src / "cam" / "steady.mp4", 50, 25, seed=1)  # 2 s, face throughout
    write_video(src / "other" / "mute.mp4", 40, 25, audio=False)
    write_video(src / "other" / "empty.mp4", 40, 25, missing=range(40))
    write_video(src / "other" / "short.mp4", 20, 25)  # 0.8 s
    (src / "other" / "broken.mp4").write_bytes(b"not a video at all" * 100)
    (src / "other" / "notes.txt").write_text("ignored")
    return src


@pytest.fixture(scope="module")
def prepared(synth_src, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    lines = []
    summary = prepare_dataset(synth_src, out, detector=BrightBoxDetector(), val_fraction=0.3,
                              cache_dir=tmp_path_factory.mktemp("cache"), log=lines.append)
    return out, summary, lines


# --------------------------------------------------------------------------- speakers


def test_speaker_of_uses_the_known_groups_and_defaults_to_the_clip():
    assert speaker_of("pcavs/741400104") == speaker_of("pcavs/741400163")
    assert speaker_of("pcavs/00002") == speaker_of("pcavs/517600055")
    assert speaker_of("pcavs/00002") != speaker_of("pcavs/741400104")
    assert speaker_of("grid/id2_vcd_swwp2s") == speaker_of("grid/pwij3p")
    aoc = {speaker_of(k) for k in ("sadtalker/WDA_AlexandriaOcasioCortez_000", "video-retalking/face_3",
                                   "hdtf/aoc_flags")}
    assert len(aoc) == 1
    assert speaker_of("grid_s1/bbbs5s") == speaker_of("grid/bbaf2n") == speaker_of("grid_s1/swih9a")
    assert speaker_of("grid/brbk7n") != speaker_of("grid/lbax4n")  # other GRID speakers
    assert speaker_of("lrs2_demo/av_demo_00009") != speaker_of("lrs2_demo/av_demo_00016")
    assert speaker_of("misc/interview_part2") == speaker_of("misc/interview_part1") == "misc/interview"
    assert speaker_of("video-retalking/face_3_part1") == speaker_of("hdtf/aoc_flags")


def test_split_by_speaker_keeps_speakers_whole_seeded_and_near_the_fraction_per_folder():
    clips = {f"grid_s1/c{i}": 75 for i in range(40)}  # one big speaker, also in grid/
    clips.update({f"pcavs/{i:05d}": 100 + 10 * i for i in range(20)})
    clips.update({"pcavs/741400104": 300, "pcavs/741400163": 350, "grid/bbaf2n": 75, "grid/brbk7n": 75,
                  "grid/lbax4n": 80})
    clips.update({f"lrs2_bbc/{p}_{n:05d}": 40 for p in range(10) for n in range(3)})  # 10 programmes of 3 clips
    seen_val = set()
    for seed in range(6):
        train, val = split_by_speaker(clips, 0.15, seed)
        assert sorted(train + val) == sorted(clips)
        assert not {speaker_of(k) for k in train} & {speaker_of(k) for k in val}
        for folder in ("pcavs", "lrs2_bbc"):  # each folder validated on its own speakers, near its share
            total = sum(n for k, n in clips.items() if k.startswith(folder))
            in_val = sum(clips[k] for k in val if k.startswith(folder))
            assert 0.10 * total <= in_val <= 0.15 * total
        assert len({speaker_of(k) for k in clips if k.startswith("lrs2_bbc")}) == 10  # a programme, a speaker
        assert split_by_speaker(clips, 0.15, seed) == (train, val)
        seen_val.add(tuple(val))
        assert ("pcavs/741400104" in val) == ("pcavs/741400163" in val)
        assert not any(k.startswith("grid_s1") for k in val)  # grid:s1 is grid's too big speaker
    assert len(seen_val) > 1  # the seed matters
    assert split_by_speaker(clips, 0.0, 0)[1] == []
    # every speaker bigger than the target: still one for validation, one for training (folders of one
    # speaker each are pooled)
    train, val = split_by_speaker({"a/x": 100, "b/y": 200}, 0.1, 0)
    assert val == ["a/x"] and train == ["b/y"]
    with pytest.raises(ValueError):
        split_by_speaker(clips, 1.0, 0)


def test_pinned_clips_hold_their_speakers_in_validation_and_their_folders_add_none():
    clips = {f"talks/t{i}": 100 for i in range(10)}
    clips.update({"talks/t3_part2": 100, "misc/mead_m030": 50, "talks/spectre_MEAD_M030_x": 50})
    clips.update({f"news/n{i}": 100 for i in range(10)})
    for seed in range(4):
        train, val = split_by_speaker(clips, 0.15, seed, pinned=("talks/t3", "talks/spectre_MEAD_M030_x"))
        talks_val = [k for k in val if k.startswith("talks/")]
        assert sorted(talks_val) == ["talks/spectre_MEAD_M030_x", "talks/t3", "talks/t3_part2"]  # parts count
        assert "misc/mead_m030" in val  # the same person, elsewhere
        assert sum(k.startswith("news/") for k in val) == 1  # a folder without pins: its own share


def test_face_identities_join_the_known_groups_into_speakers():
    keys = ["arabic_news/v_1", "arabic_news/v_2", "arabic_news/v_3", "arabic_news/v_4", "grid/bbaf2n", "grid_s1/c1",
            "misc/x"]
    faces = {"arabic_news/v_1": "face:0", "arabic_news/v_3": "face:0", "arabic_news/v_4": "face:1",
             "misc/x": "face:1", "grid_s1/c1": "face:0"}
    speakers = P.merged_speakers(keys, faces)
    assert speakers["arabic_news/v_1"] == speakers["arabic_news/v_3"] == "arabic_news/v_1"
    assert speakers["arabic_news/v_2"] == "arabic_news/v_2" and speakers["arabic_news/v_4"] == "arabic_news/v_4"
    # faces count only where the descriptor was trusted (IDENTITY_FOLDERS): grid's labels stand
    assert speakers["grid_s1/c1"] == speakers["grid/bbaf2n"] == "grid:s1" and speakers["misc/x"] == "misc/x"
    assert P.merged_speakers(keys, {}) == {k: speaker_of(k) for k in keys}


def test_face_runs_split_at_gaps_and_shots_and_drop_short_runs():
    has = np.array([1] * 30 + [0] * 3 + [1] * 24 + [1] * 40, bool)
    shot = np.array([0] * 30 + [0] * 3 + [0] * 24 + [1] * 40)
    assert face_runs(has, shot, 25) == [(0, 30), (57, 97)]  # 24-frame run dropped, cut at 57
    assert face_runs(has, shot, 1) == [(0, 30), (33, 57), (57, 97)]
    assert face_runs(np.zeros(50, bool), np.zeros(50, int), 25) == []


# --------------------------------------------------------------------------- errors


def test_a_folder_without_videos_is_a_clear_error(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.wav").write_bytes(b"x")
    with pytest.raises(DatasetError, match="no video files") as e:
        prepare_dataset(tmp_path, tmp_path / "out")
    assert e.value.path == tmp_path
    assert not (tmp_path / "out").exists()  # failed before writing anything
    with pytest.raises(DatasetError, match="not found"):
        find_videos(tmp_path / "nowhere")


def test_an_unwritable_output_folder_is_a_clear_error(tmp_path, synth_src):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DatasetError, match="cannot create") as e:
        prepare_dataset(synth_src, blocker / "out", detector=BrightBoxDetector())
    assert str(blocker / "out") in str(e.value)
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            with pytest.raises(DatasetError, match="not writable"):
                prepare_dataset(synth_src, ro, detector=BrightBoxDetector())
        finally:
            ro.chmod(0o755)


def test_bad_arguments_are_value_errors(tmp_path, synth_src):
    with pytest.raises(ValueError):
        prepare_dataset(synth_src, tmp_path / "o", workers=0)
    with pytest.raises(ValueError):
        prepare_dataset(synth_src, tmp_path / "o", val_fraction=1.5)


# --------------------------------------------------------------------------- the pipeline


def test_layout_resampling_and_split_at_missing_faces(prepared, synth_src):
    out, summary, lines = prepared
    talk1, talk2 = out / "cam" / "talk_part1", out / "cam" / "talk_part2"
    assert not (out / "cam" / "talk").exists()
    for folder, n in ((talk1, 28), (talk2, 27), (out / "cam" / "steady", 50)):
        names = sorted(p.name for p in folder.iterdir())
        assert names == sorted([f"{i}.jpg" for i in range(n)] + ["audio.wav", "done"]), folder
        info, sr = sf.info(str(folder / "audio.wav")), 16000
        assert (info.samplerate, info.channels, info.frames) == (sr, 1, n * 640)
    # 25 fps output frame k shows the 30 fps source frame on screen at k / 25 = floor(1.2 k)
    for folder, k0 in ((talk1, 0), (talk2, 33)):
        for j in range(27):
            k = k0 + j
            assert read_index(cv2.imread(str(folder / f"{j}.jpg"))) == k * 30 // 25, (folder.name, j)
    crop = cv2.imread(str(talk1 / "0.jpg"))
    # the box plus 10 px at the bottom (pads 0, 10, 0, 0), at natural size
    assert abs(crop.shape[0] - (BOX[3] - BOX[1] + 10)) <= 2 and abs(crop.shape[1] - (BOX[2] - BOX[0])) <= 2
    # each part's audio is its own stretch of the source's audio
    full = load_audio(synth_src / "cam" / "talk.mp4")
    part2, _ = sf.read(str(talk2 / "audio.wav"), dtype="float32")
    np.testing.assert_allclose(part2, full[33 * 640:60 * 640], atol=1e-7)
    done = json.loads((talk2 / "done").read_text())
    assert done["frames"] == 27 and done["start_frame"] == 33 and abs(done["source_fps"] - 30) < 0.01


def test_skips_are_listed_with_reasons_and_index_files_agree(prepared):
    out, summary, lines = prepared
    skipped = {line.split("\t")[0]: line.split("\t")[1]
               for line in (out / "skipped.txt").read_text().splitlines()}
    assert set(skipped) == {"other/mute", "other/empty", "other/short", "other/broken"}
    assert skipped["other/mute"].startswith("no audio")
    assert skipped["other/empty"].startswith("faceless")
    assert skipped["other/short"].startswith("too short")
    assert skipped["other/broken"].startswith("unreadable")
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["clips"]) == {"cam/talk_part1", "cam/talk_part2", "cam/steady"}
    clip = manifest["clips"]["cam/steady"]
    assert clip["frames"] == 50 and clip["seconds"] == 2.0
    assert Path(clip["source"]).name == "steady.mp4"
    assert clip["audio_sha256"] == P.audio_sha256(out / "cam" / "steady" / "audio.wav")
    train = (out / "filelists" / "train.txt").read_text().split()
    val = (out / "filelists" / "val.txt").read_text().split()
    assert sorted(train + val) == sorted(manifest["clips"])
    assert not {speaker_of(k) for k in train} & {speaker_of(k) for k in val}
    assert summary["clips"] == 3 and summary["frames"] == 28 + 27 + 50
    assert any(line.startswith("[") and "cam/steady: 50 frames" in line for line in lines)
    assert not list(out.glob("*/.tmp-*"))


def test_a_second_run_skips_finished_work_and_cleans_half_clips(prepared, synth_src, tmp_path):
    out, _, _ = prepared
    files = [p for p in out.rglob("*") if p.is_file() and ".state" not in p.parts
             and p.parent != out and p.parent.name != "filelists"]
    before = {p: p.stat().st_mtime_ns for p in files}
    half = out / "cam" / ".tmp-talk_part1.deadbeef"  # what a killed run leaves
    half.mkdir()
    (half / "0.jpg").write_bytes(b"x")

    class Exploding(BrightBoxDetector):
        def detect(self, frame):
            raise AssertionError("finished videos must not be decoded again")

    lines = []
    summary = prepare_dataset(synth_src, out, detector=Exploding(), val_fraction=0.3, log=lines.append,
                              cache_dir=tmp_path / "cache")
    assert summary["clips"] == 3
    assert {p: p.stat().st_mtime_ns for p in files} == before
    assert sum("(done already)" in line for line in lines) == 6
    assert not half.exists()
    # a clip whose done marker is gone is made again (and only that video)
    (out / "cam" / "steady" / "done").unlink()
    lines = []
    prepare_dataset(synth_src, out, detector=BrightBoxDetector(), val_fraction=0.3, log=lines.append,
                    cache_dir=tmp_path / "cache")
    assert (out / "cam" / "steady" / "done").is_file()
    assert [line for line in lines if "done already" not in line and line.startswith("[")] == \
        [line for line in lines if "cam/steady" in line]


def test_known_bad_clips_are_excluded(tmp_path, synth_src):
    src = tmp_path / "src" / "syncnet_fcn"
    src.mkdir(parents=True)
    (src / "test_offset_5.mp4").symlink_to(synth_src / "cam" / "steady.mp4")
    (src / "example.mp4").symlink_to(synth_src / "cam" / "steady.mp4")
    summary = prepare_dataset(tmp_path / "src", tmp_path / "out", detector=BrightBoxDetector(),
                              cache_dir=tmp_path / "cache", log=lambda s: None)
    assert summary["clips"] == 1
    assert summary["skipped"][0][0] == "syncnet_fcn/test_offset_5"
    assert "shifted" in summary["skipped"][0][1]


def test_parallel_workers_give_the_same_dataset(tmp_path, synth_src, prepared):
    out = tmp_path / "out"
    summary = prepare_dataset(synth_src, out, workers=2, detector=BrightBoxDetector(), val_fraction=0.3,
                              cache_dir=tmp_path / "cache", log=lambda s: None)
    ref = json.loads((prepared[0] / "manifest.json").read_text())["clips"]
    got = json.loads((out / "manifest.json").read_text())["clips"]
    assert {k: v["frames"] for k, v in got.items()} == {k: v["frames"] for k, v in ref.items()}
    assert {k: v["audio_sha256"] for k, v in got.items()} == {k: v["audio_sha256"] for k, v in ref.items()}
    assert len(summary["skipped"]) == 4


def test_cli_subcommand(tmp_path, synth_src, monkeypatch):
    import argparse

    from training.cli import add_prepare_parser

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_prepare_parser(sub)
    args = parser.parse_args(["prepare", str(synth_src / "other"), str(tmp_path / "o"), "--workers", "1",
                              "--seed", "3", "--val-fraction", "0.2", "--cache-dir", str(tmp_path / "c")])
    assert (args.workers, args.seed, args.val_fraction) == (1, 3, 0.2)
    monkeypatch.setattr(P, "prepare_dataset", _with_stub(P.prepare_dataset))
    with pytest.raises(DatasetError, match="no usable clips"):  # "other/" holds only bad videos
        args.run(args)
    assert (tmp_path / "o" / "skipped.txt").read_text().count("\n") == 4
    ok = parser.parse_args(["prepare", str(synth_src / "cam"), str(tmp_path / "o2"), "--cache-dir", str(tmp_path / "c")])
    assert ok.run(ok) == 0
    lists = tmp_path / "o2" / "filelists"
    assert sorted((lists / "train.txt").read_text().split() + (lists / "val.txt").read_text().split()) == \
        ["cam/steady", "cam/talk_part1", "cam/talk_part2"]


def _with_stub(fn):
    def wrapped(*a, **k):
        k["detector"] = BrightBoxDetector()
        return fn(*a, **k)
    return wrapped


# --------------------------------------------------------------------------- real clips


@pytest.mark.data
@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is absent")
def test_real_clips(tmp_path):
    src = tmp_path / "src"
    for rel in ("grid/bbaf2n.mpg", "hdtf/aoc_flags.mp4"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).symlink_to(DATA / rel)
    out, cache = tmp_path / "out", tmp_path / "cache"
    prepare_dataset(src, out, val_fraction=0.5, cache_dir=cache, log=lambda s: None)
    expected = {"grid/bbaf2n": 75, "hdtf/aoc_flags": int(4.571 * 25)}  # 3.0 s at 25 fps; 137 frames at 29.97
    manifest = json.loads((out / "manifest.json").read_text())["clips"]
    assert {k: v["frames"] for k, v in manifest.items()} == expected
    for key, n in expected.items():
        folder = out / key
        assert sorted(p.name for p in folder.glob("*.jpg")) == sorted(f"{i}.jpg" for i in range(n))
        assert sf.info(str(folder / "audio.wav")).frames == n * 640
        audio, _ = sf.read(str(folder / "audio.wav"), dtype="float32")
        source = load_audio(DATA / (key + (".mpg" if key.startswith("grid") else ".mp4")))
        m = min(len(audio), len(source))
        assert n * 640 - m < 640  # at most one frame of padding
        np.testing.assert_array_equal(audio[:m], source[:m])  # unclipped (GRID peaks at 1.4)
    # the crops are faces: the detector finds one, centred, with the mouth in the lower half
    from core.faces import get_detector

    det = get_detector()
    for key in expected:
        for j in (0, 40, 70):
            crop = cv2.imread(str(out / key / f"{j}.jpg"))
            h, w = crop.shape[:2]
            assert max(h, w) <= 192 and 1.0 < h / w < 2.0
            canvas = np.full((3 * h, 3 * w, 3), 127, np.uint8)
            canvas[h:2 * h, w:2 * w] = crop
            faces = det.detect(canvas)
            assert faces, (key, j)
            lm = faces[0].landmarks - [w, h]  # eyes, nose, mouth corners in crop pixels
            assert abs(lm[:, 0].mean() - w / 2) < 0.15 * w
            assert (lm[3:, 1] > h / 2).all() and (lm[:2, 1] < h / 2).all()
    # split by speaker: the two clips are different speakers, one each side
    train = (out / "filelists" / "train.txt").read_text().split()
    val = (out / "filelists" / "val.txt").read_text().split()
    assert sorted(train + val) == sorted(expected) and len(train) == len(val) == 1
    # a second run changes nothing
    files = [p for p in out.rglob("*") if p.is_file() and p.parent.parent.name != "filelists"
             and (p.suffix == ".jpg" or p.name in ("audio.wav", "done"))]
    before = {p: p.stat().st_mtime_ns for p in files}
    lines = []
    prepare_dataset(src, out, val_fraction=0.5, cache_dir=cache, log=lines.append)
    assert {p: p.stat().st_mtime_ns for p in files} == before
    assert sum("done already" in line for line in lines) == 2


def test_the_index_takes_speakers_from_the_face_identities(prepared, tmp_path, monkeypatch):
    out = tmp_path / "copy"
    shutil.copytree(prepared[0], out)
    P.write_index(out, val_fraction=0.3)
    before = json.loads((out / "manifest.json").read_text())["clips"]
    assert before["cam/steady"]["speaker"] != before["cam/talk_part1"]["speaker"]
    (out / "identities.json").write_text(json.dumps({"clips": {"cam/steady": "face:0", "cam/talk_part1": "face:0"}}))
    monkeypatch.setattr(P, "IDENTITY_FOLDERS", ("cam",))
    summary = P.write_index(out, val_fraction=0.3)
    clips = json.loads((out / "manifest.json").read_text())["clips"]
    assert clips["cam/steady"]["speaker"] == clips["cam/talk_part1"]["speaker"] == clips["cam/talk_part2"]["speaker"]
    assert summary["train_speakers"] + summary["val_speakers"] == 1  # one face, one speaker: nothing to hold out
    assert (out / "filelists" / "val.txt").read_text() == ""
