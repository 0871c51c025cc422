"""core/slip.py: the dub as heard with segments slipped — one line moved by whole frames, the rest as it is."""
import numpy as np
import pytest
import soundfile

from core.slip import slip_audio, write_slipped_dub

FPS, RATE = 25, 16000
PER_FRAME = RATE // FPS  # 640 samples


def dub(seconds: float = 2.0, channels: int = 0) -> np.ndarray:
    """Noise: every sample different, so a moved sample is found by value."""
    shape = (int(seconds * RATE),) + ((channels,) if channels else ())
    return np.random.default_rng(7).uniform(-1, 1, shape).astype(np.float32)


def at(frame: int, offset: int = 0) -> int:
    return (frame - offset) * PER_FRAME


@pytest.mark.parametrize("offset", [0, 3])
@pytest.mark.parametrize("slip", [2, -3])
def test_a_slipped_segments_audio_moves_by_exactly_its_frames_and_the_rest_is_the_dub(offset, slip):
    audio = dub()
    start, end = 20, 30  # output frames; the dub starts at output frame `offset`
    out = slip_audio(audio, RATE, FPS, offset, [(start, end, slip)])
    assert out.shape == audio.shape and out.dtype == audio.dtype
    a, b, shift = at(start, offset), at(end, offset), slip * PER_FRAME
    np.testing.assert_array_equal(out[a + shift:b + shift], audio[a:b])  # the line, moved whole
    gap = (a, a + shift) if slip > 0 else (b + shift, b)
    assert not out[gap[0]:gap[1]].any()  # what the move left uncovered: silence
    touched = (min(a, a + shift), max(b, b + shift))
    np.testing.assert_array_equal(out[:touched[0]], audio[:touched[0]])  # the rest: the dub, sample for sample
    np.testing.assert_array_equal(out[touched[1]:], audio[touched[1]:])
    np.testing.assert_array_equal(audio, dub())  # the input is left alone


def test_no_slip_is_the_dub_and_a_moved_line_is_cut_at_the_dubs_ends():
    audio = dub(channels=2)  # samples first, channels after
    np.testing.assert_array_equal(slip_audio(audio, RATE, FPS, 0, []), audio)
    np.testing.assert_array_equal(slip_audio(audio, RATE, FPS, 0, [(5, 10, 0)]), audio)
    n = len(audio) // PER_FRAME  # 50 frames
    out = slip_audio(audio, RATE, FPS, 0, [(n - 5, n, 2), (0, 5, -2)])
    assert out.shape == audio.shape  # the dub keeps its length
    np.testing.assert_array_equal(out[at(n - 3):], audio[at(n - 5):at(n - 2)])
    np.testing.assert_array_equal(out[:at(3)], audio[at(2):at(5)])
    assert not out[at(n - 5):at(n - 3)].any() and not out[at(3):at(5)].any()


def test_overlapping_slipped_neighbours_each_keep_their_own_frames():
    audio = dub()
    # s1 [10, 20) heard 4 frames later runs into s2 [20, 30), heard 4 frames earlier, which runs into s1
    out = slip_audio(audio, RATE, FPS, 0, [(20, 30, -4), (10, 20, 4)])
    np.testing.assert_array_equal(out[at(14):at(20)], audio[at(10):at(16)])  # s1's own frames: s1's line
    np.testing.assert_array_equal(out[at(20):at(26)], audio[at(24):at(30)])  # s2's own frames: s2's line
    assert not out[at(10):at(14)].any() and not out[at(26):at(30)].any()
    # a slipped line over an unslipped neighbour wins there
    out = slip_audio(audio, RATE, FPS, 0, [(10, 20, 3)])
    np.testing.assert_array_equal(out[at(20):at(23)], audio[at(17):at(20)])


def test_the_slipped_dub_file_is_the_rule_applied_to_the_decoded_dub(tmp_path):
    source = tmp_path / "dub.wav"
    audio = dub(channels=2)
    soundfile.write(source, audio, RATE, subtype="FLOAT")
    out = write_slipped_dub(source, tmp_path / "slipped.wav", [(10, 20, 2)], FPS, 0, RATE)
    written, rate = soundfile.read(out, dtype="float32")
    assert rate == RATE and written.shape == audio.shape  # its own channels kept
    np.testing.assert_array_equal(written, slip_audio(audio, RATE, FPS, 0, [(10, 20, 2)]))
    mono = write_slipped_dub(source, tmp_path / "mono.wav", [(10, 20, 2)], FPS, 0, RATE, mono=True)
    assert soundfile.read(mono)[0].ndim == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dub.wav", "mono.wav", "slipped.wav"]  # no temps left


def test_a_dub_that_cannot_be_decoded_is_named(tmp_path):
    from core.errors import MediaError

    bad = tmp_path / "dub.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(MediaError, match=r"dub\.wav.*cannot decode audio"):
        write_slipped_dub(bad, tmp_path / "slipped.wav", [(10, 20, 2)], FPS, 0, RATE)
    assert not (tmp_path / "slipped.wav").exists()
