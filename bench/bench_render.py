"""End-to-end render speed at 720p25 (and 1080p25) with cached face detection (DESIGN §11).

Makes (once, cached in --workdir) a 16:9 25 fps clip of a real speaker per --heights from
../shared/data/news/German_20s.mp4 (pillarboxed, looped to --seconds) and uses a real
speech track as the dub. Then, in one run, for each clip:

1. detection: a cold pass over the clip (written to the cache), frames/s;
2. stages alone on the first --stage-frames frames, as the renderer runs them: decode (YUV),
   the face's region to BGR + crop + mel, generator (per width), blend + write back, encode
   (x264 at the render's preset/CRF, YUV in), as frames/s and as CPU ms/frame (all threads and child processes; steadier than wall time on a shared machine);
3. the full render per generator width (random weights; our defaults otherwise:
   cut policy, batch 32, CRF 18, the renderer's x264 preset, colour match), with the busy time of
   each stage measured inside the pipeline, the real-time factor = frames/s ÷ 25, and
   the CPU time per frame, which bounds the frames/s two idle cores could reach.

    python -m bench.bench_render [--widths 1.0 0.5] [--mouths generated actor] [--seconds 20] [--heights 720 1080]
                                 [--compile] [--repeat 3]
                                 [--preset medium] [--workdir /tmp/lipsmith-bench] [--profile] [--no-fold]

With `--mouths generated actor` each width renders with both mouths (core.actor_mouth); the actor's
mouths are read, and cached, while the renderer is set up, so that time shows in "setup".
With `--repeat N` the detection pass and the sweep of full renders run N times (the sweep whole each
time, so a slow spell of a shared machine falls on every configuration alike); the summary gives each
figure's median and its range over the runs.
"""
from core.threads import let_idle_torch_threads_sleep

let_idle_torch_threads_sleep()  # as the product's render commands do, before torch is imported

import argparse
import cProfile
import pstats
import resource
import shutil
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

import core.render as render_module
from core import actor_mouth
from core.audio import load_audio, mel_windows, melspectrogram
from core.blend import BlendSettings, composite, original_crop
from core.faces import track_video
from core.hparams import HP, MOUTH_MODES
from core.models.wav2lip import GeneratorDims, Wav2Lip
from core.device import cpu_supports_bf16
from core.render import FaceGenerator, FaceRegion, RenderOptions, Renderer
from core.video import VideoSource, VideoWriter
from core.weights import save_weights
from tests.conftest import DATA, ffmpeg

FPS = 25
RENDER_TARGETS = {0.5: 1.5, 1.0: 1.0}  # generator width (0.5: the bundled one) -> real-time factor at 720p
DETECTION_TARGET = 2.0


def make_inputs(workdir: Path, seconds: int, height: int = 720):
    source = DATA / "news" / "German_20s.mp4"
    dub = DATA / "dubs" / "audio_eng.wav"  # 60 s of speech; the cut policy stops at the video's end
    if not source.is_file() or not dub.is_file():
        sys.exit(f"needs {source} and {dub} (../shared/data)")
    width = height * 16 // 9
    clip = workdir / f"face{height}_{seconds}s.mp4"
    if not clip.is_file():
        print(f"making {clip.name} ...", flush=True)
        tmp = clip.with_suffix(".tmp.mp4")
        ffmpeg("-stream_loop", "-1", "-i", source, "-t", seconds, "-r", FPS,
               "-vf", f"scale={height}:{height}:flags=bicubic,pad={width}:{height}:{(width - height) // 2}:0,"
                      "format=yuv420p",
               "-c:v", "libx264", "-preset", "fast", "-crf", "18", "-c:a", "aac", "-b:a", "128k", tmp)
        tmp.rename(clip)
    return clip, dub


def checkpoint_for(workdir: Path, width: float) -> Path:
    path = workdir / f"generator_w{width:g}.safetensors"
    if not path.is_file():
        torch.manual_seed(0)
        save_weights(Wav2Lip(GeneratorDims(width=width)), path)
    return path


def rate(n, seconds):
    return n / seconds if seconds > 0 else float("inf")


class Timed:
    """Wall and CPU time (all threads of this process, plus finished children) of a block."""

    def __enter__(self):
        self.wall, self.cpu, self.child = time.perf_counter(), time.process_time(), children_cpu()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu + children_cpu() - self.child

    def row(self, n):
        return rate(n, self.wall), self.cpu / n * 1000


# --------------------------------------------------------------------------- stages alone


def stage_rates(clip, dub, track, widths, n, preset, crf):
    """{stage: (frames/s wall, CPU ms/frame)} for each stage run alone on the first n frames, as the
    renderer runs it: frames in the source's YUV, the face's region through BGR."""
    video = VideoSource(clip)
    out = {}
    with Timed() as t:
        frames = [f for _, f in video.frames(0, n, yuv=True)]
    out["decode (YUV 4:2:0)"] = t.row(len(frames))

    mel = melspectrogram(load_audio(dub))
    with Timed() as t:
        crops, faces = [], []
        for i, frame in enumerate(frames):
            face = FaceRegion(frame, track.crop_box(i, HP.pads))
            crops.append(original_crop(face.image, face.box, (HP.img_size, HP.img_size)))
            faces.append(face)
        mels = mel_windows(mel, np.arange(len(frames)) / FPS)
    out["face region to BGR, crop, mel window"] = t.row(len(frames))
    crops = np.stack(crops)

    for width in widths:
        torch.manual_seed(0)
        generator = FaceGenerator(Wav2Lip(GeneratorDims(width=width)), torch.device("cpu"), 32)
        generator(crops[:32], mels[:32])  # warm-up
        with Timed() as t:
            generated = generator(crops, mels)
        out[f"generator w{width:g}"] = t.row(len(crops))

    settings = BlendSettings()
    with Timed() as t:
        for i, (face, crop, original) in enumerate(zip(faces, generated, crops)):
            composite(face.image, crop, face.box, face.local(track.landmarks_at(i)), settings, original, original)
            face.write_back()
    boxes = [face.box for face in faces]
    out[f"blend + write back (box ~{np.mean([b[2] - b[0] for b in boxes]):.0f}x"
        f"{np.mean([b[3] - b[1] for b in boxes]):.0f})"] = t.row(len(frames))

    target = Path(clip).with_name("stage_encode.mp4")
    with Timed() as t:
        with VideoWriter(target, video.width, video.height, video.fps, crf=crf, preset=preset,
                         colour=video.yuv_colour, yuv=True) as writer:
            for frame in frames:
                writer.write(frame)
    out[f"encode (x264 {preset}, YUV in)"] = t.row(len(frames))
    target.unlink(missing_ok=True)
    return out


# --------------------------------------------------------------------------- instrumented render


class StageClock:
    """Busy seconds per stage inside a real render, by wrapping the functions the pipeline calls."""

    def __init__(self):
        self.busy = defaultdict(float)
        self.calls = defaultdict(int)
        self._saved = []

    def wrap(self, owner, name, stage):
        original = getattr(owner, name)
        clock = self

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                clock.busy[stage] += time.perf_counter() - started
                clock.calls[stage] += 1

        self._saved.append((owner, name, original))
        setattr(owner, name, timed)

    def wrap_generator_function(self, owner, name, stage):
        """Time a generator function item by item (the decode thread runs one)."""
        original = getattr(owner, name)
        clock = self

        def timed(*args, **kwargs):
            iterator = original(*args, **kwargs)
            while True:
                started = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    return
                finally:
                    clock.busy[stage] += time.perf_counter() - started
                yield item

        self._saved.append((owner, name, original))
        setattr(owner, name, timed)

    def __enter__(self):
        self.wrap_generator_function(render_module, "source_frames", "decode (thread)")
        self.wrap(FaceGenerator, "__call__", "generator")
        self.wrap(FaceRegion, "__init__", "face region: YUV to BGR")
        self.wrap(render_module, "composite", "blend")
        self.wrap(FaceRegion, "write_back", "blend: write back to YUV")
        self.wrap(actor_mouth.ActorMouth, "paste", "actor mouth: pick, align, blend")
        self.wrap(render_module, "mel_windows", "mel windows")
        self.wrap(VideoWriter, "write", "encode: pipe write (waits on x264)")
        self.wrap(VideoWriter, "close", "encode: flush + mux audio")
        return self

    def __exit__(self, *exc):
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_render(clip, dub, checkpoint, cache_dir, output, preset, crf, mouth="generated", profile=False,
               compile_model=False):
    options = RenderOptions(checkpoint=str(checkpoint), cache_dir=str(cache_dir), preset=preset, crf=crf,
                            mouth=mouth, compile=compile_model)
    started = time.perf_counter()
    renderer = Renderer(clip, dub, options)
    setup = time.perf_counter() - started
    compiled = options.compile if options.compile is not None else len(renderer.range) > 3000
    compile_s = 0.0
    if compiled:  # the first call compiles: timed apart, as a long job pays it once
        started, size = time.perf_counter(), renderer.generator.batch_size
        renderer.generator(np.zeros((size, HP.img_size, HP.img_size, 3), np.uint8),
                           np.zeros((size, HP.num_mels, HP.mel_step_size), np.float32))
        compile_s = time.perf_counter() - started
    cpu_before, child_before = time.process_time(), children_cpu()
    profiler = cProfile.Profile() if profile else None
    with StageClock() as clock:
        if profiler:
            profiler.enable()
        report = renderer.render_to(output)
        if profiler:
            profiler.disable()
    return dict(report=report, setup=setup, clock=clock, cpu=time.process_time() - cpu_before,
                ffmpeg_cpu=children_cpu() - child_before, profiler=profiler, compiled=compiled, compile_s=compile_s)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="/tmp/lipsmith-bench")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--heights", type=int, nargs="+", default=[720], help="clip heights (16:9), e.g. 720 1080")
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.5])
    parser.add_argument("--mouths", nargs="+", choices=MOUTH_MODES, default=["generated"])
    parser.add_argument("--preset", default=RenderOptions.preset, help="x264 preset (default: the renderer's)")
    parser.add_argument("--crf", type=int, default=18)
    parser.add_argument("--stage-frames", type=int, default=96)
    parser.add_argument("--profile", action="store_true", help="cProfile the main thread of the width-1 render")
    parser.add_argument("--no-fold", action="store_true", help="keep BatchNorm unfolded (before/after comparison)")
    parser.add_argument("--repeat", type=int, default=1, help="run detection and the render sweep this many times")
    parser.add_argument("--compile", action="store_true",
                        help="render each width a second time with the generator compiled, as a long job (over 3000 "
                             "frames) does; the compile (its first call) is timed apart")
    args = parser.parse_args()
    if args.no_fold:
        render_module.fold_batchnorm = lambda model: model

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, bf16 autocast: {cpu_supports_bf16()}, "
          f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'default')}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (other jobs share the CPU)")
    rows, detections = defaultdict(list), defaultdict(list)
    for height in args.heights:
        clip, dub = make_inputs(workdir, args.seconds, height)
        cache_dir = workdir / f"faces{height}"
        video = VideoSource(clip)
        print(f"\nclip: {video.width}x{video.height} {video.fps:g} fps, {video.frame_count} frames; dub {dub.name}")

        for _ in range(args.repeat):
            shutil.rmtree(cache_dir, ignore_errors=True)  # a cold detection pass, timed, fills the cache
            started = time.perf_counter()
            track = track_video(video, cache_dir=cache_dir)
            detect_s = time.perf_counter() - started
            detections[height].append(rate(video.frame_count, detect_s))
            print(f"detection (RetinaFace, cold, cached afterwards): {video.frame_count} frames in {detect_s:.1f} s = "
                  f"{rate(video.frame_count, detect_s):.1f} frames/s; faces in {int(track.has_face.sum())} frames")

        print(f"\nstages alone, first {args.stage_frames} frames:            frames/s   CPU ms/frame")
        for name, (fps, cpu_ms) in stage_rates(clip, dub, track, args.widths, args.stage_frames, args.preset,
                                              args.crf).items():
            print(f"  {name:<36} {fps:8.1f}   {cpu_ms:8.1f}")

        print(f"\nfull render, cached detection, preset {args.preset}, CRF {args.crf}:")
        for run, compiled, width, mouth in [(r, c, w, m) for r in range(1, args.repeat + 1)
                                            for c in ([False, True] if args.compile else [False])
                                            for w in args.widths for m in args.mouths]:
            checkpoint = checkpoint_for(workdir, width)
            output = workdir / f"render_w{width:g}.mp4"
            result = run_render(clip, dub, checkpoint, cache_dir, output, args.preset, args.crf, mouth,
                                profile=args.profile and width == args.widths[0], compile_model=compiled)
            report, clock = result["report"], result["clock"]
            fps = report.fps
            rows[height, width, mouth, compiled].append(fps)
            run_label = f"run {run}, " if args.repeat > 1 else ""
            print(f"  {run_label}width {width:g}, {mouth} mouth: {report.frames} frames in {report.seconds:.1f} s = "
                  f"{fps:.1f} frames/s, real-time factor {fps / FPS:.2f}x  (setup incl. cached detection + model load "
                  f"{result['setup']:.1f} s; torch.compile "
                  f"{'on, compiled before in %.1f s' % result['compile_s'] if result['compiled'] else 'off'})")
            cpu_ms = (result["cpu"] + result["ffmpeg_cpu"]) / report.frames * 1000
            print(f"    CPU: python {result['cpu']:.1f} s + ffmpeg {result['ffmpeg_cpu']:.1f} s over "
                  f"{report.seconds:.1f} s wall = {cpu_ms:.0f} ms/frame; on 2 idle cores at most "
                  f"{2000 / cpu_ms:.1f} frames/s ({2000 / cpu_ms / FPS:.2f}x)")
            for stage, busy in sorted(clock.busy.items(), key=lambda kv: -kv[1]):
                print(f"    {stage:<36} {busy:6.1f} s busy  ({busy / report.frames * 1000:6.1f} ms/frame, "
                      f"{busy / report.seconds:4.0%} of the wall time)")
            if result["profiler"]:
                print("\n  cProfile, main thread, top 20 by own time:")
                stats = pstats.Stats(result["profiler"])
                stats.sort_stats("tottime").print_stats(20)
            output.unlink(missing_ok=True)

    print(f"\nload average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"summary (issue 17's target in brackets, real time = 25 frames/s"
          f"{'; median of %d runs, their range in parentheses' % args.repeat if args.repeat > 1 else ''}):")
    for height, rates in detections.items():
        print(f"  {height}p cold face detection: {spread(rates)}"
              + (f"  [{DETECTION_TARGET:g}x]" if height == 720 else ""))
    for (height, width, mouth, compiled), rates in rows.items():
        target = RENDER_TARGETS.get(width)
        print(f"  {height}p width {width:g} {mouth} mouth{', compiled' if compiled else ''}: {spread(rates)}"
              + (f"  [{target:g}x]" if target and height == 720 else ""))


def spread(rates) -> str:
    """Frames/s and real-time factor: the median, and with several runs their range."""
    fps = float(np.median(rates))
    text = f"{fps:.1f} frames/s = {fps / FPS:.2f}x"
    return text + (f" ({min(rates) / FPS:.2f}-{max(rates) / FPS:.2f}x)" if len(rates) > 1 else "")


if __name__ == "__main__":
    main()
