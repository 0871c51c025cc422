"""core/export.py without Qt, and `python main.py export PROJECT -o OUT` on a saved project.

The media are flat colours, so which frames came from a take and which from the original is
read off the pixels: the clip is red, the take blue.
"""
import hashlib

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
