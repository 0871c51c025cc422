"""Preprocessing: a folder of talking-face videos -> the LRS2-style training layout.

    <out>/<source>/<clip>/{0.jpg, 1.jpg, ..., audio.wav, done}
    <out>/manifest.json            clip -> frames, seconds, source video, SHA-256 of the audio samples, speaker
    <out>/skipped.txt              videos not used, one per line: key <TAB> reason <TAB> path
    <out>/filelists/{train,val}.txt  "<source>/<clip>" lines, split by speaker

<source> is the video's parent folder name and <clip> its stem. Every clip is resampled to
25 fps: output frame k shows the source frame on screen at t = k / 25 (true timestamps, so
30 fps and variable-rate files come out right), decoded sequentially. The face crop is the
engine's own (`track_video` with RetinaFace, smoothing window 5, pads (0, 10, 0, 0)), the
same box the renderer cuts at inference; it is saved at its natural size, the long side
capped at 192 px (the datasets resize to 96 x 96 when loading, as the reference does).
audio.wav is the clip's audio as 16 kHz mono float32 (exactly what `core.audio.load_audio`
decodes; PCM-16 would clip the loud GRID tracks), aligned to the first video frame and
exactly frames x 640 samples long (silence pads at most the last frame).

A clip is split where there is no face and at scene cuts (a 5-frame window must never span
two shots: the reference window of the generator could show another person); every
remaining run of >= 1 s becomes a clip, named `<clip>` when there is one run and
`<clip>_part1`, `<clip>_part2`, ... when there are several.

Resumable: each clip is written to a temp folder and renamed when complete (with a `done`
marker inside), and a per-video record in `<out>/.state/` remembers what a video produced
(or why it was skipped), so a rerun skips finished videos without decoding them. A killed
run leaves only `.tmp-*` folders, removed by the next run.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import fnmatch
import hashlib
import json
import math
import multiprocessing as mp
import os
import random
import re
import shutil
import sys
import time
import uuid
from pathlib import Path

import numpy as np

from core.errors import LipsmithError, MediaError
from core.hparams import HP

VIDEO_SUFFIXES = (".mp4", ".avi", ".mpg", ".mpeg", ".mov", ".mkv", ".webm")
FPS = 25  # training frame rate (HP.fps)
SAMPLES_PER_FRAME = HP.sample_rate // FPS  # 640
PADS = (0, 10, 0, 0)  # top, bottom, left, right: the renderer's default crop
SMOOTH_WINDOW = 5
MAX_SIDE = 192  # long side of a saved crop
JPEG_QUALITY = 95
MIN_SECONDS = 1.0
MIN_FRAMES = int(round(MIN_SECONDS * FPS))
FORMAT_VERSION = 2  # 2: float wav (1 was PCM-16, which clipped GRID peaks of 1.4)

# Same person in several clips of ../shared/data (its README). Patterns are fnmatch'ed
# against "<source>/<clip>" (a `_partN` suffix is ignored). A clip matching none is its own
# speaker: GRID (34 speakers), the VoxCeleb2 crops and the LRS2 samples are all different
# people apart from the ones listed.
SPEAKER_GROUPS = {
    "grid:s1": ("grid_s1/*", "grid/bbaf2n"),
    "grid:swwp2s": ("grid/id2_vcd_swwp2s", "grid/pwij3p"),
    "vox:741400104": ("pcavs/741400104", "pcavs/741400163"),
    "vox:00002": ("pcavs/00002", "pcavs/517600055"),
    "aoc": ("sadtalker/WDA_AlexandriaOcasioCortez_000", "video-retalking/face_3", "hdtf/aoc_flags"),
    "syncnet_fcn": ("syncnet_fcn/*",),  # one recording, re-muxed with shifted audio
    "mead:M030": ("misc/mead_m030", "talks/spectre_MEAD_M030_*"),
    "cremad:1001": ("talks/cremad_1001_*",),
    "styletalk:andrew": ("talks/styletalk_styletalk_andrew_*",),
    "styletalk:feifeili": ("talks/styletalk_styletalk_feifeili_*",),
    "ai4r:korean": ("talks/misc_korean_ai4r_*",),  # two clips of one lip-reading corpus: assumed one speaker
}
# Folders whose clips are named <programme>_<n> (LRS2's layout): one programme is one speaker
# for the split (presenters recur within a programme).
PROGRAMME_FOLDERS = ("lrs2_bbc",)
# Folders whose speakers come from face-identity clusters (training/identity.py): no labels, and
# faces big enough for the descriptor. Not LRS2: its 160-px crops of turned heads made one cluster
# of 44 people that, joined with the programmes, chained 424 of its 447 clips into one "speaker".
IDENTITY_FOLDERS = ("arabic_news",)

# The held-out clips, fixed: the ten validation speakers of the first data set (its seed-0
# split, which every model card so far reports on; the old rule over the old folders gives these
# 13 clips, 1,679 frames, again) and the six talks every mouth comparison
# since session 6 was measured on (`compare-mouths`). `split_by_speaker` adds new speakers
# from every source without one of these.
VALIDATION_CLIPS = (
    "grid/brbk7n", "hdtf/aoc_flags", "lrs2_demo/audio_demo_00002", "lrs2_demo/audio_only_demo_00019",
    "misc/interview", "misc/mead_m030", "pcavs/00002", "pcavs/00373", "pcavs/517600055", "pcavs/620900105",
    "sadtalker/WDA_AlexandriaOcasioCortez_000", "video-retalking/face_1", "video-retalking/face_3",
    "talks/dfrf_french", "talks/dfrf_cnn2_25fps", "talks/styletalk_styletalk_KristiNoem_muxed",
    "talks/styletalk_styletalk_reagan_clip1_muxed", "talks/styletalk_styletalk_andrew_clip_1_muxed",
    "talks/styletalk_styletalk_feifeili_clip1_muxed",
)

# Videos that must not be trained on although they decode fine. test_offset_{5,12} carry
# deliberately shifted audio (the README measures 6.6 and 13.6 frames): in-sync training
# pairs from them would be wrong. test_offset_0 is example.avi again (checked: identical
# frames, audio at lag 0), which would only double-count one clip.
EXCLUDED = {
    "syncnet_fcn/test_offset_5": "excluded: audio deliberately shifted (AV-offset test fixture)",
    "syncnet_fcn/test_offset_12": "excluded: audio deliberately shifted (AV-offset test fixture)",
    "syncnet_fcn/test_offset_0": "excluded: duplicate of syncnet_fcn/example",
}

_PART = re.compile(r"_part\d+$")


class DatasetError(LipsmithError):
    """A dataset folder that cannot be used (no videos, not writable, ...)."""


# --------------------------------------------------------------------------- speakers


def speaker_of(key: str, groups: dict = SPEAKER_GROUPS) -> str:
    """Speaker id of a clip key "<source>/<clip>[_partN]": a known group, the programme of a
    `PROGRAMME_FOLDERS` clip, else the clip itself."""
    base = _PART.sub("", key)
    for speaker, patterns in groups.items():
        if any(fnmatch.fnmatchcase(base, p) for p in patterns):
            return speaker
    folder, _, clip = base.partition("/")
    if folder in PROGRAMME_FOLDERS:
        return f"{folder}/{clip.rsplit('_', 1)[0]}"
    return base


def read_identities(out) -> dict:
    """{clip key: face-identity cluster} from OUT/identities.json (training/identity.py), or {}."""
    found = _read_json(Path(out) / "identities.json")
    return dict(found.get("clips", {})) if found else {}


def merged_speakers(keys, identities: dict) -> dict:
    """{clip key: speaker}: the hand-made groups (`speaker_of`) joined with the face-identity
    clusters of the `IDENTITY_FOLDERS` clips, transitively (two clips of one face are one
    speaker, and so is everyone in a group with either); each speaker is named by the first of
    its `speaker_of` names."""
    parent: dict = {}

    def root(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for key in keys:
        if key in identities and key.split("/")[0] in IDENTITY_FOLDERS:
            a, b = root(speaker_of(key)), root(("identity", identities[key]))
            if a != b:
                parent[b] = a
    names: dict = {}
    for key in keys:
        name = speaker_of(key)
        names[root(name)] = min(names.get(root(name), name), name)
    return {key: names[root(speaker_of(key))] for key in keys}


def split_by_speaker(clip_frames: dict, val_fraction: float = 0.15, seed: int = 0,
                     speaker_fn=speaker_of, pinned=()) -> tuple:
    """Split clips into (train, val) lists of keys with no speaker on both sides.

    Validation holds every speaker of a `pinned` clip (a fixed held-out set, so that new data
    does not reshuffle it) and, from each source folder without a pinned clip, speakers shuffled
    with `seed` and taken whole while that folder's validation frames stay within `val_fraction`
    of its frames (a speaker that would overshoot is passed over, so one big speaker cannot
    swallow the validation set): every new source is validated on its own speakers. A speaker
    belongs to the folder of its first clip; the speakers of folders with only one speaker are
    pooled and split the same way. With val_fraction > 0, a group of at least two speakers gives
    validation at least one and keeps at least one for training.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val fraction must be in [0, 1), not {val_fraction}")
    by_speaker: dict = {}
    for key in sorted(clip_frames):
        by_speaker.setdefault(speaker_fn(key), []).append(key)
    frames = {s: sum(int(clip_frames[k]) for k in keys) for s, keys in by_speaker.items()}
    pinned = set(pinned)  # clip keys; their parts (<clip>_partN) count too
    val = {s for s, keys in by_speaker.items() if any(_PART.sub("", k) in pinned for k in keys)}
    folders: dict = {}
    for s in sorted(by_speaker):
        folders.setdefault(by_speaker[s][0].split("/")[0], []).append(s)
    groups = [g for f, g in sorted(folders.items()) if len(g) >= 2 and not val & set(g)]
    groups.append(sorted(s for g in folders.values() if len(g) == 1 and not val & set(g) for s in g))
    rng = random.Random(seed)
    for group in groups:
        speakers = list(group)
        rng.shuffle(speakers)
        target = val_fraction * sum(frames[s] for s in speakers)
        chosen, taken = [], 0
        if val_fraction > 0 and len(speakers) >= 2:
            for s in speakers:
                if taken + frames[s] <= target:
                    chosen.append(s)
                    taken += frames[s]
            if not chosen:  # every speaker is bigger than the target: take the smallest
                chosen.append(min(speakers, key=lambda s: (frames[s], speakers.index(s))))
            if len(chosen) == len(speakers):
                chosen.pop()
        val.update(chosen)
    train_keys = sorted(k for s, keys in by_speaker.items() if s not in val for k in keys)
    val_keys = sorted(k for s in val for k in by_speaker[s])
    return train_keys, val_keys


# --------------------------------------------------------------------------- finding videos


def find_videos(src) -> list:
    """Video files under `src` (recursive, following folder links once), sorted by path."""
    src = Path(src)
    if not src.exists():
        raise DatasetError(src, "folder not found")
    if not src.is_dir():
        raise DatasetError(src, "is not a folder")
    out, seen = [], set()
    for root, dirs, files in os.walk(src, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.lower().endswith(VIDEO_SUFFIXES) and not name.startswith("."):
                out.append(Path(root) / name)
    if not out:
        raise DatasetError(src, "no video files (" + ", ".join(s[1:] for s in VIDEO_SUFFIXES)
                           + ") in this folder or below")
    return sorted(out)


def clip_keys(videos) -> dict:
    """{video path: "<source>/<clip>"}; a clash (same folder name and stem) gets a suffix."""
    keys, used = {}, set()
    for video in videos:
        base = f"{video.parent.name}/{video.stem}"
        key = base
        if key in used:
            key = f"{base}_{video.suffix.lower().lstrip('.')}"
        n = 2
        while key in used:
            key, n = f"{base}_{n}", n + 1
        used.add(key)
        keys[video] = key
    return keys


# --------------------------------------------------------------------------- one video

_DETECTOR = None  # per process


def _init_worker(detector, threads):
    """Pool initializer (and the in-process setup): one detector per process."""
    global _DETECTOR
    import cv2

    cv2.setNumThreads(1 if threads == 1 else 0)
    if detector is None or isinstance(detector, str):
        from core.faces import get_detector

        _DETECTOR = get_detector(detector or "retinaface", threads=threads)
    else:
        _DETECTOR = detector


def _params(detector_identity) -> dict:
    return {"format": FORMAT_VERSION, "fps": FPS, "pads": list(PADS), "smooth_window": SMOOTH_WINDOW,
            "max_side": MAX_SIDE, "jpeg_quality": JPEG_QUALITY, "min_frames": MIN_FRAMES,
            "sample_rate": HP.sample_rate, "detector": detector_identity}


def _file_id(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _state_path(out: Path, key: str) -> Path:
    return out / ".state" / f"{key}.json"


def _write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_finished(out: Path, key: str, video: Path, params: dict):
    """The stored record of `video` when it was finished with these params (and its clips
    are all still there), else None."""
    state = _read_json(_state_path(out, key))
    if not state or state.get("params") != params or state.get("file") != _file_id(video):
        return None
    source = key.split("/")[0]
    for name in state.get("parts", []):
        if not (out / source / name / "done").is_file():
            return None
    return state


def _stream_starts(path: Path):
    """(video start, audio start) in seconds from the container, 0 where unknown."""
    import av

    try:
        with av.open(str(path)) as c:
            def start(streams):
                s = streams[0] if streams else None
                if s is None or s.start_time is None or s.time_base is None:
                    return 0.0
                return float(s.start_time * s.time_base)
            return start(c.streams.video), start(c.streams.audio)
    except Exception:
        return 0.0, 0.0


def face_runs(has_face: np.ndarray, shot: np.ndarray, min_len: int = MIN_FRAMES) -> list:
    """Half-open (start, stop) runs of consecutive face frames within one shot, >= min_len long."""
    runs, start = [], None
    n = len(has_face)
    for k in range(n + 1):
        ok = k < n and bool(has_face[k])
        if start is not None and (not ok or shot[k] != shot[start]):
            if k - start >= min_len:
                runs.append((start, k))
            start = None
        if ok and start is None:
            start = k
    return runs


def _save_jpeg(path: Path, image) -> None:
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError(f"cannot encode {path}")
    buf.tofile(str(path))  # tofile, not imwrite: imwrite fails on non-ASCII paths on Windows


def _cap(patch):
    import cv2

    h, w = patch.shape[:2]
    if max(h, w) <= MAX_SIDE:
        return patch
    s = MAX_SIDE / max(h, w)
    return cv2.resize(patch, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _remove_tree(path: Path):
    shutil.rmtree(path, ignore_errors=True)


def process_video(video, out, key: str, params: dict, cache_dir=None, detector=None) -> dict:
    """Prepare one video; returns its record ({"status": "ok", "parts": [...]} or
    {"status": "skipped", "reason": ...}) and stores it in `<out>/.state/`."""
    import soundfile as sf

    from core.audio import is_silent, load_audio
    from core.faces import track_video
    from core.video import VideoSource

    video, out = Path(video), Path(out)
    detector = detector or _DETECTOR
    source, clip = key.split("/", 1)
    record = {"key": key, "video": str(video.resolve()), "file": _file_id(video), "params": params}

    def skipped(reason):
        _finish(out, key, dict(record, status="skipped", reason=reason, parts=[]))
        return dict(record, status="skipped", reason=reason, parts=[])

    if key in EXCLUDED:
        return skipped(EXCLUDED[key])
    try:
        vs = VideoSource(video)
    except MediaError as e:
        return skipped(f"unreadable: {e.problem}")
    if vs.is_image:
        return skipped("unreadable: a still image, not a video")
    if not vs.has_audio:
        return skipped("no audio: the file has no audio stream")
    try:
        audio = load_audio(video)
    except MediaError as e:
        return skipped(f"no audio: {e.problem}")
    if is_silent(audio):
        return skipped("no audio: the audio track is silent")

    # Align sample 0 with the first video frame (containers may start the streams apart).
    v_start, a_start = _stream_starts(video)
    lag = int(round((v_start - a_start) * HP.sample_rate))
    if lag > 0:
        audio = audio[lag:]
    elif lag < 0:
        audio = np.concatenate([np.zeros(-lag, np.float32), audio])

    n_video = int(math.floor(vs.duration * FPS + 1e-6))
    n_audio = int(math.ceil(len(audio) / SAMPLES_PER_FRAME))  # at most one frame of padding
    n_out = min(n_video, n_audio)
    if n_out < MIN_FRAMES:
        return skipped(f"too short: {n_out / FPS:.2f} s (needs {MIN_SECONDS:g} s)")
    audio = np.pad(audio, (0, max(0, n_out * SAMPLES_PER_FRAME - len(audio))))[: n_out * SAMPLES_PER_FRAME]

    try:
        track = track_video(vs, detector=detector, cache_dir=cache_dir, face_index=0,
                            smooth_window=SMOOTH_WINDOW)
    except MediaError as e:
        return skipped(f"unreadable: {e.problem}")
    src = vs.frames_at_rate(FPS, n_out)
    has = track.has_face[src]
    shot = np.searchsorted(np.asarray(track.scene_cuts, dtype=np.int64), src, side="right")
    runs = face_runs(has, shot, MIN_FRAMES)
    if not runs:
        if not has.any():
            return skipped("faceless: no face detected")
        return skipped(f"too short: longest run of face frames {_longest(has, shot) / FPS:.2f} s "
                       f"(needs {MIN_SECONDS:g} s)")

    names = [clip] if len(runs) == 1 else [f"{clip}_part{n + 1}" for n in range(len(runs))]
    folder = out / source
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:  # leftovers of a killed run
        for stale in folder.glob(f".tmp-{_glob_escape(name)}.*"):
            _remove_tree(stale)
    tag = uuid.uuid4().hex[:8]
    tmps = [folder / f".tmp-{name}.{tag}" for name in names]
    try:
        for tmp in tmps:
            tmp.mkdir()
        # which run (and position in it) each output frame goes to
        run_of = np.full(n_out, -1, dtype=np.int64)
        for r, (a, b) in enumerate(runs):
            run_of[a:b] = r
        wanted = [k for k in range(n_out) if run_of[k] >= 0]
        last_src = int(src[wanted[-1]])
        pos = 0
        for i, frame in vs.frames(0, last_src + 1):
            while pos < len(wanted) and src[wanted[pos]] == i:
                k = wanted[pos]
                r = run_of[k]
                x1, y1, x2, y2 = track.crop_box(i, PADS)
                _save_jpeg(tmps[r] / f"{k - runs[r][0]}.jpg", _cap(frame[y1:y2, x1:x2]))
                pos += 1
            if pos >= len(wanted):
                break
        if pos != len(wanted):
            raise MediaError(video, f"decoding stopped early ({pos} of {len(wanted)} frames)")
        parts = []
        for r, ((a, b), name, tmp) in enumerate(zip(runs, names, tmps)):
            wav = tmp / "audio.wav"
            # float, not PCM-16: decoded GRID audio peaks at 1.4 and 16-bit would clip it
            sf.write(str(wav), audio[a * SAMPLES_PER_FRAME: b * SAMPLES_PER_FRAME], HP.sample_rate,
                     subtype="FLOAT")
            info = {"key": f"{source}/{name}", "video": record["video"], "frames": b - a,
                    "seconds": (b - a) / FPS, "start_frame": a, "start_seconds": a / FPS,
                    "source_fps": float(vs.fps), "source_frames": int(vs.frame_count),
                    "audio_sha256": audio_sha256(wav), "speaker": speaker_of(f"{source}/{name}")}
            _write_json_atomic(tmp / "done", info)
            parts.append(info)
    except BaseException as e:
        for tmp in tmps:
            _remove_tree(tmp)
        if isinstance(e, MediaError):
            return skipped(f"unreadable: {e.problem}")
        raise
    # Replace what an earlier run made for this video, then move the new clips in.
    old = _read_json(_state_path(out, key)) or {}
    for name in set(old.get("parts", [])) | set(names):
        if (folder / name).exists():
            _remove_tree(folder / name)
    for tmp, name in zip(tmps, names):
        os.replace(tmp, folder / name)
    result = dict(record, status="ok", parts=names, frames=int(sum(b - a for a, b in runs)),
                  frames_total=n_out, clips=parts)
    _finish(out, key, result)
    return result


def _finish(out: Path, key: str, record: dict):
    _write_json_atomic(_state_path(out, key), record)


def _longest(has, shot) -> int:
    runs = face_runs(has, shot, 1)
    return max((b - a for a, b in runs), default=0)


def _glob_escape(text: str) -> str:
    import glob

    return glob.escape(text)


def audio_sha256(path) -> str:
    """SHA-256 of a wav's samples as little-endian float32 (not of the file: libsndfile stamps
    float wavs with a time in their PEAK chunk, so equal audio would hash differently)."""
    import soundfile as sf

    samples, _ = sf.read(str(path), dtype="float32", always_2d=False)
    return hashlib.sha256(np.ascontiguousarray(samples, dtype="<f4").tobytes()).hexdigest()


def _job(video, out, key, params, cache_dir):
    """Pool entry point: exceptions become a skip record, so one bad file never stops the run."""
    try:
        return process_video(video, out, key, params, cache_dir)
    except (MediaError, OSError, ValueError, RuntimeError) as e:
        return {"key": key, "video": str(video), "status": "skipped", "parts": [],
                "reason": f"failed: {type(e).__name__}: {e}"}


# --------------------------------------------------------------------------- the whole folder


def check_output_dir(out) -> Path:
    """Create `out` if needed and prove it is writable (try it: permission bits lie for root)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DatasetError(out, f"cannot create the output folder: {e.strerror or e}") from None
    if not out.is_dir():
        raise DatasetError(out, "output exists and is not a folder")
    probe = out / f".probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as e:
        raise DatasetError(out, f"output folder is not writable: {e.strerror or e}") from None
    return out


def prepare_dataset(src, out, workers: int = 1, seed: int = 0, val_fraction: float = 0.15,
                    cache_dir=None, detector=None, log=print) -> dict:
    """Prepare every video under `src` into `out` (see the module doc). Returns a summary dict.

    detector: None (RetinaFace), a detector name, or a detector object (for tests; with
    workers > 1 it must be picklable).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, not {workers}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val fraction must be in [0, 1), not {val_fraction}")
    started = time.perf_counter()
    videos = find_videos(src)
    out = check_output_dir(out)
    keys = clip_keys(videos)
    threads = max(1, (os.cpu_count() or 1) // workers)
    # The detector identity goes into the params: another detector means a redo.
    if detector is None or isinstance(detector, str):
        from core.faces import get_detector

        identity = get_detector(detector or "retinaface").identity()
    else:
        identity = detector.identity()
    params = _params(json.loads(json.dumps(identity, sort_keys=True, default=str)))

    for tmp in out.glob("*/.tmp-*"):  # a killed run's half clips
        _remove_tree(tmp)

    total = len(videos)
    records, todo = {}, []
    done = 0
    for video in videos:
        key = keys[video]
        state = is_finished(out, key, video, params)
        if state is not None:
            done += 1
            records[key] = state
            log(f"[{done}/{total}] {key}: {_describe(state)} (done already)")
        else:
            todo.append(video)

    def report(video, record):
        nonlocal done
        done += 1
        records[keys[video]] = record
        log(f"[{done}/{total}] {keys[video]}: {_describe(record)}")

    if todo and workers == 1:
        _init_worker(detector, threads)
        for video in todo:
            report(video, _job(video, out, keys[video], params, cache_dir))
    elif todo:
        ctx = mp.get_context("spawn")  # no fork: onnxruntime and PyAV threads do not survive it
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                    initargs=(detector, threads)) as pool:
            futures = {pool.submit(_job, v, str(out), keys[v], params, cache_dir): v for v in todo}
            try:
                for fut in cf.as_completed(futures):
                    report(futures[fut], fut.result())
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise

    summary = write_index(out, seed=seed, val_fraction=val_fraction)
    summary["seconds_wall"] = time.perf_counter() - started
    summary["videos"] = total
    log(f"prepared {summary['clips']} clips ({summary['frames']} frames, {summary['frames'] / FPS / 60:.1f} min) "
        f"from {total} videos; skipped {len(summary['skipped'])}; train {summary['train_clips']} clips / "
        f"{summary['train_speakers']} speakers, val {summary['val_clips']} clips / {summary['val_speakers']} "
        f"speakers; {summary['seconds_wall']:.0f} s")
    return summary


def _describe(record) -> str:
    if record.get("status") != "ok":
        return f"skipped ({record.get('reason')})"
    parts = record.get("parts", [])
    text = f"{record.get('frames', 0)} frames"
    if len(parts) > 1:
        text += f" in {len(parts)} parts"
    total = record.get("frames_total")
    if total and total != record.get("frames"):
        text += f" (of {total}; no face or cuts elsewhere)"
    return text


def write_index(out, seed: int = 0, val_fraction: float = 0.15) -> dict:
    """(Re)write manifest.json, skipped.txt and filelists/ from every video record in `out`."""
    out = Path(out)
    clips, skipped = {}, []
    for state_file in sorted((out / ".state").rglob("*.json")):
        state = _read_json(state_file)
        if not state:
            continue
        key = state.get("key", "")
        if state.get("status") != "ok":
            skipped.append((key, state.get("reason", "?"), state.get("video", "")))
            continue
        source = key.split("/")[0]
        for name in state.get("parts", []):
            info = _read_json(out / source / name / "done")
            if info is None:
                continue
            clips[f"{source}/{name}"] = {
                "frames": info["frames"], "seconds": info["seconds"], "source": info["video"],
                "audio_sha256": info["audio_sha256"], "speaker": info["speaker"],
                "start_frame": info["start_frame"], "source_fps": info["source_fps"]}
    speakers = merged_speakers(clips, read_identities(out))
    for key, info in clips.items():
        info["speaker"] = speakers[key]
    train, val = split_by_speaker({k: v["frames"] for k, v in clips.items()}, val_fraction, seed,
                                  speaker_fn=speakers.__getitem__, pinned=VALIDATION_CLIPS)
    lists = out / "filelists"
    lists.mkdir(exist_ok=True)
    for name, keys in (("train", train), ("val", val)):
        _write_text_atomic(lists / f"{name}.txt", "".join(f"{k}\n" for k in keys))
    _write_text_atomic(out / "skipped.txt", "".join(f"{k}\t{r}\t{p}\n" for k, r, p in sorted(skipped)))
    manifest = {"format": FORMAT_VERSION, "fps": FPS, "sample_rate": HP.sample_rate, "pads": list(PADS),
                "max_side": MAX_SIDE, "split": {"seed": seed, "val_fraction": val_fraction,
                                                "train": len(train), "val": len(val)},
                "clips": clips}
    _write_json_atomic(out / "manifest.json", manifest)
    frames = sum(c["frames"] for c in clips.values())
    return {"clips": len(clips), "frames": frames, "skipped": skipped,
            "train_clips": len(train), "val_clips": len(val),
            "train_speakers": len({speakers[k] for k in train}),
            "val_speakers": len({speakers[k] for k in val})}


def _write_text_atomic(path: Path, text: str):
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- command line


def cmd_prepare(args) -> int:
    summary = prepare_dataset(args.src_dir, args.out_dir, workers=args.workers, seed=args.seed,
                              val_fraction=args.val_fraction, cache_dir=args.cache_dir,
                              log=lambda line: print(line, flush=True))
    if summary["clips"] == 0:
        raise DatasetError(args.src_dir, f"no usable clips (reasons in {Path(args.out_dir) / 'skipped.txt'})")
    return 0


def main(argv=None) -> int:
    from training.cli import add_prepare_parser

    parser = argparse.ArgumentParser(prog="python -m training.prepare")
    sub = parser.add_subparsers(dest="command", required=True)
    add_prepare_parser(sub)
    args = parser.parse_args(["prepare", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.run(args)
    except LipsmithError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
