"""The lip-sync expert: embeds 5 lower-face frames and a 0.2 s mel window into one space."""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.models.blocks import Conv2d, residual_stack, scaled, speech_encoder


@dataclass(frozen=True)
class SyncNetDims:
    width: float = 1.0
    frames: int = 5  # T, consecutive frames per window


class SyncNet(nn.Module):
    def __init__(self, dims: SyncNetDims = SyncNetDims()):
        super().__init__()
        self.dims = dims
        c = lambda n: scaled(n, dims.width)  # noqa: E731
        self.face_encoder = nn.Sequential(
            Conv2d(3 * dims.frames, c(32), 7, 1, 3),
            Conv2d(c(32), c(64), 5, (1, 2), 1), *residual_stack(c(64), 2),
            Conv2d(c(64), c(128), 3, 2, 1), *residual_stack(c(128), 3),
            Conv2d(c(128), c(256), 3, 2, 1), *residual_stack(c(256), 2),
            Conv2d(c(256), c(512), 3, 2, 1), *residual_stack(c(512), 2),
            Conv2d(c(512), c(512), 3, 2, 1),
            Conv2d(c(512), c(512), 3, 1, 0),
            Conv2d(c(512), c(512), 1, 1, 0),
        )
        self.audio_encoder = speech_encoder(dims.width, res_256=2)

    def forward(self, mel: torch.Tensor, faces: torch.Tensor):
        """mel (B, 1, 80, 16), faces (B, 3·T, 48, 96) lower halves → L2-normalised (audio, face) embeddings."""
        audio = self.audio_encoder(mel).flatten(1)
        face = self.face_encoder(faces).flatten(1)
        return F.normalize(audio, p=2, dim=1), F.normalize(face, p=2, dim=1)


def sync_probability(audio_emb: torch.Tensor, face_emb: torch.Tensor) -> torch.Tensor:
    """P(in sync) as the expert is trained: cosine similarity (of ReLU'd, normalised embeddings), in [0, 1]."""
    return F.cosine_similarity(audio_emb, face_emb).clamp(1e-7, 1 - 1e-7)


def sync_loss(audio_emb: torch.Tensor, face_emb: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the cosine similarity against 1 (in sync) / 0 (off sync)."""
    return F.binary_cross_entropy(sync_probability(audio_emb, face_emb), target.float())


def offset_losses(audio_emb: torch.Tensor, face_emb: torch.Tensor, scale: float = 10.0,
                  far: int = 5, near: int = 1) -> tuple:
    """Losses over stretches of consecutive windows: embeddings (G, K, D), window k of a stretch
    in sync with mel k, and j frames off with mel k + j.

    Returns (bce, nce):
    * bce: the paper's cosine-BCE, balanced, with every pair |j| >= `far` as an off-sync negative;
    * nce: InfoNCE over offsets, each face window picking its own mel among the stretch's and
      vice versa; pairs 1..`near` frames off are left out (their 0.2 s mel windows overlap the
      true one by 80 %, and in-the-wild clips carry a frame or two of AV offset).

    Offsets within one clip are the negatives that matter: across clips, matching voice to face
    identity would solve the task without looking at the lips.
    """
    G, K, _ = face_emb.shape
    cos = torch.einsum("gkd,gjd->gkj", face_emb, audio_emb).clamp(1e-7, 1 - 1e-7)  # (G, face k, mel j)
    d = (torch.arange(K)[None, :] - torch.arange(K)[:, None]).abs().to(cos.device)
    diag, off = d == 0, d >= far
    bce = 0.5 * (-torch.log(cos[:, diag]).mean() - torch.log1p(-cos[:, off]).mean())
    logits = (scale * cos).masked_fill((d > 0) & (d <= near), float("-inf")).flatten(0, 1)
    target = torch.arange(K, device=cos.device).repeat(G)
    per_face = F.cross_entropy(logits, target)
    per_mel = F.cross_entropy((scale * cos).transpose(1, 2).masked_fill((d > 0) & (d <= near), float("-inf"))
                              .flatten(0, 1), target)
    return bce, 0.5 * (per_face + per_mel)
