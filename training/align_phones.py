"""Forced alignment of known words to speech: each phone's start and end (an evaluation tool).

    <venv with pocketsphinx 5>/bin/python -m training.align_phones ITEMS.json OUT.json

ITEMS.json: [[wav path (16 kHz mono 16-bit), "the words spoken"], ...]; OUT.json: one list per item
of [phone, start_s, end_s] in CMU (ARPAbet) names, SIL for silence, [] where alignment failed.
pocketsphinx 5 ships its US English model in the wheel and runs offline; it lives in its own venv
(`pip install pocketsphinx`) like MediaPipe, and this module imports nothing from Lipsmith.
"""
import json
import sys
import wave

FRAME_S = 0.01  # pocketsphinx's frame rate: 100 per second


def align(path: str, words: str) -> list:
    need = "needs 16 kHz mono 16-bit PCM WAV"
    try:
        with wave.open(path, "rb") as f:
            if f.getframerate() != 16000 or f.getnchannels() != 1 or f.getsampwidth() != 2:
                raise ValueError(need)
            audio = f.readframes(f.getnframes())
    except wave.Error as exc:  # e.g. float samples: "unknown format: 3"
        raise ValueError(f"{need} ({exc})") from exc
    from pocketsphinx import Decoder  # only in the aligner's venv

    decoder = Decoder(samprate=16000, bestpath=False, lm=None, loglevel="FATAL")
    decoder.set_align_text(words)
    for second in (False, True):  # the words first, then the phones within them (pocketsphinx's two passes)
        if second:
            decoder.set_alignment()
        decoder.start_utt()
        decoder.process_raw(audio, full_utt=True)
        decoder.end_utt()
    found = decoder.get_alignment()
    if found is None:
        return []
    return [[phone.name, phone.start * FRAME_S, (phone.start + phone.duration) * FRAME_S]
            for word in found for phone in word]


def main(argv=None) -> int:
    items_path, out_path = (argv or sys.argv[1:])[:2]
    items = json.loads(open(items_path, encoding="utf-8").read())
    out = []
    for path, words in items:
        try:
            out.append(align(path, words))
        except (OSError, RuntimeError, ValueError) as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            out.append([])
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
