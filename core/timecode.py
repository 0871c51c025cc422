"""SMPTE timecode, the one place the notation lives: frame counts as `hh:mm:ss:ff` and back (Qt-free).

A timecode counts whole frames at the rate's nominal base: 24 at 23.976, 30 at 29.97, 60 at 59.94.
At 29.97 and 59.94 the count runs 1000/1001 slower than the clock, so drop-frame timecode skips
labels to stay on it: the first 2 frame numbers (4 at 59.94) of every minute except each tenth,
written with ';' before the frames (`00:01:00;02`). No frames are dropped, only their labels.

`Timecode` is how one video's frames are labelled: its rate, drop-frame or not, and the label of
its first frame (the source's start timecode, 00:00:00:00 when it carries none).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

DROP_RATES = (30000 / 1001, 60000 / 1001)  # the rates drop-frame timecode exists for
_LABEL = re.compile(r"(\d+)[:;](\d{1,2})[:;](\d{1,2})([:;])(\d{1,3})")


class TimecodeError(ValueError):
    """Text that is not a timecode at the rate it is read at; the message says why."""


def is_label(text: str) -> bool:
    """Whether `text` is written as a timecode, hh:mm:ss:ff (its fields are checked when read at a rate)."""
    return _LABEL.fullmatch(text.strip()) is not None


def nominal_base(fps: float) -> int:
    """Frames per timecode second: the rate rounded (24 at 23.976, 30 at 29.97)."""
    return max(1, int(round(fps)))


def is_drop_rate(fps: float) -> bool:
    return any(abs(fps - rate) < 0.005 for rate in DROP_RATES)


def _dropped(base: int) -> int:
    """Labels skipped each minute in drop-frame: 2 at a base of 30, 4 at 60."""
    return base // 15


def format_count(count: int, fps: float, drop: bool = False) -> str:
    """The label of frame `count` of a timecode that starts at 00:00:00:00."""
    base = nominal_base(fps)
    sign, count = ("-", -count) if count < 0 else ("", count)
    if drop:
        d = _dropped(base)
        per_minute, per_ten = base * 60 - d, base * 600 - 9 * d
        tens, rest = divmod(count, per_ten)
        count += 9 * d * tens + d * (max(rest - d, 0) // per_minute)  # the labels skipped so far
    seconds, ff = divmod(count, base)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{sign}{hh:02d}:{mm:02d}:{ss:02d}{';' if drop else ':'}{ff:02d}"


def parse_count(text: str, fps: float, drop: bool = False) -> int:
    """The frame count `hh:mm:ss:ff` labels (';' or ':' before the frames, read as `drop` says).

    Raises TimecodeError for anything else, for fields out of range, and in drop-frame for a label
    that is skipped (00:01:00;00 at 29.97)."""
    match = _LABEL.fullmatch(text.strip())
    if match is None:
        raise TimecodeError(f"not a timecode hh:mm:ss:ff: {text!r}")
    hh, mm, ss, ff = (int(match[i]) for i in (1, 2, 3, 5))
    base = nominal_base(fps)
    if mm > 59 or ss > 59 or ff >= base:
        raise TimecodeError(f"{text!r} is out of range: minutes and seconds to 59, frames to {base - 1} "
                            f"at {fps:.5g} fps")
    minutes = hh * 60 + mm
    count = (minutes * 60 + ss) * base + ff
    if not drop:
        return count
    d = _dropped(base)
    if ss == 0 and ff < d and mm % 10:
        raise TimecodeError(f"{text!r} does not exist in drop-frame timecode at {fps:.5g} fps: frames 00 to "
                            f"{d - 1:02d} are skipped at the start of each minute but every tenth")
    return count - d * (minutes - minutes // 10)


@dataclass(frozen=True)
class Timecode:
    """How a video's frames are labelled: frame k shows `format_count(start + k)`."""
    fps: float
    drop: bool = False
    start: int = 0  # the count of the first frame's label

    @classmethod
    def of(cls, fps: float, start: str | None = None) -> Timecode:
        """A video's timecode: drop-frame at 29.97 and 59.94, unless its start timecode is written
        non-drop (':' before the frames); the start timecode, when it has one, labels its first frame."""
        fps = fps if fps and fps > 0 else 25.0
        if start is None:
            return cls(fps, is_drop_rate(fps))
        match = _LABEL.fullmatch(start.strip())
        drop = is_drop_rate(fps) and (match is None or match[4] != ":")
        try:
            return cls(fps, drop, parse_count(start, fps, drop))
        except TimecodeError:
            return cls(fps, drop)  # a start tag that fits no timecode at this rate labels nothing

    @property
    def base(self) -> int:
        return nominal_base(self.fps)

    def text(self, frame: float) -> str:
        """The label of frame `frame` (rounded to a whole one) of the video."""
        return format_count(self.start + int(round(frame)), self.fps, self.drop)

    def out_text(self, end: int) -> str:
        """The label of an out point, written inclusive: the last frame of [start, end)."""
        return self.text(end - 1)

    def span(self, start: int, end: int) -> str:
        """Frames [start, end) as editors write them: both the in and the out frame shown."""
        return f"{self.text(start)}–{self.out_text(end)}"

    def frame(self, text: str) -> int:
        """The video's frame a full label names (may be negative: before the video's first frame)."""
        return parse_count(text, self.fps, self.drop) - self.start

    def jump(self, text: str, current: int) -> int:
        """Where a typed timecode entry goes: `+N` / `-N` frames from `current`, or a label. A label
        may leave out leading fields, which are those of `current`'s label (at 01:02:03:04, `10:00`
        is 01:02:10:00), and may be typed as digits alone (`1000` is `10:00`)."""
        text = text.strip().replace("\u2212", "-")  # the minus sign some keyboard layouts type
        if re.fullmatch(r"[+-]\d+", text):
            return current + int(text)
        if re.fullmatch(r"\d{1,8}", text):  # digits alone: pairs from the right
            fields = [text[max(i - 2, 0):i] for i in range(len(text), 0, -2)][::-1]
        else:
            fields = re.split(r"[:;.]", text)
        if not 1 <= len(fields) <= 4 or not all(f.isdigit() for f in fields):
            raise TimecodeError(f"type a timecode such as {self.text(0)}, or +N / -N frames, not {text!r}")
        here = re.split(r"[:;]", self.text(current).lstrip("-"))
        hh, mm, ss, ff = here[:4 - len(fields)] + fields
        return self.frame(f"{hh}:{mm}:{ss}{';' if self.drop else ':'}{ff}")
