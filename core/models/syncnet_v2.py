"""The official SyncNet v2 (Chung & Zisserman, `syncnet_v2.model`), for paper-comparable scores.

This is the network behind the Wav2Lip paper's LSE-D / LSE-C figures. Lipsmith never ships
or downloads it; a user who has the file can point `--expert` (or the editor) at it, and
scoring then uses it with the reference protocol (core.sync.SyncNetV2Scorer).

The module tree reproduces the file's state-dict layout exactly, so the file loads strictly:
every Sequential index is taken by a layer, BatchNorm, ReLU and pooling included.

Audio tower, input (B, 1, 13, 20): 13 MFCCs × 20 steps of 10 ms (0.2 s = 5 video frames)

    netcnnaud  idx  layer                                   output (C, H=coeff, W=time)
               0-3  conv 1→64 k3 p1, BN, ReLU, pool k1       64 × 13 × 20
               4-7  conv 64→192 k3 p1, BN, ReLU, pool k3 s(1,2)  192 × 11 × 9
               8-10 conv 192→384 k3 p1, BN, ReLU             384 × 11 × 9
              11-13 conv 384→256 k3 p1, BN, ReLU             256 × 11 × 9
              14-17 conv 256→256 k3 p1, BN, ReLU, pool k3 s2 256 × 5 × 4
              18-20 conv 256→512 k(5,4), BN, ReLU            512 × 1 × 1
    netfcaud   0-3  Linear 512→512, BN1d, ReLU, Linear 512→1024

Lip tower, input (B, 3, 5, 224, 224): 5 consecutive BGR face crops, float 0–255, not normalised

    netcnnlip  idx  layer                                           output (C, T, H, W)
               0-3  conv3d 3→96 k(5,7,7) s(1,2,2), BN, ReLU, pool (1,3,3) s(1,2,2)   96 × 1 × 54 × 54
               4-7  conv3d 96→256 k(1,5,5) s(1,2,2) p(0,1,1), BN, ReLU,
                    pool (1,3,3) s(1,2,2) p(0,1,1)                                   256 × 1 × 13 × 13
               8-10 conv3d 256→256 k(1,3,3) p(0,1,1), BN, ReLU                      256 × 1 × 13 × 13
              11-13 the same                                                         256 × 1 × 13 × 13
              14-17 the same, then pool (1,3,3) s(1,2,2)                             256 × 1 × 6 × 6
              18-20 conv3d 256→512 k(1,6,6), BN, ReLU                               512 × 1 × 1 × 1
    netfclip   0-3  Linear 512→512, BN1d, ReLU, Linear 512→1024

Both embeddings are 1024-d and are compared unnormalised, by Euclidean distance.
≈ 13.6 M parameters.
"""
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SyncNetV2Dims:
    embedding: int = 1024
    frames: int = 5  # video frames per lip window
    image_size: int = 224  # face crop side, pixels
    mfcc: int = 13  # coefficients per MFCC step
    mfcc_window: int = 20  # MFCC steps (10 ms each) per audio window: 0.2 s
    mfcc_per_frame: int = 4  # MFCC steps per 25-fps video frame


def _stage(conv: nn.Module, bn: nn.Module, pool: nn.Module | None = None) -> list:
    """conv, BN, ReLU (and a pool): one stage, taking 3 or 4 Sequential indices."""
    return [conv, bn, nn.ReLU(inplace=True)] + ([pool] if pool is not None else [])


def _head(width: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Linear(width, out))


class SyncNetV2(nn.Module):
    def __init__(self, dims: SyncNetV2Dims = SyncNetV2Dims()):
        super().__init__()
        self.dims = dims
        a = lambda cin, cout, k, **kw: _stage(nn.Conv2d(cin, cout, k, **kw), nn.BatchNorm2d(cout))  # noqa: E731
        self.netcnnaud = nn.Sequential(
            *a(1, 64, 3, padding=1), nn.MaxPool2d(1, 1),
            *a(64, 192, 3, padding=1), nn.MaxPool2d(3, (1, 2)),
            *a(192, 384, 3, padding=1),
            *a(384, 256, 3, padding=1),
            *a(256, 256, 3, padding=1), nn.MaxPool2d(3, 2),
            *a(256, 512, (5, 4)),
        )
        self.netfcaud = _head(512, dims.embedding)
        v = lambda cin, cout, k, **kw: _stage(nn.Conv3d(cin, cout, k, **kw), nn.BatchNorm3d(cout))  # noqa: E731
        pool = lambda **kw: nn.MaxPool3d((1, 3, 3), (1, 2, 2), **kw)  # noqa: E731
        self.netcnnlip = nn.Sequential(
            *v(3, 96, (dims.frames, 7, 7), stride=(1, 2, 2)), pool(),
            *v(96, 256, (1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)), pool(padding=(0, 1, 1)),
            *v(256, 256, (1, 3, 3), padding=(0, 1, 1)),
            *v(256, 256, (1, 3, 3), padding=(0, 1, 1)),
            *v(256, 256, (1, 3, 3), padding=(0, 1, 1)), pool(),
            *v(256, 512, (1, 6, 6)),
        )
        self.netfclip = _head(512, dims.embedding)

    def audio_embedding(self, mfcc: torch.Tensor) -> torch.Tensor:
        """(B, 1, 13, 20) MFCC windows → (B, 1024), not normalised."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def lip_embedding(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, 5, 224, 224) BGR crops, 0–255 → (B, 1024), not normalised."""
        return self.netfclip(self.netcnnlip(video).flatten(1))

    def forward(self, mfcc: torch.Tensor, video: torch.Tensor):
        return self.audio_embedding(mfcc), self.lip_embedding(video)
