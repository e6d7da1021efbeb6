"""Each model family's reference training settings (its preset) and its own search space: the one home.

A fair comparison trains each baseline as its authors trained it. `family_preset(arch)` gives the
settings of the reference a family's sizes come from (learning rate, weight decay, batch size, gradient
clip, schedule, dropouts), as dotted-key overrides; `search_space(arch)` the hyperparameters that family
searches (the ones its model reads, with a learning-rate range around its reference rate).

Precedence of a table row's settings (`pipeline.grid.experiment_settings`):

    settings DEFAULTS  <  config `base`  <  family preset  <  the experiment's own overrides

A baseline preset sets every key of `PRESET_KEYS` (the optimisation settings), so that no optimisation
setting of `base` reaches a baseline: the overlays' `train.lr: 1e-5` is HyCon's (the paper's single rate),
not MulT's. `base` still gives every row the protocol it shares: epochs, patience, the selection metric,
the data, the language model and its mode, and `train.lr_lm` (the language model's rate when fine-tuned:
the references read fixed features, or for MAG-BERT set it in the preset). HyCon's family (`hycon`, its
ablations and variants, `text_only`, HyCon's language branch alone) and the closed-form `text_probe` have
no preset: they run with `base`, the paper's settings.

The presets are the references' CMU-MOSI settings, on every dataset: the models fix MMSA's CMU-MOSI sizes,
and each preset goes with those sizes (MMSA tunes CMU-MOSEI separately, with other sizes).
Sources (read 2026-12; README "Paper protocol" lists each departure and its reason):

- MMSA: thuiar/MMSA `src/MMSA/config/config_regression.json`, `datasetParams.mosi` of `ef_lstm`,
  `lf_dnn` (our LF-LSTM's sizes), `tfn`, `lmf`, `mfn`; its trainers (`trains/singleTask/*.py`) use Adam
  with `weight_decay` and no gradient clipping.
- MulT: yaohungt/Multimodal-Transformer `main.py` defaults (our MulT's sizes): Adam 1e-3, batch 24,
  `clip_grad_norm_` 0.8, no weight decay; its ReduceLROnPlateau (patience 20) cannot fire within 20 epochs.
- MAG-BERT: WasifurRahman/BERT_multimodal_transformer `multimodal_driver.py` defaults: one rate 1e-5,
  batch 48, linear schedule with 10% warm-up, dropout 0.5, no clipping.

Search (`search_all`, `pipeline.grid.search_spec`): a baseline row searches its family's space below; the
config's `search.space` is the space of HyCon's family (the rows that keep the paper's settings). Model
keys the row's experiment sets are left out of its family space (a row is searched only within what it
leaves free); its training keys are searched all the same (an experiment sets those for a config's budget,
as the CPU default's MAG-BERT its `train.lr`: they do not define the row). A searched key the family does
not read is refused (`check_family_space`), and the closed-form
text probe is not searched (its ridge alpha is already chosen on validation).

Torch-free: the workflow's grid (`pipeline.grid`) and the search read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pipeline.errors import ConfigError
from pipeline.models import WORD_STEP_FAMILIES

# The optimisation settings every baseline preset sets, so that none comes from the config's `base`.
PRESET_KEYS: tuple[str, ...] = (
    "train.lr",
    "train.weight_decay",
    "train.batch_size",
    "train.grad_clip",
    "train.schedule",
    "train.warmup",
)

_MMSA = "thuiar/MMSA src/MMSA/config/config_regression.json"
# model.arch -> where its preset comes from (README "Paper protocol" has the same, with departures).
SOURCES: dict[str, str] = {
    "ef_lstm": f"{_MMSA}, ef_lstm, mosi",
    "lf_lstm": f"{_MMSA}, lf_dnn, mosi",
    "tfn": f"{_MMSA}, tfn, mosi",
    "lmf": f"{_MMSA}, lmf, mosi",
    "mfn": f"{_MMSA}, mfn, mosi",
    "mult": "yaohungt/Multimodal-Transformer main.py defaults",
    "mag_bert": "WasifurRahman/BERT_multimodal_transformer multimodal_driver.py defaults",
}


def _optimisation(lr: float, weight_decay: float, batch_size: int, grad_clip: float = 0.0) -> dict[str, Any]:
    """The PRESET_KEYS of a reference without a schedule (constant rates)."""
    return {
        "train.lr": lr,
        "train.weight_decay": weight_decay,
        "train.batch_size": batch_size,
        "train.grad_clip": grad_clip,
        "train.schedule": "none",
        "train.warmup": 0.0,
    }


PRESETS: dict[str, dict[str, Any]] = {
    # MMSA's weight decay 5e-3 collapses EF-LSTM to a constant output within the CPU default's epochs
    # (valid MAE 1.725, predicting 0; 1.007 without: benchmarks/presets.py --jobs, docs/benchmarks.md):
    # 0 here, a departure; the search still tries 5e-3.
    "ef_lstm": {**_optimisation(1e-3, 0.0, 32), "model.ef_lstm_dropout": 0.5},
    "lf_lstm": {**_optimisation(1e-3, 1e-2, 128), "model.lf_lstm_dropout": 0.2},
    "tfn": {**_optimisation(1e-3, 0.0, 32), "model.tfn_dropout": 0.3, "model.tfn_post_dropout": 0.5},
    "lmf": {**_optimisation(1e-3, 5e-3, 64), "model.lmf_dropout": 0.3},
    "mfn": {
        **_optimisation(2e-3, 0.0, 128),
        "model.mfn_attention_dropout": 0.2,
        "model.mfn_proposal_dropout": 0.0,
        "model.mfn_retain_dropout": 0.7,
        "model.mfn_update_dropout": 0.5,
        "model.mfn_out_dropout": 0.0,
    },
    "mult": {
        **_optimisation(1e-3, 0.0, 24, grad_clip=0.8),
        "model.mult_attn_dropout": 0.1,
        "model.mult_attn_dropout_a": 0.0,
        "model.mult_attn_dropout_v": 0.0,
        "model.mult_relu_dropout": 0.1,
        "model.mult_res_dropout": 0.1,
        "model.mult_embed_dropout": 0.25,
        "model.mult_out_dropout": 0.0,
    },
    "mag_bert": {
        **_optimisation(1e-5, 0.0, 48),
        "train.lr_lm": 1e-5,  # the original's one rate for the whole model
        "train.schedule": "linear_warmup",
        "train.warmup": 0.1,
        "model.mag_bert_dropout": 0.5,
    },
}

# The `model` settings each family's network reads (its `build` / constructor), beyond the language keys.
HYCON_MODEL_KEYS: tuple[str, ...] = (
    "model.d",
    "model.layers",
    "model.heads",
    "model.ff",
    "model.dropout",
    "model.positional",
    "model.nonneg",
    "model.fusion",
    "model.head_hidden",
)
MODEL_KEYS: dict[str, tuple[str, ...]] = {
    "hycon": HYCON_MODEL_KEYS,
    "text_only": ("model.d", "model.head_hidden", "model.dropout", "model.nonneg"),
    "text_probe": (),
    **{arch: tuple(key for key in preset if key.startswith("model.")) for arch, preset in PRESETS.items()},
}
# Settings every family reads: its language input and the data.
LANGUAGE_KEYS: tuple[str, ...] = (
    "model.arch",
    "model.language_model",
    "model.lm_mode",
    "model.text_token",
    "model.max_text_tokens",
    "data.normalize",
)
# Families fitted in closed form, not by SGD: nothing to search (`pipeline.models` `fit`).
NOT_SEARCHED: dict[str, str] = {
    "text_probe": "a closed-form ridge fit whose alpha is already chosen on validation",
}


def _lr_range(lr: float) -> dict[str, list[float]]:
    """A log-uniform learning-rate range of a decade either side of a reference rate (rounded to 6
    significant digits: 1e-6, not 1.0000000000000002e-06)."""
    return {"log_uniform": [float(f"{lr / 10:.6g}"), float(f"{lr * 10:.6g}")]}


def _choices(preset: Any, usual: Iterable[Any]) -> list[Any]:
    """The usual choices of a key with its preset value among them, sorted."""
    return sorted({*usual, preset})


def _family_space(arch: str) -> dict[str, Any]:
    """A baseline's search space: its rate(s) around the reference, weight decay (MMSA's values) and batch
    size among the usual choices with the preset's, and every dropout it reads in [0, 0.7] (MMSA's tuning
    range)."""
    preset = PRESETS[arch]
    space: dict[str, Any] = {
        "train.lr": _lr_range(preset["train.lr"]),
        "train.weight_decay": _choices(preset["train.weight_decay"], (0.0, 1e-4, 1e-3, 5e-3, 1e-2)),
        "train.batch_size": _choices(preset["train.batch_size"], (16, 32, 64, 128)),
    }
    if "train.lr_lm" in preset:
        space["train.lr_lm"] = _lr_range(preset["train.lr_lm"])
    space.update({key: {"uniform": [0.0, 0.7]} for key in MODEL_KEYS[arch]})
    return space


def family_preset(arch: str) -> dict[str, Any]:
    """The training settings of `arch`'s reference as dotted-key overrides ({} for HyCon's family and the
    text probe, which run with the config's `base`). A new dict: callers may change it."""
    if arch not in MODEL_KEYS:
        raise ConfigError(f"model.arch={arch!r} is not a model family ({', '.join(MODEL_KEYS)})")
    return dict(PRESETS.get(arch, {}))


def search_space(arch: str) -> dict[str, Any]:
    """`arch`'s own search space ({} for HyCon's family, which searches the config's `search.space`, and for
    the text probe, which is not searched)."""
    family_preset(arch)  # an unknown family is a ConfigError
    return _family_space(arch) if arch in PRESETS else {}


def searched(arch: str) -> bool:
    """Whether rows of `arch` are searched (the closed-form text probe is not)."""
    return arch not in NOT_SEARCHED


def row_space(arch: str, config_space: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """The space a row of family `arch` searches: its family's space without the model keys of `own`
    (those its experiment sets; its training keys stay searched, module docstring), or for HyCon's family
    the config's `search.space` (checked by `settings.check_search_space`, which refuses the experiment's
    own keys there)."""
    if arch not in PRESETS:
        return dict(config_space)
    fixed = fixed_overrides(arch, own)
    return {key: entry for key, entry in search_space(arch).items() if key not in fixed}


def fixed_overrides(arch: str, own: Mapping[str, Any]) -> dict[str, Any]:
    """The dotted overrides `own` of a row's experiment that its search may not vary: all of them for
    HyCon's family, the model keys for a baseline (its training keys are searched, module docstring)."""
    if arch not in PRESETS:
        return dict(own)
    return {key: value for key, value in own.items() if not key.startswith("train.")}


def family_reads(settings: Mapping[str, Any]) -> set[str]:
    """Dotted settings keys a run with resolved `settings` reads: its family's model keys, the language and
    data keys (`model.text_steps` for the word-sequential families), the training keys (`lr_lm` only when
    fine-tuning, `warmup` only with a schedule) and, for HyCon with contrastive terms, the loss keys."""
    arch, train = settings["model"]["arch"], settings["train"]
    keys = {*LANGUAGE_KEYS, *MODEL_KEYS[arch]}
    if arch in WORD_STEP_FAMILIES:
        keys.add("model.text_steps")  # per-word states or the repeated sentence vector
    keys |= {f"train.{name}" for name in train}
    if settings["model"]["lm_mode"] != "finetune":
        keys.discard("train.lr_lm")
    if train["schedule"] == "none":
        keys.discard("train.warmup")
    if arch == "hycon" and settings["loss"]["contrastive"] != "none":
        keys |= {f"loss.{name}" for name in settings["loss"]}
    return keys


def check_family_space(settings: Mapping[str, Any], keys: Iterable[str], where: str = "search.space") -> None:
    """ConfigError (one line naming key and family) when a searched key is one the run's family does not
    read, or when the family is not searched at all; None otherwise. Called before any trial."""
    arch = settings["model"]["arch"]
    if not searched(arch):
        raise ConfigError(f"{where}: model.arch={arch} is not searched ({NOT_SEARCHED[arch]})")
    ignored = sorted(set(keys) - family_reads(settings))
    if ignored:
        also = f" (nor {', '.join(ignored[1:])})" if ignored[1:] else ""
        raise ConfigError(
            f"{where}.{ignored[0]}: model.arch={arch} does not read this setting{also}; searching it would"
            " only repeat trials"
        )


def training_note(settings: Mapping[str, Any]) -> str:
    """What a run trained with, for a caption: rates, weight decay, batch size, clipping and schedule."""
    if not searched(arch := settings["model"]["arch"]):
        return NOT_SEARCHED[arch]
    train = settings["train"]
    rates = f"lr {train['lr']:g}"
    if settings["model"]["lm_mode"] == "finetune":
        rates += f" (language model {train['lr_lm']:g})"
    clip = f"clip {train['grad_clip']:g}" if train["grad_clip"] > 0 else "no clipping"
    note = f"{rates}, weight decay {train['weight_decay']:g}, batch {train['batch_size']}, {clip}"
    if train["schedule"] != "none":
        note += f", {train['schedule']} ({train['warmup']:g} warm-up)"
    return note


SettingsOf = Callable[[str], Mapping[str, Any]]  # experiment name -> its resolved settings


def training_notes(rows: Sequence[Mapping[str, str]], settings_of: SettingsOf) -> dict[str, str]:
    """Row label -> what its experiment trains with (`training_note`), for a table's caption."""
    return {row["label"]: training_note(settings_of(row["experiment"])) for row in rows}


def unsearched_rows(rows: Sequence[Mapping[str, str]], settings_of: SettingsOf) -> dict[str, str]:
    """Row label -> why it is not searched, for the rows of a family that is not (the text probe)."""
    notes = {}
    for row in rows:
        arch = settings_of(row["experiment"])["model"]["arch"]
        if not searched(arch):
            notes[row["label"]] = NOT_SEARCHED[arch]
    return notes
