"""Video in and out: `VideoSource` streams frames with their true timestamps (PyAV),
`VideoWriter` pipes frames into the ffmpeg binary (H.264 + AAC MP4, written atomically).

Frames are BGR uint8 arrays (H, W, 3) in display orientation, the layout OpenCV and
the face/blend code expect, or, for the renderer, `core.yuv.YuvFrame`s: the decoder's own 8-bit
4:2:0 picture, which the writer encodes without converting it. Frame timing always comes from
packet timestamps, never from the header's rate, which is wrong on some files. A variable-frame-rate file is
conformed to a constant rate on its timestamps (`VideoSource.timeline`), as an editor
conforms it; only then is the header's (nominal) rate used, for that constant rate.
"""
import functools
import logging
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation

from core.atomic import Interrupted, interrupted, signals_held, sweep_stale_temps, temp_beside
from core.delivery import VIDEO_CODECS
from core.errors import MediaError
from core.ffmpeg import run_ffmpeg, start_ffmpeg
from core.hparams import HP
from core.plan import conform
from core.yuv import YuvFrame, yuv_matrix

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
OUTPUT_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}  # what VideoWriter writes: suffix -> muxer


# Containers with a real index, where seeking is trusted. MPEG-PS/TS seek by guessing
# byte offsets and then stamp the next frames wrongly (seen: 3 frames off), so those
# are decoded from the start instead.
SEEKABLE_FORMATS = {"mov", "mp4", "matroska", "webm", "avi"}
# swscale's fast default YUV -> RGB rounds every pixel ~1 level dark; with the encoder's matching
# flags (VideoWriter) a re-encoded frame keeps its colours within a level
_EXACT_COLOUR = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT

# ffmpeg's names of the colour tags (AVColorPrimaries, AVColorTransferCharacteristic, AVColorSpace,
# AVColorRange), the ones a source can be carried with; "unspecified" and anything else is unknown.
_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film", 9: "bt2020",
              10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "jedec-p22"}
_TRANSFERS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
              11: "iec61966-2-4", 13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084",
              18: "arib-std-b67"}
_MATRICES = {1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc"}  # swscale's
_RANGES = {1: "tv", 2: "pc"}
_SWSCALE_MATRICES = {"bt709": Colorspace.ITU709, "fcc": Colorspace.FCC, "bt470bg": Colorspace.ITU601,
                     "smpte170m": Colorspace.ITU601, "smpte240m": Colorspace.SMPTE240M, "bt2020nc": Colorspace.BT2020}


@dataclass(frozen=True)
class Colour:
    """A video's colour tags, by ffmpeg's names; None where the file does not say."""
    primaries: str | None = None
    transfer: str | None = None
    matrix: str | None = None
    range: str | None = None

    @classmethod
    def of_frame(cls, frame) -> "Colour":
        return cls(_PRIMARIES.get(int(frame.color_primaries)), _TRANSFERS.get(int(frame.color_trc)),
                   _MATRICES.get(int(frame.colorspace)), _RANGES.get(int(frame.color_range)))

    def or_bt709(self) -> "Colour":
        """The tags written for this: BT.709 limited range where unknown (what players assume for HD)."""
        return Colour(self.primaries or "bt709", self.transfer or "bt709", self.matrix or "bt709",
                      self.range or "tv")

# --------------------------------------------------------------------------- reading


class VideoSource:
    """A video file (or a still image) opened for streamed, frame-accurate reading.

    Nothing but the timestamp table stays in memory; each `frames()` call opens its own
    demuxer, so several readers (preview, render) can walk the same source at once.

    `fps` is the constant rate the source plays at and `timeline` the source frame shown
    at each frame k / fps of it: one to one for a constant-rate file, conformed for a
    variable-rate one (`vfr`). `start_timecode` is the label of its first frame when the
    file carries one (`01:00:00:00`), else None. A damaged or truncated file is warned
    about, once per problem and naming the file, or refused with MediaError when `strict`.
    """

    def __init__(self, path, strict: bool = False):
        self.path = Path(path)
        self.strict = strict
        self._reported = set()
        if not self.path.exists():
            raise MediaError(self.path, "file not found")
        if self.path.is_dir():
            raise MediaError(self.path, "is a folder, not a video file")
        if self.path.stat().st_size == 0:
            raise MediaError(self.path, "file is empty")
        self.is_image = self.path.suffix.lower() in IMAGE_SUFFIXES
        self._closed = False
        if self.is_image:
            self._open_image()
        else:
            self._open_video()
        self.frame_count = len(self.timestamps)
        if self.vfr:
            # the last frame stays up as long as the one before it
            self.duration = float(self.timestamps[-1] + self.timestamps[-1] - self.timestamps[-2])
            self.timeline = conform(self.timestamps, self.fps, int(round(self.duration * self.fps)))
        else:
            self.duration = self.frame_count / self.fps
            self.timeline = np.arange(self.frame_count)

    # -- opening

    def _open_image(self):
        # imdecode, not imread: imread cannot open non-ASCII paths on Windows.
        # IMREAD_COLOR drops alpha and applies the EXIF orientation, so the still is upright.
        self._image = cv2.imdecode(np.fromfile(self.path, dtype=np.uint8), cv2.IMREAD_COLOR)
        if self._image is None:
            raise MediaError(self.path, "not a readable image")
        self.height, self.width = self._image.shape[:2]
        self.rotation = 0
        self.colour = Colour()  # an image's RGB is taken as it is
        self.pix_fmt = "bgr24"
        self.yuv_colour = self.colour.or_bt709()
        self.fps = HP.fps  # a still renders as a static clip at the training rate
        self.vfr = False
        self.timestamps = np.zeros(1, dtype=np.float64)
        self.has_audio = False
        self.start_timecode = None

    def _open_video(self):
        try:
            container = av.open(str(self.path))
        except (av.FFmpegError, OSError) as e:
            # A truncated MP4 whose index (moov) was at the end lands here too.
            raise MediaError(self.path, f"not a media file, or truncated/damaged ({_reason(e)})") from None
        with container:
            stream = next((s for s in container.streams.video
                           if not s.disposition & av.stream.Disposition.attached_pic), None)
            if stream is None:  # audio files, and cover art in MP3/M4A, are not video
                raise MediaError(self.path, "has no video stream")
            self._stream_index = stream.index
            self.has_audio = bool(container.streams.audio)
            self._time_base = stream.time_base
            self._seekable = bool(SEEKABLE_FORMATS & set(container.format.name.split(",")))
            pts, keys = self._scan_packets(container, stream)
            rate = stream.average_rate or stream.guessed_rate
            nominal = stream.base_rate  # ffmpeg's r_frame_rate: the rate all timestamps fit, e.g. a camera's 30
            self.start_timecode = _start_timecode(container, stream)

        # Sorted PTS: packets arrive in decode order, frames are shown in PTS order.
        self._pts = np.sort(np.asarray(pts, dtype=np.int64))
        self._key_pts = np.sort(np.asarray(keys, dtype=np.int64))
        first = self._first_frame()
        self.timestamps = (self._pts - self._pts[0]).astype(np.float64) * float(self._time_base)
        span = self.timestamps[-1]
        # Average rate over the real timestamps; (n-1)/span is exact for constant-rate files.
        self.fps = (len(pts) - 1) / span if len(pts) > 1 and span > 0 else float(rate or HP.fps)
        # Variable: a constant rate would put some frame more than half a frame off its timestamp.
        drift = np.abs(self.timestamps - np.arange(len(pts)) / self.fps).max()
        self.vfr = bool(drift > 0.5 / self.fps)
        if self.vfr:
            steps = np.diff(self.timestamps)
            steps = steps[steps > 0]  # a repeated timestamp is one frame shown twice over
            self.fps = _conform_rate(steps, nominal)
            log.warning("%s: variable frame rate (%.4g to %.4g fps); conformed to a constant %.4g fps on its "
                        "timestamps, repeating or dropping frames", self.path, 1 / steps.max(), 1 / steps.min(),
                        self.fps)

        self._coded_size = (first.width, first.height)
        self.colour = Colour.of_frame(first)
        self.pix_fmt = first.format.name  # the decoder's, e.g. yuv420p
        # what its YuvFrames are in, and a render of it is tagged with: a JPEG-range format is full range
        self.yuv_colour = self.colour.or_bt709()
        if self.pix_fmt.startswith("yuvj"):
            self.yuv_colour = replace(self.yuv_colour, range="pc")
        rotation = getattr(first, "rotation", 0)  # display matrix, counter-clockwise degrees
        if not rotation and "rotate" in stream.metadata:  # old-style tag, clockwise degrees
            rotation = -int(float(stream.metadata["rotate"]))
        self.rotation = int(round(rotation / 90)) * 90 % 360
        swap = self.rotation in (90, 270)
        self.width, self.height = (first.height, first.width) if swap else (first.width, first.height)

    def _scan_packets(self, container, stream):
        """PTS of every frame and of every keyframe, from a demux pass (no decoding)."""
        pts, keys, packets = [], [], 0
        try:
            for packet in container.demux(stream):
                if not packet.size:
                    continue  # the flush packet at the end
                packets += 1
                t = packet.pts if packet.pts is not None else packet.dts
                if t is None:
                    raise MediaError(self.path, "has no frame timestamps (a raw stream?); remux it into MP4")
                if packet.is_keyframe:
                    keys.append(t)  # also discarded ones: a seek may have to start there
                # MP4 edit lists mark packets before the clip's start as discard: the decoder
                # drops their frames, so they are not frames of the video.
                if not getattr(packet, "is_discard", False):
                    pts.append(t)
        except av.FFmpegError as e:
            self._damaged(f"stopped reading packets ({_reason(e)}); using the {len(pts)} frames before")
        if not pts:
            raise MediaError(self.path, "has no video frames (truncated or damaged?)")
        if packets < stream.frames:  # an MP4 whose index survived the cut promises frames that are gone
            self._damaged(f"the container promises {stream.frames} frames but only {packets} are there; "
                          "the file may be truncated")
        return pts, keys

    def _damaged(self, problem: str):
        """A damaged or truncated file: MediaError when strict, else a warning (once per problem)."""
        if self.strict:
            raise MediaError(self.path, problem)
        if problem not in self._reported:  # detection and render each decode the file: say it once
            self._reported.add(problem)
            log.warning("%s: %s", self.path, problem)

    def _first_frame(self):
        """Decode one frame: proves the stream decodes and gives size and rotation."""
        decoded = self._decode_from(0)
        try:
            first = next(decoded, None)
        finally:
            decoded.close()
        if first is None:
            raise MediaError(self.path, "no decodable video frames (truncated or damaged?)")
        return first[1]

    # -- frames

    def frames(self, start: int = 0, stop: int | None = None, yuv: bool = False, size: tuple | None = None):
        """Yield `(index, frame)` for frames start..stop-1, BGR uint8 (a `YuvFrame` in `yuv_colour`
        when `yuv`; BGR scaled to `size` (w, h) in the same pass when given), display orientation.

        Seeks to the keyframe before `start` and decodes forward, so the first frame is
        exactly frame `start`. Every index is yielded once: a frame the decoder could
        not produce (damaged file) repeats the previous one, so callers that pair frame
        i with audio window i never drift.
        """
        if self._closed:
            raise ValueError(f"{self.path}: source is closed")
        stop = self.frame_count if stop is None else min(stop, self.frame_count)
        if start < 0:
            raise IndexError(f"start {start} is negative")
        if start >= stop:
            return
        if self.is_image:
            image = self._image if size is None else cv2.resize(self._image, size, interpolation=cv2.INTER_AREA)
            yield 0, self._yuv_of_image() if yuv else image.copy()
            return
        if yuv:
            convert = self._to_yuv
        elif size is None:
            convert = self._to_bgr
        else:  # a small picture for a detector: swscale shrinks while it converts, no accurate rounding needed
            convert = functools.partial(self._to_bgr, size=size, interpolation=Interpolation.AREA)
        nxt, last = start, None
        decoded = self._decode_from(start)
        try:
            for index, frame in decoded:
                if index < nxt:
                    continue  # before `start` (decoded from the keyframe), or a duplicate PTS
                if nxt >= stop:
                    break
                image = convert(frame)
                while nxt < min(index, stop):  # missing frames: hold the previous (or this) picture
                    yield nxt, (last if last is not None else image).copy()
                    nxt += 1
                if index >= stop:
                    break
                yield index, image
                nxt, last = index + 1, image
        finally:
            decoded.close()  # closes the file now, not whenever the generator is collected
        if nxt < stop and last is not None:
            self._damaged(f"decoding ended at frame {nxt} of {self.frame_count}; holding the last frame")
            for index in range(nxt, stop):
                yield index, last.copy()

    def read(self, index: int) -> np.ndarray:
        if not 0 <= index < self.frame_count:
            raise IndexError(f"frame {index} is outside 0..{self.frame_count - 1}")
        return next(self.frames(index, index + 1))[1]

    # -- the picture: frame k of it is shown at k / fps, the frames the editor, renderer and export count

    @property
    def picture_count(self) -> int:
        return len(self.timeline)

    def picture_source(self, k):
        """Source frame shown at picture frame(s) `k`: an int for an int, an array for an array."""
        index = self.timeline[k]
        return int(index) if np.ndim(k) == 0 else index

    def _decode_from(self, start):
        """Yield `(index, av.VideoFrame)` from a keyframe at or before frame `start`."""
        seek_to = int(self._pts[start]) if start and self._seekable else None
        back = 1
        while True:
            try:
                container = av.open(str(self.path))
            except (av.FFmpegError, OSError) as e:
                raise MediaError(self.path, f"cannot be read any more ({_reason(e)})") from None
            with container:
                stream = container.streams[self._stream_index]
                stream.codec_context.thread_type = "AUTO"
                if seek_to is not None:
                    container.seek(seek_to, stream=stream, backward=True)
                decoded = ((self._index_of(f), f) for f in self._decode_tolerant(container, stream))
                first = next(decoded, None)
                if seek_to is None or (first is not None and first[0] <= start):
                    if first is not None:
                        yield first
                        yield from decoded
                    return
            # Landed past `start`: demuxers seek by decode time, and with B-frames or open
            # GOPs (seen in AVI and MP4) the keyframe found can be shown after the frames we
            # want. Step back 1, 2, 4... keyframes, in the end to the beginning.
            earlier = self._key_pts[self._key_pts < seek_to]
            seek_to = int(earlier[-back]) if len(earlier) >= back else None
            back *= 2

    def _decode_tolerant(self, container, stream):
        """Decode packet by packet, skipping packets the decoder rejects (damaged data)."""
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return  # the last (empty) packet has already flushed the decoder
            except av.FFmpegError as e:  # the file ends in damaged data: keep what decodes
                self._damaged(f"stopped reading packets ({_reason(e)})")
                packet = None
            try:
                yield from packet.decode() if packet is not None else stream.codec_context.decode(None)
            except av.FFmpegError as e:
                seconds = (None if packet is None or packet.pts is None
                           else float((packet.pts - int(self._pts[0])) * self._time_base))
                self._damaged(f"skipping a damaged packet at {seconds:.3f} s ({_reason(e)})" if seconds is not None
                              else f"skipping a damaged packet ({_reason(e)})")
            if packet is None:
                return

    def _index_of(self, frame) -> int:
        t = frame.pts if frame.pts is not None else frame.dts
        if t is None:
            return -1
        return int(np.searchsorted(self._pts, t, side="right")) - 1

    def _to_bgr(self, frame, size=None, interpolation=_EXACT_COLOUR) -> np.ndarray:
        # Fixed output size: a stream that changes resolution mid-way still gives equal frames.
        width, height = self._coded_size
        if size is not None:  # in display orientation
            width, height = size[::-1] if self.rotation in (90, 270) else size
        # read in the matrix and range a render of it is tagged with (an untagged source as BT.709, not as
        # swscale's BT.601 default): its pixels then decode the same from the source and from a render
        colour = self.yuv_colour
        image = frame.to_ndarray(format="bgr24", width=width, height=height, interpolation=interpolation,
                                 src_colorspace=_SWSCALE_MATRICES[colour.matrix],
                                 src_color_range=ColorRange.JPEG if colour.range == "pc" else ColorRange.MPEG)
        if self.rotation:
            image = np.ascontiguousarray(np.rot90(image, self.rotation // 90))  # rot90 turns counter-clockwise
        return image

    def _yuv_matrix(self):
        return yuv_matrix(self.yuv_colour.matrix, self.yuv_colour.range == "pc")

    def _to_yuv(self, frame) -> YuvFrame:
        width, height = self._coded_size
        name = frame.format.name
        if frame.format.is_rgb or len(frame.format.components) < 3:  # RGB or grey: no YUV to keep
            return YuvFrame.from_bgr(self._to_bgr(frame), self._yuv_matrix())
        if name not in ("yuv420p", "yuvj420p") or (frame.width, frame.height) != (width, height):
            # 4:2:2, 4:4:4, more bits, a changed size: to 8-bit 4:2:0 in the same matrix and range
            frame = frame.reformat(format="yuvj420p" if name.startswith("yuvj") else "yuv420p", width=width,
                                   height=height, interpolation=_EXACT_COLOUR)
        y, u, v = (np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, :p.width] for p in frame.planes)
        if self.rotation:
            y, u, v = (np.rot90(plane, self.rotation // 90) for plane in (y, u, v))
        return YuvFrame.from_planes(y, u, v, self._yuv_matrix())

    def _yuv_of_image(self) -> YuvFrame:
        return YuvFrame.from_bgr(self._image, self._yuv_matrix())

    # -- time

    def time_of_frame(self, index: int) -> float:
        """Seconds from the first frame at which frame `index` is shown (index == frame_count: the end)."""
        if index == self.frame_count:
            return self.duration
        if not 0 <= index < self.frame_count:
            raise IndexError(f"frame {index} is outside 0..{self.frame_count}")
        return float(self.timestamps[index])

    def frame_at_time(self, t: float) -> int:
        """Index of the frame on screen at `t` seconds (clamped to the clip)."""
        # 1 µs tolerance: a time computed as i / fps may land a rounding error before frame i.
        index = int(np.searchsorted(self.timestamps, t + 1e-6, side="right")) - 1
        return min(max(index, 0), self.frame_count - 1)

    def frames_at_rate(self, fps: float, count: int) -> np.ndarray:
        """Source frame on screen at each of `count` instants k / fps (resampling to a fixed rate)."""
        times = np.arange(count) / float(fps) + 1e-6  # same tolerance as frame_at_time
        return np.clip(np.searchsorted(self.timestamps, times, side="right") - 1, 0, self.frame_count - 1)

    # -- lifetime

    def close(self):
        self._closed = True
        self._image = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return (f"VideoSource({str(self.path)!r}, {self.width}x{self.height}, {self.frame_count} frames, "
                f"{self.fps:.3f} fps, rotation {self.rotation})")


def _conform_rate(steps, nominal) -> float:
    """The constant rate a variable-rate clip is conformed to: its nominal rate, as an editor
    would (a phone's 30 fps clip that slows to 15 in low light stays 30, nothing dropped), not
    the average (18.75 fps for 25 then 12.5, a rate nobody shot at). A nominal rate outside
    the clip's own frame steps is not believed; then the commonest step, the median, sets it."""
    slowest, fastest = 1 / steps.max(), 1 / steps.min()
    if nominal and 0.99 * slowest <= nominal <= 1.01 * fastest:
        return float(nominal)
    return float(1 / np.median(steps))


def _start_timecode(container, stream) -> str | None:
    """The label of the first frame as the file writes it (`01:00:00:00`; ';' before the frames for
    drop-frame): a tmcd track's, as the video stream's tag (MOV/MP4), or the container's (MKV)."""
    for tags in (stream.metadata, *(s.metadata for s in container.streams), container.metadata):
        for key, value in tags.items():
            if key.lower() == "timecode" and value.strip():
                return value.strip()
    return None


def _reason(error) -> str:
    return getattr(error, "strerror", None) or str(error)


# --------------------------------------------------------------------------- writing

class VideoWriter:
    """Encode BGR frames to an H.264/AAC MP4 (or a VIDEO_CODECS format) through the ffmpeg binary, atomically.

    Frames go to ffmpeg's stdin as raw video, converted with the `colour` tags' matrix and range
    and tagged with them (BT.709 where unknown); with `yuv`, as `YuvFrame`s already in them, unconverted; `timecode` labels the first frame (a tmcd track in
    MOV/MP4); `extra_audio` are further audio tracks, each placed as the first is.
    Everything is written to temp files next to `path`, which appears (renamed in one step)
    only when `close()` succeeds; on an exception inside `with`, on `abort()`, or when ffmpeg
    fails, nothing is left.
    """

    def __init__(self, path, width: int, height: int, fps, audio_path=None, audio_offset_s: float = 0.0,
                 crf: int = 18, preset: str = "medium", audio_bitrate: str = "192k", protect=(), codec: str = "h264",
                 colour: Colour = Colour(), timecode: str | None = None, extra_audio=(), yuv: bool = False):
        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"bad frame size {width}x{height}")
        # ffmpeg takes the rate as a ratio: 30000/1001 must not become 29.97.
        self.fps = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
        if self.fps <= 0:
            raise ValueError(f"bad frame rate {fps}")
        self.audio_path = None if audio_path is None else Path(audio_path)
        self.audio_offset_s = float(audio_offset_s)
        self.audio_bitrate = audio_bitrate
        self.extra_audio = [Path(a) for a in extra_audio]
        if self.extra_audio and self.audio_path is None:
            raise ValueError("extra audio tracks need a first one")
        if codec not in VIDEO_CODECS:
            raise ValueError(f"unknown codec {codec!r}: {', '.join(VIDEO_CODECS)}")
        self.codec = VIDEO_CODECS[codec]
        self.yuv = yuv
        if yuv and self.codec.pix_fmt != "yuv420p":
            raise ValueError(f"YuvFrames are 4:2:0; {self.codec.title} is {self.codec.pix_fmt}")
        self.colour = colour.or_bt709()
        self.timecode = timecode
        self.frame_count = 0
        self._proc = None
        self._temps = []

        for audio in [self.audio_path, *self.extra_audio]:
            if audio is not None:
                _check_audio_input(audio)
        for source in [*protect, self.audio_path, *self.extra_audio]:
            if source is not None and same_file(self.path, source):
                raise MediaError(self.path, "refusing to write over an input file")
        check_video_output(self.path, codec=codec)
        if self.width < self.codec.min_size[0] or self.height < self.codec.min_size[1]:
            raise MediaError(self.path, f"{self.codec.title} needs a picture of at least "
                                        f"{self.codec.min_size[0]}x{self.codec.min_size[1]}, not {width}x{height}")
        parent = self.path.parent

        # yuv420p halves chroma resolution, so x264 needs even sides: crop the odd last
        # row/column (1 px, invisible; padding would add a visible black line instead).
        self.out_width, self.out_height = self.width // 2 * 2, self.height // 2 * 2
        if not self.out_width or not self.out_height:
            raise ValueError(f"frame size {width}x{height} is too small to encode")

        suffix = self.path.suffix.lower()
        self._format = OUTPUT_FORMATS[suffix]
        sweep_stale_temps(parent)  # what runs killed outright (kill -9) left here
        try:
            self._final_tmp = temp_beside(self.path, f"part{suffix}")
        except OSError as e:
            raise MediaError(self.path, f"cannot write: {e.strerror or e}") from None
        self._temps.append(self._final_tmp)
        try:
            # With audio, the video is encoded first and muxed afterwards (see close()).
            self._video_tmp = temp_beside(self.path, f"video{suffix}") if self.audio_path else self._final_tmp
            if self._video_tmp != self._final_tmp:
                self._temps.append(self._video_tmp)
            self._start_encoder(crf, preset)
        except BaseException:
            self._cleanup()
            raise

    def _start_encoder(self, crf, preset):
        # accurate_rnd + full_chroma_int: swscale's fast default path darkens every frame by ~2
        # levels (blue most), which would show on the untouched pixels of a re-encoded shot.
        c = self.colour
        # The matrix converts, the other tags only label: setparams puts them on the frames, where
        # ffmpeg 7+ takes them from (the -color_* options alone lose the primaries and transfer).
        vf = (f"setparams=range={c.range}:color_primaries={c.primaries}:color_trc={c.transfer}:"
              f"colorspace={c.matrix}")
        if not self.yuv:  # YuvFrames are in the tags' matrix and range already, and even-sided
            matrix = {"bt470bg": "bt470", "bt2020nc": "bt2020"}.get(c.matrix, c.matrix)  # scale's names
            vf = (f"scale=out_color_matrix={matrix}:out_range={c.range}:flags=accurate_rnd+full_chroma_int,"
                  f"format={self.codec.pix_fmt}," + vf)
            if (self.out_width, self.out_height) != (self.width, self.height):
                vf = f"crop={self.out_width}:{self.out_height}:0:0," + vf
        size = (self.out_width, self.out_height) if self.yuv else (self.width, self.height)
        rate = ["-preset", preset, "-crf", str(crf)] if "libx264" in self.codec.encoder else []
        cmd = ["-hide_banner", "-loglevel", "error", "-nostats", "-y",
               "-f", "rawvideo", "-pix_fmt", "yuv420p" if self.yuv else "bgr24", "-s", f"{size[0]}x{size[1]}",
               "-framerate", f"{self.fps.numerator}/{self.fps.denominator}", "-i", "-",
               "-vf", vf, *self.codec.encoder, *rate, "-pix_fmt", self.codec.pix_fmt,
               # tagged, so players do not guess the matrix and shift colours
               "-colorspace", c.matrix, "-color_primaries", c.primaries, "-color_trc", c.transfer,
               "-color_range", c.range,
               *([] if self.audio_path else self._container_options()), "-f", self._format, str(self._video_tmp)]
        # stderr goes to a file, not a pipe: nobody drains a pipe while we write frames,
        # and a full pipe would block ffmpeg and then us.
        self._stderr = tempfile.TemporaryFile()
        self._proc = start_ffmpeg(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr)

    def _container_options(self) -> list:
        """Options of the file's last pass: the index up front, and the start timecode."""
        return ["-movflags", "+faststart", *(["-timecode", self.timecode] if self.timecode else [])]

    def write(self, frame):
        """Append one BGR uint8 frame of the writer's (width, height), or with `yuv` a `YuvFrame` of its
        even (out_width, out_height)."""
        if self._proc is None:
            raise ValueError(f"{self.path}: writer is closed")
        if self.yuv:
            if not isinstance(frame, YuvFrame) or (frame.width, frame.height) != (self.out_width, self.out_height):
                raise ValueError(f"expected a {self.out_width}x{self.out_height} YuvFrame, got {frame!r}")
            frame = frame.data
        frame = np.asarray(frame)
        if not self.yuv and (frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8):
            raise ValueError(f"expected a {self.height}x{self.width}x3 uint8 frame, got {frame.shape} {frame.dtype}")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except OSError:  # BrokenPipeError: ffmpeg has exited
            self._fail("ffmpeg stopped accepting frames")
        self.frame_count += 1

    def close(self):
        """Finish encoding, mux the audio and move the result to `path`. Whatever stops it
        (an error, Ctrl-C or another stop signal), every temp file is removed."""
        if self._proc is None:
            return
        try:
            if self.frame_count == 0:
                raise MediaError(self.path, "no frames were written")
            try:
                self._proc.stdin.close()
            except OSError:
                pass  # ffmpeg already gone; its exit code tells why
            if self._proc.wait() != 0:
                self._fail(f"ffmpeg failed (exit {self._proc.returncode})")
            self._proc = None
            if self.audio_path is not None:
                self._mux_audio()
            if interrupted():  # a stop signal whose exception was lost on the way still stops the output
                raise Interrupted(interrupted())
            try:
                os.replace(self._final_tmp, self.path)
            except OSError as e:
                raise MediaError(self.path, f"cannot write: {e.strerror or e}") from None
            self._cleanup()  # the video-only temp; the final one has just been renamed away
        except BaseException:
            self.abort()
            raise

    def _mux_audio(self):
        # A second pass because the video's length is known only now: `-shortest` with
        # `apad` in one pass overshoots the video by up to ~0.2 s of audio (measured).
        duration = self.frame_count / self.fps
        end = f"{float(duration):.6f}"
        filters = ["aeval=exprs=" + FINITE_EXPR.replace(",", r"\,") + ":c=same",
                   "asetpts=PTS-STARTPTS"]  # sample 0 at t=0, as core.audio loads it
        if self.audio_offset_s > 0:
            filters.append(f"adelay=delays={self.audio_offset_s * 1000:.3f}:all=1")
        elif self.audio_offset_s < 0:
            filters += [f"atrim=start={-self.audio_offset_s:.6f}", "asetpts=PTS-STARTPTS"]
        filters += [f"apad=whole_dur={end}", f"atrim=end={end}"]  # pad with silence, then cut: exact length
        tracks = [self.audio_path, *self.extra_audio]
        bitrate = ["-b:a", self.audio_bitrate] if "aac" in self.codec.audio else []
        cmd = ["-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-y", "-i", str(self._video_tmp),
               *[arg for track in tracks for arg in ("-i", str(track))], "-map", "0:v:0",
               *[arg for i in range(len(tracks)) for arg in ("-map", f"{i + 1}:a:0")],
               "-c:v", "copy", "-af", ",".join(filters), *self.codec.audio, *bitrate,
               *self._container_options(), "-f", self._format, str(self._final_tmp)]
        proc = run_ffmpeg(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise MediaError(self.path, f"adding the audio failed: {_tail(proc.stderr)}")

    def abort(self):
        """Stop ffmpeg and delete everything written so far; `path` is left untouched."""
        with signals_held():  # a second Ctrl-C must not cut the clean-up short
            if self._proc is not None:
                self._proc.kill()
                try:
                    self._proc.stdin.close()
                except OSError:
                    pass
                self._proc.wait()
                self._proc = None
            self._cleanup()

    def _fail(self, what):
        self._stderr.seek(0)
        detail = _tail(self._stderr.read())
        self.abort()
        raise MediaError(self.path, f"{what}: {detail}" if detail else what)

    def _cleanup(self):
        for temp in self._temps:
            temp.unlink(missing_ok=True)
        self._temps = []
        if getattr(self, "_stderr", None) is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


# NaN/inf samples (some TTS output) make ffmpeg's AAC encoder refuse the whole track and its loudness
# meter read nothing: zero them, as core.audio does for the mel. Finite samples pass through bit-exact.
FINITE_EXPR = "if(isnan(val(ch))+isinf(val(ch)),0,val(ch))"  # for aeval


def check_video_output(path, protect=(), codec: str = "h264"):
    """check_writable for a video: its name must also say a container VideoWriter writes that holds
    `codec` (an MP4 named out.wav would be misread by everything that trusts the name)."""
    check_writable(path, protect)
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        *others, last = OUTPUT_FORMATS
        raise MediaError(path, f"cannot write a video as {repr(suffix) if suffix else 'a name without extension'}: "
                               f"name it {', '.join(others)} or {last}")
    held = VIDEO_CODECS[codec].suffixes
    if suffix not in held:
        *others, last = held
        names = f"{', '.join(others)} or {last}" if others else last
        raise MediaError(path, f"a {suffix} file cannot hold {VIDEO_CODECS[codec].title}: name it {names}")


def check_writable(path, protect=()):
    """Raise MediaError unless a file can be created at `path`: fail before the work, not after.

    Tries it (creates and deletes a file beside it): permission bits lie for root, and
    read-only mounts or full quotas show only when writing. `path` must not be one of the
    input files in `protect`.
    """
    path = Path(path)
    for source in protect:
        if source is not None and same_file(path, source):
            raise MediaError(path, "refusing to write over an input file")
    parent = path.parent
    if not parent.is_dir():
        raise MediaError(path, f"cannot write: folder {parent} does not exist"
                         if not parent.exists() else f"cannot write: {parent} is not a folder")
    if path.is_dir():
        raise MediaError(path, "cannot write: a folder has that name")
    try:
        temp_beside(path, "probe").unlink()
    except OSError as e:
        raise MediaError(path, f"cannot write: {e.strerror or e}") from None


def _check_audio_input(path: Path):
    if not path.is_file():
        raise MediaError(path, "file not found")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(path, "has no audio stream")
    except (av.FFmpegError, OSError) as e:
        raise MediaError(path, f"not a media file ({_reason(e)})") from None


def same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)  # also catches hard links and case-insensitive names
    except OSError:  # one of them does not exist yet
        return Path(a).resolve() == Path(b).resolve()


# ffmpeg 7+ follows a real error with one "thread terminated" line per pipeline stage;
# those would crowd the cause out of the last lines.
_NOISE = re.compile(r"Task finished with error code|Terminating thread with return code|Error sending frames to consumers")


def _tail(stderr: bytes, lines: int = 5) -> str:
    text = stderr.decode("utf-8", errors="replace").splitlines()
    text = [re.sub(r"\[[^\]]* @ 0x[0-9a-f]+\] ", "", line).strip() for line in text if not _NOISE.search(line)]
    return " | ".join([line for line in text if line][-lines:])
