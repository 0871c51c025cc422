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


class FaceFinder(BoxDetector):
    """Finds the light face rectangle wherever it is, with eye, nose and mouth points placed in it."""

    def _detect(self, image):
        from core.faces.detect import Detection

        ys, xs = np.nonzero(image[..., 0] > 150)
        x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        w, h = x2 - x1, y2 - y1
        points = [(0.3, 0.35), (0.7, 0.35), (0.5, 0.55), (0.35, 0.75), (0.65, 0.75)]
        return [Detection((x1, y1, x2, y2), 0.99, [(x1 + fx * w, y1 + fy * h) for fx, fy in points])]


def moving_face(i: int) -> np.ndarray:
    """A face rectangle that slides right by 2 pixels a frame; its mouth opens and closes."""
    frame = np.full((SIZE[1], SIZE[0], 3), 30, np.uint8)
    x = 80 + 2 * i
    frame[60:200, x:x + 100] = 200
    cv2.ellipse(frame, (x + 50, 165), (25, int(2 + 12 * abs(np.sin(i / 3)))), 0, 0, 360, (40, 40, 90), -1)
    return frame


def test_the_still_control_keeps_the_first_mouth_on_a_moving_face(tmp_path):
    from core.video import VideoSource
    from training.compare_mouths import still_control

    source = write(tmp_path / "source.mp4", [moving_face(i) for i in range(N)])
    with VideoSource(source) as video:
        track = track_video(video, detector=FaceFinder(), use_cache=False, smooth_window=0)
    assert still_control(source, track, np.arange(N), FPS, tmp_path / "still.mp4") == N
    with VideoSource(source) as original, VideoSource(tmp_path / "still.mp4") as still:
        first = original.read(0)[140:190, 95:165].astype(int)
        for i in (5, 14, 24):  # wide open in the original
            x = 80 + 2 * i
            mouth = lambda frame: frame[140:190, x + 15:x + 85].astype(int)
            assert np.abs(mouth(original.read(i)) - first).mean() > 10  # the original's mouth moved
            assert np.abs(mouth(still.read(i)) - first).mean() < 4  # the control's did not, and went with the face
            outside = (slice(None), slice(0, x - 20))  # left of the face: the source, through the codec
            assert np.abs(still.read(i)[outside].astype(int) - original.read(i)[outside]).max() < 8
