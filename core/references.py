"""The generator's reference half: the actor at rest, from another moment of the same shot.

Wav2Lip sees two faces: the frame to redraw, its lower half masked, and a reference that shows
who the person is. It was trained with references from other moments of the clip, but rendering
with the frame itself as its own reference (the reference implementation's way) hands the
generator the original mouth: under a foreign dub the rendered opening then follows the original
footage. A reference from a quiet moment of the actor's own audio, at least `EXCLUDE_S` away,
carries no speech timing of the output's moment. On six held-out talks (20 s each, foreign dubs,
`python main.py compare-mouths`) the rendered lip aperture's correlation with the original's
(MediaPipe) fell from 0.40 to 0.23, with the dub's loudness it rose from 0.39 to 0.42, and our
expert's LSE-C from 0.078 to 0.080. Part of the rest is not the generator's: with its whole input
taken from another moment the correlation stays about 0.34 (the pasted box and the jaw outside
the mask still move with the original).

Rest frames: within `REACH_S` of the frames a job shows, in each `BLOCK_S` of each shot, the face
frame whose own audio is quietest (the block's middle when the video has no audio). The reference of
source frame i is the nearest rest frame of its shot at least `EXCLUDE_S` away, else the farthest of
its shot, else frame i itself. The window is fixed by the job alone and detected for every job, so
a render does not depend on what else the face cache happens to hold (choosing over whole shots,
a line rendered again after a wider render took other references from frame 162 of a talk on).
"""
from __future__ import annotations

import cv2
import numpy as np

from core.errors import MediaError
from core.hparams import EXCLUDE_S, HP
from core.plan import frames_around

BLOCK_S = 5.0  # one rest frame per this much of a shot: the head's pose drifts slowly
REACH_S = 5.0  # rest frames are chosen within this much of the frames a job shows


def own_loudness(video_path, fps: float, n_frames: int) -> np.ndarray | None:
    """Mean log-mel energy of the video's own audio under each frame, or None without audio."""
    from core.audio import frame_loudness, load_audio, melspectrogram

    try:
        return frame_loudness(melspectrogram(load_audio(video_path)), fps, n_frames)
    except MediaError:
        return None


def window(source_frames, fps: float, n_frames: int) -> tuple[int, int]:
    """[lo, hi): the source frames a job showing `source_frames` takes its rest frames from."""
    return frames_around(source_frames, REACH_S, fps, n_frames)


def rest_frames(has_face: np.ndarray, cuts, fps: float, loudness: np.ndarray | None, lo: int, hi: int) -> dict:
    """{first frame of a shot within [lo, hi): sorted rest frames} for the shots in source frames
    [lo, hi), each cut to them: nothing outside [lo, hi) is looked at."""
    from core.faces.track import shot_bounds

    block = max(1, int(round(BLOCK_S * fps)))
    rests = {}
    for a, b in shot_bounds(len(has_face), cuts):
        a, b = max(a, lo), min(b, hi)
        if a >= b:
            continue
        chosen = []
        for start in range(a, b, block):
            frames = np.flatnonzero(has_face[start:min(b, start + block)]) + start
            if not len(frames):
                continue
            if loudness is None:
                chosen.append(int(frames[len(frames) // 2]))
            else:
                chosen.append(int(frames[np.argmin(loudness[np.minimum(frames, len(loudness) - 1)])]))
        rests[a] = chosen
    return rests


class References:
    """Reference crops (96×96 BGR) for the source frames a render shows."""

    def __init__(self, rests: dict, crops: dict, fps: float):
        self.rests = rests  # shot start -> rest frames
        self.starts = np.array(sorted(rests), dtype=np.int64)
        self.crops = crops  # rest frame -> its crop
        self.exclude = max(1, int(round(EXCLUDE_S * fps)))

    def frame_for(self, i: int) -> int:
        """The rest frame that serves as source frame i's reference (i itself if its shot has none)."""
        if not len(self.starts):
            return i
        shot = self.rests[int(self.starts[max(0, np.searchsorted(self.starts, i, side="right") - 1)])]
        if not shot:
            return i
        distance = np.abs(np.array(shot) - i)
        far = distance >= self.exclude
        if far.any():
            return int(np.array(shot)[far][np.argmin(distance[far])])
        return int(shot[int(np.argmax(distance))])

    def crop_for(self, i: int, own_crop: np.ndarray) -> np.ndarray:
        return self.crops.get(self.frame_for(i), own_crop)


def build_references(video, track, source_frames, fps: float, pads=HP.pads) -> References:
    """Choose the rest frames for a job showing `source_frames` and read their crops."""
    lo, hi = window(source_frames, fps, video.frame_count)
    loudness = own_loudness(video.path, fps, video.frame_count)
    rests = rest_frames(track.has_face, track.scene_cuts, fps, loudness, lo, hi)
    wanted = sorted({r for frames in rests.values() for r in frames})
    crops = {}
    for i in wanted:
        box = track.crop_box(i, pads)
        if box is not None:
            x1, y1, x2, y2 = box
            crops[i] = cv2.resize(video.read(i)[y1:y2, x1:x2], (HP.img_size, HP.img_size),
                                  interpolation=cv2.INTER_AREA)
    return References(rests, crops, fps)
