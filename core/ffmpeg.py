"""Where the ffmpeg binary lives: $LIPSMITH_FFMPEG, else the one imageio-ffmpeg ships."""
import os
import shutil
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
