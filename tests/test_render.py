import numpy as np
import pytest

from core.plan import plan_frames
from core.render import to_ranges


def test_cut_stops_at_the_shorter():
    src, dub = plan_frames(100, 25.0, 2.0, "cut")
    assert len(src) == 50 and dub.all()
    src, dub = plan_frames(30, 25.0, 2.0, "cut")
    assert len(src) == 30


def test_loop_and_bounce_follow_the_dub():
    src, dub = plan_frames(4, 25.0, 0.4, "loop")
    assert src.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    src, _ = plan_frames(4, 25.0, 0.4, "bounce")
    assert src.tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]


def test_pad_keeps_the_longer_and_marks_frames_past_the_dub():
    src, dub = plan_frames(10, 25.0, 0.2, "pad")
    assert len(src) == 10 and dub.tolist() == [True] * 5 + [False] * 5
    src, dub = plan_frames(3, 25.0, 0.2, "pad")
    assert src.tolist() == [0, 1, 2, 2, 2] and dub.all()


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="length policy"):
        plan_frames(10, 25.0, 1.0, "stretch")


def test_ranges():
    assert to_ranges([3, 4, 5, 9]) == [(3, 6), (9, 10)]
    assert to_ranges([]) == []
    assert to_ranges(np.array([0])) == [(0, 1)]
