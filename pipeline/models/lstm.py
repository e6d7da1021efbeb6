"""Early- and late-fusion LSTM baselines (HyCon paper, Section 4.3, baselines 1 and 2).

Adapted from thuiar/MMSA (MIT licence, Copyright (c) 2020 thuiar), `EF_LSTM` and `LF_DNN`, with their
CMU-MOSI sizes; rewritten for the aligned contract of this pipeline (padding never read).

Language input, as the originals read word vectors (GloVe, or BERT states in MMSA): the language model's
states pooled per aligned word (`model.text_steps: words`, cached frozen or from the fine-tuned LM), one
per word step; EF-LSTM concatenates each to the step's acoustic and visual vectors, LF-LSTM's language
LSTM reads them. `model.text_steps: sentence` repeats the segment's sentence vector [B, H] at every step
instead (the earlier behaviour).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pipeline.models.base import Baseline, lstm_final, per_step


class EFLSTM(Baseline):
    """EF-LSTM: [l_t; a_t; v_t] at each word step (l_t: the word's language state) -> 4-layer LSTM
    (hidden 128) -> last valid state -> dropout -> Linear(128, 128) + ReLU -> dropout -> Linear(128, 1);
    every dropout is `model.ef_lstm_dropout` (default 0.5).

    Sizes: MMSA's MOSI setting (hidden 128, 4 layers, dropout 0.5).
    """

    hidden, layers = 128, 4

    def build(self, model: dict[str, Any], audio_dim: int, visual_dim: int, seq_len: int) -> None:
        in_dim = self.lm_hidden + audio_dim + visual_dim
        dropout = model["ef_lstm_dropout"]
        self.lstm = nn.LSTM(in_dim, self.hidden, self.layers, dropout=dropout, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.linear = nn.Linear(self.hidden, self.hidden)
        self.out = nn.Linear(self.hidden, 1)

    def fuse(
        self, language: torch.Tensor, audio: torch.Tensor, visual: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prediction [B] and fused [B, 128]."""
        x = torch.cat([per_step(language, audio.shape[1]), audio, visual], dim=-1)
        h = self.drop(lstm_final(self.lstm, x, length))
        fused = torch.relu(self.linear(h))
        return self.out(self.drop(fused)).squeeze(-1), fused


class LFLSTM(Baseline):
    """LF-LSTM: one LSTM per modality, one decision (Linear(h_m, 1)) per modality, and the decisions
    combined by a learned vote (softmax weights over the three modalities).

    Sizes: MMSA's MOSI `lf_dnn` setting, LSTM hidden 128 (language), 16 (acoustic), 128 (visual);
    dropout `model.lf_lstm_dropout` (default 0.2, MMSA's) on each final state.
    """

    hidden: dict[str, int] = {"l": 128, "a": 16, "v": 128}

    def build(self, model: dict[str, Any], audio_dim: int, visual_dim: int, seq_len: int) -> None:
        dims = {"l": self.lm_hidden, "a": audio_dim, "v": visual_dim}
        self.lstms = nn.ModuleDict({m: nn.LSTM(dims[m], h, batch_first=True) for m, h in self.hidden.items()})
        self.drop = nn.Dropout(model["lf_lstm_dropout"])
        self.decisions = nn.ModuleDict({m: nn.Linear(h, 1) for m, h in self.hidden.items()})
        self.vote = nn.Parameter(torch.zeros(len(self.hidden)))

    def fuse(
        self, language: torch.Tensor, audio: torch.Tensor, visual: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prediction [B] and fused [B, 272] (the three final states the decisions read)."""
        sequences = {"l": per_step(language, audio.shape[1]), "a": audio, "v": visual}
        states = {m: self.drop(lstm_final(lstm, sequences[m], length)) for m, lstm in self.lstms.items()}
        decisions = torch.cat([self.decisions[m](states[m]) for m in self.hidden], dim=-1)  # [B, 3]
        pred = (decisions * torch.softmax(self.vote, dim=0)).sum(-1)
        return pred, torch.cat(list(states.values()), dim=-1)
