"""The engine behind the editor, without Qt: the boundaries (core never loads Qt, the editor never
imports training/), the output-length rule, `Batch`, and the job bodies of core/jobs.py run as
the editor's workers run them — read a dub, render a take (with the actor's mouth too), smooth it,
find the face — on tiny synthetic media.
A stub detector (a fixed box) stands in for RetinaFace and a tiny random-weight generator for
the model.
"""
import ast
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core import jobs
from core.plan import output_count, plan_frames, source_of
from core.project import (MOUTH_NAMES, Batch, ChooseTake, EditError, MediaFacts, Project, RenameSegment, ReplaceSegments,
                          SetProjectSettings)
from tests.conftest import REPO, BoxDetector, ffmpeg

FPS = 25
FACE_BOX = (32, 8, 96, 88)  # in a 128 × 96 frame
NO_PROGRESS, NEVER = (lambda *a: None), (lambda: False)


# --------------------------------------------------------------------------- boundaries


def test_the_engine_loads_without_qt_or_the_trainers():
    code = ("import sys; import core.jobs, core.export, core.adapt, core.project; "
            "print(sorted(m for m in ('PySide6', 'training') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_editor_never_imports_training():
    importers = []
    for path in sorted((REPO / "app").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            importers += [f"{path.name}: {n}" for n in names if n == "training" or n.startswith("training.")]
    assert importers == []


# --------------------------------------------------------------------------- the output-length rule


@pytest.mark.parametrize("policy", ["cut", "loop", "bounce", "pad"])
def test_a_still_follows_the_dub_under_every_length_policy(policy):
    assert output_count(1, FPS, 1.6, policy, is_image=True) == 40
    assert [source_of(k, 1, policy, is_image=True) for k in (0, 1, 39)] == [0, 0, 0]
    plan, with_dub = plan_frames(1, FPS, 1.6, policy, is_image=True)
    assert plan.tolist() == [0] * 40 and with_dub.all()
    assert output_count(30, FPS, None, policy) == 30  # no dub: the video's own frames


def test_source_of_answers_an_int_for_an_int_and_an_array_for_an_array():
    assert type(source_of(7, 5, "bounce")) is int and source_of(7, 5, "bounce") == 1
    assert source_of(np.arange(9), 5, "bounce").tolist() == [0, 1, 2, 3, 4, 3, 2, 1, 0]


# --------------------------------------------------------------------------- Batch


def bare_project(tmp_path) -> Project:
    facts = MediaFacts(duration=2.0, fps=FPS, frame_count=50, width=128, height=96)
    project = Project.new(tmp_path / "clip.mp4", facts, path=tmp_path / "scene.lipsmith")
    project.execute(ReplaceSegments(project, [project.make_segment(0, 20), project.make_segment(20, 50)]))
    return project


def test_a_batch_is_one_undo_step_all_or_nothing_that_joins_a_batch_of_its_key(tmp_path):
    project = bare_project(tmp_path)
    depth = project.history.index
    project.execute(Batch(project, [lambda: RenameSegment(project, "s1", "Hello"),
                                    lambda: RenameSegment(project, "s2", project.segment("s1").name + " again")],
                          "Rename both", merge_key="names"))
    assert [s.name for s in project.segments] == ["Hello", "Hello again"]  # the second built after the first
    assert project.history.index == depth + 1 and project.history.undo_text == "Rename both"

    project.execute(Batch(project, [lambda: RenameSegment(project, "s1", "Joined")], "More", merge_key="names"))
    assert project.history.index == depth + 1  # joined the step of its key
    with pytest.raises(EditError):
        project.execute(Batch(project, [lambda: RenameSegment(project, "s2", "Undone"),
                                        lambda: ChooseTake(project, "s1", "t404")], "Fails"))
    assert [s.name for s in project.segments] == ["Joined", "Hello again"]  # the part done was reverted
    project.undo()
    assert [s.name for s in project.segments] == ["", ""] and project.history.index == depth
    project.redo()
    assert [s.name for s in project.segments] == ["Joined", "Hello again"]


# --------------------------------------------------------------------------- job bodies


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("core_jobs_media")
    video, dub, silent = folder / "clip.mp4", folder / "dub.wav", folder / "silent.wav"
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size=128x96:rate={FPS}:duration=1", "-pix_fmt", "yuv420p",
           "-c:v", "libx264", "-preset", "ultrafast", video)
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=1", dub)
    ffmpeg("-f", "lavfi", "-i", "anullsrc=sample_rate=16000:channel_layout=mono", "-t", "1", silent)
    return video, dub, silent


def test_reading_the_dub_gives_its_length_and_waveform_and_refuses_a_silent_one(media):
    _, dub, silent = media
    info = jobs.load_dub(NO_PROGRESS, NEVER, dub)
    assert info.facts.duration == pytest.approx(1.0) and info.waveform.duration == pytest.approx(1.0)
    assert info.waveform.lo.size == jobs.WAVEFORM_RATE  # buckets of 1/200 s
    assert info.waveform.hi.min() == pytest.approx(0.125, abs=0.005)  # ffmpeg's sine: 1/8 of full scale
    assert info.waveform.lo.max() == pytest.approx(-0.125, abs=0.005)
    with pytest.raises(jobs.UserError, match="silent.wav: the dub is silent"):
        jobs.load_dub(NO_PROGRESS, NEVER, silent)


def two_segments(media, tiny_checkpoint, tmp_path, monkeypatch) -> Project:
    """A saved project over `media` (25 frames, segments [0, 10) and [10, 25)) rendering with the tiny
    checkpoint, the stub detector finding the face."""
    import core.faces

    monkeypatch.setattr(core.faces, "get_detector", lambda name="retinaface", **params: BoxDetector(FACE_BOX))
    video, dub, _ = media
    project = Project.new(video, MediaFacts.probe_video(video), path=tmp_path / "scene.lipsmith", dub_path=dub,
                          dub_facts=jobs.load_dub(NO_PROGRESS, NEVER, dub).facts)
    project.execute(ReplaceSegments(project, [project.make_segment(0, 10), project.make_segment(10, 25)]))
    project.execute(SetProjectSettings(project, {"checkpoint": str(tiny_checkpoint)}))
    project.save()
    return project


def test_render_then_smooth_a_take_as_the_editors_workers_do(media, tiny_checkpoint, tmp_path, monkeypatch):
    project = two_segments(media, tiny_checkpoint, tmp_path, monkeypatch)
    assert jobs.media_length(project) == 25

    request = jobs.render_request(project, 0, 25, what="whole clip")
    result = jobs.render_take(NO_PROGRESS, NEVER, request)
    assert (result.start, result.end, result.generated) == (0, 25, 25) and result.file.parent == project.cache_dir
    take_id = jobs.commit_render(project, result)
    assert [s.take_id for s in project.segments] == [take_id, take_id]
    assert project.history.undo_text == f"Render whole clip ({project.takes[take_id].label})"

    smoothed = jobs.commit_smooth(project, jobs.smooth_take(NO_PROGRESS, NEVER, jobs.smooth_request(project, "s1", 3)))
    assert project.segment("s1").take_id == smoothed and project.segment("s2").take_id == take_id
    assert project.takes[smoothed].settings["smoothed_from"] == take_id
    assert sorted(p.name for p in project.cache_dir.iterdir()) == sorted(
        Path(t.file).name for t in project.takes.values())  # nothing else left in the cache folder
    project.undo()
    project.undo()
    assert not project.takes and all(s.take_id is None for s in project.segments)


def test_a_render_hears_the_dub_as_slipped_and_its_take_serves_that_slip(media, tiny_checkpoint, tmp_path,
                                                                        monkeypatch):
    import core.faces
    import core.render
    from core.audio import load_audio
    from core.project import SlipSegment
    from core.slip import slip_audio

    heard = []  # what the renderer makes its mel windows (and the take's audio) from
    monkeypatch.setattr(core.render, "load_audio", lambda path: heard.append(load_audio(path)) or heard[-1])
    project = two_segments(media, tiny_checkpoint, tmp_path, monkeypatch)
    project.execute(SlipSegment(project, "s2", -3))

    result = jobs.render_take(NO_PROGRESS, NEVER, jobs.render_request(project, 10, 25, "s2", "segment s2"))
    [audio] = heard
    dub = load_audio(project.dub.path)
    np.testing.assert_array_equal(audio, slip_audio(dub, 16000, FPS, 0, [(10, 25, -3)]))
    assert not np.array_equal(audio, dub)
    assert list(project.cache_dir.iterdir()) == [result.file]  # the slipped dub was a temp
    project.execute(SlipSegment(project, "s2", 1))  # while it rendered: the line is at -2 now
    take_id = jobs.commit_render(project, result)
    assert project.takes[take_id].settings["slips"] == [[10, 25, -3]] and project.segment("s2").take_id is None
    project.execute(SlipSegment(project, "s2", -1))  # back at -3: the take rendered for it is chosen
    assert project.segment("s2").take_id == take_id and project.segment("s1").take_id is None


# --------------------------------------------------------------------------- a variable-frame-rate source


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory):
    """50 frames: 1 s at 25 fps, then 2 s at 12.5 fps; conformed to 75 frames at 25 fps."""
    path = tmp_path_factory.mktemp("core_jobs_vfr") / "vfr.mp4"
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size=128x96:rate={FPS}:duration=2", "-vf",
           "setpts='if(lt(N,25),N,2*N-25)/(25*TB)'", "-fps_mode", "vfr", "-pix_fmt", "yuv420p",
           "-c:v", "libx264", "-preset", "ultrafast", path)
    return path


def vfr_project(folder, video, dub) -> Project:
    project = Project.new(video, jobs.probe_media(NO_PROGRESS, NEVER, video, dub).video_facts,
                          path=folder / "scene.lipsmith", dub_path=dub,
                          dub_facts=jobs.load_dub(NO_PROGRESS, NEVER, dub).facts)
    project.execute(SetProjectSettings(project, {"length_policy": "pad"}))
    project.save()
    return project


def test_a_variable_rate_project_is_as_long_as_its_render(media, vfr_video, tiny_checkpoint, tmp_path, monkeypatch):
    import core.faces
    from core.render import Renderer
    from core.video import VideoSource

    monkeypatch.setattr(core.faces, "get_detector", lambda name="retinaface", **params: BoxDetector(FACE_BOX))
    with VideoSource(vfr_video) as source:
        assert source.vfr and source.frame_count == 50 and len(source.timeline) == 75
    project = vfr_project(tmp_path, vfr_video, media[1])  # the 1 s dub: pad follows the 3 s picture
    project.execute(SetProjectSettings(project, {"checkpoint": str(tiny_checkpoint)}))
    assert project.video.facts.frame_count == 75
    renderer = Renderer(vfr_video, media[1], project.render_options(None))
    assert jobs.media_length(project) == project.output_frames() == len(renderer.source) == 75


def test_smoothing_a_take_of_a_variable_rate_source_takes_the_face_of_each_picture_frame(media, vfr_video, tmp_path,
                                                                                         monkeypatch):
    import core.faces
    import core.smooth
    from core.video import VideoSource, VideoWriter

    monkeypatch.setattr(core.faces, "get_detector", lambda name="retinaface", **params: BoxDetector(FACE_BOX))
    looked_up = []  # the source frames whose face each take frame's mouth is cut at
    real = core.smooth.mouth_regions

    def mouth_regions(track, sources, pads):
        looked_up.extend(sources)
        return real(track, sources, pads)

    monkeypatch.setattr(core.smooth, "mouth_regions", mouth_regions)
    project = vfr_project(tmp_path, vfr_video, media[1])
    n = project.output_frames()
    assert n == 75  # the conformed picture: source frames 25..49 each shown twice
    project.execute(ReplaceSegments(project, [project.make_segment(0, n)]))
    take_id = project.new_take_id()
    file = project.take_file_for(take_id)
    with VideoWriter(file, 128, 96, FPS, crf=0, preset="ultrafast") as writer:  # a take of the whole picture
        for _ in range(n):
            writer.write(np.full((96, 128, 3), 128, np.uint8))
    jobs.add_take(project, file, "s1", "Render whole clip", ["s1"], take_id=take_id, start=0, end=n)
    smoothed = jobs.commit_smooth(project, jobs.smooth_take(NO_PROGRESS, NEVER, jobs.smooth_request(project, "s1", 3)))
    with VideoSource(vfr_video) as source:
        assert [int(i) for i in looked_up] == source.timeline.tolist()
    with VideoSource(project.take_path(project.takes[smoothed])) as take:
        assert take.frame_count == n


def test_smoothing_a_take_detects_only_its_own_frames_and_their_context(media, vfr_video, tmp_path, monkeypatch, every_frame):
    import core.faces
    from core.faces import context_frames
    from core.video import VideoWriter

    detector = BoxDetector(FACE_BOX)
    monkeypatch.setattr(core.faces, "get_detector", lambda name="retinaface", **params: detector)
    monkeypatch.setenv("LIPSMITH_CACHE", str(tmp_path / "cache"))  # nothing detected yet
    project = vfr_project(tmp_path, vfr_video, media[1])
    project.execute(ReplaceSegments(project, [project.make_segment(0, 10),
                                              project.make_segment(10, project.output_frames())]))
    take_id = project.new_take_id()
    file = project.take_file_for(take_id)
    with VideoWriter(file, 128, 96, FPS, crf=0, preset="ultrafast") as writer:  # output frames 0-9: source 0-9
        for _ in range(10):
            writer.write(np.full((96, 128, 3), 128, np.uint8))
    jobs.add_take(project, file, "s1", "Render segment s1", ["s1"], take_id=take_id, start=0, end=10)
    jobs.smooth_take(NO_PROGRESS, NEVER, jobs.smooth_request(project, "s1", 3))
    assert detector.calls == 10 + context_frames(smooth_window=project.settings["smooth_window"])  # not all 50


def test_face_track_comes_with_the_pictures_timeline_to_index_it_by(vfr_video, monkeypatch):
    import core.faces
    from core.video import VideoSource

    monkeypatch.setattr(core.faces, "get_detector", lambda name="retinaface", **params: BoxDetector(FACE_BOX))
    found = jobs.face_track(NO_PROGRESS, NEVER, jobs.TrackRequest(vfr_video, "test-box", None, 0))
    assert found.track.has_face.shape == (50,)  # the track is the source's: one entry per decoded frame
    with VideoSource(vfr_video) as source:
        assert found.timeline.tolist() == source.timeline.tolist() and len(found.timeline) == 75
    assert found.timeline[[24, 25, 26, 27, 74]].tolist() == [24, 25, 25, 26, 49]
    # the faces to choose from, from the same detections, by source frame too
    assert [(f.index, f.box) for f in found.faces.at(49)] == [(0, tuple(map(float, FACE_BOX)))]
    assert len(found.faces) == 50 and found.faces.found(0) == 1


def test_a_track_request_for_some_frames_detects_only_them_and_their_context(vfr_video, tmp_path, monkeypatch, every_frame):
    import core.faces
    from core.faces import context_frames

    detector = BoxDetector(FACE_BOX)
    monkeypatch.setattr(core.faces, "get_detector", lambda name="retinaface", **params: detector)
    request = jobs.TrackRequest(vfr_video, "test-box", None, 0, str(tmp_path / "faces"), frames=range(20, 25))
    track = jobs.face_track(NO_PROGRESS, NEVER, request).track
    margin = context_frames(smooth_window=0)
    assert detector.calls == 5 + 2 * margin and len(track) == 50  # of the source's 50 frames
    assert track.has_face[20 - margin:25 + margin].all() and not track.has_face[25 + margin:].any()
    assert request.key != replace(request, frames=None).key  # another track than the whole clip's


# --------------------------------------------------------------------------- the actor's mouth


@pytest.mark.parametrize("mouth", ["actor", "actor-closing"])
def test_a_render_with_the_actors_mouth_records_its_mouth_fallbacks_and_warnings(media, tiny_checkpoint, tmp_path,
                                                                                 monkeypatch, mouth):
    import core.faces
    from core.project import NudgeDub

    monkeypatch.setattr(core.faces, "get_detector", lambda name="retinaface", **params: BoxDetector(FACE_BOX))
    video, dub, _ = media
    project = Project.new(video, MediaFacts.probe_video(video), path=tmp_path / "scene.lipsmith", dub_path=dub,
                          dub_facts=jobs.load_dub(NO_PROGRESS, NEVER, dub).facts)
    project.execute(SetProjectSettings(project, {"checkpoint": str(tiny_checkpoint), "length_policy": "pad",
                                                  "mouth": "generated"}))
    project.execute(NudgeDub(project, 15))  # 15 of the 25 frames before the dub starts
    project.execute(ReplaceSegments(project, [project.make_segment(0, 25)]))
    project.save()
    with pytest.raises(EditError, match="mouth must be one of"):
        jobs.render_request(project, 0, 25, "s1", "segment s1", mouth="teeth")
    request = jobs.render_request(project, 0, 25, "s1", "segment s1", mouth=mouth)
    assert request.settings["mouth"] == mouth and project.settings["mouth"] == "generated"  # this render only
    result = jobs.render_take(NO_PROGRESS, NEVER, request)
    # a 1 s clip has no footage 1 s away from any frame: every lip-synced frame fell back to the generated mouth
    assert result.generated == 10 and result.generated_mouth_ranges == [(15, 25)]
    assert len(result.warnings) == 1 and "60% of the output" in result.warnings[0]
    take_id = jobs.commit_render(project, result)
    take = project.takes[take_id]
    assert take.mouth == mouth and take.label.startswith(f"Take 1 · {MOUTH_NAMES[mouth]} · ")
    assert take.generated_mouth_ranges == [(15, 25)] and take.report["warnings"] == result.warnings
    assert project.generated_mouth_ranges() == [(15, 25)]

    plain = jobs.render_take(NO_PROGRESS, NEVER, jobs.render_request(project, 0, 25, "s1", "segment s1",
                                                                     replace="always"))
    assert plain.generated_mouth_ranges == []
    take_id = jobs.commit_render(project, plain)
    take = project.takes[take_id]
    assert take.mouth == "generated" and take.label.startswith("Take 2 · generated mouth · ")
    assert "generated_mouth" not in take.report and project.generated_mouth_ranges() == []


# --------------------------------------------------------------------------- a render never replaces a chosen take unasked


def three_segments_with_takes(folder: Path) -> Project:
    """s1 [0, 10) exports a take scored 0.5, s2 [10, 20) one scored 0.9, s3 [20, 30) none."""
    from core.project import AddTake, SetScores

    video, dub = folder / "clip.mp4", folder / "dub.wav"
    for path in (video, dub):
        path.write_bytes(b"media")
    project = Project.new(video, MediaFacts(duration=1.2, fps=FPS, frame_count=30), path=folder / "scene.lipsmith",
                          dub_path=dub, dub_facts=MediaFacts(duration=1.2))
    project.execute(ReplaceSegments(project, [project.make_segment(0, 10), project.make_segment(10, 20),
                                              project.make_segment(20, 30)]))
    for sid in ("s1", "s2"):
        take = project.new_take(sid, project.take_file_for(f"own-{sid}"))
        project.execute(AddTake(project, take, choose=True))
    project.execute(SetScores(project, {"s1": (0.5, None), "s2": (0.9, None)}))
    return project


def rendered(project: Project, replace: str) -> str:
    """A whole-clip render committed as the editor's render job's result is."""
    request = jobs.render_request(project, 0, 30, what="whole clip", replace=replace)
    file = project.take_file_for(f"render-{len(project.takes)}")
    file.write_bytes(b"not really a video")
    return jobs.commit_render(project, jobs.RenderResult(request, file, 0, 30, {"file": "x"}, 30, [], 1.0, "cpu"))


@pytest.mark.parametrize("replace, chosen", [("never", ["t1", "t2", "new"]), ("better", ["t1", "t2", "new"]),
                                             ("always", ["new", "new", "new"])])
def test_a_render_chooses_its_take_only_where_none_was_chosen_unless_told(tmp_path, replace, chosen):
    project = three_segments_with_takes(tmp_path)
    new = rendered(project, replace)
    assert [s.take_id for s in project.segments] == [new if c == "new" else c for c in chosen]
    assert all(new in [t.id for t in project.takes_for(s.id)] for s in project.segments)  # a take of each
    with pytest.raises(EditError, match="replace chosen takes must be one of"):
        jobs.render_request(project, 0, 30, replace="sometimes")


def test_where_the_new_take_scores_better_it_is_chosen_when_its_scores_arrive_in_the_renders_step(tmp_path):
    project = three_segments_with_takes(tmp_path)
    new = rendered(project, "better")
    request = jobs.score_request(project, render=new, replace="better")
    assert request.segments == {"s1": (new, 0, 10), "s2": (new, 10, 20), "s3": (new, 20, 30)}  # one pass over it
    depth = project.history.index
    values = {"s1": 0.7, "s2": 0.6, "s3": 0.4}  # better than s1's 0.5, worse than s2's 0.9
    chose = jobs.commit_scores(project, {"scores": {sid: (values[sid], None) for sid in request.segments},
                                         "segments": request.segments, "takes": {new: {"lse_c": 0.55}},
                                         "scorer": "test", "render": new, "replace": request.replace})
    assert chose == ["s1"] and project.history.index == depth  # joined the render's undo step
    assert [(s.take_id, s.lse_c) for s in project.segments] == [(new, 0.7), ("t2", 0.9), (new, 0.4)]
    assert project.takes[new].segment_score(project.segment("s2")) == (0.6, None)  # shown with the take
    project.undo()
    assert [(s.take_id, s.lse_c) for s in project.segments] == [("t1", 0.5), ("t2", 0.9), (None, None)]


def test_scores_of_another_expert_choose_no_take_and_clear_the_old_scale(tmp_path):
    project = three_segments_with_takes(tmp_path)  # scored 0.5 / 0.9 by an expert whose version is not known
    new = rendered(project, "better")
    request = jobs.score_request(project, render=new, replace="better")
    scale = {"name": "lipsmith-expert:other.safetensors", "sha256": "b" * 64, "weak_below": 0.064}
    chose = jobs.commit_scores(project, {"scores": {sid: (0.7, None) for sid in request.segments},
                                         "segments": request.segments, "takes": {new: {"lse_c": 0.7}},
                                         "scorer": scale["name"], "scale": scale, "render": new,
                                         "replace": request.replace})
    assert chose == []  # 0.7 on one scale is not better than 0.5 on another
    assert [(s.take_id, s.lse_c) for s in project.segments] == [("t1", None), ("t2", None), (new, 0.7)]
    assert project.scorer == {"name": scale["name"], "sha256": scale["sha256"]} and project.threshold == 0.064
    assert project.takes["t1"].scores == {} and project.takes[new].segment_score(project.segment("s1")) == (0.7, None)


def test_a_whole_clip_render_with_a_line_slipped_meanwhile_is_scored_and_smoothed_for_the_timing_it_had(tmp_path):
    from core.project import SlipSegment

    project = three_segments_with_takes(tmp_path)
    request = jobs.render_request(project, 0, 30, what="whole clip", replace="always")
    project.execute(SlipSegment(project, "s3", 2))  # while it renders (for s3 at 0)
    file = project.take_file_for("render")
    file.write_bytes(b"not really a video")
    new = jobs.commit_render(project, jobs.RenderResult(request, file, 0, 30, {"file": "x"}, 30, [], 1.0, "cpu"))
    assert [s.take_id for s in project.segments] == [new, new, None]  # s3's line moved: not chosen there
    # its scoring pass measures it over the segments whose timing it has: not s3 at +2
    assert set(jobs.score_request(project, render=new).segments) == {"s1", "s2"}
    # smoothing s1's take: chosen, unless s1 slips before it is done
    smooth = jobs.smooth_request(project, "s1", 3)
    project.execute(SlipSegment(project, "s1", -1))
    result = jobs.SmoothResult(smooth, project.take_file_for("smoothed"), {"file": "y"})
    result.file.write_bytes(b"not really a video")
    smoothed = jobs.commit_smooth(project, result)
    assert project.segment("s1").take_id is None and smoothed in project.takes
    project.undo()
    project.undo()  # s1 at 0 again: its take is the render's
    result = jobs.SmoothResult(smooth, project.take_file_for("smoothed-2"), {"file": "z"})
    result.file.write_bytes(b"not really a video")
    assert project.segment("s1").take_id == new
    smoothed = jobs.commit_smooth(project, result)
    assert project.segment("s1").take_id == smoothed != new
