"""Shared parts of the models: the language input (cached or fine-tuned) and the baselines' building blocks.

Every model family has HyCon's interface, so the same `train` / `evaluate` stages run all of them:
``Model(model, audio_dim, visual_dim, seq_len, lm_hidden)`` (`model`: the `model` settings section),
``model.model_inputs(batch, device)`` and ``forward(audio [B, T, Da], visual [B, T, Dv], length [B], *,
lm_features [B, H], input_ids, attention_mask) -> ModelOutput(prediction [B], unimodal, fused [B, D])``
(`pipeline.models.contract`); the word-sequential baselines also take ``lm_words [B, T, H]``
(cached per-word states, frozen) or ``word_index`` (fine-tuned; `model.text_steps`). The baselines return no
unimodal representations (``unimodal == {}``: no contrastive terms apply) and, as ``fused``, a representation
their regression output reads (each model's `fuse` docstring names it), at most a few hundred floats per
sample (never, e.g., TFN's 140,000-entry tensor: `predict` keeps every sample's).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pipeline.models import reads_word_states
from pipeline.models.contract import ModelOutput
from pipeline.models.language import load_language_model, pool_words, select_token, tokenize, tokenize_words
from pipeline.settings import text_token_of


class LanguageInput(nn.Module):
    """The language branch's input: the cached frozen LM vector (frozen mode) or the fine-tuned LM's
    `model.text_token` state (fine-tune mode; `auto` resolved by `text_token_of`), one vector [B, H] per
    segment; or, where `reads_word_states` (`per_word`), one LM state per aligned word [B, T, H] (cached by
    the features stage, or pooled from the fine-tuned LM's word pieces by `pool_words`).

    `language_model` is None when frozen; the optimizer gives it its own learning rate (`train.lr_lm`).
    """

    def __init__(self, model: dict[str, Any], lm_hidden: int | None) -> None:
        super().__init__()
        self.text_token = text_token_of(model)
        self.max_tokens = model["max_text_tokens"]
        self.language_model: nn.Module | None = None
        self.tokenizer: Any = None
        if model["lm_mode"] == "finetune":
            self.language_model, self.tokenizer = load_language_model(model["language_model"])
            lm_hidden = self.language_model.config.hidden_size
        elif lm_hidden is None:
            raise ValueError("frozen mode needs lm_hidden, the width of the cached language features")
        self.lm_hidden = int(lm_hidden)
        self.per_word = reads_word_states(model)

    def language_vector(
        self,
        lm_features: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The sentence vector [B, H]: cached (frozen) or from the language model (fine-tune)."""
        if self.language_model is None:
            if lm_features is None:
                raise ValueError("frozen mode: pass lm_features (cached language-model vectors)")
            return lm_features
        if input_ids is None or attention_mask is None:
            raise ValueError("fine-tune mode: pass input_ids and attention_mask (see tokenize)")
        hidden = self.language_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return select_token(hidden, attention_mask, self.text_token)

    def word_states(
        self,
        steps: int,
        lm_words: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        word_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-word states [B, T=steps, H]: cached (frozen) or the fine-tuned LM's pooled per word."""
        if self.language_model is None:
            if lm_words is None:
                raise ValueError(
                    "frozen mode, model.text_steps=words: pass lm_words (cached per-word states)"
                )
            return lm_words
        if input_ids is None or attention_mask is None or word_index is None:
            raise ValueError("fine-tune mode: pass input_ids, attention_mask and word_index (tokenize_words)")
        hidden = self.language_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return pool_words(hidden, word_index, steps)

    def model_inputs(self, batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        """Turn a dataset batch (see `pipeline.data.dataset.AlignedDataset`) into `forward` keyword inputs."""
        inputs = {name: batch[name].to(device) for name in ("audio", "visual", "length")}
        if self.language_model is None:
            key = "lm_words" if self.per_word else "lm_features"
            inputs[key] = batch[key].to(device)
        else:
            encode = tokenize_words if self.per_word else tokenize
            tokens = encode(self.tokenizer, batch["text"], self.max_tokens)
            inputs.update({name: t.to(device) for name, t in tokens.items()})
        return inputs


class Baseline(LanguageInput):
    """A baseline fed the language input of `LanguageInput`: subclasses define `build` (their layers, given
    the input sizes; `self.per_word` is set) and `fuse` (language [B, H] or, per word, [B, T, H], audio,
    visual, length -> prediction [B], fused [B, D])."""

    def __init__(
        self,
        model: dict[str, Any],
        audio_dim: int,
        visual_dim: int,
        seq_len: int,
        lm_hidden: int | None = None,
    ) -> None:
        super().__init__(model, lm_hidden)
        self.build(model, audio_dim, visual_dim, seq_len)

    def build(self, model: dict[str, Any], audio_dim: int, visual_dim: int, seq_len: int) -> None:
        """Create the layers (`model`: the `model` settings section; `self.lm_hidden` is set)."""
        raise NotImplementedError

    def fuse(
        self, language: torch.Tensor, audio: torch.Tensor, visual: torch.Tensor, length: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prediction [B] and fused representation [B, D] from [B, H] (or [B, T, H]), [B, T, Da],
        [B, T, Dv], [B]."""
        raise NotImplementedError

    def forward(
        self,
        audio: torch.Tensor,
        visual: torch.Tensor,
        length: torch.Tensor,
        *,
        lm_features: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        lm_words: torch.Tensor | None = None,
        word_index: torch.Tensor | None = None,
    ) -> ModelOutput:
        """Prediction [B], no unimodal representations ({}), fused [B, D] (`ModelOutput`)."""
        if self.per_word:
            language = self.word_states(audio.shape[1], lm_words, input_ids, attention_mask, word_index)
        else:
            language = self.language_vector(lm_features, input_ids, attention_mask)
        pred, fused = self.fuse(language, audio, visual, length)
        return ModelOutput(pred, {}, fused)


def regression_head(in_dim: int, model: dict[str, Any]) -> nn.Sequential:
    """HyCon's regression head: Linear(in, head_hidden) -> ReLU -> Dropout -> Linear(head_hidden, 1)."""
    return nn.Sequential(
        nn.Linear(in_dim, model["head_hidden"]),
        nn.ReLU(),
        nn.Dropout(model["dropout"]),
        nn.Linear(model["head_hidden"], 1),
    )


def valid_steps(length: torch.Tensor, steps: int) -> torch.Tensor:
    """Lengths clamped to [1, steps]: a segment without a kept word reads its (zero) first step."""
    return length.clamp(min=1, max=steps)


def padding_mask(length: torch.Tensor, steps: int) -> torch.Tensor:
    """[B, T] True at padding positions (beyond the valid steps; step 0 always valid)."""
    return torch.arange(steps, device=length.device)[None, :] >= valid_steps(length, steps)[:, None]


def last_valid(states: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """States [B, T, D] at each segment's last valid step -> [B, D]."""
    index = valid_steps(length, states.shape[1]) - 1
    return states[torch.arange(states.shape[0], device=states.device), index]


def valid_mean(x: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Mean of [B, T, D] over each segment's valid steps -> [B, D]."""
    keep = (~padding_mask(length, x.shape[1])).to(x.dtype)[..., None]
    return (x * keep).sum(1) / keep.sum(1)


def per_step(language: torch.Tensor, steps: int) -> torch.Tensor:
    """The language input at every word step [B, T, H]: per-word states [B, T, H] as they are, a sentence
    vector [B, H] repeated (`model.text_steps: sentence`)."""
    return language if language.dim() == 3 else language[:, None, :].expand(-1, steps, -1)


def lstm_final(lstm: nn.LSTM, x: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Top-layer LSTM state [B, hidden] after each segment's last valid step (padding never read)."""
    lengths = valid_steps(length, x.shape[1]).cpu()
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    _, (h_n, _) = lstm(packed)
    return h_n[-1]


class SubNet(nn.Module):
    """TFN/LMF's acoustic and visual sub-network: BatchNorm, dropout and three Linear + ReLU layers."""

    def __init__(self, in_dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.BatchNorm1d(in_dim),
            nn.Dropout(dropout),
            nn.Linear(in_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in_dim] -> [B, hidden]."""
        return self.net(x)


class TextSubNet(nn.Module):
    """TFN/LMF's language sub-network. Per word (`per_word`), the original's: an LSTM (hidden `hidden`)
    over the valid words, its final state, dropout and Linear(hidden, out) (thuiar/MMSA `TextSubNet`).
    On a sentence vector [B, H] (`model.text_steps: sentence`) the LSTM becomes Linear + ReLU (one vector,
    not a sequence), then the same dropout and linear map."""

    def __init__(self, in_dim: int, hidden: int, out: int, dropout: float, per_word: bool) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden, batch_first=True) if per_word else None
        self.encode = None if per_word else nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, out))

    def forward(self, x: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """[B, T, H] per word (or [B, H]) and the valid word counts [B] -> [B, out]."""
        return self.head(lstm_final(self.lstm, x, length) if self.lstm is not None else self.encode(x))
