"""SMPTE timecode (core.timecode): labels and counts round-trip, drop-frame skips the right labels,
a source's start timecode is read and labels its first frame."""
import pytest

from core.timecode import Timecode, TimecodeError, format_count, is_label, parse_count
from tests.conftest import ffmpeg

DAY_RATES = [(24000 / 1001, False), (24.0, False), (25.0, False), (30000 / 1001, True), (30.0, False), (50.0, False),
             (60000 / 1001, True), (60.0, False)]


@pytest.mark.parametrize("fps,drop", DAY_RATES)
def test_a_day_of_frames_round_trips(fps, drop):
    base, sep = round(fps), ";" if drop else ":"
    day = 24 * 3600 * base - drop * (base // 15) * 24 * 54  # drop-frame: 108 (216) labels skipped an hour
    # every frame of the first ten minutes (drop-frame's whole cycle), a stride through the whole day,
    # and the last frame of the day: each label names its frame, and later frames get later labels
    frames = sorted({*range(base * 600 + 1), *range(0, day, 31), day - 1})
    labels = [format_count(k, fps, drop) for k in frames]
    assert [parse_count(text, fps, drop) for text in labels] == frames
    assert labels == sorted(set(labels))  # zero-padded: text order is time order, and no label twice
    assert labels[0] == f"00:00:00{sep}00" and labels[-1] == f"23:59:59{sep}{base - 1:02d}"
    # every minute's first label follows the previous minute's last one
    for minute in range(1, 24 * 60):
        first = base // 15 if drop and minute % 10 else 0
        k = parse_count(f"{minute // 60:02d}:{minute % 60:02d}:00{sep}{first:02d}", fps, drop)
        assert format_count(k - 1, fps, drop) == f"{(minute - 1) // 60:02d}:{(minute - 1) % 60:02d}:59{sep}{base - 1:02d}"


@pytest.mark.parametrize("count,text", [(0, "00:00:00;00"), (1799, "00:00:59;29"), (1800, "00:01:00;02"),
                                        (1801, "00:01:00;03"), (3598, "00:02:00;02"), (17981, "00:09:59;29"),
                                        (17982, "00:10:00;00"), (17983, "00:10:00;01"), (19781, "00:10:59;29"),
                                        (19782, "00:11:00;02"), (107892, "01:00:00;00")])
def test_drop_frame_check_values_at_29_97(count, text):
    assert format_count(count, 30000 / 1001, drop=True) == text
    assert parse_count(text, 30000 / 1001, drop=True) == count


def test_drop_frame_at_59_94_skips_four_labels():
    fps = 60000 / 1001
    assert format_count(3599, fps, True) == "00:00:59;59"
    assert format_count(3600, fps, True) == "00:01:00;04"
    assert format_count(35964, fps, True) == "00:10:00;00"
    assert parse_count("01:00:00;00", fps, True) == 215784


def test_non_drop_labels():
    assert format_count(90000, 25) == "01:00:00:00"
    assert format_count(86399, 24000 / 1001) == "00:59:59:23"  # 24 labels a second, whatever the clock says
    assert parse_count("00:01:00:00", 30000 / 1001, drop=False) == 1800


@pytest.mark.parametrize("text,fps,drop", [("00:01:00;00", 30000 / 1001, True), ("00:01:00;01", 30000 / 1001, True),
                                           ("00:02:00;03", 60000 / 1001, True), ("00:00:00:25", 25, False),
                                           ("00:60:00:00", 25, False), ("00:00:60:00", 25, False), ("1:02.5", 25, False),
                                           ("", 25, False), ("01:00:00:xx", 25, False)])
def test_labels_that_do_not_exist_are_refused(text, fps, drop):
    with pytest.raises(TimecodeError):
        parse_count(text, fps, drop)


def test_a_video_timecode_starts_at_its_start_label_and_shows_out_points_inclusive():
    tc = Timecode.of(25.0, "01:00:00:00")
    assert (tc.drop, tc.start) == (False, 90000)
    assert tc.text(0) == "01:00:00:00" and tc.text(26) == "01:00:01:01"
    assert tc.frame("01:00:01:01") == 26 and tc.frame("00:59:59:24") == -1
    assert tc.span(0, 25) == "01:00:00:00–01:00:00:24"  # frames [0, 25): the out frame is the 25th
    assert Timecode.of(30000 / 1001).drop and Timecode.of(30000 / 1001).text(1800) == "00:01:00;02"
    assert not Timecode.of(30000 / 1001, "01:00:00:00").drop  # the source says non-drop: keep its labels
    assert Timecode.of(30000 / 1001, "01:00:00;00").start == 107892


def test_jump_entries():
    tc = Timecode.of(25.0, "01:00:00:00")
    here = tc.frame("01:02:03:04")
    assert tc.jump("+10", here) == here + 10 and tc.jump("-3", here) == here - 3 and tc.jump("\u22123", here) == here - 3
    assert tc.jump("01:00:10:00", here) == 250
    assert tc.jump("10:00", here) == tc.frame("01:02:10:00")  # leading fields from where the playhead is
    assert tc.jump("1000", here) == tc.frame("01:02:10:00")  # digits alone, in pairs from the right
    assert tc.jump("1020304", here) == tc.frame("01:02:03:04")
    for bad in ("abc", "1:2:3:4:5", "+", "00:00:00:25"):
        with pytest.raises(TimecodeError):
            tc.jump(bad, here)
    df = Timecode.of(30000 / 1001)
    with pytest.raises(TimecodeError, match="drop-frame"):
        df.jump("00:01:00:00", 0)  # a label drop-frame skips
    assert df.jump("00:10:00:00", 0) == 17982


@pytest.mark.parametrize("suffix,rate,start", [(".mov", "25", "01:00:00:00"), (".mp4", "30000/1001", "01:00:00;00"),
                                               (".mkv", "24", "10:00:00:00")])
def test_the_source_start_timecode_is_read(tmp_path, suffix, rate, start):
    from core.video import VideoSource

    path = tmp_path / f"tc{suffix}"
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size=64x48:rate={rate}:duration=0.5", "-c:v", "libx264",
           "-timecode", start, path)
    with VideoSource(path) as v:
        assert v.start_timecode == start
        assert Timecode.of(v.fps, v.start_timecode).text(3).startswith(start[:9])


def test_a_file_without_a_timecode_has_none(tmp_path):
    from core.video import VideoSource

    path = tmp_path / "plain.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=0.2", "-c:v", "libx264", path)
    with VideoSource(path) as v:
        assert v.start_timecode is None


def test_what_is_written_as_a_timecode():
    assert is_label("01:00:00:00") and is_label("01:00:00;00") and is_label(" 1:2:3:4 ")
    assert not any(is_label(t) for t in ("00:01:02.5", "1:02.5", "12.5", "01:00:00", "01:00:00:00:00", "a:b:c:d"))
