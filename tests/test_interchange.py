"""Timelines for other editors through OpenTimelineIO (.otio, CMX 3600 EDL, FCP 7 XML), and segments back."""
from pathlib import Path

import opentimelineio as otio
import pytest

from core.interchange import InterchangeError, build_timeline, export_timeline, import_timeline, read_markers
from core.project import MediaFacts, Project, Segment, Take
from core.project.commands import ImportSegments

FORMATS = (".otio", ".edl", ".xml")


def scene(folder: Path, fps: float = 25.0, start_timecode: str | None = "01:00:00:00", dub_offset: int = 0,
          markers=()) -> Project:
    """100 frames: a good, a weak and an unscored speech segment between silences; the good one has a take.
    The media are stand-ins: a timeline names its files, it never opens them."""
    video, dub = folder / "scene.mov", folder / "dub.wav"
    video.write_bytes(b"picture")
    dub.write_bytes(b"dub")
    take = Take("t1", "s2", 10, 40, "t1.mkv", settings={"checkpoint": "generator", "mouth": "actor"},
                label="Take 1 · actor's mouth")
    segments = [Segment("s1", 0, 10, "silence"),
                Segment("s2", 10, 40, lse_c=0.09, take_id="t1", name="Where were you?"),
                Segment("s3", 40, 50, "silence"),
                Segment("s4", 50, 70, lse_c=0.01),
                Segment("s5", 70, 85, name="Nowhere."),
                Segment("s6", 85, 100, "silence")]
    return Project.new(video, MediaFacts(fps=fps, frame_count=100, duration=100 / fps, start_timecode=start_timecode),
                       path=folder / "scene.lipsmith", dub_path=dub, dub_facts=MediaFacts(duration=3.0),
                       dub_offset=dub_offset, segments=segments, takes=[take], markers=markers)


EXPECTED = [(10, 40, "Where were you?", "GREEN"), (50, 70, "s4", "RED"), (70, 85, "Nowhere.", "YELLOW")]


def as_read(markers, suffix):
    """(start, end, name, colour) of markers read back; an EDL writes its text in capitals."""
    return [(m.start, m.end, m.name.casefold() if suffix == ".edl" else m.name, m.colour) for m in markers]


def expected(suffix):
    return [(a, b, name.casefold() if suffix == ".edl" else name, colour) for a, b, name, colour in EXPECTED]


@pytest.mark.parametrize("suffix", FORMATS)
def test_each_speech_segment_comes_back_with_its_frames_name_and_verdict_colour(tmp_path, suffix):
    project = scene(tmp_path)
    path = export_timeline(project, tmp_path / f"scene{suffix}")
    assert as_read(read_markers(path, project), suffix) == expected(suffix)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


@pytest.mark.parametrize("suffix", FORMATS)
def test_drop_frame_timecode_from_a_start_inside_a_minute_round_trips(tmp_path, suffix):
    project = scene(tmp_path, fps=30000 / 1001, start_timecode="00:00:59;00")
    path = export_timeline(project, tmp_path / f"scene{suffix}")
    assert as_read(read_markers(path, project), suffix) == expected(suffix)


def test_the_otio_timeline_holds_the_picture_at_its_timecode_the_dub_where_the_offset_puts_it_and_what_each_marker_says(
        tmp_path):
    project = scene(tmp_path, dub_offset=5)
    timeline = otio.adapters.read_from_file(str(export_timeline(project, tmp_path / "scene.otio")))
    assert otio.opentime.to_timecode(timeline.global_start_time, 25) == "01:00:00:00"
    picture, dub = timeline.tracks
    assert picture.kind == "Video" and dub.kind == "Audio"
    (clip,) = picture.find_clips()
    assert clip.media_reference.target_url == project.video.path.as_uri()
    assert otio.opentime.to_timecode(clip.source_range.start_time, 25) == "01:00:00:00"
    assert clip.source_range.duration.value == 100
    gap, voice = dub
    assert isinstance(gap, otio.schema.Gap) and gap.duration().value == 5
    assert voice.media_reference.target_url == project.dub.path.as_uri() and voice.duration().value == 75
    first = timeline.tracks.markers[0].metadata["lipsmith"]
    assert first["segment"] == "s2" and first["take"] == "t1"
    assert "Take 1" in first["note"] and "model generator" in first["note"] and "actor mouth" in first["note"]
    assert "LSE-C 0.090" in first["note"] and "good" in first["note"]
    assert "no take" in timeline.tracks.markers[2].metadata["lipsmith"]["note"]


def test_a_dub_that_starts_earlier_loses_its_head_on_the_timeline(tmp_path):
    project = scene(tmp_path, dub_offset=-10)
    (voice,) = build_timeline(project).tracks[1]
    assert voice.source_range.start_time.value == 10 and voice.duration().value == 65


def test_the_edl_locators_are_the_picture_clips_at_the_source_timecode(tmp_path):
    text = export_timeline(scene(tmp_path), tmp_path / "scene.edl").read_text()
    assert "* LOC: 01:00:00:10 GREEN   WHERE WERE YOU? OUT 01:00:01:14" in text
    assert "* LOC: 01:00:02:00 RED     S4 OUT 01:00:02:19" in text


@pytest.mark.parametrize("suffix", FORMATS)
def test_importing_renames_the_segments_markers_cover_and_adds_the_others_as_one_undo_step(tmp_path, suffix):
    project = scene(tmp_path)
    path = export_timeline(project, tmp_path / f"scene{suffix}")
    edited = path.read_text().replace("Where were you?", "Line 1").replace("WHERE WERE YOU?", "LINE 1")
    path.write_text(edited)
    other = scene(tmp_path)
    other_segments = other.segments
    command, points, outside = import_timeline(other, path)
    assert (points, outside) == (0, 0)
    assert command.renamed == ["s2"] and command.created == []
    assert other.segment("s2").name.casefold() == "line 1"
    assert other.segment("s4").name == "" and other.segment("s5").name == "Nowhere."  # the same names: no change
    other.undo()
    assert other.segments == other_segments


def test_a_marker_over_other_frames_becomes_a_segment_cut_out_of_those_it_overlaps(tmp_path):
    project = scene(tmp_path)
    command = project.execute(ImportSegments(project, [(30, 45, "Overlap"), (90, 95, "Breath")]))
    spans = [(s.id, s.start, s.end, s.kind, s.name) for s in project.segments]
    new, breath = command.created
    assert spans == [("s1", 0, 10, "silence", ""), ("s2", 10, 30, "speech", "Where were you?"),
                     (new, 30, 45, "speech", "Overlap"), ("s3", 45, 50, "silence", ""),
                     ("s4", 50, 70, "speech", ""), ("s5", 70, 85, "speech", "Nowhere."),
                     ("s6", 85, 90, "silence", ""), (breath, 90, 95, "speech", "Breath"),
                     (spans[-1][0], 95, 100, "silence", "")]
    assert spans[-1][0] not in {"s6", new, breath}  # the silence's second half: a segment of its own
    # a part keeps its take where it covers it; scores described other frames: unscored until scored again
    assert project.segment("s2").take_id == "t1" and project.segment("s2").lse_c is None
    assert project.segment(new).take_id is None  # t1 covers 10-40, not 30-45
    assert project.segment("s4").lse_c == 0.01  # untouched


def test_a_marker_inside_a_slipped_segment_keeps_its_dub_slipped(tmp_path):
    from core.project import SlipSegment

    project = scene(tmp_path)
    project.execute(SlipSegment(project, "s4", 2))
    [new] = project.execute(ImportSegments(project, [(55, 60, "Inside")])).created
    assert [(s.start, s.end, s.slip) for s in project.segments if 50 <= s.start < 70] == [(50, 55, 2), (55, 60, 2),
                                                                                         (60, 70, 2)]
    assert project.segment(new).name == "Inside"


def test_a_timeline_of_only_point_markers_changes_nothing_and_says_so(tmp_path):
    project = scene(tmp_path)
    timeline = build_timeline(project)
    timeline.tracks.markers[:] = [otio.schema.Marker(name="note", marked_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(12, 25), otio.opentime.RationalTime(0, 25)))]
    path = tmp_path / "points.otio"
    otio.adapters.write_to_file(timeline, str(path))
    before = project.segments
    assert import_timeline(project, path) == (None, 1, 0)
    assert project.segments == before


def test_an_unknown_suffix_or_an_unreadable_file_is_refused_naming_it(tmp_path):
    project = scene(tmp_path)
    with pytest.raises(InterchangeError, match="unknown timeline format .aaf"):
        export_timeline(project, tmp_path / "scene.aaf")
    assert not (tmp_path / "scene.aaf").exists()
    broken = tmp_path / "broken.xml"
    broken.write_text("<xmeml><sequence>")
    with pytest.raises(InterchangeError, match="broken.xml"):
        read_markers(broken, project)


@pytest.mark.parametrize("suffix", FORMATS)
def test_the_projects_markers_go_out_as_markers_of_no_length_with_their_colour_and_are_not_imported(tmp_path, suffix):
    from core.project import Marker

    project = scene(tmp_path, markers=[Marker(12, "Door slam", "cyan", "loop the breath"), Marker(60, "", "purple")])
    path = export_timeline(project, tmp_path / f"scene{suffix}")
    points = [(m.start, m.end, m.name.casefold(), m.colour) for m in read_markers(path, project) if m.end == m.start]
    assert points == [(12, 12, "door slam", "CYAN"), (60, 60, "marker at frame 60", "PURPLE")]
    before = project.segments
    command, left_out, _ = import_timeline(project, path)
    assert left_out == 2 and command.created == [] and command.renamed == [] and project.segments == before


def test_an_edl_locator_whose_out_point_is_no_timecode_is_refused_naming_the_file(tmp_path):
    project = scene(tmp_path)
    path = export_timeline(project, tmp_path / "scene.edl")
    path.write_text(path.read_text().replace("OUT 01:00:01:14", "OUT 01:00:01:77"))
    with pytest.raises(InterchangeError, match=r"scene\.edl.*WHERE WERE YOU.*out of range"):
        read_markers(path, project)
