"""Per-line slip: one speech segment's dub moved by whole frames, the rest of the dub as it is.

A segment's `slip` (core.project.Segment, frames, positive: heard later) moves the dub under it without
moving the segment or the whole dub (that is the dub offset's job). `slip_audio` is the one rule for what
is heard; everything that hears the dub goes through it: the editor's playback (app.playback), the
renderer's mel windows and the audio muxed into its take (core.jobs.render_take; so scoring a take, which
reads the take's own audio, measures it against what it was rendered to), the export's delivered track
(core.export) and the timeline's dub lane (the waveform's envelope slipped the same way).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.atomic import atomic_write
from core.errors import MediaError
from core.ffmpeg import run_ffmpeg

Slip = tuple[int, int, int]  # a slipped segment: output frames [start, end) and its slip in frames


def slip_audio(audio: np.ndarray, sample_rate: float, fps: float, offset_frames: int, slips) -> np.ndarray:
    """The dub as heard with `slips` ((start, end, frames): output frames, as Project.slips gives them):
    `audio` (samples first, any channels after; sample 0 is the dub's start, which the dub offset puts at
    output frame `offset_frames`) with each slipped segment's own audio moved by its frames.

    The rule: a slipped segment's audio is the dub under its frames [start, end), and it is heard in full
    at [start + frames, end + frames), over whatever the dub had there (a neighbour's audio, usually its
    pause, gives way to the line moved onto it). Where two slipped segments' audio overlaps, each one's
    own audio wins inside its own frames (elsewhere, the later segment's). What a slip leaves uncovered
    inside the segment's frames is silence. Audio moved before the dub's first sample or past its last is
    cut: the dub keeps its length. Everything else is the dub, sample for sample. Frame k starts at sample
    round((k - offset_frames) · sample_rate / fps), so a slip of n frames moves the audio by
    round(n · sample_rate / fps) samples.
    """
    out = np.array(audio, copy=True)
    n = len(audio)
    at = lambda frame: int(round((frame - offset_frames) * sample_rate / fps))  # noqa: E731

    def span(a: int, b: int) -> tuple[int, int]:
        return min(max(a, 0), n), min(max(b, 0), n)

    moves = []  # (own span, where its audio lands, the shift in samples)
    for start, end, frames in sorted(slips):
        if not frames:
            continue
        own = span(at(start), at(end))
        shift = int(round(frames * sample_rate / fps))
        moves.append((own, span(own[0] + shift, own[1] + shift), shift))
        out[own[0]:own[1]] = 0
    for _, (a, b), shift in moves:
        out[a:b] = audio[a - shift:b - shift]
    for (own_a, own_b), (a, b), shift in moves:  # inside its own frames, a segment's own audio wins
        a, b = max(a, own_a), min(b, own_b)
        if a < b:
            out[a:b] = audio[a - shift:b - shift]
    return out


def write_slipped_dub(dub, output, slips, fps: float, offset_frames: int, sample_rate: int,
                      mono: bool = False) -> Path:
    """Decode the dub at `sample_rate` (its own channels, or one with `mono`), slip it (slip_audio) and
    write it to `output` as a float WAV (atomically). Returns `output`."""
    import soundfile

    dub, output = Path(dub), Path(output)

    def write(tmp):
        proc = run_ffmpeg(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(dub), "-map", "0:a:0",
                           "-vn", *(["-ac", "1"] if mono else []), "-ar", str(sample_rate), "-c:a", "pcm_f32le",
                           "-f", "wav", str(tmp)], capture_output=True)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()
            raise MediaError(dub, f"cannot decode audio ({err.splitlines()[-1] if err else proc.returncode})")
        audio, rate = soundfile.read(tmp, dtype="float32")
        soundfile.write(tmp, slip_audio(audio, rate, fps, offset_frames, slips), rate, subtype="FLOAT", format="WAV")

    atomic_write(output, write)
    return output
