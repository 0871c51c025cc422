"""Faces: detector backends, per-video detection cache, tracking, smoothing, crop geometry.

Typical use::

    from core.faces import track_video, crop_face
    track = track_video(source, progress=cb, cancel=is_cancelled)  # cached per file + detector
    part = track_video(source, frames=range(500, 750))  # detects only those frames and their context
    for i, frame in source.frames():
        box = track.crop_box(i)            # smoothed box + pads (0, 10, 0, 0), clamped; None = no face
        if box is not None:
            crop, box = crop_face(frame, box, 96)

Which faces a frame offers, numbered as face_index numbers them (the editor's face picker):
`FaceChoices(detections).at(i)` -> [FaceChoice(index, box), ...]; `.hit(i, x, y)` -> face index.

Without a VideoSource: `detect_frames(frames, detector)` -> Detections, then `build_track(...)`.
"""
from .cache import default_cache_dir, file_fingerprint
from .choices import FaceChoice, FaceChoices
from .detect import (DEFAULT_MAX_SIDE, Detection, FaceAlignmentDetector, FaceDetector,
                     RetinaFaceDetector, downscale, face_alignment_expected_files,
                     find_face_alignment_weights, get_detector)
from .detections import (Cancelled, Detections, detect_frames, detect_video, find_scene_cuts,
                         frame_histogram, histogram_distance)
from .geometry import crop_face, iou, padded_box
from .track import FaceTrack, Track, build_track, context_frames, link_tracks, smooth_runs, track_video

__all__ = [
    "Cancelled", "DEFAULT_MAX_SIDE", "Detection", "Detections", "FaceAlignmentDetector", "FaceChoice", "FaceChoices",
    "FaceDetector",
    "FaceTrack", "RetinaFaceDetector", "Track", "build_track", "context_frames", "crop_face", "default_cache_dir",
    "detect_frames", "detect_video", "downscale", "face_alignment_expected_files", "file_fingerprint",
    "find_face_alignment_weights", "find_scene_cuts", "frame_histogram", "get_detector",
    "histogram_distance", "iou", "link_tracks", "padded_box", "smooth_runs", "track_video",
]
