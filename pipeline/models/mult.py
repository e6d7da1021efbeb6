"""Multimodal Transformer, word-aligned variant (Tsai et al., ACL 2019; HyCon paper, Section 4.3, baseline 5).

After yaohungt/Multimodal-Transformer (MIT licence, Copyright (c) 2019 Yao-Hung Hubert Tsai) and its copy
in thuiar/MMSA (MIT licence, Copyright (c) 2020 thuiar): per-modality temporal Conv1d projections to width
d, six crossmodal Transformers (l<-a, l<-v, a<-l, a<-v, v<-l, v<-a) of pre-LayerNorm layers, three
self-attention Transformers over each target's concatenated crossmodal streams (width 2d), the last
valid step of each, and a residual output block on their concatenation (6d).

Differences: attention masks padding (keys beyond a segment's valid words) instead of the original's
causal mask (the aligned sequences here are right-padded, the original's were left-padded and read at the
final step); the language stream is the language model's states pooled per aligned word
(`model.text_steps: words`, cached frozen or from the fine-tuned LM) where the original reads word vectors
(with `model.text_steps: sentence`, the segment's sentence vector [B, H] repeated at every word step: the
language queries then differ only through the position embedding); `nn.MultiheadAttention` replaces the
original's own attention module (same computation).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from pipeline.models.base import Baseline, last_valid, padding_mask, per_step
from pipeline.models.hycon import sinusoidal_encoding

PAIRS: tuple[tuple[str, str], ...] = (("l", "a"), ("l", "v"), ("a", "l"), ("a", "v"), ("v", "l"), ("v", "a"))


class CrossmodalLayer(nn.Module):
    """Pre-LayerNorm Transformer layer: target queries attend to source keys/values (to itself when not
    `cross`), then a ReLU FFN of width 4d; `dropout` = (attention, ReLU, residual)."""

    def __init__(self, d: int, heads: int, dropout: tuple[float, float, float], cross: bool) -> None:
        super().__init__()
        self.norm_q, self.norm_ff = nn.LayerNorm(d), nn.LayerNorm(d)
        self.norm_kv = nn.LayerNorm(d) if cross else None
        self.attention = nn.MultiheadAttention(d, heads, dropout=dropout[0], batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(), nn.Dropout(dropout[1]), nn.Linear(4 * d, d))
        self.drop = nn.Dropout(dropout[2])

    def forward(self, x: torch.Tensor, source: torch.Tensor | None, padding: torch.Tensor) -> torch.Tensor:
        """x [B, T, d] attends to source [B, T, d] (itself when None); padding [B, T] masks keys."""
        q = self.norm_q(x)
        kv = q if self.norm_kv is None else self.norm_kv(source)
        attended, _ = self.attention(q, kv, kv, key_padding_mask=padding, need_weights=False)
        x = x + self.drop(attended)
        return x + self.drop(self.ff(self.norm_ff(x)))


class CrossmodalTransformer(nn.Module):
    """Scaled input plus sinusoidal positions, embedding dropout, `layers` CrossmodalLayers, final norm;
    `dropout` = (attention, ReLU, residual, embedding)."""

    def __init__(
        self, d: int, heads: int, layers: int, dropout: tuple[float, ...], seq_len: int, cross: bool
    ) -> None:
        super().__init__()
        self.scale = math.sqrt(d)
        self.register_buffer("positions", sinusoidal_encoding(seq_len, d), persistent=False)
        self.embed_drop = nn.Dropout(dropout[3])
        self.layers = nn.ModuleList(CrossmodalLayer(d, heads, dropout[:3], cross) for _ in range(layers))
        self.norm = nn.LayerNorm(d)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_drop(self.scale * x + self.positions[: x.shape[1]])

    def forward(self, x: torch.Tensor, source: torch.Tensor | None, padding: torch.Tensor) -> torch.Tensor:
        """[B, T, d] target (and source, for a crossmodal Transformer) -> [B, T, d]."""
        x = self._embed(x)
        source = None if source is None else self._embed(source)
        for layer in self.layers:
            x = layer(x, source, padding)
        return self.norm(x)


class MulT(Baseline):
    """MulT (aligned). Sizes: the original code's defaults, d = 30 per modality, 5 heads, 5 layers per
    crossmodal Transformer and max(5, 3) = 5 per self-attention Transformer (width 60), Conv1d kernel 1.
    Dropouts are settings with the original code's defaults: attention `model.mult_attn_dropout` 0.1
    (language keys), `mult_attn_dropout_a` and `mult_attn_dropout_v` 0.0 (acoustic, visual keys; a
    crossmodal Transformer is keyed by its source, a self-attention one by its modality),
    `mult_relu_dropout` 0.1, `mult_res_dropout` 0.1, `mult_embed_dropout` 0.25 (also on the projected
    language input), `mult_out_dropout` 0.0.
    """

    d, heads, levels = 30, 5, 5

    def build(self, model: dict[str, Any], audio_dim: int, visual_dim: int, seq_len: int) -> None:
        dims = {"l": self.lm_hidden, "a": audio_dim, "v": visual_dim}
        attention = {
            "l": model["mult_attn_dropout"],
            "a": model["mult_attn_dropout_a"],
            "v": model["mult_attn_dropout_v"],
        }
        shared = (model["mult_relu_dropout"], model["mult_res_dropout"], model["mult_embed_dropout"])
        # (attention, ReLU, residual, embedding) dropout of a Transformer keyed by a modality
        dropout = {m: (attention[m], *shared) for m in dims}
        self.project = nn.ModuleDict({m: nn.Conv1d(dim, self.d, 1, bias=False) for m, dim in dims.items()})
        self.text_drop = nn.Dropout(model["mult_embed_dropout"])
        self.crossmodal = nn.ModuleDict(
            {
                f"{target}_{source}": CrossmodalTransformer(
                    self.d, self.heads, self.levels, dropout[source], seq_len, cross=True
                )
                for target, source in PAIRS
            }
        )
        self.memory = nn.ModuleDict(
            {
                m: CrossmodalTransformer(
                    2 * self.d, self.heads, max(self.levels, 3), dropout[m], seq_len, cross=False
                )
                for m in dims
            }
        )
        width = 6 * self.d
        self.residual = nn.Sequential(
            nn.Linear(width, width), nn.ReLU(), nn.Dropout(model["mult_out_dropout"]), nn.Linear(width, width)
        )
        self.out = nn.Linear(width, 1)

    def fuse(
        self, language: torch.Tensor, audio: torch.Tensor, visual: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prediction [B] and fused [B, 6d] (the residual block's output)."""
        steps = audio.shape[1]
        inputs = {"l": self.text_drop(per_step(language, steps)), "a": audio, "v": visual}
        x = {m: self.project[m](inputs[m].transpose(1, 2)).transpose(1, 2) for m in inputs}
        padding = padding_mask(length, steps)
        last = []
        for target in inputs:
            streams = [self.crossmodal[f"{t}_{s}"](x[t], x[s], padding) for t, s in PAIRS if t == target]
            memory = self.memory[target](torch.cat(streams, dim=-1), None, padding)
            last.append(last_valid(memory, length))
        last_hs = torch.cat(last, dim=-1)
        fused = self.residual(last_hs) + last_hs
        return self.out(fused).squeeze(-1), fused
