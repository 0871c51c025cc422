"""Peak memory of a render against the video's length: it must stay flat (DESIGN §8, §11).

Makes synthetic 1080p25 videos in --workdir (ffmpeg testsrc2 with a real face from
../shared/data pasted in the middle, x264 ultrafast CRF 35, so even 10 minutes stay small)
and a dub of the same length (a real speech track, looped), then renders each length in a
fresh subprocess with a tiny random-weight generator and reports that process's peak RSS
(VmHWM) during face detection and, separately (the peak is reset in between), during the
render itself, plus RSS samples across the render and the ffmpeg encoder's own peak.

    python -m bench.bench_memory [--minutes 1 10] [--budget-min 20] [--workdir /tmp/lipsmith-bench]

If the first (shorter) run predicts that the longer one would take the whole bench past
--budget-min minutes, the longer one is shortened to 5 minutes, and the output says so.
The encoder runs at x264 preset ultrafast here (memory, not picture quality, is measured;
the encoder is a separate process either way).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import DATA, ffmpeg

TARGET_MB = 1536


def proc_status(field: str) -> float:
    """A memory field of /proc/self/status in MiB (VmHWM, VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def ffmpeg_peak_mb() -> float:
    """Largest VmHWM among this process's running ffmpeg children (encoder, mux pass).

    Only processes that already exec'd ffmpeg count: between fork and exec a child shares
    (vfork) or copies this process's memory, and its VmHWM then reads as ours (that is how
    an earlier version of this bench reported a 2 GB "encoder")."""
    peak = 0.0
    for task in Path("/proc/self/task").iterdir():
        try:
            pids = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in pids:
            try:
                if not Path(f"/proc/{pid}/comm").read_text().startswith("ffmpeg"):
                    continue
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) / 1024)
            except OSError:
                pass
    return peak


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def make_inputs(workdir: Path, minutes: float):
    face_source = DATA / "pcavs" / "00002.mp4"
    speech = DATA / "dubs" / "audio_eng.wav"
    if not face_source.is_file() or not speech.is_file():
        sys.exit(f"needs {face_source} and {speech} (../shared/data)")
    face = workdir / "face.png"
    if not face.is_file():
        ffmpeg("-i", face_source, "-vf", "select=eq(n\\,10),scale=448:448", "-frames:v", "1", face)
    seconds = int(round(minutes * 60))
    video = workdir / f"synthetic1080_{seconds}s.mp4"
    if not video.is_file():
        print(f"making {video.name} ...", flush=True)
        started = time.perf_counter()
        tmp = video.with_suffix(".tmp.mp4")
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=1920x1080:r=25:d={seconds}", "-loop", "1", "-i", face,
               "-filter_complex", "[0:v][1:v]overlay=(W-w)/2:(H-h)/2:shortest=1,format=yuv420p",
               "-c:v", "libx264", "-preset", "ultrafast", "-crf", "35", "-an", tmp)
        tmp.rename(video)
        print(f"  {video.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.0f} s", flush=True)
    dub = workdir / f"dub_{seconds}s.wav"
    if not dub.is_file():
        ffmpeg("-stream_loop", "-1", "-i", speech, "-t", seconds, "-ac", "1", "-ar", "16000", dub)
    return video, dub


# --------------------------------------------------------------------------- the measured process


def child(video, dub, checkpoint, cache_dir, output, preset):
    import torch

    from core.render import RenderOptions, Renderer

    torch.set_num_threads(2)
    result = {"after_imports_mb": proc_status("VmRSS")}
    # RSS each second from here on, labelled with the stage and its progress
    samples, stop = [], threading.Event()
    progress = {"stage": "setup", "done": 0}
    encoder_peak = [0.0]

    def sample():
        while not stop.wait(1.0):
            samples.append((progress["stage"], progress["done"], proc_status("VmRSS")))
            encoder_peak[0] = max(encoder_peak[0], ffmpeg_peak_mb())

    def on_progress(done, total, stage="render"):
        progress.update(stage=stage, done=done)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    renderer = Renderer(video, dub, RenderOptions(checkpoint=checkpoint, cache_dir=cache_dir, preset=preset),
                        progress=on_progress)
    result["setup_s"] = time.perf_counter() - started  # audio, mel, model, face detection + tracking
    result["detect_peak_mb"] = proc_status("VmHWM")
    result["peak_reset"] = reset_peak()
    progress.update(stage="render", done=0)
    started = time.perf_counter()
    report = renderer.render_to(output)
    result["render_s"] = time.perf_counter() - started
    stop.set()
    sampler.join()
    result["render_peak_mb"] = proc_status("VmHWM")
    # ru_maxrss is reset along with VmHWM: the process's peak is the larger of the two phases'
    result["process_peak_mb"] = max(result["detect_peak_mb"], result["render_peak_mb"],
                                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result["ffmpeg_peak_mb"] = encoder_peak[0]  # sampled each second: ru_maxrss of children counts the fork
    result["frames"] = report.frames
    result["generated"] = report.generated
    result["samples"] = samples
    Path(output).unlink(missing_ok=True)
    print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- driver


def measure(workdir: Path, minutes: float, checkpoint: Path, preset: str) -> dict:
    video, dub = make_inputs(workdir, minutes)
    cache_dir = workdir / f"faces_{video.stem}"
    subprocess.run(["rm", "-rf", str(cache_dir)], check=True)  # detection is part of what is measured
    cmd = [sys.executable, "-m", "bench.bench_memory", "--child", str(video), str(dub), str(checkpoint),
           str(cache_dir), str(workdir / "memory_out.mp4"), preset]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    wall = time.perf_counter() - started
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"render of {video.name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(line[len("RESULT "):])
    result.update(minutes=minutes, wall_s=wall)
    (workdir / f"memory_{minutes:g}min.json").write_text(json.dumps(result))  # the RSS samples, to plot
    return result


def report(r: dict):
    fps = r["frames"] / r["render_s"]
    print(f"\n{r['minutes']:g} min ({r['frames']} frames of 1920x1080, {r['generated']} lip-synced), "
          f"whole subprocess {r['wall_s']:.0f} s:")
    print(f"  setup incl. face detection   {r['setup_s']:7.1f} s  ({r['frames'] / r['setup_s']:.1f} frames/s)")
    print(f"  render                       {r['render_s']:7.1f} s  ({fps:.1f} frames/s)")
    print(f"  RSS after imports            {r['after_imports_mb']:7.0f} MB")
    print(f"  peak RSS during detection    {r['detect_peak_mb']:7.0f} MB")
    print(f"  peak RSS during render       {r['render_peak_mb']:7.0f} MB"
          + ("" if r["peak_reset"] else "  (peak could not be reset: includes detection)"))
    print(f"  peak RSS, whole process      {r['process_peak_mb']:7.0f} MB   (ffmpeg encoder, a separate process: "
          f"{r['ffmpeg_peak_mb']:.0f} MB)")
    if r["samples"]:
        stage, done, mb = max(r["samples"], key=lambda x: x[2])
        print(f"  largest RSS sample           {mb:7.0f} MB   ({stage}, frame {done})")
    for stage in ("detect", "render"):
        samples = [(done, mb) for s, done, mb in r["samples"] if s == stage]
        if samples:
            picks = [samples[min(len(samples) - 1, int(q * len(samples)))] for q in (0.1, 0.25, 0.5, 0.75, 0.99)]
            print(f"  RSS during {stage} (frame: MB)  " + "  ".join(f"{done}: {mb:.0f}" for done, mb in picks))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(*sys.argv[2:8])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="/tmp/lipsmith-bench")
    parser.add_argument("--minutes", type=float, nargs=2, default=[1, 10], metavar=("SHORT", "LONG"))
    parser.add_argument("--budget-min", type=float, default=20, help="shorten the long run to fit (minutes)")
    parser.add_argument("--width", type=float, default=0.25, help="generator width (tiny: memory, not speed)")
    parser.add_argument("--preset", default="ultrafast")
    args = parser.parse_args()

    import torch

    from core.models.wav2lip import GeneratorDims, Wav2Lip
    from core.weights import save_weights

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoint = workdir / f"generator_w{args.width:g}.safetensors"
    if not checkpoint.is_file():
        torch.manual_seed(0)
        save_weights(Wav2Lip(GeneratorDims(width=args.width)), checkpoint)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; generator width {args.width:g}; "
          f"x264 preset {args.preset}")

    bench_started = time.perf_counter()
    short, long = args.minutes
    results = [measure(workdir, short, checkpoint, args.preset)]
    report(results[0])
    spent = time.perf_counter() - bench_started
    per_minute = spent / short  # making the file + detection + render, per minute of video
    if spent + per_minute * long > args.budget_min * 60 and long > 5:
        print(f"\nthe {long:g}-minute run would take about {per_minute * long / 60:.0f} min more "
              f"(budget {args.budget_min:g} min in all): measuring 5 minutes instead")
        long = 5
    results.append(measure(workdir, long, checkpoint, args.preset))
    report(results[-1])

    a, b = results
    growth = b["render_peak_mb"] - a["render_peak_mb"]
    print(f"\nsummary: peak RSS {a['process_peak_mb']:.0f} MB for {a['minutes']:g} min, "
          f"{b['process_peak_mb']:.0f} MB for {b['minutes']:g} min (render stage {a['render_peak_mb']:.0f} -> "
          f"{b['render_peak_mb']:.0f} MB, {growth:+.0f} MB for {b['minutes'] / a['minutes']:g}x the length); "
          f"target < {TARGET_MB} MB: {'met' if max(a['process_peak_mb'], b['process_peak_mb']) < TARGET_MB else 'MISSED'}; "
          f"bench took {(time.perf_counter() - bench_started) / 60:.1f} min")


if __name__ == "__main__":
    main()
