"""The Wav2Lip generator: a U-Net over a masked face and a reference face, driven by a mel window."""
from dataclasses import dataclass

import torch
from torch import nn

from core.models.blocks import Conv2d, Conv2dTranspose, fold_time, residual_stack, scaled, speech_encoder


@dataclass(frozen=True)
class GeneratorDims:
    width: float = 1.0  # channel multiplier; 1.0 is the official layout
    img_size: int = 96


class Wav2Lip(nn.Module):
    def __init__(self, dims: GeneratorDims = GeneratorDims()):
        super().__init__()
        self.dims = dims
        c = lambda n: scaled(n, dims.width)  # noqa: E731
        e = [c(16), c(32), c(64), c(128), c(256), c(512), c(512)]  # encoder outputs, 96 → 1 px

        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(6, e[0], 7, 1, 3)),
            nn.Sequential(Conv2d(e[0], e[1], 3, 2, 1), *residual_stack(e[1], 2)),
            nn.Sequential(Conv2d(e[1], e[2], 3, 2, 1), *residual_stack(e[2], 3)),
            nn.Sequential(Conv2d(e[2], e[3], 3, 2, 1), *residual_stack(e[3], 2)),
            nn.Sequential(Conv2d(e[3], e[4], 3, 2, 1), *residual_stack(e[4], 2)),
            nn.Sequential(Conv2d(e[4], e[5], 3, 2, 1), *residual_stack(e[5], 1)),
            nn.Sequential(Conv2d(e[5], e[6], 3, 1, 0), Conv2d(e[6], e[6], 1, 1, 0)),
        ])
        self.audio_encoder = speech_encoder(dims.width, res_256=1)

        d = [c(512), c(512), c(512), c(384), c(256), c(128), c(64)]  # decoder outputs, 1 → 96 px
        up = lambda cin, cout: Conv2dTranspose(cin, cout, 3, 2, 1, output_padding=1)  # noqa: E731
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(c(512), d[0], 1, 1, 0)),
            nn.Sequential(Conv2dTranspose(d[0] + e[6], d[1], 3, 1, 0), *residual_stack(d[1], 1)),
            nn.Sequential(up(d[1] + e[5], d[2]), *residual_stack(d[2], 2)),
            nn.Sequential(up(d[2] + e[4], d[3]), *residual_stack(d[3], 2)),
            nn.Sequential(up(d[3] + e[3], d[4]), *residual_stack(d[4], 2)),
            nn.Sequential(up(d[4] + e[2], d[5]), *residual_stack(d[5], 2)),
            nn.Sequential(up(d[5] + e[1], d[6]), *residual_stack(d[6], 2)),
        ])
        self.output_block = nn.Sequential(
            Conv2d(d[6] + e[0], c(32), 3, 1, 1), nn.Conv2d(c(32), 3, 1, 1, 0), nn.Sigmoid())

    def forward(self, mel: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """mel (B, 1, 80, 16) and faces (B, 6, 96, 96) → RGB faces in [0, 1], (B, 3, 96, 96).

        5-D inputs (B, T, …) are folded to B·T and the output unfolded to (B, T, 3, 96, 96).
        """
        batch, steps = faces.shape[0], faces.shape[1] if faces.dim() == 5 else None
        mel, faces = fold_time(mel), fold_time(faces)
        x = self.audio_encoder(mel)
        skips = []
        feat = faces
        for block in self.face_encoder_blocks:
            feat = block(feat)
            skips.append(feat)
        for block in self.face_decoder_blocks:
            x = torch.cat([block(x), skips.pop()], dim=1)
        out = self.output_block(x)
        return out if steps is None else out.reshape(batch, steps, *out.shape[1:])
