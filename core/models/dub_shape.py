"""The dub's lip shape: a speech track's mel → how real lips would be shaped at each video frame.

The generator opens the mouth on loud speech but hardly ever closes it inside speech (p/b/m, the
short pauses between words), so the actor's-mouth stage takes closures from this model instead: it
predicts, from the dub alone, what MediaPipe Face Mesh measures on real speakers
(training/lip_shape.py: inner and outer lip gap, mouth width, protrusion, contour PCA coefficients),
learned on every prepared speaker with their own audio, in each speaker's own units: the gaps as
shares of that speaker's wide-open (95th-percentile) gap, the rest z-scored per clip (the sound
tells how a speaker moves, not their anatomy). It never sees a face, so it cannot carry the
original mouth into a render.

A 1-D convolution over the whole mel at its 80 frames a second, dilated to see about ±0.4 s (a
closure is told by what comes before and after it: the burst of a /p/, the murmur of an /m/), read
out at each video frame's centre. Outputs are standardised over the training frames; the saved
model carries their mean and spread (`target_mean`, `target_std`), so `raw()` gives the per-speaker
units back.
"""
from dataclasses import dataclass

import torch
from torch import nn

from core.hparams import HP
from core.models.blocks import scaled

INNER_GAP = 0  # the feature the closures are read from (training.lip_shape: inner-lip gap)
DILATIONS = (1, 2, 4, 8, 1, 2, 4, 8)  # receptive field 61 mel frames: ±0.38 s


@dataclass(frozen=True)
class DubShapeDims:
    width: float = 1.0
    features: int = 8  # training.lip_shape.SHAPE_FEATURES


class _Residual(nn.Module):
    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        # per channel, not over time: a frame's output depends on its neighbourhood only
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, x):
        return x + torch.nn.functional.gelu(self.norm(self.conv(x)))


def frame_positions(frames: int, fps: float, first_mel: float = 0.0, device=None) -> torch.Tensor:
    """Each of `frames` video frames' centre (frame 0 starting at the audio's start) in the mel
    frames of a mel that begins at the audio's mel frame `first_mel`."""
    return (torch.arange(frames, dtype=torch.float32, device=device) + 0.5) * (HP.mel_fps / fps) - first_mel


def read_at(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """(B, C, M) sampled at fractional `positions`, (N,) for all or (B, N) per item, by linear
    interpolation, clamped at the ends → (B, C, N)."""
    p = positions.clamp(0, x.shape[-1] - 1).expand(x.shape[0], -1)
    lo = p.floor().long()
    hi = (lo + 1).clamp(max=x.shape[-1] - 1)
    t = (p - lo.float())[:, None]
    pick = lambda i: x.gather(2, i[:, None].expand(-1, x.shape[1], -1))  # noqa: E731
    return pick(lo) * (1 - t) + pick(hi) * t


class DubShapeModel(nn.Module):
    def __init__(self, dims: DubShapeDims = DubShapeDims()):
        super().__init__()
        self.dims = dims
        c = scaled(128, dims.width)
        self.stem = nn.Sequential(nn.Conv1d(HP.num_mels, c, 3, padding=1), nn.GELU())
        self.body = nn.Sequential(*(_Residual(c, d) for d in DILATIONS))
        # per frame (kernel 1): a frame's output owes nothing to which other frames are read with it
        self.head = nn.Sequential(nn.Conv1d(c, c, 1), nn.GELU(), nn.Conv1d(c, dims.features, 1))
        self.register_buffer("target_mean", torch.zeros(dims.features))
        self.register_buffer("target_std", torch.ones(dims.features))
        # predicted inner gaps under `closed_gap` are shut lips, over `open_gap` open ones: chosen on the
        # training speakers so the model shuts as many speech frames as they did (it predicts no zeros)
        self.register_buffer("closed_gap", torch.tensor(0.15))
        self.register_buffer("open_gap", torch.tensor(0.3))

    def forward(self, mel: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """mel (B, 80, M) in the Wav2Lip scale, read at `positions` ((N,) or (B, N)) in its frames
        (`frame_positions`) → (B, features, N), standardised."""
        return self.head(read_at(self.body(self.stem(mel)), positions))

    def standardise(self, raw: torch.Tensor) -> torch.Tensor:
        """Per-speaker targets (…, features) in the model's output units."""
        return (raw - self.target_mean) / self.target_std

    def raw(self, standardised: torch.Tensor) -> torch.Tensor:
        """(B, features, N) outputs back in per-speaker units (a gap of 0 is shut, 1 wide open)."""
        return standardised * self.target_std[:, None] + self.target_mean[:, None]
