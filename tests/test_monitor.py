"""core.monitor: what playback lets you hear (dub, original, both), each track's level as a gain,
and where in each file the sound of a frame is. No Qt, no real media: small byte files stand in."""
import math
from dataclasses import replace

import pytest

from core.monitor import SILENT_DB, Monitor, cues
from core.project import MediaFacts, NudgeDub, Project

FACTS = MediaFacts(duration=4.0, fps=25.0, frame_count=100, width=64, height=48)


@pytest.fixture
def project(tmp_path):
    video, dub = tmp_path / "clip.mp4", tmp_path / "dub.wav"
    video.write_bytes(b"video")
    dub.write_bytes(b"dub")
    p = Project.new(video, FACTS, path=tmp_path / "scene.lipsmith", dub_path=dub,
                    dub_facts=MediaFacts(duration=2.0))
    p.execute(NudgeDub(p, 10))  # the dub starts at frame 10 (0.4 s) and ends at 2.4 s
    return p


def test_a_level_is_an_amplitude_and_at_or_below_the_floor_it_is_off():
    assert Monitor().tracks == ("dub",) and Monitor().gain("dub") == 1.0
    both = Monitor("both", -6.0, float("-inf"))
    assert both.tracks == ("dub", "original")
    assert both.gain("dub") == pytest.approx(0.5012, abs=1e-4) and both.gain("original") == 0.0
    assert Monitor("original", original_db=SILENT_DB).gain("original") == 0.0
    assert Monitor("original", original_db=SILENT_DB + 1).gain("original") > 0.0


@pytest.mark.parametrize("kwargs, words", [({"source": "mix"}, "monitor source 'mix'"),
                                           ({"dub_db": 6.0}, "dub level 6.0 dB: at most 0 dB"),
                                           ({"original_db": math.nan}, "original level nan dB")])
def test_what_a_monitor_cannot_be_is_refused_in_words(kwargs, words):
    with pytest.raises(ValueError, match=words):
        Monitor(**kwargs)


def test_each_track_is_cued_on_the_playhead_clock_while_it_has_sound(project):
    both = Monitor("both", -6.0, 0.0)
    (original,) = cues(both, project, 5)  # the dub has not begun: it waits
    assert (original.track, original.path, original.offset) == ("original", project.video.path, 0.0)
    assert original.seconds == pytest.approx(0.2) and original.gain == 1.0
    dub, original = cues(both, project, 35)
    assert (dub.track, dub.path, dub.gain) == ("dub", project.dub.path, both.gain("dub"))
    assert dub.seconds == pytest.approx(1.0) and dub.offset == pytest.approx(0.4)
    assert original.seconds == pytest.approx(1.4)
    assert [c.track for c in cues(Monitor("dub"), project, 35)] == ["dub"]
    assert [c.track for c in cues(Monitor("original"), project, 35)] == ["original"]
    assert [c.track for c in cues(both, project, 60)] == ["original"]  # 2.4 s: the dub has ended
    assert cues(both, project, 100) == []  # past the video's own audio too


def test_a_missing_file_or_a_still_has_no_sound_to_cue(project):
    still = Project.new(project.video.path, replace(FACTS, is_image=True), dub_path=project.dub.path,
                        dub_facts=MediaFacts(duration=2.0))
    assert [c.track for c in cues(Monitor("both"), still, 35)] == ["dub"]
    project.dub.path.unlink()
    assert [c.track for c in cues(Monitor("both"), project, 35)] == ["original"]
