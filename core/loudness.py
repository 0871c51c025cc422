"""Audio tracks of a delivery, and their loudness: measured, and normalised to a broadcast target in
two passes of ffmpeg's loudnorm.

The first pass measures (integrated loudness, true peak, loudness range, gate threshold); the second
applies one gain for the whole track (linear=true) from those figures, so the dynamics are left as
mixed. Where that gain would push the true peak over the ceiling, loudnorm gives less gain or falls
back to its dynamic mode (a limiter) by itself; core.export says when a track ends off its target.
Graphs are ffmpeg-python streams, run through core.ffmpeg.
"""
from __future__ import annotations

import json
import math
import re
import subprocess
from dataclasses import dataclass

from core.delivery import TRUE_PEAK
from core.errors import MediaError
from core.ffmpeg import run_ffmpeg

SAMPLE_RATE = 48000  # loudnorm works (and outputs) at 192 kHz; deliveries are at 48
SILENCE = -70.0  # LUFS: EBU R128's absolute gate; quieter than this is silence, nothing to normalise


@dataclass(frozen=True)
class Loudness:
    integrated: float  # LUFS
    true_peak: float  # dBTP
    lra: float  # LU
    threshold: float  # LUFS, the relative gate
    offset: float  # LU loudnorm's first pass leaves for its second

    def __str__(self):
        return f"{self.integrated:.1f} LUFS, true peak {self.true_peak:.1f} dBTP"


def measure(stream, name, target: float = -23.0) -> Loudness:
    """The loudness of an ffmpeg-python audio stream (one decode; `name` names it in errors). `target`
    (LUFS) sets only the offset, which the second pass applies should it fall back to dynamic mode."""
    measuring = stream.filter("loudnorm", I=target, TP=TRUE_PEAK, print_format="json")
    return _loudness(_run(measuring.output("-", f="null"), name), "input")


def normalise(stream, target: float, measured: Loudness, output, name) -> str:
    """Write `stream` at `target` LUFS (true peak under TRUE_PEAK) to `output` (float WAV, SAMPLE_RATE),
    from its first-pass figures `measured`. Returns loudnorm's mode: linear (one gain) or dynamic."""
    normalised = stream.filter(
        "loudnorm", I=target, TP=TRUE_PEAK,
        LRA=min(max(7.0, math.ceil(measured.lra)), 50.0),  # at least the track's own: linear needs that
        measured_I=measured.integrated, measured_TP=measured.true_peak, measured_LRA=measured.lra,
        measured_thresh=measured.threshold, offset=measured.offset, linear="true", print_format="json")
    report = _run(normalised.filter("aresample", SAMPLE_RATE).output(str(output), acodec="pcm_f32le", f="wav"), name)
    return report.get("normalization_type", "linear")


def write(stream, output, name):
    """Write `stream` as it is to `output` (float WAV, SAMPLE_RATE)."""
    _run(stream.output(str(output), acodec="pcm_f32le", f="wav"), name, report=False)


def _run(output, name, report: bool = True) -> dict:
    """Run an ffmpeg-python output node; loudnorm's JSON report, read off stderr."""
    args = ["-nostdin", "-hide_banner", "-nostats", "-y", *output.get_args()]
    proc = run_ffmpeg(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    text = proc.stderr.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        lines = [line for line in text.splitlines() if line.strip()]
        raise MediaError(name, f"ffmpeg failed on its audio: {' | '.join(lines[-3:])}")
    reports = re.findall(r"\{[^{}]*\}", text)
    if report and not reports:
        raise MediaError(name, "ffmpeg's loudnorm gave no report")
    return json.loads(reports[-1]) if report else {}


def _loudness(report: dict, side: str) -> Loudness:
    def number(key):
        return float(report[f"{side}_{key}"])  # "-inf" for silence

    return Loudness(number("i"), number("tp"), number("lra"), number("thresh"), float(report["target_offset"]))
