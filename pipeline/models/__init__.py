"""Model families: each takes the aligned contract (audio, visual, lengths, text) and predicts sentiment.

`FAMILIES` is the registry of the `model.arch` families (their names, the settings' allowed values, are
`pipeline.choices.ARCHS`); `build_model`
is the one place a run's settings and its data's dimensions become a network; training, evaluation, the
search and the benchmarks all call it. HyCon is `hycon.py`; the baselines of the paper's comparison (issue 8)
are `lstm.py` (ef_lstm, lf_lstm), `tensor_fusion.py` (tfn, lmf), `mfn.py`, `mult.py`, `mag_bert.py`,
`probe.py` (text_probe, fitted in closed form by its `fit`, not trained by SGD) and `text_only.py`; their
shared parts are `base.py`, the language-model loading `language.py`. Classes are imported on first use, so
that reading the names (the settings do) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from pipeline.models.contract import ModelFamily

# `model.arch` (a name of pipeline.choices.ARCHS, the allowed names' home) -> "module:class"; every class is a
# `contract.ModelFamily`: HyConModel's constructor, forward (-> `contract.ModelOutput`) and model_inputs.
FAMILIES: dict[str, str] = {
    "hycon": "pipeline.models.hycon:HyConModel",
    "ef_lstm": "pipeline.models.lstm:EFLSTM",
    "lf_lstm": "pipeline.models.lstm:LFLSTM",
    "tfn": "pipeline.models.tensor_fusion:TFN",
    "lmf": "pipeline.models.tensor_fusion:LMF",
    "mfn": "pipeline.models.mfn:MFN",
    "mult": "pipeline.models.mult:MulT",
    "mag_bert": "pipeline.models.mag_bert:MAGBert",
    "text_probe": "pipeline.models.probe:TextProbe",
    "text_only": "pipeline.models.text_only:TextOnly",
}
# Families whose references read one language vector per word (an LSTM or Transformer over word vectors, or,
# in TFN and LMF, a language LSTM over words: thuiar/MMSA's `TextSubNet`): they read `model.text_steps`.
WORD_STEP_FAMILIES: tuple[str, ...] = ("ef_lstm", "lf_lstm", "tfn", "lmf", "mfn", "mult")
# State-dict prefix of the language model in every family that fine-tunes one (its `language_model`).
PRETRAINED_PREFIX = "language_model."
# Families that run in one language-model mode only, and why.
LM_MODE_OF: dict[str, tuple[str, str]] = {
    "mag_bert": (
        "finetune",
        "its gate sits inside the language model, so cached sentence vectors cannot be used",
    ),
    "text_probe": ("frozen", "it is a ridge fit on frozen language features"),
}


def lm_mode_conflict(arch: str, lm_mode: str) -> str | None:
    """Why `arch` cannot run with `model.lm_mode` = `lm_mode`, or None."""
    if arch in LM_MODE_OF and LM_MODE_OF[arch][0] != lm_mode:
        need, why = LM_MODE_OF[arch]
        return f"model.arch={arch} needs model.lm_mode={need} ({why}); got {lm_mode}"
    return None


def contrastive_conflict(arch: str, contrastive: str) -> str | None:
    """Why `arch` cannot run with `loss.contrastive` = `contrastive`, or None: only HyCon has the unimodal
    representations the contrastive terms compare."""
    if arch != "hycon" and contrastive != "none":
        return (
            f"model.arch={arch} has no unimodal representations for contrastive terms: "
            f"set loss.contrastive=none (got {contrastive})"
        )
    return None


def reads_word_states(model: dict[str, Any]) -> bool:
    """Whether a run with the `model` settings section reads per-word language states [B, T, H]
    (`model.text_steps: words` in a word-sequential family) rather than one sentence vector [B, H]."""
    return model["arch"] in WORD_STEP_FAMILIES and model["text_steps"] == "words"


def model_class(arch: str) -> type[ModelFamily]:
    """The class of the `model.arch` family `arch` (a name of `pipeline.choices.ARCHS`)."""
    module, name = FAMILIES[arch].split(":")
    return getattr(importlib.import_module(module), name)


def build_model(settings: dict[str, Any], dims: dict[str, Any]) -> ModelFamily:
    """The model for a data file's dimensions (`dims`: audio_dim, visual_dim, seq_len, lm_hidden, as
    `inference.DataInfo.dims` or a checkpoint's `dims` give them), built from the `model` settings section
    alone (nothing else in the settings shapes a network)."""
    cls = model_class(settings["model"]["arch"])
    return cls(settings["model"], dims["audio_dim"], dims["visual_dim"], dims["seq_len"], dims["lm_hidden"])


def pretrained_weights(settings: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The fine-tuned language model's weights as `build_model` loads them from their files, by state-dict
    name; {} when the language model is frozen (it is then no part of the model's state)."""
    if settings["model"]["lm_mode"] != "finetune":
        return {}
    from pipeline.models.language import load_language_model

    language_model, _ = load_language_model(settings["model"]["language_model"])
    return {PRETRAINED_PREFIX + name: value for name, value in language_model.state_dict().items()}
