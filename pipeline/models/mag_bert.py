"""MAG-BERT: BERT with the Multimodal Adaptation Gate (Rahman et al., ACL 2020; HyCon paper, baseline 11).

After WasifurRahman/BERT_multimodal_transformer (`modeling.py`, MIT licence) and its copy in thuiar/MMSA
(`BERT_MAG`, MIT licence, Copyright (c) 2020 thuiar). The gate sits inside the language model (between its
embedding layer and its first Transformer layer, the original's best injection point), so the language model
runs on every step: `model.lm_mode=finetune` is required (cached sentence vectors cannot be gated).

Word pieces: the aligned file's steps are the words of `text` (`text.split()`, up to `seq_len`); the text is
tokenised as pre-split words (a fast tokenizer's `word_ids`) and each word piece takes its word's acoustic
and visual vector; [CLS], [SEP], padding and pieces of words beyond the segment's `length` take zeros, as in
the original. The language model is `model.language_model` (bundled MiniLM by default, where the paper used
BERT-base); the prediction reads the [CLS] state through a new pooler (Linear + tanh; our loader drops the
checkpoint's pooler), dropout and Linear(H, 1). Sizes: the original code's beta_shift 1.0; its gate dropout
is `model.mag_bert_dropout` (default 0.5, the original's); the language model and pooler at width H (384 for
MiniLM). The gate and head train at `train.lr`, the language model at `train.lr_lm` (the original uses one
rate, 1e-5, for everything: MAG-BERT's preset sets both, pipeline/presets.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pipeline.errors import ConfigError
from pipeline.models import lm_mode_conflict
from pipeline.models.contract import ModelOutput
from pipeline.models.language import load_language_model, tokenize_words


class MultimodalAdaptationGate(nn.Module):
    """h = relu(W_hv [v; e]) * W_v v + relu(W_ha [a; e]) * W_a a; e' = dropout(LayerNorm(e + alpha h)),
    with alpha = min(beta ||e|| / ||h||, 1) per word piece (||h|| = 0 counts as 1)."""

    def __init__(self, hidden: int, audio_dim: int, visual_dim: int, beta_shift: float, dropout: float):
        super().__init__()
        self.W_hv = nn.Linear(visual_dim + hidden, hidden)
        self.W_ha = nn.Linear(audio_dim + hidden, hidden)
        self.W_v = nn.Linear(visual_dim, hidden)
        self.W_a = nn.Linear(audio_dim, hidden)
        self.beta_shift = beta_shift
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, embedding: torch.Tensor, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """Word-piece embeddings [B, L, H], per-piece audio [B, L, Da] and visual [B, L, Dv] -> [B, L, H]."""
        weight_v = torch.relu(self.W_hv(torch.cat([visual, embedding], dim=-1)))
        weight_a = torch.relu(self.W_ha(torch.cat([audio, embedding], dim=-1)))
        shift = weight_v * self.W_v(visual) + weight_a * self.W_a(audio)
        shift_norm = shift.norm(dim=-1)
        shift_norm = torch.where(shift_norm == 0, torch.ones_like(shift_norm), shift_norm)
        alpha = torch.clamp(embedding.norm(dim=-1) / (shift_norm + 1e-6) * self.beta_shift, max=1.0)
        return self.drop(self.norm(embedding + alpha[..., None] * shift))


class MAGBert(nn.Module):
    """MAG-BERT regression model with HyCon's interface (`forward` also takes `word_index`)."""

    beta_shift = 1.0

    def __init__(
        self,
        model: dict[str, Any],
        audio_dim: int,
        visual_dim: int,
        seq_len: int,
        lm_hidden: int | None = None,
    ) -> None:
        super().__init__()
        if problem := lm_mode_conflict("mag_bert", model["lm_mode"]):
            raise ConfigError(problem)
        self.max_tokens = model["max_text_tokens"]
        self.language_model, self.tokenizer = load_language_model(model["language_model"])
        hidden = self.language_model.config.hidden_size
        self.gate = MultimodalAdaptationGate(
            hidden, audio_dim, visual_dim, self.beta_shift, model["mag_bert_dropout"]
        )
        self.pooler = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())
        self.drop = nn.Dropout(self.language_model.config.hidden_dropout_prob)
        self.out = nn.Linear(hidden, 1)

    def forward(
        self,
        audio: torch.Tensor,
        visual: torch.Tensor,
        length: torch.Tensor,
        *,
        lm_features: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        word_index: torch.Tensor | None = None,
    ) -> ModelOutput:
        """Prediction [B], no reps, fused [B, H] (the pooled [CLS] state). `word_index` [B, L] gives each
        word piece's step (-1: none); see `model_inputs`."""
        if input_ids is None or attention_mask is None or word_index is None:
            raise ValueError("mag_bert: pass input_ids, attention_mask and word_index (see model_inputs)")
        has_word = (word_index >= 0) & (word_index < length[:, None])
        rows = torch.arange(audio.shape[0], device=audio.device)[:, None]
        steps = word_index.clamp(min=0, max=audio.shape[1] - 1)
        keep = has_word[..., None].to(audio.dtype)
        piece_audio, piece_visual = audio[rows, steps] * keep, visual[rows, steps] * keep

        def gate(_module: nn.Module, _args: Any, embedding: torch.Tensor) -> torch.Tensor:
            return self.gate(embedding, piece_audio.to(embedding.dtype), piece_visual.to(embedding.dtype))

        hook = self.language_model.embeddings.register_forward_hook(gate)
        try:
            hidden = self.language_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        finally:
            hook.remove()
        fused = self.pooler(hidden[:, 0])
        return ModelOutput(self.out(self.drop(fused)).squeeze(-1), {}, fused)

    def model_inputs(self, batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        """Tokenise the texts as pre-split words; `word_index` maps each word piece to its step (-1: none)."""
        inputs = {name: batch[name].to(device) for name in ("audio", "visual", "length")}
        tokens = tokenize_words(self.tokenizer, batch["text"], self.max_tokens)
        inputs.update({name: t.to(device) for name, t in tokens.items()})
        return inputs
