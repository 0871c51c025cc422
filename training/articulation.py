"""Does the mouth close on p, b and m? A dub whose every phone is timed, and the measure.

eSpeak NG speaks `SENTENCES` (rich in p/b/m and open vowels) and reports when each of its phones
starts in the audio it produced, so the phone timing is exact (no aligner: pocketsphinx could
not align eSpeak's voice here). `bilabial_ratio` is the median inner-lip gap (MediaPipe's
aperture of the rendered frames) over frames inside p/b/m, divided by the median over frames
inside open vowels: a mouth that shapes sounds is near 0 (the lips touch on every bilabial),
a mouth that only follows loudness is near 1.

Evaluation only: needs libespeak-ng (Debian: `apt-get install espeak-ng`), never imported by the
product.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
from pathlib import Path

import numpy as np

SENTENCES = (
    "Bob and Pam bought a map by the pub.",
    "My mom made apple pie, but Papa ate the bananas.",
    "Put the big bag of plums by the palm.",
    "Mark baked bread while Bob mopped the barn.",
    "Maybe the puppy might bump the pot.",
)
BILABIAL = {"p", "b", "m"}
OPEN_VOWELS = {"a", "A:", "aI", "aU", "A@", "0", "V", "O:"}  # eSpeak's English names
# the same in CMU (ARPAbet) names, as the forced aligner (training/align_phones.py) gives them
BILABIAL_ARPA = {"P", "B", "M"}
OPEN_VOWELS_ARPA = {"AA", "AE", "AH", "AO", "AW", "AY"}
# GRID sentences are six words, one letter of the clip's name each: "bbaf2n" = "bin blue at f two now"
GRID_WORDS = ({"b": "bin", "l": "lay", "p": "place", "s": "set"},
              {"b": "blue", "g": "green", "r": "red", "w": "white"},
              {"a": "at", "b": "by", "i": "in", "w": "with"},
              None,  # a letter of the alphabet, said as itself
              {"z": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
               "7": "seven", "8": "eight", "9": "nine"},
              {"a": "again", "n": "now", "p": "please", "s": "soon"})
PAUSE_S = 0.4  # silence between sentences

_PHONEME, _WORD, _LIST_END = 7, 1, 0
_SYNCHRONOUS, _PHONEME_EVENTS, _RATE = 2, 1, 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):  # espeak_EVENT of speak_lib.h
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


def espeak_library():
    """libespeak-ng, or None where it is not installed."""
    name = ctypes.util.find_library("espeak-ng")
    return ctypes.CDLL(name) if name else None


def speak(text: str, words_per_minute: int = 140) -> tuple:
    """(audio float32 mono, sample rate, [(phone, start_s, end_s), ...]) of eSpeak NG saying `text`."""
    lib = espeak_library()
    if lib is None:
        raise RuntimeError("libespeak-ng is not installed (Debian: apt-get install espeak-ng)")
    rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, None, _PHONEME_EVENTS)
    chunks, starts = [], []

    def on_synth(wav, n, events):
        if wav and n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).astype(np.float32) / 32768)
        i = 0
        while events[i].type != _LIST_END:
            if events[i].type == _PHONEME:
                starts.append((events[i].id.string.decode(), events[i].audio_position / 1000))
            i += 1
        return 0

    callback = _CALLBACK(on_synth)  # kept referenced until synthesis ends
    lib.espeak_SetSynthCallback(callback)
    lib.espeak_SetVoiceByName(b"en-us")
    lib.espeak_SetParameter(_RATE, words_per_minute, 0)
    data = text.encode()
    lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None)
    lib.espeak_Synchronize()
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    ends = [s for _, s in starts[1:]] + [len(audio) / rate]
    return audio, rate, [(name, start, end) for (name, start), end in zip(starts, ends) if end > start]


def bilabial_dub(path) -> list:
    """Speak SENTENCES into the wav `path` (pauses between them); the phones' timing goes beside
    it as `<path>.phones.json` and is returned."""
    import soundfile

    pieces, phones, offset, rate = [], [], 0.0, None
    for sentence in SENTENCES:
        audio, rate, timed = speak(sentence)
        phones += [(name, start + offset, end + offset) for name, start, end in timed]
        pause = np.zeros(int(PAUSE_S * rate), np.float32)
        pieces += [audio, pause]
        offset += (len(audio) + len(pause)) / rate
    soundfile.write(str(path), np.concatenate(pieces), rate)
    Path(f"{path}.phones.json").write_text(json.dumps(phones))
    return phones


def frames_of(phones, names, fps: float, n_frames: int) -> np.ndarray:
    """Frames whose middle falls inside a phone named in `names`."""
    middles = (np.arange(n_frames) + 0.5) / fps
    inside = np.zeros(n_frames, bool)
    for name, start, end in phones:
        if name in names:
            inside |= (middles >= start) & (middles < end)
    return np.flatnonzero(inside)


def phone_picks(phones, fps: float, n_frames: int, n: int = 4) -> list:
    """Frames in the middle of n p/b/m phones, then of n open vowels, spread over the dub (for a
    contact sheet of closures beside openings)."""
    picks = []
    for names in (BILABIAL, OPEN_VOWELS):
        middles = [int((start + end) / 2 * fps) for name, start, end in phones if name in names]
        middles = [m for m in middles if m < n_frames]
        if middles:
            picks += [middles[i] for i in np.linspace(0, len(middles) - 1, n).round().astype(int)]
    return picks


def bilabial_ratio(aperture: np.ndarray, phones, fps: float, closing=BILABIAL, opening=OPEN_VOWELS) -> float:
    """Median lip gap on p/b/m frames ÷ median on open-vowel frames (NaN without both)."""
    closed = aperture[frames_of(phones, closing, fps, len(aperture))]
    opened = aperture[frames_of(phones, opening, fps, len(aperture))]
    closed, opened = closed[np.isfinite(closed)], opened[np.isfinite(opened)]
    if not len(closed) or not len(opened) or np.median(opened) <= 0:
        return float("nan")
    return float(np.median(closed) / np.median(opened))


def grid_sentence(name: str) -> str | None:
    """The words of a GRID clip from its name ("bbaf2n", "id2_vcd_swwp2s"), or None for another name."""
    code = name.split("_")[-1].lower()
    if len(code) != len(GRID_WORDS):
        return None
    words = []
    for letter, choices in zip(code, GRID_WORDS):
        if choices is None:
            words.append(letter)
        elif letter in choices:
            words.append(choices[letter])
        else:
            return None
    return " ".join(words)


def real_bilabial_ratios(data, python: str, av_offsets: dict | None = None) -> dict:
    """{clip key: bilabial ratio} of real speakers: the prepared GRID clips, whose words are known
    from their names, aligned phone by phone by `python` (a venv with pocketsphinx 5, running
    training/align_phones.py); the lip gap is MediaPipe's aperture of the prepared frames
    (DATA/lip_shape.npz). Frame i shows the audio at (i + the clip's AV offset) / FPS."""
    import subprocess
    import sys
    import tempfile

    import soundfile

    from training.datasets import FPS
    from training.lip_shape import read_lip_shapes

    shapes = read_lip_shapes(data)
    keys = sorted(k for k in shapes if k.split("/")[0].startswith("grid") and grid_sentence(k.split("/")[-1]))
    if not keys:
        return {}
    with tempfile.TemporaryDirectory(prefix="lipsmith-align-") as tmp:
        items = []
        for n, key in enumerate(keys):
            audio, rate = soundfile.read(str(Path(data) / key / "audio.wav"), dtype="float32")
            wav = Path(tmp) / f"{n}.wav"
            soundfile.write(str(wav), audio, rate, subtype="PCM_16")  # the aligner reads 16-bit PCM
            items.append([str(wav), grid_sentence(key.split("/")[-1])])
        (Path(tmp) / "items.json").write_text(json.dumps(items))
        subprocess.run([python, "-m", "training.align_phones", str(Path(tmp) / "items.json"),
                        str(Path(tmp) / "phones.json")], check=True, cwd=Path(__file__).resolve().parents[1],
                       stdout=sys.stdout, stderr=sys.stderr)
        aligned = json.loads((Path(tmp) / "phones.json").read_text())
    ratios = {}
    for key, phones in zip(keys, aligned):
        shift = ((av_offsets or {}).get(key) or 0) / FPS
        phones = [(name, start - shift, end - shift) for name, start, end in phones]
        ratios[key] = bilabial_ratio(shapes[key][:, 0], phones, FPS, BILABIAL_ARPA, OPEN_VOWELS_ARPA)
    return ratios


def print_real_bilabials(args) -> int:
    """`python main.py real-bilabials`: the bilabial ratio of real GRID speakers, per clip and in all."""
    from training.datasets import read_av_offsets

    offsets = read_av_offsets(args.av_offsets) if args.av_offsets else None
    ratios = real_bilabial_ratios(args.data, args.aligner_python, offsets)
    if not ratios:
        raise SystemExit(f"real-bilabials: no measured GRID clips under {args.data}")
    for key, ratio in ratios.items():
        print(f"{key:40s} {ratio:.2f}")
    values = np.array([r for r in ratios.values() if np.isfinite(r)])
    print(f"{len(values)} of {len(ratios)} clips: median {np.median(values):.2f}, "
          f"mean {values.mean():.2f}, 90th percentile {np.percentile(values, 90):.2f}")
    return 0
