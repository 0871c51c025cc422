"""core/export.py without Qt, and `python main.py export PROJECT -o OUT` on a saved project.

The media are flat colours, so which frames came from a take and which from the original is
read off the pixels: the clip is red, the take blue.
"""
import hashlib
import os

import numpy as np
import pytest

import main
from core.export import EXPORT_PRESETS, commit_export, export_request, export_video
from core.project import AddTake, MediaFacts, Project, ReplaceSegments, SetProjectSettings
from core.video import VideoSource, VideoWriter
from tests.conftest import ffmpeg

FPS = 25
RED, BLUE = (32, 32, 224), (224, 32, 32)  # BGR
DRAFT = "Fast draft (CRF 23)"


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export_media")
    video, still, dub = folder / "clip.mp4", folder / "portrait.png", folder / "dub.wav"
    ffmpeg("-f", "lavfi", "-i", f"color=c=0xe02020:s=64x48:r={FPS}:d=1", "-pix_fmt", "yuv420p", "-c:v", "libx264",
           "-preset", "ultrafast", video)  # 25 frames
    ffmpeg("-f", "lavfi", "-i", "color=c=0xe02020:s=64x48", "-frames:v", "1", still)
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=1.6", dub)  # 40 frames
    return video, still, dub


def new_project(folder, video, dub, policy="cut") -> Project:
    """A saved project: s1 [0, 10) speech with a blue take chosen, s2 [10, 25) silence (the original)."""
    project = Project.new(video, MediaFacts.probe_video(video), path=folder / "scene.lipsmith", dub_path=dub,
                          dub_facts=MediaFacts.probe_file(dub, duration=1.6))
    project.execute(SetProjectSettings(project, {"length_policy": policy}))
    project.execute(ReplaceSegments(project, [project.make_segment(0, 10), project.make_segment(10, 25, "silence")]))
    take_id = project.new_take_id()
    file = project.take_file_for(take_id)
    with VideoWriter(file, 64, 48, FPS, crf=0, preset="ultrafast") as writer:
        for _ in range(10):
            writer.write(np.full((48, 64, 3), BLUE, np.uint8))
    project.execute(AddTake(project, project.new_take("s1", file, take_id=take_id, start=0, end=10), choose=True))
    project.save()
    return project


def colours(path) -> list[str]:
    """"blue" / "red" per frame of a video."""
    with VideoSource(path) as video:
        return ["blue" if frame[..., 0].mean() > frame[..., 2].mean() else "red" for _, frame in video.frames()]


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_composes_the_chosen_takes_and_the_original_frames_with_the_dub(media, tmp_path):
    video, _, dub = media
    project = new_project(tmp_path, video, dub)
    out = tmp_path / "final.mp4"
    seen = []
    result = export_video(lambda d, t, s: seen.append((d, t, s)), lambda: False, export_request(project, out, DRAFT))
    assert colours(out) == ["blue"] * 10 + ["red"] * 15  # cut: the video is the shorter
    assert (result.frames, result.from_takes) == (25, 10) and seen[-1] == (25, 25, "export")
    with VideoSource(out) as exported:
        assert exported.has_audio
    record = commit_export(project, result)
    assert record.path == out and record.info["crf"] == EXPORT_PRESETS[DRAFT][0] and record.choices == {"s1": "t1"}


def test_a_still_follows_the_dub_whatever_the_length_policy(media, tmp_path):
    _, still, dub = media
    project = Project.new(still, MediaFacts.probe_video(still), path=tmp_path / "still.lipsmith", dub_path=dub,
                          dub_facts=MediaFacts.probe_file(dub, duration=1.6))
    project.execute(SetProjectSettings(project, {"length_policy": "cut"}))
    project.execute(ReplaceSegments(project, [project.make_segment(0, 40, "silence")]))
    out = tmp_path / "still.mp4"
    result = export_video(lambda *a: None, lambda: False, export_request(project, out, DRAFT))
    assert result.frames == 40 and colours(out) == ["red"] * 40  # the dub's 1.6 s, not the still's one frame


def test_an_export_never_writes_over_the_project_file(media, tmp_path):
    from core.errors import MediaError

    video, _, dub = media
    project = new_project(tmp_path, video, dub)
    before = sha(project.path)
    with pytest.raises(MediaError, match="refusing to write over an input file"):
        export_video(lambda *a: None, lambda: False, export_request(project, project.path, DRAFT))
    assert sha(project.path) == before


def test_the_proposed_output_is_never_an_input(media, tmp_path):
    import shutil

    from core.export import export_inputs, suggested_output, unused_output

    video, _, dub = media
    clip = tmp_path / "scene.mp4"
    shutil.copy(video, clip)
    # saved as scene.lipsmith beside scene.mp4: scene.mp4 would be the video
    project = Project.new(clip, MediaFacts.probe_video(clip), path=tmp_path / "scene.lipsmith", dub_path=dub,
                          dub_facts=MediaFacts.probe_file(dub, duration=1.6))
    assert export_inputs(project) == (clip, dub, project.path)
    assert suggested_output(project, tmp_path) == tmp_path / "scene-lipsync.mp4"
    assert suggested_output(project, tmp_path / "exports") == tmp_path / "exports" / "scene.mp4"
    project.record_export(tmp_path / "final.mp4")
    assert suggested_output(project, tmp_path) == tmp_path / "final.mp4"  # the last export's, written over again
    project.record_export(dub)  # an export that has since become the dub
    assert suggested_output(project, tmp_path) == dub.with_name("dub-lipsync.wav")
    unsaved = Project.new(clip, MediaFacts.probe_video(clip), dub_path=dub)
    assert suggested_output(unsaved, tmp_path) == tmp_path / "scene-lipsync.mp4"  # named for the video
    taken = [clip, tmp_path / "scene-lipsync.mp4"]
    assert unused_output(clip, taken) == tmp_path / "scene-lipsync-2.mp4"
    assert unused_output(project.path, export_inputs(project)) == tmp_path / "scene-lipsync.lipsmith"


def test_cli_export_writes_what_the_editor_would_and_leaves_the_project_as_it_was(media, tmp_path, capsys):
    video, _, dub = media
    project = new_project(tmp_path, video, dub, policy="pad")
    before = sha(project.path)
    out = tmp_path / "cli.mp4"
    assert main.main(["export", str(project.path), "-o", str(out), "--preset", DRAFT, "-q"]) == 0
    assert colours(out) == ["blue"] * 10 + ["red"] * 30  # pad: the dub's 40 frames, the clip's last held
    assert "40 frames, 10 from takes" in capsys.readouterr().out
    assert sha(project.path) == before  # only read: the export is not recorded in it


def test_cli_export_names_the_file_and_the_problem(media, tmp_path, capsys):
    video, _, dub = media
    project = new_project(tmp_path, video, dub)
    out = tmp_path / "cli.mp4"
    assert main.main(["export", str(tmp_path / "none.lipsmith"), "-o", str(out)]) == 1
    assert "none.lipsmith" in capsys.readouterr().err
    next(project.cache_dir.iterdir()).unlink()  # the chosen take's file
    assert main.main(["export", str(project.path), "-o", str(out), "-q"]) == 1
    assert "take file missing" in capsys.readouterr().err and not out.exists()
    assert main.main(["export", str(project.path), "-o", str(out), "--preset", "best"]) == 2  # not a preset
    moved = tmp_path / "elsewhere.wav"
    moved.write_bytes(dub.read_bytes())
    other = Project.new(video, MediaFacts.probe_video(video), path=tmp_path / "moved.lipsmith", dub_path=moved,
                        dub_facts=MediaFacts.probe_file(moved, duration=1.6))
    other.save()
    moved.unlink()
    assert main.main(["export", str(other.path), "-o", str(out), "-q"]) == 1
    assert f"moved.lipsmith: the dub {moved} is missing" in capsys.readouterr().err
    assert list(tmp_path.glob("cli*")) == []


def test_a_variable_rate_video_exports_its_conformed_frames(media, tmp_path):
    from tests.test_video import encode, frame_id, source_frames

    _, _, dub = media
    # 50 numbered frames: 1 s at 25 fps, then 2 s at 12.5 fps; conformed to 75 frames at 25 fps
    video = encode(tmp_path / "vfr.mp4", source_frames(50), "-fps_mode", "vfr", audio=False,
                   vf="setpts='if(lt(N,25),N,2*N-25)/(25*TB)'")
    with VideoSource(video) as source:
        timeline = source.timeline
    assert len(timeline) == 75
    project = new_project(tmp_path, video, dub, policy="pad")  # the picture's 3 s outlast the dub's 1.6
    out = tmp_path / "final.mp4"
    result = export_video(lambda *a: None, lambda: False, export_request(project, out, DRAFT))
    assert (result.frames, result.from_takes) == (75, 10)
    with VideoSource(out) as exported:
        assert exported.frame_count == 75
        shown = [frame_id(frame) for _, frame in exported.frames(10)]
    assert shown == timeline[10:].tolist()  # the original frames, each where the renderer puts it


# --------------------------------------------------------------------------- delivery: formats, range, audio

SIZE = (256, 144)  # DNxHR's smallest is 256x120
TAGS = "color_primaries=smpte170m:color_trc=smpte170m:colorspace=smpte170m:range=tv"  # not BT.709, to see it carried


@pytest.fixture(scope="module")
def delivery(tmp_path_factory):
    """A red 2 s clip (50 frames) tagged SMPTE 170M, starting at 01:00:00:00, with a 500 Hz track of its own;
    a 2 s dub, a quiet tone with clicks: gained to -23 LUFS the clicks would pass -1 dBTP."""
    folder = tmp_path_factory.mktemp("delivery_media")
    video, dub = folder / "clip.mov", folder / "dub.wav"
    ffmpeg("-f", "lavfi", "-i", f"color=c=0xe02020:s={SIZE[0]}x{SIZE[1]}:r={FPS}:d=2", "-f", "lavfi", "-i",
           "sine=frequency=500:sample_rate=48000:duration=2", "-vf", f"setparams={TAGS}", "-pix_fmt", "yuv420p",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-timecode", "01:00:00:00", "-shortest", video)
    ffmpeg("-f", "lavfi", "-i", r"aevalsrc=0.05*sin(2*PI*300*t)+0.5*lt(mod(t\,0.4)\,0.002):s=48000:d=2", dub)
    return video, dub


def delivery_project(folder, video, dub) -> Project:
    """s1 [0, 10) with a blue take chosen, s2 [10, 50) the original."""
    project = Project.new(video, MediaFacts.probe_video(video), path=folder / "delivery.lipsmith", dub_path=dub,
                          dub_facts=MediaFacts.probe_file(dub, duration=2.0))
    project.execute(ReplaceSegments(project, [project.make_segment(0, 10), project.make_segment(10, 50, "silence")]))
    take_id = project.new_take_id()
    file = project.take_file_for(take_id)
    with VideoWriter(file, *SIZE, FPS, crf=0, preset="ultrafast") as writer:
        for _ in range(10):
            writer.write(np.full((SIZE[1], SIZE[0], 3), BLUE, np.uint8))
    project.execute(AddTake(project, project.new_take("s1", file, take_id=take_id, start=0, end=10), choose=True))
    project.save()
    return project


def facts(path) -> dict:
    """What ffprobe would say of a file's video stream, and its streams' kinds, read with PyAV."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tags = stream.codec_context  # the container's colour tags
        colour = (int(tags.color_primaries), int(tags.color_trc), int(tags.colorspace), int(tags.color_range))
        frames = list(container.decode(stream))
        return {"codec": stream.codec_context.name, "profile": stream.codec_context.profile,
                "pix_fmt": stream.codec_context.pix_fmt, "size": (stream.width, stream.height),
                "frames": len(frames), "times": [float(f.pts * f.time_base) for f in frames], "colour": colour,
                "timecode": stream.metadata.get("timecode"),
                "streams": [s.type for s in container.streams],
                "audio": [s.codec_context.name for s in container.streams.audio]}


def ebur128(path, stream: int) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) of an audio stream, by ffmpeg's ebur128 meter."""
    import re
    import subprocess

    from core.ffmpeg import run_ffmpeg

    proc = run_ffmpeg(["-nostdin", "-hide_banner", "-nostats", "-i", str(path), "-map", f"0:a:{stream}",
                       "-af", "ebur128=peak=true", "-f", "null", "-"], stderr=subprocess.PIPE, check=True)
    summary = proc.stderr.decode().rsplit("Summary:", 1)[1]
    return (float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary)[1]),
            float(re.search(r"True peak:\s+Peak:\s+(-?[\d.]+) dBFS", summary)[1]))


@pytest.mark.parametrize("format, suffix, codec, profile, pix_fmt, audio", [
    ("h264", ".mp4", "h264", "High", "yuv420p", "aac"),
    ("prores", ".mov", "prores", "HQ", "yuv422p10le", "pcm_s24le"),
    ("dnxhr", ".mov", "dnxhd", "DNXHR HQ", "yuv422p", "pcm_s24le"),
])
def test_each_format_keeps_the_source_frames_their_times_size_colour_and_timecode(
        delivery, tmp_path, format, suffix, codec, profile, pix_fmt, audio):
    video, dub = delivery
    project = delivery_project(tmp_path, video, dub)
    out = tmp_path / f"final{suffix}"
    result = export_video(lambda *a: None, lambda: False, export_request(project, out, DRAFT, format))
    got, source = facts(out), facts(video)
    assert (got["codec"], got["profile"], got["pix_fmt"], got["audio"]) == (codec, profile, pix_fmt, [audio])
    assert got["size"] == source["size"] and got["frames"] == source["frames"] == result.frames == 50
    assert got["times"] == pytest.approx(source["times"], abs=1e-6)  # frame-exact: each frame at its time
    assert got["colour"] == source["colour"] == (6, 6, 6, 1)  # SMPTE 170M, limited range: carried, not BT.709
    assert got["timecode"] == "01:00:00:00" and "data" in got["streams"]  # the tmcd track
    assert colours(out) == ["blue"] * 10 + ["red"] * 40
    assert (f"picture yuv420p -> {pix_fmt}" in " ".join(result.notes)) == (pix_fmt != "yuv420p")


def test_cli_exports_an_in_out_range_with_its_timecode_and_the_dub_under_it(delivery, tmp_path, capsys):
    video, dub = delivery
    project = delivery_project(tmp_path, video, dub)
    out = tmp_path / "range.mov"  # .mov: ProRes by default
    assert main.main(["export", str(project.path), "-o", str(out), "--from", "0.2", "--to", "0:00.8", "-q"]) == 0
    assert "15 frames, 5 from takes" in capsys.readouterr().out
    got = facts(out)
    assert (got["codec"], got["frames"], got["timecode"]) == ("prores", 15, "01:00:00:05")
    assert got["times"] == pytest.approx([k / FPS for k in range(15)], abs=1e-6)
    assert colours(out) == ["blue"] * 5 + ["red"] * 10
    import av

    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
    assert samples == 48000 * 15 // FPS  # the range's 0.6 s, to the sample


def test_the_delivered_dub_has_a_slipped_segments_line_moved_and_the_rest_as_it_was(delivery, tmp_path):
    from core.audio import load_audio
    from core.project import SlipSegment
    from core.slip import slip_audio

    video, _ = delivery
    dub = tmp_path / "line.wav"  # a 300 Hz bed under a 1 kHz line from 0.1 s to 0.3 s (inside s1's frames 0-9)
    ffmpeg("-f", "lavfi", "-i",
           r"aevalsrc=0.05*sin(2*PI*300*t)+0.5*sin(2*PI*1000*t)*between(t\,0.1\,0.3):s=48000:d=2", dub)
    project = delivery_project(tmp_path, video, dub)  # s1 [0, 10) speech, s2 [10, 50) silence
    project.execute(SlipSegment(project, "s1", 3))
    out = tmp_path / "slipped.mov"  # ProRes: PCM audio, sample for sample
    export_video(lambda *a: None, lambda: False, export_request(project, out, DRAFT, "prores"))
    original, delivered = load_audio(dub, 48000), load_audio(out, 48000)
    assert delivered.shape == original.shape  # 2 s
    np.testing.assert_allclose(delivered, slip_audio(original, 48000, FPS, 0, [(0, 10, 3)]), atol=1e-6)
    onset = lambda audio: int(np.argmax(np.abs(audio) > 0.2))  # noqa: E731 (where the line begins)
    assert onset(delivered) - onset(original) == 3 * 48000 // FPS  # three frames later, to the sample
    assert not delivered[:3 * 48000 // FPS].any()  # what the line left: silence
    after = 13 * 48000 // FPS  # past s1's line, moved into s2's first 3 frames: the dub as it was
    np.testing.assert_allclose(delivered[after:], original[after:], atol=1e-6)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # its temps are gone


def test_a_format_the_output_cannot_hold_or_an_unwritable_output_is_refused_naming_the_file(
        delivery, tmp_path, capsys):
    from core.errors import MediaError

    video, dub = delivery
    project = delivery_project(tmp_path, video, dub)
    out = tmp_path / "final.mp4"
    refusal = r"final\.mp4: a \.mp4 file cannot hold ProRes 422 HQ .*name it \.mov or \.mkv"
    with pytest.raises(MediaError, match=refusal):
        export_video(lambda *a: None, lambda: False, export_request(project, out, DRAFT, "prores"))
    assert main.main(["export", str(project.path), "-o", str(out), "--format", "dnxhr", "-q"]) == 1
    assert capsys.readouterr().err.strip().count("\n") == 0  # one line
    assert main.main(["export", str(project.path), "-o", str(out), "--format", "vp9"]) == 2  # not a format
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # root writes anywhere
            assert main.main(["export", str(project.path), "-o", str(locked / "x.mov"), "-q"]) == 1
            assert f"{locked / 'x.mov'}: cannot write" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)
    assert main.main(["export", str(project.path), "-o", str(tmp_path / "x.mov"), "--to", "9", "-q"]) == 1
    assert "is not within the project's 2.000 s" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith((".final", "final", ".x", "x."))] == []


@pytest.mark.parametrize("target, format, suffix, audio, streams", [
    ("-23", "prores", ".mov", "dub+original", 2),
    ("-24", "h264", ".mp4", "mix", 1),
])
def test_loudness_two_pass_lands_on_the_target_under_the_true_peak_ceiling(
        delivery, tmp_path, capsys, target, format, suffix, audio, streams):
    video, dub = delivery
    project = delivery_project(tmp_path, video, dub)
    out = tmp_path / f"loud{suffix}"
    assert main.main(["export", str(project.path), "-o", str(out), "--format", format, "--audio", audio,
                      "--loudness", target, "--original-level", "-6", "-q"]) == 0
    printed = capsys.readouterr().out
    assert len(facts(out)["audio"]) == streams
    for stream in range(streams):
        integrated, peak = ebur128(out, stream)
        assert abs(integrated - float(target)) <= 1.0 and peak <= -1.0
    assert printed.count("LUFS") == 2 * streams and "before" in printed  # before and after, per track
    if audio == "dub+original":  # the dub alone at -23 would peak over the ceiling: held under it
        assert ebur128(dub, 0)[1] + (-23 - ebur128(dub, 0)[0]) > -1.0


def test_a_mix_takes_each_track_at_its_level(delivery, tmp_path):
    video, dub = delivery
    project = delivery_project(tmp_path, video, dub)
    levels = {}
    for name, original_level in (("dub_only", -120.0), ("both", 0.0)):
        out = tmp_path / f"{name}.mov"
        export_video(lambda *a: None, lambda: False,
                     export_request(project, out, DRAFT, audio="mix", original_level=original_level))
        levels[name] = ebur128(out, 0)[0]
    dub_alone = tmp_path / "dub.mov"
    export_video(lambda *a: None, lambda: False, export_request(project, dub_alone, DRAFT))
    assert levels["dub_only"] == pytest.approx(ebur128(dub_alone, 0)[0], abs=0.2)  # the original at -120 dB
    assert levels["both"] > levels["dub_only"] + 1  # the 500 Hz track adds to it


def test_a_cancelled_or_refused_delivery_leaves_nothing_beside_the_output(media, delivery, tmp_path):
    from core.errors import Cancelled, MediaError

    video, dub = delivery
    project = delivery_project(tmp_path, video, dub)
    (tmp_path / "small").mkdir()
    small = new_project(tmp_path / "small", media[0], media[2])  # 64x48
    before = set(tmp_path.iterdir())
    out = tmp_path / "final.mov"
    request = export_request(project, out, DRAFT, "prores", audio="dub+original", loudness="-23")
    asked = []
    with pytest.raises(Cancelled):  # after the audio tracks are built, during the frames
        export_video(lambda *a: None, lambda: asked.append(1) or len(asked) > 3, request)
    with pytest.raises(MediaError, match=r"final\.mov: DNxHR HQ .* needs a picture of at least 256x120, not 64x48"):
        export_video(lambda *a: None, lambda: False, export_request(small, out, DRAFT, "dnxhr"))
    assert set(tmp_path.iterdir()) == before


def test_a_track_whose_peaks_keep_it_under_the_target_is_said_to_be(delivery, tmp_path):
    video, _ = delivery
    spiky = tmp_path / "spiky.wav"  # clicks 33 dB over a quiet tone: the ceiling allows no gain to -23
    ffmpeg("-f", "lavfi", "-i", r"aevalsrc=0.02*sin(2*PI*300*t)+0.9*lt(mod(t\,0.4)\,0.002):s=48000:d=2", spiky)
    project = delivery_project(tmp_path, video, spiky)
    out = tmp_path / "spiky.mov"
    result = export_video(lambda *a: None, lambda: False, export_request(project, out, DRAFT, loudness="-23"))
    [(name, before, after)] = result.loudness
    integrated, peak = ebur128(out, 0)
    assert name == "dub" and before.true_peak > -1.0 and peak <= -1.0 and integrated < -24.0
    assert f"dub audio: {after.integrated:.1f} LUFS, not -23" in " ".join(result.notes)
