"""The lip-shape reader: the lower half of a 96×96 face crop → how its lips are shaped.

It reads what MediaPipe Face Mesh measures on the full-resolution frame (training/lip_shape.py:
inner and outer lip gap, mouth width, protrusion, and the first PCA coefficients of the lip
contour), but from the generator's own 96×96 input and differentiably, so a loss can ask a
generated mouth for a shape. It sees luma only, and was trained on blurred copies too, so a
generator cannot please it with colour and a soft mouth is still read for its shape.

Outputs are standardised over the training frames. A saved reader carries what its outputs
mean as buffers: the contour's PCA basis (`training.lip_shape.contour_basis`) and each
feature's mean and spread; `standardise()` turns the teacher's features into the same units.
"""
from dataclasses import dataclass

import torch
from torch import nn

from core.models.blocks import Conv2d, scaled

LUMA_BGR = (0.114, 0.587, 0.299)  # Rec. 601 weights, in our frames' BGR order


@dataclass(frozen=True)
class LipReaderDims:
    width: float = 1.0
    features: int = 8  # training.lip_shape.SHAPE_FEATURES: 4 measures + contour components
    contour: int = 80  # training.lip_shape.LIP_POINTS, x and y


def luma(frames: torch.Tensor) -> torch.Tensor:
    """(…, 3, H, W) BGR → (…, 1, H, W) luma."""
    return (frames * frames.new_tensor(LUMA_BGR)[:, None, None]).sum(-3, keepdim=True)


class LipShapeReader(nn.Module):
    def __init__(self, dims: LipReaderDims = LipReaderDims()):
        super().__init__()
        self.dims = dims
        c = lambda n: scaled(n, dims.width)  # noqa: E731
        self.encoder = nn.Sequential(  # 48×96 → 3×6
            Conv2d(1, c(24), 5, 2, 2),
            Conv2d(c(24), c(48), 3, 2, 1), Conv2d(c(48), c(48), 3, 1, 1, residual=True),
            Conv2d(c(48), c(96), 3, 2, 1), Conv2d(c(96), c(96), 3, 1, 1, residual=True),
            Conv2d(c(96), c(192), 3, 2, 1),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c(192) * 3 * 6, 128), nn.ReLU(), nn.Linear(128, dims.features))
        # what the outputs mean, carried with the weights: the teacher's contour basis and units
        self.register_buffer("contour_mean", torch.zeros(dims.contour))
        self.register_buffer("contour_basis", torch.zeros(dims.features - 4, dims.contour))
        self.register_buffer("target_mean", torch.zeros(dims.features))
        self.register_buffer("target_std", torch.ones(dims.features))

    def forward(self, lower_luma: torch.Tensor) -> torch.Tensor:
        """(B, 1, 48, 96) luma in [0, 1] → (B, features), standardised."""
        return self.head(self.encoder(lower_luma))

    def standardise(self, raw: torch.Tensor) -> torch.Tensor:
        """The teacher's raw measures (…, features) in the reader's output units."""
        return (raw - self.target_mean) / self.target_std
