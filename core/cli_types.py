"""Argument types for the command line: a value out of range is argparse's usage error (exit 2)
naming the option, instead of a hang or a traceback minutes later. No torch: the parser is
built without it."""
import argparse
import math


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


def time_value(text: str) -> float:
    """Seconds (>= 0) from "12.5", "1:02.5" or "00:01:02.5"."""
    try:
        seconds = 0.0
        for part in text.split(":"):
            seconds = seconds * 60 + float(part)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise argparse.ArgumentTypeError(f"must be a time >= 0 such as 12.5 or 1:02.5, not {text!r}")
    return seconds
