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

    def decoder_starts(self, first_row: int) -> list[int]:
        """The first row (at its own resolution) each decoder block, then the output block, needs of its
        input for the output's rows from `first_row` on to come out as if every block ran on all rows.
        A 3×3 convolution over a map cut at the top pads the cut with zeros where the map had a row,
        so each one loses one exact row there; a stride-2 transposed convolution of rows s on gives
        exact rows from 2s on (row 2s - 1 is the first that row s - 1 reaches)."""
        start = max(0, first_row - 1)  # the output block's 3×3 convolution
        starts = [start]
        for block in reversed(self.face_decoder_blocks):
            doubles = block[0].conv_block[0].stride == (2, 2)
            start = max(0, (start - (len(block) - 1)) // 2) if doubles else 0  # len - 1: its 3×3 residual convs
            starts.insert(0, start)
        return starts

    def forward(self, mel: torch.Tensor, faces: torch.Tensor, first_row: int = 0) -> torch.Tensor:
        """mel (B, 1, 80, 16) and faces (B, 6, 96, 96) → RGB faces in [0, 1], (B, 3, 96 - first_row, 96):
        the output's rows from `first_row` on. A caller that uses only the lower half (first_row 48)
        saves a third of the decoder, the same values (`decoder_starts`).

        5-D inputs (B, T, …) are folded to B·T and the output unfolded to (B, T, 3, 96 - first_row, 96).
        """
        batch, steps = faces.shape[0], faces.shape[1] if faces.dim() == 5 else None
        mel, faces = fold_time(mel), fold_time(faces)
        x = self.audio_encoder(mel)
        skips = []
        feat = faces
        for block in self.face_encoder_blocks:
            feat = block(feat)
            skips.append(feat)
        *starts, last = self.decoder_starts(first_row)
        top = 0  # the row of its full map that x's first row is
        for block, start in zip(self.face_decoder_blocks, starts):
            x = block(x[:, :, start - top:])
            skip = skips.pop()
            top = skip.shape[2] - x.shape[2]
            x = torch.cat([x, skip[:, :, top:]], dim=1)
        out = self.output_block(x[:, :, last - top:])[:, :, first_row - last:]
        return out if steps is None else out.reshape(batch, steps, *out.shape[1:])
