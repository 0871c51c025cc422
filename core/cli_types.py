"""Argument types for the command line: a value out of range is argparse's usage error (exit 2)
naming the option, instead of a hang or a traceback minutes later. No torch: the parser is
built without it."""
import argparse
import math
import re

from core.timecode import Timecode, TimecodeError, is_label


def number(kind, accept=lambda value: True, requirement: str = "", infinite: bool = False):
    """An argparse type: an int or a float that `accept`s it (floats: finite unless `infinite`);
    `requirement` says which values are accepted."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {'a whole number' if kind is int else 'a number'}: {text!r}") \
                from None
        if kind is float and (math.isnan(value) or (math.isinf(value) and not infinite)):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, not {text}")
        return value

    return parse


positive_int = number(int, lambda v: v >= 1, "a whole number >= 1")
count = number(int, lambda v: v >= 0, "a whole number >= 0")
positive_float = number(float, lambda v: v > 0, "> 0")
non_negative_float = number(float, lambda v: v >= 0, ">= 0")
finite_float = number(float)
fraction = number(float, lambda v: 0 <= v < 1, "in [0, 1)")
crf = number(int, lambda v: 0 <= v <= 51, "an H.264 CRF in [0, 51]")


def file_tag(text: str) -> str:
    """A short version tag that can go into a file name: letters, digits, '.', '_' or '-'."""
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,32}", text) or text.strip(".") == "":
        raise argparse.ArgumentTypeError(f"must be 1-32 letters, digits, '.', '_' or '-', not {text!r}")
    return text


def time_value(text: str) -> float | str:
    """Seconds (>= 0) from "12.5", "1:02.5" or "00:01:02.5"; or a timecode "01:00:12:05" (';' before
    the frames in drop-frame) as written: only the video's rate says which frame it is (`frame_of`)."""
    if is_label(text):
        return text.strip()
    try:
        seconds = 0.0
        for part in text.split(":"):
            seconds = seconds * 60 + float(part)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise argparse.ArgumentTypeError(f"must be a time >= 0 such as 12.5 or 1:02.5, or a timecode such as "
                                         f"00:00:12:12, not {text!r}")
    return seconds


def frame_of(value: float | str, timecode: Timecode) -> int:
    """The frame a `time_value` names in a video labelled by `timecode`: seconds from its first frame, or
    a label of its timecode (which starts at the video's start timecode). Raises TimecodeError for a
    label the rate has not, or one before the video's first frame."""
    if not isinstance(value, str):
        return int(round(value * timecode.fps))
    frame = timecode.frame(value)
    if frame < 0:
        raise TimecodeError(f"{value} is before the video's first frame, {timecode.text(0)}")
    return frame
