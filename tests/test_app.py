"""The editor (app/), offscreen with pytest-qt: the vertical slice — new project from a video and
a dub, speech detection, render in a worker, result in the preview, export — plus cancel, undo /
redo through the Edit menu, shortcuts, drops, failing workers, autosave recovery; the project
settings dialog, dub nudges (the segments move, takes for the old timing stop being chosen), a
segment's slip (Alt+, / Alt+. and Alt+drag: its line moved in the dub lane, the inspector and playback),
segment names, the thumbnail / original-audio / confidence-curve lanes, the mask overlay and the
no-face markers; speaker adaptation (with the project's face detector) and removing adapted models;
the scoring a render queues (its segments only, in its undo step; none without a sync expert);
smoothing a segment's take into a new chosen, scored take (undo, cancel); the
weak segments list and the shortcuts that walk it; the dub's audio (a fake player) following a
click in the timeline while playing, and starting where a dub nudged later begins; comparing two
takes A/B (flipping at the same frame, choosing the shown one in one undo step); the mouth a render
pastes (Project settings, Render ▸ Render…), the frames where the actor's mouth fell back to the
generated one, a render's warnings; the mask overlay of a variable-frame-rate video; the face picker
(the faces numbered in the preview, a click choosing the segment's face, undoable); the audio monitor
(dub, original or both at their levels, remembered) and K held turning L / J into a jog; the export
dialog's proposed name (never an input) and its warning about unrendered segments; the QC report
describing the project as its export started.

A synthetic clip has no face, so a stub detector (a fixed box, as in test_render_pipeline) stands
in for RetinaFace, and a tiny random-weight generator for the model. Message boxes never open:
QMessageBox.exec is patched to record the message and answer.
"""
import os
import re
import time
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtWidgets import QLabel, QMessageBox  # noqa: E402

from core.faces.detect import Detection, FaceDetector  # noqa: E402
from core.project import DEFAULT_THRESHOLD, EditError, MediaFacts, Project, ReplaceSegments, SetProjectSettings  # noqa: E402
from tests.conftest import BoxDetector, ffmpeg  # noqa: E402

FPS, SECONDS, N = 25, 3, 75
Button = QMessageBox.StandardButton


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("app_media")
    video, dub = folder / "clip.mp4", folder / "dub.wav"
    # the clip has its own audio (a 500 Hz tone at half scale) for the timeline's Original lane
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size=320x240:rate={FPS}:duration={SECONDS}",
           "-f", "lavfi", "-i", f"sine=frequency=500:sample_rate=16000:duration={SECONDS}", "-af", "volume=0.5",
           "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", video)
    # a tone, on for 0.6 s of every second: loud enough for the renderer, with pauses
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency=300:sample_rate=16000:duration={SECONDS}",
           "-af", "volume='if(lt(mod(t,1),0.6),1,0)':eval=frame", dub)
    return video, dub


class Boxes:
    """Records every message box; answers with the queued answers, else Discard / Yes / OK."""

    def __init__(self):
        self.shown = []
        self.answers = []

    def exec(self, box):
        self.shown.append((box.icon(), box.text(), box.informativeText()))
        if self.answers:
            return self.answers.pop(0)
        buttons = box.standardButtons()
        for b in (Button.Discard, Button.Yes, Button.Ok):
            if buttons & b:
                return b
        return Button.Cancel

    def texts(self) -> str:
        return "\n".join(f"{t} {i}" for _, t, i in self.shown)


@pytest.fixture
def boxes(monkeypatch, tmp_path):
    monkeypatch.setenv("LIPSMITH_CONFIG", str(tmp_path / "config"))
    monkeypatch.setenv("LIPSMITH_CACHE", str(tmp_path / "cache"))
    import core.faces

    monkeypatch.setattr(core.faces, "get_detector", lambda name="retinaface", **params: BoxDetector())
    recorder = Boxes()
    monkeypatch.setattr(QMessageBox, "exec", lambda box: recorder.exec(box))
    return recorder


@pytest.fixture
def window(qtbot, boxes, tmp_path):
    from app.main_window import MainWindow
    from app.settings import Settings

    w = MainWindow(Settings(tmp_path / "config" / "settings.ini"))
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()  # while QMessageBox is still patched: an unsaved project asks, and Boxes answers Discard
    w.deleteLater()


def wait_jobs(qtbot, window, timeout=30_000):
    qtbot.waitUntil(lambda: not window.jobs.active(), timeout=timeout)


@pytest.fixture
def opened(window, qtbot, media, tiny_checkpoint, tmp_path):
    """A saved project over the synthetic clip: three segments, the tiny generator."""
    video, dub = media
    project = Project.new(video, MediaFacts.probe_video(video), path=tmp_path / "scene.lipsmith", dub_path=dub,
                          dub_facts=MediaFacts.probe_file(dub, duration=float(SECONDS)))
    project.execute(ReplaceSegments(project, [project.make_segment(0, 30), project.make_segment(30, 50, "silence"),
                                              project.make_segment(50, N)]))
    project.execute(SetProjectSettings(project, {"checkpoint": str(tiny_checkpoint)}))
    project.save()
    window._set_project(project)
    wait_jobs(qtbot, window)
    return window


def state(project):
    return project.segments, dict(project.takes), project.history.index, project.modified


# --------------------------------------------------------------------------- the vertical slice


def test_new_project_render_preview_and_export(window, qtbot, boxes, media, tiny_checkpoint, tmp_path):
    video, dub = media
    window.create_project(video, dub, tmp_path / "job" / "scene")  # the suffix is added
    wait_jobs(qtbot, window)
    doc = window.document
    project = doc.project
    assert project.path == tmp_path / "job" / "scene.lipsmith" and project.path.is_file()
    assert project.segments and project.segments[0].start == 0 and project.segments[-1].end == N
    assert not project.modified and not window.isWindowModified()  # saved after speech detection
    assert doc.length == N and doc.waveform is not None

    doc.execute(ReplaceSegments(project, [project.make_segment(0, 30), project.make_segment(30, N, "silence")]))
    doc.execute(SetProjectSettings(project, {"checkpoint": str(tiny_checkpoint)}))
    assert window.isWindowModified() and window.windowTitle().startswith("scene.lipsmith")

    job = window.render_clip()
    wait_jobs(qtbot, window)
    assert job.state == "done", job.error
    assert not boxes.shown
    (take,) = project.takes.values()
    assert (take.start, take.end) == (0, N) and project.take_path(take).is_file()
    assert all(s.take_id == take.id for s in project.segments)  # chosen for every segment it covers
    assert window.actions["edit.undo"].text().startswith("&Undo Render whole clip")

    # the preview shows the take in Result, the source in Original
    assert doc.show_result and window.actions["view.result"].isChecked()
    doc.set_frame(40)
    qtbot.waitUntil(lambda: window.preview.shown == ("result", project.take_path(take), 40), timeout=10_000)
    window.actions["view.result"].trigger()
    assert not doc.show_result
    qtbot.waitUntil(lambda: window.preview.shown == ("original", video, 40), timeout=10_000)

    out = tmp_path / "out" / "final.mp4"
    out.parent.mkdir()
    job = window.export(out, "Fast draft (CRF 23)")
    wait_jobs(qtbot, window)
    assert job.state == "done", job.error
    from core.video import VideoSource

    with VideoSource(out) as result:
        assert result.frame_count == N and result.has_audio
    assert job.result.from_takes == N
    assert project.exports[-1].path == out and window.isWindowModified()

    window.actions["edit.undo"].trigger()  # the whole render is one step
    assert not project.takes and all(s.take_id is None for s in project.segments)
    window.actions["edit.redo"].trigger()
    assert list(project.takes) == [take.id]


def test_cancelled_render_leaves_the_project_unchanged(opened, qtbot, monkeypatch):
    from core.video import VideoWriter

    write = VideoWriter.write
    monkeypatch.setattr(VideoWriter, "write", lambda self, frame: (time.sleep(0.02), write(self, frame)))
    window = opened
    project = window.document.project
    before = state(project)
    job = window.render_clip()
    qtbot.waitUntil(lambda: job.stage == "render" and job.done > 0, timeout=30_000)
    row = window.jobs_panel.rows[id(job)]
    assert row.bar.maximum() == N and row.cancel_button.isVisible()
    row.cancel_button.click()
    wait_jobs(qtbot, window)
    assert job.state == "cancelled"
    assert state(project) == before
    assert not list(project.cache_dir.glob("*take*"))  # neither a take nor a temp file
    assert "cancelled" in row.status.text()
    assert window.isVisible() and "cancelled" in window.statusBar().currentMessage()


# --------------------------------------------------------------------------- editing


def test_segment_edit_undo_redo_through_the_edit_menu(opened):
    window = opened
    project = window.document.project
    undo, redo = window.actions["edit.undo"], window.actions["edit.redo"]
    assert not window.isWindowModified()
    window.document.set_frame(10)
    assert window.inspector.segment.id == "s1"
    window.inspector.smooth.setValue(9)
    window.inspector.smooth.setValue(11)  # a run of steps is one undo step
    assert project.segment("s1").settings == {"smooth_window": 11}
    assert window.isWindowModified()
    assert undo.isEnabled() and undo.text() == "&Undo Segment s1: set smooth_window"

    undo.trigger()
    assert project.segment("s1").settings == {}
    assert window.inspector.smooth.value() == 5  # the project's default again
    assert not window.isWindowModified()
    assert redo.isEnabled() and redo.text() == "&Redo Segment s1: set smooth_window"
    redo.trigger()
    assert project.segment("s1").settings == {"smooth_window": 11}
    assert window.inspector.smooth.value() == 11

    window.document.set_frame(60)
    window.actions["edit.split"].trigger()
    assert [(s.start, s.end) for s in project.segments] == [(0, 30), (30, 50), (50, 60), (60, N)]
    undo.trigger()
    assert len(project.segments) == 3


def test_the_readmes_shortcut_table_is_the_applications():
    from app.shortcuts import markdown_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    listed = readme.split("<!-- shortcuts -->\n", 1)[1].split("\n<!-- /shortcuts -->", 1)[0]
    assert listed == markdown_table()


def test_shortcuts_move_the_playhead(opened, qtbot, tmp_path):
    window = opened
    doc = window.document
    window.activateWindow()
    window.timeline.setFocus()
    keys = [(Qt.Key.Key_Right, Qt.KeyboardModifier.NoModifier, 1),
            (Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier, 1 + FPS),
            (Qt.Key.Key_Left, Qt.KeyboardModifier.NoModifier, FPS),
            (Qt.Key.Key_End, Qt.KeyboardModifier.NoModifier, N - 1),
            (Qt.Key.Key_Right, Qt.KeyboardModifier.NoModifier, N - 1),  # clamped at the end
            (Qt.Key.Key_Home, Qt.KeyboardModifier.NoModifier, 0),
            (Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier, 0)]
    for key, modifier, frame in keys:
        qtbot.keyClick(window, key, modifier)
        assert doc.frame == frame, (key, modifier)
    assert window.timeline.playheads["ruler"].value() == 0

    # rebinding is data, saved in the settings
    from app.settings import Settings
    from app.shortcuts import Shortcuts

    window.shortcuts.bind("play.next_frame", "N")
    window.shortcuts.apply(window.actions)
    qtbot.keyClick(window, Qt.Key.Key_N)
    assert doc.frame == 1
    assert Shortcuts(Settings(tmp_path / "config" / "settings.ini")).key("play.next_frame") == "N"

    qtbot.keyClick(window, Qt.Key.Key_I)
    doc.set_frame(20)
    qtbot.keyClick(window, Qt.Key.Key_O)
    assert doc.marked_range() == (1, 21)

    # J/K/L and Space drive the transport
    qtbot.keyClick(window, Qt.Key.Key_L)
    qtbot.keyClick(window, Qt.Key.Key_L)
    assert window.transport.speed == 2
    qtbot.waitUntil(lambda: doc.frame > 22, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_K)
    assert not window.transport.playing
    qtbot.keyClick(window, Qt.Key.Key_J)
    assert window.transport.speed == -1
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.transport.playing



class FakePlayer:
    """Stands in for QMediaPlayer offscreen (no sound device): records seeks and plays; its clock
    stands still unless a test moves it."""
    class PlaybackState:
        StoppedState, PlayingState, PausedState = range(3)

    def __init__(self):
        self.state, self.ms, self.seeks = self.PlaybackState.StoppedState, 0, []

    def setSource(self, url):
        self.source = url.toLocalFile()

    def setPosition(self, ms):
        self.ms = ms
        self.seeks.append(ms)

    def play(self):
        self.state = self.PlaybackState.PlayingState

    def pause(self):
        self.state = self.PlaybackState.PausedState

    def position(self):
        return self.ms

    def playbackState(self):
        return self.state


class FakeOutput:
    """Stands in for QAudioOutput: records the volume it is given."""
    volume = None

    def setVolume(self, volume):
        self.volume = volume


def fake_tracks(transport) -> tuple[FakePlayer, FakeOutput, FakePlayer, FakeOutput]:
    """A fake player and output for each of the transport's tracks: (dub player, dub output, original …)."""
    out = []
    for name in ("dub", "original"):
        track = transport._tracks[name]
        track.player, track.output = FakePlayer(), FakeOutput()
        out += [track.player, track.output]
    return tuple(out)


def test_the_monitor_plays_the_dub_the_original_or_both_at_their_levels_and_is_remembered(opened, qtbot, tmp_path):
    from app.main_window import MainWindow
    from app.settings import Settings
    from core.monitor import SILENT_DB, Monitor

    window = opened
    doc, transport, button = window.document, window.transport, window.monitor_button
    dub, dub_out, original, original_out = fake_tracks(transport)
    playing, paused = FakePlayer.PlaybackState.PlayingState, FakePlayer.PlaybackState.PausedState
    assert window.actions["play.monitor_dub"].isChecked() and button.text() == "♪ Dub"  # the default
    doc.set_frame(25)
    transport.play()
    assert dub.seeks == [1000] and dub.state == playing and dub_out.volume == 1.0
    assert original.seeks == [] and original.state != playing
    transport.stop()

    window.activateWindow()
    window.timeline.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.AltModifier)  # both
    assert transport.monitor == Monitor("both") and button.text() == "♪ Both"
    assert window.actions["play.monitor_both"].isChecked() and not window.actions["play.monitor_dub"].isChecked()
    transport.play()
    assert dub.seeks[-1] == original.seeks[-1] == 1000 and dub.state == original.state == playing
    # levels change at once, while playing
    button.dub_level.setValue(-6.0)
    assert dub_out.volume == pytest.approx(10 ** (-6 / 20)) and original_out.volume == 1.0
    button.original_level.setValue(SILENT_DB)
    assert original_out.volume == 0.0 and button.original_level.text() == "−∞"
    assert original.state == playing and dub.seeks[-1] == 1000  # a level is no restart
    # the original drifting from the dub's clock is put back on it
    original.ms = 1300
    qtbot.waitUntil(lambda: original.seeks[-1] == 1000, timeout=2000)
    assert doc.frame == 25  # the picture follows the dub's clock, which stands still

    # the original alone, while playing: the dub stops, the picture follows the original's clock
    window.actions["play.monitor_original"].trigger()
    assert dub.state == paused and original.state == playing and original.seeks[-1] == 1000
    original.ms = 2000
    qtbot.waitUntil(lambda: doc.frame == 50, timeout=2000)
    transport.stop()
    assert original.state == paused and "♪ Original" == button.text()

    remembered = Monitor("original", -6.0, float("-inf"))
    settings = Settings(tmp_path / "config" / "settings.ini")
    assert settings.monitor == remembered
    again = MainWindow(settings)
    try:
        assert again.transport.monitor == remembered and again.actions["play.monitor_original"].isChecked()
        assert again.monitor_button.dub_level.value() == -6.0 and again.monitor_button.original_level.text() == "−∞"
    finally:
        again.close()
        again.deleteLater()
    settings.q.setValue("monitor/dub_db", "+6")  # edited by hand: not a level an output can play
    assert settings.monitor == Monitor()


def test_k_held_turns_l_and_j_into_a_frame_step_and_held_down_a_half_speed_jog(opened, qtbot):
    window = opened
    doc, transport = window.document, window.transport
    window.activateWindow()
    window.timeline.setFocus()
    doc.set_frame(10)
    qtbot.keyPress(window, Qt.Key.Key_K)
    assert transport.stop_held
    qtbot.keyClick(window, Qt.Key.Key_L)  # a tap: one frame on
    assert doc.frame == 11 and not transport.playing
    qtbot.keyClick(window, Qt.Key.Key_J)
    qtbot.keyClick(window, Qt.Key.Key_J)
    assert doc.frame == 9 and not transport.playing

    qtbot.keyPress(window, Qt.Key.Key_L)  # held down: it repeats
    assert doc.frame == 10 and not transport.playing
    qtbot.keyPress(window, Qt.Key.Key_L)
    started = time.monotonic()
    assert transport.speed == 0.5 and "+0.5×" in window.frame_label.text()
    qtbot.wait(600)
    moved, elapsed = doc.frame - 10, time.monotonic() - started
    assert 0 < moved <= elapsed * FPS * 0.5 + 1  # half speed, forwards
    qtbot.keyRelease(window, Qt.Key.Key_L)
    assert not transport.playing
    stopped = doc.frame

    qtbot.keyPress(window, Qt.Key.Key_J)
    qtbot.keyPress(window, Qt.Key.Key_J)
    assert transport.speed == -0.5 and doc.frame == stopped - 1
    qtbot.waitUntil(lambda: doc.frame < stopped - 1, timeout=3000)
    qtbot.keyRelease(window, Qt.Key.Key_J)
    assert not transport.playing

    qtbot.keyPress(window, Qt.Key.Key_L)
    qtbot.keyPress(window, Qt.Key.Key_L)
    qtbot.keyRelease(window, Qt.Key.Key_K)  # K let go first: L, still down and repeating, jogs on
    qtbot.keyPress(window, Qt.Key.Key_L)
    assert transport.speed == 0.5 and not transport.stop_held
    qtbot.keyRelease(window, Qt.Key.Key_L)
    assert not transport.playing

    qtbot.keyClick(window, Qt.Key.Key_L)  # K up: L shuttles again
    qtbot.keyClick(window, Qt.Key.Key_L)
    assert transport.speed == 2
    qtbot.keyClick(window, Qt.Key.Key_K)
    assert not transport.playing and not transport.stop_held


def test_the_dub_follows_a_seek_while_playing_and_starts_where_a_nudged_dub_begins(opened, qtbot):
    window = opened
    doc, transport = window.document, window.transport
    player = transport._tracks["dub"].player = FakePlayer()

    transport.play()
    assert player.seeks == [0] and player.state == player.PlaybackState.PlayingState
    player.ms = 400  # the audio clock moves the picture
    qtbot.waitUntil(lambda: doc.frame == 10, timeout=2000)
    # a click in the timeline while playing: the audio jumps there and the picture stays there
    window.timeline.plots["sync"].vb.clicked.emit(50.3, 1.0)
    assert doc.frame == 50 and player.seeks[-1] == 2000 and player.state == player.PlaybackState.PlayingState
    qtbot.wait(100)
    assert doc.frame == 50 and transport.playing
    transport.stop()
    assert player.state == player.PlaybackState.PausedState

    # the dub nudged 10 frames later, played from frame 0: silent until the playhead reaches the dub
    window.nudge_dub(10)
    doc.set_frame(0)
    player.seeks.clear()
    transport.play()
    assert player.seeks == [] and player.state == player.PlaybackState.PausedState
    qtbot.waitUntil(lambda: bool(player.seeks), timeout=3000)
    assert doc.frame >= 10 and player.seeks[0] == (doc.frame - 10) * 1000 // FPS
    assert player.state == player.PlaybackState.PlayingState
    transport.stop()

def test_timeline_zoom_and_click_to_seek(opened):
    window = opened
    timeline = window.timeline
    x0, x1 = timeline.view_range()
    window.actions["view.zoom_in"].trigger()
    y0, y1 = timeline.view_range()
    assert (y1 - y0) < (x1 - x0)
    timeline.plots["sync"].vb.clicked.emit(42.6, 1.0)
    assert window.document.frame == 42 and window.inspector.segment.id == "s2"
    window.actions["view.zoom_all"].trigger()
    assert timeline.view_range()[1] >= N


# --------------------------------------------------------------------------- errors reach the user


def drop(window, *paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def test_dropping_an_unsupported_file_says_so(window, qtbot, boxes, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not media")
    drop(window, notes)
    qtbot.waitUntil(lambda: bool(boxes.shown), timeout=5000)
    icon, text, informative = boxes.shown[0]
    assert icon == QMessageBox.Icon.Warning
    assert "cannot use notes.txt" in text and "audio" in informative
    assert window.document is None and window.isVisible()


def test_a_failing_worker_is_reported_and_the_window_lives_on(opened, qtbot, boxes, monkeypatch, tmp_path):
    import core.weights

    window = opened
    monkeypatch.setattr(core.weights, "MANIFEST", tmp_path / "no-models" / "manifest.json")  # nothing bundled

    def broken(progress, cancel):
        progress(1, 4, "work")
        raise RuntimeError("kaput")

    job = window.run_job("Broken job", broken)
    wait_jobs(qtbot, window)
    assert job.state == "failed"
    assert boxes.shown[-1][0] == QMessageBox.Icon.Critical
    assert "Broken job failed" in boxes.shown[-1][1] and "RuntimeError: kaput" in boxes.shown[-1][2]

    # a real failure: the project's generator is the bundled default, and none is installed here
    project = window.document.project
    window.document.execute(SetProjectSettings(project, {"checkpoint": "generator"}))
    before = state(project)
    job = window.render_segment()
    wait_jobs(qtbot, window)
    assert job.state == "failed" and "No generator model installed" in boxes.shown[-1][2]
    assert state(project) == before

    # scoring without a sync expert says so
    window.actions["render.score"].trigger()
    wait_jobs(qtbot, window)
    assert "No sync expert installed" in boxes.shown[-1][2]

    ok = window.run_job("Fine job", lambda progress, cancel: 42)
    wait_jobs(qtbot, window)
    assert ok.state == "done" and ok.result == 42 and window.isVisible()


# --------------------------------------------------------------------------- closing, recovery


def test_unsaved_changes_prompt_and_recovery_offer(opened, qtbot, boxes):
    window = opened
    doc = window.document
    path = doc.project.path
    window.document.set_frame(10)
    window.actions["edit.split"].trigger()
    assert doc.project.modified
    boxes.answers = [Button.Cancel]
    window.close()
    assert window.isVisible() and "Save the changes" in boxes.shown[-1][1]

    window.autosaver.interval = 0  # the timer's next tick writes the autosave
    window._autosave_tick()
    from core.project import autosave_path_for

    autosave = autosave_path_for(path)
    assert autosave.is_file() and "Autosaved" in window.statusBar().currentMessage()
    os.utime(autosave, (path.stat().st_mtime + 5,) * 2)  # newer than the project file
    window.set_document(None)  # as if Lipsmith had crashed
    boxes.answers = [Button.Yes]
    assert window.open_project(path)
    assert "has unsaved changes from" in boxes.shown[-1][1]
    assert len(window.document.project.segments) == 4 and window.isWindowModified()
    wait_jobs(qtbot, window)


# --------------------------------------------------------------------------- pure helpers


# --------------------------------------------------------------------------- project settings, nudge, names


def test_project_settings_dialog_ok_writes_the_project_and_undo_restores(opened, monkeypatch):
    from app.project_settings import ProjectSettingsDialog
    from core.project import Project as P

    window = opened
    doc = window.document
    project = doc.project
    before = dict(project.settings)
    assert window.actions["project.settings"] in window.menuBar().actions()[2].menu().actions()  # Project menu

    def fill_and_ok(dialog):
        dialog.length_policy.setCurrentIndex(dialog.length_policy.findData("pad"))
        dialog.detector.setCurrentIndex(dialog.detector.findData("face-alignment"))
        dialog.face.setValue(1)
        dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
        dialog.pads[1].setValue(14)
        dialog.smooth.setValue(0)
        dialog.fractions["feather"].setValue(0.2)
        dialog.color_match.setChecked(False)
        dialog.accept()
        return dialog.result()

    monkeypatch.setattr(ProjectSettingsDialog, "exec", fill_and_ok)
    window.actions["project.settings"].trigger()
    s = project.settings
    assert (s["length_policy"], s["detector"], s["face_index"], s["device"]) == ("pad", "face-alignment", 1, "cpu")
    assert s["pads"] == [0, 14, 0, 0] and s["smooth_window"] == 0 and s["feather"] == 0.2
    assert s["color_match"] is False and s["checkpoint"] == before["checkpoint"]
    assert window.actions["edit.undo"].text() == "&Undo Project settings" and window.isWindowModified()
    assert doc.selected_segment().id == "s1" and window.inspector.smooth.value() == 0  # the new default shows
    window.save()
    assert P.load(project.path).settings == s  # in the .lipsmith file

    window.actions["edit.undo"].trigger()  # the whole dialog is one step
    assert project.settings == before and window.inspector.smooth.value() == 5
    assert window.isWindowModified()  # undone past the save

    # a value the project refuses: named in the dialog, which stays open; nothing changes
    dialog = ProjectSettingsDialog(doc, window)
    dialog.device.setEditText("gpu")
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted and "device must be" in dialog.error.text()
    assert project.settings == before
    # OK with nothing changed adds no undo step
    depth = project.history.index
    dialog = ProjectSettingsDialog(doc, window)
    dialog.accept()
    assert project.history.index == depth and dialog.result() == dialog.DialogCode.Accepted


def test_nudge_the_dub_by_frames_and_seconds_then_undo(opened, qtbot):
    window = opened
    doc = window.document
    project = doc.project
    window.activateWindow()
    window.timeline.setFocus()
    x_before = window.timeline.wave.getData()[0][0]
    qtbot.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    qtbot.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    qtbot.keyClick(window, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    qtbot.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    assert project.dub_offset == 2 and doc.frame == 0  # Alt+arrows nudge, they do not move the playhead
    assert window.actions["edit.undo"].text() == "&Undo Nudge dub +2 frames"  # one merged step
    assert "+2 frames" in window.inspector.offset_label.text()
    assert window.timeline.wave.getData()[0][0] == pytest.approx(x_before + 2)  # the dub lane moved
    window.actions["edit.undo"].trigger()
    assert project.dub_offset == 0 and "+0 frames" in window.inspector.offset_label.text()
    assert window.timeline.wave.getData()[0][0] == pytest.approx(x_before)

    buttons = {b.text(): b for b in window.inspector.findChildren(type(window.preview.mask_button))}
    buttons["+1 s"].click()
    assert project.dub_offset == FPS
    buttons["−1 frame"].click()
    assert project.dub_offset == FPS - 1
    qtbot.keyClick(window, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.ShiftModifier)
    assert project.dub_offset == -1
    window.actions["edit.undo"].trigger()
    assert project.dub_offset == 0 and not window.isWindowModified()


def test_nudging_moves_the_segments_and_stops_exporting_takes_rendered_for_the_old_timing(opened, qtbot):
    from core.export import export_runs

    window = opened
    doc = window.document
    project = doc.project
    doc.execute(SetProjectSettings(project, {"length_policy": "cut"}))  # the output ends with the picture
    take = add_take(project, "s1", 0, 30)  # rendered with the dub at 0, chosen for s1 [0, 30)
    assert export_runs(project, N)[0] == (0, 30, project.take_path(take), 0)
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    qtbot.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    assert project.dub_offset == 2
    assert [(s.start, s.end, s.kind) for s in project.segments] == [(0, 2, "silence"), (2, 32, "speech"),
                                                                    (32, 52, "silence"), (52, 75, "speech")]
    assert list(window.timeline.bars.opts["x0"]) == [0, 2, 32, 52]  # the timeline shows them moved
    assert project.segment("s1").take_id is None and project.takes[take.id] == take
    assert all(run[2] is None for run in export_runs(project, N))  # the export shows the original frames
    assert "1 segment(s) show the original frames" in window.statusBar().currentMessage()
    doc.set_frame(10)
    assert "no longer fit it" in window.inspector.takes.item(0).text()
    window.actions["edit.undo"].trigger()  # one step: offset, segments and the take choice come back
    assert project.dub_offset == 0 and project.segment("s1").take_id == take.id
    assert [(s.start, s.end) for s in project.segments] == [(0, 30), (30, 50), (50, 75)]
    assert "✓" in window.inspector.takes.item(0).text()


def test_alt_comma_and_period_slip_the_segment_under_the_playhead_and_only_its_take_stops_exporting(opened, qtbot):
    import numpy as np
    import soundfile

    from core.audio import load_audio
    from core.export import export_runs
    from core.slip import slip_audio

    window = opened
    doc, transport = window.document, window.transport
    project = doc.project
    qtbot.waitUntil(lambda: doc.waveform is not None, timeout=10_000)
    t1, t3 = add_take(project, "s1", 0, 30), add_take(project, "s3", 50, N)
    wave_before = window.timeline.wave.getData()[1].reshape(-1, 2)  # (lo, hi) per 1/200 s: 8 per frame
    doc.set_frame(10)  # in s1 [0, 30)
    window.activateWindow()
    alt = Qt.KeyboardModifier.AltModifier
    for key in (Qt.Key.Key_Period, Qt.Key.Key_Period, Qt.Key.Key_Period, Qt.Key.Key_Comma):
        qtbot.keyClick(window, key, alt)
    assert [s.slip for s in project.segments] == [2, 0, 0] and project.dub_offset == 0 and doc.frame == 10
    assert window.actions["edit.undo"].text() == "&Undo Slip segment s1 to +2 frames"  # one merged step
    assert window.inspector.slip_label.text() == "Slip: +2 frames (+80 ms, heard later)"
    # s1's take was rendered for the old timing: the original frames export there; s3 keeps its take
    assert project.segment("s1").take_id is None and project.segment("s3").take_id == t3.id
    assert export_runs(project, N)[0][2] is None and export_runs(project, N)[-1][2] == project.take_path(t3)
    assert "shows the original frames" in window.statusBar().currentMessage()
    assert "rendered before a slip of +2 frames" in window.inspector.takes.item(0).text()
    # the dub lane draws s1's line two frames later, silence where it was, and says so
    wave = window.timeline.wave.getData()[1].reshape(-1, 2)
    assert not wave[:16].any() and wave_before[:16].any()
    np.testing.assert_array_equal(wave[16:256], wave_before[:240])
    np.testing.assert_array_equal(wave[256:], wave_before[256:])
    assert [label.toPlainText() for label in window.timeline.slip_labels] == ["slip +2"]
    # playback plays the dub as slipped, as the export delivers it
    player = fake_tracks(transport)[0]
    transport.play()
    played, rate = soundfile.read(player.source, dtype="float32")
    transport.stop()
    np.testing.assert_array_equal(played, slip_audio(load_audio(project.dub.path, rate), rate, FPS, 0, [(0, 30, 2)]))

    # Alt+drag in the Dub lane slips the segment the drag began in: one step for the drag
    lane = window.timeline.plots["dub"].vb
    lane.alt_dragged.emit(60.2, 61.4, True, False)
    lane.alt_dragged.emit(60.2, 63.6, False, True)
    assert project.segment("s3").slip == 3 and project.segment("s3").take_id is None
    assert window.actions["edit.undo"].text() == "&Undo Slip segment s3 to +3 frames"
    window.actions["edit.undo"].trigger()
    assert project.segment("s3").slip == 0 and project.segment("s3").take_id == t3.id
    # elsewhere (the ruler, the dub lane over silence) an Alt+drag is a drag: it moves the playhead
    frame = doc.frame
    window.timeline.plots["ruler"].vb.alt_dragged.emit(5.0, 12.2, True, True)
    assert doc.frame == 12
    lane.alt_dragged.emit(40.5, 44.2, True, True)  # s2 [30, 50) is silence
    assert doc.frame == 44 and project.segment("s2").slip == 0
    doc.set_frame(frame)
    window.actions["edit.undo"].trigger()
    assert project.segment("s1").take_id == t1.id and window.inspector.slip_label.text().startswith("Slip: none")
    assert window.timeline.slip_labels == []
    transport.play()
    assert player.source == str(project.dub.path)  # nothing slipped: the dub itself
    transport.stop()
    doc.set_frame(40)  # s2: silence has no line to slip
    qtbot.keyClick(window, Qt.Key.Key_Period, alt)
    assert "only a speech segment's dub slips" in window.statusBar().currentMessage()
    assert not window.shortcuts.conflicts()


def test_a_render_or_scoring_that_finishes_after_a_nudge_does_not_pass_for_the_new_timing(opened):
    from core import jobs
    from core.project import NudgeDub

    project = opened.document.project
    take = add_take(project, "s3", 50, N)
    scoring = jobs.score_request(project)
    assert scoring.segments == {"s3": (take.id, 50, N)}
    request = jobs.render_request(project, 0, 30, "s1", "segment s1")
    project.execute(NudgeDub(project, 1))  # while both jobs run
    file = project.take_file_for("t-render")
    file.write_bytes(b"not really a video")
    jobs.commit_render(project, jobs.RenderResult(request, file, 0, 30, {"file": "x"}, 30, [], 1.0, "cpu"))
    [rendered] = [t for t in project.takes.values() if t.id != take.id]
    assert rendered.settings["dub_offset_frames"] == 0 and rendered.file == "t-render.mkv"
    assert project.segment("s1").take_id is None  # kept, but not chosen: it follows the old timing
    result = {"scores": {"s3": (7.5, None)}, "scorer": "test", "segments": scoring.segments,
              "takes": {take.id: {"lse_c": 7.5}}}
    jobs.commit_scores(project, result)
    assert project.segment("s3").lse_c is None  # s3 moved and lost its take: not this score's segment now
    assert project.takes[take.id].scores["lse_c"] == 7.5  # the take's own score still holds


def test_at_the_smallest_window_size_nothing_is_cut_off(opened, qtbot):
    window = opened
    window.resize(window.minimumSize())
    qtbot.waitUntil(lambda: window.width() == window.minimumWidth())
    qtbot.wait(50)
    scroll = window.inspector_dock.widget()
    # no horizontal scrolling in the inspector: its content must fit the dock's width, which cannot be
    # dragged narrower than that
    assert window.inspector.width() <= scroll.viewport().width()
    assert scroll.minimumWidth() > window.inspector.minimumSizeHint().width()
    info = window.preview.info  # the frame and the last one: shortened to the frame, never cut mid-text
    assert info.fontMetrics().horizontalAdvance(info.text()) <= info.contentsRect().width()
    assert info.text().startswith(str(window.document.frame))
    entry = window.preview.timecode  # the timecode shows whole
    assert entry.fontMetrics().horizontalAdvance(entry.text()) <= entry.contentsRect().width()
    window.resize(1600, 900)
    qtbot.waitUntil(lambda: "frame" in info.text())


def test_rename_a_segment_in_the_inspector_and_by_double_click(opened, qtbot, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    window = opened
    doc = window.document
    project = doc.project
    doc.set_frame(10)
    window.inspector.name.setText("  Opening   line ")
    window.inspector.name.editingFinished.emit()
    assert project.segment("s1").name == "Opening line"
    assert window.inspector.title.text().startswith("Opening line")
    labels = {item.toPlainText(): item for item, _ in window.timeline.name_labels}
    assert "Opening line" in labels and labels["Opening line"].pos().x() == 0
    window.actions["edit.undo"].trigger()
    assert project.segment("s1").name == "" and window.inspector.name.text() == ""

    asked = []
    monkeypatch.setattr(QInputDialog, "getText",
                        lambda parent, title, label, mode, text: (asked.append(text), ("Reply", True))[1])
    window.timeline.plots["sync"].vb.double_clicked.emit(60.4, 1.0)
    assert project.segment("s3").name == "Reply" and doc.frame == 60
    assert window.actions["edit.undo"].text() == "&Undo Rename segment s3 to Reply"
    monkeypatch.setattr(QInputDialog, "getText", lambda *a: ("Reply 2", False))  # Cancel: nothing changes
    window.actions["edit.rename"].trigger()
    assert project.segment("s3").name == "Reply"


# --------------------------------------------------------------------------- lanes


def qimage_array(image):
    import numpy as np
    from PySide6.QtGui import QImage

    image = image.convertToFormat(QImage.Format.Format_BGR888)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    return np.frombuffer(image.constBits(), np.uint8, h * stride).reshape(h, stride)[:, :w * 3].reshape(h, w, 3)


def test_thumbnail_worker_delivers_images_for_the_right_frames(qtbot, media):
    import numpy as np

    from app.thumbnails import Thumbnails, scaled
    from core.video import VideoSource

    video, _ = media
    thumbs = Thumbnails(height=48)
    try:
        delivered = []
        thumbs.ready.connect(delivered.append)
        thumbs.set_source(video)
        thumbs.request([70, 0, 35, 36])
        qtbot.waitUntil(lambda: len(delivered) == 4, timeout=20_000)
        assert sorted(delivered) == [0, 35, 36, 70] and thumbs.decoded == 4
        with VideoSource(video) as source:
            truth = {i: scaled(source.read(i), 48).astype(np.float32) for i in (0, 35, 70)}
        for i in (0, 35, 70):
            got = qimage_array(thumbs.image(i)).astype(np.float32)
            assert got.shape == truth[i].shape == (48, 64, 3)
            errors = {j: float(np.abs(got - t).mean()) for j, t in truth.items()}
            assert errors[i] < 2.0 and all(errors[i] < e for j, e in errors.items() if j != i), (i, errors)
        thumbs.request([0, 35, 70])  # cached: nothing is decoded again
        qtbot.wait(200)
        assert thumbs.decoded == 4 and thumbs.pending() == 0
    finally:
        thumbs.shutdown()


def test_thumbnail_lane_fills_its_slots_in_the_background(opened, qtbot):
    timeline = opened.timeline
    qtbot.waitUntil(lambda: bool(timeline.thumb_strip.slots), timeout=5000)
    slots = timeline.thumb_strip.slots
    assert slots[0] == (0, 0) and all(b[0] - a[0] == timeline.thumb_strip.step for a, b in zip(slots, slots[1:]))
    qtbot.waitUntil(lambda: all(timeline.thumbnails.image(i) is not None for _, i in slots), timeout=20_000)
    timeline.zoom(0.2, around=40)  # zoomed in: thumbnails closer together, the ones in view asked for
    qtbot.waitUntil(lambda: timeline.thumb_strip.step < slots[1][0] - slots[0][0], timeout=5000)
    x0, x1 = timeline.view_range()
    assert all(x0 - timeline.thumb_strip.step <= k <= x1 for k, _ in timeline.thumb_strip.slots)
    qtbot.waitUntil(lambda: all(timeline.thumbnails.image(i) is not None for _, i in timeline.thumb_strip.slots),
                    timeout=20_000)


def test_original_audio_lane_has_the_videos_samples(opened, qtbot, tmp_path):
    import numpy as np

    from core import jobs

    window = opened
    doc = window.document
    qtbot.waitUntil(lambda: doc.original_state != "loading", timeout=10_000)
    w = doc.original_waveform
    assert doc.original_state == "ready" and w.duration == pytest.approx(SECONDS, abs=0.1)
    assert 0.05 < float(w.hi.max()) < 0.075  # the clip's tone (lavfi: 1/8 scale) halved, not the dub's 1/8
    x, y = window.timeline.original_wave.getData()
    assert x.size > 100 and float(np.max(y)) == pytest.approx(float(w.hi.max()))
    assert x[-1] == pytest.approx(SECONDS * FPS, abs=1.0) and x[0] == 0
    assert window.timeline.original_note.toPlainText() == ""

    silent = tmp_path / "silent.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=25:duration=0.4", "-pix_fmt", "yuv420p", silent)
    assert jobs.load_original_audio(lambda *a: None, lambda: False, silent) is None
    doc.set_original_waveform(None, "none")
    assert window.timeline.original_wave.getData()[0] is None or window.timeline.original_wave.getData()[0].size == 0
    assert "no audio" in window.timeline.original_note.toPlainText()


def add_take(project, segment_id, start, end, **kwargs):
    from core.project import AddTake

    take_id = project.new_take_id()
    take = project.new_take(segment_id, project.take_file_for(take_id), take_id=take_id, start=start, end=end,
                            **kwargs)
    project.execute(AddTake(project, take, choose=True))
    return take


def test_confidence_lane_draws_the_planted_frame_conf(opened):
    import numpy as np

    from core import jobs

    window = opened
    doc = window.document
    project = doc.project
    take = add_take(project, "s1", 0, 30)
    planted = 3.0 + 4.0 * np.sin(np.arange(30) / 4.0) ** 2
    planted[7] = np.nan  # a frame no face window covered
    result = {"scores": {"s1": (5.5, None)}, "scorer": "test-expert",
              "takes": {take.id: {"frame_conf": planted, "frame_fps": float(FPS), "lse_c": 5.5, "lse_d": 7.0,
                                  "scorer": "test-expert"}}}
    jobs.commit_scores(project, result)  # as the scoring job's result is applied
    assert project.takes[take.id].scores["scorer"] == "test-expert"
    x, y = window.timeline.curve.getData()
    finite = np.isfinite(y)
    assert x[finite].tolist() == [float(i) for i in range(30) if i != 7]
    assert np.allclose(y[finite], np.round(planted[np.isfinite(planted)], 3))
    assert window.timeline.curve_value(12) == pytest.approx(planted[12], abs=1e-3)
    assert window.timeline.curve_value(7) is None and window.timeline.curve_value(40) is None
    assert project.segment("s1").lse_c == 5.5
    assert window.timeline.plots["sync"].vb.viewRange()[1][1] >= np.nanmax(planted)  # the curve fits the lane
    window.actions["edit.undo"].trigger()
    x, y = window.timeline.curve.getData()
    assert x is None or len(x) == 0


# --------------------------------------------------------------------------- mask overlay, no-face markers


def test_mask_overlay_draws_the_renderers_box_and_mask(opened, qtbot):
    import numpy as np

    from app.overlay import mask_overlay
    from core.project import SetSegmentSettings

    window = opened
    doc = window.document
    doc.set_frame(12)
    window.actions["view.mask"].trigger()
    assert doc.show_mask and window.preview.mask_button.isChecked()
    wait_jobs(qtbot, window)
    assert doc.track is not None and doc.track.has_face.all()  # the stub detector's box in every frame
    view = window.preview.view
    shown = view.mask_shown
    expected = doc.track.crop_box(12, (0, 10, 0, 0))
    assert shown.crop_box == tuple(expected) and view.mask_item.isVisible() and view.crop_item.isVisible()
    assert shown.mask.shape == (96, 96) and shown.mask.max() > 0.5 and shown.mask[:40].max() == 0  # lower face only
    assert "MASK" in view.overlay
    ref = mask_overlay(doc.track, 12, doc.project.effective_settings("s1"))
    assert np.array_equal(ref.mask, shown.mask)

    doc.execute(SetSegmentSettings(doc.project, "s1", {"pads": [0, 30, 5, 5], "feather": 0.3}))
    assert view.mask_shown.crop_box == tuple(doc.track.crop_box(12, (0, 30, 5, 5)))
    assert not np.array_equal(view.mask_shown.mask, shown.mask)  # a softer feather
    window.actions["view.mask"].trigger()
    assert not doc.show_mask and not view.mask_item.isVisible() and "MASK" not in view.overlay


CENTRE_FACE = (110.0, 50.0, 210.0, 190.0)  # face 0: the larger, central one
CORNER_FACE = (10.0, 10.0, 60.0, 70.0)  # face 1


class TwoFaces(FaceDetector):
    """Two faces in every frame: a big central one and a small one in the corner."""

    name = "test-two-faces"

    def _detect(self, image):
        return [Detection(CORNER_FACE, 0.98), Detection(CENTRE_FACE, 0.99)]


def click_image(qtbot, view, x, y):
    """A left click on the preview at image pixel (x, y)."""
    point = view.mapFromScene(view.item.mapToScene(QPointF(x, y)))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)


def test_face_picker_numbers_the_faces_and_a_click_chooses_the_segments_face(opened, qtbot, monkeypatch):
    import core.faces

    monkeypatch.setattr(core.faces, "get_detector", lambda name="retinaface", **params: TwoFaces())
    window = opened
    doc = window.document
    view = window.preview.view
    doc.set_frame(12)  # segment s1
    status = window.statusBar().currentMessage
    assert window.actions["view.faces"].shortcut().toString() == "Shift+F"
    assert window.inspector.face_label.text() == "Face: 0, the project's (faces not found yet: Shift+F numbers them)"
    window.actions["view.faces"].trigger()
    assert doc.show_faces and window.preview.faces_button.isChecked() and view.picking
    wait_jobs(qtbot, window)
    qtbot.waitUntil(lambda: not view.item.pixmap().isNull())
    assert [(f.index, f.box) for f in view.faces_shown] == [(0, CENTRE_FACE), (1, CORNER_FACE)]
    labels = [label.text.text() for _, label in view.face_items]
    assert labels == ["0 ✓", "1"] and all(box.isVisible() for box, _ in view.face_items)
    assert "FACES: 2 found, face 0 dubbed" in view.overlay
    assert window.inspector.face_label.text() == "Face: 0, the project's (of 2 found)"

    click_image(qtbot, view, 35, 40)  # inside face 1's box
    assert doc.project.segment("s1").settings["face_index"] == 1
    assert "face 1" in status() and "default is face 0" in status()
    assert window.inspector.face_label.text() == "Face: 1 (of 2 found)"
    assert [label.text.text() for _, label in view.face_items] == ["0", "1 ✓"]
    assert "face 1 dubbed" in view.overlay
    window.actions["view.mask"].trigger()  # the mask follows the segment's face
    assert view.mask_shown is not None and view.mask_shown.face_box == CORNER_FACE
    window.actions["view.mask"].trigger()
    assert window.actions["edit.undo"].text() == "&Undo Segment s1: set face_index"

    window.actions["edit.undo"].trigger()
    assert "face_index" not in doc.project.segment("s1").settings
    assert window.inspector.face_label.text() == "Face: 0, the project's (of 2 found)"
    click_image(qtbot, view, 160, 120)  # face 0: the project's already
    assert "face_index" not in doc.project.segment("s1").settings and "the project's default face" in status()
    click_image(qtbot, view, 300, 220)  # no face there
    assert "No face there" in status()
    # where the detection cache has no frames (as when a job has not reached them): nothing drawn, said so
    from core import jobs
    from core.faces import Detections, FaceChoices

    undetected = FaceChoices(Detections.undetected(len(doc.faces), (320, 240), {}, ""))
    doc.set_track(jobs.PictureTrack(doc.track, doc.track_timeline, undetected, doc.detections), doc.track_key)
    assert "FACES: faces not detected yet here" in view.overlay and view.faces_shown == []
    assert window.inspector.face_label.text() == "Face: 0, the project's (faces not detected yet here)"
    click_image(qtbot, view, 35, 40)
    assert status() == "Faces not detected yet here" and "face_index" not in doc.project.segment("s1").settings
    window.actions["view.faces"].trigger()
    assert not doc.show_faces and not view.picking and not any(box.isVisible() for box, _ in view.face_items)
    assert "FACES" not in view.overlay


def test_frames_without_a_face_are_marked_on_the_timeline_and_in_the_preview(opened, qtbot):
    from core import jobs

    window = opened
    doc = window.document
    project = doc.project
    file = project.take_file_for("t-render")
    file.write_bytes(b"not really a video")
    request = jobs.render_request(project, 0, 30, "s1", "segment s1")
    result = jobs.RenderResult(request, file, 0, 30, {"file": "x"}, 22, [(5, 10), (20, 23)], 1.0, "cpu")
    jobs.commit_render(project, result)  # as the render job's result is applied
    (take,) = project.takes.values()
    assert take.report["no_face"] == [[5, 10], [20, 23]] and take.no_face_ranges == [(5, 10), (20, 23)]
    opts = window.timeline.no_face_bars.opts
    assert list(opts["x0"]) == [5, 20] and list(opts["x1"]) == [10, 23]
    assert list(window.timeline.take_no_face.opts["x0"]) == [5, 20]
    doc.set_show_result(True)
    doc.set_frame(6)
    assert "no face found here" in window.preview.view.overlay
    doc.set_frame(12)
    assert "no face found" not in window.preview.view.overlay
    window.actions["edit.undo"].trigger()  # the render undone: no markers
    assert len(window.timeline.no_face_bars.opts["x0"]) == 0


# --------------------------------------------------------------------------- speaker adaptation


def test_adapt_to_speaker_job_adds_a_model_choice_a_segment_renders_with(opened, qtbot, monkeypatch, tmp_path):
    from app import dialogs
    from app.project_settings import ProjectSettingsDialog

    window = opened
    doc = window.document
    project = doc.project
    out = tmp_path / "scene.adapted.safetensors"  # beside the project file by default
    assert window.actions["render.adapt"] in window.menuBar().actions()[4].menu().actions()  # Render menu
    seen = {}
    monkeypatch.setattr(dialogs.AdaptDialog, "exec", lambda d: seen.update(values=d.values()) or 0)
    assert window.actions["render.adapt"].isEnabled()
    window.actions["render.adapt"].trigger()  # the dialog, cancelled: nothing runs
    assert seen["values"] == (out, 5.0, False, 0.0) and not window.jobs.active()  # the expert's adaptation: off

    job = window.adapt_speaker(minutes=5, steps=2, expert=None)
    stages = []
    job.progress.connect(lambda d, t, s: stages.append(s))
    wait_jobs(qtbot, window, timeout=180_000)
    assert job.state == "done", job.error
    assert {"train"} <= set(stages) and out.is_file() and out.with_suffix(".json").is_file()
    [model] = project.adapted_models
    assert model.path == out and model.info["steps"] == 2 and model.info["frames"] > 50
    assert window.actions["edit.undo"].text() == "&Undo Add adapted model scene.adapted.safetensors"
    assert project.settings["checkpoint"] != out  # recorded as a choice, not made the project's generator
    assert ProjectSettingsDialog(doc, window).generator.findData(str(out)) >= 0

    # the inspector offers it for the segment under the playhead; a re-render uses it
    doc.set_frame(0)
    combo = window.inspector.model
    index = combo.findData(str(out))
    assert index > 0 and "adapted" in combo.itemText(index) and combo.currentIndex() == 0  # project default
    combo.setCurrentIndex(index)
    combo.activated.emit(index)
    assert project.segment("s1").settings["checkpoint"] == out
    job = window.render_segment("s1")
    wait_jobs(qtbot, window, timeout=60_000)
    assert job.state == "done", job.error
    take = project.takes[project.segment("s1").take_id]
    assert take.settings["checkpoint"] == out and project.take_path(take).is_file()
    # back to the project's default: the override goes (an undoable step)
    combo.activated.emit(0)
    assert "checkpoint" not in project.segment("s1").settings
    window.actions["edit.undo"].trigger()
    assert project.segment("s1").settings["checkpoint"] == out


def test_cancelling_adaptation_leaves_no_file_and_the_project_unchanged(opened, qtbot, monkeypatch, tmp_path):
    import tempfile

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    window = opened
    project = window.document.project
    before = state(project), project.adapted_models, dict(project.settings)
    job = window.adapt_speaker(minutes=5, use=True, expert=None)  # 100,000 steps: only the budget ends it
    qtbot.waitUntil(lambda: job.stage == "train" and job.done > 0, timeout=120_000)
    row = window.jobs_panel.rows[id(job)]
    assert row.bar.maximum() == 1000 and row.cancel_button.isVisible()
    row.cancel_button.click()
    wait_jobs(qtbot, window, timeout=60_000)
    assert job.state == "cancelled"
    assert (state(project), project.adapted_models, dict(project.settings)) == before
    assert not list(tmp_path.glob("scene.adapted*")) and not list(temp.iterdir())
    assert "cancelled" in window.statusBar().currentMessage()


def test_remove_an_adapted_model_from_the_menus_undoably(opened, qtbot, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QInputDialog

    from core.project import AddAdaptedModel, SetSegmentSettings

    window = opened
    doc = window.document
    project = doc.project
    action = window.actions["render.remove_adapted"]
    menus = window.menuBar().actions()
    assert action in menus[2].menu().actions() and action in menus[4].menu().actions()  # Project, Render
    assert not action.isEnabled()  # no adapted models yet
    weights = tmp_path / "scene.adapted.safetensors"
    weights.write_bytes(b"weights")
    older = tmp_path / "older.adapted.safetensors"
    older.write_bytes(b"older")
    project.execute(AddAdaptedModel(project, older))
    project.execute(AddAdaptedModel(project, weights, label="Marie", use=True))
    project.execute(SetSegmentSettings(project, "s3", {"checkpoint": str(weights)}))
    assert action.isEnabled()
    doc.set_frame(60)  # s3
    assert window.inspector.model.findData(str(weights)) > 0
    asked = []

    def pick(parent, title, text, items, current, editable):
        asked.append(list(items))
        return items[0], True  # the newest first: Marie

    monkeypatch.setattr(QInputDialog, "getItem", pick)
    action.trigger()
    assert asked[0][0].startswith("Marie") and asked[0][1].startswith("older.adapted.safetensors")
    assert [m.path for m in project.adapted_models] == [older] and weights.is_file()
    assert project.settings["checkpoint"] == "generator" and "checkpoint" not in project.segment("s3").settings
    assert window.actions["edit.undo"].text() == "&Undo Remove adapted model Marie"
    assert "Removed scene.adapted.safetensors" in window.statusBar().currentMessage()
    assert window.inspector.model.findData(str(weights)) < 0  # no longer offered
    window.actions["edit.undo"].trigger()
    assert len(project.adapted_models) == 2 and project.settings["checkpoint"] == weights
    assert project.segment("s3").settings["checkpoint"] == weights
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a: ("", False))  # cancelled: nothing changes
    depth = project.history.index
    action.trigger()
    assert project.history.index == depth and len(project.adapted_models) == 2


def test_adapting_the_expert_too_reaches_training_and_is_recorded(opened, monkeypatch, tmp_path):
    import training.adapt
    from core.adapt import adapt_request, adapt_speaker

    project = opened.document.project
    with pytest.raises(EditError, match="negative"):
        adapt_request(project, minutes=1, expert_minutes=-1)
    assert adapt_request(project, minutes=1, expert=None, expert_minutes=2).expert_minutes == 0  # no expert
    request = adapt_request(project, minutes=1, expert_minutes=2)
    called = {}

    def adapt(video, output, **kwargs):
        called.update(kwargs)
        return {"output": str(output), "frames": 75, "step": 9, "expert": "scene.adapted.expert.safetensors",
                "expert_output": str(tmp_path / "scene.adapted.expert.safetensors")}

    monkeypatch.setattr(training.adapt, "adapt", adapt)
    result = adapt_speaker(lambda *a: None, lambda: False, request)
    assert called["expert_minutes"] == 2 and called["minutes"] == 1
    assert result.info["expert_minutes"] == 2 and result.info["expert_output"].endswith(".expert.safetensors")


def test_adaptation_finds_faces_with_the_projects_detector(opened, monkeypatch):
    import core.faces
    import training.prepare
    from core.adapt import adapt_request, adapt_speaker

    window = opened
    project = window.document.project
    project.execute(SetProjectSettings(project, {"detector": "face-alignment"}))
    request = adapt_request(project, minutes=1, steps=1, expert=None)
    assert request.detector == "face-alignment"
    asked = []

    def detector(name="retinaface", **params):
        asked.append(name)
        return BoxDetector()

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop  # enough: the clip's faces were found with the detector asked for

    monkeypatch.setattr(core.faces, "get_detector", detector)
    monkeypatch.setattr(training.prepare, "process_video", stop)
    with pytest.raises(Stop):
        adapt_speaker(lambda *a: None, lambda: False, request)
    assert asked == ["face-alignment"]


def test_a_missing_adapted_model_is_reported_on_open_and_relinked(opened, qtbot, boxes, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    from core.project import AddAdaptedModel, SetSegmentSettings

    window = opened
    project = window.document.project
    weights = tmp_path / "scene.adapted.safetensors"
    weights.write_bytes(b"weights")
    project.execute(AddAdaptedModel(project, weights))
    project.execute(SetSegmentSettings(project, "s3", {"checkpoint": str(weights)}))
    window.save()
    moved = tmp_path / "models" / "speaker.safetensors"
    moved.parent.mkdir()
    weights.rename(moved)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(moved), ""))
    assert window.open_project(project.path)
    wait_jobs(qtbot, window)
    assert "adapted model scene.adapted.safetensors is not at" in boxes.texts()
    reopened = window.document.project
    assert reopened.adapted_models[0].path == moved and not reopened.missing_adapted_models()
    assert reopened.segment("s3").settings["checkpoint"] == moved
    assert reopened.modified  # the relink is an edit to save (and undo)


def test_sync_lane_follows_the_scorers_scale(opened):
    """The bundled expert's LSE-C is ~0.02-0.1: the lane's range and the threshold line follow
    the project's threshold and scores, and a dragged threshold keeps 3 significant digits
    (rounding to 2 decimals would turn 0.0412 into 0.04)."""
    from core.project import SetScores

    timeline, project = opened.timeline, opened.document.project
    seg = [s.id for s in project.segments if s.kind == "speech"]
    project_exec = opened.document.execute
    project_exec(lambda: SetScores(project, {seg[0]: (0.09, 1.08), seg[1]: (0.02, 1.12)}))
    timeline._draw_segments()
    assert timeline.threshold.value() == pytest.approx(DEFAULT_THRESHOLD)
    top = timeline.plots["sync"].vb.viewRange()[1][1]
    assert 0.09 < top < 0.2  # not the official 0-10 scale, where these bars would be invisible
    assert [project.verdict(s) for s in seg] == ["good", "poor"]
    timeline.threshold.setValue(0.0412)
    timeline._threshold_done()
    assert project.threshold == pytest.approx(0.0412)


# --------------------------------------------------------------------------- the weak segments list


def score_a_scene(doc):
    """Speech a-b-d-e around a silence c, scored on both sides of the default threshold (0.0734):
    a and d weak (d the weaker: the list is in time order, not by score), b good, e not scored."""
    from core.project import SetScores

    project = doc.project
    doc.execute(ReplaceSegments(project, [project.make_segment(0, 15), project.make_segment(15, 30),
                                          project.make_segment(30, 50, "silence"), project.make_segment(50, 62),
                                          project.make_segment(62, N)]))
    a, b, _, d, e = (s.id for s in project.segments)
    doc.execute(SetScores(project, {a: (0.0213, None), b: (0.09, None), d: (0.0104, None)}))
    return a, b, d, e


def weak_rows(window):
    tree = window.weak_panel.list
    return [tuple(tree.topLevelItem(i).text(c) for c in range(3)) for i in range(tree.topLevelItemCount())]


def test_weak_segments_list_follows_scores_threshold_undo_and_segment_edits(opened):
    from core.project import MergeSegments, SetScores, SplitSegment

    window = opened
    doc, timeline = window.document, window.timeline
    assert weak_rows(window) == [] and window.weak_dock.windowTitle() == "Weak Segments"
    a, b, d, e = score_a_scene(doc)
    # time order, timecodes as the app writes them (out points inclusive), LSE-C to 3 significant digits
    assert weak_rows(window) == [(a, "00:00:00:00–00:00:00:14", "0.0213"), (d, "00:00:02:00–00:00:02:11", "0.0104")]
    assert window.weak_dock.windowTitle() == "Weak Segments (2)"
    assert window.weak_panel.summary.text() == (f"2 of 3 scored speech segment(s) below LSE-C {DEFAULT_THRESHOLD:g}.\n"
                                                "1 speech segment(s) not scored yet.")

    timeline.threshold.setValue(0.1)  # dragged above b's 0.09, as the Sync lane's line commits it
    timeline._threshold_done()
    assert [r[0] for r in weak_rows(window)] == [a, b, d]
    window.actions["edit.undo"].trigger()
    assert [r[0] for r in weak_rows(window)] == [a, d]
    window.actions["edit.redo"].trigger()
    assert [r[0] for r in weak_rows(window)] == [a, b, d]
    window.actions["edit.undo"].trigger()

    doc.execute(SetScores(doc.project, {e: (0.02, None)}))  # scores land
    assert [r[0] for r in weak_rows(window)] == [a, d, e]
    assert "not scored" not in window.weak_panel.summary.text()
    doc.execute(SplitSegment(doc.project, a, 7))  # its halves are not scored: not weak
    assert [r[0] for r in weak_rows(window)] == [d, e]
    doc.execute(MergeSegments(doc.project, [d, e]))  # one weak segment, over both ranges
    assert weak_rows(window) == [(d, "00:00:02:00–00:00:02:24", f"{(0.0104 * 12 + 0.02 * 13) / 25:.3g}")]
    window.actions["edit.undo"].trigger()
    window.actions["edit.undo"].trigger()
    assert [r[0] for r in weak_rows(window)] == [a, d, e]


def test_a_weak_segment_is_reached_by_click_enter_and_the_next_previous_shortcuts(opened, qtbot):
    from app.shortcuts import ShortcutsDialog

    window = opened
    doc, tree = window.document, window.weak_panel.list
    a, b, d, e = score_a_scene(doc)
    window.weak_dock.raise_()

    row_d = tree.topLevelItem(1)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=tree.visualItemRect(row_d).center())
    assert doc.frame == 50 and window.inspector.segment.id == d and tree.currentItem() is row_d
    tree.setCurrentItem(tree.topLevelItem(0))
    qtbot.keyClick(tree, Qt.Key.Key_Return)
    assert doc.frame == 0 and window.inspector.segment.id == a
    doc.set_frame(20)  # b is not weak: no row stands for it
    assert tree.currentItem() is None

    window.activateWindow()
    window.timeline.setFocus()
    alt = Qt.KeyboardModifier.AltModifier
    qtbot.keyClick(window, Qt.Key.Key_Down, alt)  # next weak: from b to d
    assert doc.frame == 50 and tree.currentItem() is row_d
    assert window.statusBar().currentMessage().startswith(f"Weak segment 2 of 2: {d}, LSE-C 0.0104")
    qtbot.keyClick(window, Qt.Key.Key_Down, alt)  # none after d: it stays
    assert doc.frame == 50 and "No weak segment after the playhead" in window.statusBar().currentMessage()
    doc.set_frame(55)
    qtbot.keyClick(window, Qt.Key.Key_Up, alt)  # inside d: its own start first, then a's
    assert doc.frame == 50
    qtbot.keyClick(window, Qt.Key.Key_Up, alt)
    assert doc.frame == 0

    # rebindable data, listed in Help ▸ Keyboard Shortcuts, clashing with no other key
    assert window.shortcuts.key("play.next_weak") == "Alt+Down" and not window.shortcuts.conflicts()
    assert {"play.next_weak", "play.prev_weak"} <= set(ShortcutsDialog(window.shortcuts, window).edits)
    toggle = window.weak_dock.toggleViewAction()
    view = next(m for m in window.menuBar().actions() if m.text() == "&View").menu()
    assert toggle in view.actions() and toggle.isChecked() and window.weak_dock.isVisible()
    toggle.trigger()
    assert not window.weak_dock.isVisible() and not toggle.isChecked()


def test_weak_scores_from_the_scoring_job_bring_the_list_to_the_front_and_a_job_brings_back_jobs(
        opened, qtbot, monkeypatch):
    """The list shares its place with the Jobs panel (a tab each): scoring that finds weak segments
    shows them; the next job shows its progress."""
    from core import jobs

    def in_front(dock):  # a tab behind another is "visible" to Qt, with nothing of it on screen
        return not dock.visibleRegion().isEmpty()

    window = opened
    scores = {"s1": (0.02, None), "s3": (0.09, None)}
    monkeypatch.setattr(jobs, "score_takes", lambda progress, cancel, request: {"scores": scores, "scorer": "test"})
    assert window.tabifiedDockWidgets(window.jobs_dock) == [window.weak_dock, window.markers_dock]
    assert in_front(window.jobs_dock) and not in_front(window.weak_dock)
    window.score()
    wait_jobs(qtbot, window)
    assert weak_rows(window) == [("s1", "00:00:00:00–00:00:01:04", "0.02")]
    qtbot.waitUntil(lambda: in_front(window.weak_dock) and not in_front(window.jobs_dock))
    window.run_job("Another job", lambda progress, cancel: None)
    qtbot.waitUntil(lambda: in_front(window.jobs_dock) and not in_front(window.weak_dock))
    wait_jobs(qtbot, window)


# --------------------------------------------------------------------------- scores after a render


def test_a_render_scores_the_segments_it_chose_in_the_same_undo_step(opened, qtbot, boxes):
    """With the bundled expert installed, a finished render queues the scoring of its segments (only
    those: s3's take is never rendered, so scoring it too would fail the job); the Sync lane, its
    curve and the inspector show the score; one undo takes back the render and its score."""
    import numpy as np
    import pyqtgraph as pg

    from app.timeline import verdict_colour
    from core.project import SetScores
    from core.weights import read_manifest

    window = opened
    doc = window.document
    project = doc.project
    timeline = window.timeline
    assert doc.models == {"generator": None, "expert": None}
    add_take(project, "s3", 50, N)  # chosen, with no file behind it
    bundled = read_manifest()["expert"]  # scored earlier by the same expert: the render's scoring keeps it
    project.execute(SetScores(project, {"s3": (0.05, 1.1)}, scorer={
        "name": f"lipsmith-expert:{bundled['file']}", "sha256": bundled["sha256"], "weak_below": DEFAULT_THRESHOLD}))
    doc.set_frame(10)
    colour = lambda i: timeline.bars.opts["brushes"][i].color().name()  # noqa: E731
    assert colour(0) == pg.mkColor(timeline.c.unscored).name()

    job = window.render_segment("s1")
    wait_jobs(qtbot, window, timeout=120_000)
    assert job.state == "done", job.error
    [scoring] = [j for j in window.jobs.jobs if j.title.startswith("Score")]
    assert scoring.title == "Score segment s1" and scoring.state == "done", scoring.error
    assert not boxes.shown
    s1 = project.segment("s1")
    take = project.takes[s1.take_id]
    assert s1.lse_c is not None and np.isfinite(s1.lse_c)
    assert take.scores["scorer"].startswith("lipsmith-expert") and take.scores["frame_conf"]
    assert project.segment("s3").lse_c == 0.05  # not rendered: not scored again
    assert window.statusBar().currentMessage().startswith("Scored 1 segment(s) with lipsmith-expert")

    top = timeline._y_max()
    assert timeline.bars.opts["height"][0] == pytest.approx(max(s1.lse_c, top * 0.02))
    assert colour(0) == pg.mkColor(verdict_colour(s1, project.threshold, timeline.c)).name()
    x, y = timeline.curve.getData()
    assert np.isfinite(y).any() and 0 <= x[np.isfinite(y)].min() and x[np.isfinite(y)].max() < 30
    words = {"good": "good", "poor": "weak"}[project.verdict(s1)]
    assert (window.inspector.confidence_label.text()
            == f"Lip-sync confidence: {words} ({s1.lse_c:.3g}; threshold {project.threshold:g})")
    assert f"LSE-C {s1.lse_c:.3g}" in window.inspector.takes.item(0).text()  # the take's number over s1: one

    assert window.actions["edit.undo"].text() == f"&Undo Render segment s1 ({take.label})"
    window.actions["edit.undo"].trigger()
    s1 = project.segment("s1")
    assert s1.take_id is None and s1.lse_c is None and take.id not in project.takes
    assert colour(0) == pg.mkColor(timeline.c.unscored).name()
    assert window.inspector.confidence_label.text() == "Lip-sync confidence: not scored"
    window.actions["edit.redo"].trigger()
    assert project.segment("s1").lse_c is not None and project.takes[take.id].scores == take.scores


def test_with_no_sync_expert_a_render_is_not_scored(opened, qtbot, boxes, monkeypatch, tmp_path):
    import core.weights

    window = opened
    project = window.document.project
    monkeypatch.setattr(core.weights, "MANIFEST", tmp_path / "no-models" / "manifest.json")  # nothing bundled
    window.check_models()
    wait_jobs(qtbot, window)
    assert window.document.models["expert"] and window.document.models["generator"] is None
    job = window.render_segment("s1")
    wait_jobs(qtbot, window, timeout=60_000)
    assert job.state == "done", job.error
    assert [j.title for j in window.jobs.jobs if j.title.startswith("Score")] == []
    assert project.segment("s1").take_id is not None and project.segment("s1").lse_c is None
    assert "not scored: no sync expert installed" in window.statusBar().currentMessage()
    assert not boxes.shown


def test_a_renders_scores_join_its_undo_step_unless_an_edit_came_between(opened):
    from core import jobs
    from core.project import NudgeDub, RenameSegment

    project = opened.document.project

    def commit(request):  # as the render job's result is applied
        file = project.take_file_for(f"t-render-{len(project.takes)}")
        file.write_bytes(b"not really a video")
        return jobs.commit_render(project, jobs.RenderResult(request, file, request.start, request.end, {"file": "x"},
                                                             request.end - request.start, [], 1.0, "cpu"))

    def render(segment_id, start, end):  # as Re-render Segment does: the new take is chosen there
        return commit(jobs.render_request(project, start, end, segment_id, f"segment {segment_id}", replace="always"))

    def scored(request, value):  # the scoring job's result
        return {"scores": {sid: (value, None) for sid in request.segments}, "scorer": "test",
                "segments": request.segments, "takes": {request.render: {"lse_c": value}}, "render": request.render}

    add_take(project, "s3", 50, N)
    first = render("s1", 0, 30)
    request = jobs.score_request(project, render=first)
    assert request.segments == {"s1": (first, 0, 30)}  # s3's chosen take is not this render's
    depth = project.history.index
    jobs.commit_scores(project, scored(request, 0.05))
    assert project.history.index == depth and project.segment("s1").lse_c == 0.05  # joined the render's step
    project.undo()
    assert project.segment("s1").lse_c is None and first not in project.takes
    project.redo()
    assert project.segment("s1").lse_c == 0.05 and project.takes[first].scores["lse_c"] == 0.05

    second = render("s3", 50, N)
    request = jobs.score_request(project, render=second)
    project.execute(RenameSegment(project, "s1", "Hello"))  # while it was being scored
    jobs.commit_scores(project, scored(request, 0.02))
    assert project.history.undo_text == "Score segments (test)"  # a step of its own
    project.undo()
    assert project.segment("s3").lse_c is None and project.segment("s3").take_id == second
    assert project.segment("s1").name == "Hello"

    request = jobs.render_request(project, 0, 30, "s1", "segment s1")
    project.execute(NudgeDub(project, 1))  # while it renders: the take is kept, chosen nowhere
    late = commit(request)
    assert late in project.takes and not jobs.score_request(project, render=late).rows  # nothing to score


# --------------------------------------------------------------------------- compare takes A/B


def rendered_take(project, segment_id, pattern, **kwargs):
    """A take of the segment with a real video file: a lavfi pattern at the clip's size, one per take."""
    s = project.segment(segment_id)
    take_id = project.new_take_id()
    file = project.take_file_for(take_id)
    ffmpeg("-f", "lavfi", "-i", f"{pattern}=size=320x240:rate={FPS}", "-frames:v", str(s.frames),
           "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", file)
    from core.project import AddTake

    project.execute(AddTake(project, project.new_take(segment_id, file, take_id=take_id, **kwargs), choose=True))
    return project.takes[take_id]


def shown_pixels(window):
    import numpy as np
    from PySide6.QtGui import QImage

    image = window.preview.view.item.pixmap().toImage().convertToFormat(QImage.Format.Format_BGR888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, :image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def take_pixels(project, take, frame):
    from core.video import VideoSource

    with VideoSource(project.take_path(take)) as source:
        return source.read(frame - take.start)


def test_compare_two_takes_flips_at_the_same_frame_and_chooses_one_in_one_undo_step(opened, qtbot):
    import numpy as np

    window = opened
    doc, inspector, preview = window.document, window.inspector, window.preview
    project = doc.project
    doc.set_frame(12)
    assert not inspector.compare_button.isEnabled()  # no takes yet
    first = rendered_take(project, "s1", "smptebars", scores={"lse_c": 5.1, "segments": {"s1": [0, 30, 5.5, None]}},
                          report={"no_face": [[10, 14]]})  # the caption: its score over the compared segment
    assert not inspector.compare_button.isEnabled()  # one take: nothing to compare
    # an actor's-mouth take against a generated-mouth one: their names tell them apart
    second = rendered_take(project, "s1", "testsrc2", settings=dict(project.effective_settings("s1"), mouth="actor"))
    assert project.segment("s1").take_id == second.id and inspector.compare_button.isEnabled()
    assert not inspector.compare_row.isVisible()
    steps = project.history.index
    project.save()

    # A: the chosen take, B: the one selected in the list
    row = next(i for i in range(inspector.takes.count())
               if inspector.takes.item(i).data(Qt.ItemDataRole.UserRole) == first.id)
    inspector.takes.setCurrentRow(row)
    qtbot.mouseClick(inspector.compare_button, Qt.MouseButton.LeftButton)
    assert doc.compare.a == second.id and doc.compare.b == first.id and doc.show_result
    assert inspector.compare_row.isVisible() and inspector.side_buttons["A"].isChecked()
    assert re.fullmatch(r"A · Take 2 · actor's mouth · \d\d:\d\d", inspector.side_buttons["A"].text())
    assert re.fullmatch(r"B · Take 1 · actor's mouth · \d\d:\d\d · LSE-C 5.5", inspector.side_buttons["B"].text())
    assert not inspector.choose_shown_button.isEnabled()  # A is the chosen take already
    qtbot.waitUntil(lambda: preview.shown == ("result", project.take_path(second), 12), timeout=10_000)
    a_pixels = shown_pixels(window)
    assert np.abs(a_pixels.astype(int) - take_pixels(project, second, 12)).mean() < 2
    assert preview.view.overlay.startswith("A · Take 2 · actor's mouth") and "no face" not in preview.view.overlay

    window.activateWindow()
    window.timeline.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_Backslash)  # the flip key
    assert doc.compare.side == "B" and inspector.side_buttons["B"].isChecked()
    qtbot.waitUntil(lambda: preview.shown == ("result", project.take_path(first), 12), timeout=10_000)
    b_pixels = shown_pixels(window)
    assert np.abs(b_pixels.astype(int) - take_pixels(project, first, 12)).mean() < 2
    assert np.abs(b_pixels.astype(int) - a_pixels).mean() > 20  # another picture, not the same one again
    assert re.match(r"B · Take 1 · actor's mouth · \d\d:\d\d · LSE-C 5.5", preview.view.overlay)
    assert "no face found here" in preview.view.overlay  # B's own report, not the chosen take's
    qtbot.mouseClick(inspector.side_buttons["A"], Qt.MouseButton.LeftButton)
    assert doc.compare.side == "A"
    qtbot.keyClick(window, Qt.Key.Key_Backslash)
    assert doc.compare.side == "B"
    assert project.history.index == steps and not project.modified  # flipping is no edit

    # choosing the shown take is one undo step; comparing goes on, now with B chosen
    qtbot.mouseClick(inspector.choose_shown_button, Qt.MouseButton.LeftButton)
    assert project.segment("s1").take_id == first.id and project.history.index == steps + 1
    assert doc.compare is not None and not inspector.choose_shown_button.isEnabled()

    # leaving compare shows the chosen take
    qtbot.mouseClick(inspector.compare_button, Qt.MouseButton.LeftButton)
    assert doc.compare is None and not inspector.compare_row.isVisible() and doc.show_result
    assert preview.view.overlay.startswith(f"RESULT · {first.label}")
    window.actions["edit.undo"].trigger()
    assert project.segment("s1").take_id == second.id
    qtbot.waitUntil(lambda: preview.shown == ("result", project.take_path(second), 12), timeout=10_000)

    # leaving the segment ends the compare; so does an undo that takes a compared take away
    inspector.compare_button.click()
    doc.set_frame(55)
    assert doc.compare is None and not inspector.compare_button.isChecked()
    doc.set_frame(12)
    inspector.compare_button.click()
    window.actions["edit.undo"].trigger()  # the second take's AddTake
    assert doc.compare is None


# --------------------------------------------------------------------------- smoothing a take


def render_s1(window, qtbot):
    job = window.render_segment("s1")
    wait_jobs(qtbot, window, timeout=120_000)
    assert job.state == "done", job.error
    return window.document.project.segment("s1").take_id


def test_smoothing_a_segments_take_adds_a_chosen_scored_take_that_undo_takes_back(opened, qtbot, boxes,
                                                                                   monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    from core.video import VideoSource

    window = opened
    doc = window.document
    project = doc.project
    assert not window.actions["render.smooth"].isEnabled()  # nothing rendered yet
    rendered = render_s1(window, qtbot)
    rendered_score = project.segment("s1").lse_c
    asked = []
    monkeypatch.setattr(QInputDialog, "getInt", lambda *args: (asked.append(args[3]), (3, True))[1])

    doc.set_frame(60)  # s3: not rendered
    assert window.actions["render.smooth"].isEnabled()
    window.actions["render.smooth"].trigger()
    assert "no chosen take" in boxes.texts() and not asked
    doc.set_frame(10)
    window.actions["render.smooth"].trigger()
    wait_jobs(qtbot, window, timeout=120_000)
    [job] = [j for j in window.jobs.jobs if j.title.startswith("Smooth")]
    assert job.state == "done", job.error
    assert asked == [5]  # 5 frames offered, 3 asked for

    s1 = project.segment("s1")
    smoothed = project.takes[s1.take_id]
    assert [t.id for t in project.takes_for("s1")] == [rendered, smoothed.id]
    assert smoothed.settings["smoothed_from"] == rendered and smoothed.settings["window"] == 3
    with VideoSource(project.take_path(rendered)) as before, VideoSource(project.take_path(smoothed)) as after:
        assert after.frame_count == before.frame_count == 30 and after.has_audio
    [scoring] = [j for j in window.jobs.jobs if j.title == "Score smoothed segment s1's take"]
    assert scoring.state == "done", scoring.error
    assert s1.lse_c is not None and project.takes[smoothed.id].scores["lse_c"] is not None

    assert window.actions["edit.undo"].text() == f"&Undo Smooth segment s1's take over 3 frames ({smoothed.label})"
    window.actions["edit.undo"].trigger()  # the take and its score: one step
    assert smoothed.id not in project.takes and project.segment("s1").take_id == rendered
    assert project.segment("s1").lse_c == rendered_score


def test_cancelled_smoothing_leaves_the_project_unchanged(opened, qtbot, monkeypatch):
    from core.video import VideoWriter

    window = opened
    project = window.document.project
    render_s1(window, qtbot)
    before, files = state(project), sorted(project.cache_dir.iterdir())
    write = VideoWriter.write
    monkeypatch.setattr(VideoWriter, "write", lambda self, frame: (time.sleep(0.05), write(self, frame)))
    job = window.smooth_take("s1")
    qtbot.waitUntil(lambda: job.stage == "smooth" and job.done > 0, timeout=30_000)
    window.jobs_panel.rows[id(job)].cancel_button.click()
    wait_jobs(qtbot, window)
    assert job.state == "cancelled"
    assert state(project) == before and sorted(project.cache_dir.iterdir()) == files


def test_a_damaged_newer_autosave_is_reported_and_the_project_opens_as_saved(opened, boxes):
    from core.project import autosave_path_for

    window = opened
    path = window.document.project.path
    segments = len(window.document.project.segments)
    autosave = autosave_path_for(path)
    autosave.write_text('{"schema_version": 1, "med')  # cut short by a crash
    os.utime(autosave, (path.stat().st_mtime + 5,) * 2)
    window.set_document(None)
    assert window.open_project(path)
    _, text, informative = boxes.shown[-1]
    assert autosave.name in text + informative and "scene.lipsmith.autosave.damaged" in informative
    assert len(window.document.project.segments) == segments and not window.isWindowModified()
    assert not autosave.exists() and autosave.with_name(autosave.name + ".damaged").is_file()


# --------------------------------------------------------------------------- the actor's mouth, render warnings


def test_the_projects_mouth_is_set_in_project_settings_and_the_render_dialog_can_choose_otherwise(
        opened, qtbot, boxes, monkeypatch):
    from app import dialogs
    from app.project_settings import ProjectSettingsDialog
    from core import jobs
    from core.errors import Cancelled

    window = opened
    doc = window.document
    project = doc.project
    render_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Render")
    assert window.actions["render.dialog"] in render_menu.actions()

    def generated_and_ok(dialog):
        assert dialog.mouth.currentData() == "actor"  # the default
        dialog.mouth.setCurrentIndex(dialog.mouth.findData("generated"))
        dialog.accept()
        return dialog.result()

    monkeypatch.setattr(ProjectSettingsDialog, "exec", generated_and_ok)
    window.actions["project.settings"].trigger()
    assert project.settings["mouth"] == "generated" and window.actions["edit.undo"].text() == "&Undo Project settings"

    asked = []  # what each render job was asked for

    def render(progress, cancel, request):
        asked.append(request)
        raise Cancelled("only asked")

    monkeypatch.setattr(jobs, "render_take", render)
    shown = []

    def choose(target, mouth):
        def fill(dialog):
            shown.append(([dialog.target.itemText(i) for i in range(dialog.target.count())],
                          dialog.mouth.currentData()))
            dialog.target.setCurrentIndex(dialog.target.findText(target, Qt.MatchFlag.MatchStartsWith))
            dialog.mouth.setCurrentIndex(dialog.mouth.findData(mouth))
            dialog.accept()
            return dialog.result()
        return fill

    doc.set_frame(60)
    monkeypatch.setattr(dialogs.RenderDialog, "exec", choose("Segment", "actor"))
    window.actions["render.dialog"].trigger()
    wait_jobs(qtbot, window)
    assert shown[-1] == (["Segment s3 (under the playhead)", "Whole clip"], "generated")  # the project's mouth first
    assert (asked[-1].start, asked[-1].end, asked[-1].segment_id) == (50, N, "s3")
    assert asked[-1].settings["mouth"] == "actor" and project.settings["mouth"] == "generated"  # this render only
    doc.mark_in()
    monkeypatch.setattr(dialogs.RenderDialog, "exec", choose("Whole", "actor"))
    window.actions["render.dialog"].trigger()
    wait_jobs(qtbot, window)
    assert len(shown[-1][0]) == 3 and (asked[-1].start, asked[-1].end, asked[-1].settings["mouth"]) == (0, N, "actor")
    window.render_segment("s1")  # the quick actions render with the project's mouth
    wait_jobs(qtbot, window)
    assert asked[-1].segment_id == "s1" and asked[-1].settings["mouth"] == "generated"
    monkeypatch.setattr(dialogs.RenderDialog, "exec", lambda dialog: dialog.DialogCode.Rejected)
    window.actions["render.dialog"].trigger()  # cancelled: no render
    wait_jobs(qtbot, window)
    assert len(asked) == 3 and not boxes.shown

    window.actions["edit.undo"].trigger()
    assert project.settings["mouth"] == "actor"


def fake_render(window, monkeypatch, generated_mouth=(), warnings=()):
    """core.jobs.render_take writing a stand-in file and reporting as a render would (with no sync
    expert, so the stand-in is not scored)."""
    from core import jobs

    window.document.set_models({"generator": None, "expert": "not installed"})

    def render(progress, cancel, request):
        request.cache_dir.mkdir(exist_ok=True)
        file = request.cache_dir / f"take-{len(list(request.cache_dir.iterdir()))}.mkv"
        file.write_bytes(b"not really a video")
        return jobs.RenderResult(request, file, request.start, request.end, {"file": "x"},
                                 request.end - request.start, [], 1.0, "cpu",
                                 list(generated_mouth) if request.settings["mouth"] == "actor" else [], list(warnings))

    monkeypatch.setattr(jobs, "render_take", render)


def test_frames_where_the_actors_mouth_fell_back_are_marked_and_counted(opened, qtbot, monkeypatch):
    from PySide6.QtWidgets import QToolTip

    window = opened
    doc = window.document
    project = doc.project
    fake_render(window, monkeypatch, generated_mouth=[(4, 9), (20, 22)])
    job = window._render(0, 30, "s1", "segment s1", mouth="actor")
    wait_jobs(qtbot, window)
    assert job.state == "done", job.error
    take = project.takes[project.segment("s1").take_id]
    assert take.label.startswith("Take 1 · actor's mouth · ") and take.report["generated_mouth"] == [[4, 9], [20, 22]]
    assert "the generated mouth in 7 of them" in window.statusBar().currentMessage()
    timeline = window.timeline
    assert list(timeline.generated_mouth_bars.opts["x0"]) == [4, 20]
    assert list(timeline.generated_mouth_bars.opts["x1"]) == [9, 22]
    assert len(timeline.no_face_bars.opts["x0"]) == 0  # another mark, another colour
    assert timeline.generated_mouth_bars.opts["brush"].color().name() == timeline.c.generated_mouth
    assert timeline.c.generated_mouth != timeline.c.no_face
    assert list(timeline.take_generated_mouth.opts["x0"]) == [4, 20]
    assert "violet" in timeline.labels["ruler"].toolTip()  # the legend
    box = timeline.plots["ruler"].vb
    timeline._on_hover("ruler", box, 5.5, 0.5)
    assert "the generated mouth in frames 4–8" in box.toolTip()
    timeline._on_hover("ruler", box, 12.5, 0.5)
    assert "generated mouth" not in box.toolTip()
    doc.set_frame(5)
    row = window.inspector.takes.item(0).text()
    assert "Take 1 · actor's mouth" in row and "generated mouth in 7 frames" in row
    assert "generated mouth here" in window.preview.view.overlay
    doc.set_frame(12)
    assert "generated mouth here" not in window.preview.view.overlay

    # a generated-mouth take chosen instead: nothing falls back there
    job = window._render(0, 30, "s1", "segment s1", mouth="generated", replace="always")
    wait_jobs(qtbot, window)
    assert project.takes[project.segment("s1").take_id].label.startswith("Take 2 · generated mouth · ")
    assert len(timeline.generated_mouth_bars.opts["x0"]) == 0
    assert list(timeline.take_generated_mouth.opts["x0"]) == [4, 20]  # the actor take still shows its marks
    window.actions["edit.undo"].trigger()
    assert list(timeline.generated_mouth_bars.opts["x0"]) == [4, 20]
    QToolTip.hideText()


def test_a_renders_warnings_reach_the_status_bar_and_its_job_row(opened, qtbot, monkeypatch):
    window = opened
    warning = "with a dub offset of +1.20 s, 90% of the output (27 of 30 frames) has no dub under it"
    fake_render(window, monkeypatch, warnings=[warning])
    job = window.render_segment("s1")
    wait_jobs(qtbot, window)
    assert job.state == "done" and job.warnings == [warning]
    assert f"⚠ {warning}" in window.statusBar().currentMessage()
    row = window.jobs_panel.rows[id(job)]
    assert row.warnings.isVisibleTo(window.jobs_panel) and warning in row.warnings.text()
    take = window.document.project.takes[window.document.project.segment("s1").take_id]
    assert take.report["warnings"] == [warning]
    assert warning in window.inspector.takes.item(0).text()

    fake_render(window, monkeypatch)  # a render without warnings shows none
    quiet = window.render_segment("s1")
    wait_jobs(qtbot, window)
    assert quiet.warnings == [] and not window.jobs_panel.rows[id(quiet)].warnings.isVisibleTo(window.jobs_panel)
    assert "⚠" not in window.statusBar().currentMessage()


class SquareDetector(FaceDetector):
    """Finds the white square drawn on the synthetic VFR clip, as a face box around it."""
    name = "test-square"

    def _detect(self, image):
        import numpy as np

        ys, xs = np.nonzero(image.min(axis=2) > 200)
        if not xs.size:
            return []
        return [Detection((int(xs.min()) - 20, int(ys.min()) - 20, int(xs.max()) + 20, int(ys.max()) + 20), 0.99)]


def test_the_mask_overlay_of_a_variable_rate_video_follows_the_source_frame_each_picture_frame_shows(
        window, qtbot, media, monkeypatch, tmp_path):
    import core.faces
    from core.video import VideoSource

    monkeypatch.setattr(core.faces, "get_detector", lambda name="retinaface", **params: SquareDetector())
    # 50 frames: 1 s at 25 fps, then 2 s at 12.5 fps (conformed to 75 picture frames); a square moving 4 px a frame
    video = tmp_path / "vfr.mp4"
    ffmpeg("-f", "lavfi", "-i", f"color=gray:size=320x240:rate={FPS}:duration=2[bg];"
           f"color=white:size=40x40:rate={FPS}:duration=2[square];[bg][square]overlay=x=40+4*n:y=100[out0]",
           "-vf", "setpts='if(lt(N,25),N,2*N-25)/(25*TB)'",
           "-fps_mode", "vfr", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", video)
    with VideoSource(video) as source:
        assert source.vfr and source.frame_count == 50 and source.picture_count == 75
        timeline = source.timeline.copy()
    project = Project.new(video, MediaFacts.probe_video(video), path=tmp_path / "vfr.lipsmith",
                          dub_path=media[1], dub_facts=MediaFacts.probe_file(media[1], duration=float(SECONDS)))
    project.execute(ReplaceSegments(project, [project.make_segment(0, 75)]))
    project.execute(SetProjectSettings(project, {"smooth_window": 0}))
    project.save()
    window._set_project(project)
    doc = window.document
    window.actions["view.mask"].trigger()
    wait_jobs(qtbot, window)
    assert doc.track is not None and doc.track.has_face.shape == (50,)  # by source frame
    pads = tuple(project.settings["pads"])
    for frame in (10, 40, 74):  # picture frame 40 shows source frame 32, 74 the last one, 49
        doc.set_frame(frame)
        source_frame = int(timeline[frame])
        assert window.preview.view.mask_shown.crop_box == tuple(doc.track.crop_box(source_frame, pads)), frame
    assert int(timeline[40]) == 32 and doc.track.crop_box(32, pads)[0] != doc.track.crop_box(40, pads)[0]
    assert doc.track_timeline.tolist() == timeline.tolist()


# --------------------------------------------------------------------------- timecode


def test_timecode_from_the_sources_start_in_every_view_and_the_entry_jumps(window, qtbot, media, tmp_path):
    from dataclasses import replace

    video, dub = media
    facts = replace(MediaFacts.probe_video(video), start_timecode="01:00:00:00")  # as a camera's file carries it
    project = Project.new(video, facts, path=tmp_path / "tc.lipsmith", dub_path=dub,
                          dub_facts=MediaFacts.probe_file(dub, duration=float(SECONDS)))
    project.execute(ReplaceSegments(project, [project.make_segment(0, 30), project.make_segment(30, N)]))
    project.save()
    assert Project.load(project.path).video.facts.start_timecode == "01:00:00:00"  # kept with the project
    window._set_project(project)
    wait_jobs(qtbot, window)
    doc, entry = window.document, window.preview.timecode
    assert doc.time_text() == entry.text() == "01:00:00:00"
    # the inspector writes the segment's out point inclusive: [0, 30) ends on its 30th frame
    assert window.inspector.range_label.text().startswith("01:00:00:00–01:00:01:04")
    assert window.timeline.axis.tickStrings([0, 25, 50], 1, 25) == ["01:00:00", "01:00:01", "01:00:02"]
    assert window.timeline.axis.tickStrings([0, 5], 1, 5) == ["01:00:00:00", "01:00:00:05"]

    def enter(text):
        entry.setFocus()
        entry.selectAll()
        qtbot.keyClicks(entry, text)
        qtbot.keyClick(entry, Qt.Key.Key_Return)

    enter("01:00:02:10")
    assert doc.frame == 60 and entry.text() == "01:00:02:10" and not entry.hasFocus()
    enter("-5")
    assert doc.frame == 55 and entry.text() == "01:00:02:05"
    enter("+3")
    assert doc.frame == 58
    enter("1:00")  # the last fields: this minute's 1 s 00
    assert doc.frame == 25
    enter("01:00:00:25")  # no frame 25 at 25 fps: nothing moves, the status bar says why
    assert doc.frame == 25 and "out of range" in window.statusBar().currentMessage()
    assert entry.text() == "01:00:00:25" and entry.hasFocus()  # left to correct
    qtbot.keyClick(entry, Qt.Key.Key_Escape)
    assert entry.text() == "01:00:01:00" and not entry.hasFocus()
    enter("02:00:00:00")  # past the clip: its last frame, and a word why
    assert doc.frame == N - 1 and "outside the clip (01:00:00:00–01:00:02:24)" in window.statusBar().currentMessage()

    doc.set_frame(10)
    doc.mark_in()
    doc.set_frame(20)
    doc.mark_out()
    assert "in 01:00:00:10  out 01:00:00:20" in window.frame_label.text()  # the out mark's frame, as marked



# --------------------------------------------------------------------------- issue 13: the editor as a dubbing editor expects it


def test_a_new_project_keeps_the_whole_picture_unless_cutting_it_is_chosen(window, qtbot, boxes, media, tmp_path,
                                                                           monkeypatch):
    from app import dialogs

    video, _ = media
    short_dub = tmp_path / "short.wav"  # 1 s of dub under a 3 s picture
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=1", short_dub)
    window.create_project(video, short_dub, tmp_path / "kept")
    wait_jobs(qtbot, window)
    project = window.document.project
    assert project.settings["length_policy"] == "pad" and window.document.length == N  # the whole picture
    _, question, informative = boxes.shown[-1]
    assert question.startswith("Keep the whole picture?")
    assert ("Keep the whole picture: picture 00:00:03:00, dub 00:00:01:00 — export 00:00:03:00\n"
            "Cut to the dub: picture 00:00:03:00, dub 00:00:01:00 — export 00:00:01:00 (cut to the dub)") in informative

    summaries = []

    class Export:  # the export dialog, as shown: what it says
        def __init__(self, path, summary, inputs, parent=None):
            summaries.append(summary)

        def exec(self):
            return 0

    monkeypatch.setattr(dialogs, "ExportDialog", Export)
    window.export_dialog()
    assert "picture 00:00:03:00, dub 00:00:01:00 — export 00:00:03:00." in summaries[-1]

    boxes.answers.append(Button.No)  # "Cut to the dub"
    window.create_project(video, short_dub, tmp_path / "cut")
    wait_jobs(qtbot, window)
    assert window.document.project.settings["length_policy"] == "cut" and window.document.length == FPS
    window.export_dialog()
    assert "export 00:00:01:00 (cut to the dub)." in summaries[-1]


def test_the_render_dialog_says_where_a_new_take_replaces_chosen_ones(opened, monkeypatch):
    from app import dialogs

    window = opened
    asked = []
    monkeypatch.setattr(window, "_render", lambda *args, **kwargs: asked.append((args, kwargs)))
    shown = []

    def run(dialog):
        shown.append([dialog.replace.itemText(i) for i in range(dialog.replace.count())])
        assert dialog.replace.currentData() == "never"  # the default
        dialog.target.setCurrentText("Whole clip")
        dialog.replace.setCurrentIndex(dialog.replace.findData("better"))
        return dialog.DialogCode.Accepted

    monkeypatch.setattr(dialogs.RenderDialog, "exec", run)
    window.render_dialog()
    assert shown[0] == ["Never (only where a segment has no take)",
                        "Where the new one scores better (LSE-C, once scored)", "Always"]
    assert asked[-1] == ((0, N, None, "whole clip"), {"mouth": "actor", "replace": "better"})


def test_a_whole_clip_render_keeps_the_takes_the_editor_chose(opened, qtbot, boxes, monkeypatch):
    window = opened
    project = window.document.project
    chosen = add_take(project, "s1", 0, 30)
    said = []
    monkeypatch.setattr(window, "status", lambda text, ms=6000: said.append(text))
    job = window.render_clip()
    wait_jobs(qtbot, window, timeout=60_000)
    assert job.state == "done", job.error
    new = [t for t in project.takes.values() if t.start == 0 and t.end == N][0]
    assert project.segment("s1").take_id == chosen.id  # never replaced behind the editor's back
    assert project.segment("s3").take_id == new.id and new.id in [t.id for t in project.takes_for("s1")]
    assert any(text.startswith("Rendered whole clip") and "1 segment(s) keep their chosen take" in text
               for text in said)


def test_choosing_another_take_shows_its_score_everywhere_at_once(opened):
    from core.project import SetScores, SetThreshold

    window = opened
    doc = window.document
    project = doc.project
    doc.execute(SetThreshold(project, 0.04))
    good = add_take(project, "s1", 0, 30)
    doc.execute(SetScores(project, {"s1": (0.06, None)}))
    weak = add_take(project, "s1", 0, 30)  # chosen, not scored yet
    doc.execute(SetScores(project, {"s1": (0.01, None)}))
    doc.set_frame(5)
    inspector = window.inspector
    rows = {inspector.takes.item(i).data(Qt.ItemDataRole.UserRole): inspector.takes.item(i).text()
            for i in range(inspector.takes.count())}
    assert "LSE-C 0.06" in rows[good.id] and "LSE-C 0.01" in rows[weak.id]  # each take its own number
    assert inspector.confidence_label.text() == "Lip-sync confidence: weak (0.01; threshold 0.04)"
    assert "LSE-C 0.01" in inspector.confidence_label.toolTip() and "SyncNet" in inspector.confidence_label.toolTip()
    assert window.weak_panel.list.topLevelItemCount() == 1

    inspector._choose(good.id)  # "Use take"
    assert inspector.confidence_label.text() == "Lip-sync confidence: good (0.06; threshold 0.04)"
    assert window.weak_panel.list.topLevelItemCount() == 0  # no longer weak
    from PySide6.QtGui import QColor

    bar = [i for i, s in enumerate(window.timeline._segments_shown) if s.id == "s1"][0]  # the Sync lane's bar
    assert window.timeline.bars.opts["brushes"][bar].color().name() == QColor(window.colours.good).name()
    assert window.timeline.bars.opts["height"][bar] == pytest.approx(0.06)
    assert "good (0.06; threshold 0.04)" in window.statusBar().currentMessage()
    assert good.label in window.statusBar().currentMessage()
    inspector._choose(None)  # the original frames: never scored
    assert inspector.confidence_label.text() == "Lip-sync confidence: not scored"
    assert "not scored" in window.statusBar().currentMessage()


def test_spin_boxes_take_what_is_typed_and_commit_on_enter(opened, qtbot):
    window = opened
    doc = window.document
    doc.set_frame(5)
    feather = window.inspector.feather

    def type_into(spin, text):
        spin.setFocus()
        spin.lineEdit().selectAll()
        qtbot.keyClicks(spin.lineEdit(), text)

    depth = doc.project.history.index
    type_into(feather, "0.25")
    assert doc.project.history.index == depth  # nothing committed while typing
    qtbot.keyClick(feather.lineEdit(), Qt.Key.Key_Return)
    assert doc.project.segment("s1").settings["feather"] == 0.25
    type_into(feather, "0.125")
    qtbot.keyClick(feather.lineEdit(), Qt.Key.Key_Return)
    assert doc.project.segment("s1").settings["feather"] == 0.125
    smooth = window.inspector.smooth
    type_into(smooth, "11")
    qtbot.keyClick(smooth.lineEdit(), Qt.Key.Key_Tab)  # focus out commits too
    assert doc.project.segment("s1").settings["smooth_window"] == 11

    from PySide6.QtWidgets import QAbstractSpinBox

    from app.dialogs import AdaptDialog
    from app.project_settings import ProjectSettingsDialog

    dialogs = (ProjectSettingsDialog(doc, window), AdaptDialog(doc.project.folder / "adapted.safetensors", "", parent=window))
    spins = [spin for w in (window, *dialogs) for spin in w.findChildren(QAbstractSpinBox)]
    assert len(spins) > 10 and all(not spin.keyboardTracking() for spin in spins)  # every one commits when done


def test_the_export_dialog_offers_the_delivery_formats_audio_and_loudness(opened, qtbot, boxes, tmp_path,
                                                                         monkeypatch):
    import av

    from app import dialogs

    window = opened
    dialog = dialogs.ExportDialog(tmp_path / "final.mp4", "", (), window)
    assert dialog.format.currentData() == "h264" and dialog.preset.isEnabled()
    dialog.format.setCurrentIndex(dialog.format.findData("prores"))
    assert dialog.path.text() == str(tmp_path / "final.mov") and not dialog.preset.isEnabled()  # H.264's only
    dialog.audio.setCurrentIndex(dialog.audio.findData("dub+original"))
    dialog.loudness.setCurrentIndex(dialog.loudness.findData("-23"))
    dialog.exec = lambda: 1  # as if Export were pressed
    monkeypatch.setattr(dialogs, "ExportDialog", lambda *args: dialog)
    job = window.export_dialog()
    assert boxes.shown[-1][1] == "3 of 3 segments are not rendered: they export with the original mouth"
    wait_jobs(qtbot, window)
    assert job.state == "done", job.error  # exported anyway (the recorder's Yes)
    with av.open(str(tmp_path / "final.mov")) as container:
        assert container.streams.video[0].codec_context.name == "prores"
        assert [s.codec_context.name for s in container.streams.audio] == ["pcm_s24le"] * 2
    assert [name for name, before, after in job.result.loudness if after is not None] == ["dub", "original"]
    assert window.statusBar().currentMessage().count("LUFS") == 2


def test_the_export_dialog_proposes_no_input_and_warns_of_unrendered_segments_before_exporting(
        window, qtbot, boxes, media, tmp_path, monkeypatch):
    import shutil

    from app import dialogs

    video, dub = media
    folder = tmp_path / "job"
    folder.mkdir()
    clip = folder / "scene.mp4"
    shutil.copy(video, clip)
    project = Project.new(clip, MediaFacts.probe_video(clip), path=folder / "scene.lipsmith", dub_path=dub,
                          dub_facts=MediaFacts.probe_file(dub, duration=float(SECONDS)))
    project.execute(ReplaceSegments(project, [project.make_segment(0, 30), project.make_segment(30, 50, "silence"),
                                              project.make_segment(50, N)]))
    add_take(project, "s1", 0, 30)
    project.save()
    window._set_project(project)
    wait_jobs(qtbot, window)
    made = []

    def accepted_dialog(*args):
        dialog = real_dialog(*args)
        dialog.exec = lambda: 1  # as if Export were pressed
        made.append(dialog)
        return dialog

    real_dialog = dialogs.ExportDialog
    monkeypatch.setattr(dialogs, "ExportDialog", accepted_dialog)

    boxes.answers = [Button.Cancel]
    assert window.export_dialog() is None
    assert Path(made[-1].path.text()) == folder / "scene-lipsync.mp4"  # scene.mp4 is the video
    assert boxes.shown[-1][1] == "2 of 3 segments are not rendered: they export with the original mouth"
    assert "s2, s3" in boxes.shown[-1][2]
    assert not window.jobs.active() and not project.exports and sorted(p.name for p in folder.glob("*.mp4")) == [
        "scene.mp4"]  # Cancel: nothing exported

    exported = []
    monkeypatch.setattr(window, "export", lambda path, preset, **options: exported.append(path))
    window.export_dialog()  # Export anyway (the recorder's Yes)
    assert exported == [folder / "scene-lipsync.mp4"]
    add_take(project, "s2", 30, 50)
    add_take(project, "s3", 50, N)
    shown = len(boxes.shown)
    window.export_dialog()  # every segment rendered: no question
    assert len(boxes.shown) == shown and len(exported) == 2
    assert made[-1].findChild(QLabel, "hint").text().endswith("3 of 3 segments use a take; the rest show the "
                                                               "original frames.")

    # a format whose suffix would name an input proposes another name
    dialog = real_dialog(folder / "scene.mp4", "", [folder / "scene.mov"], window)
    dialog.format.setCurrentIndex(dialog.format.findData("prores"))
    assert dialog.path.text() == str(folder / "scene-lipsync.mov")


def test_the_qc_report_describes_the_project_as_the_export_started(opened, qtbot, tmp_path, monkeypatch):
    from core.project import RenameSegment
    from core.qc import qc_path
    from core.video import VideoWriter

    write = VideoWriter.write
    monkeypatch.setattr(VideoWriter, "write", lambda self, frame: (time.sleep(0.02), write(self, frame)))
    window = opened
    doc, project = window.document, window.document.project
    doc.execute(RenameSegment(project, "s1", "Exported-name"))
    out = tmp_path / "final.mp4"
    job = window.export(out, "Fast draft (CRF 23)")
    qtbot.waitUntil(lambda: job.stage == "export" and job.done > 0, timeout=30_000)
    doc.execute(RenameSegment(project, "s1", "Renamed-while-exporting"))  # the export goes on with the old
    qtbot.waitUntil(lambda: qc_path(out).is_file(), timeout=60_000)
    wait_jobs(qtbot, window)
    assert job.state == "done" and "QC report final.mp4.qc.html" in window.statusBar().currentMessage()
    text = qc_path(out).read_text(encoding="utf-8")
    assert "Exported-name" in text and "Renamed-while-exporting" not in text


# --------------------------------------------------------------------------- markers, navigation, plain words


def test_m_adds_a_marker_the_markers_tab_names_colours_moves_and_removes_it_all_undoable(opened, qtbot):
    from core.project import Marker

    window = opened
    doc, project, panel = window.document, window.document.project, window.markers_panel
    window.activateWindow()
    window.timeline.setFocus()
    assert window.actions["view.mask"].shortcut().toString() == "Shift+M"  # M is the NLE's marker key
    doc.set_frame(12)
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert project.markers == (Marker(12),) and not doc.show_mask
    assert window.actions["edit.undo"].text() == "&Undo Add Marker at frame 12"
    assert panel.list.topLevelItemCount() == 1 and window.markers_dock.windowTitle() == "Markers (1)"
    assert panel.list.currentItem().text(0) == doc.time_text(12)
    assert window.timeline.marker_points.getData()[0].tolist() == [12]
    qtbot.keyClick(window, Qt.Key.Key_M)  # again on the marker: its name is for typing
    assert len(project.markers) == 1 and panel.name.hasFocus()
    panel.name.setText("breath")
    panel.name.editingFinished.emit()
    panel.colour.setCurrentIndex(panel.colour.findData("red"))
    panel.colour.activated.emit(panel.colour.currentIndex())
    panel.note.setText("ADR: the breath is early")
    panel.note.editingFinished.emit()
    assert project.markers == (Marker(12, "breath", "red", "ADR: the breath is early"),)
    assert panel.list.topLevelItem(0).text(1) == "breath"
    panel.frame.setValue(40)  # moves it; the playhead follows
    assert project.markers[0].frame == 40 and doc.frame == 40 and panel.list.currentItem() is not None
    assert window.timeline.marker_points.getData()[0].tolist() == [40]
    window.actions["view.mask"].trigger()  # the mask overlay kept its action, on Shift+M
    assert doc.show_mask

    doc.set_frame(0)
    panel.list.itemClicked.emit(panel.list.topLevelItem(0), 0)  # a click goes there
    assert doc.frame == 40
    panel.list.setFocus()
    qtbot.keyClick(panel.list, Qt.Key.Key_Delete)
    assert project.markers == ()
    window.actions["edit.undo"].trigger()
    assert window.actions["edit.undo"].text() == "&Undo Move breath to frame 40"
    window.actions["edit.undo"].trigger()
    assert project.markers == (Marker(12, "breath", "red", "ADR: the breath is early"),)
    window.save()
    assert Project.load(project.path).markers == project.markers


def test_markers_and_edits_are_walked_and_in_out_are_gone_to(opened, qtbot):
    from core.project import AddMarker

    window = opened
    doc, project = window.document, window.document.project
    doc.execute(AddMarker(project, 20, "door"))
    doc.execute(AddMarker(project, 60, "laugh"))
    window.activateWindow()
    window.timeline.setFocus()
    doc.set_frame(0)
    walk = []
    for _ in range(7):
        qtbot.keyClick(window, Qt.Key.Key_Down)  # segment edges 30, 50 and the clip's end 74; markers 20, 60
        walk.append(doc.frame)
    assert walk == [20, 30, 50, 60, 74, 74, 74]
    qtbot.keyClick(window, Qt.Key.Key_Up)
    assert doc.frame == 60
    qtbot.keyClick(window, Qt.Key.Key_Up, Qt.KeyboardModifier.ShiftModifier)
    assert doc.frame == 20 and "door" in window.statusBar().currentMessage()
    qtbot.keyClick(window, Qt.Key.Key_Up, Qt.KeyboardModifier.ShiftModifier)
    assert doc.frame == 20 and "No marker before" in window.statusBar().currentMessage()
    qtbot.keyClick(window, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert doc.frame == 60

    qtbot.keyClick(window, Qt.Key.Key_I, Qt.KeyboardModifier.ShiftModifier)
    assert doc.frame == 60 and "No in mark" in window.statusBar().currentMessage()
    doc.set_frame(10)
    qtbot.keyClick(window, Qt.Key.Key_I)
    doc.set_frame(25)
    qtbot.keyClick(window, Qt.Key.Key_O)
    doc.set_frame(70)
    qtbot.keyClick(window, Qt.Key.Key_I, Qt.KeyboardModifier.ShiftModifier)
    assert doc.frame == 10
    qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)
    assert doc.frame == 25  # the out mark's frame: the last one in


def test_play_in_to_out_stops_at_the_out_and_loop_starts_again(opened, qtbot):
    window = opened
    doc, transport = window.document, window.transport
    doc.set_frame(5)
    doc.mark_in()
    doc.set_frame(14)
    doc.mark_out()  # frames [5, 15)
    doc.set_frame(40)
    window.actions["play.in_to_out"].trigger()
    assert transport.playing and doc.frame == 5 and transport.range == (5, 15)
    seen = []
    doc.frame_changed.connect(seen.append)
    qtbot.waitUntil(lambda: not transport.playing, timeout=5000)
    assert doc.frame == 14 and max(seen) == 14 and transport.range is None  # stopped on the out, not past it

    window.actions["play.loop"].trigger()
    assert transport.loop and "loop" in window.frame_label.text()
    seen.clear()
    window.actions["play.in_to_out"].trigger()
    qtbot.waitUntil(lambda: 14 in seen and seen[-1] < 14, timeout=5000)  # round again from the in
    assert transport.playing and all(5 <= f <= 14 for f in seen)
    window.actions["play.loop"].trigger()
    qtbot.waitUntil(lambda: not transport.playing, timeout=5000)
    assert doc.frame == 14 and not transport.loop


def test_the_inspector_says_the_confidence_in_plain_words_and_the_threshold_label_follows_the_line(opened):
    from core.project import SetScores, SetThreshold

    window = opened
    doc, project, inspector, timeline = window.document, window.document.project, window.inspector, window.timeline
    doc.execute(SetThreshold(project, 0.05))
    assert timeline.threshold.label.toPlainText() == "threshold 0.05"  # set by an edit, the label with it
    doc.execute(SetScores(project, {"s1": (0.054, 1.1)}))
    doc.set_frame(3)
    assert inspector.confidence_label.text() == "Lip-sync confidence: good (0.054; threshold 0.05)"
    tip = inspector.confidence_label.toolTip()
    assert "LSE-C" in tip and "SyncNet" in tip and "LSE-D 1.10" in tip
    timeline.threshold.setValue(0.06)  # what a drag does while the mouse is down
    assert timeline.threshold.label.toPlainText() == "threshold 0.06" and project.threshold == 0.05
    timeline.threshold.sigPositionChangeFinished.emit(timeline.threshold)  # released
    assert project.threshold == 0.06
    assert inspector.confidence_label.text() == "Lip-sync confidence: weak (0.054; threshold 0.06)"
    doc.undo()
    assert timeline.threshold.label.toPlainText() == "threshold 0.05"
    doc.set_frame(40)
    assert inspector.confidence_label.text() == "Lip-sync confidence: silence, not judged"


def test_up_and_down_step_a_focused_spin_box_or_list_not_the_playhead(opened, qtbot):
    window = opened
    doc, smooth = window.document, window.inspector.smooth
    doc.set_frame(3)
    window.activateWindow()
    smooth.setFocus()
    before = smooth.value()
    qtbot.keyClick(smooth, Qt.Key.Key_Up)
    assert smooth.value() == before + 1 and doc.frame == 3
    window.timeline.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_Down)
    assert doc.frame == 30  # the next edit: s1's end
