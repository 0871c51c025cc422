"""Engine-level checks of core.render.Renderer: length policies, frame ranges, dub offset,
cancel, the detection cache, and pass-through frames.

Most tests run on a synthetic clip whose frames carry their own index as a colour patch in
a corner (away from the face), with a stub detector that always finds the same box, so
they need neither real footage nor the real detector. A recording generator stands in for
the model where a test looks at which frames were generated and with which mel window;
the length-policy test encodes with the real (tiny, random-weight) generator.
"""
import copy
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.audio import load_audio, mel_windows, melspectrogram
from core.errors import Cancelled, MediaError
from core.faces.detect import RetinaFaceDetector
from core.models.wav2lip import GeneratorDims, Wav2Lip
from core.plan import plan_frames
from core import render as render_module
from core.render import FaceGenerator, RenderOptions, Renderer
from core.video import VideoSource, VideoWriter
from core.yuv import YuvFrame
from tests.conftest import FACE_BOX, BoxDetector, speech_like

FPS = 25
SIZE = (320, 240)  # width, height
# two grey patches in the top-left corner carry the frame index in base 6 (grey survives
# the YUV 4:2:0 round trips; levels 40 apart survive the encoder)
MARKS = ((slice(0, 24), slice(0, 24)), (slice(0, 24), slice(24, 48)))


def mark_levels(i: int):
    return 20 + 40 * (i % 6), 20 + 40 * (i // 6)


def synthetic_frame(i: int) -> np.ndarray:
    w, h = SIZE
    frame = np.empty((h, w, 3), np.uint8)
    frame[:] = np.linspace(40, 160, w, dtype=np.uint8)[None, :, None]
    for mark, level in zip(MARKS, mark_levels(i)):
        frame[mark] = level
    x1, y1, x2, y2 = FACE_BOX
    yy, xx = np.mgrid[y1:y2, x1:x2]
    face = ((xx - (x1 + x2) / 2) / ((x2 - x1) / 2)) ** 2 + ((yy - (y1 + y2) / 2) / ((y2 - y1) / 2)) ** 2 < 1
    region = frame[y1:y2, x1:x2]
    region[face] = (120, 150, 200)
    region[(yy > y1 + 0.7 * (y2 - y1)) & face] = (60, 60, 150)  # a "mouth"
    return frame


def source_index(frame) -> int:
    """Which synthetic frame this (decoded: BGR, or a YuvFrame) frame shows, from its corner patches."""
    frame = frame.to_bgr() if isinstance(frame, YuvFrame) else frame
    low, high = (int(round((frame[mark].mean() - 20) / 40)) for mark in MARKS)
    return high * 6 + low


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    made = {}

    def clip(n: int) -> Path:
        if n not in made:
            path = folder / f"synthetic_{n}.mp4"
            with VideoWriter(path, *SIZE, FPS, crf=0, preset="ultrafast") as writer:
                for i in range(n):
                    writer.write(synthetic_frame(i))
            made[n] = path
        return made[n]

    return clip


def write_wav(path, samples, rate=16000) -> Path:
    import soundfile

    soundfile.write(path, np.asarray(samples, np.float32), rate)
    return path


def burst_dub(path, seconds=1.2, start=0.4, stop=0.6, rate=16000) -> Path:
    """Silence with a 1 kHz tone burst from `start` to `stop` seconds."""
    t = np.arange(int(seconds * rate)) / rate
    return write_wav(path, np.where((t >= start) & (t < stop), 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0), rate)


def burst_span(path, rate=16000):
    """(start, stop) seconds of the loud part of a file's audio, and its length."""
    audio = load_audio(path, rate)
    loud = np.flatnonzero(np.abs(audio) > 0.25)
    return loud[0] / rate, loud[-1] / rate, audio.size / rate


class RecordingGenerator:
    """Stands in for FaceGenerator: returns the crops inverted and keeps the mel windows."""

    batch_size = 8
    device = torch.device("cpu")

    def __init__(self):
        self.mels = []

    def __call__(self, crops, mels, references=None):
        self.mels.extend(np.array(m) for m in mels)
        return 255 - crops


@pytest.fixture(scope="module")
def tiny_generator():
    torch.manual_seed(0)
    return FaceGenerator(Wav2Lip(GeneratorDims(width=0.25)), torch.device("cpu"), batch_size=16)


def options(tmp_path, **overrides) -> RenderOptions:
    values = dict(detector=BoxDetector(), cache_dir=str(tmp_path / "cache"), preset="ultrafast")
    values.update(overrides)
    return RenderOptions(**values)


def walk(renderer):
    """(output indices, YuvFrames, generated flags) from Renderer.frames()."""
    rows = list(renderer.frames())
    return [k for k, _, _ in rows], [f for _, f, _ in rows], [g for _, _, g in rows]


# --------------------------------------------------------------------------- length policies


@pytest.mark.parametrize("policy", ["cut", "loop", "bounce", "pad"])
@pytest.mark.parametrize("dub_seconds", [1.2, 0.6])
def test_output_follows_the_plan_of_each_length_policy(clips, tiny_generator, tmp_path, policy, dub_seconds):
    n_video = 20
    video = clips(n_video)
    dub = write_wav(tmp_path / "dub.wav", speech_like(dub_seconds))
    plan, with_dub = plan_frames(n_video, FPS, dub_seconds, policy)
    expected_length = {"cut": min(20, round(dub_seconds * FPS)), "loop": round(dub_seconds * FPS),
                       "bounce": round(dub_seconds * FPS), "pad": max(20, round(dub_seconds * FPS))}[policy]
    assert len(plan) == expected_length

    renderer = Renderer(video, dub, options(tmp_path, length_policy=policy), generator=tiny_generator)
    report = renderer.render_to(tmp_path / "out.mp4")
    assert report.frames == len(plan) and report.generated == int(with_dub.sum())
    with VideoSource(tmp_path / "out.mp4") as out:
        assert out.frame_count == len(plan)
        shown = [source_index(frame) for _, frame in out.frames()]
    assert shown == plan.tolist()
    if policy in ("loop", "bounce") and dub_seconds > n_video / FPS:
        assert shown[n_video] == (0 if policy == "loop" else n_video - 2)


# --------------------------------------------------------------------------- source timing


def test_variable_frame_rate_source_stays_on_its_own_clock(clips, tmp_path, caplog):
    from tests.conftest import ffmpeg

    # 25 frames at 25 fps, then 10 at 12.5 fps (1.84 s): planned from the frame count at the
    # average rate (19.3 fps) frame 24 would come 0.28 s late.
    video = tmp_path / "vfr.mp4"
    ffmpeg("-i", clips(35), "-vf", "setpts='if(lt(N,25),N,2*N-24)/(25*TB)'", "-fps_mode", "vfr",
           "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", video)
    with VideoSource(video) as source:
        shown_at = source.timestamps
    assert set(np.round(np.diff(shown_at), 6)) == {0.04, 0.08}
    dub = write_wav(tmp_path / "dub.wav", speech_like(2.0))
    with caplog.at_level("WARNING", logger="core.video"):
        renderer = Renderer(video, dub, options(tmp_path), generator=RecordingGenerator())
    assert any(r.getMessage().startswith(f"{video}: variable frame rate") for r in caplog.records)
    assert renderer.fps == FPS and len(renderer.source) == 46  # the nominal rate, over the source's 1.84 s
    indices, frames, _ = walk(renderer)
    shown = np.array([source_index(frame) for frame in frames])
    np.testing.assert_array_equal(shown, renderer.source)
    error = np.abs(np.asarray(indices) / renderer.fps - shown_at[shown])
    assert error[:25].max() < 1e-6 and error.max() <= 0.04 + 1e-6  # within half a source frame
    output = tmp_path / "out.mp4"
    Renderer(video, dub, options(tmp_path), generator=RecordingGenerator()).render_to(output)
    with VideoSource(output) as out:
        assert out.frame_count == 46 and not out.vfr and out.fps == pytest.approx(FPS)
        assert [source_index(frame) for _, frame in out.frames()] == shown.tolist()


def test_constant_rate_source_plans_one_output_frame_per_source_frame(clips, tmp_path):
    dub = write_wav(tmp_path / "dub.wav", speech_like(1.0))
    renderer = Renderer(clips(30), dub, options(tmp_path, length_policy="pad"), generator=RecordingGenerator())
    plan, with_dub = plan_frames(30, FPS, 1.0, "pad")
    np.testing.assert_array_equal(renderer.source, plan)
    np.testing.assert_array_equal(renderer.with_dub, with_dub)
    assert renderer.fps == FPS


def test_strict_refuses_a_truncated_source(clips, tmp_path, capsys):
    from main import main

    data = clips(30).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # faststart: the index survives, half the frames do not
    dub = write_wav(tmp_path / "dub.wav", speech_like(1.0))
    with pytest.raises(MediaError, match="promises 30 frames but only .* the file may be truncated"):
        Renderer(cut, dub, options(tmp_path, strict=True), generator=RecordingGenerator())
    assert main(["render", str(cut), str(dub), "-o", str(tmp_path / "out.mp4"), "--strict", "-q"]) == 1
    assert f"error: {cut}: the container promises 30 frames" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()


# --------------------------------------------------------------------------- frame range


def test_frame_range_renders_only_those_frames_with_the_audio_cut_to_match(clips, tmp_path):
    video = clips(30)
    dub = burst_dub(tmp_path / "dub.wav", seconds=1.2, start=0.4, stop=0.6)
    generator = RecordingGenerator()
    renderer = Renderer(video, dub, options(tmp_path, start_frame=5, end_frame=20), generator=generator)
    indices, frames, generated = walk(renderer)
    assert indices == list(range(5, 20)) and all(generated)
    assert [source_index(f) for f in frames] == list(range(5, 20))
    mel = melspectrogram(load_audio(dub))
    np.testing.assert_array_equal(np.stack(generator.mels), mel_windows(mel, np.arange(5, 20) / FPS))

    output = tmp_path / "range.mp4"
    Renderer(video, dub, options(tmp_path, start_frame=5, end_frame=20), generator=RecordingGenerator()) \
        .render_to(output)
    with VideoSource(output) as out:
        assert out.frame_count == 15
        assert source_index(out.read(0)) == 5
    start, stop, length = burst_span(output)
    assert length == pytest.approx(15 / FPS, abs=0.01)  # the audio is as long as the range
    assert start == pytest.approx(0.4 - 5 / FPS, abs=0.02)  # and starts where frame 5 does
    assert stop == pytest.approx(0.6 - 5 / FPS, abs=0.02)


# --------------------------------------------------------------------------- dub offset


def test_late_dub_leaves_the_first_frames_untouched(clips, tmp_path):
    video = clips(30)
    dub = write_wav(tmp_path / "dub.wav", speech_like(1.2))
    generator = RecordingGenerator()
    renderer = Renderer(video, dub, options(tmp_path, dub_offset_s=0.4), generator=generator)
    indices, frames, generated = walk(renderer)
    assert indices == list(range(30))
    assert generated == [False] * 10 + [True] * 20  # the dub starts at 0.4 s = frame 10
    with VideoSource(video) as source:
        for k in range(10):
            assert np.array_equal(frames[k].data, next(source.frames(k, k + 1, yuv=True))[1].data)
    mel = melspectrogram(load_audio(dub))
    np.testing.assert_array_equal(generator.mels[0], mel[:, 0:16])  # frame 10 gets the dub's first window
    np.testing.assert_array_equal(np.stack(generator.mels), mel_windows(mel, np.arange(10, 30) / FPS - 0.4))


def test_early_dub_skips_its_start(clips, tmp_path):
    video = clips(30)
    dub = write_wav(tmp_path / "dub.wav", speech_like(1.2))
    generator = RecordingGenerator()
    renderer = Renderer(video, dub, options(tmp_path, dub_offset_s=-0.4), generator=generator)
    indices, _, generated = walk(renderer)
    assert indices == list(range(20)) and all(generated)  # cut: 1.2 s - 0.4 s of dub left
    mel = melspectrogram(load_audio(dub))
    np.testing.assert_array_equal(generator.mels[0], mel[:, 32:48])  # frame 0 hears the dub at 0.4 s


def test_dub_offset_moves_the_audio_in_the_output(clips, tmp_path):
    dub = burst_dub(tmp_path / "dub.wav", seconds=1.0, start=0.2, stop=0.4)
    output = tmp_path / "late.mp4"
    Renderer(clips(30), dub, options(tmp_path, dub_offset_s=0.2, length_policy="pad"),
             generator=RecordingGenerator()).render_to(output)
    start, stop, length = burst_span(output)
    assert length == pytest.approx(1.2, abs=0.01)
    assert (start, stop) == (pytest.approx(0.4, abs=0.02), pytest.approx(0.6, abs=0.02))


# --------------------------------------------------------------------------- cancel


def test_cancel_mid_render_raises_and_leaves_no_output(clips, tmp_path):
    rendered = []
    progress = lambda done, total, stage="render": rendered.append(done) if stage == "render" else None
    cancel = lambda: len(rendered) >= 10
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    renderer = Renderer(clips(30), write_wav(tmp_path / "dub.wav", speech_like(1.2)),
                        options(tmp_path, batch_size=4), progress=progress, cancel=cancel,
                        generator=RecordingGenerator())
    threads_before = threading.active_count()
    with pytest.raises(Cancelled):
        renderer.render_to(out_dir / "out.mp4")
    assert 10 <= len(rendered) < 30
    assert list(out_dir.iterdir()) == []  # neither the output nor a temp file
    for _ in range(50):  # the decode thread stops soon after
        if threading.active_count() <= threads_before:
            break
        threading.Event().wait(0.05)
    assert threading.active_count() <= threads_before


def test_cancel_during_detection_keeps_what_it_found(clips, tmp_path, every_frame):
    detector = BoxDetector()
    cancel = lambda: detector.calls >= 5
    dub = write_wav(tmp_path / "dub.wav", speech_like(1.2))
    with pytest.raises(Cancelled):
        Renderer(clips(30), dub, options(tmp_path, detector=detector), cancel=cancel, generator=RecordingGenerator())
    assert detector.calls == 5
    assert not list((tmp_path / "cache").glob("*.tmp"))
    Renderer(clips(30), dub, options(tmp_path, detector=detector), generator=RecordingGenerator())
    assert detector.calls == 30  # the next render detected only the 25 frames left


# --------------------------------------------------------------------------- detection cache


def test_second_render_skips_detection(clips, tmp_path, every_frame):
    video, dub = clips(30), write_wav(tmp_path / "dub.wav", speech_like(1.2))
    detector = BoxDetector()
    first = Renderer(video, dub, options(tmp_path, detector=detector), generator=RecordingGenerator())
    assert detector.calls == 30
    second = Renderer(video, dub, options(tmp_path, detector=detector), generator=RecordingGenerator())
    assert detector.calls == 30  # all 30 frames came from the cache
    np.testing.assert_array_equal(first.track.raw_boxes, second.track.raw_boxes)
    Renderer(video, dub, options(tmp_path, detector=detector, cache_dir=str(tmp_path / "other")),
             generator=RecordingGenerator())
    assert detector.calls == 60  # another cache folder: detected again


@pytest.mark.data
def test_second_render_skips_real_detection(data_dir, tmp_path, monkeypatch):
    from tests.conftest import ffmpeg

    video = tmp_path / "face.mp4"
    ffmpeg("-i", data_dir / "pcavs" / "00002.mp4", "-t", "1", "-c:v", "libx264", "-preset", "ultrafast", video)
    calls = []
    real_detect = RetinaFaceDetector._detect
    monkeypatch.setattr(RetinaFaceDetector, "_detect", lambda self, image: calls.append(1) or real_detect(self, image))
    dub = data_dir / "dubs" / "vox_id01849.wav"
    opts = RenderOptions(cache_dir=str(tmp_path / "cache"))
    first = Renderer(video, dub, opts, generator=RecordingGenerator())
    assert len(calls) == 13 and first.track.has_face.all()  # every second of the 25 frames: a steady face pairs up
    second = Renderer(video, dub, opts, generator=RecordingGenerator())
    assert len(calls) == 13
    np.testing.assert_array_equal(first.track.raw_boxes, second.track.raw_boxes)


# --------------------------------------------------------------------------- pass-through


def test_frames_past_the_dub_under_pad_are_the_source_frames(clips, tmp_path):
    video = clips(30)
    renderer = Renderer(video, write_wav(tmp_path / "dub.wav", speech_like(0.6)),
                        options(tmp_path, length_policy="pad"), generator=RecordingGenerator())
    indices, frames, generated = walk(renderer)
    assert indices == list(range(30))
    assert generated == [True] * 15 + [False] * 15
    with VideoSource(video) as source:
        originals = [frame for _, frame in source.frames(yuv=True)]
    for k in range(30):
        assert np.array_equal(frames[k].data, originals[k].data) == (k >= 15), k


def test_bounce_decodes_backward_runs_in_order_across_blocks():
    from core.render import source_frames

    class CountingVideo:
        is_image = False

        def frames(self, start, stop, yuv=False):
            for i in range(start, stop):
                yield i, np.full((2, 2, 3), i, np.uint8)

    for n_video, seconds in ((20, 1.2), (40, 4.0), (5, 2.0), (2, 1.0)):
        plan, _ = plan_frames(n_video, FPS, seconds, "bounce")
        frames = list(source_frames(CountingVideo(), plan, block=8))
        assert [int(f[0, 0, 0]) for f in frames] == plan.tolist()
        assert len({id(f) for f in frames}) == len(frames)  # each output frame its own array (blended in place)


def test_conformed_runs_decode_once_and_repeat_frames_as_separate_arrays():
    from core.render import source_frames

    class CountingVideo:
        is_image = False
        opened = 0

        def frames(self, start, stop, yuv=False):
            self.opened += 1
            for i in range(start, stop):
                yield i, np.full((2, 2, 3), i, np.uint8)

    # a VFR source conformed to a constant rate repeats frames where it is slow and skips where fast
    plan = np.array([0, 1, 1, 2, 2, 3, 5, 7, 9, 10, 10, 11])
    video = CountingVideo()
    frames = list(source_frames(video, plan))
    assert [int(f[0, 0, 0]) for f in frames] == plan.tolist()
    assert len({id(f) for f in frames}) == len(frames)  # each output frame its own array (blended in place)
    assert video.opened == 1  # one forward decode, not a seek at every skip


def test_folding_batchnorm_keeps_the_generator_output():
    import copy

    from core.render import fold_batchnorm

    torch.manual_seed(0)
    model = Wav2Lip(GeneratorDims(width=0.25)).eval()
    for module in model.modules():  # trained-looking statistics, so folding has something to do
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    folded = fold_batchnorm(copy.deepcopy(model))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    faces, mel = torch.rand(4, 6, 96, 96), torch.rand(4, 1, 80, 16)
    with torch.no_grad():
        torch.testing.assert_close(folded(mel, faces), model(mel, faces), atol=1e-5, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("compile_model", [False, True])
def test_the_fast_generator_draws_what_the_plain_model_draws(monkeypatch, compile_model):
    """bf16 weights, folded BatchNorm, channels-last and (for long jobs) compiled with frozen weights: the
    bundled generator's 8-bit output stays within bf16's rounding of the same model in fp32."""
    from core.weights import load_model

    model = load_model("generator", expect="wav2lip")
    rng = np.random.default_rng(0)
    with VideoSource(Path(__file__).parents[1] / "resources" / "demo" / "portrait.png") as still:
        face = cv2.resize(still.read(0), (96, 96), interpolation=cv2.INTER_AREA)
    crops = np.stack([np.roll(face, shift, axis=1) for shift in range(-6, 6, 2)])
    mels = rng.uniform(-4, 0, (6, 80, 16)).astype(np.float32)
    monkeypatch.setattr(render_module, "cpu_supports_bf16", lambda: False)
    plain = FaceGenerator(copy.deepcopy(model), torch.device("cpu"), batch_size=4)(crops, mels)
    monkeypatch.setattr(render_module, "cpu_supports_bf16", lambda: True)
    fast = FaceGenerator(model, torch.device("cpu"), batch_size=4, compile_model=compile_model)
    assert next(fast.model.parameters()).dtype == torch.bfloat16
    difference = np.abs(fast(crops, mels).astype(int) - plain)
    assert difference.mean() < 1.0 and np.percentile(difference, 99.9) <= 8, (difference.mean(), difference.max())
    assert np.abs(plain.astype(int) - plain[::-1]).mean() > 4 * difference.mean()  # the faces differ more


def test_a_compiled_generator_runs_every_batch_at_its_size(tiny_generator):
    """A compiled model is specialised to its batch size: a job's last, shorter batch is padded, not
    compiled again; the padding's output is dropped."""
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (20, 96, 96, 3), dtype=np.uint8)
    mels = rng.uniform(-4, 0, (20, 80, 16)).astype(np.float32)
    sizes, run = [], tiny_generator._run
    tiny_generator._run = lambda *chunk: sizes.append(len(chunk[0])) or run(*chunk)
    try:
        plain = tiny_generator(crops, mels)
        tiny_generator.compiled = True
        padded = tiny_generator(crops, mels)
    finally:
        tiny_generator.compiled = False
        del tiny_generator._run
    assert sizes == [16, 4, 16, 16] and padded.shape == plain.shape
    assert np.abs(padded.astype(int) - plain).max() <= 1


@pytest.mark.parametrize("native_bf16", [True, False])
def test_the_generator_runs_with_and_without_native_bf16(monkeypatch, native_bf16):
    """Without bf16 autocast (a CPU with no native bf16) the model's float output is itself an
    inference tensor: turning it into 8 bits in place outside inference mode raised."""
    monkeypatch.setattr(render_module, "cpu_supports_bf16", lambda: native_bf16)
    torch.manual_seed(0)
    generator = FaceGenerator(Wav2Lip(GeneratorDims(width=0.25)), torch.device("cpu"), batch_size=4)
    crops = np.random.default_rng(0).integers(0, 256, (5, 96, 96, 3), dtype=np.uint8)
    out = generator(crops, np.zeros((5, 80, 16), np.float32))
    assert out.shape == crops.shape and out.dtype == np.uint8 and out.std() > 0
