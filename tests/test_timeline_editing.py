"""Editing on the timeline, offscreen with pytest-qt: trimming a segment by dragging its edge (real mouse
events on the timeline's view: press, moves, release), snapping the edge and the playhead, zoom to fit
and to the selection, and the context menus on segments, takes and empty lanes (each item is the
window's own action, or the inspector's take buttons)."""
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QMenu  # noqa: E402

from core.project import AddMarker, EditError  # noqa: E402
from tests.test_app import N, add_take, boxes, media, opened, rendered_take, window  # noqa: E402,F401 (fixtures)


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
    box = timeline.plots["sync"].vb
    for frame, shape in ((30.2, Qt.CursorShape.SizeHorCursor), (40.0, Qt.CursorShape.ArrowCursor)):
        QTest.qWait(20)  # moves closer in time are dropped
        mouse(timeline, QEvent.Type.MouseMove, lane_point(timeline, "sync", frame), Qt.MouseButton.NoButton,
              Qt.MouseButton.NoButton)
        assert box.cursor().shape() == shape  # over an edge: the double arrow

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


@pytest.fixture
def menus(monkeypatch):
    """Every menu the timeline or the inspector opens, recorded instead of shown (PySide's QMenu.exec
    cannot be patched on the class: they make theirs from a recording subclass)."""
    import app.inspector
    import app.timeline

    shown = []

    class Recording(QMenu):
        def exec(self, *args):
            shown.append(self)

        def deleteLater(self):  # kept for the test to trigger its items
            pass

    monkeypatch.setattr(app.timeline, "QMenu", Recording)
    monkeypatch.setattr(app.inspector, "QMenu", Recording)
    return shown


def items(menu):
    return [a for a in menu.actions() if not a.isSeparator()]


def test_right_click_a_segment_or_an_empty_lane_offers_the_windows_actions_there(opened, menus, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    import app.main_window

    window = opened
    timeline, doc, actions = window.timeline, window.document, window.actions
    project = doc.project
    timeline.set_view(0, 75)

    point = lane_point(timeline, "sync", 40.5)  # a real right-click, on s2 [30, 50)
    mouse(timeline, QEvent.Type.MouseButtonPress, point, Qt.MouseButton.RightButton, Qt.MouseButton.RightButton)
    mouse(timeline, QEvent.Type.MouseButtonRelease, point, Qt.MouseButton.RightButton, Qt.MouseButton.NoButton)
    assert len(menus) == 1 and doc.frame == 40  # the playhead went there: each item acts there
    assert items(menus[0]) == [actions[n] for n in ("render.segment", "edit.split", "edit.merge_next", "edit.rename",
                                                     "marker.add")]
    {a.text(): a for a in items(menus[0])}["&Split Segment at Playhead"].trigger()
    assert [(s.start, s.end) for s in project.segments] == [(0, 30), (30, 40), (40, 50), (50, N)]

    menu = timeline.context_menu("sync", 12.2, 0.0)  # Merge with Next, on s1
    next(a for a in items(menu) if a is actions["edit.merge_next"]).trigger()
    assert [(s.start, s.end) for s in project.segments] == [(0, 40), (40, 50), (50, N)]
    menu = timeline.context_menu("sync", 44.0, 0.0)  # Add Marker, here
    next(a for a in items(menu) if a is actions["marker.add"]).trigger()
    assert [m.frame for m in project.markers] == [44]
    monkeypatch.setattr(QInputDialog, "getText", lambda *a: ("Reply", True))
    menu = timeline.context_menu("sync", 60.0, 0.0)  # Rename Segment…, s3
    next(a for a in items(menu) if a is actions["edit.rename"]).trigger()
    assert project.segment("s3").name == "Reply"
    asked = []

    def render_request(project, start, end, segment_id, *rest):  # asked, then refused: no job starts
        asked.append((start, end, segment_id))
        raise EditError("not in this test")

    monkeypatch.setattr(app.main_window.jobs, "render_request", render_request)
    items(timeline.context_menu("sync", 5.0, 0.0))[0].trigger()  # Re-render Segment: the one under the click
    assert asked == [(0, 40, "s1")]

    timeline.set_view(20, 40)
    point = lane_point(timeline, "dub", 25.0)  # an empty lane: Add Marker, Zoom to Fit
    mouse(timeline, QEvent.Type.MouseButtonPress, point, Qt.MouseButton.RightButton, Qt.MouseButton.RightButton)
    mouse(timeline, QEvent.Type.MouseButtonRelease, point, Qt.MouseButton.RightButton, Qt.MouseButton.NoButton)
    assert items(menus[-1]) == [actions["marker.add"], actions["view.zoom_all"]] and doc.frame == 25
    items(menus[-1])[1].trigger()
    assert timeline.view_range()[0] <= 0 and timeline.view_range()[1] >= N


def test_right_click_a_take_chooses_compares_or_removes_it(opened, menus, qtbot):
    window = opened
    timeline, doc, inspector = window.timeline, window.document, window.inspector
    project = doc.project
    first = rendered_take(project, "s1", "smptebars")
    second = rendered_take(project, "s1", "testsrc2")  # chosen; drawn in the row above the first
    timeline.set_view(0, 75)

    menu = timeline.context_menu("takes", 10.5, 0.5)  # the first take's row
    assert doc.frame == 10 and [a.text() for a in items(menu)] == ["&Choose", "Compare &A/B", "&Remove"]
    assert all(a.isEnabled() for a in items(menu))
    items(menu)[0].trigger()  # Choose: the inspector's Use take
    assert project.segment("s1").take_id == first.id and project.history.undo_text.startswith("Choose")

    menu = timeline.context_menu("takes", 10.5, 1.5)  # the second's
    items(menu)[1].trigger()  # Compare A/B: the chosen take against this one
    assert (doc.compare.a, doc.compare.b) == (first.id, second.id) and inspector.compare_button.isChecked()

    steps = project.history.index
    items(timeline.context_menu("takes", 10.5, 1.5))[2].trigger()  # Remove
    assert second.id not in project.takes and project.history.index == steps + 1 and doc.compare is None
    window.actions["edit.undo"].trigger()
    assert second.id in project.takes

    # the inspector's list offers the same menu on a right-click of a take
    row = next(i for i in range(inspector.takes.count())
               if inspector.takes.item(i).data(Qt.ItemDataRole.UserRole) == second.id)
    inspector.takes.customContextMenuRequested.emit(inspector.takes.visualItemRect(inspector.takes.item(row)).center())
    assert inspector.takes.currentRow() == row and [a.text() for a in items(menus[-1])][0] == "&Choose"
    items(menus[-1])[0].trigger()
    assert project.segment("s1").take_id == second.id
    choose = items(inspector.take_menu(second.id))[0]
    assert not choose.isEnabled()  # the chosen take already

    # a take the segment under the playhead cannot use: only Remove
    wide = add_take(project, "s3", 45, N)  # over s2's last frames and s3
    menu = timeline.context_menu("takes", 46.0, 0.5)
    assert doc.project.segment_at(doc.frame).id == "s2" and wide.id in {t.id for t, _ in timeline._takes_shown}
    assert [a.isEnabled() for a in items(menu)] == [False, False, True]


def test_zoom_to_selection_with_no_segment_under_the_playhead_says_so(opened):
    from core.project import ReplaceSegments

    window = opened
    doc = window.document
    doc.execute(ReplaceSegments(doc.project, [doc.project.make_segment(0, 30)]))
    doc.set_frame(40)
    before = window.timeline.view_range()
    window.actions["view.zoom_selection"].trigger()
    assert window.timeline.view_range() == before
    assert window.statusBar().currentMessage() == "No segment under the playhead to zoom to"
