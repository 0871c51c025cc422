"""`python main.py render` on bad and awkward input, run in-process through `main.main`.

Every call goes through `Cli.render`, which also checks what must hold whatever the
outcome: the input files are byte-for-byte unchanged, nothing new appears beside them,
and the output folder holds the finished output and nothing else (on failure: nothing at
all, not even a temp file). Renders use a tiny random-weight generator (width 0.25).
Real-face cases use 1-2 s excerpts of ../shared/data and skip without it.
"""
import hashlib
import json
import os
import shutil
import wave
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
import torch

import main
from core.models.syncnet import SyncNet, SyncNetDims
from core.models.wav2lip import GeneratorDims, Wav2Lip
from core.video import VideoSource
from core.weights import save_weights
from tests.conftest import ffmpeg

# --------------------------------------------------------------------------- media, built once per session


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    return tmp_path_factory.mktemp("cli_media")


def once(path: Path, make) -> Path:
    """Build `path` with `make(path)` the first time it is asked for."""
    if not path.exists():
        make(path)
    return path


@pytest.fixture(scope="session")
def checkpoint(media):
    torch.manual_seed(0)
    path = media / "tiny_generator.safetensors"
    save_weights(Wav2Lip(GeneratorDims(width=0.25)), path)
    return path


@pytest.fixture(scope="session")
def colour_clip(media):
    """1 s of a flat colour, 224x224, 25 fps, no audio: a valid video with no face."""
    return once(media / "colour.mp4", lambda p: ffmpeg(
        "-f", "lavfi", "-i", "color=c=0x3060a0:s=224x224:r=25:d=1", "-c:v", "libx264", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p", p))


@pytest.fixture(scope="session")
def voice_wav(media):
    """1.5 s of a modulated tone: a dub that is neither silent nor empty (no data needed)."""
    return once(media / "voice.wav", lambda p: ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=220:sample_rate=16000:duration=1.5", "-af", "tremolo=f=4:d=0.9", p))


@pytest.fixture
def face_clip(data_dir, media):
    """1.2 s (30 frames) of a real talking face with its own audio, 224x224 25 fps."""
    return once(media / "face.mp4", lambda p: ffmpeg(
        "-i", data_dir / "pcavs" / "00002.mp4", "-t", "1.2", "-c:v", "libx264", "-preset", "ultrafast",
        "-c:a", "aac", p))


@pytest.fixture
def face_dub(data_dir, media):
    """1.2 s of real speech (the clip's own voice) as a WAV."""
    return once(media / "face_dub.wav", lambda p: ffmpeg(
        "-i", data_dir / "pcavs" / "00002.mp4", "-t", "1.2", "-vn", "-c:a", "pcm_s16le", p))


@pytest.fixture
def long_dub(data_dir):
    return data_dir / "dubs" / "vox_id01849.wav"  # 4.4 s of speech, read-only, used in place


# --------------------------------------------------------------------------- running the CLI


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def listing(folder: Path) -> set:
    return set(os.listdir(folder)) if folder.is_dir() else set()


@dataclass
class Result:
    code: int
    out: str
    err: str
    output: Path

    def error_line(self) -> str:
        lines = self.err.strip().splitlines()
        assert lines, "nothing on stderr"
        return lines[-1]


class Cli:
    def __init__(self, capsys, checkpoint, tmp_path):
        self.capsys = capsys
        self.checkpoint = checkpoint
        self.cache = tmp_path / "cache"  # detection cache
        self.out_dir = tmp_path / "out"
        self.cache.mkdir()
        self.out_dir.mkdir()

    def render(self, video, dub, output=None, *extra, checkpoint=None, fast=True) -> Result:
        output = Path(output) if output is not None else self.out_dir / "out.mp4"
        inputs = [Path(p) for p in (video, dub) if Path(p).is_file()]
        hashes = {p: sha256(p) for p in inputs}
        folders = {p.parent for p in inputs} | {output.parent}
        before = {folder: listing(folder) for folder in folders}
        argv = ["render", str(video), str(dub), "-o", str(output), "--checkpoint", str(checkpoint or self.checkpoint),
                "--cache-dir", str(self.cache), "-q", *(["--preset", "ultrafast"] if fast else []), *map(str, extra)]
        code = main.main(argv)
        out, err = self.capsys.readouterr()

        assert {p: sha256(p) for p in inputs} == hashes, "an input file was changed"
        wrote = code == 0 and output not in inputs
        for folder, names in before.items():
            expected = names | ({output.name} if wrote and folder == output.parent else set())
            assert listing(folder) == expected, f"files left behind in {folder}: {listing(folder) ^ expected}"
        if wrote:
            assert output.is_file() and output.stat().st_size > 0
        return Result(code, out, err, output)


@pytest.fixture
def cli(capsys, checkpoint, tmp_path):
    return Cli(capsys, checkpoint, tmp_path)


def assert_refused(result: Result, path, *words):
    """Exit 1 with one `error:` line naming `path` and containing `words`; no output written."""
    assert result.code == 1, (result.code, result.err)
    line = result.error_line()
    assert line.startswith("error: ") and str(path) in line, line
    for word in words:
        assert word in line, line


def no_detection_ran(cli: Cli) -> bool:
    """The detection cache is written after each full detection pass."""
    return not any(cli.cache.iterdir())


# --------------------------------------------------------------------------- reading results


def frames_of(path) -> list:
    with VideoSource(path) as video:
        return [frame for _, frame in video.frames()]


def stream_seconds(path) -> dict:
    with av.open(str(path)) as container:
        return {s.type: float(s.duration * s.time_base) for s in container.streams if s.duration}


# --------------------------------------------------------------------------- unreadable or unsuitable inputs


def test_missing_video(cli, voice_wav, tmp_path):
    missing = tmp_path / "nope.mp4"
    assert_refused(cli.render(missing, voice_wav), missing, "file not found")


def test_missing_dub(cli, colour_clip, tmp_path):
    missing = tmp_path / "nope.wav"
    assert_refused(cli.render(colour_clip, missing), missing, "file not found")


def test_text_file_named_mp4(cli, voice_wav, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 50)
    assert_refused(cli.render(fake, voice_wav), fake, "not a media file")


def test_truncated_mp4(cli, voice_wav, tmp_path):
    whole = tmp_path / "whole.mp4"  # ffmpeg's default MP4 has its index (moov) at the end
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", whole)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert_refused(cli.render(cut, voice_wav), cut, "truncated")


def test_video_without_audio_as_dub(cli, colour_clip):
    assert_refused(cli.render(colour_clip, colour_clip, cli.out_dir / "out.mp4"), colour_clip, "no audio stream")


def test_audio_only_file_as_video(cli, voice_wav):
    assert_refused(cli.render(voice_wav, voice_wav), voice_wav, "no video stream")


def write_wav(path, samples: np.ndarray, rate=16000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


def test_zero_length_dub(cli, colour_clip, tmp_path):
    empty = write_wav(tmp_path / "empty.wav", np.zeros(0))
    assert_refused(cli.render(colour_clip, empty), empty, "empty")


def test_silent_dub_is_refused(cli, colour_clip, tmp_path):
    silent = write_wav(tmp_path / "silent.wav", np.zeros(24000))
    assert_refused(cli.render(colour_clip, silent), silent, "silent")


def test_no_face_in_any_frame(cli, colour_clip, voice_wav):
    assert_refused(cli.render(colour_clip, voice_wav), colour_clip, "no face")


# --------------------------------------------------------------------------- output paths


def test_output_parent_is_a_file_fails_before_any_work(cli, colour_clip, voice_wav, tmp_path):
    blocker = tmp_path / "report.txt"
    blocker.write_text("a file, not a folder")
    result = cli.render(colour_clip, voice_wav, blocker / "out.mp4")
    # the colour clip has no face: reaching detection would have said so instead
    assert_refused(result, blocker / "out.mp4", "cannot write", "not a folder")
    assert no_detection_ran(cli)
    assert blocker.read_text() == "a file, not a folder"


def test_output_folder_missing(cli, colour_clip, voice_wav, tmp_path):
    result = cli.render(colour_clip, voice_wav, tmp_path / "no such folder" / "out.mp4")
    assert_refused(result, tmp_path / "no such folder" / "out.mp4", "does not exist")
    assert not (tmp_path / "no such folder").exists() and no_detection_ran(cli)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permission bits")
def test_read_only_output_folder(cli, colour_clip, voice_wav, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = cli.render(colour_clip, voice_wav, locked / "out.mp4")
        assert_refused(result, locked / "out.mp4", "cannot write")
        assert no_detection_ran(cli) and not any(locked.iterdir())
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("which", ["video", "dub"])
def test_output_equal_to_an_input_is_refused(cli, colour_clip, voice_wav, tmp_path, which):
    video, dub = tmp_path / "in.mp4", tmp_path / "in.wav"
    shutil.copyfile(colour_clip, video)
    shutil.copyfile(voice_wav, dub)
    target = video if which == "video" else dub
    (tmp_path / "sub").mkdir()
    result = cli.render(video, dub, tmp_path / "sub" / ".." / target.name)  # another spelling of the same path
    assert_refused(result, target.name, "refusing to write over an input")
    assert no_detection_ran(cli)


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_of_another_model(cli, colour_clip, voice_wav, tmp_path):
    syncnet = tmp_path / "expert.safetensors"
    save_weights(SyncNet(SyncNetDims(width=0.25)), syncnet)
    result = cli.render(colour_clip, voice_wav, None, checkpoint=syncnet)
    assert_refused(result, syncnet, "syncnet", "wav2lip")
    assert no_detection_ran(cli)  # refused before minutes of face detection, not after


def test_checkpoint_of_another_width(cli, checkpoint, colour_clip, voice_wav, tmp_path):
    wrong = tmp_path / "generator.safetensors"
    shutil.copyfile(checkpoint, wrong)
    sidecar = json.loads(checkpoint.with_suffix(".json").read_text())
    sidecar["dims"]["width"] = 0.5
    wrong.with_suffix(".json").write_text(json.dumps(sidecar))
    result = cli.render(colour_clip, voice_wav, None, checkpoint=wrong)
    assert_refused(result, wrong, "width 0.5")
    assert no_detection_ran(cli)


# --------------------------------------------------------------------------- real faces


@pytest.mark.data
def test_renders_a_real_clip_with_defaults(cli, face_clip, long_dub):
    result = cli.render(face_clip, long_dub, None, fast=False)
    assert result.code == 0, result.err
    assert "30 frames, 30 lip-synced" in result.out
    with VideoSource(result.output) as out:
        assert (out.width, out.height, out.frame_count) == (224, 224, 30)
    assert stream_seconds(result.output)["audio"] == pytest.approx(1.2, abs=0.03)


@pytest.mark.data
def test_truncated_but_indexed_mp4_renders_what_decodes(cli, face_clip, long_dub, tmp_path):
    indexed = tmp_path / "indexed.mp4"  # index first (+faststart), then cut: the index promises more frames
    ffmpeg("-i", face_clip, "-c", "copy", "-movflags", "+faststart", indexed)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(indexed.read_bytes()[: indexed.stat().st_size * 2 // 3])
    result = cli.render(cut, long_dub)
    assert result.code == 0, result.err
    with VideoSource(result.output) as out:
        assert 5 <= out.frame_count < 30


@pytest.mark.data
def test_silent_dub_renders_with_allow_silent(cli, face_clip, tmp_path):
    silent = write_wav(tmp_path / "silent.wav", np.zeros(16000))
    result = cli.render(face_clip, silent, None, "--allow-silent")
    assert result.code == 0, result.err
    with VideoSource(result.output) as out:
        assert out.frame_count == 25  # cut to the 1 s dub


@pytest.mark.data
def test_dub_with_nan_and_inf_samples_renders(cli, face_clip, tmp_path):
    import soundfile

    rate = 16000
    t = np.arange(int(1.2 * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    samples[1000:1200] = np.nan
    samples[5000], samples[9000] = np.inf, -np.inf
    dub = tmp_path / "tts.wav"
    soundfile.write(dub, samples, rate, subtype="FLOAT")
    result = cli.render(face_clip, dub)
    assert result.code == 0, result.err
    assert stream_seconds(result.output)["audio"] == pytest.approx(1.2, abs=0.03)
    with av.open(str(result.output)) as container:
        decoded = np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)])
    assert np.isfinite(decoded).all() and np.abs(decoded).max() > 0.05  # the tone survived, the NaNs did not


@pytest.mark.data
def test_faces_in_only_some_frames(cli, data_dir, long_dub, media, tmp_path):
    # 1 s face, 1 s flat colour, 0.6 s face: frames 25-49 have no face
    spliced = once(media / "partial.mp4", lambda p: ffmpeg(
        "-i", data_dir / "pcavs" / "00002.mp4", "-f", "lavfi", "-i", "color=c=0x3060a0:s=224x224:r=25:d=1",
        "-filter_complex", "[0:v]trim=0:1,setpts=PTS-STARTPTS[a];[0:v]trim=2:2.6,setpts=PTS-STARTPTS[b];"
                           "[a][1:v][b]concat=n=3:v=1:a=0,format=yuv420p[v]",
        "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", p))
    result = cli.render(spliced, long_dub, None, "--crf", "0")
    assert result.code == 0, result.err
    assert "65 frames, 40 lip-synced" in result.out
    assert "no face in 25 frames" in result.out and "25-49" in result.out

    reference = frames_of(spliced)  # the renderer passes the source's own YUV through
    rendered = frames_of(result.output)
    assert len(rendered) == len(reference) == 65
    unchanged = [np.array_equal(a, b) for a, b in zip(rendered, reference)]
    assert all(unchanged[25:50])  # passed through bit-exact (lossless output)
    assert not any(unchanged[:25]) and not any(unchanged[50:])


@pytest.mark.data
def test_two_faces_and_choosing_the_other(cli, data_dir, long_dub, media, tmp_path):
    side_by_side = once(media / "two_faces.mp4", lambda p: ffmpeg(
        "-i", data_dir / "pcavs" / "00002.mp4", "-i", data_dir / "pcavs" / "00010.mp4",
        "-filter_complex", "[0:v]trim=0:1,setpts=PTS-STARTPTS[a];[1:v]trim=0:1,setpts=PTS-STARTPTS[b];"
                           "[a][b]hstack,format=yuv420p[v]",
        "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", p))
    reference = frames_of(side_by_side)

    def changed_halves(result):
        assert result.code == 0, result.err
        rendered = frames_of(result.output)
        assert len(rendered) == len(reference) == 25
        left = [not np.array_equal(a[:, :224], b[:, :224]) for a, b in zip(rendered, reference)]
        right = [not np.array_equal(a[:, 224:], b[:, 224:]) for a, b in zip(rendered, reference)]
        return ("left" if all(left) else "none" if not any(left) else "some") + "/" + \
               ("right" if all(right) else "none" if not any(right) else "some")

    first = cli.render(side_by_side, long_dub, cli.out_dir / "first.mp4", "--crf", "0")
    assert "2 faces" in first.out and "--face" in first.out
    other = cli.render(side_by_side, long_dub, cli.out_dir / "other.mp4", "--crf", "0", "--face", "1")
    assert "used face 1" in other.out
    assert {changed_halves(first), changed_halves(other)} == {"left/none", "none/right"}


@pytest.mark.data
@pytest.mark.slow
def test_4k_frames(cli, data_dir, long_dub, media):
    uhd = once(media / "uhd.mp4", lambda p: ffmpeg(
        "-i", data_dir / "pcavs" / "00002.mp4", "-frames:v", "5",
        "-vf", "scale=2160:2160,pad=3840:2160:(ow-iw)/2:0,format=yuv420p", "-an",
        "-c:v", "libx264", "-preset", "ultrafast", p))
    result = cli.render(uhd, long_dub)
    assert result.code == 0, result.err
    assert "5 frames, 5 lip-synced" in result.out
    with VideoSource(result.output) as out:
        assert (out.width, out.height, out.frame_count) == (3840, 2160, 5)


@pytest.mark.data
def test_rotated_phone_video_comes_out_upright(cli, data_dir, media):
    grid = data_dir / "grid" / "bbaf2n.mpg"  # 360x288, the speaker upright; its own audio is the dub
    # a phone stores the picture sideways and a display matrix saying "turn 90 degrees to show"
    sideways = once(media / "sideways.mp4", lambda p: ffmpeg(
        "-i", grid, "-t", "1", "-vf", "transpose=clock", "-an", "-c:v", "libx264", "-preset", "ultrafast", p))
    phone = once(media / "phone.mp4", lambda p: ffmpeg("-display_rotation", "90", "-i", sideways, "-c", "copy", p))
    with VideoSource(phone) as source:
        assert (source.width, source.height, source.rotation) == (360, 288, 90)
    result = cli.render(phone, grid)
    assert result.code == 0, result.err
    assert "25 frames, 25 lip-synced" in result.out
    with VideoSource(result.output) as out, VideoSource(grid) as upright:
        assert (out.width, out.height, out.rotation) == (360, 288, 0)  # swapped from the stored 288x360
        top = slice(0, 120)  # above the mouth: untouched by the generator
        difference = np.abs(out.read(0)[top].astype(int) - upright.read(0)[top]).mean()
        assert difference < 6, difference  # same picture, same way up


@pytest.mark.data
def test_non_ascii_and_space_paths(cli, face_clip, face_dub, tmp_path):
    video = tmp_path / "vidéo à tester" / "clip ünï 1.mp4"
    dub = tmp_path / "dub ß" / "voix ñ 日本.wav"
    for src, dst in ((face_clip, video), (face_dub, dub)):
        dst.parent.mkdir()
        shutil.copyfile(src, dst)
    output = tmp_path / "sortie é" / "résultat 1.mp4"
    output.parent.mkdir()
    result = cli.render(video, dub, output)
    assert result.code == 0, result.err
    assert str(output) in result.out
    with VideoSource(output) as out:
        assert out.frame_count == 30


@pytest.mark.data
def test_still_image_renders_as_long_as_the_dub(cli, face_clip, face_dub, tmp_path):
    import cv2

    still = tmp_path / "portrait.png"
    with VideoSource(face_clip) as video:
        assert cv2.imwrite(str(still), video.read(10))
    result = cli.render(still, face_dub)
    assert result.code == 0, result.err
    seconds = stream_seconds(face_dub)["audio"]
    assert seconds == pytest.approx(1.2, abs=0.01)
    with VideoSource(result.output) as out:
        assert (out.width, out.height) == (224, 224)
        assert out.frame_count == round(seconds * 25) == 30
    assert stream_seconds(result.output)["audio"] == pytest.approx(seconds, abs=0.03)


# --------------------------------------------------------------------------- the parser


def numeric_options(parser):
    """(command, option, type) of every option that takes a number, walking the subcommands."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                for option in sub._actions:
                    if option.option_strings and option.type is not None:
                        yield name, option.option_strings[-1], option.type


def test_every_numeric_option_is_checked_by_the_parser():
    bare = [(name, option) for name, option, kind in numeric_options(main.build_parser()) if kind in (int, float)]
    assert not bare, f"options that take any number, e.g. a batch size of 0 or a NaN: {bare}"


BAD_VALUES = [
    ("render V D -o o.mp4", "--batch-size", "0"), ("render V D -o o.mp4", "--batch-size", "-4"),
    ("render V D -o o.mp4", "--crf", "52"), ("render V D -o o.mp4", "--feather", "-0.1"),
    ("render V D -o o.mp4", "--smooth", "-1"), ("render V D -o o.mp4", "--dub-offset", "nan"),
    ("render V D -o o.mp4", "--start-frame", "-1"), ("render V D -o o.mp4", "--from", "-2"),
    ("score V", "--face", "-1"), ("score V", "--threshold", "inf"),
    ("prepare S O", "--workers", "0"), ("prepare S O", "--val-fraction", "1.5"),
    ("train-expert --data d --run r", "--batch-size", "0"), ("train-expert --data d --run r", "--lr", "0"),
    ("train-expert --data d --run r", "--mel-warp", "1"), ("train-generator --data d --run r", "--steps", "0"),
    ("train-generator --data d --run r", "--sync-weight", "-1"), ("offsets --data d --expert e", "--max-offset", "0"),
    ("adapt V", "--minutes", "-1"), ("adapt V", "--batch-size", "0"), ("evaluate --data d --out o", "--max-clips", "-1"),
]


@pytest.mark.parametrize("command,option,value", BAD_VALUES)
def test_bad_numbers_are_usage_errors_naming_the_option(capsys, command, option, value):
    words = command.split()
    assert main.main([*words, f"{option}={value}"]) == 2  # before: --batch-size 0 hung at 100 % CPU
    assert option in capsys.readouterr().err


def test_good_numbers_still_parse():
    args = main.build_parser().parse_args(
        ["render", "v.mp4", "d.wav", "-o", "o.mp4", "--batch-size", "1", "--crf", "0", "--feather", "0",
         "--dub-offset", "-1.5", "--from", "1:02.5", "--to", "01:03", "--face", "0", "--smooth", "0"])
    assert (args.batch_size, args.crf, args.feather, args.dub_offset, args.from_time, args.to_time) == \
           (1, 0, 0.0, -1.5, 62.5, 63.0)
    sync = main.build_parser().parse_args(["train-generator", "--data", "d", "--run", "r", "--sync-switch", "inf"])
    assert sync.sync_switch == float("inf")  # "inf: from the first step" stays allowed where it means something


def test_parser_imports_neither_torch_nor_the_trainers_nor_the_media_libraries():
    import subprocess
    import sys

    code = ("import sys, main\n"
            "main.build_parser()\n"
            "for argv in (['--help'], ['--version'], ['train-expert', '--help']):\n"
            "    assert main.main(argv) == 0\n"
            "heavy = [m for m in ('torch', 'training.train_expert', 'training.adapt', 'cv2', 'av')\n"
            "         if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(main.__file__).parent)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
    assert "--batch-size" in done.stdout and "--objective" in done.stdout  # train-expert --help lists its options
    assert "lipsmith " in done.stdout  # --version


def test_engine_value_problems_are_bad_input_not_bad_usage(cli, colour_clip, voice_wav):
    result = cli.render(colour_clip, voice_wav, None, "--start-frame", "100", "--end-frame", "120")
    assert_refused(result, colour_clip, "frame range")  # exit 1 naming the file (was exit 2, "bad usage")
    assert no_detection_ran(cli)


# --------------------------------------------------------------------------- what is written, and its messages


@pytest.mark.parametrize("name", ["out.wav", "out.png", "out"])
def test_output_must_be_a_video_container(cli, colour_clip, voice_wav, name):
    output = cli.out_dir / name
    result = cli.render(colour_clip, voice_wav, output)  # before: an MP4 named out.wav
    assert_refused(result, output, ".mp4")
    assert no_detection_ran(cli)


@pytest.mark.parametrize("offset", ["100", "-100"])
def test_dub_offset_without_overlap_is_refused(cli, colour_clip, voice_wav, offset):
    result = cli.render(colour_clip, voice_wav, None, "--dub-offset", offset)
    assert_refused(result, voice_wav, "overlap")  # before: a meaningless file, exit 0
    assert no_detection_ran(cli)


@pytest.mark.data
def test_dub_offset_leaving_most_frames_without_dub_warns(cli, face_clip, long_dub):
    result = cli.render(face_clip, long_dub, None, "--dub-offset", "0.8", "--no-score")
    assert result.code == 0, result.err
    assert "warning:" in result.err and "no dub" in result.err and "67%" in result.err


@pytest.mark.data
def test_a_result_too_short_to_score_is_a_note(cli, face_clip, face_dub):
    result = cli.render(face_clip, face_dub, None, "--end-frame", "1")
    assert result.code == 0, result.err  # before: exit 2 "need at least 5 frames to score", no file named
    assert "1 frames" in result.out
    assert "not scored" in result.out and str(result.output) in result.out


@pytest.mark.data
def test_ctrl_c_while_scoring_says_the_output_is_complete(capsys, checkpoint, face_clip, face_dub, tmp_path,
                                                          monkeypatch):
    import core.sync

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(core.sync, "score_video", interrupted)
    output = tmp_path / "out.mp4"
    code = main.main(["render", str(face_clip), str(face_dub), "-o", str(output), "--checkpoint", str(checkpoint),
                      "--cache-dir", str(tmp_path / "cache"), "-q", "--preset", "ultrafast"])
    err = capsys.readouterr().err
    assert code == 130
    assert output.is_file() and "nothing was written" not in err  # before: "cancelled; nothing was written"
    assert f"{output} was written" in err


@pytest.fixture
def faceless_clip_with_audio(media, colour_clip, voice_wav):
    return once(media / "faceless_talk.mp4", lambda p: ffmpeg(
        "-i", colour_clip, "-i", voice_wav, "-c:v", "copy", "-c:a", "aac", "-shortest", p))


def test_score_without_any_face_fails_clearly(capsys, faceless_clip_with_audio, tmp_path):
    code = main.main(["score", str(faceless_clip_with_audio), "--json", "--cache-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 1, (out, err)  # before: exit 0 and "lse_d": NaN
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and str(faceless_clip_with_audio) in line and "no face" in line


def test_score_json_is_strict_json_when_some_values_are_missing(capsys, monkeypatch, tmp_path):
    import core.sync
    from core.sync import SyncScores

    partial = SyncScores(lse_d=float("nan"), lse_c=float("nan"), offset_frames=0, per_offset=np.zeros(31),
                         frame_conf=np.full(10, np.nan), scorer="test", windows=2, extra={"r": float("inf")})
    monkeypatch.setattr(core.sync, "load_scorer", lambda *a, **k: None)
    monkeypatch.setattr(core.sync, "score_video", lambda *a, **k: partial)

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    assert main.main(["score", str(tmp_path / "v.mp4"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert result["lse_d"] is None and result["lse_c"] is None and result["windows"] == 2


def test_progress_is_one_bar_per_stage_and_silent_when_quiet(capsys):
    progress = main.ProgressBar(quiet=False)
    for done in range(11):
        progress(done, 10, "detect")
    for done in range(6):
        progress(done, 5, "render")
    progress.close()
    err = capsys.readouterr().err
    assert "detect" in err and "10/10" in err and "render" in err and "5/5" in err and "frames/s" in err
    quiet = main.ProgressBar(quiet=True)
    quiet(3, 10, "render")
    quiet.close()
    assert capsys.readouterr().err == ""


def test_score_refuses_a_clip_too_short_before_detecting_faces(capsys, media, voice_wav, tmp_path):
    short = once(media / "three_frames.mp4", lambda p: ffmpeg(
        "-f", "lavfi", "-i", "color=c=0x3060a0:s=224x224:r=25:d=0.12", "-i", voice_wav, "-c:v", "libx264",
        "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", p))
    cache = tmp_path / "cache"
    code = main.main(["score", str(short), "--cache-dir", str(cache)])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and line.startswith(f"error: {short}: ") and "too short to score" in line, (code, line)
    assert not cache.exists() or not any(cache.iterdir())  # refused before minutes of detection


def test_a_dataset_without_usable_clips_is_bad_input_naming_the_filelist(capsys, tmp_path):
    data = tmp_path / "data"
    (data / "filelists").mkdir(parents=True)
    for name in ("train", "val"):
        (data / "filelists" / f"{name}.txt").write_text("")
    (data / "manifest.json").write_text('{"clips": {}}')
    code = main.main(["train-expert", "--data", str(data), "--run", str(tmp_path / "run"), "--steps", "1",
                      "--workers", "0"])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1, (code, line)  # before: exit 2, "bad usage"
    assert line.startswith(f"error: {data / 'filelists' / 'train.txt'}: ") and "no usable clips" in line, line


# --------------------------------------------------------------------------- SMPTE timecode in --from / --to


@pytest.fixture(scope="session")
def timecoded_clips(media):
    """2 s at 25 fps starting at 01:00:00:00, and 3 s at 29.97 (drop-frame) starting at 00:00:59;00."""
    return (once(media / "tc25.mov", lambda p: ffmpeg(
                "-f", "lavfi", "-i", "color=c=gray:s=64x48:r=25:d=2", "-c:v", "libx264", "-preset", "ultrafast",
                "-timecode", "01:00:00:00", p)),
            once(media / "tc2997.mp4", lambda p: ffmpeg(
                "-f", "lavfi", "-i", "color=c=gray:s=64x48:r=30000/1001:d=3", "-c:v", "libx264", "-preset",
                "ultrafast", "-timecode", "00:00:59;00", p)))


@pytest.fixture
def planned_range(monkeypatch):
    """The render's [start, end) frames, without rendering: the Renderer stops once it has its options."""
    import core.render
    from core.errors import MediaError

    seen = {}

    def renderer(video, dub, options, **kwargs):
        seen["range"] = (options.start_frame, options.end_frame)
        raise MediaError(video, "stopped by the test")

    monkeypatch.setattr(core.render, "Renderer", renderer)
    return seen


@pytest.mark.parametrize("clip,from_,to,expected", [
    (0, "01:00:00:10", "01:00:01:05", (10, 30)),  # counted from the source's start timecode
    (0, "0.4", "0:01.2", (10, 30)),  # seconds as before
    (1, "00:01:00;02", "00:01:01;00", (30, 58)),  # drop-frame: 00:01:00;00 and ;01 are not labels
])
def test_from_and_to_take_the_videos_timecode(capsys, tmp_path, timecoded_clips, voice_wav, planned_range, clip,
                                                from_, to, expected):
    code = main.main(["render", str(timecoded_clips[clip]), str(voice_wav), "-o", str(tmp_path / "o.mp4"),
                      "--from", from_, "--to", to])
    assert code == 1 and "stopped by the test" in capsys.readouterr().err
    assert planned_range["range"] == expected


@pytest.mark.parametrize("clip,from_,words", [
    (0, "00:59:59:24", "before the video's first frame, 01:00:00:00"),
    (0, "01:00:00:25", "out of range"),  # 25 fps has frames 00-24
    (1, "00:01:00;01", "does not exist in drop-frame"),
])
def test_a_timecode_the_video_has_not_is_refused_naming_it(capsys, tmp_path, timecoded_clips, voice_wav,
                                                            planned_range, clip, from_, words):
    video = timecoded_clips[clip]
    code = main.main(["render", str(video), str(voice_wav), "-o", str(tmp_path / "o.mp4"), "--from", from_])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and line.startswith(f"error: {video}: --from/--to: ") and words in line and from_ in line, line
    assert "range" not in planned_range  # refused before the render started


def test_timecodes_parse_as_written_and_seconds_forms_stay_seconds():
    args = main.build_parser().parse_args(["render", "v.mp4", "d.wav", "-o", "o.mp4", "--from", "01:00:00;10",
                                           "--to", "00:01:02.5"])
    assert (args.from_time, args.to_time) == ("01:00:00;10", 62.5)


def test_export_from_and_to_take_the_projects_timecode(capsys, tmp_path, timecoded_clips, voice_wav, monkeypatch):
    import core.export
    from core.project import EditError, MediaFacts, Project

    video = timecoded_clips[0]
    project = Project.new(video, MediaFacts.probe_video(video), path=tmp_path / "tc.lipsmith", dub_path=voice_wav,
                          dub_facts=MediaFacts.probe_file(voice_wav, duration=1.5))
    project.save()
    seen = []

    def export_request(project, output, *options):
        seen.append(options[-2:])
        raise EditError("stopped by the test")

    monkeypatch.setattr(core.export, "export_request", export_request)
    argv = ["export", str(project.path), "-o", str(tmp_path / "o.mp4"), "-q"]
    assert main.main([*argv, "--from", "01:00:00:05", "--to", "01:00:01:00"]) == 1
    assert main.main([*argv, "--from", "0.2", "--to", "1"]) == 1
    assert seen == [(5, 25), (5, 25)]
    assert main.main([*argv, "--from", "00:00:00:05"]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: {project.path}: --from/--to: ") and "before the video's first frame" in line, line
    assert len(seen) == 2  # refused before the export was asked for


def test_project_new_detects_segments_and_its_timeline_goes_to_another_editor_and_back(capsys, tmp_path,
                                                                                      timecoded_clips, voice_wav):
    import opentimelineio as otio

    from core.project import Project

    video = timecoded_clips[0]  # 2 s at 25 fps from 01:00:00:00; the dub is 1.5 s
    assert main.main(["project", "new", str(video), str(voice_wav), "-o", str(tmp_path / "scene"), "-q"]) == 0
    path = tmp_path / "scene.lipsmith"
    assert capsys.readouterr().out.startswith(f"wrote {path}: ")
    project = Project.load(path)
    assert project.video.facts.start_timecode == "01:00:00:00" and project.settings["length_policy"] == "pad"
    spans = [(s.start, s.end) for s in project.segments]
    assert spans[0][0] == 0 and spans[-1][1] == 50 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert main.main(["project", "new", str(video), str(voice_wav), "-o", str(path), "-q"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {path}: exists already: open it in the editor, or choose " \
                                              "another name"

    assert main.main(["export-timeline", str(path), "-o", str(tmp_path / "scene.txt")]) == 1
    assert "unknown timeline format .txt" in capsys.readouterr().err and not (tmp_path / "scene.txt").exists()
    timeline_path = tmp_path / "scene.otio"
    assert main.main(["export-timeline", str(path), "-o", str(timeline_path)]) == 0
    timeline = otio.adapters.read_from_file(str(timeline_path))
    assert otio.opentime.to_timecode(timeline.global_start_time, 25) == "01:00:00:00"
    assert [t.kind for t in timeline.tracks] == ["Video", "Audio"]

    # the editor across the room marks a line; it comes back as a segment
    timeline.tracks.markers.append(otio.schema.Marker(name="Line 1", marked_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(5, 25), otio.opentime.RationalTime(10, 25))))
    otio.adapters.write_to_file(timeline, str(timeline_path))
    capsys.readouterr()
    assert main.main(["import-timeline", str(path), str(timeline_path)]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: 1 segments added, 0 renamed")
    line = next(s for s in Project.load(path).segments if s.name == "Line 1")
    assert (line.start, line.end, line.kind) == (5, 15, "speech")
