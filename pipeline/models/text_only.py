"""Text-only HyCon: the language branch and regression head alone, audio and visual unused (issue 8)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pipeline.models.base import Baseline, regression_head
from pipeline.models.hycon import NONNEG


class TextOnly(Baseline):
    """Sentence vector [B, H] -> Linear(H, d) + `model.nonneg` (HyCon's language projection) -> HyCon's
    head. Sizes: HyCon's own settings (`model.d`, `model.head_hidden`, `model.dropout`; 50, 64, 0.1 by
    default), the head reading d as after HyCon's default addition fusion."""

    def build(self, model: dict[str, Any], audio_dim: int, visual_dim: int, seq_len: int) -> None:
        self.projection = nn.Sequential(nn.Linear(self.lm_hidden, model["d"]), NONNEG[model["nonneg"]]())
        self.head = regression_head(model["d"], model)

    def fuse(
        self, sentence: torch.Tensor, audio: torch.Tensor, visual: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prediction [B] and fused [B, d] (the language representation)."""
        fused = self.projection(sentence)
        return self.head(fused).squeeze(-1), fused
