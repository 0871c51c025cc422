"""VideoSource (streamed PyAV reading) and VideoWriter (ffmpeg pipe) on small synthetic clips."""
import logging
import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from core.errors import MediaError
from core.ffmpeg import ffmpeg_exe
from core.video import VideoSource, VideoWriter, check_writable

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
W, H, FPS, N = 64, 48, 25, 75  # 3 s


def run_ffmpeg(*args, stdin=None):
    quiet = ["-y", "-hide_banner", "-loglevel", "error"] + (["-nostdin"] if stdin is None else [])
    subprocess.run([ffmpeg_exe(), *quiet, *map(str, args)], input=stdin, check=True)


def source_frames(n=N):
    """A white square moving over grey, with the frame index drawn as 8 black/white blocks on top."""
    frames = np.full((n, H, W, 3), 96, np.uint8)
    for i in range(n):
        x = (3 * i) % (W - 12)
        frames[i, 20:32, x:x + 12] = 255
        for bit in range(8):
            frames[i, :8, 8 * bit:8 * bit + 8] = 255 if i >> bit & 1 else 0
    return frames


def frame_id(frame):
    """Read back the index drawn by source_frames (survives lossy coding)."""
    blocks = frame[2:6].reshape(4, 8, 8, 3)[:, :, 2:6].mean(axis=(0, 2, 3))
    return sum(1 << bit for bit in range(8) if blocks[bit] > 128)


def encode(path, frames, *extra, audio=True, vf=None):
    """Pipe frames through libx264 (veryfast keeps B-frames; a keyframe every 10 frames)."""
    args = ["-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{W}x{H}", "-framerate", FPS, "-i", "-"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={len(frames) / FPS}", "-c:a", "aac"]
    if vf:
        args += ["-vf", vf]
    args += ["-c:v", "libx264", "-preset", "veryfast", "-g", 10, "-sc_threshold", 0, "-pix_fmt", "yuv420p",
             *extra, path]
    run_ffmpeg(*args, stdin=frames.tobytes())
    return path


@pytest.fixture(scope="module")
def src():
    return source_frames()


@pytest.fixture(scope="module")
def clip(tmp_path_factory, src):
    """3 s, 64x48, 25 fps H.264 with B-frames, plus a 440 Hz AAC track; moov at the end."""
    return encode(tmp_path_factory.mktemp("clip") / "clip.mp4", src)


@pytest.fixture(scope="module")
def decoded(clip):
    with VideoSource(clip) as video:
        return [frame for _, frame in video.frames()]


def wav(path, seconds, tone_seconds=None):
    """A 440 Hz tone for `tone_seconds` (default: all), then silence, `seconds` long."""
    tone = seconds if tone_seconds is None else tone_seconds
    run_ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={tone}",
               "-af", f"apad=whole_dur={seconds}", path)
    return path


# --------------------------------------------------------------------------- reading


def test_properties_come_from_timestamps(clip):
    with VideoSource(clip) as video:
        assert (video.width, video.height, video.rotation) == (W, H, 0)
        assert video.frame_count == N
        assert video.timestamps.dtype == np.float64
        np.testing.assert_allclose(video.timestamps, np.arange(N) / FPS, atol=1e-9)
        assert video.fps == pytest.approx(FPS, abs=1e-9)
        assert video.duration == pytest.approx(N / FPS)
        assert video.has_audio and not video.is_image


def test_full_decode_gives_each_frame_in_order(decoded, src):
    assert len(decoded) == N
    assert all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in decoded)
    assert [frame_id(f) for f in decoded] == list(range(N))


@pytest.mark.parametrize("k", [1, 9, 10, 11, 37, 58, N - 1])
def test_seek_is_frame_accurate(clip, decoded, k):
    with VideoSource(clip) as video:
        got = list(video.frames(start=k, stop=k + 3))
        assert [i for i, _ in got] == list(range(k, min(k + 3, N)))
        for i, frame in got:
            np.testing.assert_array_equal(frame, decoded[i])
        np.testing.assert_array_equal(video.read(k), decoded[k])


# Seeking lands by decode time; with B-frames or open GOPs the keyframe found can come after
# the wanted frame (AVI, open-GOP MP4), and MPEG-PS mis-stamps frames after a seek.
CONTAINERS = {
    "open-gop.mp4": ["-c:v", "libx264", "-preset", "medium", "-g", 10, "-x264-params", "open-gop=1"],
    "bframes.avi": ["-c:v", "mpeg4", "-bf", 2, "-g", 12, "-q:v", 3],
    "h264.mkv": ["-c:v", "libx264", "-preset", "veryfast", "-g", 10],
    "mpeg1.mpg": ["-c:v", "mpeg1video", "-bf", 2, "-g", 12, "-q:v", 3, "-f", "mpeg"],
}


@pytest.mark.parametrize("name", CONTAINERS)
def test_seek_lands_on_the_right_frame_in_every_container(tmp_path, src, name):
    path = tmp_path / name
    run_ffmpeg("-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{W}x{H}", "-framerate", FPS, "-i", "-",
               *CONTAINERS[name], path, stdin=src.tobytes())
    with VideoSource(path) as video:
        assert video.frame_count == N and video.fps == pytest.approx(FPS)
        landed = [(i, frame_id(f)) for k in range(N) for i, f in video.frames(start=k, stop=k + 1)]
        assert landed == [(k, k) for k in range(N)]


def test_frame_time_helpers(clip):
    with VideoSource(clip) as video:
        assert video.frame_at_time(0.0) == 0
        assert video.frame_at_time(0.039) == 0
        assert video.frame_at_time(0.04) == 1
        assert video.frame_at_time(1.0 / FPS * 37) == 37  # i / fps rounding must not give i-1
        assert video.frame_at_time(-1.0) == 0 and video.frame_at_time(99.0) == N - 1
        assert video.time_of_frame(10) == pytest.approx(0.4)
        assert video.time_of_frame(N) == pytest.approx(video.duration)
        assert all(video.frame_at_time(video.time_of_frame(i)) == i for i in range(N))
        with pytest.raises(IndexError):
            video.read(N)


def test_variable_frame_rate_keeps_true_timestamps(tmp_path, src):
    # 10 frames 40 ms apart, then 20 frames 120 ms apart; the header rate (25) is meaningless.
    frames = src[:30]
    path = encode(tmp_path / "vfr.mp4", frames, "-fps_mode", "vfr", audio=False,
                  vf="setpts='if(lt(N,10),N,3*N-18)/(25*TB)'")  # whole 1/25 s steps: exact
    expected = np.array([i * 0.04 if i < 10 else 0.36 + (i - 9) * 0.12 for i in range(30)])
    with VideoSource(path) as video:
        assert video.frame_count == 30
        np.testing.assert_allclose(video.timestamps, expected, atol=1e-6)
        assert video.fps == 25  # variable: conformed to the header's nominal rate, not the average
        assert video.frame_at_time(0.5) == 10 and video.frame_at_time(0.6) == 11
        index, frame = next(video.frames(start=21))
        assert index == 21 and frame_id(frame) == 21


def packet_intervals(path):
    """Seconds between consecutive frames, straight from the demuxer (what ffprobe shows)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = sorted(p.pts for p in container.demux(stream) if p.size)
    return set(np.round(np.diff(pts) * float(stream.time_base), 6))


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_variable_frame_rate_is_conformed_to_its_nominal_rate(tmp_path, src, caplog, suffix):
    # 2 s at 25 fps, then 2 s at 12.5 fps: the average (18.75 fps) would drift 0.7 s off the source's clock.
    path = encode(tmp_path / f"vfr{suffix}", src, "-fps_mode", "vfr", audio=False,
                  vf="setpts='if(lt(N,50),N,2*N-50)/(25*TB)'")
    assert packet_intervals(path) == {0.04, 0.08}
    with caplog.at_level(logging.WARNING, logger="core.video"), VideoSource(path) as video:
        assert video.frame_count == N and video.vfr
        assert video.fps == 25 and video.duration == pytest.approx(4.0)
        assert len(video.timeline) == 100
        shown_at = video.timestamps[video.timeline]
        error = np.abs(np.arange(100) / 25 - shown_at)
        assert error[:50].max() < 1e-6  # the 25 fps part: one output frame per source frame
        assert error.max() <= 0.04 + 1e-6  # within half a source frame everywhere
        assert np.all(np.diff(video.timeline) >= 0)
        assert [frame_id(video.read(int(i))) for i in video.timeline[48:56]] == [48, 49, 50, 50, 51, 51, 52, 52]
    warnings = [r.getMessage() for r in caplog.records if "variable frame rate" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith(f"{path}:") and "25 fps" in warnings[0]


@pytest.mark.parametrize("name, rate", [("clip.mkv", "30000/1001"), ("clip.mp4", "25")])
def test_constant_rate_files_keep_their_frames_one_to_one(tmp_path, src, caplog, name, rate):
    # Matroska keeps milliseconds: 29.97 fps there steps 33 or 34 ms, and is still constant-rate.
    path = tmp_path / name
    run_ffmpeg("-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{W}x{H}", "-framerate", rate, "-i", "-",
               "-c:v", "libx264", "-preset", "veryfast", path, stdin=src.tobytes())
    with caplog.at_level(logging.WARNING, logger="core.video"), VideoSource(path) as video:
        assert not video.vfr
        np.testing.assert_array_equal(video.timeline, np.arange(N))
        assert video.fps == pytest.approx((N - 1) / video.timestamps[-1], abs=1e-12)
        assert video.duration == pytest.approx(N / video.fps)
    assert not caplog.records


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_file_decodes_upright(tmp_path, clip, decoded, degrees):
    # This ffmpeg (9.x) ignores `-metadata:s:v rotate=`; `-display_rotation` writes the display matrix.
    rotated = tmp_path / "rotated.mp4"
    run_ffmpeg("-display_rotation", degrees, "-i", clip, "-c", "copy", rotated)
    with VideoSource(rotated) as video:
        assert video.rotation == degrees
        assert (video.width, video.height) == ((H, W) if degrees in (90, 270) else (W, H))
        frame = video.read(12)
        assert frame.shape == (video.height, video.width, 3) and frame.flags.c_contiguous
        np.testing.assert_array_equal(frame, np.rot90(decoded[12], degrees // 90))


def test_still_image_is_a_one_frame_source(tmp_path, src):
    path = tmp_path / "portrait photo.png"
    cv2.imencode(".png", src[5])[1].tofile(path)
    with VideoSource(path) as still:
        assert still.is_image and not still.has_audio
        assert (still.frame_count, still.fps, still.width, still.height) == (1, 25, W, H)
        assert still.duration == pytest.approx(0.04)
        assert [i for i, _ in still.frames()] == [0]
        np.testing.assert_array_equal(still.read(0), src[5])


def test_non_ascii_path_with_spaces(tmp_path, clip, decoded):
    path = tmp_path / "dub tést 视频" / "clip ü ñ.mp4"
    path.parent.mkdir()
    shutil.copy(clip, path)
    with VideoSource(path) as video:
        assert video.frame_count == N
        np.testing.assert_array_equal(video.read(40), decoded[40])


def test_missing_empty_and_folder(tmp_path):
    with pytest.raises(MediaError, match="file not found"):
        VideoSource(tmp_path / "nope.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        VideoSource(tmp_path / "empty.mp4")
    with pytest.raises(MediaError, match="folder"):
        VideoSource(tmp_path)


def test_text_file_renamed_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(MediaError, match="not a media file") as err:
        VideoSource(path)
    assert err.value.path == path


def test_garbage_image(tmp_path):
    path = tmp_path / "face.jpg"
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(MediaError, match="not a readable image"):
        VideoSource(path)


def test_audio_only_file_has_no_video_stream(tmp_path):
    with pytest.raises(MediaError, match="has no video stream"):
        VideoSource(wav(tmp_path / "dub.wav", 1.0))


def test_truncated_mp4_with_index_at_end_is_refused(tmp_path, clip):
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the moov index is at the end: gone
    with pytest.raises(MediaError, match="truncated"):
        VideoSource(cut)


def test_truncated_faststart_mp4_opens_what_is_there(tmp_path, clip):
    faststart = tmp_path / "fs.mp4"
    run_ffmpeg("-i", clip, "-c", "copy", "-movflags", "+faststart", faststart)
    data = faststart.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # index intact, second half of the samples gone
    with VideoSource(cut) as video:
        assert 10 < video.frame_count < N
        assert [i for i, _ in video.frames()] == list(range(video.frame_count))


def test_truncated_faststart_mp4_is_reported_and_refused_when_strict(tmp_path, clip, caplog):
    faststart = tmp_path / "fs.mp4"
    run_ffmpeg("-i", clip, "-c", "copy", "-movflags", "+faststart", faststart)
    data = faststart.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="core.video"), VideoSource(cut) as video:
        found = video.frame_count
    # (the B-frames lost with the tail also leave gaps in the timestamps: warned about as VFR)
    assert [r.getMessage() for r in caplog.records].count(
        f"{cut}: the container promises {N} frames but only {found} are there; the file may be truncated") == 1
    with pytest.raises(MediaError, match=f"promises {N} frames but only {found}") as err:
        VideoSource(cut, strict=True)
    assert err.value.path == cut
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="core.video"), VideoSource(faststart, strict=True) as whole:
        assert whole.frame_count == N  # a whole file keeps its promise
    assert not caplog.records


def damaged_copy(tmp_path, clip):
    """The clip, faststart, with random bytes over an eighth of it from the middle on."""
    faststart = tmp_path / "fs.mp4"
    run_ffmpeg("-i", clip, "-c", "copy", "-movflags", "+faststart", faststart)
    data = bytearray(faststart.read_bytes())
    n = len(data)
    data[n // 2:n // 2 + n // 8] = np.random.default_rng(0).integers(0, 256, n // 8, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    return damaged


def test_damaged_middle_still_yields_every_frame(tmp_path, clip):
    with VideoSource(damaged_copy(tmp_path, clip)) as video:
        assert video.frame_count == N
        ids = [(i, frame_id(f)) for i, f in video.frames()]
        assert [i for i, _ in ids] == list(range(N))  # held frames fill what did not decode
        assert [k for i, k in ids[60:]] == list(range(60, N))  # right again from a later keyframe
        assert frame_id(video.read(60)) == 60


def test_damaged_packets_are_reported_once_naming_the_file(tmp_path, clip, caplog):
    damaged = damaged_copy(tmp_path, clip)
    with caplog.at_level(logging.WARNING, logger="core.video"), VideoSource(damaged) as video:
        for _ in range(2):  # detection and render each decode the whole file
            assert sum(1 for _ in video.frames()) == N
        video.read(40)
    messages = [r.getMessage() for r in caplog.records]
    assert messages and all(m.startswith(f"{damaged}: ") and "damaged" in m for m in messages)
    assert len(set(messages)) == len(messages)  # each damaged packet once
    with VideoSource(damaged, strict=True) as video, pytest.raises(MediaError, match="damaged") as err:
        for _ in video.frames():
            pass
    assert err.value.path == damaged


# --------------------------------------------------------------------------- writing


def audio_of(path):
    """(duration from the container, samples as float mono, sample rate)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([f.to_ndarray().mean(axis=0) for f in container.decode(stream)])
        return float(stream.duration * stream.time_base), samples, stream.rate


@pytest.mark.parametrize("audio_seconds", [3.0, 1.0])  # longer: cut; shorter: padded with silence
def test_writer_round_trip(tmp_path, src, audio_seconds):
    dub = wav(tmp_path / "dub.wav", audio_seconds)
    out = tmp_path / "out dir é" / "result ü.mp4"
    out.parent.mkdir()
    with VideoWriter(out, W, H, FPS, audio_path=dub, preset="veryfast") as writer:
        for frame in src[:50]:
            writer.write(frame)
    assert os.listdir(out.parent) == [out.name]  # no temp files left beside it
    with VideoSource(out) as video:
        assert (video.frame_count, video.width, video.height) == (50, W, H)
        assert video.fps == pytest.approx(FPS) and video.has_audio
        frames = [f for _, f in video.frames()]
    assert [frame_id(f) for f in frames] == list(range(50))
    duration, samples, rate = audio_of(out)
    assert duration == pytest.approx(2.0, abs=0.01)
    assert len(samples) / rate == pytest.approx(2.0, abs=0.03)  # at most one AAC frame over
    rms = lambda a, b: float(np.sqrt(np.mean(samples[int(a * rate):int(b * rate)] ** 2)))
    if audio_seconds < 2.0:
        assert rms(0.2, 0.9) > 0.05 and rms(1.1, 1.9) < 1e-3


def test_writer_and_source_keep_colours_within_a_level(tmp_path):
    """Untouched pixels of a re-encoded shot must not drift: flat patches (greys, primaries, skin)
    through VideoWriter (BT.709, 4:2:0) and back through VideoSource. swscale's fast default
    rounding made every patch ~2 levels darker (3 at worst) on the way in and ~0.7 on the way out."""
    colours = [(128, 128, 128), (30, 30, 30), (220, 220, 220), (40, 40, 200), (40, 200, 40), (200, 40, 40),
               (77, 117, 144), (92, 101, 193)]  # BGR; the last two: skin, an orange suit
    image = np.zeros((64, 32 * len(colours), 3), np.uint8)
    for i, colour in enumerate(colours):
        image[:, 32 * i:32 * (i + 1)] = colour
    out = tmp_path / "patches.mp4"
    with VideoWriter(out, image.shape[1], image.shape[0], FPS, crf=0, preset="ultrafast") as writer:
        for _ in range(3):
            writer.write(image)
    with VideoSource(out) as video:
        back = video.read(1).astype(int)
    error = np.array([back[24:40, 32 * i + 12:32 * i + 20].mean(axis=(0, 1)) - c for i, c in enumerate(colours)])
    assert np.abs(error).max() <= 1.0
    assert np.abs(error.mean(axis=0)).max() < 0.5  # no overall shift


@pytest.mark.parametrize("offset", [0.5, -0.5])
def test_writer_audio_offset(tmp_path, offset):
    dub = wav(tmp_path / "dub.wav", 2.0, tone_seconds=1.0)  # tone 0-1 s, then silence
    out = tmp_path / "out.mp4"
    with VideoWriter(out, W, H, FPS, audio_path=dub, audio_offset_s=offset, preset="ultrafast") as writer:
        for frame in source_frames(50):
            writer.write(frame)
    _, samples, rate = audio_of(out)
    rms = lambda a, b: float(np.sqrt(np.mean(samples[int(a * rate):int(b * rate)] ** 2)))
    if offset > 0:  # later: silence, tone from 0.5 to 1.5 s, silence
        assert rms(0.05, 0.45) < 1e-3 and rms(0.55, 1.45) > 0.05 and rms(1.6, 1.95) < 1e-3
    else:  # earlier: tone until 0.5 s, then silence
        assert rms(0.05, 0.45) > 0.05 and rms(0.6, 1.95) < 1e-3


@pytest.mark.parametrize("fps", [Fraction(30000, 1001), 30000 / 1001])
def test_writer_fractional_rate_and_odd_size(tmp_path, fps):
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, 65, 49, fps, preset="ultrafast") as writer:
        assert (writer.out_width, writer.out_height) == (64, 48)
        for i in range(30):
            writer.write(np.full((49, 65, 3), 8 * i, np.uint8))
    with VideoSource(out) as video:
        assert (video.frame_count, video.width, video.height) == (30, 64, 48)
        assert video.fps == pytest.approx(30000 / 1001, abs=1e-6)
        assert [video.frame_at_time(i / video.fps) for i in range(30)] == list(range(30))
        assert not video.has_audio


def test_writer_leaves_nothing_on_exception_or_abort(tmp_path, src):
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, W, H, FPS, audio_path=wav(tmp_path / "dub.wav", 1.0)) as writer:
            writer.write(src[0])
            raise RuntimeError("render cancelled")
    writer = VideoWriter(out, W, H, FPS)
    writer.write(src[0])
    writer.abort()
    writer.close()  # a no-op after abort
    assert sorted(os.listdir(tmp_path)) == ["dub.wav"]


def test_writer_keeps_an_existing_file_until_success(tmp_path, src):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous export")
    with pytest.raises(ValueError, match="uint8"):
        with VideoWriter(out, W, H, FPS) as writer:
            writer.write(src[0].astype(np.float32))
    assert out.read_bytes() == b"previous export"
    with VideoWriter(out, W, H, FPS, preset="ultrafast") as writer:
        writer.write(src[0])
    with VideoSource(out) as video:
        assert video.frame_count == 1


def test_writer_reports_ffmpeg_failure(tmp_path, src):
    out = tmp_path / "out.mp4"
    with pytest.raises(MediaError, match="nonsense"):  # ffmpeg's own words reach the message
        with VideoWriter(out, W, H, FPS, preset="nonsense") as writer:
            for frame in src:
                writer.write(frame)
    assert os.listdir(tmp_path) == []


def test_writer_without_frames_fails(tmp_path):
    with pytest.raises(MediaError, match="no frames"):
        with VideoWriter(tmp_path / "out.mp4", W, H, FPS):
            pass
    assert os.listdir(tmp_path) == []


def test_writer_refuses_unwritable_destinations(tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    with pytest.raises(MediaError, match="cannot write"):
        VideoWriter(blocker / "out.mp4", W, H, FPS)
    with pytest.raises(MediaError, match="cannot write.*does not exist"):
        VideoWriter(tmp_path / "missing" / "out.mp4", W, H, FPS)
    with pytest.raises(MediaError, match="cannot write.*folder"):
        check_writable(tmp_path)  # a folder has that name
    check_writable(tmp_path / "fine.mp4")
    assert os.listdir(tmp_path) == ["a file"]  # the probe cleaned up after itself


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores directory permissions, so a read-only folder is still writable")
def test_writer_refuses_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(MediaError, match="cannot write"):
            VideoWriter(folder / "out.mp4", W, H, FPS)
    finally:
        folder.chmod(0o755)


def test_writer_refuses_to_overwrite_inputs(tmp_path, clip):
    source = tmp_path / "source.mp4"
    shutil.copy(clip, source)
    before = source.read_bytes()
    with pytest.raises(MediaError, match="input"):
        VideoWriter(tmp_path / "." / "source.mp4", W, H, FPS, protect=[source])
    dub = wav(tmp_path / "dub.wav", 1.0)
    with pytest.raises(MediaError, match="input"):
        VideoWriter(dub, W, H, FPS, audio_path=dub)  # the audio input is protected too
    assert source.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["dub.wav", "source.mp4"]


def test_writer_checks_the_audio_input(tmp_path, src):
    silent = encode(tmp_path / "silent.mp4", src[:5], audio=False)
    with pytest.raises(MediaError, match="has no audio stream"):
        VideoWriter(tmp_path / "out.mp4", W, H, FPS, audio_path=silent)
    with pytest.raises(MediaError, match="file not found"):
        VideoWriter(tmp_path / "out.mp4", W, H, FPS, audio_path=tmp_path / "nope.wav")
    assert sorted(os.listdir(tmp_path)) == ["silent.mp4"]


# --------------------------------------------------------------------------- real clips


@pytest.mark.data
@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is absent")
def test_real_variable_rate_clip_is_conformed_to_its_nominal_rate():
    # Its header says 30 fps; the packets say 135 frames over ~6.1 s, mixing 30 and 15 fps steps
    # (22.1 fps on average): it plays at 30 fps, the 15 fps stretches showing each frame twice.
    with VideoSource(DATA / "video-retalking" / "face_1.mp4") as video:
        assert video.frame_count == 135
        assert len(set(np.round(np.diff(video.timestamps), 4))) > 1  # really variable
        assert video.vfr and video.fps == 30
        assert video.duration == pytest.approx(6.1, abs=0.1)
        assert len(video.timeline) == round(video.duration * 30)
        error = np.abs(np.arange(len(video.timeline)) / 30 - video.timestamps[video.timeline])
        assert error.max() <= 1 / 30 + 1e-6  # half a 15 fps frame
        frames = [f for _, f in video.frames(stop=101)]
        np.testing.assert_array_equal(video.read(100), frames[100])


@pytest.mark.data
@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is absent")
def test_edit_list_leading_packets_are_not_frames():
    # 266 video packets, 57 of them before the edit list's start: the decoder drops those.
    with VideoSource(DATA / "misc" / "interview.mp4") as video:
        assert video.frame_count == 209
        assert video.fps == pytest.approx(30000 / 1001, abs=1e-3)
        assert sum(1 for _ in video.frames(start=150)) == 59
