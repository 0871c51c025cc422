"""Conv blocks shared by the three networks.

Attribute names (`conv_block`, its Sequential indices) are those of the official
checkpoints, so their state dicts load key-for-key.
"""
import torch
from torch import nn


def scaled(channels: int, width: float) -> int:
    """Channel count of a layer under a width multiplier (at least 1)."""
    return max(1, int(round(channels * width)))


class Conv2d(nn.Module):
    """Conv → BatchNorm (→ + input) → ReLU."""

    def __init__(self, cin, cout, kernel_size, stride, padding, residual=False):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x):
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class NoNormConv2d(nn.Module):
    """Conv → LeakyReLU(0.01), no normalisation (the discriminator's block)."""

    def __init__(self, cin, cout, kernel_size, stride, padding):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding))
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x):
        return self.act(self.conv_block(x))


class Conv2dTranspose(nn.Module):
    """Transposed conv → BatchNorm → ReLU."""

    def __init__(self, cin, cout, kernel_size, stride, padding, output_padding=0):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv_block(x))


def residual_stack(channels: int, count: int):
    """`count` 3×3 residual blocks that keep `channels`."""
    return [Conv2d(channels, channels, 3, 1, 1, residual=True) for _ in range(count)]


def speech_encoder(width: float, res_256: int) -> nn.Sequential:
    """Mel window (B, 1, 80, 16) → (B, 512·width, 1, 1).

    The generator and the expert share this layout but for the number of 256-channel
    residual blocks (1 in the generator, 2 in the expert).
    """
    c = lambda n: scaled(n, width)  # noqa: E731
    return nn.Sequential(
        Conv2d(1, c(32), 3, 1, 1), *residual_stack(c(32), 2),
        Conv2d(c(32), c(64), 3, (3, 1), 1), *residual_stack(c(64), 2),
        Conv2d(c(64), c(128), 3, 3, 1), *residual_stack(c(128), 2),
        Conv2d(c(128), c(256), 3, (3, 2), 1), *residual_stack(c(256), res_256),
        Conv2d(c(256), c(512), 3, 1, 0),
        Conv2d(c(512), c(512), 1, 1, 0),
    )


def fold_time(x: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) → (B·T, C, H, W); 4-D input passes through."""
    return x.reshape(-1, *x.shape[2:]) if x.dim() == 5 else x


def lower_half(faces: torch.Tensor) -> torch.Tensor:
    """Bottom half of square face crops: (…, H, W) → (…, H/2, W)."""
    return faces[..., faces.shape[-2] // 2:, :]
