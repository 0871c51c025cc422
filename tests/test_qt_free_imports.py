"""Qt stays in the editor: the engine and the editor's Qt-free helpers import without PySide6, and the
pinned PySide6 keeps Python's reference counts right (each in a fresh interpreter)."""
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import core

REPO = Path(__file__).resolve().parents[1]
QT_FREE_APP_MODULES = ["app.timecode", "app.filetypes", "app.overlay"]


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_no_qt_free_module_loads_pyside6():
    modules = ["core", *(m.name for m in pkgutil.walk_packages(core.__path__, "core.")), *QT_FREE_APP_MODULES]
    assert "core.project" in modules and "core.video" in modules
    code = ("import importlib, json, sys\n"
            f"loaded = {{}}\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "    loaded[name] = 'PySide6' in sys.modules\n"
            "print(json.dumps(loaded))")
    loaded = json.loads(run_python(code))
    assert [name for name, qt in loaded.items() if qt] == []


def test_void_qt_calls_keep_nones_reference_count():
    """PySide6 6.12.0 on Python 3.11 dropped a reference to None per call of a method returning void,
    until the interpreter aborted ("deallocating None"); the pinned release must not."""
    code = ("import sys\n"
            "from PySide6.QtCore import QObject\n"
            "probe = QObject()\n"
            "before = sys.getrefcount(None)\n"
            "for _ in range(100_000):\n"
            "    probe.setObjectName('probe')\n"
            "print(sys.getrefcount(None) - before)")
    assert abs(int(run_python(code))) < 100
