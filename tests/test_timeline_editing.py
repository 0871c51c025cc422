"""Editing on the timeline, offscreen with pytest-qt: trimming a segment by dragging its edge (real mouse
events on the timeline's view: press, moves, release), snapping the edge and the playhead, zoom to fit
and to the selection, and the context menus on segments, takes and empty lanes (each item is the
window's own action, or the inspector's take buttons)."""
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.project import AddMarker  # noqa: E402
from tests.test_app import N, add_take, boxes, media, opened, window  # noqa: E402,F401 (fixtures)


def lane_point(timeline, lane: str, frame: float, y: float | None = None) -> QPoint:
    """Where `frame` (and `y`, default a fifth of the lane's height: under the sync lane's threshold line,
    which takes drags of its own) of a lane is in the timeline view's viewport."""
    vb = timeline.plots[lane].vb
    (_, _), (y0, y1) = vb.viewRange()
    scene = vb.mapViewToScene(QPointF(frame, y0 + (y1 - y0) / 5 if y is None else y))
    return timeline.glw.mapFromScene(scene)


def mouse(timeline, kind, point: QPoint, button=Qt.MouseButton.LeftButton, buttons=Qt.MouseButton.LeftButton):
    viewport = timeline.glw.viewport()
    event = QMouseEvent(kind, QPointF(point), QPointF(viewport.mapToGlobal(point)), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, event)


def drag(timeline, lane: str, frames):
    """Press at the first frame, move through the others, release at the last (real mouse events; pyqtgraph
    drops moves closer in time than its rate limit, so they come a few milliseconds apart)."""
    points = [lane_point(timeline, lane, f) for f in frames]
    mouse(timeline, QEvent.Type.MouseButtonPress, points[0])
    for p in points[1:]:
        QTest.qWait(20)
        mouse(timeline, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton)
    QTest.qWait(20)
    mouse(timeline, QEvent.Type.MouseButtonRelease, points[-1], buttons=Qt.MouseButton.NoButton)


def ranges(project):
    return [(s.start, s.end) for s in project.segments]


def test_dragging_a_segment_edge_trims_it_in_one_undo_step(opened, qtbot):
    window = opened  # s1 [0, 30), s2 [30, 50) silence, s3 [50, 75)
    timeline, doc = window.timeline, window.document
    project = doc.project
    add_take(project, "s1", 0, 30)
    steps = project.history.index
    doc.set_frame(5)
    timeline.set_view(0, 60)  # 60 frames over the lane: several pixels a frame
    assert timeline.edge_near(30.2) == ("s1", "end") and timeline.edge_near(40) is None

    drag(timeline, "sync", [30.0, 32.0, 34.0, 36.0, 36.4])  # the cut s1 | s2 moves for both
    assert ranges(project) == [(0, 36), (36, 50), (50, N)]
    assert project.history.index == steps + 1 and project.history.undo_text == "Trim segment s1 end to frame 36"
    assert project.segment("s1").take_id is None  # its take covers [0, 30) only: the original frames
    assert doc.frame == 5  # a trim is no seek
    assert window.inspector.range_label.text().endswith("(36 frames)")
    window.actions["edit.undo"].trigger()
    assert ranges(project) == [(0, 30), (30, 50), (50, N)] and project.segment("s1").take_id is not None

    drag(timeline, "sync", [50.0, 45.0, 10.0])  # s3's start: never past s2's first frame
    assert ranges(project) == [(0, 30), (30, 31), (31, N)]
    window.actions["edit.undo"].trigger()

    drag(timeline, "sync", [40.0, 44.0])  # away from an edge: the playhead moves
    assert ranges(project) == [(0, 30), (30, 50), (50, N)] and doc.frame == 44


def test_a_dragged_edge_and_the_playhead_snap_to_edges_markers_and_the_playhead(opened):
    window = opened
    timeline, doc = window.timeline, window.document
    project = doc.project
    project.execute(AddMarker(project, 40))
    doc.set_frame(20)
    timeline.set_view(0, 75)
    x0, x1 = timeline.view_range()
    reach = (x1 - x0) / timeline.plots["sync"].vb.width() * 8  # 8 pixels (SNAP_PX) in frames
    assert 0.5 < reach < 4  # the offscreen view's width: about a frame within reach
    near = (0.5 + reach) / 2  # within reach, and farther than rounding to the nearest frame goes

    drag(timeline, "sync", [30.0, 40.0 - near])  # near the marker
    assert project.segment("s1").end == 40
    drag(timeline, "sync", [40.0, 20.0 + near])  # near the playhead
    assert project.segment("s1").end == 20
    drag(timeline, "sync", [20.0, 27.3])  # nothing near: the nearest whole frame
    assert project.segment("s1").end == 27

    drag(timeline, "dub", [10.0, 50.0 - near])  # the playhead snaps to s3's start
    assert doc.frame == 50
    drag(timeline, "dub", [70.0, 40.0 - near])  # and to the marker
    assert doc.frame == 40


def test_zoom_to_fit_and_to_the_selected_segment_from_the_view_menu_and_their_keys(opened, qtbot):
    window = opened
    timeline, doc = window.timeline, window.document
    assert window.shortcuts.key("view.zoom_all") == "Shift+Z" and window.shortcuts.key("view.zoom_selection") == "Alt+Z"
    assert not window.shortcuts.conflicts()
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert {window.actions["view.zoom_all"], window.actions["view.zoom_selection"]} <= set(view_menu.actions())

    doc.set_frame(40)  # in s2 [30, 50)
    window.actions["view.zoom_selection"].trigger()
    x0, x1 = timeline.view_range()
    assert x0 == pytest.approx(29) and x1 == pytest.approx(51)  # the segment, a twentieth spare either side

    window.activateWindow()
    timeline.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ShiftModifier)
    x0, x1 = timeline.view_range()
    assert x0 <= 0 and x1 >= N and x1 - x0 < N * 1.05  # the whole project, nothing more
    doc.set_frame(60)  # in s3 [50, 75)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.AltModifier)
    x0, x1 = timeline.view_range()
    assert x0 == pytest.approx(48.75) and x1 == pytest.approx(76.25)
