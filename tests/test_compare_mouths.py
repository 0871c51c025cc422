"""compare-mouths' judges of a rendered mouth against its source, on synthetic clips."""
import cv2
import numpy as np

from core.faces import track_video
from core.video import VideoWriter
from tests.conftest import BoxDetector
from training.compare_mouths import closed_share, correlation, leak_gain, picture_measures

SIZE, FPS, N = (320, 240), 25, 30


def write(path, frames):
    with VideoWriter(path, *SIZE, FPS, crf=0, preset="ultrafast") as writer:
        for frame in frames:
            writer.write(frame)
    return path


def textured(i: int) -> np.ndarray:
    rng = np.random.default_rng(i % 3)  # a texture that moves from frame to frame
    return rng.integers(60, 200, (SIZE[1], SIZE[0], 3), dtype=np.uint8)


def test_sharpness_and_change_are_measured_against_the_source(tmp_path):
    source = write(tmp_path / "source.mp4", [textured(i) for i in range(N)])
    same = write(tmp_path / "same.mp4", [textured(i) for i in range(N)])
    blurred = write(tmp_path / "blurred.mp4", [cv2.GaussianBlur(textured(i), (0, 0), 2) for i in range(N)])
    frozen = write(tmp_path / "frozen.mp4", [textured(0) for _ in range(N)])
    from core.video import VideoSource

    with VideoSource(source) as video:
        track = track_video(video, detector=BoxDetector(), use_cache=False)
    index, speech = np.arange(N), np.ones(N, bool)
    as_is = picture_measures(source, same, track, index, speech)
    assert abs(as_is["sharpness"] - 1) < 0.05 and abs(as_is["change"] - 1) < 0.05
    soft = picture_measures(source, blurred, track, index, speech)
    assert soft["sharpness"] < 0.2
    assert picture_measures(source, frozen, track, index, speech)["change"] < 0.05
    assert as_is["colour"] < 0.5 and abs(as_is["seam"] - as_is["source_seam"]) < 0.05


def test_a_tinted_mouth_and_a_smoothed_inside_are_measured(tmp_path):
    source = write(tmp_path / "source.mp4", [textured(i) for i in range(N)])
    from core.blend import paste_weight
    from core.hparams import HP
    from core.video import VideoSource

    with VideoSource(source) as video:
        track = track_video(video, detector=BoxDetector(), use_cache=False)
    box = track.crop_box(0, HP.pads)
    x1, y1, x2, y2 = box
    inside = paste_weight(box, None, (HP.img_size, HP.img_size))[..., None] > 0.9

    def altered(i):  # redder, and flat where the mask is fully on: a paste whose edge is all the detail
        frame = textured(i).astype(np.int16)
        crop = frame[y1:y2, x1:x2]
        crop[:] = np.where(inside, 128, crop)
        frame[..., 2] += 20
        return np.clip(frame, 0, 255).astype(np.uint8)

    measured = picture_measures(source, write(tmp_path / "altered.mp4", [altered(i) for i in range(N)]), track,
                                np.arange(N), np.ones(N, bool))
    assert measured["colour"] > 3
    assert measured["seam"] > 3 * measured["source_seam"]


def test_closed_share_counts_speech_frames_with_the_lips_together():
    aperture = np.array([0.01] * 3 + [0.5] * 7 + [0.01] * 10)  # closed 3 of the 10 speech frames
    speech = np.array([True] * 10 + [False] * 10)
    assert closed_share(aperture, speech) == 0.3
    aperture[:3] = np.nan  # frames without a face mesh do not count
    assert closed_share(aperture, speech) == 0.0


def test_leak_gain_is_the_share_of_the_original_opening_whatever_the_output_does_by_itself():
    rng = np.random.default_rng(0)
    original = rng.uniform(0.0, 0.3, 5000)
    for own_movement in (0.005, 0.1):  # a near-still mouth, then one that follows its dub
        output = 0.2 * original + own_movement * rng.standard_normal(5000)
        assert abs(leak_gain(output, original) - 0.2) < 0.05
    # the same leak reads as a much stronger correlation on the near-still mouth
    still, moving = (0.2 * original + m * rng.standard_normal(5000) for m in (0.005, 0.1))
    assert correlation(still, original) > 0.9 > 0.3 > correlation(moving, original)
    original[:5] = np.nan  # frames without a face mesh are left out
    assert abs(leak_gain(0.5 * original, original) - 0.5) < 1e-9
    assert np.isnan(leak_gain(original, np.full(5000, 0.1)))
