"""A panel listing things that sit at frames of the document (the Weak Segments, the Markers): one
row each, its frame under FRAME; a click (or Enter) on a row moves the playhead there; it follows the
document's `changed` (refresh) and its playhead (_follow_playhead), which the subclasses define."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QTreeWidget, QTreeWidgetItem, QWidget

FRAME = Qt.ItemDataRole.UserRole  # the frame a row stands for


class FrameList(QWidget):
    def __init__(self, columns, parent=None):
        super().__init__(parent)
        self.document = None
        self._shown = None  # what the rows show: rebuilt only when it changes
        self.list = QTreeWidget(self)
        self.list.setHeaderLabels(columns)
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setAllColumnsShowFocus(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.itemClicked.connect(self._go)
        self.list.itemActivated.connect(self._go)  # Enter, or a double-click

    def set_document(self, document):
        if self.document is not None:
            self.document.changed.disconnect(self.refresh)
            self.document.frame_changed.disconnect(self._follow_playhead)
        self.document = document
        self._shown = None
        if document is not None:
            document.changed.connect(self.refresh)
            document.frame_changed.connect(self._follow_playhead)
        self.refresh()

    def select_frame(self, frame):
        """Make the row of `frame` current (none when None or not listed), scrolled into view; only
        when that changes: during playback this runs every frame, and the list may be scrolled."""
        items = (self.list.topLevelItem(i) for i in range(self.list.topLevelItemCount()))
        item = next((it for it in items if frame is not None and it.data(0, FRAME) == frame), None)
        if item is self.list.currentItem():
            return
        self.list.setCurrentItem(item)
        if item is None:
            self.list.clearSelection()
        else:
            self.list.scrollToItem(item)

    def _go(self, item: QTreeWidgetItem, *_):
        if self.document is not None:
            self.document.set_frame(item.data(0, FRAME))
