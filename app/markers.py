"""The markers panel: the project's markers in time order — timecode, colour, name, note — and the
fields that edit the marker at the playhead.

Markers are notes pinned to output frames (core.project.Marker), one per frame: M adds one at the
playhead (on a marker, M puts the cursor in its name); a click (or Enter) on a row moves the playhead
to it; Delete removes the selected one. The fields below the list rename, recolour, move (its frame)
and annotate the marker at the playhead, each an undoable command (AddMarker, EditMarker,
RemoveMarker), so the Edit menu undoes them. It follows the document's `changed` and the playhead.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton,
                               QSpinBox, QTreeWidgetItem, QVBoxLayout)

from core.project import MARKER_COLOURS, EditMarker, RemoveMarker
from core.project.model import NAME_LIMIT

from .frame_list import FRAME, FrameList


COLUMNS = ("Timecode", "Name", "Note")
# how each of OpenTimelineIO's marker colours is drawn (the ruler, the list's swatches)
MARKER_HEX = {"red": "#e5484d", "pink": "#f07ab5", "orange": "#f0883e", "yellow": "#e3c341", "green": "#3fb950",
              "cyan": "#39c5cf", "blue": "#4f8bff", "purple": "#a371f7", "magenta": "#db61a2", "black": "#30363d",
              "white": "#e6edf3"}


def swatch(colour: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(MARKER_HEX[colour]))
    return QIcon(pixmap)


class MarkersPanel(FrameList):
    count_changed = Signal(int)  # markers listed (the dock's title shows it)

    def __init__(self, parent=None):
        super().__init__(COLUMNS, parent)  # a row's frame: its marker's
        self._editing = None  # the frame of the marker the fields show (what they edit)
        header = self.list.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.list.installEventFilter(self)

        self.name = QLineEdit(self)
        self.name.setMaxLength(NAME_LIMIT)
        self.name.setPlaceholderText("Name this marker")
        self.name.editingFinished.connect(lambda: self._edit(name=self.name.text()))
        self.colour = QComboBox(self)
        for colour in MARKER_COLOURS:
            self.colour.addItem(swatch(colour), colour, colour)
        self.colour.activated.connect(lambda i: self._edit(colour=self.colour.itemData(i)))
        self.frame = QSpinBox(self)
        self.frame.setKeyboardTracking(False)  # typed digits move it once, on Enter
        self.frame.setToolTip("The marker's frame: change it to move the marker (the playhead follows)")
        self.frame.valueChanged.connect(self._move)
        self.note = QLineEdit(self)
        self.note.setPlaceholderText("A note for the mix or the client")
        self.note.editingFinished.connect(lambda: self._edit(note=self.note.text()))
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.setToolTip("Remove the marker at the playhead (Delete in the list)")
        self.remove_button.clicked.connect(self.remove_current)
        self.summary = QLabel("", self)
        self.summary.setObjectName("hint")
        self.summary.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Name", self.name)
        colour_row = QHBoxLayout()
        colour_row.addWidget(self.colour, 1)
        colour_row.addWidget(QLabel("Frame", self))
        colour_row.addWidget(self.frame, 1)
        form.addRow("Colour", colour_row)
        form.addRow("Note", self.note)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.list, 1)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.summary, 1)
        buttons.addWidget(self.remove_button)
        layout.addLayout(buttons)
        self.set_document(None)

    def current(self):
        """The marker at the playhead, or None."""
        doc = self.document
        return doc.project.marker_at(doc.frame) if doc is not None else None

    # -- showing

    def refresh(self, *_):
        project = self.document.project if self.document is not None else None
        markers = project.markers if project is not None else ()
        if markers != self._shown:
            self._shown = markers
            self.list.clear()
            timecode = project.timecode if project is not None else None
            for m in markers:
                item = QTreeWidgetItem([timecode.text(m.frame), m.title, m.note])
                item.setIcon(0, swatch(m.colour))
                item.setData(0, FRAME, m.frame)
                item.setToolTip(1, f"{m.title} · {m.colour}" + (f"\n{m.note}" if m.note else ""))
                self.list.addTopLevelItem(item)
            self.summary.setText("Press M to mark the playhead's frame." if project is not None and not markers
                                 else "")
            self.count_changed.emit(len(markers))
        self.frame.blockSignals(True)
        self.frame.setRange(0, max(self.document.length - 1, 0) if self.document is not None else 0)
        self.frame.blockSignals(False)
        self._follow_playhead()

    def _follow_playhead(self, *_):
        """Select the row of the marker at the playhead and show it in the fields; none elsewhere."""
        marker = self.current()
        self.select_frame(marker.frame if marker is not None else None)
        for w in (self.name, self.colour, self.frame, self.note, self.remove_button):
            w.setEnabled(marker is not None)
        frame = marker.frame if marker is not None else None
        another = frame != self._editing  # text being typed stays only while it is for this marker
        self._editing = frame
        if another or not self.name.hasFocus():
            self.name.setText(marker.name if marker is not None else "")
        if another or not self.note.hasFocus():
            self.note.setText(marker.note if marker is not None else "")
        self.colour.setCurrentIndex(MARKER_COLOURS.index(marker.colour) if marker is not None else -1)
        self.frame.blockSignals(True)
        self.frame.setValue(marker.frame if marker is not None else self.document.frame if self.document else 0)
        self.frame.blockSignals(False)

    # -- editing

    def _edit(self, **changes):
        if self._editing is None:
            return
        doc, frame = self.document, self._editing
        doc.execute(lambda: EditMarker(doc.project, frame, **changes))
        self._follow_playhead()  # a refused edit (EditError: the status bar says why) shows what stands

    def _move(self, frame: int):
        marker = self.current()
        if marker is None or frame == marker.frame:
            return
        doc = self.document
        if doc.execute(lambda: EditMarker(doc.project, marker.frame, to=frame)):
            doc.set_frame(frame)
        self._follow_playhead()

    def remove_current(self):
        marker = self.current()
        if marker is not None:
            doc = self.document
            doc.execute(lambda: RemoveMarker(doc.project, marker.frame))

    def edit_name(self):
        """The cursor in the marker's name (M on a marker)."""
        self.name.setFocus()
        self.name.selectAll()

    def eventFilter(self, watched, event):
        if (watched is self.list and event.type() == event.Type.KeyPress
                and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.list.currentItem()):
            self._go(self.list.currentItem())
            self.remove_current()
            return True
        return super().eventFilter(watched, event)
