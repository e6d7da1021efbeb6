"""Tensor Fusion Network and Low-rank Multimodal Fusion (HyCon paper, Section 4.3, baselines 7 and 8).

Adapted from thuiar/MMSA (MIT licence, Copyright (c) 2020 thuiar), `TFN` (after A2Zadeh/TensorFusionNetwork)
and `LMF` (after Justin1904/Low-rank-Multimodal-Fusion), with MMSA's CMU-MOSI sizes.

Inputs as in the originals: the acoustic and visual sub-networks read the utterance-level average of the
features (here the mean over the valid word steps). The language sub-network is the original's LSTM over
word vectors, here the language model's states pooled per aligned word (`model.text_steps: words`, cached
frozen or from the fine-tuned LM; MMSA runs it over BERT token states); with `model.text_steps: sentence` it
reads the sentence vector [B, H] through Linear + ReLU instead (one vector, not a sequence).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pipeline.models.base import Baseline, SubNet, TextSubNet, valid_mean


def with_one(x: torch.Tensor) -> torch.Tensor:
    """[B, D] -> [B, D + 1] with a constant 1 appended (keeps the unimodal and bimodal terms)."""
    return torch.cat([x, x.new_ones(x.shape[0], 1)], dim=-1)


class UnimodalSubNets(nn.Module):
    """The three pre-fusion sub-networks of TFN and LMF: language [B, T, H] per word (or [B, H]) ->
    [B, text_out], acoustic and visual step means -> [B, audio_hidden] and [B, visual_hidden]."""

    def __init__(
        self,
        dims: tuple[int, int, int],
        hidden: tuple[int, int, int],
        text_out: int,
        dropout: float,
        per_word: bool,
    ) -> None:
        super().__init__()
        self.l = TextSubNet(dims[0], hidden[0], text_out, dropout, per_word)
        self.a = SubNet(dims[1], hidden[1], dropout)
        self.v = SubNet(dims[2], hidden[2], dropout)

    def forward(
        self, language: torch.Tensor, audio: torch.Tensor, visual: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unimodal representations (l, a, v)."""
        return self.l(language, length), self.a(valid_mean(audio, length)), self.v(valid_mean(visual, length))


class TFN(Baseline):
    """TFN: the outer product of (z_l; 1), (z_a; 1), (z_v; 1), flattened, -> dropout 0.5 -> two Linear +
    ReLU layers of 64 -> Linear(64, 1) -> sigmoid scaled to (-3, 3) (the original's bounded output).

    Sizes (MMSA, MOSI): sub-network hidden 128 (language), 32 (acoustic), 128 (visual), language output
    32, so the tensor has 33 x 33 x 129 = 140,481 entries; post-fusion 64. Dropouts `model.tfn_dropout`
    (sub-networks, default 0.3) and `model.tfn_post_dropout` (post-fusion, default 0.5), MMSA's.
    """

    hidden, text_out, post_fusion = (128, 32, 128), 32, 64

    def build(self, model: dict[str, Any], audio_dim: int, visual_dim: int, seq_len: int) -> None:
        dims = (self.lm_hidden, audio_dim, visual_dim)
        self.subnets = UnimodalSubNets(dims, self.hidden, self.text_out, model["tfn_dropout"], self.per_word)
        tensor_dim = (self.text_out + 1) * (self.hidden[1] + 1) * (self.hidden[2] + 1)
        self.post = nn.Sequential(
            nn.Dropout(model["tfn_post_dropout"]),
            nn.Linear(tensor_dim, self.post_fusion),
            nn.ReLU(),
            nn.Linear(self.post_fusion, self.post_fusion),
            nn.ReLU(),
        )
        self.out = nn.Linear(self.post_fusion, 1)

    def fuse(
        self, language: torch.Tensor, audio: torch.Tensor, visual: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prediction in (-3, 3) [B] and fused [B, 64] (the last post-fusion layer)."""
        z_l, z_a, z_v = (with_one(z) for z in self.subnets(language, audio, visual, length))
        tensor = torch.einsum("bi,bj,bk->bijk", z_l, z_a, z_v).flatten(1)
        fused = self.post(tensor)
        return torch.sigmoid(self.out(fused)).squeeze(-1) * 6.0 - 3.0, fused


class LMF(Baseline):
    """LMF: rank-r modality factors W_m [r, d_m + 1, 1]; the fused vector is the element-wise product of
    the three projections (z_m; 1) W_m, one entry per rank, and the prediction its learned weighted sum.

    Sizes (MMSA, MOSI): sub-network hidden 128 (language), 16 (acoustic), 128 (visual), language output
    64 (half the hidden size), rank 3; dropout `model.lmf_dropout` (default 0.3, MMSA's).
    """

    hidden, rank = (128, 16, 128), 3

    def build(self, model: dict[str, Any], audio_dim: int, visual_dim: int, seq_len: int) -> None:
        text_out = self.hidden[0] // 2
        dims = (self.lm_hidden, audio_dim, visual_dim)
        self.subnets = UnimodalSubNets(dims, self.hidden, text_out, model["lmf_dropout"], self.per_word)
        self.factors = nn.ParameterList(
            nn.Parameter(nn.init.xavier_normal_(torch.empty(self.rank, width + 1, 1)))
            for width in (text_out, self.hidden[1], self.hidden[2])
        )
        self.fusion_weights = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, self.rank)))
        self.fusion_bias = nn.Parameter(torch.zeros(1))

    def fuse(
        self, language: torch.Tensor, audio: torch.Tensor, visual: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prediction [B] and fused [B, rank] (the rank-wise products the output weighs)."""
        reps = self.subnets(language, audio, visual, length)
        fused = torch.ones(reps[0].shape[0], self.rank, device=audio.device, dtype=reps[0].dtype)
        for z, factor in zip(reps, self.factors, strict=True):
            fused = fused * torch.matmul(with_one(z), factor).squeeze(-1).T  # [rank, B, 1] -> [B, rank]
        return (fused @ self.fusion_weights.T).squeeze(-1) + self.fusion_bias, fused
