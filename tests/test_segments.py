"""Speech segments: detectors, editing rules, frame ranges.

The energy detector is checked on synthetic speech-like noise bursts at known times;
Silero (which rightly ignores tones and noise) on real speech from ../shared/data spliced
with silence at known positions.
"""
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from core import segments as S
from core.errors import Cancelled, WeightsError
from core.segments import SILENCE, SPEECH, FrameRange, Segment, detect_segments, speech_mask, to_frames

SR = 16000
TOL = 0.1  # boundary tolerance, seconds


# --------------------------------------------------------------------------- helpers


def speech_noise(seconds, rng, level_db=-20.0, syllables=True, trough=0.1):
    """Noise with a speech-like spectrum (tilted, 100–4000 Hz) and a 4 Hz syllable envelope
    whose troughs sit at `trough` × its peaks (20 dB under by default), with 5 ms fades;
    RMS about `level_db` dBFS."""
    n = int(round(seconds * SR))
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    spec *= np.where((f > 100) & (f < 4000), 1 / np.sqrt(np.maximum(f, 1.0) / 100), 0.0)
    x = np.fft.irfft(spec, n)
    t = np.arange(n) / SR
    if syllables:
        x *= trough + (1 - trough) * np.sin(np.pi * 4 * t + 0.5) ** 2
    fade = min(80, n // 2)
    ramp = np.sin(np.linspace(0, np.pi / 2, fade)) ** 2
    x[:fade] *= ramp
    x[n - fade:] *= ramp[::-1]
    x *= 10 ** (level_db / 20) / (np.sqrt(np.mean(x ** 2)) + 1e-12)
    return x.astype(np.float32)


def synth_track(duration, bursts, seed=0, noise_db=-65.0):
    """Room tone at `noise_db` with speech-like bursts at [(start_s, end_s), …]."""
    rng = np.random.default_rng(seed)
    a = (10 ** (noise_db / 20) * rng.standard_normal(int(round(duration * SR)))).astype(np.float32)
    for s, e in bursts:
        i = int(round(s * SR))
        burst = speech_noise(e - s, rng)
        a[i:i + burst.size] += burst
    return a


def assert_cover(segs, duration):
    """One exact cover of [0, duration]: shared boundaries, no empty segment."""
    assert segs, "no segments"
    assert segs[0].start_s == 0.0
    assert segs[-1].end_s == pytest.approx(duration, abs=1e-9)
    for a, b in zip(segs, segs[1:]):
        assert a.end_s == b.start_s  # no gap, no overlap
    assert all(s.duration > 0 for s in segs)
    assert all(s.kind in (SPEECH, SILENCE) for s in segs)


def speech_spans(segs):
    """Speech stretches, joining adjacent speech segments (pieces of a split run)."""
    spans = []
    for s in segs:
        if s.is_speech:
            if spans and spans[-1][1] == s.start_s:
                spans[-1][1] = s.end_s
            else:
                spans.append([s.start_s, s.end_s])
    return [tuple(x) for x in spans]


def assert_spans(segs, expected, tol=TOL):
    got = speech_spans(segs)
    assert len(got) == len(expected), f"speech spans {got}, expected {expected}"
    for (gs, ge), (es, ee) in zip(got, expected):
        assert abs(gs - es) <= tol and abs(ge - ee) <= tol, f"{got} vs {expected}"


# --------------------------------------------------------------------------- energy detector


def test_energy_boundaries_on_known_bursts():
    bursts = [(0.5, 2.0), (3.0, 4.2), (5.5, 7.0)]
    a = synth_track(8.0, bursts)
    segs = detect_segments(a, method="energy")
    assert_cover(segs, 8.0)
    assert_spans(segs, bursts)
    assert [s.kind for s in segs] == [SILENCE, SPEECH, SILENCE, SPEECH, SILENCE, SPEECH, SILENCE]


@pytest.mark.parametrize("seed", range(4))
def test_cover_on_random_layouts(seed):
    rng = np.random.default_rng(100 + seed)
    duration = float(rng.uniform(3, 12))
    t, bursts = float(rng.uniform(0, 0.5)), []
    while True:
        length, gap = float(rng.uniform(0.05, 2.5)), float(rng.uniform(0.05, 1.2))
        if t + length > duration:
            break
        bursts.append((t, t + length))
        t += length + gap
    a = synth_track(duration, bursts, seed=seed)
    segs = detect_segments(a, method="energy", max_len=3.0)
    assert_cover(segs, a.size / SR)
    assert all(s.duration <= 3.0 + 1e-9 for s in segs if s.is_speech)
    # interior silences are never shorter than min_gap / min_silence
    assert all(s.duration >= 0.3 - 1e-9 for s in segs[1:-1] if not s.is_speech)
    # alternation: two silences never touch
    assert not any(a.kind == b.kind == SILENCE for a, b in zip(segs, segs[1:]))


def test_short_pauses_merge_and_long_pauses_split():
    bursts = [(0.5, 1.5), (1.65, 2.6), (3.2, 4.0)]  # 0.15 s pause, then 0.6 s
    a = synth_track(5.0, bursts)
    segs = detect_segments(a, method="energy")
    assert_spans(segs, [(0.5, 2.6), (3.2, 4.0)])
    assert len(segs) == 5  # silence, merged speech, silence, speech, silence


def test_min_gap_controls_merging():
    a = synth_track(4.0, [(0.5, 1.5), (1.75, 3.0)])  # 0.25 s pause
    merged = detect_segments(a, method="energy")
    assert_spans(merged, [(0.5, 3.0)])
    kept = detect_segments(a, method="energy", min_gap=0.1, min_silence=0.1)
    assert_spans(kept, [(0.5, 1.5), (1.75, 3.0)])
    pause = [s for s in kept if not s.is_speech and 1.0 < s.start_s < 2.0]
    assert len(pause) == 1 and 0.15 <= pause[0].duration <= 0.35


def test_hysteresis_keeps_fading_tails_but_not_quiet_sounds():
    rng = np.random.default_rng(5)
    a = synth_track(4.0, [(0.5, 1.5)], noise_db=-65)  # floor −65: start ≥ −50 (gate), stay > −59
    tail = speech_noise(0.5, rng, level_db=-55, syllables=False)
    a[int(1.5 * SR):int(1.5 * SR) + tail.size] += tail  # the word trails off at −55 dBFS
    a[int(2.8 * SR):int(2.8 * SR) + tail.size] += tail  # the same level on its own
    segs = detect_segments(a, method="energy")
    assert_spans(segs, [(0.5, 2.0)])


def test_short_speech_is_dropped_into_silence():
    a = synth_track(4.0, [(1.0, 1.15), (2.5, 2.9)])  # 0.15 s blip, 0.4 s word
    segs = detect_segments(a, method="energy")
    assert_spans(segs, [(2.5, 2.9)])
    assert segs[0].kind == SILENCE and segs[0].end_s == pytest.approx(2.5, abs=TOL)
    assert_cover(segs, 4.0)
    # with a lower minimum the blip survives
    assert len(speech_spans(detect_segments(a, method="energy", min_speech=0.1))) == 2


def test_nearly_all_speech_with_little_dynamics():
    """A compressed dub (syllable troughs only 9 dB down) that never pauses except 0.2 s
    at each end: the 10th level percentile lies inside speech, so the floor must come
    from the quiet ends."""
    rng = np.random.default_rng(2)
    a = (10 ** (-65 / 20) * rng.standard_normal(10 * SR)).astype(np.float32)
    a[int(0.2 * SR):int(9.8 * SR)] += speech_noise(9.6, rng, trough=0.35)
    segs = detect_segments(a, method="energy", max_len=20.0)
    assert segs == [Segment(0.0, 10.0, SPEECH)]  # the 0.2 s edges are absorbed


def test_short_edge_silences_are_absorbed():
    a = synth_track(3.0, [(0.15, 2.85)])
    segs = detect_segments(a, method="energy")
    assert segs == [Segment(0.0, 3.0, SPEECH)]
    # longer edge silences stay
    b = synth_track(3.0, [(0.5, 2.5)])
    assert [s.kind for s in detect_segments(b, method="energy")] == [SILENCE, SPEECH, SILENCE]


def _continuous_speech(duration, dips, seed=0):
    """Speech-like noise with no pauses, attenuated by `depth_db` over 0.15 s at each dip."""
    rng = np.random.default_rng(seed)
    a = speech_noise(duration, rng)
    for t, depth_db in dips:
        i = int(t * SR)
        a[i - int(0.075 * SR):i + int(0.075 * SR)] *= 10 ** (-depth_db / 20)
    return a


def test_long_speech_splits_at_quiet_points():
    # 1 s silence, then 18 s of speech with shallow dips; the deepest is at 10.5 s
    speech = _continuous_speech(18.0, [(4.5, 15), (9.5, 30), (12.0, 8), (14.0, 15)], seed=3)
    a = np.concatenate([np.zeros(SR, np.float32), speech, np.zeros(SR, np.float32)])
    segs = detect_segments(a, method="energy", max_len=8.0)
    assert_cover(segs, 20.0)
    pieces = [s for s in segs if s.is_speech]
    assert all(p.duration <= 8.0 for p in pieces)
    cuts = [p.end_s for p in pieces[:-1]]
    # 18 s run → cut at the 10.5 s dip (middle half 5.5–14.5); [1, 10.5] → its middle half
    # 3.4–8.1 holds the 5.5 s dip; [10.5, 19] → 12.6–16.9 holds 13 s (−8 dB) and 15 s (−15 dB)
    assert cuts == pytest.approx([5.5, 10.5, 15.0], abs=TOL)
    assert speech_spans(segs) == [(pytest.approx(1.0, abs=TOL), pytest.approx(19.0, abs=TOL))]


def test_split_cuts_in_the_middle_of_a_short_pause():
    speech = _continuous_speech(12.0, [], seed=6)
    speech[int(6.0 * SR):int(6.25 * SR)] = 0.0  # a 0.25 s breath: under min_gap, so no silence
    segs = detect_segments(speech, method="energy", max_len=8.0)
    assert [s.kind for s in segs] == [SPEECH, SPEECH]
    assert segs[0].end_s == pytest.approx(6.125, abs=0.03)


def test_split_keeps_every_piece_above_a_quarter():
    # a long run with its quietest point outside the middle half: the cut stays inside it
    speech = _continuous_speech(12.0, [(1.0, 40)], seed=4)
    segs = detect_segments(speech, method="energy", max_len=8.0)
    assert len(segs) == 2 and all(s.is_speech for s in segs)
    assert 3.0 - 1e-9 <= segs[0].end_s <= 9.0 + 1e-9


def test_steady_noise_and_hum_are_not_speech_for_energy():
    rng = np.random.default_rng(1)
    noise = (0.03 * rng.standard_normal(5 * SR)).astype(np.float32)  # −30 dBFS, steady
    assert detect_segments(noise, method="energy") == [Segment(0.0, 5.0, SILENCE)]
    quiet = (10 ** (-70 / 20) * rng.standard_normal(5 * SR)).astype(np.float32)
    quiet[2 * SR:3 * SR] *= 6  # a −54 dBFS swell: 15 dB above the floor but under the gate
    assert detect_segments(quiet, method="energy") == [Segment(0.0, 5.0, SILENCE)]


def test_energy_timing_at_other_sample_rates():
    # 22.05 kHz: a 10 ms hop is 220.5 samples; rounding it must not drift the clock (0.1 s at 50 s)
    sr = 22050
    rng = np.random.default_rng(8)
    a = (10 ** (-65 / 20) * rng.standard_normal(55 * sr)).astype(np.float32)
    a[50 * sr:52 * sr] += 0.1 * rng.standard_normal(2 * sr).astype(np.float32)
    segs = detect_segments(a, sr, method="energy")
    assert_cover(segs, 55.0)
    assert_spans(segs, [(50.0, 52.0)], tol=0.05)
    with pytest.raises(ValueError):
        detect_segments(a, sr, method="silero")
    assert_spans(detect_segments(a, sr, method="auto"), [(50.0, 52.0)], tol=0.05)  # auto → energy


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("method", ["energy", "silero"])
def test_silence_only_track(method):
    segs = detect_segments(np.zeros(5 * SR, np.float32), method=method)
    assert segs == [Segment(0.0, 5.0, SILENCE)]


@pytest.mark.parametrize("method", ["energy", "silero"])
def test_short_audio_is_one_segment(method):
    z = np.zeros(int(0.15 * SR), np.float32)
    assert detect_segments(z, method=method) == [Segment(0.0, 0.15, SILENCE)]


def test_short_loud_audio_is_one_speech_segment():
    loud = speech_noise(0.15, np.random.default_rng(0))
    assert detect_segments(loud, method="energy") == [Segment(0.0, 0.15, SPEECH)]


def test_empty_audio_has_no_segments():
    assert detect_segments(np.zeros(0, np.float32), method="energy") == []


@pytest.mark.parametrize("method", ["energy", "silero"])
def test_nan_samples_count_as_silence(method):
    bursts = [(0.5, 1.5), (2.5, 3.5)]
    a = synth_track(4.0, bursts, noise_db=-200)
    a[int(1.7 * SR):int(2.3 * SR)] = np.nan
    a[int(3.8 * SR):] = np.inf
    segs = detect_segments(a, method=method)
    assert_cover(segs, 4.0)
    if method == "energy":  # Silero does not call noise speech; here it only must not crash
        assert_spans(segs, bursts)
    assert detect_segments(np.full(SR, np.nan, np.float32), method=method) == [Segment(0.0, 1.0, SILENCE)]


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        detect_segments(np.zeros((2, SR), np.float32))
    with pytest.raises(ValueError):
        detect_segments(np.zeros(SR, np.float32), method="webrtc")
    with pytest.raises(ValueError):
        Segment(0.0, 1.0, "music")
    with pytest.raises(ValueError):
        Segment(2.0, 1.0, SPEECH)


def test_segment_dict_round_trip():
    s = Segment(0.25, 1.5, SPEECH)
    assert Segment.from_dict(json.loads(json.dumps(s.to_dict()))) == s


# --------------------------------------------------------------------------- frames


def assert_frame_cover(ranges, n_frames):
    assert ranges[0].start == 0 and ranges[-1].end == n_frames
    for a, b in zip(ranges, ranges[1:]):
        assert a.end == b.start
    assert all(r.end > r.start for r in ranges)


@pytest.mark.parametrize("fps", [25.0, 30000 / 1001])
def test_to_frames_is_exact(fps):
    rng = np.random.default_rng(7)
    duration = 60.0
    cuts = np.sort(rng.uniform(0, duration, 40))
    cuts = np.concatenate(([0.0], cuts, [duration]))
    kinds = [SPEECH if i % 2 else SILENCE for i in range(len(cuts) - 1)]
    segs = [Segment(float(a), float(b), k) for a, b, k in zip(cuts, cuts[1:], kinds)]
    n_frames = int(round(duration * fps))
    ranges = to_frames(segs, fps, n_frames)
    assert_frame_cover(ranges, n_frames)
    # every kept boundary is the frame edge nearest its time (within half a frame)
    by_end = {r.end: r for r in ranges}
    for seg in segs[:-1]:
        edge = int(np.floor(seg.end_s * fps + 0.5))
        if edge in by_end and edge < n_frames:
            assert abs(edge / fps - seg.end_s) <= 0.5 / fps + 1e-9
    # frame counts add up and each frame takes the kind of the segment holding its centre
    mask = speech_mask(segs, fps, n_frames)
    assert mask.shape == (n_frames,) and mask.dtype == bool
    assert sum(r.end - r.start for r in ranges) == n_frames
    centres = (np.arange(n_frames) + 0.5) / fps
    truth = np.zeros(n_frames, bool)
    for s in segs:
        truth[(centres >= s.start_s) & (centres < s.end_s)] = s.is_speech
    assert (mask == truth).mean() == 1.0


def test_to_frames_at_29_97_lands_on_exact_frames():
    fps = 30000 / 1001
    segs = [Segment(0.0, 1.001, SILENCE), Segment(1.001, 10.01, SPEECH), Segment(10.01, 12.0, SILENCE)]
    ranges = to_frames(segs, fps, 360)
    assert ranges == [FrameRange(0, 30, SILENCE), FrameRange(30, 300, SPEECH), FrameRange(300, 360, SILENCE)]


def test_to_frames_at_25_known_values():
    segs = [Segment(0.0, 0.5, SILENCE), Segment(0.5, 0.58, SPEECH), Segment(0.58, 2.02, SILENCE),
            Segment(2.02, 3.99, SPEECH)]
    # 0.5 s → 12.5 → 13 and 2.02 s → 50.5 → 51 (ties go up); 0.58 s → 14.5 → 15; 3.99 s → 99.75,
    # within a frame of the end
    assert to_frames(segs, 25, 100) == [FrameRange(0, 13, SILENCE), FrameRange(13, 15, SPEECH),
                                        FrameRange(15, 51, SILENCE), FrameRange(51, 100, SPEECH)]
    blip = [Segment(0.0, 0.5, SILENCE), Segment(0.5, 0.505, SPEECH), Segment(0.505, 1.0, SILENCE)]
    ranges = to_frames(blip, 25, 25)
    assert_frame_cover(ranges, 25)
    assert not speech_mask(blip, 25, 25).any()


def test_to_frames_when_dub_and_video_lengths_differ():
    segs = [Segment(0.0, 1.0, SILENCE), Segment(1.0, 3.0, SPEECH)]
    longer_video = to_frames(segs, 25, 125)  # 5 s of video, 3 s of dub: the mouth rests after
    assert longer_video == [FrameRange(0, 25, SILENCE), FrameRange(25, 75, SPEECH), FrameRange(75, 125, SILENCE)]
    shorter_video = to_frames(segs, 25, 50)
    assert shorter_video == [FrameRange(0, 25, SILENCE), FrameRange(25, 50, SPEECH)]
    within_a_frame = to_frames([Segment(0.0, 3.98, SPEECH)], 25, 100)  # 99.5 frames of audio
    assert within_a_frame == [FrameRange(0, 100, SPEECH)]
    assert to_frames(segs, 25, 0) == []
    assert speech_mask(segs, 25, 125).sum() == 50


# --------------------------------------------------------------------------- Silero backend


def test_silero_loads_from_the_package_data_without_network(tmp_path):
    """In a fresh interpreter with an empty home and every socket refused: the packaged
    ONNX model runs, and neither torch nor the silero_vad package (whose __init__ sets
    torch.set_num_threads(1) process-wide) gets imported."""
    code = r"""
import sys, json
def deny(event, args):
    if event.startswith("socket.") or event.startswith("urllib"):
        raise RuntimeError("network access: " + event)
sys.addaudithook(deny)
import numpy as np
from core import segments as S
backend = S.vad_backend()
segs = S.detect_segments(np.zeros(16000, np.float32), method="silero")
print(json.dumps({"backend": backend, "path": str(S._get_silero().path), "n": len(segs),
                  "torch": "torch" in sys.modules, "silero_pkg": "silero_vad" in sys.modules}))
"""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TORCH_HOME": str(tmp_path / "torch"),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(S.Path(__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["backend"] == "silero-onnx-sequence"
    assert info["path"].endswith("silero_vad/data/silero_vad_16k_sequence.onnx")
    assert info["n"] == 1
    assert info["torch"] is False and info["silero_pkg"] is False


def _package_copy(tmp_path, *names):
    d = tmp_path / "data"
    d.mkdir(parents=True)
    for name in names:
        (d / name).symlink_to(S.silero_data_dir() / name)
    return d


def test_silero_without_any_model_falls_back_to_energy(tmp_path, monkeypatch, caplog):
    empty = _package_copy(tmp_path)
    monkeypatch.setattr(S, "silero_data_dir", lambda: empty)
    monkeypatch.setattr(S, "_silero_cache", {})
    monkeypatch.setattr(S, "_fallback_logged", False)
    assert S.vad_backend().startswith("energy (")
    with pytest.raises(WeightsError):
        detect_segments(np.zeros(SR, np.float32), method="silero")
    # a tone: Silero would call it silence, the energy detector calls it sound
    t = np.arange(3 * SR) / SR
    a = np.where((t > 1) & (t < 2), 0.3 * np.sin(2 * np.pi * 440 * t), 0).astype(np.float32)
    with caplog.at_level("WARNING", logger="core.segments"):
        segs = detect_segments(a, method="auto")
    assert_spans(segs, [(1.0, 2.0)])
    assert "energy detector" in caplog.text


def test_silero_ignores_tones_that_energy_calls_speech():
    t = np.arange(3 * SR) / SR
    a = np.where((t > 1) & (t < 2), 0.3 * np.sin(2 * np.pi * 440 * t), 0).astype(np.float32)
    assert detect_segments(a, method="silero") == [Segment(0.0, 3.0, SILENCE)]
    assert detect_segments(a, method="auto") == [Segment(0.0, 3.0, SILENCE)]  # auto runs Silero
    assert len(speech_spans(detect_segments(a, method="energy"))) == 1


def test_progress_and_cancel():
    a = np.zeros(40 * SR, np.float32)  # 1250 Silero frames: 3 blocks
    calls = []
    detect_segments(a, method="silero", progress=lambda d, n: calls.append((d, n)))
    assert len(calls) == 3 and calls[-1][0] == calls[-1][1] == 1250
    with pytest.raises(Cancelled):
        detect_segments(a, method="silero", cancel=lambda: True)


# --------------------------------------------------------------------------- real speech


def _cut(a, t0, t1):
    return a[int(t0 * SR):int(t1 * SR)]


@pytest.fixture
def speech_chunks(data_dir):
    """Three stretches of real speech whose first and last 50 ms are voiced."""
    from core.audio import load_audio

    dubs = data_dir / "dubs"
    return [_cut(load_audio(dubs / "audio_sun.wav"), 0.2, 1.4),
            _cut(load_audio(dubs / "vox_id01908.wav"), 1.2, 2.6),
            _cut(load_audio(dubs / "vox_id01829.wav"), 2.5, 4.0)]


def _splice(parts):
    """Concatenate arrays and silences (floats, seconds); return audio and speech spans."""
    out, spans, t = [], [], 0.0
    for p in parts:
        x = np.zeros(int(round(p * SR)), np.float32) if isinstance(p, float) else p
        if not isinstance(p, float):
            spans.append((t, t + x.size / SR))
        out.append(x)
        t += x.size / SR
    return np.concatenate(out), spans


@pytest.mark.data
def test_silero_boundaries_on_spliced_real_speech(speech_chunks):
    a, spans = _splice([1.0, speech_chunks[0], 0.8, speech_chunks[1], 1.5, speech_chunks[2], 0.6])
    segs = detect_segments(a, method="silero")
    assert_cover(segs, a.size / SR)
    assert_spans(segs, spans)
    assert [s.kind for s in segs] == [SILENCE, SPEECH] * 3 + [SILENCE]


@pytest.mark.data
def test_silero_merges_short_pauses_in_real_speech(speech_chunks):
    a, spans = _splice([0.5, speech_chunks[0], 0.15, speech_chunks[1], 0.7, speech_chunks[2], 0.5])
    segs = detect_segments(a, method="silero")
    assert_spans(segs, [(spans[0][0], spans[1][1]), spans[2]])


@pytest.mark.data
def test_silero_edges_follow_the_sound_in_room_tone(speech_chunks):
    """A 0.45 s pause in −50 dBFS room tone: Silero's state lingers after speech; the
    energy refinement puts the edges back where the sound stops."""
    rng = np.random.default_rng(0)

    def tone(d):
        return (10 ** (-50 / 20) * rng.standard_normal(int(d * SR))).astype(np.float32)

    parts = [tone(0.5), speech_chunks[0], tone(0.45), speech_chunks[1], tone(0.6)]
    a = np.concatenate(parts)
    edges = np.cumsum([0] + [p.size / SR for p in parts])
    segs = detect_segments(a, method="silero")
    assert_cover(segs, a.size / SR)
    assert_spans(segs, [(edges[1], edges[2]), (edges[3], edges[4])])
    assert segs[-1].kind == SILENCE


@pytest.mark.data
def test_silero_backends_agree(speech_chunks, tmp_path):
    a, _ = _splice([0.3, speech_chunks[0], 0.4, speech_chunks[2]])
    seq = S._Silero(_package_copy(tmp_path / "a", "silero_vad_16k_sequence.onnx"))
    stream = S._Silero(_package_copy(tmp_path / "b", "silero_vad.onnx"))
    jit = S._Silero(_package_copy(tmp_path / "c", "silero_vad.jit"))
    assert (seq.kind, stream.kind, jit.kind) == ("silero-onnx-sequence", "silero-onnx", "silero-jit")
    import torch

    threads = torch.get_num_threads()
    p_seq, p_stream, p_jit = (m.probabilities(a) for m in (seq, stream, jit))
    assert torch.get_num_threads() == threads  # the JIT path restores the process setting
    assert p_seq.shape == (-(-a.size // 512),)
    assert p_seq.max() > 0.9 and p_seq[:5].max() < 0.2  # it hears the speech, not the lead-in
    np.testing.assert_allclose(p_stream, p_seq, atol=1e-5)
    np.testing.assert_allclose(p_jit, p_seq, atol=1e-4)


@pytest.mark.data
def test_sixty_second_dub_speed_and_agreement(data_dir):
    from core.audio import load_audio

    a = load_audio(data_dir / "dubs" / "audio_eng.wav")
    duration = a.size / SR
    assert duration == pytest.approx(60.0, abs=0.1)
    S._get_silero()  # load once, outside the timing
    results, rtf = {}, {}
    for method in ("silero", "energy"):
        t0 = time.perf_counter()
        results[method] = detect_segments(a, method=method)
        rtf[method] = (time.perf_counter() - t0) / duration
        assert_cover(results[method], duration)
        assert all(s.duration <= 8.0 + 1e-9 for s in results[method] if s.is_speech)
        assert 0.6 < sum(s.duration for s in results[method] if s.is_speech) / duration < 0.98
    print(f"real-time factor on 60 s: silero {rtf['silero']:.4f}, energy {rtf['energy']:.5f}")
    assert rtf["silero"] < 0.05 and rtf["energy"] < 0.01  # loose: the machine is shared
    masks = [speech_mask(results[m], 100, int(duration * 100)) for m in ("silero", "energy")]
    assert (masks[0] == masks[1]).mean() > 0.9  # two detectors, one story
