"""Measure each prepared clip's audio-video offset with a trained expert (data cleaning).

    python main.py offsets --data PREPARED --expert runs/expert/best.safetensors -o PREPARED/av_offsets.json

In-the-wild footage carries a few frames of AV offset (LRS2 itself was sync-corrected with
SyncNet before Wav2Lip was trained on it). Each clip is scored with the paper's protocol
(core.sync) against its own audio; the offset is kept where the expert is sure of it
(LSE-C >= --min-confidence) and small enough to be a recording offset rather than a
mistake (|offset| <= --max-offset); other clips are listed as unsure and left unshifted.
`train-expert --av-offsets FILE` (and the generator) then train on the corrected clips.
"""
import json
from pathlib import Path

from core.atomic import atomic_write_text
from core.sync import load_scorer, score_crops
from training.datasets import read_clip_frames, read_clip_mel, read_filelist, scan_clip


def measure(data: Path, expert, min_confidence: float, max_offset: int, filelists=("train", "val")) -> dict:
    scorer = load_scorer(expert)
    result = {"scorer": scorer.name, "min_confidence": min_confidence, "max_offset": max_offset,
              "offsets": {}, "unsure": {}, "confidence": {}}
    keys = [key for name in filelists for key in read_filelist(data, name)]
    for n, key in enumerate(keys, 1):
        clip = scan_clip(data, key)
        if clip is None or clip.frames < 2 * scorer.frames:
            continue
        frames = read_clip_frames(clip)
        scores = score_crops(scorer, frames, [True] * len(frames), read_clip_mel(clip))
        result["confidence"][key] = round(scores.lse_c, 3)
        sure = scores.lse_c >= min_confidence and abs(scores.offset_frames) <= max_offset
        (result["offsets"] if sure else result["unsure"])[key] = scores.offset_frames
        print(f"[{n}/{len(keys)}] {key}: offset {scores.offset_frames:+d} frames, LSE-C {scores.lse_c:.2f}"
              f"{'' if sure else '  (unsure: left unshifted)'}", flush=True)
    return result


def run(args) -> int:
    data = Path(args.data)
    result = measure(data, args.expert, args.min_confidence, args.max_offset)
    out = Path(args.output or data / "av_offsets.json")
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    shifted = sum(1 for v in result["offsets"].values() if v)
    print(f"{len(result['offsets'])} clips measured ({shifted} shifted), {len(result['unsure'])} unsure -> {out}")
    return 0


def add_parser(sub):
    p = sub.add_parser("offsets", help="measure each prepared clip's AV offset with a trained expert")
    p.add_argument("--data", required=True, help="prepared dataset root")
    p.add_argument("--expert", required=True, help="expert checkpoint (ours or lipsync_expert.pth)")
    p.add_argument("-o", "--output", help="JSON to write (default: DATA/av_offsets.json)")
    p.add_argument("--min-confidence", type=float, default=1.0, help="LSE-C under which a clip is left unshifted")
    p.add_argument("--max-offset", type=int, default=6, help="larger offsets are treated as unsure")
    p.set_defaults(run=run)
