"""The bilabial test (training/articulation.py): phones timed by eSpeak NG, the lip gap on p/b/m
against the gap on open vowels."""
import numpy as np
import pytest

from training.articulation import BILABIAL, OPEN_VOWELS, bilabial_ratio, espeak_library, frames_of, speak

FPS = 25
PHONES = [("b", 0.0, 0.2), ("0", 0.2, 0.6), ("m", 0.6, 0.8), ("a", 0.8, 1.2)]  # frames 0-4, 5-14, 15-19, 20-29


def test_frames_of_takes_the_frames_whose_middle_is_inside_the_phone():
    assert frames_of(PHONES, BILABIAL, FPS, 30).tolist() == [0, 1, 2, 3, 4, 15, 16, 17, 18, 19]
    assert frames_of(PHONES, OPEN_VOWELS, FPS, 30).tolist() == list(range(5, 15)) + list(range(20, 30))


def test_bilabial_ratio_is_near_zero_for_a_mouth_that_closes_and_near_one_for_one_that_does_not():
    closing = np.where(np.isin(np.arange(30), frames_of(PHONES, BILABIAL, FPS, 30)), 0.02, 0.5)
    assert bilabial_ratio(closing, PHONES, FPS) == pytest.approx(0.04)
    loudness_only = np.full(30, 0.3)
    assert bilabial_ratio(loudness_only, PHONES, FPS) == pytest.approx(1.0)
    no_mesh = np.full(30, np.nan)
    assert np.isnan(bilabial_ratio(no_mesh, PHONES, FPS))


@pytest.mark.skipif(espeak_library() is None, reason="libespeak-ng is not installed")
def test_espeak_times_every_phone_of_what_it_says():
    audio, rate, phones = speak("Bob and Pam.")
    assert len(audio) > 0.5 * rate
    names = [name for name, _, _ in phones]
    assert names.count("b") == 2 and "p" in names and "m" in names
    starts = [start for _, start, _ in phones]
    assert starts == sorted(starts) and phones[-1][2] <= len(audio) / rate + 1e-6


def test_grid_sentences_come_from_the_clip_names():
    from training.articulation import grid_sentence
    assert grid_sentence("bbaf2n") == "bin blue at f two now"
    assert grid_sentence("id2_vcd_swwp2s") == "set white with p two soon"
    assert grid_sentence("pgwe6z") is None  # no adverb "z"
    assert grid_sentence("aoc_flags") is None and grid_sentence("00373") is None


def test_the_aligners_phone_names_give_the_same_ratio():
    from training.articulation import BILABIAL_ARPA, OPEN_VOWELS_ARPA
    arpa = [("B", 0.0, 0.2), ("AA", 0.2, 0.6), ("M", 0.6, 0.8), ("AE", 0.8, 1.2)]  # PHONES in CMU names
    closing = np.where(np.isin(np.arange(30), frames_of(PHONES, BILABIAL, FPS, 30)), 0.02, 0.5)
    assert bilabial_ratio(closing, arpa, FPS, BILABIAL_ARPA, OPEN_VOWELS_ARPA) == pytest.approx(0.04)
    assert np.isnan(bilabial_ratio(closing, arpa, FPS))  # eSpeak's names find no such phones


def test_the_aligner_names_a_file_it_cannot_read_and_goes_on(tmp_path, capsys):
    import json

    import soundfile as sf

    from training import align_phones
    sf.write(str(tmp_path / "float.wav"), np.zeros(1600, np.float32), 16000, subtype="FLOAT")
    items = [[str(tmp_path / "float.wav"), "bin"], [str(tmp_path / "missing.wav"), "bin"]]
    (tmp_path / "items.json").write_text(json.dumps(items))
    assert align_phones.main([str(tmp_path / "items.json"), str(tmp_path / "out.json")]) == 0
    assert json.loads((tmp_path / "out.json").read_text()) == [[], []]
    err = capsys.readouterr().err
    assert "float.wav: needs 16 kHz mono 16-bit PCM WAV" in err and "missing.wav" in err


def test_phone_picks_take_the_middles_of_closures_then_of_openings():
    from training.articulation import phone_picks
    # PHONES: b frames 0-4, 0 (open) 5-14, m 15-19, a (open) 20-29
    assert phone_picks(PHONES, FPS, 30, n=2) == [2, 17, 10, 25]
    assert phone_picks(PHONES, FPS, 12, n=2) == [2, 2, 10, 10]  # only what lies inside the render
