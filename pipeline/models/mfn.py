"""Memory Fusion Network (Zadeh et al., AAAI 2018; HyCon paper, Section 4.3, baseline 4).

Adapted from thuiar/MMSA (MIT licence, Copyright (c) 2020 thuiar), `MFN` (after pliang279/MFN), with
MMSA's CMU-MOSI sizes. Differences: the state read is each segment's last valid word step (not the padded
final step), and the language LSTM reads the language model's states pooled per aligned word
(`model.text_steps: words`, cached frozen or from the fine-tuned LM) where the original reads word vectors
(`model.text_steps: sentence`: the segment's sentence vector [B, H] at every word step).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pipeline.models.base import Baseline, last_valid, per_step


def _mlp(in_dim: int, out_dim: int, spec: tuple[int, float]) -> nn.Sequential:
    """Linear(in, hidden) -> ReLU -> Dropout -> Linear(hidden, out), with spec = (hidden, dropout)."""
    hidden, dropout = spec
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim)
    )


class MFN(Baseline):
    """MFN: a System of LSTMs (one LSTMCell per modality), the Delta-memory Attention Network over the
    cell states of steps t-1 and t (window 2), and the Multi-view Gated Memory updated by two gates.

    Sizes (MMSA, MOSI): LSTM hidden 256 (language), 32 (acoustic), 256 (visual); memory 400; attention
    networks 32 and 64; gates 256 and 32; output network 128. Their dropouts are settings, defaulting to
    MMSA's: `model.mfn_attention_dropout` 0.2, `mfn_proposal_dropout` 0, `mfn_retain_dropout` 0.7,
    `mfn_update_dropout` 0.5, `mfn_out_dropout` 0.
    """

    hidden: dict[str, int] = {"l": 256, "a": 32, "v": 256}
    memory, window = 400, 2
    att1, att2, gamma1, gamma2, out_hidden = 32, 64, 256, 32, 128

    def build(self, model: dict[str, Any], audio_dim: int, visual_dim: int, seq_len: int) -> None:
        dims = {"l": self.lm_hidden, "a": audio_dim, "v": visual_dim}
        self.cells = nn.ModuleDict({m: nn.LSTMCell(dims[m], h) for m, h in self.hidden.items()})
        total = sum(self.hidden.values())
        attended = total * self.window
        self.attention = _mlp(attended, attended, (self.att1, model["mfn_attention_dropout"]))
        self.proposal = _mlp(attended, self.memory, (self.att2, model["mfn_proposal_dropout"]))
        self.retain = _mlp(attended + self.memory, self.memory, (self.gamma1, model["mfn_retain_dropout"]))
        self.update = _mlp(attended + self.memory, self.memory, (self.gamma2, model["mfn_update_dropout"]))
        self.out_fc = nn.Sequential(
            nn.Linear(total + self.memory, self.out_hidden), nn.ReLU(), nn.Dropout(model["mfn_out_dropout"])
        )
        self.out = nn.Linear(self.out_hidden, 1)

    def fuse(
        self, language: torch.Tensor, audio: torch.Tensor, visual: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prediction [B] and fused [B, 128] (the output network's hidden layer)."""
        steps, batch = audio.shape[1], audio.shape[0]
        inputs = {"l": per_step(language, steps), "a": audio, "v": visual}
        h = {m: audio.new_zeros(batch, size) for m, size in self.hidden.items()}
        c = {m: audio.new_zeros(batch, size) for m, size in self.hidden.items()}
        mem = audio.new_zeros(batch, self.memory)
        history = []
        for t in range(steps):
            new = {m: cell(inputs[m][:, t], (h[m], c[m])) for m, cell in self.cells.items()}
            c_star = torch.cat([c[m] for m in self.hidden] + [new[m][1] for m in self.hidden], dim=-1)
            attended = torch.softmax(self.attention(c_star), dim=-1) * c_star
            proposal = torch.tanh(self.proposal(attended))
            both = torch.cat([attended, mem], dim=-1)
            mem = torch.sigmoid(self.retain(both)) * mem + torch.sigmoid(self.update(both)) * proposal
            h = {m: new[m][0] for m in self.hidden}
            c = {m: new[m][1] for m in self.hidden}
            history.append(torch.cat([h[m] for m in self.hidden] + [mem], dim=-1))
        final = last_valid(torch.stack(history, dim=1), length)
        fused = self.out_fc(final)
        return self.out(fused).squeeze(-1), fused
