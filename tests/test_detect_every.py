"""Detection on every second frame: the frame between two detected ones gets their interpolation when
their faces pair up, and is detected itself when they do not (a cut, a face coming or going)."""
import numpy as np
import pytest

from core.faces import Detection, detect_video
from core.faces.detections import DETECT_EVERY, between
from core.video import VideoSource, VideoWriter
from tests.test_faces import FakeSource, StampDetector, _video_file, drifting, stamped_frames

FACE = (100.0, 60.0, 200.0, 190.0)


def test_the_detector_runs_on_every_second_frame():
    assert DETECT_EVERY == 2


def test_between_interpolates_paired_faces_and_keeps_the_lower_score():
    lm = np.array([[120.0, 100.0], [180.0, 100.0]])
    before = [Detection(FACE, 0.9, lm), Detection((10, 10, 50, 55), 0.8)]
    after = [Detection((14, 10, 54, 55), 0.95), Detection((110, 60, 210, 190), 0.7, lm + 10)]  # another order
    faces = between(before, after, 0.5)  # best first: each face's score is the lower of its two
    assert [d.box for d in faces] == [(12.0, 10.0, 52.0, 55.0), (105.0, 60.0, 205.0, 190.0)]
    assert [d.score for d in faces] == [0.8, 0.7]
    assert faces[0].landmarks is None and np.allclose(faces[1].landmarks, lm + 5)
    assert between([], [], 0.5) == []


def test_between_gives_up_when_faces_do_not_pair():
    face = Detection(FACE, 0.9)
    assert between([face], [], 0.5) is None  # a face going
    assert between([face], [face, Detection((10, 10, 50, 55), 0.8)], 0.5) is None  # one coming
    assert between([face], [Detection((200, 60, 300, 190), 0.9)], 0.5) is None  # elsewhere: a cut


def test_a_steady_face_is_detected_on_every_second_frame_and_interpolated_exactly(tmp_path):
    n = 21
    frames, plan = stamped_frames(n), drifting(n)  # sliding half a pixel a frame: linear
    d = StampDetector(plan)
    dets = detect_video(FakeSource(_video_file(tmp_path), frames), d, use_cache=False)
    assert d.seen == list(range(0, n, 2))
    assert dets.detected.all()
    assert [[f.box for f in faces] for faces in dets.faces] == [[tuple(map(float, b)) for b in p] for p in plan]


def test_frames_between_a_change_are_detected_and_the_last_frame_too(tmp_path):
    n = 12
    plan = drifting(n, gaps=(5,))  # the face is gone in frame 5
    plan[9] = plan[10] = plan[11] = [(200.0, 60.0, 300.0, 190.0)]  # and elsewhere from frame 9 (a cut)
    d = StampDetector(plan)
    dets = detect_video(FakeSource(_video_file(tmp_path), stamped_frames(n)), d, use_cache=False)
    # 5 lies between two frames whose faces pair up: a one-frame drop-out is filled, as the track would;
    # 9 lies between frames 8 and 10, whose faces do not pair (a cut): it is detected, and so is the last
    assert sorted(d.seen) == [0, 2, 4, 6, 8, 9, 10, 11]
    assert dets.faces[9][0].box == (200.0, 60.0, 300.0, 190.0)
    assert dets.faces[5] and dets.faces[5][0].box == pytest.approx((102.5, 60.0, 202.5, 190.0))


def test_every_frame_and_every_second_frame_are_cached_apart(tmp_path, monkeypatch):
    import core.faces.detections as detections_module

    frames, plan = stamped_frames(6), drifting(6)
    path, cache = _video_file(tmp_path), tmp_path / "cache"
    detect_video(FakeSource(path, frames), StampDetector(plan), cache_dir=cache)
    monkeypatch.setattr(detections_module, "DETECT_EVERY", 1)
    d = StampDetector(plan)
    dets = detect_video(FakeSource(path, frames), d, cache_dir=cache)
    assert d.seen == list(range(6)) and dets.detector["every"] == 1
    assert len(list(cache.glob("*.npz"))) == 2


def test_frames_decode_straight_to_a_detectors_size(tmp_path):
    import cv2

    path = tmp_path / "big.mp4"
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (360, 480, 3), dtype=np.uint8), (0, 0), 6)
    with VideoWriter(path, 480, 360, 25, crf=0, preset="ultrafast") as writer:
        for _ in range(3):
            writer.write(image)
    with VideoSource(path) as video:
        small = next(video.frames(0, 1, size=(240, 180)))[1]
        full = video.read(0)
    assert small.shape == (180, 240, 3)
    assert np.abs(small.astype(int) - cv2.resize(full, (240, 180), interpolation=cv2.INTER_AREA)).mean() < 1.0
