"""Where the ffmpeg binary lives ($LIPSMITH_FFMPEG, else the one imageio-ffmpeg ships), and how
every ffmpeg of the product is started."""
import os
import shutil
import subprocess
from functools import lru_cache

from core.errors import SetupError


@lru_cache(maxsize=None)
def ffmpeg_exe() -> str:
    configured = os.environ.get("LIPSMITH_FFMPEG")
    if configured:
        found = shutil.which(configured)  # a program on PATH, or a path to an executable file
        if found:
            return found
        if os.path.isdir(configured):
            problem = "is a folder"
        elif os.path.isfile(configured):
            problem = "is not executable"
        else:
            problem = "does not exist"
        raise SetupError(configured, f"LIPSMITH_FFMPEG names this as the ffmpeg binary, but it {problem} "
                                     "(point it at ffmpeg, or unset it to use the bundled one)")
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


# ffmpeg runs in a process group of its own: Ctrl-C in a terminal goes to the whole foreground
# group, and an ffmpeg that got it too would finish a half file by itself, or fail and hide the
# Ctrl-C behind "ffmpeg failed". The signal reaches us alone, and we stop ffmpeg.
_OWN_PROCESS_GROUP = ({"start_new_session": True} if os.name == "posix" else
                      {"creationflags": subprocess.CREATE_NO_WINDOW | subprocess.CREATE_NEW_PROCESS_GROUP})


def start_ffmpeg(args, **popen) -> subprocess.Popen:
    """Start ffmpeg with `args` in a process group of its own; `popen`: subprocess.Popen's options."""
    return subprocess.Popen([ffmpeg_exe(), *args], **popen, **_OWN_PROCESS_GROUP)


def run_ffmpeg(args, **options) -> subprocess.CompletedProcess:
    """Run ffmpeg with `args` to its end in a process group of its own; `options`: subprocess.run's
    (which kills it when we are interrupted while waiting)."""
    return subprocess.run([ffmpeg_exe(), *args], **options, **_OWN_PROCESS_GROUP)
