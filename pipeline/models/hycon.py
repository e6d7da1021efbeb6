"""The HyCon model (Section 3.2): unimodal networks (Eq. 1), fusion and a regression head (Eq. 2).

Decisions where the paper is silent or ambiguous (each a setting in `pipeline.settings`):

- "Last time step" of Eq. 1. Acoustic and visual encoders read the state at position ``length - 1``, the
  last valid (non-padding) word; a segment with no kept word (``length == 0``) is read at position 0, which
  is then the only unmasked key, so attention never sees an all-masked row (that would give NaN). For the
  language model, ``text_token='last'`` takes the final non-padding token of the word-piece sequence, which
  with BERT tokenisation is always ``[SEP]``: the literal last time step of Eq. 1. It is not the default:
  ``auto`` reads the mean over tokens from a frozen sentence-embedding model and the first token when
  fine-tuning (``pipeline.settings.text_token_of``; measured in docs/language-vector.md).
- Non-negativity. Every unimodal projection ends in the ``nonneg`` activation (ReLU by default), so the
  representations lie in the non-negative orthant and, after the losses' L2 normalisation, every cosine
  similarity lies in [0, 1] as Section 3.3 states (a zero vector stays zero: similarity 0).
- The acoustic/visual Transformers work at width d (``heads`` must divide it); their state is projected
  d -> d before the activation, mirroring the language branch's H -> d projection.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from pipeline.losses import MODALITIES
from pipeline.models.base import LanguageInput, regression_head
from pipeline.models.contract import ModelOutput
from pipeline.models.fusion import build_fusion

# `model.nonneg` (a name of pipeline.choices.NONNEG, where the allowed names live) -> the activation closing
# every unimodal projection.
NONNEG: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "softplus": nn.Softplus, "none": nn.Identity}


def sinusoidal_encoding(length: int, width: int) -> torch.Tensor:
    """The Transformer's fixed sinusoidal position table [length, width] (odd widths supported)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: width // 2])
    return table


class SequenceEncoder(nn.Module):
    """Acoustic/visual unimodal network of Eq. 1: Linear -> positions -> Transformer -> last valid state."""

    def __init__(self, in_dim: int, settings: dict[str, Any], seq_len: int) -> None:
        super().__init__()
        d = settings["d"]
        self.inp = nn.Linear(in_dim, d)
        if settings["positional"] == "learned":
            self.positions = nn.Parameter(torch.randn(seq_len, d) * 0.02)
        else:
            self.register_buffer("positions", sinusoidal_encoding(seq_len, d), persistent=False)
        layer = nn.TransformerEncoderLayer(
            d, settings["heads"], settings["ff"], settings["dropout"], batch_first=True
        )
        # Nested tensors change results between train and eval and are of no use at T <= 50.
        self.encoder = nn.TransformerEncoder(layer, settings["layers"], enable_nested_tensor=False)

    def forward(self, x: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """[B, T, in_dim] and lengths [B] -> state at position max(length, 1) - 1, shape [B, d]."""
        steps = x.shape[1]
        valid = length.clamp(min=1, max=steps)  # length 0 reads position 0 (see module docstring)
        padding = torch.arange(steps, device=x.device)[None, :] >= valid[:, None]
        h = self.encoder(self.inp(x) + self.positions[:steps], src_key_padding_mask=padding)
        return h[torch.arange(x.shape[0], device=x.device), valid - 1]


class HyConModel(LanguageInput):
    """Unimodal networks, fusion and regression head; `forward` returns a `ModelOutput`.

    Frozen mode: the language branch takes cached LM vectors [B, H] (`lm_features`); fine-tune mode:
    `language_model` runs on tokenised text (`input_ids`, `attention_mask`) every step.
    """

    def __init__(
        self,
        model: dict[str, Any],
        audio_dim: int,
        visual_dim: int,
        seq_len: int,
        lm_hidden: int | None = None,
    ) -> None:
        super().__init__(model, lm_hidden)
        d = model["d"]
        self.encoders = nn.ModuleDict(
            {
                "a": SequenceEncoder(audio_dim, model, seq_len),
                "v": SequenceEncoder(visual_dim, model, seq_len),
            }
        )
        self.projections = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(self.lm_hidden if m == "l" else d, d), NONNEG[model["nonneg"]]())
                for m in MODALITIES
            }
        )
        self.fusion = build_fusion(model["fusion"], d)
        self.head = regression_head(self.fusion.out_dim, model)

    def forward(
        self,
        audio: torch.Tensor,
        visual: torch.Tensor,
        length: torch.Tensor,
        *,
        lm_features: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> ModelOutput:
        """Predict sentiment [B]; also return the unimodal representations {'l','a','v'} [B, d] and the
        fused representation [B, out_dim]."""
        states = {
            "l": self.language_vector(lm_features, input_ids, attention_mask),
            "a": self.encoders["a"](audio, length),
            "v": self.encoders["v"](visual, length),
        }
        reps = {m: self.projections[m](states[m]) for m in MODALITIES}
        fused = self.fusion(reps["l"], reps["a"], reps["v"])
        return ModelOutput(self.head(fused).squeeze(-1), reps, fused)
