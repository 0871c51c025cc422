"""The actor's own mouth (core.actor_mouth): shape from the generated mouth, detail from real
mouths of other moments, and the generated mouth wherever the footage has nothing like it.

The synthetic "actor" has a textured skin and a dark mouth whose opening follows a known curve,
so a test can tell which frame a mouth came from and how open it is.
"""
import cv2
import numpy as np
import pytest

from core import actor_mouth
from core.actor_mouth import ActorMouth, MouthBank, build_bank, descriptor, source_mouth
from core.blend import composite, paste_weight
from core.render import Renderer, RenderOptions
from core.video import VideoWriter
from tests.conftest import BoxDetector, damage_file, speech_like
from tests.test_render_pipeline import FPS, RecordingGenerator, write_wav

SIZE = (320, 240)
FACE_BOX = (110, 50, 210, 190)  # where BoxDetector finds the face
MOUTH_SIZE = (96, 48)
_SKIN = np.random.default_rng(0).normal(0, 12, (SIZE[1], SIZE[0], 1))  # the same pores in every frame


def opening(i: int) -> float:
    """Mouth height in pixels (of a 48-pixel-high lower face) at frame i: 1 (closed) to 15 (open)."""
    return 8 + 7 * np.sin(2 * np.pi * i / 37)


def mouth_image(height: float, size=MOUTH_SIZE) -> np.ndarray:
    """A lower face: textured skin, red lips and a dark opening `height` pixels high (at 48 high)."""
    w, h = size
    s = h / 48
    img = np.empty((h, w, 3), np.float32)
    img[:] = (120, 140, 190)
    img += _SKIN[:h, :w]
    q = 16  # sub-pixel ellipses (shift 4): every opening draws a slightly different mouth
    centre = (w // 2 * q, int(20 * s * q))
    cv2.ellipse(img, centre, (int(26 * s * q), int((height / 2 + 4) * s * q)), 0, 0, 360, (70, 60, 160), -1,
                cv2.LINE_AA, 4)
    cv2.ellipse(img, centre, (int(22 * s * q), max(q, int(height / 2 * s * q))), 0, 0, 360, (30, 20, 40), -1,
                cv2.LINE_AA, 4)
    return np.clip(img, 0, 255).astype(np.uint8)


def lower_half(frame: np.ndarray, box, size) -> np.ndarray:
    """The lower half of the int crop `box` of `frame` as the bank keeps it, resized to `size` (w, h)."""
    return cv2.resize(source_mouth(frame, box), size, interpolation=cv2.INTER_AREA)


def dark_height(mouth: np.ndarray) -> float:
    """Rows of the mouth's middle column under half the skin's lightness (the lips are not): how
    open it is, in rows of a 48-row lower face."""
    column = cv2.cvtColor(mouth, cv2.COLOR_BGR2GRAY)[:, mouth.shape[1] // 2].astype(np.float32)
    return float((column < 0.5 * np.median(column)).sum()) * 48 / mouth.shape[0]


def bank_of(frames) -> MouthBank:
    mouths = np.stack([mouth_image(opening(i)) for i in frames])
    return MouthBank(np.asarray(frames), mouths, np.stack([descriptor(m) for m in mouths]))


def test_a_mouth_is_never_taken_from_the_outputs_own_moment():
    mouth = ActorMouth(bank_of(range(200)), fps=FPS)
    for source_frame in (0, 50, 120, 199):
        wanted = mouth_image(opening(source_frame))  # the original mouth itself is the best match...
        row = mouth.pick(wanted, source_frame)
        assert row is not None
        assert abs(int(mouth.bank.frames[row]) - source_frame) >= actor_mouth.EXCLUDE_S * FPS  # ...and never chosen
        # what is chosen is as open as the generated mouth, from another moment
        assert abs(opening(int(mouth.bank.frames[row])) - opening(source_frame)) < 1


def test_too_little_footage_or_nothing_alike_gives_no_mouth():
    few = ActorMouth(bank_of(range(40)), fps=FPS)  # 40 frames: under MIN_ENTRIES outside the exclusion
    assert few.pick(mouth_image(8), 20) is None
    enough = ActorMouth(bank_of(range(200)), fps=FPS)
    flat = np.full((*MOUTH_SIZE[::-1], 3), 128, np.uint8)  # no mouth at all: correlates with nothing
    assert enough.pick(flat, 100) is None


def test_the_aligned_real_mouth_takes_the_generated_shape():
    half_open = [i for i in range(400) if 5 < opening(i) < 8]  # the bank has only half-open mouths
    mouth = ActorMouth(bank_of(half_open), fps=FPS)
    wide = mouth_image(14)
    row = mouth.pick(wide, source_frame=10_000)
    assert row is not None
    raw = mouth.bank.mouths[row]
    aligned = mouth.aligned(row, wide, MOUTH_SIZE)
    assert abs(dark_height(aligned) - 14) < abs(dark_height(raw) - 14) - 2


def test_the_aligned_real_mouth_closes_with_the_generated_one():
    # a nearly closed generated mouth narrows a half-open real one: the flow is refined at FLOW_SIZE itself
    # (at half of it, a 3-row gap is a pixel and a half, and the real mouth stayed as open as it was)
    half_open = [i for i in range(400) if 5 < opening(i) < 8]
    mouth = ActorMouth(bank_of(half_open), fps=FPS)
    nearly_closed = mouth_image(3)
    row = mouth.pick(nearly_closed, source_frame=10_000)
    assert row is not None
    raw = mouth.bank.mouths[row]
    assert dark_height(mouth.aligned(row, nearly_closed, MOUTH_SIZE)) <= dark_height(raw) - 2


def laplacian_energy(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_32F).var())


def test_the_real_mouth_keeps_the_footages_resolution():
    # the flow compares mouths at the generator's blur, but the mouth is pasted from the footage itself:
    # a mouth already in the generated shape comes back with its pores, not a resized copy's blur
    native = mouth_image(8, size=(200, 100))
    bank = MouthBank(np.array([0]), [native], descriptor(native)[None])
    aligned = ActorMouth(bank, fps=FPS).aligned(0, cv2.resize(native, (96, 48), interpolation=cv2.INTER_AREA),
                                                (200, 100))
    assert laplacian_energy(aligned) > 0.8 * laplacian_energy(native)
    assert np.abs(aligned.astype(np.int16) - native.astype(np.int16))[10:-10, 10:-10].mean() < 4


@pytest.mark.parametrize("box_size", [(281, 408), (130, 150), (80, 90)])
def test_the_shape_band_is_the_generated_mouth_blurred_at_the_boxs_size(box_size):
    # found at the generator's 96 pixels instead of the box's: the same band, to a level
    rng = np.random.default_rng(5)
    generated = cv2.GaussianBlur(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8), (0, 0), 1.5)  # its own blur
    generated[60:76, 30:66] = 20  # an open mouth: a hard edge at the generator's resolution
    (w, h), sigma = box_size, actor_mouth.DETAIL_SIGMA * box_size[0] / 96
    plain = cv2.GaussianBlur(cv2.resize(generated[48:], (w, h - h // 2), interpolation=cv2.INTER_CUBIC).astype(np.float32),
                             (0, 0), sigma)
    band = actor_mouth.shape_band(generated, (w, h), sigma)
    assert band.shape == plain.shape and band.dtype == np.float32
    inside = np.abs(band - plain)[4:-4, 4:-4]  # the borders reflect at different sizes
    assert inside.mean() < 0.5 and inside.max() < 5  # at most 5 % of the 108-level step across the opening
    assert np.abs(band - cv2.resize(generated[48:], (w, h - h // 2)).astype(np.float32))[4:-4, 4:-4].max() > 10  # it blurs


def frame_with(mouth: np.ndarray) -> np.ndarray:
    frame = np.clip(np.full((SIZE[1], SIZE[0], 3), (90, 110, 150), np.float32) + _SKIN, 0, 255).astype(np.uint8)
    x1, y1, x2, y2 = FACE_BOX
    top = y1 + (y2 - y1) // 2
    frame[top:y2, x1:x2] = cv2.resize(mouth, (x2 - x1, y2 - top))
    return frame


def test_paste_keeps_the_generated_opening_and_adds_real_detail_inside_the_mask_only():
    mouth = ActorMouth(bank_of(range(200)), fps=FPS)
    frame = frame_with(mouth_image(2))
    before = frame.copy()
    generated = cv2.GaussianBlur(cv2.resize(frame_with(mouth_image(14))[FACE_BOX[1]:FACE_BOX[3], FACE_BOX[0]:FACE_BOX[2]],
                                            (96, 96), interpolation=cv2.INTER_AREA), (0, 0), 2)  # open, blurred
    assert mouth.paste(frame, generated, FACE_BOX, None, source_frame=100)
    x1, y1, x2, y2 = FACE_BOX
    weight = paste_weight(FACE_BOX, None, (96, 96))
    outside = np.ones(frame.shape[:2], bool)
    outside[y1:y2, x1:x2] = weight <= 0
    assert np.array_equal(frame[outside], before[outside])
    result = lower_half(frame, FACE_BOX, MOUTH_SIZE)
    assert dark_height(result) > 9  # open, as generated, where the original was closed
    blurred_generated = cv2.resize(generated[48:], MOUTH_SIZE)
    assert laplacian_energy(result) > 2 * laplacian_energy(blurred_generated)  # the real skin's detail is back


@pytest.mark.parametrize("actor", [False, True])
def test_no_paste_reads_the_generated_crops_upper_half(actor):
    """The generator computes only the lower half (core.render.FaceGenerator): whatever the upper half
    holds, the same frame comes out, with either mouth."""
    generated = cv2.GaussianBlur(cv2.resize(frame_with(mouth_image(14))[FACE_BOX[1]:FACE_BOX[3], FACE_BOX[0]:FACE_BOX[2]],
                                            (96, 96), interpolation=cv2.INTER_AREA), (0, 0), 2)
    other = generated.copy()
    other[:48] = np.random.default_rng(1).integers(0, 256, other[:48].shape, dtype=np.uint8)
    results = []
    for crop in (generated, other):
        frame = frame_with(mouth_image(2))
        if actor:
            assert ActorMouth(bank_of(range(200)), fps=FPS).paste(frame, crop, FACE_BOX, None, source_frame=100)
        else:
            composite(frame, crop, FACE_BOX)
        results.append(frame)
    assert np.array_equal(*results) and not np.array_equal(results[0], frame_with(mouth_image(2)))


@pytest.fixture(scope="module")
def actor_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("actor") / "actor.mp4"
    with VideoWriter(path, *SIZE, FPS, crf=0, preset="ultrafast") as writer:
        for i in range(125):
            writer.write(frame_with(mouth_image(opening(i))))
    return path


class IdentityGenerator(RecordingGenerator):
    """Draws each crop's own mouth back: the best match in the bank is always the excluded original."""

    def __call__(self, crops, mels, references=None):
        return crops.copy()


def test_render_with_the_actors_mouth_uses_other_moments_and_counts_fallbacks(actor_clip, tmp_path):
    dub = write_wav(tmp_path / "dub.wav", speech_like(5.0))
    options = RenderOptions(detector=BoxDetector(), cache_dir=str(tmp_path / "cache"), mouth="actor")
    renderer = Renderer(actor_clip, dub, options, generator=IdentityGenerator())
    rows = list(renderer.frames())
    assert len(rows) == 125 and all(generated for _, _, generated in rows)
    picks = np.array(renderer.actor.picks)
    assert len(picks) + len(renderer.generated_mouth_frames) == 125
    assert len(picks) > 100  # the footage has every opening at other moments
    shown = np.array([int(renderer.source[k]) for k, _, _ in rows if k not in set(renderer.generated_mouth_frames)])
    assert np.all(np.abs(picks - shown) >= actor_mouth.EXCLUDE_S * FPS)


def test_a_still_has_no_footage_so_every_frame_gets_the_generated_mouth(tmp_path):
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), frame_with(mouth_image(4)))
    dub = write_wav(tmp_path / "dub.wav", speech_like(1.0))
    options = RenderOptions(detector=BoxDetector(), cache_dir=str(tmp_path / "cache"), mouth="actor")
    renderer = Renderer(still, dub, options, generator=RecordingGenerator())
    rows = list(renderer.frames())
    assert renderer.actor is None and any("still image" in w for w in renderer.warnings)
    assert renderer.generated_mouth_frames == [k for k, _, _ in rows]


def test_build_bank_reads_the_lower_half_of_each_face_at_the_footages_resolution(actor_clip):
    from core.faces import track_video
    from core.video import VideoSource

    with VideoSource(actor_clip) as video:
        track = track_video(video, detector=BoxDetector(), use_cache=False)
        bank = build_bank(video, track, [3, 40, 90])
    assert {m.shape[1] for m in bank.mouths} == {100}  # the crop is 100 wide: kept, not squeezed to 96
    for row, i in enumerate([3, 40, 90]):
        assert abs(dark_height(bank.mouths[row]) - opening(i)) < 2.5


# --------------------------------------------------------------------------- the mouth cache


@pytest.fixture(scope="module")
def actor_track(actor_clip):
    from core.faces import track_video
    from core.video import VideoSource

    with VideoSource(actor_clip) as video:
        return track_video(video, detector=BoxDetector(), use_cache=False)


def read_frames(video) -> list:
    """Make `video.frames` record each index it decodes; returns that record."""
    read, decode = [], video.frames

    def frames(start=0, stop=None):
        for i, image in decode(start, stop):
            read.append(int(i))
            yield i, image

    video.frames = frames
    return read


def built(clip, track, frames, cache, **kwargs):
    """(the bank, the source frames decoded to build it)."""
    from core.video import VideoSource

    with VideoSource(clip) as video:
        read = read_frames(video)
        return build_bank(video, track, list(frames), cache_dir=cache, **kwargs), sorted(set(read))


def assert_same_mouths(cached: MouthBank, fresh: MouthBank):
    assert np.array_equal(cached.frames, fresh.frames)
    assert all(np.array_equal(c, f) for c, f in zip(cached.mouths, fresh.mouths))  # a render is the same either way
    assert np.allclose(cached.descriptors, fresh.descriptors, atol=1e-5)


def test_a_second_build_reads_no_frames_and_gives_the_same_mouths(actor_clip, actor_track, tmp_path):
    fresh, read = built(actor_clip, actor_track, range(10, 60), tmp_path)
    assert set(range(10, 60)) <= set(read)
    (entry,) = (tmp_path / "mouths").glob("*.npz")
    assert entry.stat().st_size < sum(m.nbytes for m in fresh.mouths) / 2  # JPEG, not raw pixels
    cached, read = built(actor_clip, actor_track, range(10, 60), tmp_path)
    assert read == []
    assert_same_mouths(cached, fresh)
    # the same mouths as ever: the cache changes nothing but the time
    assert_same_mouths(cached, built(actor_clip, actor_track, range(10, 60), tmp_path / "other")[0])


def test_a_wider_window_reads_only_the_frames_it_lacks(actor_clip, actor_track, tmp_path):
    narrow, _ = built(actor_clip, actor_track, range(40, 81), tmp_path)
    wide, read = built(actor_clip, actor_track, range(125), tmp_path)
    assert read == [*range(40), *range(81, 125)]
    assert_same_mouths(wide, built(actor_clip, actor_track, range(125), tmp_path / "other")[0])
    assert_same_mouths(MouthBank(wide.frames[40:81], wide.mouths[40:81], wide.descriptors[40:81]), narrow)
    assert built(actor_clip, actor_track, range(30, 100), tmp_path)[1] == []  # the entry keeps both


def test_a_changed_box_reads_those_mouths_again(actor_clip, actor_track, tmp_path):
    from core.faces import FaceTrack

    t = actor_track
    raw = t.raw_boxes.copy()
    raw[20:30] += (6, 0, 6, 0)  # the face found a little to the right in ten frames
    moved = FaceTrack(raw, t.raw_landmarks, t.has_face, t.interpolated, t.scores, t.scene_cuts, t.frame_size,
                      t.n_faces_seen, t.smooth_window, t.smooth_method, dict(t.params))
    changed = [i for i in range(60) if moved.crop_box(i) != t.crop_box(i)]
    assert set(range(20, 30)) <= set(changed) and len(changed) < 20

    built(actor_clip, t, range(60), tmp_path)
    bank, read = built(actor_clip, moved, range(60), tmp_path)
    assert read == changed
    assert_same_mouths(bank, built(actor_clip, moved, range(60), tmp_path / "other")[0])

    pads = (0, 20, 0, 0)  # other pads: other boxes everywhere
    bank, read = built(actor_clip, t, range(60), tmp_path, pads=pads)
    assert read == list(range(60))
    assert_same_mouths(bank, built(actor_clip, t, range(60), tmp_path / "other", pads=pads)[0])


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_damaged_cache_entry_is_a_miss_named_in_a_warning_and_rewritten(actor_clip, actor_track, tmp_path,
                                                                            caplog, damage):
    import logging

    fresh, _ = built(actor_clip, actor_track, range(30), tmp_path)
    (entry,) = (tmp_path / "mouths").glob("*.npz")
    damage_file(entry, damage)
    with caplog.at_level(logging.WARNING):
        bank, read = built(actor_clip, actor_track, range(30), tmp_path)
    assert read == list(range(30))
    assert any(str(entry) in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert_same_mouths(bank, fresh)
    caplog.clear()
    assert built(actor_clip, actor_track, range(30), tmp_path)[1] == [] and not caplog.records  # rewritten
    assert [p.name for p in (tmp_path / "mouths").iterdir()] == [entry.name]  # no temp file left


def test_a_cancelled_build_keeps_the_mouths_it_read(actor_clip, actor_track, tmp_path):
    from core.errors import Cancelled

    done = []
    with pytest.raises(Cancelled):
        built(actor_clip, actor_track, range(60), tmp_path, progress=lambda d, t: done.append(d),
              cancel=lambda: len(done) >= 25)
    assert len(done) == 25
    bank, read = built(actor_clip, actor_track, range(60), tmp_path)
    assert read == list(range(25, 60))
    assert_same_mouths(bank, built(actor_clip, actor_track, range(60), tmp_path / "other")[0])


def test_a_later_render_of_the_same_video_reads_no_mouths(actor_clip, tmp_path):
    dub = write_wav(tmp_path / "dub.wav", speech_like(5.0))
    options = RenderOptions(detector=BoxDetector(), cache_dir=str(tmp_path / "faces"), mouth="actor")
    for expected in ([(d, 125) for d in range(1, 126)], [(125, 125)]):  # read, then all cached
        mouths = []
        Renderer(actor_clip, dub, options, generator=IdentityGenerator(),
                 progress=lambda d, t, stage="render": stage == "mouths" and mouths.append((d, t)))
        assert mouths == expected
    assert list((tmp_path / "faces" / "mouths").glob("*.npz"))  # beside the detections, in their folder


def test_a_wide_face_is_kept_at_most_max_width_wide():
    frame = cv2.resize(frame_with(mouth_image(10)), (1280, 960), interpolation=cv2.INTER_CUBIC)
    box = tuple(4 * v for v in FACE_BOX)  # 400 pixels wide
    kept = actor_mouth.source_mouth(frame, box)
    assert kept.shape == (224, actor_mouth.MAX_WIDTH, 3)  # 280 rows at 400 wide, the same aspect
    direct = cv2.resize(frame[box[1] + 280:box[3], box[0]:box[2]], (200, 100), interpolation=cv2.INTER_AREA)
    assert np.abs(lower_half(frame, box, (200, 100)).astype(np.int16) - direct).mean() < 1


def test_banks_of_neighbouring_ranges_share_their_frames(monkeypatch):
    class EveryFrame:
        def crop_box(self, i, pads=None):
            return (0, 0, 10, 10)

    monkeypatch.setattr(actor_mouth, "MAX_ENTRIES", 100)
    first = actor_mouth.bank_frames(EveryFrame(), np.arange(1000, 1100), fps=1.0, n_source=10_000)
    later = actor_mouth.bank_frames(EveryFrame(), np.arange(1030, 1200), fps=1.0, n_source=10_000)
    assert len(first) <= 100 and len(later) <= 100
    assert np.all(np.diff(first) == np.diff(first)[0])  # evenly spaced
    overlap = set(range(max(first[0], later[0]), min(first[-1], later[-1]) + 1))
    shared_span = [f for f in first if f in overlap]
    assert set(shared_span) <= set(later) or set(f for f in later if f in overlap) <= set(first)


def test_the_lips_take_the_real_mouths_colour_not_the_originals():
    # the bank's mouths have blue lips, the frame's original mouth red ones: the pasted lips are the
    # bank's colour (a real mouth from another moment, in the generated shape), so the original
    # mouth's shape cannot come through its colour
    frames = range(200)
    blue = np.stack([mouth_image(opening(i))[..., ::-1] for i in frames])  # BGR read as RGB: blue lips
    bank = MouthBank(np.asarray(frames), list(blue), np.stack([descriptor(m) for m in blue]))
    x1, y1, x2, y2 = FACE_BOX
    open_face = cv2.resize(frame_with(mouth_image(14))[y1:y2, x1:x2], (96, 96), interpolation=cv2.INTER_AREA)
    generated = cv2.GaussianBlur(open_face, (0, 0), 2)
    frame = frame_with(mouth_image(2))
    assert ActorMouth(bank, fps=FPS).paste(frame, generated, FACE_BOX, None, source_frame=100)
    lips = lower_half(frame, FACE_BOX, MOUTH_SIZE)[18:26, 30:66]  # the upper lip and the opening's middle
    b, g, r = lips.reshape(-1, 3).astype(float).mean(axis=0)
    assert b > r  # the bank's blue; the original's lips and the generated ones are red
