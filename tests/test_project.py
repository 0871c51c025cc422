"""The project model: file round trip, paths, relink, commands and history, autosave, recent files.

No real media needed: projects are made from media facts; media files are small byte files.
"""
import hashlib
import json
import os
import shutil
from collections import namedtuple
from dataclasses import replace
from pathlib import Path

import pytest

import core.project.fileformat as fileformat
from core.project import (DEFAULT_THRESHOLD, AddAdaptedModel, AddTake, Autosaver, ChooseTake, EditError, MediaFacts, MergeSegments, NudgeDub, Project,
                          ProjectError, RecentProjects, RelinkMedia, RemoveTake, RenameSegment, RenameTake, ReplaceSegments,
                          SetProjectSettings, SetScores, SetSegmentSettings, SetThreshold, SplitSegment, History,
                          Command, RelinkAdaptedModel, RemoveAdaptedModel, autosave_path_for, recovery_candidate,
                          AddMarker, EditMarker, Marker, RemoveMarker, SlipSegment, choose_face)

FACTS = MediaFacts(size=None, fingerprint=None, duration=10.0, fps=25.0, frame_count=250, width=640, height=360)


def write_media(path: Path, size: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes((i * 7 + seed) % 251 for i in range(size)))
    return path


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "job"
    write_media(root / "media" / "clip.mp4", 3000)
    write_media(root / "media" / "dub.wav", 1000, seed=3)
    return root


def make_project(folder: Path) -> Project:
    """A saved project with 3 segments, scores, an override, a chosen take and an export record."""
    video = folder / "media" / "clip.mp4"
    dub = folder / "media" / "dub.wav"
    facts = MediaFacts.probe_file(video)  # size and fingerprint; timing as if probed
    p = Project.new(video, replace(FACTS, size=facts.size, fingerprint=facts.fingerprint),
                    path=folder / "scene.lipsmith", dub_path=dub, dub_facts=MediaFacts.probe_file(dub, duration=9.5),
                    settings={"length_policy": "cut"})  # the output ends with the dub, 12 frames before the video
    p.execute(ReplaceSegments(p, [p.make_segment(0, 100), p.make_segment(100, 140, "silence"),
                                  p.make_segment(140, 250)]))
    p.execute(SetSegmentSettings(p, "s1", {"smooth_window": 9, "pads": (0, 20, 0, 0)}))
    take_id = p.new_take_id()
    take = p.new_take("s1", p.take_file_for(take_id), take_id=take_id, hashes={"file": "ab"},
                      scores={"lse_c": 7.0, "lse_d": float("nan")})
    p.take_path(take).write_bytes(b"take one")
    p.execute(AddTake(p, take, choose=True))
    p.execute(SetScores(p, {"s1": (6.5, 7.2), "s3": (3.0, 9.1)}))  # s1: its take's; s3: its original frames
    p.record_export(folder / "out" / "final.mp4", preset="web", info={"frames": 250})
    p.save()
    return p


def state(p: Project) -> dict:
    """The file's content, less the id counters (ids are never reused, so undo does not rewind them)."""
    d = p.to_dict()
    del d["next_ids"]
    return d


# --------------------------------------------------------------------------- file round trip


def test_round_trip_keeps_everything_and_stores_relative_paths(folder):
    p = make_project(folder)
    assert not p.modified
    q = Project.load(folder / "scene.lipsmith")
    assert q.to_dict() == p.to_dict()
    assert q.segments == p.segments and q.takes == p.takes and q.exports == p.exports
    assert q.media == p.media and q.dub_offset == p.dub_offset and q.settings == p.settings
    assert q.segment("s1").settings == {"smooth_window": 9, "pads": [0, 20, 0, 0]}
    # NaN stored as null, not invalid JSON; the segment it exports scored with it
    assert q.takes["t1"].scores == {"lse_c": 7.0, "lse_d": None, "segments": {"s1": [0, 100, 6.5, 7.2]}}
    assert not q.modified and not q.history.can_undo
    data = json.loads((folder / "scene.lipsmith").read_text())
    assert data["schema_version"] == fileformat.SCHEMA_VERSION == 8
    assert data["media"]["video"]["relative"] == "media/clip.mp4"
    assert data["media"]["video"]["absolute"] == str(folder / "media" / "clip.mp4")
    assert data["takes"][0]["file"] == "t1.mkv"
    # new ids continue after the loaded ones
    assert q.new_segment_id() == "s4" and q.new_take_id() == "t2"


def test_moving_the_whole_folder_keeps_media_linked(folder, tmp_path):
    make_project(folder)
    moved = shutil.move(str(folder), str(tmp_path / "elsewhere" / "job2"))
    q = Project.load(Path(moved) / "scene.lipsmith")
    assert q.missing_media() == []
    assert q.video.path == Path(moved) / "media" / "clip.mp4"
    assert q.take_path("t1").read_bytes() == b"take one"


def test_a_copied_folder_uses_its_own_media_not_the_originals(folder, tmp_path):
    make_project(folder)
    copy = Path(shutil.copytree(folder, tmp_path / "copy"))
    q = Project.load(copy / "scene.lipsmith")
    assert q.video.path == copy / "media" / "clip.mp4" and q.dub.path == copy / "media" / "dub.wav"


def test_absolute_path_is_the_fallback_when_only_the_project_moved(folder, tmp_path):
    make_project(folder)
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    shutil.move(str(folder / "scene.lipsmith"), str(elsewhere / "scene.lipsmith"))
    q = Project.load(elsewhere / "scene.lipsmith")
    assert q.missing_media() == []
    assert q.video.path == folder / "media" / "clip.mp4"
    q.save()  # the relative link now points from the new folder
    assert json.loads((elsewhere / "scene.lipsmith").read_text())["media"]["video"]["relative"] == \
        "../job/media/clip.mp4"


def test_save_as_rewrites_relative_paths_and_copies_the_takes(folder, tmp_path):
    p = make_project(folder)
    p.execute(NudgeDub(p, 2))
    p.autosave()
    old_autosave = autosave_path_for(folder / "scene.lipsmith")
    assert old_autosave.exists()
    target = tmp_path / "copies" / "v2.lipsmith"
    write_media(tmp_path / "copies" / "v2.lipsmith-cache" / "t1.mkv", 5)  # another project's take was there
    p.save_as(target)
    assert p.path == target and not p.modified
    data = json.loads(target.read_text())
    assert data["media"]["video"]["relative"] == "../job/media/clip.mp4"
    assert (tmp_path / "copies" / "v2.lipsmith-cache" / "t1.mkv").read_bytes() == b"take one"
    assert (folder / "scene.lipsmith-cache" / "t1.mkv").exists()  # the old project keeps its own
    assert not old_autosave.exists()
    assert Project.load(folder / "scene.lipsmith").dub_offset == 0  # the old file is as it was
    assert Project.load(target).dub_offset == 2


# --------------------------------------------------------------------------- missing media


def test_missing_media_found_by_name_and_size_then_relinked_with_undo(folder, tmp_path):
    make_project(folder)
    library = tmp_path / "library"
    write_media(library / "a" / "clip.mp4", 2999)  # same name, other size: not it
    real = library / "b" / "clip.mp4"
    real.parent.mkdir(parents=True)
    shutil.move(str(folder / "media" / "clip.mp4"), str(real))
    q = Project.load(folder / "scene.lipsmith")
    assert q.missing_media() == ["video"]
    before = state(q)
    assert before["media"]["video"]["relative"] == "media/clip.mp4"  # a missing link is re-saved unchanged
    assert q.find_moved("video") is None  # not in the project's folder
    found = q.find_moved("video", [library])
    assert found == real
    assert q.locate_missing([library]) == {"video": real}
    q.relink("video", found)
    assert q.missing_media() == [] and q.video.path == real and q.modified
    assert q.video.facts == Project.load(folder / "scene.lipsmith").video.facts  # same file: facts kept
    assert q.history.undo_text == "Relink video to clip.mp4"
    q.undo()
    assert q.missing_media() == ["video"] and state(q) == before and not q.modified
    q.redo()
    assert q.video.path == real


def test_find_moved_checks_the_fingerprint(folder, tmp_path):
    make_project(folder)
    impostor = write_media(tmp_path / "lib" / "clip.mp4", 3000, seed=9)  # same name and size, other bytes
    (folder / "media" / "clip.mp4").unlink()
    q = Project.load(folder / "scene.lipsmith")
    assert q.find_moved("video", [tmp_path / "lib"]) is None
    assert impostor.exists()


def test_relink_refuses_a_different_file_without_new_facts(folder, tmp_path):
    p = make_project(folder)
    other = write_media(tmp_path / "other.mp4", 1234)
    with pytest.raises(EditError, match="not the same file"):
        p.relink("video", other)
    with pytest.raises(EditError, match="file not found"):
        p.relink("video", tmp_path / "nope.mp4")
    assert not p.modified
    p.relink("video", other, MediaFacts(size=1234, fps=30.0, frame_count=300))
    assert p.video.facts.fps == 30.0 and p.fps == 30.0


# --------------------------------------------------------------------------- commands and history


EXPERT_A = {"name": "lipsmith-expert:a.safetensors", "sha256": "a" * 64, "weak_below": DEFAULT_THRESHOLD}
EXPERT_B = {"name": "lipsmith-expert:b.safetensors", "sha256": "b" * 64, "weak_below": DEFAULT_THRESHOLD + 0.029}


def _commands():
    """(name, function making a command on a project from make_project)."""
    return [
        ("settings", lambda p: SetSegmentSettings(p, "s3", {"feather": 0.2, "checkpoint": "adapted/me.safetensors"})),
        ("reset settings", lambda p: SetSegmentSettings(p, "s1", reset=["smooth_window"])),
        ("split", lambda p: SplitSegment(p, "s1", 40)),
        ("merge", lambda p: MergeSegments(p, ["s2", "s1"])),
        ("add take", lambda p: AddTake(p, p.new_take("s3", "t9.mkv"), choose=True)),
        ("remove take", lambda p: RemoveTake(p, "t1")),
        ("choose take", lambda p: ChooseTake(p, "s1", None)),
        ("rename take", lambda p: RenameTake(p, "t1", "  best  ")),
        ("nudge", lambda p: NudgeDub(p, -3)),
        ("threshold", lambda p: SetThreshold(p, 7)),
        ("project settings", lambda p: SetProjectSettings(p, {"detector": "sfd", "device": "cuda:1"})),
        ("relink", lambda p: RelinkMedia(p, "dub", write_media(p.folder / "dub2.wav", 1000))),
        ("replace segments", lambda p: ReplaceSegments(p, [p.make_segment(10, 20)])),
        ("scores", lambda p: SetScores(p, {"s2": (1.5, None)})),
        ("take scores", lambda p: SetScores(p, {"s1": (6.0, None)}, take_scores={
            "t1": {"lse_c": 6.0, "frame_conf": [1.0, float("nan"), 2.5], "frame_fps": 25.0}})),
        ("scores of an expert", lambda p: SetScores(p, {"s1": (0.07, None)}, take_scores={"t1": {"lse_c": 0.07}},
                                                    scorer=EXPERT_B)),
        ("rename segment", lambda p: RenameSegment(p, "s3", "  Marie:\n last line ")),
        ("dialog settings", lambda p: SetProjectSettings(p, {"length_policy": "bounce", "face_index": 2,
                                                             "feather": 0.15}, merge=False)),
        ("adapted model", lambda p: AddAdaptedModel(p, write_media(p.folder / "scene.adapted.safetensors", 500),
                                                    info={"step": 3, "val_l1": 0.05}, use=True)),
    ]


@pytest.mark.parametrize("name,make", _commands(), ids=[n for n, _ in _commands()])
def test_every_command_undoes_and_redoes_exactly(folder, name, make):
    p = make_project(folder)
    before = state(p)
    command = p.execute(make(p))
    after = state(p)
    assert after != before and p.modified
    assert p.history.undo_text == command.text and command.text
    p.undo()
    assert state(p) == before and not p.modified
    assert p.history.redo_text == command.text
    p.redo()
    assert state(p) == after and p.modified
    p.save()
    assert state(Project.load(p.path)) == after


def test_split_and_merge_details(folder):
    p = make_project(folder)
    split = p.execute(SplitSegment(p, "s1", 40, scores=((6.0, 7.0), (7.0, 7.5))))
    left, right = p.segment("s1"), p.segment(split.new_id)
    assert (left.start, left.end, right.start, right.end) == (0, 40, 40, 100)
    assert left.take_id == right.take_id == "t1"  # the take covers both halves
    assert right.settings == left.settings == {"smooth_window": 9, "pads": [0, 20, 0, 0]}
    assert [t.id for t in p.takes_for(right.id)] == ["t1"]
    p.execute(MergeSegments(p, [right.id, "s1"]))
    merged = p.segment("s1")
    assert (merged.start, merged.end, merged.take_id) == (0, 100, "t1")
    assert merged.lse_c == pytest.approx((6.0 * 40 + 7.0 * 60) / 100)  # frame-weighted
    p.execute(MergeSegments(p, ["s1", "s2"]))  # speech + silence: speech, take no longer covers it
    assert p.segment("s1").kind == "speech" and p.segment("s1").take_id is None
    assert [s.id for s in p.segments] == ["s1", "s3"]


@pytest.mark.parametrize("frame", [0, 100, -5, 150, 40.5, "40"])
def test_split_point_must_be_inside_the_segment(folder, frame):
    p = make_project(folder)
    before, depth = state(p), p.history.index
    with pytest.raises(EditError, match="split"):
        p.execute(SplitSegment(p, "s1", frame))
    assert state(p) == before and p.history.index == depth and not p.modified


def test_merge_and_other_validation(folder):
    p = make_project(folder)
    FrameRange = namedtuple("FrameRange", "start end kind")  # the shape core.segments.to_frames returns
    p.execute(ReplaceSegments(p, [FrameRange(60, 100, "speech"), FrameRange(0, 50, "speech")]))
    assert [(s.id, s.start) for s in p.segments] == [("s5", 0), ("s4", 60)]
    a, b = (s.id for s in p.segments)
    before = state(p)
    with pytest.raises(EditError, match="not adjacent: frames 50–60"):
        MergeSegments(p, [a, b])
    with pytest.raises(EditError, match="at least two"):
        MergeSegments(p, [a, a])
    with pytest.raises(EditError, match="no segment 'zz'"):
        MergeSegments(p, [a, "zz"])
    with pytest.raises(EditError, match="overlaps"):
        ReplaceSegments(p, [p.make_segment(0, 50), p.make_segment(40, 60)])
    with pytest.raises(EditError, match="cannot be set per segment"):
        SetSegmentSettings(p, a, {"device": "cpu"})
    with pytest.raises(EditError, match="fraction"):
        SetSegmentSettings(p, a, {"feather": 2})
    with pytest.raises(EditError, match="pads"):
        SetSegmentSettings(p, a, {"pads": (1, 2, 3)})
    assert state(p) == before


def test_choose_take_must_cover_the_segment(folder):
    p = make_project(folder)
    with pytest.raises(EditError, match=r"take t1 \[0, 100\) does not cover segment s3 \[140, 250\)"):
        ChooseTake(p, "s3", "t1")
    with pytest.raises(EditError, match="no take"):
        ChooseTake(p, "s3", "t7")
    with pytest.raises(EditError, match="empty"):
        RenameTake(p, "t1", "   ")


def test_consecutive_nudges_merge_and_cancel_out(folder):
    p = make_project(folder)
    depth = p.history.index
    for _ in range(3):
        p.execute(NudgeDub(p, 1))
    p.execute(NudgeDub(p, -5))
    assert p.dub_offset == -2 and p.history.index == depth + 1
    assert p.history.undo_text == "Nudge dub -2 frames"
    p.undo()
    assert p.dub_offset == 0 and not p.modified
    p.redo()
    p.execute(NudgeDub(p, 2))  # back to 0: the merged step is a no-op and disappears
    assert p.dub_offset == 0 and p.history.index == depth and not p.modified
    p.execute(SetThreshold(p, 6))
    p.execute(NudgeDub(p, 1))  # a threshold change in between: not merged with anything before it
    assert p.history.index == depth + 2


def spans(p: Project) -> list:
    return [(s.id, s.start, s.end, s.kind, s.take_id) for s in p.segments]


def test_nudging_the_dub_moves_its_segments_and_drops_takes_rendered_for_the_old_timing(folder):
    p = make_project(folder)  # s1 [0, 100) speech with take t1, s2 [100, 140) silence, s3 [140, 250) speech
    assert p.output_frames() == 238  # cut: the 9.5 s dub is shorter than the 250-frame video
    before, depth = state(p), p.history.index
    t1 = p.takes["t1"]
    for _ in range(4):
        p.execute(NudgeDub(p, 1))
    assert p.dub_offset == 4 and p.history.index == depth + 1 and p.history.undo_text == "Nudge dub +4 frames"
    assert p.output_frames() == 242
    filler = p.segments[0].id
    # every segment 4 frames later, clamped to the output; the dub has not started in [0, 4): silence
    assert spans(p) == [(filler, 0, 4, "silence", None), ("s1", 4, 104, "speech", None),
                        ("s2", 104, 144, "silence", None), ("s3", 144, 242, "speech", None)]
    # t1 was rendered for the dub at 0: not exported as if in sync any more, but kept as it was
    assert p.takes["t1"] == t1 and t1.settings["dub_offset_frames"] == 0
    assert p.chosen_runs() == [] and p.confidence_curve() is None
    assert [p.segment(i).lse_c for i in ("s1", "s3")] == [None, None]  # they scored the old timing
    assert p.verdict("s3") == "unscored"
    top = p.history.commands[p.history.index - 1]
    assert top.unchosen == ("s1",) and top.removed == ()
    p.undo()
    assert state(p) == before and not p.modified  # offset, ranges, scores, the chosen take: all back
    p.redo()
    after = state(p)
    p.save()
    assert state(Project.load(p.path)) == after

    # a take rendered at the new timing is chosen; nudging back to 0 (a separate step) finds t1 again
    take = p.new_take("s1", "t-at-4.mkv")
    assert take.settings["dub_offset_frames"] == 4 and (take.start, take.end) == (4, 104)
    p.execute(AddTake(p, take, choose=True))
    p.execute(NudgeDub(p, -4))
    assert spans(p) == [("s1", 0, 100, "speech", "t1"), ("s2", 100, 140, "silence", None),
                        ("s3", 140, 238, "speech", None)]
    top = p.history.commands[p.history.index - 1]
    assert top.removed == (filler,) and top.unchosen == ()
    p.execute(NudgeDub(p, 4))  # merged with the -4: back where the step began, so no edit at all
    assert p.dub_offset == 4 and p.segment("s1").take_id == take.id and p.history.undo_text.startswith("Add")


def test_unrendered_segments_are_those_that_export_no_take(folder):
    p = make_project(folder)  # s1 with t1 chosen, s2 silence and s3 speech without a take
    assert [s.id for s in p.unrendered_segments()] == ["s2", "s3"]
    p.execute(NudgeDub(p, 1))  # t1 was rendered for the old timing: s1 shows the original frames
    assert [s.id for s in p.unrendered_segments()] == [p.segments[0].id, "s1", "s2", "s3"]
    p.undo()
    p.execute(ChooseTake(p, "s1", None))
    assert [s.id for s in p.unrendered_segments()] == ["s1", "s2", "s3"]


def test_a_run_of_nudges_is_worked_out_from_where_it_began(folder):
    p = make_project(folder)
    before, depth = state(p), p.history.index
    p.execute(NudgeDub(p, -60))  # the dub ends at 178: s3 [80, 178), cut short
    assert spans(p)[-1] == ("s3", 80, 178, "speech", None)
    p.execute(NudgeDub(p, -50))  # s1 [-110, -10) leaves the output
    top = p.history.commands[p.history.index - 1]
    assert p.history.index == depth + 1 and top.removed == ("s1",) and top.unchosen == ("s1",)
    assert spans(p) == [("s2", 0, 30, "silence", None), ("s3", 30, p.output_frames(), "speech", None)]
    p.execute(NudgeDub(p, 110))  # back to 0 in the same run: nothing clamped away is lost
    assert state(p) == before and p.history.index == depth and not p.modified
    # far later: the dub starts after the video's end, all of it silence
    p.execute(NudgeDub(p, 300))
    assert [(s.start, s.end, s.kind) for s in p.segments] == [(0, 250, "silence")]
    p.undo()
    assert state(p) == before


def test_dub_longer_than_the_video_brings_undetected_dub_into_the_edge_segments(folder):
    p = make_project(folder)
    dub = p.dub
    p.execute(RelinkMedia(p, "dub", dub.path, replace(dub.facts, duration=12.0)))  # 300 frames: cut at 250
    assert p.output_frames() == 250
    p.execute(NudgeDub(p, -10))  # dub frames 250–260 come into view, never detected: they join s3
    assert spans(p) == [("s1", 0, 90, "speech", None), ("s2", 90, 130, "silence", None),
                        ("s3", 130, 250, "speech", None)]
    p.undo()
    p.execute(NudgeDub(p, 10))
    assert [(s.start, s.end, s.kind) for s in p.segments] == [(0, 10, "silence"), (10, 110, "speech"),
                                                                (110, 150, "silence"), (150, 250, "speech")]
    # custom ranges that did not cover the timeline move without any filling
    p.execute(ReplaceSegments(p, [p.make_segment(20, 40), p.make_segment(240, 250)]))
    p.execute(NudgeDub(p, 5))
    assert [(s.start, s.end) for s in p.segments] == [(25, 45), (245, 250)]


def test_slipping_a_segment_moves_only_its_dub_in_one_undo_step_and_is_saved(folder):
    p = make_project(folder)  # s1 [0, 100) speech with take t1, s2 [100, 140) silence, s3 [140, 250) speech
    before, depth = state(p), p.history.index
    for frames in (1, 1, 1, -1):
        p.execute(SlipSegment(p, "s3", frames))
    assert p.segment("s3").slip == 2 and p.history.index == depth + 1
    assert p.history.undo_text == "Slip segment s3 to +2 frames"
    # its frames, the other segments, the dub offset and the takes: as they were
    assert spans(p) == [("s1", 0, 100, "speech", "t1"), ("s2", 100, 140, "silence", None),
                        ("s3", 140, 250, "speech", None)]
    assert p.dub_offset == 0 and [s.slip for s in p.segments] == [0, 0, 2] and p.slips() == ((140, 250, 2),)
    p.undo()
    assert state(p) == before and not p.modified
    p.redo()
    after = state(p)
    assert [s["slip"] for s in after["segments"]] == [0, 0, 2]
    p.save()
    q = Project.load(p.path)
    assert state(q) == after and q.segment("s3").slip == 2
    q.execute(SlipSegment(q, "s1", -1))  # another segment: a step of its own
    q.execute(SlipSegment(q, "s3", 1))
    assert q.history.index == 2 and [s.slip for s in q.segments] == [-1, 0, 3]
    q.execute(SlipSegment(q, "s3", -1))  # back where the run began: no edit at all
    assert q.history.index == 1 and q.segment("s3").slip == 2
    with pytest.raises(EditError, match="s2 is silence: only a speech segment's dub slips"):
        SlipSegment(q, "s2", 1)
    with pytest.raises(EditError, match="whole frames"):
        SlipSegment(q, "s1", 0.5)
    with pytest.raises(EditError, match="no segment 's9'"):
        SlipSegment(q, "s9", 1)


def test_a_slip_stops_choosing_the_segments_take_and_leaves_the_other_segments_takes(folder):
    p = make_project(folder)
    t1 = p.takes["t1"]  # s1's, rendered with nothing slipped, scored 6.5 there
    t2 = p.new_take("s3", p.take_file_for("t2"), take_id="t2")
    p.execute(AddTake(p, t2, choose=True))
    p.execute(SetScores(p, {"s3": (4.0, 8.0)}))
    s3, t2 = p.segment("s3"), p.takes["t2"]
    p.execute(SlipSegment(p, "s1", 2))
    s1 = p.segment("s1")
    assert s1.take_id is None and s1.lse_c is None  # t1 follows the old timing: the original frames export
    assert p.history.commands[p.history.index - 1].unchosen
    assert p.takes == {"t1": t1, "t2": t2} and t1.slip_for(s1) == 0  # kept as it was, listed as rendered before
    assert p.segment("s3") == s3 and p.chosen_runs() == [(s3, t2)]  # the other segment and its take: untouched
    # a render made now records the slip; it serves s1 at +2 and is chosen there
    t3 = p.new_take("s1", p.take_file_for("t3"), take_id="t3")
    assert t3.settings["slips"] == [[0, 100, 2]] and t3.slip_for(s1) == 2 and t2.slip_for(s3) == 0
    p.execute(AddTake(p, t3, choose=True))
    p.execute(SlipSegment(p, "s1", -2))  # slipping back finds t1 again, with its score over s1
    assert p.segment("s1").take_id == "t1" and p.segment("s1").lse_c == 6.5
    p.execute(SlipSegment(p, "s1", 2))  # the run ends where it began: t3 as before, no edit
    assert p.segment("s1").take_id == "t3" and p.history.undo_text.startswith("Add")
    p.execute(SlipSegment(p, "s1", 1))  # +3: no take was rendered for it
    assert p.segment("s1").take_id is None
    # a nudge back to the offset the takes were rendered at does not choose one of another slip
    p.execute(NudgeDub(p, 1))
    p.execute(SetThreshold(p, 6))
    p.execute(NudgeDub(p, -1))
    assert p.dub_offset == 0 and p.segment("s1").take_id is None and p.segment("s3").take_id == "t2"


def test_split_halves_keep_the_slip_and_its_take_and_only_alike_slips_merge(folder):
    p = make_project(folder)
    p.execute(SlipSegment(p, "s3", -2))
    take = p.new_take("s3", p.take_file_for("t2"), take_id="t2")  # rendered at -2
    p.execute(AddTake(p, take, choose=True))
    split = p.execute(SplitSegment(p, "s3", 200))
    halves = p.segment("s3"), p.segment(split.new_id)
    assert [(s.slip, s.take_id, take.slip_for(s)) for s in halves] == [(-2, "t2", -2), (-2, "t2", -2)]
    p.execute(SlipSegment(p, split.new_id, 1))
    with pytest.raises(EditError, match=r"slipped differently \(-2, -1 frames\): slip them alike"):
        MergeSegments(p, ["s3", split.new_id])
    p.execute(SlipSegment(p, split.new_id, -1))
    p.execute(MergeSegments(p, ["s3", split.new_id]))
    assert (p.segment("s3").slip, p.segment("s3").end, p.segment("s3").take_id) == (-2, 250, "t2")


def written_as_schema(p, version: int, forget) -> tuple[Path, dict]:
    """`p`'s saved file as schema `version` wrote it, beside it as old.lipsmith: `forget(data)` takes out
    what that schema did not have. Returns (that file, its data) for tests that write variants of it."""
    data = json.loads(p.path.read_text())
    data["schema_version"] = version
    forget(data)
    old = p.path.with_name("old.lipsmith")
    old.write_text(json.dumps(data))
    return old, data


def test_a_schema_6_file_opens_with_no_segment_slipped(folder):
    p = make_project(folder)
    old, data = written_as_schema(p, 6, lambda data: [s.pop("slip") for s in data["segments"]])
    digest = sha(old)
    q = Project.load(old)
    assert [s.slip for s in q.segments] == [0, 0, 0] and q.segments == p.segments and not q.modified
    assert sha(old) == digest  # reading never rewrites
    data["schema_version"] = fileformat.SCHEMA_VERSION
    data["segments"][0]["slip"] = 1.5
    old.write_text(json.dumps(data))
    with pytest.raises(ProjectError, match=r"old\.lipsmith.*segments\[0\]\.slip: expected int"):
        Project.load(old)


def test_scores_keep_one_experts_scale_and_another_expert_clears_them_in_one_undo_step(folder):
    p = make_project(folder)  # scored without saying by whom: an unknown scale
    p.execute(SetScores(p, {"s1": (0.05, None), "s3": (0.02, None)}, take_scores={"t1": {"lse_c": 0.05}}, scorer=EXPERT_A))
    assert p.scorer == {"name": EXPERT_A["name"], "sha256": EXPERT_A["sha256"]} and p.threshold == DEFAULT_THRESHOLD
    assert p.takes["t1"].scores == {"lse_c": 0.05, "segments": {"s1": [0, 100, 0.05, None]}}  # the old 7.0 gone
    p.execute(SetScores(p, {"s1": (0.04, None)}, scorer=EXPERT_A))  # the same expert: the rest stays
    assert [s.lse_c for s in p.segments] == [0.04, None, 0.02]
    p.execute(SetThreshold(p, 0.03))
    before = state(p)
    command = p.execute(SetScores(p, {"s1": (0.08, None)}, scorer=EXPERT_B))
    assert [s.lse_c for s in p.segments] == [0.08, None, None]  # s3's 0.02 was on A's scale
    assert p.threshold == EXPERT_B["weak_below"] and p.scorer["sha256"] == EXPERT_B["sha256"]
    assert "a.safetensors cleared" in command.text and f"threshold {EXPERT_B['weak_below']:g}" in command.text
    p.save()
    assert Project.load(p.path).scorer == p.scorer
    p.undo()
    assert state(p) == before and p.threshold == 0.03 and p.scorer["sha256"] == EXPERT_A["sha256"]


@pytest.mark.parametrize("threshold, after", [(DEFAULT_THRESHOLD, EXPERT_B["weak_below"]), (0.05, 0.05)])
def test_a_first_scoring_pass_moves_only_the_default_threshold(folder, threshold, after):
    p = Project.new(folder / "media" / "clip.mp4", FACTS, path=folder / "first.lipsmith")
    p.execute(ReplaceSegments(p, [p.make_segment(0, 100)]))
    if threshold != DEFAULT_THRESHOLD:
        p.execute(SetThreshold(p, threshold))  # set by the editor before any score: kept
    p.execute(SetScores(p, {"s1": (0.07, None)}, scorer=EXPERT_B))
    assert p.threshold == after and p.segment("s1").lse_c == 0.07


def test_a_schema_7_file_names_its_scorer_without_a_version(folder):
    p = make_project(folder)
    p.execute(SetScores(p, {"s1": (6.5, 7.2)}, take_scores={"t1": {"scorer": "lipsmith-expert:old.safetensors"}}))
    p.save()
    old, data = written_as_schema(p, 7, lambda data: data.pop("scorer"))
    q = Project.load(old)
    assert q.scorer == {"name": "lipsmith-expert:old.safetensors", "sha256": None}  # the next pass replaces them
    assert q.segments == p.segments and q.threshold == p.threshold
    for s in data["segments"]:
        s["lse_c"] = s["lse_d"] = None
    for t in data["takes"]:
        t["scores"] = {}
    old.write_text(json.dumps(data))
    assert Project.load(old).scorer is None  # never scored


def test_no_merge_across_the_saved_state(folder):
    p = make_project(folder)
    p.execute(NudgeDub(p, 1))
    p.save()
    p.execute(NudgeDub(p, 1))
    assert p.dub_offset == 2 and p.modified
    p.undo()  # back to exactly what is on disk
    assert p.dub_offset == 1 and not p.modified


def test_slider_drags_merge_per_segment_and_key(folder):
    p = make_project(folder)
    depth = p.history.index
    for v in (0.1, 0.2, 0.3):
        p.execute(SetSegmentSettings(p, "s3", {"feather": v}))
    p.execute(SetSegmentSettings(p, "s1", {"feather": 0.5}))
    assert p.history.index == depth + 2
    p.undo()
    p.undo()
    assert "feather" not in p.segment("s3").settings


def test_modified_flag(folder):
    p = make_project(folder)
    assert not p.modified
    p.execute(SetThreshold(p, 9))
    assert p.modified
    p.undo()
    assert not p.modified
    p.redo()
    p.save()
    assert not p.modified
    p.undo()  # now different from the file
    assert p.modified
    p.redo()
    assert not p.modified
    p.execute(SetThreshold(p, 9))  # same value: no-op, not recorded
    assert not p.modified and p.history.redo_text == ""
    p.record_export(folder / "x.mp4")  # not undoable, but unsaved
    assert p.modified and len(p.exports) == 2


def test_history_limit_makes_the_saved_state_unreachable():
    h = History(limit=3)
    state = []

    class Append(Command):
        def __init__(self, v):
            self.v, self.text = v, f"append {v}"

        def do(self):
            state.append(self.v)

        def undo(self):
            state.pop()

    for v in range(5):
        h.push(Append(v))
    assert len(h.commands) == 3 and state == [0, 1, 2, 3, 4]
    while h.can_undo:
        h.undo()
    assert state == [0, 1] and not h.is_clean  # the clean state (empty) fell off the bottom
    h.redo()
    assert state == [0, 1, 2] and h.undo_text == "append 2"


def test_verdict_follows_the_threshold(folder):
    p = make_project(folder)
    # the default is on the bundled expert's scale (0.0734): these official-scale scores all pass it
    assert [p.verdict(s) for s in p.segments] == ["good", "silence", "good"]
    p.execute(SetThreshold(p, 5.0))
    assert [p.verdict(s) for s in p.segments] == ["good", "silence", "poor"]
    p.execute(SetThreshold(p, 7.0))
    assert p.verdict("s1") == "poor"
    p.execute(SetScores(p, {"s1": (float("nan"), None)}))
    assert p.verdict("s1") == "unscored"


def test_weak_segments_are_the_speech_scored_below_the_threshold_in_time_order(folder):
    p = make_project(folder)  # s1 6.5, s2 silence, s3 3.0
    assert p.weak_segments() == []
    p.execute(SetThreshold(p, 7.0))
    assert [s.id for s in p.weak_segments()] == ["s1", "s3"]
    p.execute(SplitSegment(p, "s3", 200))  # the halves' scores are unknown: not weak, unscored
    assert [s.id for s in p.weak_segments()] == ["s1"]
    assert [p.verdict(s) for s in p.segments] == ["poor", "silence", "unscored", "unscored"]


def test_effective_settings_and_render_options(folder):
    p = make_project(folder)
    p.execute(SetSegmentSettings(p, "s3", {"checkpoint": folder / "adapted" / "me.safetensors", "feather": 0.2}))
    p.execute(NudgeDub(p, 5))
    s = p.effective_settings("s3")
    assert s["checkpoint"] == folder / "adapted" / "me.safetensors" and s["feather"] == 0.2
    # the segments moved with the dub (s3 ends where the 9.5 s dub does now: 9.7 s)
    assert (s["start_frame"], s["end_frame"], s["smooth_window"]) == (145, 242, 5)
    options = p.render_options("s1", batch_size=8)
    assert options.pads == (0, 20, 0, 0) and options.smooth_window == 9 and options.batch_size == 8
    assert (options.start_frame, options.end_frame) == (5, 105)
    assert options.dub_offset_s == pytest.approx(5 / 25.0)
    assert options.checkpoint == "generator"
    assert p.render_options("s3").blend.feather == 0.2
    p.save()
    data = json.loads(p.path.read_text())
    s3 = next(d for d in data["segments"] if d["id"] == "s3")
    assert s3["settings"]["checkpoint"]["relative"] == "adapted/me.safetensors"


def test_choosing_a_segments_face_overrides_the_project_and_the_default_drops_the_override(folder):
    p = make_project(folder)
    command, text = choose_face(p, "s3", 1)
    p.execute(command)
    assert p.segment("s3").settings["face_index"] == 1 and p.effective_settings("s3")["face_index"] == 1
    assert "face 1" in text and "default is face 0" in text and "takes keep the face" in text
    assert choose_face(p, "s3", 1) == (None, "Segment s3 dubs face 1 already")
    command, text = choose_face(p, "s3", 0)  # the project's face: the segment follows the project again
    p.execute(command)
    assert "face_index" not in p.segment("s3").settings and "project's default face again" in text
    assert choose_face(p, "s3", 0) == (None, "Segment s3 dubs face 0 already: the project's default face")
    p.undo()
    assert p.segment("s3").settings["face_index"] == 1
    p.undo()
    assert "face_index" not in p.segment("s3").settings
    p.execute(SetProjectSettings(p, {"face_index": 2}))
    command, _ = choose_face(p, "s3", 0)  # face 0 is no longer the default: an override
    p.execute(command)
    assert p.segment("s3").settings["face_index"] == 0
    with pytest.raises(EditError, match="a face is a number"):
        choose_face(p, "s3", -1)


# --------------------------------------------------------------------------- damaged files


def test_truncated_file_raises_and_is_left_untouched(folder):
    make_project(folder)
    path = folder / "scene.lipsmith"
    path.write_bytes(path.read_bytes()[:200])
    digest = sha(path)
    with pytest.raises(ProjectError, match="invalid JSON at line") as info:
        Project.load(path)
    assert info.value.path == path and str(path) in str(info.value)
    assert sha(path) == digest


@pytest.mark.parametrize("version,message", [(99, "newer Lipsmith"), (0, "unknown schema version"),
                                             ("1", "unknown schema version"), (None, "no schema_version")])
def test_unknown_schema_version_is_refused_clearly(folder, version, message):
    make_project(folder)
    path = folder / "scene.lipsmith"
    data = json.loads(path.read_text())
    data["schema_version"] = version
    path.write_text(json.dumps(data))
    digest = sha(path)
    with pytest.raises(ProjectError, match=message):
        Project.load(path)
    assert sha(path) == digest


def test_malformed_fields_are_named(folder):
    make_project(folder)
    path = folder / "scene.lipsmith"
    data = json.loads(path.read_text())
    data["segments"][1]["start"] = "ten"
    path.write_text(json.dumps(data))
    with pytest.raises(ProjectError, match=r"segments\[1\]\.start: expected int"):
        Project.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(ProjectError, match="no JSON object"):
        Project.load(path)
    with pytest.raises(ProjectError, match="file not found"):
        Project.load(folder / "nope.lipsmith")


@pytest.mark.parametrize("damage", [
    lambda d: d.update(media="x"),
    lambda d: d["media"].pop("video"),
    lambda d: d["media"]["video"].update(relative=None, absolute=None),
    lambda d: d["media"]["video"]["facts"].update(fps="fast"),
    lambda d: d["segments"].append({"id": "s9", "start": 5, "end": 6}),  # overlaps s1
    lambda d: d["segments"][0].update(take_id="t99"),
    lambda d: d["segments"][0]["settings"].update(feather="soft"),
    lambda d: d["settings"].update(colour=1),
    lambda d: d.update(threshold="high"),
    lambda d: d.update(scorer={"name": 3, "sha256": None}),
    lambda d: d["takes"][0].pop("file"),
    lambda d: d["exports"][0].update(path=3),
], ids=["media", "no video", "no path", "facts", "overlap", "take", "segment setting", "setting", "threshold",
        "scorer", "take file", "export path"])
def test_any_damage_is_a_project_error(folder, damage):
    make_project(folder)
    path = folder / "scene.lipsmith"
    data = json.loads(path.read_text())
    damage(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ProjectError, match="damaged project: ") as info:
        Project.load(path)
    assert info.value.path == path


def test_migration_hook_runs_in_memory_only(folder, monkeypatch):
    make_project(folder)
    path = folder / "scene.lipsmith"
    digest = sha(path)

    current = fileformat.SCHEMA_VERSION

    def next_version(data):
        data["threshold"] = 4.25
        return data

    monkeypatch.setattr(fileformat, "SCHEMA_VERSION", current + 1)
    monkeypatch.setattr(fileformat, "MIGRATIONS", {**fileformat.MIGRATIONS, current: next_version})
    q = Project.load(path)
    assert q.threshold == 4.25 and q.to_dict()["schema_version"] == current + 1
    assert sha(path) == digest
    monkeypatch.setattr(fileformat, "MIGRATIONS", {})
    with pytest.raises(ProjectError, match=f"no migration from schema version {current}"):
        Project.load(path)


def test_a_crash_while_saving_leaves_the_old_file(folder, monkeypatch):
    p = make_project(folder)
    path = folder / "scene.lipsmith"
    digest = sha(path)
    p.execute(SetThreshold(p, 8))

    def crash(tmp, text):
        Path(tmp).write_text(text[: len(text) // 2])
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(fileformat, "_write_text", crash)
    with pytest.raises(KeyboardInterrupt):
        p.save()
    assert sha(path) == digest and p.modified
    assert sorted(f.name for f in folder.iterdir()) == ["media", "scene.lipsmith", "scene.lipsmith-cache"]
    monkeypatch.undo()
    p.save()
    assert Project.load(path).threshold == 8


def test_unwritable_target_is_a_project_error(folder, tmp_path):
    p = make_project(folder)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ProjectError, match="cannot save"):
        p.save_as(blocker / "sub" / "x.lipsmith")  # a file where a folder should be
    assert p.path == folder / "scene.lipsmith"


# --------------------------------------------------------------------------- autosave and recovery


def test_autosave_only_with_changes_and_recovery(folder):
    p = make_project(folder)
    path = folder / "scene.lipsmith"
    auto = autosave_path_for(path)
    assert auto.name == "scene.lipsmith.autosave"
    assert p.autosave() is None and not auto.exists()
    p.execute(NudgeDub(p, 4))
    assert p.autosave() == auto and auto.exists()
    stamp = auto.stat().st_mtime_ns
    assert p.autosave() is None and auto.stat().st_mtime_ns == stamp  # nothing new since
    os.utime(path, ns=(stamp - 10**9, stamp - 10**9))
    assert recovery_candidate(path) == auto
    r = Project.recover(path)
    assert r.dub_offset == 4 and r.modified and r.path == path and auto.exists()
    assert Project.load(path).dub_offset == 0  # the project file itself is untouched
    os.utime(auto, ns=(stamp - 2 * 10**9, stamp - 2 * 10**9))
    assert recovery_candidate(path) is None  # older than the project file
    os.utime(auto, ns=(stamp + 10**9, stamp + 10**9))
    r.save()
    assert not auto.exists() and recovery_candidate(path) is None
    assert Project.load(path).dub_offset == 4


def test_a_newer_damaged_autosave_is_kept_aside_with_a_message_naming_it(folder):
    make_project(folder)
    path = folder / "scene.lipsmith"
    auto = autosave_path_for(path)
    auto.write_text('{"schema_version": 1, "med')
    future = path.stat().st_mtime_ns + 10**9
    os.utime(auto, ns=(future, future))
    with pytest.raises(ProjectError) as raised:
        recovery_candidate(path)
    kept = folder / "scene.lipsmith.autosave.damaged"
    assert str(raised.value).startswith(f"{auto}: ") and "kept aside as scene.lipsmith.autosave.damaged" in str(
        raised.value)
    assert not auto.exists() and kept.read_text() == '{"schema_version": 1, "med'  # moved, bytes as they were
    assert recovery_candidate(path) is None  # said once: the next open finds nothing to offer or report
    assert Project.load(path).path == path  # the project itself opens as saved


def test_an_older_damaged_autosave_is_stale_and_left_alone(folder):
    make_project(folder)
    path = folder / "scene.lipsmith"
    auto = autosave_path_for(path)
    auto.write_text("not json")
    past = path.stat().st_mtime_ns - 10**9
    os.utime(auto, ns=(past, past))
    assert recovery_candidate(path) is None and auto.read_text() == "not json"


def test_undo_to_the_saved_state_removes_a_stale_autosave(folder):
    p = make_project(folder)
    p.execute(SetThreshold(p, 1))
    auto = p.autosave()
    p.undo()
    assert p.autosave() is None and not auto.exists()


def test_autosaver_ticks_every_minute(folder):
    p = make_project(folder)
    saver = Autosaver(p)
    assert saver.tick(1000.0) is None  # starts the clock
    p.execute(NudgeDub(p, 1))
    assert saver.tick(1059.0) is None and not p.autosave_path.exists()
    assert saver.tick(1060.0) == p.autosave_path
    assert saver.tick(1130.0) is None  # nothing new since the last autosave
    p.execute(NudgeDub(p, 1))
    assert saver.tick(1150.0) is None  # only 20 s into the interval
    assert saver.tick(1190.0) == p.autosave_path
    assert Project.load(p.autosave_path, as_path=p.path).dub_offset == 2


def test_autosaver_keeps_failures(folder, monkeypatch):
    p = make_project(folder)
    saver = Autosaver(p, interval=1)
    saver.tick(0)
    p.execute(NudgeDub(p, 1))

    def full(tmp, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileformat, "_write_text", full)
    assert saver.tick(1) is None and "No space left" in str(saver.last_error)
    monkeypatch.undo()
    assert saver.tick(2) == p.autosave_path and saver.last_error is None


# --------------------------------------------------------------------------- takes cache


def test_removed_take_file_survives_undo_and_garbage_collection_respects_history(folder):
    p = make_project(folder)
    file = p.take_path("t1")
    stray = p.cache_dir / "old" / "t0.mkv"
    write_media(stray, 10)
    writing = p.cache_dir / ".t5.mkv.abc.tmp"
    writing.write_bytes(b"")
    p.execute(RemoveTake(p, "t1"))
    assert file.exists() and p.segment("s1").take_id is None
    assert p.garbage_collect() == [stray]  # t1 can still come back by undo: kept
    assert not (p.cache_dir / "old").exists() and writing.exists()
    p.undo()
    assert p.segment("s1").take_id == "t1" and file.read_bytes() == b"take one"
    p.redo()
    p.history.clear()
    assert p.garbage_collect() == [file] and not file.exists()


def test_takes_must_live_in_the_cache(folder, tmp_path):
    p = make_project(folder)
    with pytest.raises(EditError, match="not inside the project's cache folder"):
        p.new_take("s3", tmp_path / "x.mkv")
    with pytest.raises(EditError, match="inside the project's cache folder"):
        p.new_take("s3", "../x.mkv")
    untitled = Project.new(folder / "media" / "clip.mp4", FACTS)
    with pytest.raises(ProjectError, match="save the project first"):
        untitled.take_file_for("t1")
    assert untitled.autosave() is None


# --------------------------------------------------------------------------- recent projects


def test_recent_projects_dedup_limit_prune(tmp_path, monkeypatch):
    monkeypatch.setenv("LIPSMITH_CONFIG", str(tmp_path / "cfg"))
    recent = RecentProjects()
    assert recent.file == tmp_path / "cfg" / "recent.json" and recent.paths() == []
    files = [write_media(tmp_path / "p" / f"{i}.lipsmith", 1) for i in range(12)]
    for f in files:
        recent.add(f)
    assert recent.paths() == files[::-1][:10]
    recent.add(tmp_path / "p" / ".." / "p" / "5.lipsmith")  # another spelling of the same file
    got = RecentProjects().paths()
    assert got[0] == files[5] and len(got) == 10 and got.count(files[5]) == 1
    files[11].unlink()
    assert files[11] not in RecentProjects().paths() and len(RecentProjects().paths()) == 9
    assert str(files[11]) not in recent.file.read_text()  # pruned on disk too
    recent.file.write_text("{not json")
    assert recent.paths() == []
    recent.add(files[0])
    assert recent.paths() == [files[0]]


def test_probe_video_reads_real_media(tmp_path):
    from tests.conftest import ffmpeg

    clip = tmp_path / "c.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=0.4", "-pix_fmt", "yuv420p", clip)
    facts = MediaFacts.probe_video(clip)
    assert (facts.frame_count, facts.width, facts.height, facts.fps) == (10, 64, 48, 25.0)
    assert facts.size == clip.stat().st_size and len(facts.fingerprint) == 64


# --------------------------------------------------------------------------- names, curves, render reports


def test_segment_names_are_one_trimmed_line_kept_by_split_and_saved(folder):
    p = make_project(folder)
    p.execute(RenameSegment(p, "s1", "  Jean \t enters\n "))
    assert p.segment("s1").name == "Jean enters" and p.segment("s1").title == "Jean enters"
    assert p.segment("s3").title == "s3"  # unnamed: shown by id
    assert p.history.undo_text == "Rename segment s1 to Jean enters"
    split = p.execute(SplitSegment(p, "s1", 40))
    assert p.segment(split.new_id).name == "Jean enters"
    p.save()
    assert Project.load(p.path).segment("s1").name == "Jean enters"
    p.execute(RenameSegment(p, "s1", "   "))  # clearing goes back to the id
    assert p.segment("s1").name == "" and p.segment("s1").title == "s1"
    before = state(p)
    with pytest.raises(EditError, match="at most 80"):
        RenameSegment(p, "s1", "x" * 81)
    with pytest.raises(EditError, match="must be text"):
        RenameSegment(p, "s1", 5)
    with pytest.raises(EditError, match="no segment"):
        RenameSegment(p, "s9", "x")
    assert state(p) == before


def test_settings_from_a_dialog_are_separate_steps_and_saved(folder):
    p = make_project(folder)
    depth = p.history.index
    p.execute(SetProjectSettings(p, {"length_policy": "loop"}, merge=False, text="Project settings"))
    p.execute(SetProjectSettings(p, {"length_policy": "pad"}, merge=False, text="Project settings"))
    assert p.history.index == depth + 2 and p.history.undo_text == "Project settings"
    p.undo()
    assert p.settings["length_policy"] == "loop"
    p.execute(SetProjectSettings(p, {"device": "mps", "detector": "face-alignment", "face_index": 1,
                                     "pads": [2, 12, 0, 0], "smooth_window": 0, "feather": 0.2}, merge=False))
    p.save()
    q = Project.load(p.path)
    assert q.settings["device"] == "mps" and q.settings["detector"] == "face-alignment"
    assert q.settings["face_index"] == 1 and q.settings["pads"] == [2, 12, 0, 0] and q.settings["feather"] == 0.2
    options = q.render_options("s3")
    assert options.length_policy == "loop" and options.face_index == 1 and options.smooth_window == 0
    before = state(p)
    for bad in ({"length_policy": "stretch"}, {"device": "gpu"}, {"face_index": -1}, {"feather": 0},
                {"smooth_window": 2.5}):
        with pytest.raises(EditError):
            SetProjectSettings(p, bad, merge=False)
    assert state(p) == before


def test_a_schema_1_file_loads_through_the_migration(folder):
    p = make_project(folder)
    old, _ = written_as_schema(p, 1, lambda data: [s.pop("name") for s in data["segments"]]
                               + [t.pop("report") for t in data["takes"]])
    q = Project.load(old)
    assert [s.name for s in q.segments] == ["", "", ""] and q.takes["t1"].report == {}
    assert json.loads(old.read_text())["schema_version"] == 1  # reading never rewrites


def test_confidence_curve_follows_the_chosen_takes_within_their_segments(folder):
    import numpy as np

    p = make_project(folder)
    assert p.confidence_curve() is None  # t1 is chosen for s1 but not scored per frame
    conf = [float(i % 7) for i in range(120)]  # t1 covers frames 0..100 of s1; a longer curve is clipped
    conf[10] = float("nan")
    p.execute(SetScores(p, {"s1": (6.1, None)}, take_scores={"t1": {"frame_conf": np.array(conf),
                                                                     "frame_fps": 25.0, "lse_c": 6.1}}))
    take = p.takes["t1"]
    assert take.scores["frame_conf"][10] is None and take.scores["frame_conf"][3] == 3.0
    assert take.scores["lse_d"] is None  # the take's older scores stay unless replaced
    x, y = p.confidence_curve()
    assert x[0] == 0 and x[99] == 99 and np.isnan(x[100:]).sum() == 0 and np.isnan(y[100])
    assert y[3] == 3.0 and np.isnan(y[10]) and len(x) == 101
    p.save()
    xq, yq = Project.load(p.path).confidence_curve()
    assert np.array_equal(xq, x) and np.array_equal(np.isnan(yq), np.isnan(y))
    p.undo()
    assert p.confidence_curve() is None and "frame_conf" not in p.takes["t1"].scores
    # a 50 fps project: the scorer's 25 fps values land on every other frame
    t = replace(take, scores={"frame_conf": [1.0, 2.0, 3.0], "frame_fps": 25.0})
    x50, y50 = t.confidence_curve(50.0)
    assert x50.tolist() == [0.0, 2.0, 4.0] and y50.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(EditError, match="not a number"):
        SetScores(p, {}, take_scores={"t1": {"frame_conf": [1.0, "x"]}})
    with pytest.raises(EditError, match="no take"):
        SetScores(p, {}, take_scores={"t8": {"frame_conf": [1.0]}})


def test_no_face_ranges_come_from_the_chosen_takes_reports(folder):
    p = make_project(folder)
    take = p.new_take("s3", "t2.mkv", report={"no_face": [(130, 150), (160, 162), (162, 170), (240, 260)],
                                              "generated": 80})
    p.execute(AddTake(p, take, choose=True))
    assert p.takes[take.id].no_face_ranges == [(130, 150), (160, 162), (162, 170), (240, 260)]
    # clipped to the segment it serves (s3: 140..250), touching ranges merged
    assert p.no_face_ranges() == [(140, 150), (160, 170), (240, 250)]
    p.save()
    assert Project.load(p.path).no_face_ranges() == [(140, 150), (160, 170), (240, 250)]
    p.execute(ChooseTake(p, "s3", None))  # the original frames: nothing missing
    assert p.no_face_ranges() == []


# --------------------------------------------------------------------------- speaker-adapted models


def test_adapted_model_is_recorded_undone_redone_saved_and_offered_per_segment(folder, tmp_path):
    p = make_project(folder)
    before = state(p)
    weights = write_media(folder / "scene.adapted.safetensors", 500)
    command = p.execute(AddAdaptedModel(p, weights, info={"step": 40, "frames": 250, "val_l1": 0.04}))
    assert command.text == "Add adapted model scene.adapted.safetensors" and p.modified
    [model] = p.adapted_models
    assert model.path == weights and model.info["step"] == 40 and not model.missing and model.created
    assert p.settings["checkpoint"] == "generator"  # recorded, not used (use=False)
    assert p.adapted_model(weights) == model and p.adapted_model(folder / "other.safetensors") is None
    p.undo()
    assert p.adapted_models == () and state(p) == before and not p.modified
    p.redo()
    assert p.adapted_models == (model,)
    # a segment re-renders with it: its effective settings (what a take records) name the file
    p.execute(SetSegmentSettings(p, "s3", {"checkpoint": str(weights)}))
    assert p.effective_settings("s3")["checkpoint"] == weights and p.render_options("s3").checkpoint == str(weights)
    assert p.effective_settings("s1")["checkpoint"] == "generator"
    p.save()
    data = json.loads(p.path.read_text())
    assert data["adapted_models"][0]["path"]["relative"] == "scene.adapted.safetensors"
    q = Project.load(p.path)
    assert q.adapted_models == p.adapted_models and state(q) == state(p)
    # the whole folder moves: the relative link finds the model in its new place
    moved = tmp_path / "moved"
    shutil.move(str(folder), str(moved))
    r = Project.load(moved / "scene.lipsmith")
    assert r.adapted_models[0].path == moved / "scene.adapted.safetensors" and not r.missing_adapted_models()
    assert r.segment("s3").settings["checkpoint"] == moved / "scene.adapted.safetensors"


def test_adapting_again_replaces_the_record_and_use_sets_the_generator_in_one_step(folder):
    p = make_project(folder)
    weights = write_media(folder / "me.safetensors", 500)
    p.execute(AddAdaptedModel(p, weights, label="  first  run ", info={"step": 10}))
    assert p.adapted_models[0].label == "first run" and p.adapted_models[0].title == "first run"
    steps = p.history.index
    p.execute(AddAdaptedModel(p, weights, info={"step": 20}, use=True))
    assert len(p.adapted_models) == 1 and p.adapted_models[0].info == {"step": 20}
    assert p.settings["checkpoint"] == weights and p.history.index == steps + 1
    assert "and use it" in p.history.undo_text
    p.undo()
    assert p.settings["checkpoint"] == "generator" and p.adapted_models[0].info == {"step": 10}
    with pytest.raises(EditError, match="file not found"):
        AddAdaptedModel(p, folder / "nope.safetensors")
    with pytest.raises(EditError, match=".safetensors file"):
        AddAdaptedModel(p, folder / "media" / "clip.mp4")
    with pytest.raises(EditError, match="cannot be stored"):
        AddAdaptedModel(p, weights, info={"x": object()})


def test_a_missing_adapted_model_is_reported_and_relinked_with_the_settings_that_chose_it(folder, tmp_path):
    p = make_project(folder)
    weights = write_media(folder / "scene.adapted.safetensors", 500)
    p.execute(AddAdaptedModel(p, weights, use=True))
    p.execute(SetSegmentSettings(p, "s3", {"checkpoint": str(weights)}))
    p.save()
    elsewhere = tmp_path / "models" / "scene.adapted.safetensors"
    elsewhere.parent.mkdir()
    shutil.move(str(weights), str(elsewhere))
    q = Project.load(p.path)
    assert [m.path for m in q.missing_adapted_models()] == [weights]  # known at its last place
    assert not q.missing_media()
    before = state(q)
    q.execute(RelinkAdaptedModel(q, weights, elsewhere))
    assert not q.missing_adapted_models() and q.adapted_models[0].path == elsewhere
    assert q.settings["checkpoint"] == elsewhere and q.segment("s3").settings["checkpoint"] == elsewhere
    assert q.segment("s1").settings.get("checkpoint") is None
    q.undo()
    assert state(q) == before
    q.redo()
    q.save()
    assert Project.load(q.path).adapted_models[0].path == elsewhere
    with pytest.raises(EditError, match="not one of the project's adapted models"):
        RelinkAdaptedModel(q, folder / "other.safetensors", elsewhere)
    with pytest.raises(EditError, match="file not found"):
        RelinkAdaptedModel(q, elsewhere, tmp_path / "gone.safetensors")


def test_removing_an_adapted_model_falls_back_for_future_renders_and_takes_keep_their_record(folder):
    p = make_project(folder)
    weights = write_media(folder / "scene.adapted.safetensors", 500)
    other = write_media(folder / "other.adapted.safetensors", 400, seed=1)
    p.execute(AddAdaptedModel(p, other, label="other"))
    p.execute(AddAdaptedModel(p, weights, label="Marie", use=True))
    p.execute(SetSegmentSettings(p, "s3", {"checkpoint": str(weights), "feather": 0.2}))
    p.execute(SetSegmentSettings(p, "s2", {"checkpoint": str(other)}))
    take = p.new_take("s3", "t-marie.mkv")
    assert take.settings["checkpoint"] == weights
    p.execute(AddTake(p, take, choose=True))
    p.save()
    before = state(p)
    command = p.execute(RemoveAdaptedModel(p, weights))
    assert command.text == "Remove adapted model Marie" and p.history.undo_text == command.text
    assert command.was_generator and command.segment_ids == ("s3",) and command.path == weights
    assert [m.path for m in p.adapted_models] == [other]
    assert p.settings["checkpoint"] == "generator"  # the project's generator: the bundled one again
    assert p.segment("s3").settings == {"feather": 0.2}  # its override went: it renders with the project's
    assert p.effective_settings("s3")["checkpoint"] == "generator"
    assert p.segment("s2").settings["checkpoint"] == other  # another model's choice stays
    assert p.takes[take.id] == take and p.segment("s3").take_id == take.id  # the take keeps its record
    assert weights.is_file()  # the file is not touched
    p.undo()
    assert state(p) == before and not p.modified
    p.redo()
    after = state(p)
    p.save()
    assert state(Project.load(p.path)) == after
    with pytest.raises(EditError, match="not one of the project's adapted models"):
        RemoveAdaptedModel(p, weights)
    # a model that nothing chose: only its record goes
    command = p.execute(RemoveAdaptedModel(p, str(other)))
    assert not command.was_generator and command.segment_ids == ("s2",) and p.adapted_models == ()


def test_a_schema_2_file_loads_with_no_adapted_models(folder):
    p = make_project(folder)
    old, data = written_as_schema(p, 2, lambda data: data.pop("adapted_models"))
    assert Project.load(old).adapted_models == ()
    data["schema_version"] = 3
    data["adapted_models"] = [{"path": 5}]
    old.write_text(json.dumps(data))
    with pytest.raises(ProjectError, match=r"adapted_models\[0\]\.path"):
        Project.load(old)


def test_a_schema_3_threshold_off_the_experts_scale_opens_as_its_default(folder):
    """Before schema 4 a project could store a threshold on the official SyncNet's scale (the old
    default 5.0), which no score of the expert (at most 2: distances of unit vectors) reaches: every
    segment read weak. Opening it gives the expert's default; a threshold on its scale is kept."""
    p = make_project(folder)
    p.execute(SetScores(p, {"s1": (0.09, 1.08), "s3": (0.02, 1.12)}))  # the expert's scale
    p.save()
    data = json.loads(p.path.read_text())
    data["schema_version"] = 3
    old = folder / "old.lipsmith"
    for stored, opened in ((5.0, DEFAULT_THRESHOLD), (2.5, DEFAULT_THRESHOLD), (2.0, 2.0), (0.05, 0.05)):
        data["threshold"] = stored
        old.write_text(json.dumps(data))
        digest = sha(old)
        q = Project.load(old)
        assert q.threshold == opened, stored
        assert not q.modified and not q.history.can_undo and sha(old) == digest  # a reading, not an edit
    data["threshold"] = 5.0
    old.write_text(json.dumps(data))
    q = Project.load(old)
    assert [q.verdict(s) for s in q.segments] == ["good", "silence", "poor"]
    q.execute(SetThreshold(q, 0.06))
    q.undo()  # back to what it opened with, never to the old scale's value
    assert q.threshold == DEFAULT_THRESHOLD
    q.save()
    saved = json.loads(old.read_text())
    assert saved["schema_version"] == fileformat.SCHEMA_VERSION and saved["threshold"] == DEFAULT_THRESHOLD
    # a file from schema 4 on is on the expert's scale already: its threshold is read as it is
    saved["threshold"] = 3.0
    old.write_text(json.dumps(saved))
    assert Project.load(old).threshold == 3.0
    # an autosave is read the same way
    autosave_path_for(old).write_text(json.dumps(data))
    assert Project.recover(old).threshold == DEFAULT_THRESHOLD


def test_a_schema_4_file_opens_with_the_generated_mouth_for_the_project_and_its_takes(folder):
    """Schema 5 stores the mouth a render pastes; every render before it pasted the generated one."""
    p = make_project(folder)
    data = json.loads(p.path.read_text())
    assert "mouth" in data["settings"] and "mouth" in data["takes"][0]["settings"]
    data["schema_version"] = 4
    del data["settings"]["mouth"]
    del data["takes"][0]["settings"]["mouth"]
    old = folder / "old.lipsmith"
    old.write_text(json.dumps(data))
    digest = sha(old)
    q = Project.load(old)
    assert q.settings["mouth"] == "generated" and q.takes["t1"].settings["mouth"] == "generated"
    assert q.takes["t1"].mouth == "generated" and not q.modified and sha(old) == digest
    # a mouth this Lipsmith does not know is refused, naming the file and the setting
    data["schema_version"] = fileformat.SCHEMA_VERSION
    data["settings"]["mouth"] = "lips"
    old.write_text(json.dumps(data))
    with pytest.raises(ProjectError, match=r"old\.lipsmith.*mouth must be one of actor, actor-closing, generated"):
        Project.load(old)


def test_the_projects_mouth_is_a_setting_renders_use_and_takes_name(folder):
    p = make_project(folder)
    assert p.settings["mouth"] == "actor" and p.render_options("s1").mouth == "actor"  # the default (core.hparams)
    p.execute(SetProjectSettings(p, {"mouth": "generated"}))
    assert p.effective_settings("s1")["mouth"] == "generated" and p.render_options("s1").mouth == "generated"
    with pytest.raises(EditError, match="mouth must be one of"):
        SetProjectSettings(p, {"mouth": "teeth"})
    with pytest.raises(EditError, match="cannot be set per segment"):
        p.execute(SetSegmentSettings(p, "s1", {"mouth": "actor"}))
    p.save()
    assert Project.load(p.path).settings["mouth"] == "generated"
    actor = p.new_take("s1", p.take_file_for("ta"), take_id="ta", settings=dict(p.settings, mouth="actor"),
                       report={"generated_mouth": [[3, 8], [95, 120]]})
    generated = p.new_take("s1", p.take_file_for("tg"), take_id="tg")
    assert actor.label.startswith("Take 2 · actor's mouth") and actor.mouth == "actor"
    assert generated.label.startswith("Take 2 · generated mouth") and generated.mouth == "generated"
    assert actor.generated_mouth_ranges == [(3, 8), (95, 120)] and generated.generated_mouth_ranges == []
    assert p.generated_mouth_ranges() == []  # neither chosen yet
    p.execute(AddTake(p, actor, choose=True))
    assert p.generated_mouth_ranges() == [(3, 8), (95, 100)]  # within the segment it exports for (s1: 0-100)
    p.save()
    assert Project.load(p.path).takes["ta"].generated_mouth_ranges == [(3, 8), (95, 120)]


# --------------------------------------------------------------------------- issue 13: the editor as a dubbing editor expects it


def test_a_new_project_keeps_the_whole_picture_and_cutting_it_is_a_choice(folder):
    video, dub = folder / "media" / "clip.mp4", folder / "media" / "dub.wav"
    p = Project.new(video, FACTS, dub_path=dub, dub_facts=MediaFacts(duration=4.0))  # a 10 s picture, a 4 s dub
    assert p.settings["length_policy"] == "pad" and p.output_frames() == 250  # frames with no dub pass through
    p.execute(SetProjectSettings(p, {"length_policy": "cut"}))
    assert p.output_frames() == 100


def test_choosing_a_take_shows_that_takes_score_everywhere(folder):
    p = make_project(folder)  # s1 [0, 100) exports t1, scored 6.5 over it
    p.execute(SetThreshold(p, 5.0))
    second = p.new_take("s1", p.take_file_for("t2"), take_id="t2")
    p.execute(AddTake(p, second))
    # a render's take scored over a segment that keeps its chosen take: the score is the take's, not the segment's
    p.execute(SetScores(p, {}, take_scores={"t2": {"segments": {"s1": [0, 100, 2.0, 8.0]}}}))
    s1 = p.segment("s1")
    assert (s1.take_id, s1.lse_c, p.verdict(s1)) == ("t1", 6.5, "good") and s1 not in p.weak_segments()

    p.execute(ChooseTake(p, "s1", "t2"))
    s1 = p.segment("s1")
    assert (s1.lse_c, s1.lse_d, p.verdict(s1)) == (2.0, 8.0, "poor") and [s.id for s in p.weak_segments()][0] == "s1"
    p.execute(ChooseTake(p, "s1", "t1"))
    assert (p.segment("s1").lse_c, p.verdict("s1")) == (6.5, "good")
    p.execute(ChooseTake(p, "s1", None))  # the original frames were never scored
    assert (p.segment("s1").lse_c, p.verdict("s1")) == (None, "unscored")
    p.undo()
    assert p.segment("s1").take_id == "t1" and p.segment("s1").lse_c == 6.5

    p.execute(SplitSegment(p, "s1", 50))  # t2's score was over [0, 100): it describes neither half
    p.execute(ChooseTake(p, "s1", "t2"))
    assert p.segment("s1").lse_c is None
    p.execute(RemoveTake(p, "t2"))  # s1 shows its original frames again
    assert p.segment("s1").take_id is None and p.segment("s1").lse_c is None


def test_take_names_are_unique_per_segment_and_say_what_set_them_apart(folder):
    import re

    p = make_project(folder)  # s1 has t1, rendered with its settings (smoothing 9, pads 0 20 0 0)
    assert re.fullmatch(r"Take 1 · actor's mouth · \d\d:\d\d", p.takes["t1"].label)
    p.execute(SetSegmentSettings(p, "s1", {"feather": 0.3}))
    p.execute(AddTake(p, p.new_take("s1", p.take_file_for("t2"), take_id="t2")))
    assert re.fullmatch(r"Take 2 · actor's mouth · feather 0\.3 · \d\d:\d\d", p.takes["t2"].label)
    p.execute(RemoveTake(p, "t1"))
    third = p.new_take("s1", p.take_file_for("t3"), take_id="t3", settings=dict(p.effective_settings("s1"),
                                                                                 mouth="generated"))
    assert third.label.startswith("Take 3 · generated mouth · ")  # never a second "Take 2"
    assert "feather" not in third.label  # the same as the take before it, but its mouth
    smoothed = p.new_take("s1", p.take_file_for("t4"), take_id="t4",
                          settings=dict(p.takes["t2"].settings, smoothed_from="t2", window=5))
    assert smoothed.label.startswith("Take 3 · actor's mouth · smoothed over 5 frames · ")


def test_the_length_an_export_makes_is_stated_plainly(folder):
    video, dub = folder / "media" / "clip.mp4", folder / "media" / "dub.wav"
    p = Project.new(video, FACTS, dub_path=dub, dub_facts=MediaFacts(duration=4.0))  # a 10 s picture, a 4 s dub
    assert p.length_text() == "picture 00:00:10:00, dub 00:00:04:00 — export 00:00:10:00"
    assert p.length_text("cut") == "picture 00:00:10:00, dub 00:00:04:00 — export 00:00:04:00 (cut to the dub)"
    longer = Project.new(video, FACTS, dub_path=dub, dub_facts=MediaFacts(duration=12.0))
    assert longer.length_text().endswith("export 00:00:12:00 (its last frame held to the dub's end)")
    assert longer.length_text("cut").endswith("export 00:00:10:00 (the dub cut to the picture)")
    assert longer.length_text("loop").endswith("export 00:00:12:00 (looped to the dub's length)")


def test_a_merged_segment_keeps_no_score_of_frames_it_no_longer_exports(folder):
    p = make_project(folder)  # s1 [0, 100) exports t1 (scored 6.5), s2 [100, 140) silence, s3 its original frames
    p.execute(MergeSegments(p, ["s1", "s2"]))  # t1 does not cover [0, 140): the merge exports the original frames
    assert p.segment("s1").take_id is None and p.segment("s1").lse_c is None
    p.undo()
    whole = p.new_take("s1", p.take_file_for("t2"), take_id="t2", start=0, end=250)
    p.execute(AddTake(p, whole))
    p.execute(ChooseTake(p, "s3", "t2"))
    p.execute(SetScores(p, {"s3": (4.0, None)}))
    p.execute(ChooseTake(p, "s2", "t2"))
    p.execute(MergeSegments(p, ["s2", "s3"]))  # both parts exported t2: the mean of their scores stands
    assert p.segment("s2").take_id == "t2" and p.segment("s2").lse_c == 4.0


def test_markers_are_added_edited_moved_removed_undone_and_saved(folder):
    p = make_project(folder)
    p.execute(AddMarker(p, 120, "  line   7 ", "red", "the breath before the line"))
    p.execute(AddMarker(p, 30))
    assert p.markers == (Marker(30, "", "blue", ""), Marker(120, "line 7", "red", "the breath before the line"))
    assert p.markers[0].title == "Marker at frame 30" and p.history.undo_text == "Add Marker at frame 30"
    with pytest.raises(EditError, match="already at frame 30"):
        p.execute(AddMarker(p, 30, "twice"))
    with pytest.raises(EditError, match="colour must be one of red"):
        p.execute(AddMarker(p, 40, colour="chartreuse"))
    with pytest.raises(EditError, match="whole frame number"):
        p.execute(AddMarker(p, -1))
    before = p.markers
    p.execute(EditMarker(p, 30, name="door slam"))
    p.execute(EditMarker(p, 30, colour="green"))
    p.execute(EditMarker(p, 30, to=200))
    assert p.history.undo_text == "Move door slam to frame 200"
    assert [(m.frame, m.name, m.colour) for m in p.markers] == [(120, "line 7", "red"), (200, "door slam", "green")]
    with pytest.raises(EditError, match="already at frame 120"):
        p.execute(EditMarker(p, 200, to=120))
    p.execute(RemoveMarker(p, 120))
    assert [m.frame for m in p.markers] == [200]
    for _ in range(4):
        p.undo()
    assert p.markers == before
    for _ in range(4):
        p.redo()
    p.save()
    q = Project.load(p.path)
    assert q.markers == p.markers == (Marker(200, "door slam", "green", ""),)
    assert json.loads(p.path.read_text())["markers"] == [{"frame": 200, "name": "door slam", "colour": "green",
                                                          "note": ""}]


def test_typing_a_markers_note_is_one_undo_step(folder):
    p = make_project(folder)
    p.execute(AddMarker(p, 10))
    for text in ("f", "fi", "fix"):
        p.execute(EditMarker(p, 10, note=text))
    assert p.markers[0].note == "fix"
    p.undo()
    assert p.markers[0].note == "" and p.history.undo_text == "Add Marker at frame 10"
    with pytest.raises(EditError, match="no marker at frame 11"):
        EditMarker(p, 11, name="x")


def test_a_schema_5_file_opens_with_no_markers_and_a_bad_marker_is_named(folder):
    p = make_project(folder)
    old, data = written_as_schema(p, 5, lambda data: data.pop("markers"))
    digest = sha(old)
    q = Project.load(old)
    assert q.markers == () and not q.modified and sha(old) == digest
    data["schema_version"] = fileformat.SCHEMA_VERSION
    data["markers"] = [{"frame": 5, "colour": "mauve"}]
    old.write_text(json.dumps(data))
    with pytest.raises(ProjectError, match=r"old\.lipsmith.*markers\[0\].*colour must be one of"):
        Project.load(old)
