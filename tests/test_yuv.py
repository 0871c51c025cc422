"""core.yuv: the renderer's frames stay in the source's YUV; only a face box goes through BGR."""
import av
import numpy as np
import pytest
from av.video.reformatter import ColorRange, Colorspace, Interpolation

from core.video import VideoSource, VideoWriter
from core.yuv import YuvFrame, even_box, yuv_matrix
from tests.conftest import ffmpeg

ACCURATE = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


def smooth_image(h=64, w=96, seed=0) -> np.ndarray:
    """BGR with gentle gradients and colour (chroma subsampling loses nothing that matters)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(40, 215, 3)
    slopes = rng.uniform(-0.6, 0.6, (3, 2))
    image = np.stack([base[c] + slopes[c, 0] * yy + slopes[c, 1] * xx for c in range(3)], axis=-1)
    return np.clip(image, 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("matrix, full_range, swscale", [("bt709", False, Colorspace.ITU709),
                                                          ("smpte170m", False, Colorspace.ITU601),
                                                          ("bt709", True, Colorspace.ITU709)])
def test_our_conversions_agree_with_swscales_accurate_ones(matrix, full_range, swscale):
    image = smooth_image()
    colour_range = ColorRange.JPEG if full_range else ColorRange.MPEG
    frame = av.VideoFrame.from_ndarray(image, format="bgr24")
    theirs = frame.reformat(format="yuv420p", dst_colorspace=swscale, dst_color_range=colour_range,
                            interpolation=ACCURATE)
    theirs_i420 = theirs.to_ndarray()
    ours = YuvFrame.from_bgr(image, yuv_matrix(matrix, full_range))
    assert np.abs(ours.data.astype(int) - theirs_i420).max() <= 1
    back = theirs.to_ndarray(format="bgr24", src_colorspace=swscale, src_color_range=colour_range,
                             interpolation=ACCURATE)
    inner = (slice(2, -2), slice(2, -2))  # chroma at the border is interpolated differently
    assert np.abs(YuvFrame(theirs_i420, yuv_matrix(matrix, full_range)).to_bgr()[inner].astype(int)
                  - back[inner]).max() <= 2


def test_a_box_converted_and_written_back_unchanged_leaves_every_code_as_it_was():
    frame = YuvFrame.from_bgr(smooth_image(), yuv_matrix())
    before = frame.data.copy()
    box = even_box((13, 9, 51, 47), frame.width, frame.height)
    image = frame.bgr(box)
    frame.put_bgr(box, image, np.zeros(image.shape[:2], bool))
    assert np.array_equal(frame.data, before)
    # converted both ways, a smooth box comes back within a level
    changed = np.ones(image.shape[:2], bool)
    frame.put_bgr(box, image, changed)
    assert np.abs(frame.data.astype(int) - before).max() <= 1


def test_only_changed_pixels_and_their_chroma_blocks_are_written():
    frame = YuvFrame.from_bgr(smooth_image(), yuv_matrix())
    before_y, before_u, before_v = (p.copy() for p in frame.planes())
    box = (10, 10, 30, 30)
    image = frame.bgr(box)
    changed = np.zeros(image.shape[:2], bool)
    changed[5, 7] = True  # one pixel: frame (15, 17), its chroma block (7, 8)
    image[changed] = (0, 0, 255)
    frame.put_bgr(box, image, changed)
    y, u, v = frame.planes()
    differs = y != before_y
    assert differs[15, 17] and differs.sum() == 1
    for plane, before in ((u, before_u), (v, before_v)):
        assert (plane != before).sum() == 1 and plane[7, 8] != before[7, 8]
    assert y[15, 17] < before_y[15, 17] and v[7, 8] > before_v[7, 8]  # red: darker luma, the block's Cr up


def test_even_box_grows_to_whole_chroma_blocks_inside_the_frame():
    assert even_box((3, 5, 10, 11), 20, 20) == (2, 4, 10, 12)
    assert even_box((-3, 0, 21, 19), 20, 18) == (0, 0, 20, 18)


def test_frames_must_be_even_sided_i420():
    with pytest.raises(ValueError, match="I420"):
        YuvFrame(np.zeros((46, 30), np.uint8), yuv_matrix())
    with pytest.raises(ValueError, match="unknown YUV matrix"):
        yuv_matrix("bt601")


def test_an_untouched_frame_goes_from_decoder_to_encoder_bit_for_bit(tmp_path):
    """Lossless x264 (CRF 0) keeps what it is given: the render's YuvFrames of an untagged source come
    back as the source's own codes, and its BGR reads as the source's (both read as BT.709)."""
    source = tmp_path / "untagged.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=0.4", "-pix_fmt", "yuv420p",
           "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", source)
    with VideoSource(source) as video:
        assert video.colour.matrix is None and video.yuv_colour.matrix == "bt709"
        frames = [f for _, f in video.frames(yuv=True)]
        source_bgr = video.read(3)
        out = tmp_path / "out.mp4"
        with VideoWriter(out, video.width, video.height, video.fps, crf=0, preset="ultrafast",
                         colour=video.yuv_colour, yuv=True) as writer:
            for frame in frames:
                writer.write(frame)
    with VideoSource(out) as video:
        assert video.colour.matrix == "bt709"
        back = [f for _, f in video.frames(yuv=True)]
        assert np.array_equal(video.read(3), source_bgr)
    assert all(np.array_equal(a.data, b.data) for a, b in zip(frames, back)) and len(back) == len(frames)


def test_a_full_range_source_stays_full_range(tmp_path):
    source = tmp_path / "full.mp4"
    ffmpeg("-f", "lavfi", "-i", "gradients=size=160x120:rate=25:duration=0.2:speed=0:seed=7", "-pix_fmt", "yuvj420p",
           "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", source)
    with VideoSource(source) as video:
        assert video.yuv_colour.range == "pc"
        frame = next(video.frames(yuv=True))[1]
        bgr = video.read(0)
    assert np.abs(frame.to_bgr().astype(int) - bgr).mean() < 0.5  # read as limited range: 10 levels off


def test_the_writer_takes_yuv_frames_of_its_even_size_only(tmp_path):
    with pytest.raises(ValueError, match="4:2:0"):
        VideoWriter(tmp_path / "a.mov", 64, 48, 25, codec="prores", yuv=True)
    with VideoWriter(tmp_path / "b.mp4", 65, 49, 25, preset="ultrafast", yuv=True) as writer:
        with pytest.raises(ValueError, match="64x48 YuvFrame"):
            writer.write(np.zeros((49, 65, 3), np.uint8))
        writer.write(YuvFrame.from_bgr(np.zeros((49, 65, 3), np.uint8), yuv_matrix()))
    with VideoSource(tmp_path / "b.mp4") as video:
        assert (video.width, video.height, video.frame_count) == (64, 48, 1)
