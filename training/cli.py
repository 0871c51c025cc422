"""The training subcommands' options, without torch: `python main.py --help` and `--version`
stay instant, and a subcommand imports its module only when it runs."""
import importlib
from pathlib import Path

from core.cli_types import (count, file_tag, finite_float, fraction, non_negative_float, number, positive_float,
                            positive_int)
from core.hparams import MOUTH_MODES

ADAPT_LR = 5e-5  # speaker adaptation's learning rate (the generator)
SYNC_SWITCH = 0.75  # eval sync loss under which the generator's sync term switches on (the paper's)
DEFAULT_DUBS = Path(__file__).resolve().parents[2] / "shared" / "data" / "dubs"  # evaluate's foreign speech


def entry(module: str, function: str):
    """`args.run`: imports `module` when the command runs, then calls its `function(args)`."""
    def run(args) -> int:
        return getattr(importlib.import_module(module), function)(args)
    return run


def add_trainer_args(p, default_batch: int):
    """Options both trainers share."""
    p.add_argument("--data", required=True, help="prepared dataset root (python main.py prepare)")
    p.add_argument("--run", "--run-dir", dest="run_dir", required=True,
                   help="folder for checkpoints and logs (under torchrun spell it --run-dir: torchrun's own "
                        "parser takes --run for an ambiguous abbreviation of its --run-path)")
    p.add_argument("--width", type=positive_float, default=0.5, help="channel width multiplier (1.0 = official size)")
    p.add_argument("--batch-size", type=positive_int, default=default_batch)
    p.add_argument("--lr", type=positive_float, default=1e-4)
    p.add_argument("--steps", type=positive_int, default=100_000, help="stop after this many optimiser steps")
    p.add_argument("--max-minutes", type=non_negative_float, default=0,
                   help="also stop after this wall time (0: no limit)")
    p.add_argument("--eval-every", type=positive_int, default=500)
    p.add_argument("--eval-batches", type=positive_int, default=20)
    p.add_argument("--log-every", type=positive_int, default=50)
    p.add_argument("--workers", type=count, default=1, help="data loader processes (0: load in the trainer)")
    p.add_argument("--seed", type=count, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto: bf16 mixed precision on GPU, fp32 on CPU")
    p.add_argument("--av-offsets", help="JSON of per-clip AV offsets (python main.py offsets): train and validate "
                   "on the corrected clips")
    p.add_argument("--balance-speakers", action="store_true",
                   help="draw sources, then speakers, by the square root of their material instead of by their "
                        "windows (random draws: train-expert's offsets objective; train-generator always)")
    p.add_argument("--resume", action="store_true", help="continue from RUN/last.safetensors")
    p.add_argument("--force", action="store_true", help="resume even if hyper-parameters changed")


def add_expert_args(p):
    """train-expert's options (speaker adaptation parses its own expert run with them)."""
    add_trainer_args(p, default_batch=64)
    p.add_argument("--objective", choices=["offsets", "paper"], default="offsets",
                   help="offsets: stretches of consecutive windows, cosine-BCE + InfoNCE over offsets (default); "
                        "paper: the paper's 50/50 in-sync/off-sync cosine-BCE")
    # fewer than 6: no pair of windows >= 5 frames apart, so the BCE term would be NaN
    p.add_argument("--stretch", type=number(int, lambda v: v >= 6, "a whole number >= 6"), default=16,
                   help="windows per stretch (offsets objective; at least 6); the batch holds batch-size / stretch "
                        "stretches")
    p.add_argument("--nce", type=non_negative_float, default=1.0, help="weight of the InfoNCE term (offsets objective)")
    p.add_argument("--aux", choices=["loudness", "aperture", "shape"], default="loudness",
                   help="auxiliary per-frame target the face embedding predicts (offsets objective): the audio's "
                        "loudness, or from DATA/lip_shape.npz (training/lip_shape.py) the lip aperture or the "
                        "lip-shape teacher (gaps, width, protrusion, contour PCA)")
    p.add_argument("--aux-weight", type=non_negative_float, default=1.0, help="weight of the auxiliary loss (0: off)")
    p.add_argument("--aux-from", choices=["face", "both"], default="face",
                   help="which embeddings predict the auxiliary target: the face's, or the audio's as well (so both "
                        "share a 'mouth opening over time' subspace)")
    # against memorising 30 training voices: the audio encoder must hear new speakers
    p.add_argument("--mel-warp", type=fraction, default=0.0,
                   help="vocal-tract-length augmentation: warp the mel axis by a factor in [1 - w, 1 + w]")
    p.add_argument("--freq-mask", type=count, default=0, help="SpecAugment: mask one band of up to N mel bins")
    p.add_argument("--weight-decay", type=non_negative_float, default=0.0, help="AdamW weight decay")
    p.add_argument("--face-warmup", type=count, default=0,
                   help="first N steps: the auxiliary loss only (the face encoder learns to see the lips first)")
    p.add_argument("--init", help="start from this trained expert, whole (fine-tuning; same width)")
    p.add_argument("--init-face", help="start the face encoder from this expert's, exported or a run's "
                   "last.safetensors (e.g. a run whose face encoder learnt the lips but whose audio side "
                   "memorised; with --freeze-face)")
    p.add_argument("--freeze-face", action="store_true",
                   help="after the warm-up, keep the face encoder fixed: the audio encoder learns to match what it "
                        "sees, and the pair cannot co-adapt to memorise the training clips")


def add_generator_args(p):
    add_trainer_args(p, default_batch=16)
    p.add_argument("--expert", help="trained expert (.safetensors or lipsync_expert.pth) for the sync loss; "
                   "without one the generator learns from L1 (+ GAN) alone")
    p.add_argument("--gan", action="store_true", help="add the visual-quality discriminator (s_g = 0.07)")
    p.add_argument("--init", help="start from these generator weights (fine-tuning)")
    p.add_argument("--sync-switch", type=number(float, lambda v: v >= 0, ">= 0", infinite=True), default=SYNC_SWITCH,
                   help="eval sync loss under which the sync term switches on (the paper's 0.75; a large value "
                        "turns it on at the first evaluation, inf from the first step, e.g. when fine-tuning a "
                        "generator already trained with it)")
    p.add_argument("--sync-weight", type=fraction,
                   help="s_w once the sync term is on (default: the paper's 0.03 with --gan, 0.01 without); "
                        "lower it when a weak expert is exploited (colour blotches on the lips)")
    p.add_argument("--unpaired-sync", type=non_negative_float, default=0.0,
                   help="weight of the expert's sync loss on mouths generated to audio from elsewhere in the "
                        "same clip (no true frame exists for them); keeps a generator fine-tuned on one clip "
                        "(speaker adaptation) listening to the audio instead of recalling each frame's mouth")
    p.add_argument("--lip-reader", help="lip-shape reader (python main.py train-lip-reader) judging the generated "
                   "mouths' shape against the teacher's on the real frames of their audio (DATA/lip_shape.npz)")
    p.add_argument("--shape-weight", type=non_negative_float, default=0.0,
                   help="weight of the lip-shape loss, paired and unpaired (with --lip-reader)")
    p.add_argument("--sync-grey", action="store_true",
                   help="the sync loss shows the expert the generated frames in grey, so the generator cannot "
                        "please a weak expert with colour (validation still scores the colour output)")


def add_prepare_parser(sub):
    p = sub.add_parser("prepare", help="turn a folder of talking-face videos into a training set")
    p.add_argument("src_dir", help="folder of videos (searched recursively)")
    p.add_argument("out_dir", help="output folder (LRS2 layout, manifest, filelists)")
    p.add_argument("--workers", type=positive_int, default=1, help="parallel processes (default 1)")
    p.add_argument("--seed", type=count, default=0, help="seed of the train/val speaker split (default 0)")
    p.add_argument("--val-fraction", type=fraction, default=0.15,
                   help="share of frames, in whole speakers, for validation (default 0.15)")
    p.add_argument("--cache-dir", help="face detection cache folder")
    p.set_defaults(run=entry("training.prepare", "cmd_prepare"))
    return p


# the commands that run torch alone on the cores (core.threads: they keep OpenMP's spinning threads)
TRAINING_COMMANDS = frozenset({"train-expert", "train-lip-reader", "train-dub-shape", "train-generator", "adapt"})


def add_parsers(sub):
    """Register the training subcommands on `sub` (main.py's subparsers)."""
    add_prepare_parser(sub)

    p = sub.add_parser("train-expert", help="train the lip-sync expert (SyncNet) on a prepared dataset")
    add_expert_args(p)
    p.set_defaults(run=entry("training.train_expert", "run"))

    p = sub.add_parser("offsets", help="measure each prepared clip's AV offset with a trained expert")
    p.add_argument("--data", required=True, help="prepared dataset root")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--expert", help="expert checkpoint (ours or lipsync_expert.pth)")
    source.add_argument("--from-aperture", action="store_true",
                        help="no expert yet: the lag of best lip-aperture/loudness correlation (DATA/lip_shape.npz)")
    p.add_argument("--min-r", type=number(float, lambda v: -1 <= v <= 1, "a correlation in [-1, 1]"), default=0.3,
                   help="--from-aperture: weakest correlation trusted")
    p.add_argument("--min-gain", type=non_negative_float, default=0.1,
                   help="--from-aperture: how much better than lag 0 a lag must correlate to be applied")
    p.add_argument("--min-frames", type=positive_int, default=75,
                   help="--from-aperture: shorter clips take their source folder's pooled offset (default 75)")
    p.add_argument("-o", "--output", help="JSON to write (default: DATA/av_offsets.json)")
    p.add_argument("--min-confidence", type=finite_float, default=1.0, help="LSE-C under which a clip is left unshifted")
    p.add_argument("--max-offset", type=positive_int, default=6, help="larger offsets are treated as unsure")
    p.set_defaults(run=entry("training.offsets", "run"))

    p = sub.add_parser("train-lip-reader", help="train the lip-shape reader (the generator's shape judge) on "
                       "prepared frames and DATA/lip_shape.npz")
    p.add_argument("--data", required=True, help="prepared dataset root, measured by training/lip_shape.py")
    p.add_argument("--run", "--run-dir", dest="run_dir", required=True, help="folder for the reader and its log")
    p.add_argument("--width", type=positive_float, default=1.0, help="channel width multiplier")
    p.add_argument("--epochs", type=positive_int, default=4)
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--lr", type=positive_float, default=2e-3)
    p.add_argument("--stride", type=positive_int, default=3, help="every N-th frame of a clip (neighbours look alike)")
    p.add_argument("--seed", type=count, default=0)
    p.set_defaults(run=entry("training.train_lip_reader", "train"))

    p = sub.add_parser("train-dub-shape", help="train the dub-shape model (speech -> the lip shape real speakers "
                       "make, which the actor's mouth closes by) on prepared clips and DATA/lip_shape.npz")
    p.add_argument("--data", required=True, help="prepared dataset root, measured by training/lip_shape.py")
    p.add_argument("--run", "--run-dir", dest="run_dir", required=True, help="folder for the model and its log")
    p.add_argument("--av-offsets", help="per-clip AV offsets (python main.py offsets); its dropped clips are left out")
    p.add_argument("--width", type=positive_float, default=1.0, help="channel width multiplier")
    p.add_argument("--steps", type=positive_int, default=3000)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--lr", type=positive_float, default=2e-3)
    p.add_argument("--eval-every", type=positive_int, default=500, help="validate every N steps")
    p.add_argument("--seed", type=count, default=0)
    p.set_defaults(run=entry("training.train_dub_shape", "train"))

    p = sub.add_parser("train-generator", help="train the Wav2Lip generator against a frozen expert")
    add_generator_args(p)
    p.set_defaults(run=entry("training.train_generator", "run"))

    p = sub.add_parser("adapt", help="fine-tune the generator on a clip's own frames and audio (speaker adaptation)")
    p.add_argument("video", help="the original footage (in sync with its own audio)")
    p.add_argument("-o", "--output", help="adapted weights (.safetensors; default: beside the video)")
    p.add_argument("--base", default="generator", help="generator to start from (default: the bundled one)")
    p.add_argument("--expert", default="expert", help="sync expert for the sync loss (default: the bundled one, if any)")
    p.add_argument("--minutes", type=non_negative_float, default=5.0,
                   help="training time budget (default 5; 0: until --steps)")
    p.add_argument("--expert-minutes", type=non_negative_float, default=0.0,
                   help="first adapt the expert to the clip for this long (0: off), then train the generator against "
                        "it; saved beside the output as <stem>.expert.safetensors")
    p.add_argument("--steps", type=positive_int, default=100_000, help="stop after this many steps")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--lr", type=positive_float, default=ADAPT_LR, help=f"learning rate (default {ADAPT_LR:g})")
    p.add_argument("--device", default="auto")
    p.add_argument("--cache-dir", help="face detection cache folder")
    p.set_defaults(run=entry("training.adapt", "run"))

    p = sub.add_parser("evaluate-expert", help="held-out report of a sync expert per source: window AUC and "
                       "accuracy at the training speakers' threshold, own audio against foreign per clip")
    p.add_argument("--data", required=True, help="prepared dataset (its train and val filelists)")
    p.add_argument("--expert", default="expert", help="expert to judge (default: the bundled one)")
    p.add_argument("--av-offsets", help="JSON of per-clip AV offsets (python main.py offsets)")
    p.add_argument("--max-windows", type=positive_int, default=6000, help="windows drawn from each filelist")
    p.add_argument("--foreign", type=positive_int, default=3, help="foreign tracks per validation clip")
    p.add_argument("--seed", type=count, default=0)
    p.add_argument("-o", "--output", help="JSON to write (default: DATA/expert_report.json)")
    p.set_defaults(run=entry("training.expert_report", "run"))

    p = sub.add_parser("evaluate", help="held-out lip-sync: own vs unsynced vs rendered LSE, with face sheets")
    p.add_argument("--data", required=True, help="prepared dataset (its val filelist and manifest)")
    p.add_argument("--generator", default="generator")
    p.add_argument("--expert", default="expert")
    p.add_argument("--dubs", default=str(DEFAULT_DUBS), help="folder of foreign speech tracks")
    p.add_argument("--out", required=True)
    p.add_argument("--max-clips", type=count, default=0, help="the first N validation clips only (0: all)")
    p.add_argument("--clips", nargs="+", help="these validation clips only (keys of the val filelist)")
    p.add_argument("--adapt-minutes", type=non_negative_float, default=0.0,
                   help="adapt the generator to each clip's speaker (python main.py adapt) for this long before "
                        "rendering it; compare with a run without")
    p.add_argument("--adapt-expert-minutes", type=non_negative_float, default=0.0,
                   help="with --adapt-minutes: adapt the expert to the clip first for this long (adapt --expert-minutes); "
                        "the scores still come from --expert")
    p.add_argument("--cache-dir")
    p.add_argument("--aperture-python", help="a Python with mediapipe 0.10.14 (training/lip_shape.py): also "
                   "judge lip-sync by MediaPipe's lip aperture against loudness, independent of our expert")
    p.set_defaults(run=entry("training.evaluate", "evaluate"))

    p = sub.add_parser("compare-mouths", help="the actor's mouth beside the generated one: sharpness, steadiness, "
                       "sync by our expert and by MediaPipe, the original mouth's leak, sheets")
    p.add_argument("--videos", nargs="+", required=True, help="talking-face clips (held-out speakers)")
    p.add_argument("--dubs", nargs="+", help="foreign speech, paired with the videos in order (repeated as needed)")
    p.add_argument("--modes", nargs="+", choices=MOUTH_MODES, default=["generated", "actor"])
    p.add_argument("--espeak", action="store_true", help="dub every video with eSpeak NG speaking p/b/m-rich sentences "
                   "(phones timed exactly; needs libespeak-ng) and, with --aperture-python, report the bilabial "
                   "ratio: lip gap on p/b/m ÷ on open vowels")
    p.add_argument("--seconds", type=non_negative_float, default=0.0, help="the first S seconds of each (0: all)")
    p.add_argument("--still-control", action="store_true", help="also judge a mouth that never moves (the first "
                   "face frame's, carried by the eyes and nose, through the same mask): the judges' floor for leak")
    p.add_argument("--generator", default="generator")
    p.add_argument("--expert", default="expert")
    p.add_argument("--out", required=True)
    p.add_argument("--cache-dir")
    p.add_argument("--aperture-python", help="a Python with mediapipe 0.10.14: also judge sync, leak and closures "
                   "by MediaPipe's lip aperture")
    p.set_defaults(run=entry("training.compare_mouths", "compare"))

    p = sub.add_parser("real-bilabials", help="how far real speakers close their lips on p/b/m: the bilabial ratio "
                       "of the prepared GRID clips (their words are in their names), phones aligned by pocketsphinx")
    p.add_argument("--data", required=True, help="prepared dataset root, measured by training/lip_shape.py")
    p.add_argument("--aligner-python", required=True, help="a Python with pocketsphinx 5 (pip install pocketsphinx)")
    p.add_argument("--av-offsets", help="JSON of per-clip AV offsets (python main.py offsets)")
    p.set_defaults(run=entry("training.articulation", "print_real_bilabials"))

    p = sub.add_parser("bundle", help="install a trained checkpoint as a bundled default model")
    p.add_argument("checkpoint", help="our .safetensors checkpoint (with its .json sidecar)")
    p.add_argument("--name", required=True, help="bundled name: generator or expert")
    p.add_argument("--tag", type=file_tag, help="a version in the file name (e.g. s8), so a file name and the scorer "
                   "names stored with scores tell this model from the one it replaces")
    p.set_defaults(run=entry("training.bundle", "bundle"))
