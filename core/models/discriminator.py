"""The visual-quality discriminator: real vs generated lower faces, no normalisation layers."""
from dataclasses import dataclass

import torch
from torch import nn

from core.models.blocks import NoNormConv2d, fold_time, lower_half, scaled


@dataclass(frozen=True)
class DiscriminatorDims:
    width: float = 1.0


class QualityDiscriminator(nn.Module):
    def __init__(self, dims: DiscriminatorDims = DiscriminatorDims()):
        super().__init__()
        self.dims = dims
        c = lambda n: scaled(n, dims.width)  # noqa: E731
        pair = lambda cin, cout, k, s, p: nn.Sequential(  # noqa: E731
            NoNormConv2d(cin, cout, k, s, p), NoNormConv2d(cout, cout, k, 1, p))
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(NoNormConv2d(3, c(32), 7, 1, 3)),
            pair(c(32), c(64), 5, (1, 2), 2),
            pair(c(64), c(128), 5, 2, 2),
            pair(c(128), c(256), 5, 2, 2),
            pair(c(256), c(512), 3, 2, 1),
            pair(c(512), c(512), 3, 2, 1),
            nn.Sequential(NoNormConv2d(c(512), c(512), 3, 1, 0), NoNormConv2d(c(512), c(512), 1, 1, 0)),
        ])
        self.binary_pred = nn.Sequential(nn.Conv2d(c(512), 1, 1, 1, 0), nn.Sigmoid())

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """Full 96×96 faces (B[, T], 3, 96, 96) → P(real) of their lower halves, (B·T, 1)."""
        x = lower_half(fold_time(faces))
        for block in self.face_encoder_blocks:
            x = block(x)
        return self.binary_pred(x).flatten(1)
