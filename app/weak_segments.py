"""The weak segments panel: the speech segments scored below the project's threshold (the Sync
lane's red bars), in time order — name, in–out timecodes, LSE-C, how many takes it has — and a
line for the speech not scored yet.

A click (or Enter) on a row moves the playhead to that segment's start, which selects it; the row
of the segment under the playhead is highlighted. Playback ▸ Next / Previous Weak Segment (the
window's actions) walk the same list. It follows the document's `changed`: scores landing, the
threshold, undo / redo, splits, merges and new segments all arrive that way.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHeaderView, QLabel, QTreeWidgetItem, QVBoxLayout

from .frame_list import FRAME, FrameList


COLUMNS = ("Segment", "In–Out", "LSE-C", "Takes")


class WeakSegmentsPanel(FrameList):
    count_changed = Signal(int)  # weak segments listed (the dock's title shows it)

    def __init__(self, parent=None):
        super().__init__(COLUMNS, parent)  # a row's frame: its segment's start
        header = self.list.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # a long name elides, the numbers stay
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.summary = QLabel("", self)
        self.summary.setObjectName("hint")
        self.summary.setWordWrap(True)
        self.summary.setToolTip("A render scores the segments it renders (with the sync expert installed); "
                                "Render ▸ Score Chosen Takes scores every rendered one again.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.summary)
        self.set_document(None)

    # -- showing

    def refresh(self, *_):
        project = self.document.project if self.document is not None else None
        weak = project.weak_segments() if project is not None else []
        rows = [self._row(project, s) for s in weak]
        summary = summary_text(project) if project is not None else ""
        if (rows, summary) == self._shown:
            return
        self._shown = (rows, summary)
        self.list.clear()
        for start, texts, tip in rows:
            item = QTreeWidgetItem(list(texts))
            item.setData(0, FRAME, start)
            for column in range(len(COLUMNS)):
                item.setToolTip(column, tip)
            for column in (2, 3):
                item.setTextAlignment(column, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.list.addTopLevelItem(item)
        self.summary.setText(summary)
        self.count_changed.emit(len(rows))
        self._follow_playhead()

    def _row(self, project, s) -> tuple:
        """(start frame, the columns' texts, tooltip) of a weak segment's row."""
        span = project.timecode.span(s.start, s.end)
        takes = len(project.takes_for(s.id))
        tip = (f"{s.title} · {span} · LSE-C {s.lse_c:.3g} (threshold {project.threshold:g}) · {takes} take(s)"
               " — click to go to its start")
        return s.start, (s.title, span, f"{s.lse_c:.3g}", str(takes)), tip

    def _follow_playhead(self, *_):
        """Highlight the row of the segment under the playhead; none when that one is not weak."""
        segment = self.document.selected_segment() if self.document is not None else None
        self.select_frame(segment.start if segment is not None else None)


def summary_text(project) -> str:
    """How the speech segments stand: how many are weak of those scored, how many are not scored yet."""
    verdicts = [project.verdict(s) for s in project.segments if s.kind == "speech"]
    if not verdicts:
        return "No speech segments yet."
    weak, unscored = verdicts.count("poor"), verdicts.count("unscored")
    scored = len(verdicts) - unscored
    lines = []
    if scored:
        lines.append(f"{weak} of {scored} scored speech segment(s) below LSE-C {project.threshold:g}." if weak
                     else f"All {scored} scored speech segment(s) reach LSE-C {project.threshold:g}.")
    if unscored:
        lines.append(f"{unscored} speech segment(s) not scored yet.")
    return "\n".join(lines)
