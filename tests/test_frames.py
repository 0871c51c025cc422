"""`app.frames.OpenVideo`, the one frame reader of the preview and the timeline's thumbnails: the right
frames, and a forward pass continued rather than a seek where the pass can get there."""
import numpy as np
import pytest

from app.frames import OpenVideo
from core.video import VideoSource, VideoWriter

FRAMES = 40


@pytest.fixture
def video(tmp_path):
    """Frame i is grey level 5·i (lossless), so a decoded frame tells its index."""
    path = tmp_path / "count.mp4"
    with VideoWriter(path, 32, 24, 25, crf=0, preset="ultrafast") as writer:
        for i in range(FRAMES):
            writer.write(np.full((24, 32, 3), 5 * i, np.uint8))
    return path


@pytest.fixture
def seeks(monkeypatch):
    """The start frame of every decoding pass VideoSource begins, in order."""
    started = []
    real = VideoSource.frames

    def frames(self, start=0, stop=None, **kwargs):
        started.append(start)
        return real(self, start, stop, **kwargs)

    monkeypatch.setattr(VideoSource, "frames", frames)
    return started


def index_of(frame) -> int:
    return round(float(frame.mean()) / 5)


def test_reads_continue_the_forward_pass_within_reach_and_seek_otherwise(video, seeks):
    opened = OpenVideo(video)
    try:
        assert [index_of(opened.read(i)) for i in (3, 4, 5)] == [3, 4, 5]  # playback: one pass
        assert seeks == [3]
        assert index_of(opened.read(8)) == 8 and seeks == [3, 8]  # a jump the preview's reader seeks for
        assert index_of(opened.read(12, ahead=6)) == 12 and seeks == [3, 8]  # thumbnails decode on to it
        assert index_of(opened.read(2, ahead=6)) == 2 and seeks == [3, 8, 2]  # backwards: a seek
        assert index_of(opened.read(FRAMES + 5)) == FRAMES - 1  # past the end: the last frame
        assert index_of(opened.read(-3)) == 0
    finally:
        opened.close()
    assert opened.path == video


def test_a_variable_rate_video_is_read_on_its_conformed_picture(video, tmp_path, seeks):
    from tests.conftest import ffmpeg

    # frames 0-19 at 25 fps, then 20-39 at 12.5 fps: picture frame 20 + 2j and 21 + 2j both show frame 20 + j
    vfr = tmp_path / "vfr.mp4"
    ffmpeg("-i", video, "-vf", "setpts='if(lt(N,20),N,2*N-20)/(25*TB)'", "-fps_mode", "vfr", "-c:v", "libx264",
           "-qp", 0, "-preset", "ultrafast", vfr)
    opened = OpenVideo(vfr)
    try:
        assert opened.source.vfr and opened.source.picture_count == 60
        shown = [index_of(opened.read(k)) for k in range(60)]  # playback
        assert shown == opened.source.timeline.tolist() and shown[18:24] == [18, 19, 20, 20, 21, 21]
        assert seeks == [0]  # a frame shown twice is not decoded again
        assert index_of(opened.read(50)) == 35 and index_of(opened.read(99)) == FRAMES - 1
    finally:
        opened.close()
