"""The allowed values of every settings key that names a choice: their one home.

Torch-free, so that the settings (and through them the workflow's planning) read the names without loading
torch; the modules that implement a choice (the losses, the fusions, the model families, the language-model
pooling, the search samplers) import their names from here and check what they are given against them, and
`pipeline.settings.CHOICES` is built from them. A new value is added here and implemented there; the tests
that build every value of a choice (tests/test_fusion.py, test_losses.py, test_baselines.py,
test_language.py) then fail until it is.
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import ConfigError
from pipeline.metrics import METRIC_KEYS

# model.arch: HyCon and the baselines of the paper's comparison (pipeline.models.FAMILIES implements each).
ARCHS: tuple[str, ...] = (
    "hycon",
    "ef_lstm",
    "lf_lstm",
    "tfn",
    "lmf",
    "mfn",
    "mult",
    "mag_bert",
    "text_probe",
    "text_only",
)
# model.lm_mode: cached features of a frozen language model | the language model trained with the rest.
LM_MODES: tuple[str, ...] = ("frozen", "finetune")
# Which states of the language model become the sentence vector (`pipeline.models.language.select_token`);
# the settings add `auto`, resolved to one of these by `pipeline.settings.text_token_of`.
TEXT_TOKENS: tuple[str, ...] = ("mean", "cls", "last")
TEXT_TOKEN_SETTINGS: tuple[str, ...] = ("auto", *TEXT_TOKENS)
# model.text_steps: the language input of the word-sequential baselines.
TEXT_STEPS: tuple[str, ...] = ("words", "sentence")
# model.positional: the audio/visual encoders' position encoding (pipeline/models/hycon.py).
POSITIONAL: tuple[str, ...] = ("sinusoidal", "learned")
# model.nonneg: the activation closing every unimodal projection (pipeline/models/hycon.py NONNEG_MODULES).
NONNEG: tuple[str, ...] = ("relu", "softplus", "none")
# model.fusion: pipeline/models/fusion.py FUSION_MODULES.
FUSIONS: tuple[str, ...] = ("add", "concat", "tensor", "graph")
# loss.contrastive: HyCon's losses, none, and Table 6's comparison losses (pipeline/losses.py).
COMPARISON_NAMES: tuple[str, ...] = ("triplet", "hard_triplet", "npair", "contrastive")
CONTRASTIVE_NAMES: tuple[str, ...] = ("hycon", "none", *COMPARISON_NAMES)
ZERO_CLASSES: tuple[str, ...] = ("nonneg", "negative")  # loss.zero_class
REDUCTIONS: tuple[str, ...] = ("mean", "sum")  # loss.reduction
NORMALIZE: tuple[str, ...] = ("zscore", "none")  # data.normalize
CHECKPOINT_DTYPES: tuple[str, ...] = ("float32", "float16")  # train.checkpoint_dtype
SCHEDULES: tuple[str, ...] = ("none", "linear_warmup")  # train.schedule (pipeline/optimizer.py)
# search.sampler (pipeline/study.py); its default is the workflow schema's.
SAMPLERS: tuple[str, ...] = ("random", "tpe")

# dotted settings key -> its allowed values (`pipeline.settings` validates against this).
CHOICES: dict[str, tuple[str, ...]] = {
    "model.arch": ARCHS,
    "model.lm_mode": LM_MODES,
    "model.text_token": TEXT_TOKEN_SETTINGS,
    "model.text_steps": TEXT_STEPS,
    "model.positional": POSITIONAL,
    "model.nonneg": NONNEG,
    "model.fusion": FUSIONS,
    "loss.contrastive": CONTRASTIVE_NAMES,
    "loss.zero_class": ZERO_CLASSES,
    "loss.reduction": REDUCTIONS,
    "data.normalize": NORMALIZE,
    "train.checkpoint_dtype": CHECKPOINT_DTYPES,
    "train.schedule": SCHEDULES,
    "train.select": METRIC_KEYS,
}


def check_sampler(name: Any) -> str:
    """`search.sampler` when it is one of SAMPLERS; one ConfigError naming the key otherwise."""
    if name not in SAMPLERS:
        raise ConfigError(f"search.sampler: {name!r} is not one of {', '.join(SAMPLERS)}")
    return name
