"""`run(argv)`: start the editor — QApplication, theme (dark unless the settings say light), the
main window, and the files named on the command line (a project, or a video and its dub)."""
from __future__ import annotations

import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"


def run(argv=None) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow
    from .settings import Settings
    from .theme import apply_theme

    argv = list(sys.argv if argv is None else argv)
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("Lipsmith")
    app.setOrganizationName("Lipsmith")
    icon = QIcon()
    for png in sorted(ICONS.glob("lipsmith-*.png")):
        icon.addFile(str(png))
    app.setWindowIcon(icon)
    settings = Settings()
    apply_theme(app, settings.theme)
    window = MainWindow(settings)
    window.show()
    paths = [a for a in argv[1:] if not a.startswith("-")]
    if paths:
        QTimer.singleShot(0, lambda: window.open_paths(paths))
    return app.exec()


if __name__ == "__main__":
    sys.exit(run())
