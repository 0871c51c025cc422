"""Trimming a segment's edge (TrimSegment: the neighbour it touches rolls with it, the bounds, what the
segments keep of their takes and scores, a drag as one undo step) and the timeline's snapping and edge
finding (core.edges), headless."""
import pytest

from core.edges import edge_at, snap, snap_targets
from core.project import (AddMarker, AddTake, EditError, ReplaceSegments, Segment, SetScores, TrimSegment,
                          trim_bounds)
from tests.test_project import folder, make_project  # noqa: F401 (a fixture)


def ranges(p):
    return [(s.id, s.start, s.end) for s in p.segments]


def test_a_shared_edge_rolls_the_neighbour_and_undo_redo_are_exact(folder):  # noqa: F811
    p = make_project(folder)  # s1 [0, 100) exports t1 (scored 6.5 over it), s2 [100, 140) silence, s3 [140, 250)
    before = p.segments
    p.execute(TrimSegment(p, "s1", "end", 90))
    assert ranges(p) == [("s1", 0, 90), ("s2", 90, 140), ("s3", 140, 250)]
    s1 = p.segment("s1")
    # t1 still covers [0, 90) and keeps its frames; its 6.5 was over [0, 100): the segment is unscored
    assert s1.take_id == "t1" and (s1.lse_c, s1.lse_d) == (None, None)
    assert (p.takes["t1"].start, p.takes["t1"].end) == (0, 100)
    assert s1.settings == before[0].settings and s1.kind == "speech" and p.segment("s2").kind == "silence"
    assert p.history.undo_text == "Trim segment s1 end to frame 90"
    p.undo()
    assert p.segments == before
    p.redo()
    assert ranges(p) == [("s1", 0, 90), ("s2", 90, 140), ("s3", 140, 250)]
    p.execute(TrimSegment(p, "s3", "start", 150))  # the start edge: the earlier neighbour's end moves
    assert ranges(p) == [("s1", 0, 90), ("s2", 90, 150), ("s3", 150, 250)]
    assert p.segment("s3").lse_c is None  # its 3.0 scored its original frames from 140 on


def test_a_segment_trimmed_beyond_its_take_exports_the_original_frames(folder):  # noqa: F811
    p = make_project(folder)
    p.execute(TrimSegment(p, "s1", "end", 110))  # t1 is [0, 100): it cannot serve [0, 110)
    assert p.segment("s1").take_id is None and p.segment("s1").lse_c is None
    assert "t1" in p.takes  # the take stays in the project, as rendered
    p.undo()
    assert p.segment("s1").take_id == "t1" and p.segment("s1").lse_c == 6.5


def test_a_take_scored_over_the_new_frames_brings_its_score(folder):  # noqa: F811
    p = make_project(folder)
    p.execute(SetScores(p, {}, take_scores={"t1": {"segments": {"s1": [0, 80, 5.0, 7.0]}}}))
    p.execute(TrimSegment(p, "s1", "end", 80))
    assert (p.segment("s1").take_id, p.segment("s1").lse_c, p.segment("s1").lse_d) == ("t1", 5.0, 7.0)


def test_bounds_keep_a_frame_in_every_segment_and_no_overlap(folder):  # noqa: F811
    p = make_project(folder)
    assert trim_bounds(p, p.segments, "s1", "start") == (0, 99)
    assert trim_bounds(p, p.segments, "s1", "end") == (1, 139)  # s2 keeps its last frame
    assert trim_bounds(p, p.segments, "s3", "start") == (101, 249)
    assert trim_bounds(p, p.segments, "s3", "end") == (141, 250)  # the output (238) or the segment's end
    for sid, edge, frame in (("s1", "end", 140), ("s1", "end", 0), ("s1", "start", -1), ("s3", "end", 251)):
        with pytest.raises(EditError, match="it can go to frames"):
            TrimSegment(p, sid, edge, frame)
    with pytest.raises(EditError, match="whole frame"):
        TrimSegment(p, "s1", "end", 90.5)
    with pytest.raises(EditError, match="start.*end"):
        TrimSegment(p, "s1", "middle", 90)
    with pytest.raises(EditError, match="no segment"):
        TrimSegment(p, "zz", "end", 90)

    # a free edge (a gap beside it) moves into the gap, up to the next segment, which stays
    p.execute(ReplaceSegments(p, [p.make_segment(10, 50), p.make_segment(80, 120)]))
    a, b = p.segments
    assert trim_bounds(p, p.segments, a.id, "start") == (0, 49)
    assert trim_bounds(p, p.segments, a.id, "end") == (11, 80)
    assert trim_bounds(p, p.segments, b.id, "start") == (50, 119)
    p.execute(TrimSegment(p, a.id, "end", 80))
    assert ranges(p) == [(a.id, 10, 80), (b.id, 80, 120)]


def test_the_moves_of_one_drag_are_one_undo_step_worked_out_from_before_it(folder):  # noqa: F811
    p = make_project(folder)
    steps = p.history.index
    for frame in (95, 105, 120, 98):  # past t1's end (the take is lost on the way) and back inside it
        p.execute(TrimSegment(p, "s1", "end", frame, drag=1))
    assert ranges(p)[:2] == [("s1", 0, 98), ("s2", 98, 140)]
    assert p.segment("s1").take_id == "t1" and p.history.index == steps + 1
    assert p.history.undo_text == "Trim segment s1 end to frame 98"
    p.execute(TrimSegment(p, "s1", "end", 90, drag=2))  # another drag: another step
    assert p.history.index == steps + 2
    p.undo()
    p.undo()
    assert ranges(p)[:2] == [("s1", 0, 100), ("s2", 100, 140)] and p.segment("s1").lse_c == 6.5
    # a drag that ends where it began is no edit
    for frame in (90, 100):
        p.execute(TrimSegment(p, "s1", "end", frame, drag=3))
    assert p.history.index == steps and p.segment("s1").lse_c == 6.5


def test_a_drag_that_closes_a_gap_does_not_roll_the_next_segment(folder):  # noqa: F811
    p = make_project(folder)
    p.execute(ReplaceSegments(p, [p.make_segment(10, 50), p.make_segment(80, 120)]))
    a, b = p.segments
    for frame in (80, 70):  # touching b on the way does not make the cut b's
        p.execute(TrimSegment(p, a.id, "end", frame, drag=1))
    assert ranges(p) == [(a.id, 10, 70), (b.id, 80, 120)]


def test_edge_at_finds_the_nearest_edge_within_reach():
    segments = [Segment("a", 10, 50), Segment("b", 50, 90), Segment("c", 100, 120)]
    assert edge_at(segments, 10.4, 1.0) == ("a", "start")
    assert edge_at(segments, 49.2, 1.0) == ("a", "end")  # the cut a | b is a's end
    assert edge_at(segments, 50.6, 1.0) == ("a", "end")
    assert edge_at(segments, 91.0, 1.5) == ("b", "end")
    assert edge_at(segments, 98.9, 1.5) == ("c", "start")
    assert edge_at(segments, 70.0, 3.0) is None


def test_snap_takes_the_nearest_target_within_reach():
    targets = [0, 40, 48, 100]
    assert snap(45.5, targets, 3.0) == 48
    assert snap(44.0, targets, 3.0) is None
    assert snap(44.0, targets, 4.0) == 40  # 40 and 48 as near: the earlier one
    assert snap(70.0, targets, 3.0) is None
    assert snap(70.0, [], 3.0) is None
    assert snap(99.2, targets, 1.0) == 100


def test_snap_targets_are_edges_markers_and_the_playhead(folder):  # noqa: F811
    p = make_project(folder)
    p.execute(AddMarker(p, 120))
    assert snap_targets(p) == [0, 100, 120, 140, 250]
    assert snap_targets(p, playhead=33) == [0, 33, 100, 120, 140, 250]
    assert snap_targets(p, playhead=33, leave_out={100}) == [0, 33, 120, 140, 250]


def test_a_take_keeps_serving_the_segment_a_trim_keeps_it_under(folder):  # noqa: F811
    p = make_project(folder)
    wide = p.new_take("s3", p.take_file_for("t2"), take_id="t2", start=130, end=250)
    p.execute(AddTake(p, wide, choose=True))
    p.execute(TrimSegment(p, "s3", "start", 130))  # t2 covers [130, 250): chosen still; s2 shrinks
    assert p.segment("s3").take_id == "t2" and ranges(p)[1] == ("s2", 100, 130)
    p.execute(TrimSegment(p, "s3", "start", 125))
    assert p.segment("s3").take_id is None


def test_a_trim_past_the_range_a_take_was_slipped_over_leaves_that_take(folder):  # noqa: F811
    from core.project import SlipSegment

    p = make_project(folder)
    p.execute(TrimSegment(p, "s1", "end", 90))
    p.execute(SlipSegment(p, "s1", 3))
    slipped = p.new_take("s1", p.take_file_for("t9"), take_id="t9", start=0, end=140,
                         settings=dict(p.effective_settings("s1")))  # rendered hearing s1 [0, 90) 3 frames later
    p.execute(AddTake(p, slipped, choose=True))
    assert p.segment("s1").take_id == "t9" and slipped.slip_for(p.segment("s1")) == 3
    p.execute(TrimSegment(p, "s1", "end", 95))  # [0, 95): the dub under frames 90-94 was not slipped in t9
    assert p.segment("s1").take_id is None
    p.undo()
    assert p.segment("s1").take_id == "t9"
