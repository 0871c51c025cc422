"""What a delivery can be, as plain tables (no media libraries: the command line's options and the
export dialog read them without loading the engine): the picture formats, the H.264 presets, the
audio layouts and the loudness targets. core.video, core.export and core.loudness act on them."""
from dataclasses import dataclass


@dataclass(frozen=True)
class VideoCodec:
    """A picture format VideoWriter encodes, with the audio that goes with it."""
    title: str
    encoder: tuple  # ffmpeg's video encoder options (H.264's rate control comes from the writer's crf/preset)
    pix_fmt: str
    audio: tuple  # ffmpeg's audio encoder options
    suffixes: tuple  # the containers that hold it
    min_size: tuple = (2, 2)  # (width, height) the encoder accepts


VIDEO_CODECS = {
    "h264": VideoCodec("H.264 (4:2:0 8-bit)", ("-c:v", "libx264"), "yuv420p", ("-c:a", "aac"),
                       (".mp4", ".mov", ".mkv")),
    # masters carry uncompressed audio: PCM 24-bit
    "prores": VideoCodec("ProRes 422 HQ (4:2:2 10-bit)", ("-c:v", "prores_ks", "-profile:v", "3", "-vendor", "apl0"),
                         "yuv422p10le", ("-c:a", "pcm_s24le"), (".mov", ".mkv")),
    "dnxhr": VideoCodec("DNxHR HQ (4:2:2 8-bit)", ("-c:v", "dnxhd", "-profile:v", "dnxhr_hq"), "yuv422p",
                        ("-c:a", "pcm_s24le"), (".mov", ".mkv"), min_size=(256, 120)),
}

EXPORT_PRESETS = {  # name → (CRF, x264 preset): H.264's; ProRes and DNxHR have one quality
    "High quality (CRF 18)": (18, "medium"),
    "Fast draft (CRF 23)": (23, "veryfast"),
    "Archive (CRF 12)": (12, "slow"),
}
AUDIO_MODES = {"dub": "the dub", "dub+original": "the dub, and the video's own track as a second stream",
               "mix": "the dub mixed with the video's own track"}

LOUDNESS_TARGETS = {"-23": (-23.0, "EBU R128"), "-24": (-24.0, "ATSC A/85")}  # the CLI's values -> (LUFS, standard)
TRUE_PEAK = -1.0  # dBTP, the ceiling both standards' delivery specs ask for
