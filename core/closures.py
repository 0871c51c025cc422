"""Lips that close where the dub closes them.

The generator opens the mouth with the dub's loudness but almost never shuts it inside speech
(p/b/m, the short pauses between words): real speakers' lips are closed on 2.6–5 % of their speech
frames, the generated ones on 0.3 %. So closures get a channel of their own, apart from both the
generated shape and the actor's texture:

* when: the dub-shape model (core/models/dub_shape.py) reads from the dub alone how open real lips
  would be at each output frame, as a share of the speaker's wide-open gap; under the model's own
  `closed_gap` is a closure, fading out by its `open_gap` (both chosen on its training speakers);
* what: one of the actor's own closed mouths, measured as closed by the lip reader
  (core/models/lip_reader.py) on the bank's mouths (core/actor_mouth.py), pasted whole in place of
  the generated shape, in proportion to the closure.

Neither model sees the original mouth at the output's moment (the bank excludes its neighbourhood),
so a closure cannot replay the original speech. Both are bundled (as "shape" and "reader"); the
mouth "actor-closing" uses them (core.render), and without them renders the actor's mouth and says so.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from core.errors import WeightsError
from core.hparams import HP
from core.models.dub_shape import INNER_GAP, DubShapeModel
from core.models.lip_reader import LipShapeReader
from core.weights import MANIFEST, load_model, read_manifest

# a bank mouth is closed below this share of the bank's 95th-percentile gap. Six talks' banks looked at: the
# lowest-read mouths are shut lips on all six, but at 0.15 one speaker (KristiNoem: lowest 0.029 of p95 0.163) had none
BANK_CLOSED_SHARE = 0.2
READER_SIZE = (HP.img_size, HP.img_size // 2)  # the lower half of the generator's crop
CHUNK_FRAMES = 1500  # output frames predicted at once (a minute at 25 fps)
CONTEXT = 64  # mel frames of audio either side of a piece: more than the model sees (±30)


def load_closure_models(device="cpu") -> tuple[DubShapeModel, LipShapeReader] | None:
    """The bundled dub-shape model and lip reader, or None when this build bundles neither."""
    bundled = read_manifest()
    if "shape" not in bundled and "reader" not in bundled:
        return None
    if "shape" not in bundled or "reader" not in bundled:
        missing = "shape" if "shape" not in bundled else "reader"
        raise WeightsError(MANIFEST, f"bundles one closure model without the other: {missing} is missing")
    return (load_model("shape", expect="dub_shape", device=device),
            load_model("reader", expect="lip_reader", device=device))


@torch.no_grad()
def predicted_gaps(model: DubShapeModel, mel: np.ndarray, seconds: np.ndarray, fps: float) -> np.ndarray:
    """The inner-lip gap (a share of the speaker's wide-open gap) real lips would show for frames
    starting at `seconds` (increasing) into the dub whose mel (80, M) is given, each frame 1 / fps
    long. Read CHUNK_FRAMES frames at a time with the audio around them, so a feature-length dub
    costs no more memory than a minute of it."""
    positions = ((np.asarray(seconds, np.float64) + 0.5 / fps) * HP.mel_fps).astype(np.float32)
    model = model.eval()
    out = np.empty(len(positions), np.float32)
    for first in range(0, len(positions), CHUNK_FRAMES):
        part = positions[first:first + CHUNK_FRAMES]
        lo = max(0, int(np.floor(part.min())) - CONTEXT)
        hi = min(mel.shape[1], int(np.ceil(part.max())) + CONTEXT + 1)
        x = torch.from_numpy(np.ascontiguousarray(mel[:, lo:max(hi, lo + 1)], np.float32))[None]
        pred = model.raw(model(x, torch.from_numpy(part - lo)))
        out[first:first + len(part)] = pred[0, INNER_GAP].numpy()
    return out


def closure_weights(model: DubShapeModel, gaps: np.ndarray) -> np.ndarray:
    """1 where a predicted gap says shut, 0 where open: a ramp between the model's closed and open gaps."""
    closed, opened = float(model.closed_gap), float(model.open_gap)
    return np.clip((opened - np.asarray(gaps, np.float32)) / max(opened - closed, 1e-6), 0.0, 1.0)


@torch.no_grad()
def mouth_gaps(reader: LipShapeReader, mouths) -> np.ndarray:
    """The lip reader's inner-lip gap (eye distances) of each BGR lower-half mouth."""
    if not len(mouths):
        return np.zeros(0, np.float32)
    grey = [cv2.resize(cv2.cvtColor(m, cv2.COLOR_BGR2GRAY), READER_SIZE, interpolation=cv2.INTER_AREA)
            for m in mouths]
    x = torch.from_numpy(np.stack(grey)[:, None].astype(np.float32) / 255)
    reader = reader.eval()
    out = torch.cat([reader(x[i:i + 256]) for i in range(0, len(x), 256)])
    return (out[:, INNER_GAP] * reader.target_std[INNER_GAP] + reader.target_mean[INNER_GAP]).numpy()


def closed_rows(gaps: np.ndarray) -> np.ndarray:
    """Which bank mouths are shut: gap under BANK_CLOSED_SHARE of the bank's 95th percentile."""
    if not len(gaps):
        return np.zeros(0, bool)
    return gaps < BANK_CLOSED_SHARE * np.percentile(gaps, 95)
