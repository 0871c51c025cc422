"""Where the ffmpeg binary lives: $LIPSMITH_FFMPEG, else the one imageio-ffmpeg ships."""
import os
import shutil
from functools import lru_cache


@lru_cache(maxsize=None)
def ffmpeg_exe() -> str:
    configured = os.environ.get("LIPSMITH_FFMPEG")
    if configured:
        found = shutil.which(configured) or (configured if os.path.isfile(configured) else None)
        if not found:
            raise FileNotFoundError(f"LIPSMITH_FFMPEG={configured}: no such ffmpeg binary")
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()
