"""Model families: each takes the aligned contract (audio, visual, lengths, text) and predicts sentiment.

`build_model` is the one place a run's settings and its data's dimensions become a network; training,
evaluation, the search and the benchmarks all call it. HyCon is the family of today (`hycon.py`); the
language-model loading its language branch uses lives in `language.py`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from pipeline.models.hycon import HyConModel


def build_model(settings: dict[str, Any], info: dict[str, Any]) -> nn.Module:
    """The model for a data file's dimensions (`info` from `load_datasets` or a checkpoint's `dims`)."""
    return HyConModel(settings, info["audio_dim"], info["visual_dim"], info["seq_len"], info["lm_hidden"])
